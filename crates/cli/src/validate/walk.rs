//! Walking a trail's digest chain the way the AWS CLI does: from the newest digest in the
//! range back along `previousDigest*` links, checking each digest, reporting gaps where a
//! chain starts, and collecting the log files the valid digests list. Digest files are
//! fetched in parallel before the walk; log files are checked in parallel after it.

use std::collections::HashMap;
use std::sync::Arc;

use cairn_core::digest::{self, ChainPattern, ListedLog, ReadDigest};
use cairn_core::timefmt::{format_compact, parse_compact};
use cairn_server::buckets::{Buckets, Metadata};

/// What a digest fetch found.
pub enum Fetched {
    Missing,
    Found(Vec<u8>, Metadata),
    Failed(String),
}

/// Where the bucket's objects are read from: S3, or a local copy of one bucket.
pub struct Source {
    pub buckets: Buckets,
    /// For a local copy: (the bucket it is a copy of, its directory name under the root).
    pub local: Option<(String, String)>,
}

impl Source {
    fn physical<'a>(&'a self, bucket: &'a str) -> Option<&'a str> {
        match &self.local {
            Some((name, dir)) => (name == bucket).then_some(dir.as_str()),
            None => Some(bucket),
        }
    }

    pub async fn list(&self, bucket: &str, prefix: &str) -> anyhow::Result<Vec<String>> {
        let Some(physical) = self.physical(bucket) else {
            return Ok(Vec::new());
        };
        let mut keys = self
            .buckets
            .list(physical, prefix)
            .await
            .map_err(|e| anyhow::anyhow!("listing s3://{bucket}/{prefix}: {e}"))?;
        keys.sort();
        Ok(keys)
    }

    pub async fn get(&self, bucket: &str, key: &str) -> Fetched {
        let Some(physical) = self.physical(bucket) else {
            return Fetched::Missing;
        };
        match self.buckets.get_with_metadata(physical, key).await {
            Ok(Some((bytes, metadata))) => Fetched::Found(bytes, metadata),
            Ok(None) => Fetched::Missing,
            Err(e) if e.code == "NoSuchBucket" => Fetched::Missing,
            Err(e) => Fetched::Failed(e.to_string()),
        }
    }
}

/// One finding, in the order the walk made it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Finding {
    DigestValid {
        bucket: String,
        key: String,
        backfill: bool,
        /// How many log files it lists: the next ones in the walk's `logs`.
        logs: usize,
    },
    DigestInvalid {
        bucket: String,
        key: String,
        message: String,
        backfill: bool,
    },
    /// A chain starts here while older digests exist: nothing was digested in between.
    Gap { from: i64, to: i64, backfill: bool },
}

/// The outcome of walking one chain.
#[derive(Default)]
pub struct Walked {
    pub findings: Vec<Finding>,
    /// Logs listed by valid digests, to be checked.
    pub logs: Vec<ListedLog>,
    /// Every log any readable digest lists (valid or not): for the unlisted-files check.
    pub listed: Vec<ListedLog>,
    /// The earliest start and latest end of the valid digests.
    pub found: Option<(i64, i64)>,
}

/// The largest digest file read (a digest lists a few thousand log files at most).
const MAX_DIGEST_BYTES: u64 = 256 << 20;

/// Gunzips a digest file. Anything that is not gzip, or is implausibly large, is an
/// invalid format.
fn inflate(bytes: &[u8]) -> Option<Vec<u8>> {
    use std::io::Read;
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .take(MAX_DIGEST_BYTES + 1)
        .read_to_end(&mut out)
        .ok()?;
    (out.len() as u64 <= MAX_DIGEST_BYTES).then_some(out)
}

/// The digest keys of a chain in `[start, end + 1 h]`, as the AWS CLI chooses them:
/// (standard, backfill), oldest first.
pub fn in_range(
    keys: &[String],
    pattern: &ChainPattern<'_>,
    start: i64,
    end: i64,
) -> (Vec<String>, Vec<String>) {
    let from = format_compact(start);
    let to = format_compact(end + 3600);
    let (mut standard, mut backfill) = (Vec::new(), Vec::new());
    for key in keys {
        let Some((date, is_backfill)) = pattern.date_of(key) else {
            continue;
        };
        if date < from.as_str() || date > to.as_str() {
            continue;
        }
        if is_backfill {
            backfill.push(key.clone());
        } else {
            standard.push(key.clone());
        }
    }
    (standard, backfill)
}

fn date_of_key(pattern: &ChainPattern<'_>, key: &str) -> i64 {
    pattern
        .date_of(key)
        .and_then(|(d, _)| parse_compact(d))
        .unwrap_or(0)
}

/// Fetches every digest in `keys` at once, up to `jobs` at a time.
pub async fn prefetch(
    source: &Arc<Source>,
    bucket: &str,
    keys: &[String],
    jobs: usize,
) -> HashMap<String, Fetched> {
    use futures_util::StreamExt;
    futures_util::stream::iter(keys.iter().cloned())
        .map(|key| {
            let source = source.clone();
            let bucket = bucket.to_owned();
            async move {
                let fetched = source.get(&bucket, &key).await;
                (key, fetched)
            }
        })
        .buffer_unordered(jobs.max(1))
        .collect()
        .await
}

/// Walks one chain (standard or backfill digests of one account and region).
#[allow(clippy::too_many_arguments)]
pub async fn walk(
    source: &Source,
    pattern: &ChainPattern<'_>,
    bucket: &str,
    mut keys: Vec<String>,
    mut fetched: HashMap<String, Fetched>,
    public_keys: &HashMap<String, Vec<u8>>,
    start: i64,
    backfill: bool,
    home_region: &str,
) -> Walked {
    let mut walked = Walked::default();
    let Some(mut key) = keys.pop() else {
        return walked;
    };
    let mut bucket = bucket.to_owned();
    let mut last_start = date_of_key(pattern, &key);
    // A digest's signature as the newer digest linking to it recorded it: for local copies
    // that lost the objects' metadata.
    let mut linked_signature: Option<String> = None;
    loop {
        if start > last_start {
            // The digest before the range: its logs are not validated, but they are known
            // to be listed (log files delivered just before the range are not unlisted).
            if let Fetched::Found(bytes, _) = source.get(&bucket, &key).await {
                if let Some(read) = inflate(&bytes).and_then(|json| digest::read(&json).ok()) {
                    walked.listed.extend(read.logs);
                }
            }
            break;
        }
        let found = match fetched.remove(&key) {
            Some(found) => found,
            None => source.get(&bucket, &key).await,
        };
        let checked = match found {
            Fetched::Missing => Err("not found".to_owned()),
            Fetched::Failed(error) => Err(error),
            Fetched::Found(bytes, metadata) => match inflate(&bytes) {
                None => Err(digest::DigestProblem::Format.message(home_region)),
                Some(json) => {
                    let read = digest::read(&json);
                    if let Ok(read) = &read {
                        walked.listed.extend(read.logs.iter().cloned());
                    }
                    // As the AWS CLI: the signature and its algorithm must both be in the
                    // metadata. A local copy that lost it falls back on the newer digest's link.
                    let from_metadata = metadata
                        .get("signature")
                        .filter(|_| metadata.contains_key("signature-algorithm"))
                        .cloned();
                    let linked = linked_signature.take().filter(|_| source.local.is_some());
                    let signature = from_metadata.or(linked);
                    read.and_then(|read| {
                        digest::check(&json, read, signature.as_deref(), &bucket, &key, |fp| {
                            public_keys.get(fp).cloned()
                        })
                    })
                    .map_err(|problem| problem.message(home_region))
                }
            },
        };
        let next = match checked {
            Err(message) => {
                walked.findings.push(Finding::DigestInvalid {
                    bucket: bucket.clone(),
                    key: key.clone(),
                    message,
                    backfill,
                });
                linked_signature = None;
                next_older(&mut keys, pattern, &key)
            }
            Ok(read) => {
                walked.findings.push(Finding::DigestValid {
                    bucket: bucket.clone(),
                    key: key.clone(),
                    backfill,
                    logs: read.logs.len(),
                });
                note_found(&mut walked, &read);
                last_start = cairn_core::timefmt::parse_event_time(&read.start_time).unwrap_or(0);
                walked.logs.extend(read.logs.iter().cloned());
                match (read.previous_bucket, read.previous_key) {
                    (Some(previous_bucket), Some(previous_key)) => {
                        linked_signature = read.previous_signature;
                        bucket = previous_bucket;
                        Some(previous_key)
                    }
                    _ => {
                        linked_signature = None;
                        let next = next_older(&mut keys, pattern, &key);
                        if let Some(older) = &next {
                            walked.findings.push(Finding::Gap {
                                from: date_of_key(pattern, older),
                                to: last_start,
                                backfill,
                            });
                        }
                        next
                    }
                }
            }
        };
        match next {
            Some(next) => key = next,
            None => break,
        }
    }
    walked
}

fn note_found(walked: &mut Walked, read: &ReadDigest) {
    let parse = |t: &str| cairn_core::timefmt::parse_event_time(t).unwrap_or(0);
    let (start, end) = (parse(&read.start_time), parse(&read.end_time));
    walked.found = Some(match walked.found {
        None => (start, end),
        Some((s, e)) => (s.min(start), e.max(end)),
    });
}

/// The newest remaining key dated before `before` (the AWS CLI's rule for moving on past
/// a missing or invalid digest, or a chain's start).
fn next_older(keys: &mut Vec<String>, pattern: &ChainPattern<'_>, before: &str) -> Option<String> {
    let limit = date_of_key(pattern, before);
    while let Some(key) = keys.pop() {
        if date_of_key(pattern, &key) < limit {
            return Some(key);
        }
    }
    None
}

/// Why a log file is not valid, in the AWS CLI's words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LogProblem {
    Missing,
    Hash,
    Format,
    Failed(String),
}

impl LogProblem {
    pub fn message(&self) -> String {
        match self {
            LogProblem::Missing => "not found".into(),
            LogProblem::Hash => "hash value doesn't match".into(),
            LogProblem::Format => "invalid format".into(),
            LogProblem::Failed(error) => error.clone(),
        }
    }
}

/// SHA-256 (lowercase hex) of a gzip file's inflated bytes, streamed, and their length.
pub fn inflated_sha256(gzip: &[u8]) -> Option<(String, u64)> {
    use std::io::Read;
    let mut decoder = flate2::read::GzDecoder::new(gzip);
    let mut context = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    let mut buffer = vec![0u8; 256 << 10];
    let mut length = 0;
    loop {
        match decoder.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => {
                context.update(&buffer[..n]);
                length += n as u64;
            }
            Err(_) => return None,
        }
    }
    Some((hex::encode(context.finish()), length))
}

/// Checks one log file against the hash its digest lists; returns its inflated size.
pub async fn check_log(source: &Source, log: &ListedLog) -> Result<u64, LogProblem> {
    match source.get(&log.bucket, &log.key).await {
        Fetched::Missing => Err(LogProblem::Missing),
        Fetched::Failed(error) => Err(LogProblem::Failed(error)),
        Fetched::Found(bytes, _) => {
            let hash = log.hash.clone();
            let computed = tokio::task::spawn_blocking(move || inflated_sha256(&bytes))
                .await
                .map_err(|e| LogProblem::Failed(e.to_string()))?;
            match computed {
                None => Err(LogProblem::Format),
                Some((h, size)) if h == hash => Ok(size),
                Some(_) => Err(LogProblem::Hash),
            }
        }
    }
}
