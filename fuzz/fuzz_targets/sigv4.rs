//! SigV4: any Authorization header, and any request it claims to sign.
//! Input lines: the Authorization header, the query string, then `name:value` headers up
//! to an empty line; the body follows it.

#![no_main]

use cairn_server::sigv4::{self, SignedRequest};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (head, body) = text.split_once("\n\n").unwrap_or((text, ""));
    let mut lines = head.split('\n');
    let header = lines.next().unwrap_or_default();
    let query = lines.next().unwrap_or_default();
    let headers: Vec<(&str, &str)> = lines.filter_map(|line| line.split_once(':')).collect();

    // Percent-decoding undoes percent-encoding.
    assert_eq!(sigv4::decode(&sigv4::encode(query)), query);
    let _ = sigv4::parse_amz_date(header);
    let Ok(auth) = sigv4::parse_authorization(header) else {
        return;
    };
    let request = SignedRequest {
        method: "POST",
        path: "/",
        query,
        headers,
        body: body.as_bytes(),
    };
    let _ = sigv4::verify(&request, &auth, "fuzz-secret", cairn_server::app::now());
});
