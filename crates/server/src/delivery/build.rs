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

/// Gzip at a fast level: delivery compresses every byte the service receives.
pub fn compress(json: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::GzBuilder::new().mtime(0).write(
        Vec::with_capacity(json.len() / 6),
        flate2::Compression::new(1),
    );
    encoder.write_all(json).expect("writing to memory");
    encoder.finish().expect("writing to memory")
}

/// `{"Records":[…]}` files of at most `max_bytes` of JSON (at least one record each),
/// with how many records each holds.
fn pack(records: &[&[u8]], max_bytes: usize) -> Vec<(Vec<u8>, usize)> {
    let mut files = Vec::new();
    let mut json = Vec::new();
    let mut count = 0;
    for record in records {
        if !json.is_empty() && json.len() + record.len() + 2 > max_bytes {
            json.extend_from_slice(b"]}");
            files.push((std::mem::take(&mut json), std::mem::take(&mut count)));
        }
        count += 1;
        json.extend_from_slice(if json.is_empty() {
            b"{\"Records\":["
        } else {
            b","
        });
        json.extend_from_slice(record);
    }
    if !json.is_empty() {
        json.extend_from_slice(b"]}");
        files.push((json, count));
    }
    files
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

/// The events of one journal range, as read.
pub struct Range {
    pub from: u64,
    pub to: u64,
    pub events: Vec<(u64, Vec<u8>)>,
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
    for (index, (seq, record)) in range.events.iter().enumerate() {
        if !trails.iter().any(|t| t.trail.logging_at(*seq)) {
            continue;
        }
        let Ok(event) = RouteFields::extract(record) else {
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
            if trail.receives(*seq, &event) {
                groups
                    .entry((t, event.account.clone(), event.region.clone(), kind))
                    .or_default()
                    .push(index);
            }
        }
    }
    // (account, region, events) → the compressed parts: shared by trails receiving the same.
    let mut compressed: HashMap<(String, String, Vec<usize>), Vec<Packed>> = HashMap::new();
    let mut files = Vec::new();
    for ((t, account, region, kind), indexes) in groups {
        let planned = &trails[t];
        let trail = &planned.trail;
        let parts = compressed
            .entry((account.clone(), region.clone(), indexes.clone()))
            .or_insert_with(|| {
                let records: Vec<&[u8]> = indexes
                    .iter()
                    .map(|&i| range.events[i].1.as_slice())
                    .collect();
                let mut offset = 0;
                pack(&records, max_file_bytes)
                    .iter()
                    .map(|(json, count)| {
                        let span = &indexes[offset..offset + count];
                        offset += count;
                        Packed {
                            gzip: std::sync::Arc::new(compress(json)),
                            records: *count,
                            sha256: hashing.then(|| cairn_core::digest::sha256_hex(json)),
                            oldest: span.iter().map(|&i| times[i]).min().unwrap_or(0),
                            newest: span.iter().map(|&i| times[i]).max().unwrap_or(0),
                        }
                    })
                    .collect()
            })
            .clone();
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
                account: &account,
                region: &region,
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
                .map(|(i, r)| (1 + i as u64, r))
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
