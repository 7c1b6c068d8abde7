//! Digest files: the signed, chained hourly lists of delivered log files that prove a
//! trail's logs were not changed, deleted or added to. The file format, the key layout,
//! the string that is signed, and the checks on a signature. AWS's published format is
//! the authority here: a digest AWS wrote and one Cairn wrote are read the same way.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// The only signature algorithm digests use: RSASSA-PKCS1-v1_5 over SHA-256.
pub const SIGNATURE_ALGORITHM: &str = "SHA256withRSA";
/// The hash of log files and of the previous digest.
pub const HASH_ALGORITHM: &str = "SHA-256";

/// One log file listed in a digest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DigestLog {
    pub s3_bucket: String,
    pub s3_object: String,
    /// Lowercase hex SHA-256 of the log file's uncompressed bytes.
    pub hash_value: String,
    pub hash_algorithm: String,
    pub newest_event_time: String,
    pub oldest_event_time: String,
}

/// A digest file's content, with its fields in the order AWS writes them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Digest {
    pub aws_account_id: String,
    pub digest_start_time: String,
    pub digest_end_time: String,
    pub digest_s3_bucket: String,
    pub digest_s3_object: String,
    pub digest_public_key_fingerprint: String,
    pub digest_signature_algorithm: String,
    pub newest_event_time: Option<String>,
    pub oldest_event_time: Option<String>,
    pub previous_digest_s3_bucket: Option<String>,
    pub previous_digest_s3_object: Option<String>,
    pub previous_digest_hash_value: Option<String>,
    pub previous_digest_hash_algorithm: Option<String>,
    pub previous_digest_signature: Option<String>,
    pub log_files: Vec<DigestLog>,
}

/// The digest a chain links back to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Previous {
    pub bucket: String,
    pub key: String,
    /// Lowercase hex SHA-256 of the previous digest's uncompressed bytes.
    pub hash: String,
    /// The previous digest's hex signature.
    pub signature: String,
}

impl Digest {
    /// The digest of `account`'s `log_files` delivered in `start..end`, found at
    /// `(bucket, key)` and signed by the key `fingerprint`. It links to `previous`, or
    /// starts a chain (all five `previousDigest*` fields null). Its oldest and newest
    /// event times are taken across the logs (null when there are none).
    pub fn new(
        account: &str,
        (start, end): (i64, i64),
        (bucket, key): (&str, &str),
        fingerprint: &str,
        log_files: Vec<DigestLog>,
        previous: Option<&Previous>,
    ) -> Digest {
        Digest {
            aws_account_id: account.to_owned(),
            digest_start_time: format_time(start),
            digest_end_time: format_time(end),
            digest_s3_bucket: bucket.to_owned(),
            digest_s3_object: key.to_owned(),
            digest_public_key_fingerprint: fingerprint.to_owned(),
            digest_signature_algorithm: SIGNATURE_ALGORITHM.to_owned(),
            newest_event_time: log_files.iter().map(|l| l.newest_event_time.clone()).max(),
            oldest_event_time: log_files.iter().map(|l| l.oldest_event_time.clone()).min(),
            previous_digest_s3_bucket: previous.map(|p| p.bucket.clone()),
            previous_digest_s3_object: previous.map(|p| p.key.clone()),
            previous_digest_hash_value: previous.map(|p| p.hash.clone()),
            previous_digest_hash_algorithm: previous.map(|_| HASH_ALGORITHM.to_owned()),
            previous_digest_signature: previous.map(|p| p.signature.clone()),
            log_files,
        }
    }

    /// The exact bytes of the (uncompressed) digest file.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("digests serialize")
    }
}

/// What a digest's signature covers: its end time, its own location, the SHA-256 of its
/// uncompressed bytes and the previous digest's signature (`null` when it starts a chain).
pub fn string_to_sign(
    end_time: &str,
    bucket: &str,
    key: &str,
    digest_sha256_hex: &str,
    previous_signature: Option<&str>,
) -> String {
    format!(
        "{end_time}\n{bucket}/{key}\n{digest_sha256_hex}\n{}",
        previous_signature.unwrap_or("null")
    )
}

/// Lowercase hex SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes))
}

/// A public key's fingerprint as AWS computes it: lowercase hex MD5 of the DER-encoded
/// PKCS#1 `RSAPublicKey`.
pub fn fingerprint(public_key_der: &[u8]) -> String {
    use md5::Digest as _;
    hex::encode(md5::Md5::digest(public_key_der))
}

/// Whether `signature` (raw bytes) is a valid SHA256withRSA signature of `message` by the
/// key `public_key_der` (PKCS#1 `RSAPublicKey` DER). Malformed keys or signatures are
/// simply not valid.
pub fn verify(public_key_der: &[u8], message: &[u8], signature: &[u8]) -> bool {
    use aws_lc_rs::signature::{UnparsedPublicKey, RSA_PKCS1_2048_8192_SHA256};
    UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, public_key_der)
        .verify(message, signature)
        .is_ok()
}

/// Digest times, `YYYY-MM-DDTHH:MM:SSZ`.
pub fn format_time(epoch_seconds: i64) -> String {
    crate::timefmt::format_event_time(epoch_seconds)
}

/// Where a trail's digest for one source region and period goes:
/// `[prefix/]AWSLogs/[o-id/]<account>/CloudTrail-Digest/<region>/YYYY/MM/DD/<account>_CloudTrail-Digest_<region>_<trail>_<home region>_<YYYYMMDDTHHMMSSZ>.json.gz`,
/// dated by the digest's end time, to the second.
pub struct DigestKey<'a> {
    pub prefix: Option<&'a str>,
    pub organization: Option<&'a str>,
    pub account: &'a str,
    pub region: &'a str,
    pub trail_name: &'a str,
    pub home_region: &'a str,
    pub end_time: i64,
}

impl DigestKey<'_> {
    pub fn render(&self) -> String {
        let t = OffsetDateTime::from_unix_timestamp(self.end_time)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH);
        let (year, month, day) = (t.year(), u8::from(t.month()), t.day());
        let mut key = crate::layout::awslogs_root(self.prefix, self.organization);
        key.push_str(&format!(
            "{account}/CloudTrail-Digest/{region}/{year:04}/{month:02}/{day:02}/{account}_CloudTrail-Digest_{region}_{name}_{home}_{date}.json.gz",
            account = self.account,
            region = self.region,
            name = self.trail_name,
            home = self.home_region,
            date = crate::timefmt::format_compact(self.end_time),
        ));
        key
    }
}

/// A digest as a validator reads it: only what validation needs, so that digests with
/// fields this version does not know still validate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadDigest {
    pub start_time: String,
    pub end_time: String,
    pub bucket: String,
    pub key: String,
    pub fingerprint: String,
    pub previous_bucket: Option<String>,
    pub previous_key: Option<String>,
    pub previous_signature: Option<String>,
    pub logs: Vec<ListedLog>,
}

/// A log file a digest lists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListedLog {
    pub bucket: String,
    pub key: String,
    pub hash: String,
}

/// Why a digest file is not valid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DigestProblem {
    /// Not gzip, not JSON, or a required field missing.
    Format,
    /// No signature, or one that does not verify.
    Signature,
    /// Its bucket and key are not where it says it was delivered.
    Moved,
    /// Signed with a key the validator does not know.
    UnknownKey { fingerprint: String },
    /// The public key for its fingerprint cannot be read.
    BadKey { fingerprint: String },
}

impl DigestProblem {
    /// The AWS CLI's text for the problem, after `Digest file\ts3://bucket/key\tINVALID: `.
    pub fn message(&self, region: &str) -> String {
        match self {
            DigestProblem::Format => "invalid format".into(),
            DigestProblem::Signature => "signature verification failed".into(),
            DigestProblem::Moved => "has been moved from its original location".into(),
            DigestProblem::UnknownKey { fingerprint } => {
                format!("public key not found in region {region} for fingerprint {fingerprint}")
            }
            DigestProblem::BadKey { fingerprint } => {
                format!("Unable to load PKCS #1 key with fingerprint {fingerprint}")
            }
        }
    }
}

fn text_field(value: &serde_json::Value, name: &str) -> Option<String> {
    value.get(name)?.as_str().map(str::to_owned)
}

/// Reads a digest's (uncompressed) bytes: the fields the AWS CLI requires must be there.
pub fn read(json: &[u8]) -> Result<ReadDigest, DigestProblem> {
    let value: serde_json::Value =
        serde_json::from_slice(json).map_err(|_| DigestProblem::Format)?;
    let required = |name: &str| text_field(&value, name).ok_or(DigestProblem::Format);
    // previousDigestSignature must be present, and may be null.
    let previous_signature = match value.get("previousDigestSignature") {
        None => return Err(DigestProblem::Format),
        Some(v) => v.as_str().map(str::to_owned),
    };
    let logs = match value.get("logFiles") {
        None | Some(serde_json::Value::Null) => Vec::new(),
        Some(serde_json::Value::Array(logs)) => logs
            .iter()
            .map(|log| {
                Some(ListedLog {
                    bucket: text_field(log, "s3Bucket")?,
                    key: text_field(log, "s3Object")?,
                    hash: text_field(log, "hashValue")?,
                })
            })
            .collect::<Option<Vec<_>>>()
            .ok_or(DigestProblem::Format)?,
        Some(_) => return Err(DigestProblem::Format),
    };
    Ok(ReadDigest {
        start_time: required("digestStartTime")?,
        end_time: required("digestEndTime")?,
        bucket: required("digestS3Bucket")?,
        key: required("digestS3Object")?,
        fingerprint: required("digestPublicKeyFingerprint")?,
        previous_bucket: text_field(&value, "previousDigestS3Bucket"),
        previous_key: text_field(&value, "previousDigestS3Object"),
        previous_signature,
        logs,
    })
}

/// Checks a digest found at `bucket`/`key`, as [`read`] from `json`, as the AWS CLI does:
/// its location, its key, and its signature (hex, from the object's metadata).
pub fn check(
    json: &[u8],
    digest: ReadDigest,
    signature_hex: Option<&str>,
    bucket: &str,
    key: &str,
    public_key: impl Fn(&str) -> Option<Vec<u8>>,
) -> Result<ReadDigest, DigestProblem> {
    let signature = signature_hex
        .and_then(|s| hex::decode(s.trim()).ok())
        .ok_or(DigestProblem::Signature)?;
    if digest.bucket != bucket || digest.key != key {
        return Err(DigestProblem::Moved);
    }
    let der = public_key(&digest.fingerprint).ok_or_else(|| DigestProblem::UnknownKey {
        fingerprint: digest.fingerprint.clone(),
    })?;
    if aws_lc_rs::rsa::PublicKey::from_der(&der).is_err() {
        return Err(DigestProblem::BadKey {
            fingerprint: digest.fingerprint.clone(),
        });
    }
    let to_sign = string_to_sign(
        &digest.end_time,
        bucket,
        key,
        &sha256_hex(json),
        digest.previous_signature.as_deref(),
    );
    if !verify(&der, to_sign.as_bytes(), &signature) {
        return Err(DigestProblem::Signature);
    }
    Ok(digest)
}

/// Which digests belong to one trail's chain for one account and source region.
pub struct ChainPattern<'a> {
    pub prefix: Option<&'a str>,
    pub organization: Option<&'a str>,
    pub account: &'a str,
    pub region: &'a str,
    pub trail_name: &'a str,
    pub home_region: &'a str,
}

impl ChainPattern<'_> {
    /// The listing prefix: `[prefix/]AWSLogs/[o-id/]<account>/CloudTrail-Digest/<region>`.
    pub fn list_prefix(&self) -> String {
        let mut out = crate::layout::awslogs_root(self.prefix, self.organization);
        out.push_str(&format!(
            "{}/CloudTrail-Digest/{}",
            self.account, self.region
        ));
        out
    }

    /// The date (`YYYYMMDDTHHMMSSZ`) of a key of this chain, and whether it is a backfill
    /// digest; `None` for any other key. Follows the AWS CLI's key pattern.
    pub fn date_of<'k>(&self, key: &'k str) -> Option<(&'k str, bool)> {
        let rest = key.strip_prefix(&self.list_prefix())?.strip_prefix('/')?;
        let mut parts = rest.splitn(4, '/');
        for _ in 0..3 {
            let folder = parts.next()?;
            if folder.is_empty() || !folder.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
        }
        let name = parts.next()?;
        let head = format!(
            "{account}_CloudTrail-Digest_{region}_{name}_{home}_",
            account = self.account,
            region = self.region,
            name = self.trail_name,
            home = self.home_region
        );
        let tail = name.strip_prefix(&head)?.strip_suffix(".json.gz")?;
        let (date, backfill) = match tail.strip_suffix("_backfill") {
            Some(date) => (date, true),
            None => (tail, false),
        };
        (date.len() == 16 && !date.contains('/')).then_some((date, backfill))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_aws_layout_to_the_second() {
        let key = DigestKey {
            prefix: Some("audit/"),
            organization: None,
            account: "111122223333",
            region: "us-east-2",
            trail_name: "main",
            home_region: "us-east-1",
            end_time: 1_767_229_291, // 2026-01-01T01:01:31Z
        }
        .render();
        assert_eq!(
            key,
            "audit/AWSLogs/111122223333/CloudTrail-Digest/us-east-2/2026/01/01/111122223333_CloudTrail-Digest_us-east-2_main_us-east-1_20260101T010131Z.json.gz"
        );
        // The AWS CLI reads the date from these 16 characters.
        assert_eq!(&key[key.len() - 24..key.len() - 8], "20260101T010131Z");
        let org = DigestKey {
            prefix: None,
            organization: Some("o-abcdefghij"),
            ..DigestKey {
                prefix: None,
                organization: None,
                account: "444455556666",
                region: "eu-west-1",
                trail_name: "org",
                home_region: "us-east-1",
                end_time: 0,
            }
        }
        .render();
        assert!(org.starts_with("AWSLogs/o-abcdefghij/444455556666/CloudTrail-Digest/eu-west-1/1970/01/01/444455556666_CloudTrail-Digest_eu-west-1_org_us-east-1_19700101T000000Z"));
    }

    #[test]
    fn fields_are_written_in_aws_order_with_nulls_at_a_chain_start() {
        let digest = |logs, previous| {
            Digest::new("111122223333", (0, 3600), ("b", "k"), "f", logs, previous)
        };
        let text = String::from_utf8(digest(Vec::new(), None).to_bytes()).unwrap();
        assert_eq!(
            text,
            r#"{"awsAccountId":"111122223333","digestStartTime":"1970-01-01T00:00:00Z","digestEndTime":"1970-01-01T01:00:00Z","digestS3Bucket":"b","digestS3Object":"k","digestPublicKeyFingerprint":"f","digestSignatureAlgorithm":"SHA256withRSA","newestEventTime":null,"oldestEventTime":null,"previousDigestS3Bucket":null,"previousDigestS3Object":null,"previousDigestHashValue":null,"previousDigestHashAlgorithm":null,"previousDigestSignature":null,"logFiles":[]}"#
        );
        let log = |oldest: &str, newest: &str| DigestLog {
            s3_bucket: "b".into(),
            s3_object: "l".into(),
            hash_value: sha256_hex(b""),
            hash_algorithm: HASH_ALGORITHM.into(),
            newest_event_time: newest.into(),
            oldest_event_time: oldest.into(),
        };
        let logs = vec![
            log("2026-01-01T00:00:05Z", "2026-01-01T00:10:00Z"),
            log("2025-12-31T23:59:00Z", "2026-01-01T00:01:00Z"),
        ];
        let previous = Previous {
            bucket: "b".into(),
            key: "prev".into(),
            hash: "00".into(),
            signature: "ab".into(),
        };
        let linked = digest(logs, Some(&previous));
        assert_eq!(
            linked.oldest_event_time.as_deref(),
            Some("2025-12-31T23:59:00Z")
        );
        assert_eq!(
            linked.newest_event_time.as_deref(),
            Some("2026-01-01T00:10:00Z")
        );
        assert_eq!(
            linked.previous_digest_hash_algorithm.as_deref(),
            Some("SHA-256")
        );
        let back: Digest = serde_json::from_slice(&linked.to_bytes()).unwrap();
        assert_eq!(back, linked);
    }

    #[test]
    fn string_to_sign_and_hashes_match_the_aws_cli() {
        assert_eq!(
            string_to_sign("2026-01-01T01:00:00Z", "b", "k/d.json.gz", "aa", None),
            "2026-01-01T01:00:00Z\nb/k/d.json.gz\naa\nnull"
        );
        assert_eq!(
            string_to_sign("t", "b", "k", "aa", Some("ff")),
            "t\nb/k\naa\nff"
        );
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        // The key and fingerprint from the AWS CLI's list-public-keys example.
        let example = "MIIBCgKCAQEAlSS3cl92HDycr/MTj0moOhas8habjrraXw+KzlWF0axSI2tcF+3iJ9BKQAVSKxGwxwu3m0wG3J+kUl1xboEcEPHYoIYMbgfSw7KGnuDKwkLzsQWhUJ0cIbOHASox1vv/5fNXkrHhGbDCHeVXm804c83nvHUEFYThr1PfyP/8HwrCtR3FX5OANtQCP61C1nJtSSkC8JSQUOrIP4CuwJjc+4WGDk+BGH5m9iuiAKkipEHWmUl8/P7XpfpWQuk4h8g3pXZOrNXr08lbh4d39svj7UqdhvOXoBISp9t/EXYuePGEtBdrKD9Dz+VHwyUPtBQvYr9BnkF88qBnaPNhS44rzwIDAQAB";
        use base64::Engine as _;
        let der = base64::engine::general_purpose::STANDARD
            .decode(example)
            .unwrap();
        assert_eq!(der.len(), 270);
        assert_eq!(fingerprint(&der), "7f3f401420072e50a65a141430817ab3");
    }

    #[test]
    fn malformed_keys_and_signatures_do_not_verify() {
        assert!(!verify(b"", b"message", b""));
        assert!(!verify(&[0x30, 0x03, 0x02, 0x01, 0x01], b"m", &[0; 256]));
    }
}
