//! The bulk endpoint: any body POSTed to `/records`.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let served = cairn_fuzz::served();
    let (status, answer) = served.send("cloudtrail", "/records", "", None, data);
    cairn_fuzz::assert_well_formed(status, &answer);
});
