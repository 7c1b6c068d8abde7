//! Digest chains. For a trail with log file validation, each account and source region
//! whose logs the trail delivers has a chain: the log files delivered in the open period
//! (by delivery time) and a link to the chain's previous digest. When the period ends,
//! its digest is built, signed and spooled, and the next period starts where it ended.
//! A chain ends with a final digest when logging stops (once everything before the stop
//! is delivered), when the trail is deleted, or when validation is switched off; the next
//! chain starts afresh, with null `previousDigest*` fields.
//!
//! A trail has at most one chain per account and region at a time, so that chains never
//! overlap in time: the AWS CLI's validator walks a region's digests newest first and
//! would skip a digest dated inside another chain.

use cairn_core::digest::{
    format_time, sha256_hex, string_to_sign, Digest, DigestKey, DigestLog, Previous, HASH_ALGORITHM,
};
use serde::{Deserialize, Serialize};

use crate::keys::Signer;
use crate::trails::Trail;

/// A run of a trail's logging with validation on. A new StartLogging, or validation
/// switched off and on again, makes a new generation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Generation {
    /// The journal position of the StartLogging that began the run.
    pub logging_since: u64,
    pub validation_epoch: u64,
}

impl Generation {
    /// The trail's current generation; `None` when it does not validate or never logged.
    pub fn of(trail: &Trail) -> Option<Generation> {
        if !trail.validation {
            return None;
        }
        trail.logging.last().map(|period| Generation {
            logging_since: period.start_seq,
            validation_epoch: trail.validation_epoch,
        })
    }
}

/// What a delivered log file adds to its trail's digest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DigestEntry {
    pub generation: Generation,
    pub account: String,
    /// Lowercase hex SHA-256 of the uncompressed file.
    pub sha256: String,
    pub oldest: i64,
    pub newest: i64,
}

/// One chain: a trail's digests for one account and source region.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Chain {
    pub trail_arn: String,
    pub account: String,
    pub region: String,
    pub generation: Generation,
    /// The open period's start, epoch seconds.
    pub start: i64,
    /// Log files delivered in the open period.
    pub logs: Vec<DigestLog>,
    pub previous: Option<Previous>,
}

pub fn chain_id(trail_arn: &str, account: &str, region: &str) -> String {
    format!("{trail_arn}|{account}|{region}")
}

impl Chain {
    pub fn new(
        trail_arn: &str,
        account: &str,
        region: &str,
        generation: Generation,
        start: i64,
    ) -> Chain {
        Chain {
            trail_arn: trail_arn.to_owned(),
            account: account.to_owned(),
            region: region.to_owned(),
            generation,
            start,
            logs: Vec::new(),
            previous: None,
        }
    }

    pub fn add(&mut self, bucket: &str, key: &str, entry: &DigestEntry) {
        self.logs.push(DigestLog {
            s3_bucket: bucket.to_owned(),
            s3_object: key.to_owned(),
            hash_value: entry.sha256.clone(),
            hash_algorithm: HASH_ALGORITHM.to_owned(),
            newest_event_time: format_time(entry.newest),
            oldest_event_time: format_time(entry.oldest),
        });
    }
}

/// Where a trail's digests go, as the trail is now.
pub struct Target<'a> {
    pub trail: &'a Trail,
    pub organization: Option<&'a str>,
}

/// A signed digest, ready for its bucket.
pub struct SignedDigest {
    pub bucket: String,
    pub key: String,
    /// The uncompressed file.
    pub json: Vec<u8>,
    pub signature: String,
}

/// Builds and signs the digest that closes `chain`'s open period at `end`, and moves the
/// chain on to the next period, linked to this digest.
pub fn close(
    chain: &mut Chain,
    target: &Target<'_>,
    end: i64,
    signer: &Signer,
) -> Result<SignedDigest, String> {
    let trail = target.trail;
    let key = DigestKey {
        prefix: trail.prefix.as_deref(),
        organization: target.organization,
        account: &chain.account,
        region: &chain.region,
        trail_name: &trail.name,
        home_region: &trail.home_region,
        end_time: end,
    }
    .render();
    let digest = Digest::new(
        &chain.account,
        (chain.start, end),
        (&trail.bucket, &key),
        &signer.public().fingerprint,
        std::mem::take(&mut chain.logs),
        chain.previous.as_ref(),
    );
    let json = digest.to_bytes();
    let hash = sha256_hex(&json);
    let to_sign = string_to_sign(
        &digest.digest_end_time,
        &trail.bucket,
        &key,
        &hash,
        chain.previous.as_ref().map(|p| p.signature.as_str()),
    );
    let signature = match signer.sign(to_sign.as_bytes()) {
        Ok(signature) => signature,
        Err(error) => {
            chain.logs = digest.log_files;
            return Err(error);
        }
    };
    chain.previous = Some(Previous {
        bucket: trail.bucket.clone(),
        key: key.clone(),
        hash,
        signature: signature.clone(),
    });
    chain.start = end;
    Ok(SignedDigest {
        bucket: trail.bucket.clone(),
        key,
        json,
        signature,
    })
}

/// What becomes of a chain in this pass.
#[derive(Debug, PartialEq, Eq)]
pub enum Fate {
    /// Its period is still open.
    Wait,
    /// Its period is over: a digest, and the chain goes on.
    Period { end: i64 },
    /// The chain is over: a final digest.
    Final { end: i64 },
}

/// Decides a chain's fate. `live` is the trail as it is now (`None` once deleted),
/// `retired` the deleted trail while delivery still works on it, and `cursor` the journal
/// position below which everything has been delivered.
pub fn fate(
    chain: &Chain,
    live: Option<&Trail>,
    retired: Option<&Trail>,
    cursor: u64,
    now: i64,
    period: i64,
) -> Fate {
    let final_end = now.max(chain.start + 1);
    let delivered = |trail: &Trail| {
        trail
            .logging
            .iter()
            .find(|p| p.start_seq == chain.generation.logging_since)
            .is_none_or(|p| p.stop_seq.is_some_and(|stop| stop < cursor))
    };
    let over = match (live, retired) {
        // Logging stopped (or restarted): the final digest waits for the last records
        // before the stop.
        (Some(trail), _) => {
            let running = trail
                .logging
                .iter()
                .any(|p| p.start_seq == chain.generation.logging_since && p.stop_seq.is_none());
            if running {
                Generation::of(trail) != Some(chain.generation)
            } else {
                delivered(trail)
            }
        }
        (None, Some(trail)) => delivered(trail),
        (None, None) => true,
    };
    if over {
        return Fate::Final { end: final_end };
    }
    let due = chain.start + period;
    if now < due {
        Fate::Wait
    } else if now >= due + period {
        // Far behind (the service was down): one digest covers the gap.
        Fate::Period { end: now }
    } else {
        Fate::Period { end: due }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trails::Period;

    fn trail(validation: bool, logging: Vec<Period>) -> Trail {
        Trail {
            validation,
            logging,
            ..Trail::new("111122223333", "us-east-1", "t", "b")
        }
    }

    fn period(start_seq: u64, stop_seq: Option<u64>) -> Period {
        Period {
            start_seq,
            start_time: 0,
            stop_seq,
            stop_time: stop_seq.map(|_| 0),
        }
    }

    fn chain(since: u64) -> Chain {
        Chain::new(
            "arn",
            "111122223333",
            "us-east-1",
            Generation {
                logging_since: since,
                validation_epoch: 0,
            },
            1000,
        )
    }

    #[test]
    fn closing_signs_over_aws_string_and_links_the_next_digest() {
        let dir = tempfile::tempdir().unwrap();
        let meta = cairn_store::MetaStore::open(&dir.path().join("meta")).unwrap();
        let keys = crate::keys::Keys::new(dir.path(), 30 * 86_400);
        let signer = keys.signer(&meta, "us-east-1", 1000).unwrap();
        let t = Trail {
            prefix: Some("p".into()),
            ..trail(true, vec![period(5, None)])
        };
        let target = Target {
            trail: &t,
            organization: None,
        };
        let mut c = chain(5);
        let entry = DigestEntry {
            generation: c.generation,
            account: c.account.clone(),
            sha256: cairn_core::digest::sha256_hex(b"{}"),
            oldest: 900,
            newest: 950,
        };
        c.add(
            "b",
            "p/AWSLogs/111122223333/CloudTrail/us-east-1/x.json.gz",
            &entry,
        );
        let first = close(&mut c, &target, 4600, &signer).unwrap();
        assert!(first.key.starts_with("p/AWSLogs/111122223333/CloudTrail-Digest/us-east-1/1970/01/01/111122223333_CloudTrail-Digest_us-east-1_t_us-east-1_19700101T011640Z"));
        let digest: Digest = serde_json::from_slice(&first.json).unwrap();
        assert_eq!(digest.log_files.len(), 1);
        assert_eq!(
            digest.oldest_event_time.as_deref(),
            Some("1970-01-01T00:15:00Z")
        );
        assert_eq!(digest.previous_digest_signature, None);
        let to_sign = string_to_sign(
            &digest.digest_end_time,
            "b",
            &first.key,
            &sha256_hex(&first.json),
            None,
        );
        let raw = hex::decode(&first.signature).unwrap();
        assert!(cairn_core::digest::verify(
            &signer.public().der,
            to_sign.as_bytes(),
            &raw
        ));
        // The next period starts at the end, empty, linked to the first digest.
        assert_eq!((c.start, c.logs.len()), (4600, 0));
        let second = close(&mut c, &target, 8200, &signer).unwrap();
        let digest: Digest = serde_json::from_slice(&second.json).unwrap();
        assert_eq!(digest.digest_start_time, "1970-01-01T01:16:40Z");
        assert_eq!(
            digest.previous_digest_s3_object.as_deref(),
            Some(first.key.as_str())
        );
        assert_eq!(
            digest.previous_digest_hash_value,
            Some(sha256_hex(&first.json))
        );
        assert_eq!(digest.previous_digest_signature, Some(first.signature));
        assert_eq!(
            (digest.oldest_event_time, digest.newest_event_time),
            (None, None)
        );
    }

    #[test]
    fn chains_roll_each_period_and_end_when_logging_or_validation_stops() {
        let c = chain(5);
        let running = trail(true, vec![period(5, None)]);
        assert_eq!(fate(&c, Some(&running), None, 10, 1500, 3600), Fate::Wait);
        assert_eq!(
            fate(&c, Some(&running), None, 10, 4600, 3600),
            Fate::Period { end: 4600 }
        );
        assert_eq!(
            fate(&c, Some(&running), None, 10, 9000, 3600),
            Fate::Period { end: 9000 }
        );
        // Stopped at 20: the final digest waits until delivery is past the stop.
        let stopped = trail(true, vec![period(5, Some(20))]);
        assert_eq!(fate(&c, Some(&stopped), None, 20, 1500, 3600), Fate::Wait);
        assert_eq!(
            fate(&c, Some(&stopped), None, 21, 1500, 3600),
            Fate::Final { end: 1500 }
        );
        // Restarted: the old run still ends once delivered.
        let restarted = trail(true, vec![period(5, Some(20)), period(30, None)]);
        assert_eq!(
            fate(&c, Some(&restarted), None, 21, 1000, 3600),
            Fate::Final { end: 1001 }
        );
        // Validation switched off, or off and on again.
        let off = trail(false, vec![period(5, None)]);
        assert!(matches!(
            fate(&c, Some(&off), None, 10, 1500, 3600),
            Fate::Final { .. }
        ));
        let mut again = trail(true, vec![period(5, None)]);
        again.validation_epoch = 1;
        assert!(matches!(
            fate(&c, Some(&again), None, 10, 1500, 3600),
            Fate::Final { .. }
        ));
        // Deleted: final once its records are delivered; forgotten trails end too.
        let deleted = trail(true, vec![period(5, Some(40))]);
        assert_eq!(fate(&c, None, Some(&deleted), 30, 1500, 3600), Fate::Wait);
        assert!(matches!(
            fate(&c, None, Some(&deleted), 41, 1500, 3600),
            Fate::Final { .. }
        ));
        assert!(matches!(
            fate(&c, None, None, 0, 1500, 3600),
            Fate::Final { .. }
        ));
    }
}
