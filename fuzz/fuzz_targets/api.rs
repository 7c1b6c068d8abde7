//! Every operation of the CloudTrail and CloudWatch Logs APIs, called with any body.
//! Input: the `X-Amz-Target` on the first line, the request body after it.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let split = data.iter().position(|&b| b == b'\n').unwrap_or(data.len());
    let Ok(target) = std::str::from_utf8(&data[..split]) else {
        return;
    };
    // Only what can travel in an HTTP header.
    if target.is_empty() || !target.bytes().all(|b| b.is_ascii_graphic()) {
        return;
    }
    let body = data.get(split + 1..).unwrap_or_default();
    let (status, answer) = cairn_fuzz::served().call(target, body);
    cairn_fuzz::assert_well_formed(status, &answer);
});
