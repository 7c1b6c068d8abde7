//! The filter-pattern language: any pattern, matched against any message.
//! Input: the pattern on the first line, a message after it (else sample messages).

#![no_main]

use cairn_filter::Pattern;
use libfuzzer_sys::fuzz_target;

const SAMPLES: &[&str] = &[
    r#"{"eventName":"ConsoleLogin","errorCode":"Failed","userIdentity":{"type":"Root","arn":"arn:aws:iam::111111111111:root"},"requestParameters":{"ipPermissions":{"items":[{"fromPort":22,"toPort":22}]}},"responseElements":{"ConsoleLogin":"Failure"},"latency":-1.5e3,"flag":true,"none":null,"a.b":[1,2,[3]]}"#,
    "127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] \"GET /apache_pb.gif HTTP/1.0\" 200 2326",
    "ERROR timeout after 30 s; retrying",
];

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (pattern, message) = match text.split_once('\n') {
        Some((pattern, message)) => (pattern, Some(message)),
        None => (text, None),
    };
    let Ok(pattern) = Pattern::parse(pattern) else {
        return;
    };
    for sample in SAMPLES.iter().copied().chain(message) {
        pattern.matches(sample);
    }
});
