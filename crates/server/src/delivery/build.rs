//! Building a delivery: which trails receive which events of a journal range, and the
//! gzip log files that carry them. Everything here is a pure function of the journal range
//! and the plan's trails, so building a plan again gives the same keys and the same bytes.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;

use cairn_core::layout::{unique_suffix, FileKey, FileKind};
use cairn_core::route::RouteFields;
use cairn_core::Category;
use serde::{Deserialize, Serialize};

use super::digests::{DigestEntry, Generation};
use crate::tasks::JournalEvent;
use crate::trails::Trail;

/// A trail as a delivery plan sees it: its settings at planning time, and, for an
/// organization trail, its organization.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedTrail {
    pub trail: Trail,
    pub organization_id: Option<String>,
    /// Accounts whose events an organization trail receives (its own included).
    pub members: Vec<String>,
}

impl PlannedTrail {
    /// Whether this trail receives the event recorded at `seq`, as AWS routes: the
    /// trail's account (or organization), its region (or every region), global-service
    /// events only where included, and its selectors; an Insights event where the trail
    /// asked for its type.
    pub fn receives(&self, seq: u64, event: &RouteFields) -> bool {
        let t = &self.trail;
        if !t.logging_at(seq) || !self.covers(&event.account, &event.region, &event.event_source) {
            return false;
        }
        match event.category {
            Category::Insight => event
                .insight_type
                .as_deref()
                .is_some_and(|kind| t.wants_insights(kind)),
            _ => t.selectors.selects(event),
        }
    }

    /// Whether events of `account` in `region` from `event_source` are the trail's: its
    /// account (or organization), its region (or every region), and global-service
    /// events only where included.
    pub fn covers(&self, account: &str, region: &str, event_source: &str) -> bool {
        let t = &self.trail;
        let account_ok = account == t.account
            || (self.organization_id.is_some() && self.members.iter().any(|m| m == account));
        if !account_ok {
            return false;
        }
        if cairn_core::route::is_global_service(event_source, region) {
            t.include_global && (t.multi_region || t.home_region == "us-east-1")
        } else {
            t.multi_region || region == t.home_region
        }
    }
}

/// One log file, ready to upload.
#[derive(Clone, Debug)]
pub struct LogFile {
    pub trail_arn: String,
    /// The trail's SNS topic (name, ARN), for the delivery notification.
    pub topic: Option<(String, String)>,
    pub region: String,
    pub bucket: String,
    pub key: String,
    pub gzip: std::sync::Arc<Vec<u8>>,
    pub records: usize,
    /// For a trail with log file validation: what the file adds to its digest.
    pub digest: Option<DigestEntry>,
}

/// Gzip at the fastest level: delivery compresses every byte the service receives.
const LEVEL: flate2::Compression = flate2::Compression::fast();

/// Gzip, as log files are (digest files are compressed here).
pub fn compress(json: &[u8]) -> Vec<u8> {
    let mut gzip = Gzip::new(json.len());
    gzip.write(json);
    gzip.finish()
}

/// The gzip header of every file delivered: no name, no time, "fastest" level (LEVEL),
/// unknown system.
const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 4, 255];

/// A gzip file written in memory: raw deflate between the header and a trailer of the
/// CRC-32 (crc32fast) and length of what was written.
struct Gzip {
    deflate: flate2::write::DeflateEncoder<Vec<u8>>,
    crc: crc32fast::Hasher,
    len: usize,
}

impl Gzip {
    /// A file of about `expected` bytes before compression.
    fn new(expected: usize) -> Gzip {
        let mut out = Vec::with_capacity(expected / 6);
        out.extend_from_slice(&GZIP_HEADER);
        Gzip {
            deflate: flate2::write::DeflateEncoder::new(out, LEVEL),
            crc: crc32fast::Hasher::new(),
            len: 0,
        }
    }

    fn write(&mut self, bytes: &[u8]) {
        self.deflate.write_all(bytes).expect("writing to memory");
        self.crc.update(bytes);
        self.len += bytes.len();
    }

    fn finish(self) -> Vec<u8> {
        let mut out = self.deflate.finish().expect("writing to memory");
        out.extend_from_slice(&self.crc.finalize().to_le_bytes());
        out.extend_from_slice(&(self.len as u32).to_le_bytes());
        out
    }
}

/// One packed and compressed log file, and what its digest entry needs.
#[derive(Clone)]
struct Packed {
    gzip: std::sync::Arc<Vec<u8>>,
    records: usize,
    /// SHA-256 of the uncompressed file, when a trail validates.
    sha256: Option<String>,
    oldest: i64,
    newest: i64,
}

/// `{"Records":[`, which opens every log file.
const OPENING: &[u8] = b"{\"Records\":[";
/// JSON handed to the compressor and the hashes at once: the compressor does work per
/// call (it clears its output space), so it gets large pieces, not single records.
const CHUNK: usize = 256 << 10;

/// A log file being written: its JSON is compressed and hashed as it is appended, so a
/// file of many megabytes is never held uncompressed.
struct Packing {
    gzip: Gzip,
    pending: Vec<u8>,
    sha256: Option<aws_lc_rs::digest::Context>,
    records: usize,
    oldest: i64,
    newest: i64,
}

impl Packing {
    /// A file expected to hold about `json_bytes` of JSON.
    fn new(hashing: bool, json_bytes: usize) -> Packing {
        let mut packing = Packing {
            gzip: Gzip::new(json_bytes),
            pending: Vec::with_capacity(CHUNK + (64 << 10)),
            sha256: hashing.then(|| aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256)),
            records: 0,
            oldest: i64::MAX,
            newest: i64::MIN,
        };
        packing.write(OPENING);
        packing
    }

    fn write(&mut self, bytes: &[u8]) {
        self.pending.extend_from_slice(bytes);
        if self.pending.len() >= CHUNK {
            self.flush();
        }
    }

    fn flush(&mut self) {
        self.gzip.write(&self.pending);
        if let Some(sha256) = &mut self.sha256 {
            sha256.update(&self.pending);
        }
        self.pending.clear();
    }

    fn push(&mut self, record: &[u8], time: i64) {
        if self.records > 0 {
            self.write(b",");
        }
        self.write(record);
        self.records += 1;
        self.oldest = self.oldest.min(time);
        self.newest = self.newest.max(time);
    }

    fn finish(mut self) -> Packed {
        self.write(b"]}");
        self.flush();
        Packed {
            gzip: std::sync::Arc::new(self.gzip.finish()),
            records: self.records,
            sha256: self.sha256.map(|sha256| hex::encode(sha256.finish())),
            oldest: self.oldest,
            newest: self.newest,
        }
    }
}

/// How many records each `{"Records":[…]}` file takes, in order, so that a file's JSON
/// stays within `max_bytes` (at least one record each): a record starts the next file if
/// this one would pass the cap with it and the closing "]}" (its comma uncounted, as
/// files were always split).
fn split(lengths: impl Iterator<Item = usize>, max_bytes: usize) -> Vec<usize> {
    let mut counts = Vec::new();
    let (mut count, mut json_bytes) = (0, OPENING.len());
    for length in lengths {
        if count > 0 && json_bytes + length + 2 > max_bytes {
            counts.push(std::mem::take(&mut count));
            json_bytes = OPENING.len();
        }
        json_bytes += usize::from(count > 0) + length;
        count += 1;
    }
    if count > 0 {
        counts.push(count);
    }
    counts
}

/// One log file of records given with their eventTimes.
fn pack<'a>(records: impl Iterator<Item = (&'a [u8], i64)> + Clone, hashing: bool) -> Packed {
    let json_bytes = records.clone().map(|(record, _)| record.len() + 1).sum();
    let mut packing = Packing::new(hashing, json_bytes);
    for (record, time) in records {
        packing.push(record, time);
    }
    packing.finish()
}

/// `work` applied to every item, on as many threads as there are cores (compressing is
/// most of a delivery's work, and its files are independent); results in item order.
fn in_parallel<T: Sync, R: Send>(items: &[T], work: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(items.len());
    if threads <= 1 {
        return items.iter().map(work).collect();
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: Vec<std::sync::Mutex<Option<R>>> =
        items.iter().map(|_| std::sync::Mutex::new(None)).collect();
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(item) = items.get(i) else { break };
                *results[i].lock().expect("result slot") = Some(work(item));
            });
        }
    });
    results
        .into_iter()
        .map(|slot| {
            slot.into_inner()
                .expect("result slot")
                .expect("every item was worked on")
        })
        .collect()
}

/// The events of one journal range, as read.
pub struct Range {
    pub from: u64,
    pub to: u64,
    pub events: Vec<JournalEvent>,
}

/// Routes the range's events to the trails and builds their files. Trails that receive
/// the same events of the same account and region share one compression.
pub fn build(
    range: &Range,
    trails: &[PlannedTrail],
    time: i64,
    max_file_bytes: usize,
) -> Vec<LogFile> {
    // (trail index, account, region, kind) → indexes of the events it receives, in order.
    let mut groups: BTreeMap<(usize, String, String, FileKind), Vec<usize>> = BTreeMap::new();
    let mut times = vec![0; range.events.len()];
    let hashing = trails.iter().any(|t| t.trail.validation);
    for (index, journal_event) in range.events.iter().enumerate() {
        let seq = journal_event.seq;
        if !trails.iter().any(|t| t.trail.logging_at(seq)) {
            continue;
        }
        let Ok(event) = journal_event.route_fields() else {
            tracing::error!(
                seq,
                "journal record has unreadable routing fields; not delivered"
            );
            continue;
        };
        times[index] = event.event_time;
        let kind = match event.category {
            Category::Insight => FileKind::Insight,
            _ => FileKind::Log,
        };
        for (t, trail) in trails.iter().enumerate() {
            if trail.receives(seq, &event) {
                groups
                    .entry((t, event.account.clone(), event.region.clone(), kind))
                    .or_default()
                    .push(index);
            }
        }
    }
    // Trails receiving the same events of the same account and region share their files'
    // compression: each distinct list of events is packed once.
    let mut lists: HashMap<(&str, &str, &[usize]), usize> = HashMap::new();
    let mut list_of_group = Vec::with_capacity(groups.len());
    for ((_, account, region, _), indexes) in &groups {
        let next = lists.len();
        list_of_group.push(
            *lists
                .entry((account.as_str(), region.as_str(), indexes.as_slice()))
                .or_insert(next),
        );
    }
    let mut distinct: Vec<&[usize]> = vec![&[]; lists.len()];
    for ((_, _, indexes), list) in &lists {
        distinct[*list] = indexes;
    }
    // Every file of every list: (list, its records' indexes).
    let mut units: Vec<(usize, &[usize])> = Vec::new();
    for (list, indexes) in distinct.iter().enumerate() {
        let mut rest: &[usize] = indexes;
        let lengths = indexes.iter().map(|&i| range.events[i].record.len());
        for count in split(lengths, max_file_bytes) {
            let (file, after) = rest.split_at(count);
            units.push((list, file));
            rest = after;
        }
    }
    let packed = in_parallel(&units, |(_, indexes)| {
        let records = indexes
            .iter()
            .map(|&i| (range.events[i].record.as_slice(), times[i]));
        pack(records, hashing)
    });
    let mut parts_of_list: Vec<Vec<Packed>> = vec![Vec::new(); distinct.len()];
    for ((list, _), packed) in units.iter().zip(packed) {
        parts_of_list[*list].push(packed);
    }

    let mut files = Vec::new();
    for (((t, account, region, kind), _), list) in groups.iter().zip(list_of_group) {
        let (t, kind) = (*t, *kind);
        let planned = &trails[t];
        let trail = &planned.trail;
        let parts = parts_of_list[list].clone();
        let generation = Generation::of(trail);
        // Log files keep the seed they always had, so a plan saved by an earlier version
        // builds the same keys.
        let suffix = match kind {
            FileKind::Insight => "|insight",
            FileKind::Log => "",
        };
        for (part, packed) in parts.into_iter().enumerate() {
            let seed = format!(
                "{}|{account}|{region}|{}|{}|{part}{suffix}",
                trail.arn(),
                range.from,
                range.to
            );
            let unique = unique_suffix(seed.as_bytes());
            let key = FileKey {
                prefix: trail.prefix.as_deref(),
                organization: planned.organization_id.as_deref(),
                account,
                region,
                kind,
                time,
                unique: &unique,
            }
            .render();
            files.push(LogFile {
                trail_arn: trail.arn(),
                topic: trail
                    .sns_topic_name
                    .clone()
                    .zip(trail.sns_topic_arn.clone()),
                region: region.clone(),
                bucket: trail.bucket.clone(),
                key,
                gzip: packed.gzip,
                records: packed.records,
                digest: generation
                    .zip(packed.sha256)
                    .map(|(generation, sha256)| DigestEntry {
                        generation,
                        account: account.clone(),
                        sha256,
                        oldest: packed.oldest,
                        newest: packed.newest,
                    }),
            });
        }
    }
    files
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trails::Period;

    fn trail(name: &str, region: &str, multi: bool, global: bool) -> PlannedTrail {
        PlannedTrail {
            trail: Trail {
                prefix: Some("p".into()),
                include_global: global,
                multi_region: multi,
                logging: vec![Period {
                    start_seq: 1,
                    start_time: 0,
                    stop_seq: None,
                    stop_time: None,
                }],
                ..Trail::new("111122223333", region, name, "logs")
            },
            organization_id: None,
            members: Vec::new(),
        }
    }

    fn record(account: &str, region: &str, source: &str, id: usize) -> Vec<u8> {
        format!(
            r#"{{"eventVersion":"1.09","eventID":"e{id}","eventTime":"2026-01-01T00:00:00Z","recipientAccountId":"{account}","awsRegion":"{region}","eventSource":"{source}","eventName":"X","eventCategory":"Management","readOnly":false}}"#
        )
        .into_bytes()
    }

    fn range(events: Vec<Vec<u8>>) -> Range {
        let count = events.len() as u64;
        Range {
            from: 1,
            to: 1 + count,
            events: events
                .into_iter()
                .enumerate()
                .map(|(i, record)| JournalEvent {
                    seq: 1 + i as u64,
                    summary: cairn_core::summary::read(&record).unwrap(),
                    record,
                })
                .collect(),
        }
    }

    fn records_of(file: &LogFile) -> Vec<serde_json::Value> {
        let mut json = String::new();
        std::io::Read::read_to_string(
            &mut flate2::read::GzDecoder::new(file.gzip.as_slice()),
            &mut json,
        )
        .unwrap();
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        value["Records"].as_array().unwrap().clone()
    }

    fn ids_of(file: &LogFile) -> Vec<String> {
        records_of(file)
            .iter()
            .map(|r| r["eventID"].as_str().unwrap().to_owned())
            .collect()
    }

    fn trail_name(file: &LogFile) -> String {
        file.trail_arn.rsplit('/').next().unwrap().to_owned()
    }

    #[test]
    fn regions_and_global_events_route_as_on_aws() {
        let a = "111122223333";
        let events = range(vec![
            record(a, "us-west-2", "ec2.amazonaws.com", 0),
            record(a, "us-east-1", "iam.amazonaws.com", 1),
            record(a, "eu-west-1", "ec2.amazonaws.com", 2),
            record("444455556666", "us-west-2", "ec2.amazonaws.com", 3),
        ]);
        let trails = vec![
            trail("single", "us-west-2", false, true),
            trail("multi", "us-west-2", true, true),
            trail("east", "us-east-1", false, true),
            trail("east-no-global", "us-east-1", false, false),
        ];
        let files = build(&events, &trails, 1_767_225_600, 1 << 20);
        let mut got: Vec<(String, String, Vec<String>)> = files
            .iter()
            .map(|f| (trail_name(f), f.region.clone(), ids_of(f)))
            .collect();
        got.sort();
        let want = vec![
            ("east".into(), "us-east-1".into(), vec!["e1".into()]),
            ("multi".into(), "eu-west-1".into(), vec!["e2".into()]),
            ("multi".into(), "us-east-1".into(), vec!["e1".into()]),
            ("multi".into(), "us-west-2".into(), vec!["e0".into()]),
            ("single".into(), "us-west-2".into(), vec!["e0".into()]),
        ];
        assert_eq!(got, want);
        let key = &files
            .iter()
            .find(|f| f.trail_arn.ends_with("/single"))
            .unwrap()
            .key;
        assert!(key.starts_with("p/AWSLogs/111122223333/CloudTrail/us-west-2/2026/01/01/111122223333_CloudTrail_us-west-2_20260101T0000Z_"), "{key}");
    }

    #[test]
    fn insights_events_reach_only_trails_that_asked_for_their_type_in_their_own_files() {
        let a = "111122223333";
        let insight = format!(
            r#"{{"eventVersion":"1.09","eventTime":"2026-01-01T00:05:00Z","awsRegion":"us-west-2","eventID":"i0","eventType":"AwsCloudTrailInsight","recipientAccountId":"{a}","sharedEventID":"s","insightDetails":{{"state":"Start","eventSource":"ec2.amazonaws.com","eventName":"RunInstances","insightType":"ApiErrorRateInsight","errorCode":"AccessDenied"}},"eventCategory":"Insight"}}"#
        );
        let events = range(vec![
            record(a, "us-west-2", "ec2.amazonaws.com", 0),
            insight.into_bytes(),
        ]);
        let wants = |kind: &str| crate::trails::InsightSelector {
            insight_type: kind.into(),
            event_categories: None,
        };
        let mut errors = trail("errors", "us-west-2", false, true);
        errors.trail.insight_selectors = vec![wants("ApiErrorRateInsight")];
        let mut calls = trail("calls", "us-west-2", false, true);
        calls.trail.insight_selectors = vec![wants("ApiCallRateInsight")];
        let plain = trail("plain", "us-west-2", false, true);
        let files = build(&events, &[errors, calls, plain], 1_767_225_900, 1 << 20);
        let mut got: Vec<(String, bool, Vec<String>)> = files
            .iter()
            .map(|f| {
                (
                    trail_name(f),
                    f.key.contains("/CloudTrail-Insight/"),
                    ids_of(f),
                )
            })
            .collect();
        got.sort();
        let want = vec![
            ("calls".into(), false, vec!["e0".into()]),
            ("errors".into(), false, vec!["e0".into()]),
            ("errors".into(), true, vec!["i0".into()]),
            ("plain".into(), false, vec!["e0".into()]),
        ];
        assert_eq!(got, want);
        let key = &files
            .iter()
            .find(|f| f.key.contains("Insight"))
            .unwrap()
            .key;
        assert!(key.starts_with("p/AWSLogs/111122223333/CloudTrail-Insight/us-west-2/2026/01/01/111122223333_CloudTrail-Insight_us-west-2_20260101T0005Z_"), "{key}");
    }

    #[test]
    fn building_again_gives_the_same_files_and_periods_bound_delivery() {
        let a = "111122223333";
        let events = range(
            (0..10)
                .map(|i| record(a, "us-west-2", "ec2.amazonaws.com", i))
                .collect(),
        );
        let mut t = trail("t", "us-west-2", false, true);
        t.trail.logging = vec![Period {
            start_seq: 3,
            start_time: 0,
            stop_seq: Some(5),
            stop_time: Some(0),
        }];
        let first = build(&events, std::slice::from_ref(&t), 100, 1 << 20);
        let again = build(&events, std::slice::from_ref(&t), 100, 1 << 20);
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].key, again[0].key);
        assert_eq!(first[0].gzip, again[0].gzip);
        assert_eq!(ids_of(&first[0]), vec!["e2", "e3", "e4"]);
    }

    #[test]
    fn packed_files_keep_to_the_cap_and_carry_their_own_hash_and_times() {
        let records: Vec<Vec<u8>> = (0..40)
            .map(|i| record("111122223333", "us-west-2", "ec2.amazonaws.com", i))
            .collect();
        // One record longer than the cap gets a file of its own.
        let long = format!(r#"{{"eventID":"{}"}}"#, "x".repeat(3_000)).into_bytes();
        let all: Vec<(&[u8], i64)> = records
            .iter()
            .map(Vec::as_slice)
            .chain([long.as_slice()])
            .zip(1_000..)
            .collect();
        let counts = split(all.iter().map(|(r, _)| r.len()), 2_000);
        let mut rest = all.as_slice();
        let files: Vec<Packed> = counts
            .iter()
            .map(|&count| {
                let (file, after) = rest.split_at(count);
                rest = after;
                pack(file.iter().copied(), true)
            })
            .collect();
        assert!(files.len() > 3);
        let mut next = 0;
        for file in &files {
            let mut json = Vec::new();
            std::io::Read::read_to_end(
                &mut flate2::read::GzDecoder::new(file.gzip.as_slice()),
                &mut json,
            )
            .unwrap();
            assert!(
                json.len() <= 2_000 || file.records == 1,
                "{} bytes",
                json.len()
            );
            let parsed: serde_json::Value = serde_json::from_slice(&json).unwrap();
            let expected: Vec<serde_json::Value> = all[next..next + file.records]
                .iter()
                .map(|(r, _)| serde_json::from_slice(r).unwrap())
                .collect();
            assert_eq!(parsed["Records"], serde_json::Value::Array(expected));
            assert_eq!(
                file.sha256.as_deref(),
                Some(cairn_core::digest::sha256_hex(&json).as_str())
            );
            assert_eq!(
                (file.oldest, file.newest),
                (all[next].1, all[next + file.records - 1].1)
            );
            next += file.records;
        }
        assert_eq!(next, all.len());
        assert!(pack(all.iter().copied(), false).sha256.is_none());
    }

    #[test]
    fn log_files_carry_the_gzip_header_they_always_had() {
        // The header flate2's gzip writer gave log files before they were framed here;
        // the decoder checks the trailer's CRC-32 and length.
        let mut encoder = flate2::GzBuilder::new().mtime(0).write(Vec::new(), LEVEL);
        encoder.write_all(b"{}").unwrap();
        let old = encoder.finish().unwrap();
        let file = pack([(b"{}".as_slice(), 0)].into_iter(), false);
        assert_eq!(file.gzip[..10], old[..10]);
        let mut json = String::new();
        std::io::Read::read_to_string(
            &mut flate2::read::GzDecoder::new(file.gzip.as_slice()),
            &mut json,
        )
        .unwrap();
        assert_eq!(json, r#"{"Records":[{}]}"#);
    }

    #[test]
    fn the_work_of_many_files_comes_back_in_order() {
        let items: Vec<u64> = (0..100).collect();
        assert_eq!(
            in_parallel(&items, |i| i * 2),
            items.iter().map(|i| i * 2).collect::<Vec<_>>()
        );
        assert!(in_parallel(&[] as &[u64], |i| *i).is_empty());
    }

    #[test]
    fn large_deliveries_are_split_and_organization_trails_see_members() {
        let events = range(
            (0..50)
                .map(|i| {
                    record(
                        if i % 2 == 0 {
                            "111122223333"
                        } else {
                            "444455556666"
                        },
                        "us-west-2",
                        "ec2.amazonaws.com",
                        i,
                    )
                })
                .collect(),
        );
        let mut org = trail("org", "us-west-2", false, true);
        org.organization_id = Some("o-abcdefghij".into());
        org.members = vec!["111122223333".into(), "444455556666".into()];
        let files = build(&events, &[org], 100, 2_000);
        assert!(files.len() > 2);
        let total: usize = files.iter().map(|f| records_of(f).len()).sum();
        assert_eq!(total, 50);
        assert!(files.iter().all(|f| records_of(f).len() == f.records));
        assert!(files.iter().any(|f| f
            .key
            .contains("AWSLogs/o-abcdefghij/444455556666/CloudTrail/")));
        let keys: std::collections::HashSet<&String> = files.iter().map(|f| &f.key).collect();
        assert_eq!(keys.len(), files.len());
    }
}
