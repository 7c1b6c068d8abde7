//! Digest files as the validator reads them: any (uncompressed) digest, checked against
//! any public key; and any object key tested against a digest chain's key pattern.
//! Input: the digest JSON, then after a NUL byte the public key's DER bytes.

#![no_main]

use cairn_core::digest::{self, ChainPattern};
use libfuzzer_sys::fuzz_target;

const PATTERN: ChainPattern<'static> = ChainPattern {
    prefix: Some("logs"),
    organization: None,
    account: "111111111111",
    region: "us-east-1",
    trail_name: "main",
    home_region: "us-east-1",
};

/// A signature of RSA-2048's length, all zeros.
static ZERO_SIGNATURE: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| "00".repeat(256));

fuzz_target!(|data: &[u8]| {
    let split = data.iter().position(|&b| b == 0).unwrap_or(data.len());
    let (json, key) = (&data[..split], data.get(split + 1..).unwrap_or_default());
    if let Ok(text) = std::str::from_utf8(json) {
        for line in text.lines() {
            let _ = PATTERN.date_of(line);
        }
    }
    let Ok(read) = digest::read(json) else {
        return;
    };
    let checked = digest::check(
        json,
        read.clone(),
        Some(ZERO_SIGNATURE.as_str()),
        &read.bucket,
        &read.key,
        |_| Some(key.to_vec()),
    );
    // A zero signature never verifies.
    assert!(checked.is_err());
});
