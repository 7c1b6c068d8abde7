//! PutAuditEvents: any body sent to the channel, as `aws cloudtrail-data` sends it.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let served = cairn_fuzz::served();
    let (status, answer) = served.send(
        "cloudtrail-data",
        "/PutAuditEvents",
        &served.audit_query,
        None,
        data,
    );
    cairn_fuzz::assert_well_formed(status, &answer);
});
