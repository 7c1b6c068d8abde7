//! Reading log groups: `DescribeLogStreams`, `GetLogEvents` and `FilterLogEvents`.
//!
//! A group's files hold events in the order they were ingested; a read scans them once,
//! keeps the events it wants nearest to its position (a bounded heap, so memory follows
//! the page size, not the group's size), and answers in timestamp order. Positions are
//! (timestamp, journal sequence number) pairs inside authenticated tokens.

use std::collections::{BTreeMap, BinaryHeap};

use cairn_filter::{Filter, FilterSet, Scratch};
use cairn_store::logs::LogEvent;
use cairn_store::Cursor;
use serde::Deserialize;
use serde_json::{json, Value};

use super::logs::{
    check_group_name, check_limit, constraint, group_not_found, paged, parse_pattern,
};
use super::{invalid, required, Call, Outcome};
use crate::api::ApiError;
use crate::loggroups::GroupInfo;

/// The most message bytes one page carries (AWS: 1 MB).
const MAX_PAGE_BYTES: usize = 1 << 20;
const MAX_EVENTS: i64 = 10_000;
const HEAD: Cursor = Cursor {
    time: i64::MIN,
    seq: 0,
};
const TAIL: Cursor = Cursor {
    time: i64::MAX,
    seq: u64::MAX,
};

fn key(event: &LogEvent) -> (i64, u64) {
    (event.timestamp, event.seq)
}

/// The group a read names, by `logGroupName` or `logGroupIdentifier` (a name or an ARN),
/// in the caller's account and region.
fn find_group(
    call: &Call,
    name: Option<&str>,
    identifier: Option<&str>,
) -> Result<GroupInfo, ApiError> {
    let name = match (name, identifier) {
        (Some(_), Some(_)) => {
            return Err(invalid(
                "LogGroup name and LogGroup ARN are mutually exclusive parameters.",
            ))
        }
        (Some(name), None) => name,
        (None, Some(id)) if id.starts_with("arn:") => {
            let (region, account, name) = crate::loggroups::parse_group_arn(id)
                .ok_or_else(|| invalid(format!("{id} is not a log group ARN.")))?;
            if region != call.region || account != call.identity.account_id {
                return Err(group_not_found());
            }
            name
        }
        (None, identifier) => required(identifier, "logGroupName")?,
    };
    let name = check_group_name(Some(name))?;
    call.app
        .meta
        .read(|entries| GroupInfo::find(entries, &call.identity.account_id, call.region, name))
        .ok_or_else(group_not_found)
}

/// Events past the group's retention are no longer shown (their files go hourly).
fn retained_from(call: &Call, group: &GroupInfo) -> i64 {
    group
        .retention_days
        .map_or(i64::MIN, |days| (call.now - days * 86_400) * 1000)
}

/// The `limit` events nearest to a position, in one direction, holding no more than a
/// page's bytes (plus one event).
struct Nearest {
    limit: usize,
    backward: bool,
    heap: BinaryHeap<Ranked>,
    /// Bytes of the held events, counted as AWS counts a page.
    bytes: usize,
    /// Whether an event was left out for the limit or the byte budget.
    overflow: bool,
}

fn page_bytes(event: &LogEvent) -> usize {
    event.message.len() + 26
}

struct Ranked {
    rank: (i64, u64),
    event: LogEvent,
}

impl PartialEq for Ranked {
    fn eq(&self, other: &Self) -> bool {
        self.rank == other.rank
    }
}
impl Eq for Ranked {}
impl PartialOrd for Ranked {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Ranked {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.rank.cmp(&other.rank)
    }
}

impl Nearest {
    fn new(limit: usize, backward: bool) -> Nearest {
        Nearest {
            limit,
            backward,
            heap: BinaryHeap::with_capacity(limit.min(1024) + 1),
            bytes: 0,
            overflow: false,
        }
    }

    fn push(&mut self, event: LogEvent) {
        let (time, seq) = key(&event);
        // Nearest first: ascending keys forward, descending backward.
        let rank = if self.backward {
            (time.saturating_neg(), u64::MAX - seq)
        } else {
            (time, seq)
        };
        if self.full() && self.heap.peek().is_some_and(|top| rank >= top.rank) {
            self.overflow = true;
            return;
        }
        self.bytes += page_bytes(&event);
        self.heap.push(Ranked { rank, event });
        // Drop the farthest while the rest still fill the page.
        while self.heap.len() > self.limit
            || (self.heap.len() > 1
                && self.bytes - self.heap.peek().map_or(0, |t| page_bytes(&t.event))
                    >= MAX_PAGE_BYTES)
        {
            let farthest = self.heap.pop().expect("not empty");
            self.bytes -= page_bytes(&farthest.event);
            self.overflow = true;
        }
    }

    /// Whether the held events fill a page.
    fn full(&self) -> bool {
        self.heap.len() >= self.limit || self.bytes >= MAX_PAGE_BYTES
    }

    /// The events nearest first, cut at the page's byte budget (at least one), and
    /// whether any event was left out.
    fn into_nearest(self) -> (Vec<LogEvent>, bool) {
        let held = self.heap.len();
        let mut bytes = 0;
        let events: Vec<LogEvent> = self
            .heap
            .into_sorted_vec()
            .into_iter()
            .map(|r| r.event)
            .enumerate()
            .take_while(|(i, e)| {
                bytes += page_bytes(e);
                *i == 0 || bytes <= MAX_PAGE_BYTES
            })
            .map(|(_, e)| e)
            .collect();
        let left_out = self.overflow || events.len() < held;
        (events, left_out)
    }
}

/// Scans a group, off the async threads.
fn scan(
    call: &Call,
    group: &GroupInfo,
    visit: impl FnMut(LogEvent) -> bool,
) -> Result<(), ApiError> {
    tokio::task::block_in_place(|| call.app.log_groups.store.scan(&group.id, visit))
        .map_err(|e| ApiError::internal(format!("reading log group {}: {e}", group.name)))
}

/// `startTime`/`endTime`: milliseconds, not negative (the model's minimum).
fn check_times(start: Option<i64>, end: Option<i64>) -> Result<(i64, i64), ApiError> {
    for (member, value) in [("startTime", start), ("endTime", end)] {
        if let Some(v) = value.filter(|v| *v < 0) {
            return Err(constraint(
                member,
                v,
                "Member must have value greater than or equal to 0",
            ));
        }
    }
    Ok((start.unwrap_or(0), end.unwrap_or(i64::MAX)))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeLogStreamsInput {
    log_group_name: Option<String>,
    log_group_identifier: Option<String>,
    log_stream_name_prefix: Option<String>,
    order_by: Option<String>,
    descending: Option<bool>,
    next_token: Option<String>,
    limit: Option<i64>,
}

#[derive(Default)]
struct StreamStats {
    creation_time: i64,
    first_event: i64,
    last_event: i64,
    last_ingestion: i64,
    bytes: u64,
}

pub fn describe_log_streams(
    call: &Call,
    input: DescribeLogStreamsInput,
) -> Result<Outcome, ApiError> {
    let by_time = match input.order_by.as_deref() {
        None | Some("LogStreamName") => false,
        Some("LastEventTime") => true,
        Some(other) => {
            return Err(constraint(
                "orderBy",
                other,
                "Member must satisfy enum value set: [LogStreamName, LastEventTime]",
            ))
        }
    };
    let prefix = input.log_stream_name_prefix.clone().unwrap_or_default();
    if by_time && !prefix.is_empty() {
        return Err(invalid(
            "Cannot order by LastEventTime with a logStreamNamePrefix.",
        ));
    }
    let group = find_group(
        call,
        input.log_group_name.as_deref(),
        input.log_group_identifier.as_deref(),
    )?;
    let retained = retained_from(call, &group);
    let mut streams: BTreeMap<String, StreamStats> = BTreeMap::new();
    scan(call, &group, |event| {
        if event.timestamp < retained || !event.stream.starts_with(&prefix) {
            return true;
        }
        let bytes = event.message.len() as u64;
        let stats = streams.entry(event.stream).or_insert_with(|| StreamStats {
            creation_time: event.ingestion_time,
            first_event: event.timestamp,
            last_event: event.timestamp,
            ..StreamStats::default()
        });
        stats.first_event = stats.first_event.min(event.timestamp);
        stats.last_event = stats.last_event.max(event.timestamp);
        stats.last_ingestion = stats.last_ingestion.max(event.ingestion_time);
        stats.bytes += bytes;
        true
    })?;
    // By name from the map; a stable sort by time keeps names in order within a time.
    let mut listed: Vec<(String, StreamStats)> = streams.into_iter().collect();
    if by_time {
        listed.sort_by_key(|(_, s)| s.last_event);
    }
    if input.descending.unwrap_or(false) {
        listed.reverse();
    }
    let arn = group.arn();
    let query = format!(
        "DescribeLogStreams\n{}\n{prefix}\n{by_time}\n{:?}",
        group.id, input.descending
    );
    let out = paged(
        call,
        query,
        input.next_token.as_deref(),
        input.limit,
        "logStreams",
        listed,
        // Only the page shown is described.
        |(name, s)| {
            json!({
                "logStreamName": name,
                "creationTime": s.creation_time,
                "firstEventTimestamp": s.first_event,
                "lastEventTimestamp": s.last_event,
                "lastIngestionTime": s.last_ingestion,
                "arn": format!("{arn}:log-stream:{name}"),
                "storedBytes": s.bytes,
            })
        },
    )?;
    Ok(Outcome::of(out))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetLogEventsInput {
    log_group_name: Option<String>,
    log_group_identifier: Option<String>,
    log_stream_name: Option<String>,
    start_time: Option<i64>,
    end_time: Option<i64>,
    next_token: Option<String>,
    limit: Option<i64>,
    start_from_head: Option<bool>,
    unmask: Option<bool>,
}

pub fn get_log_events(call: &Call, input: GetLogEventsInput) -> Result<Outcome, ApiError> {
    let _ = input.unmask;
    let group = find_group(
        call,
        input.log_group_name.as_deref(),
        input.log_group_identifier.as_deref(),
    )?;
    let stream = required(input.log_stream_name.clone(), "logStreamName")?;
    if stream.is_empty() || stream.len() > 512 {
        return Err(constraint(
            "logStreamName",
            &stream,
            "Member must have length between 1 and 512",
        ));
    }
    let limit = check_limit(input.limit, MAX_EVENTS)?;
    let fingerprint = format!("GetLogEvents\n{}\n{stream}", group.id);
    let bad_token = || invalid("The specified nextToken is invalid.");
    // Where this page starts, and which way it reads.
    let (from, backward) = match input.next_token.as_deref() {
        Some(token) => {
            let (direction, rest) = token.split_once('/').ok_or_else(bad_token)?;
            let position = call
                .app
                .tokens
                .open(rest, fingerprint.as_bytes())
                .ok_or_else(bad_token)?;
            match direction {
                "f" => (position, false),
                "b" => (position, true),
                _ => return Err(bad_token()),
            }
        }
        None if input.start_from_head.unwrap_or(false) => (HEAD, false),
        None => (TAIL, true),
    };
    let (start, end) = check_times(input.start_time, input.end_time)?;
    let start = start.max(retained_from(call, &group));
    let from_key = (from.time, from.seq);
    let mut nearest = Nearest::new(limit, backward);
    let mut stream_exists = false;
    scan(call, &group, |event| {
        if event.stream != stream {
            return true;
        }
        stream_exists = true;
        let k = key(&event);
        let beyond = if backward { k < from_key } else { k > from_key };
        if beyond && event.timestamp >= start && event.timestamp < end {
            nearest.push(event);
        }
        true
    })?;
    if !stream_exists {
        return Err(ApiError::client(
            "ResourceNotFoundException",
            "The specified log stream does not exist.",
        ));
    }
    let (mut events, _) = nearest.into_nearest();
    if backward {
        events.reverse();
    }
    let token = |direction: &str, c: Cursor| {
        format!(
            "{direction}/{}",
            call.app.tokens.issue(c, fingerprint.as_bytes())
        )
    };
    let at = |e: &LogEvent| Cursor {
        time: e.timestamp,
        seq: e.seq,
    };
    // With nothing found, the tokens stay where the request was; a first read from the
    // tail of an empty stream gives a forward token from its head, for what comes later.
    let forward = events
        .last()
        .map_or(if from == TAIL { HEAD } else { from }, at);
    let back = events.first().map_or(from, at);
    let out: Vec<Value> = events
        .iter()
        .map(|e| {
            json!({"timestamp": e.timestamp, "message": e.message, "ingestionTime": e.ingestion_time})
        })
        .collect();
    Ok(Outcome::of(json!({
        "events": out,
        "nextForwardToken": token("f", forward),
        "nextBackwardToken": token("b", back),
    })))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FilterLogEventsInput {
    log_group_name: Option<String>,
    log_group_identifier: Option<String>,
    log_stream_names: Option<Vec<String>>,
    log_stream_name_prefix: Option<String>,
    start_time: Option<i64>,
    end_time: Option<i64>,
    filter_pattern: Option<String>,
    next_token: Option<String>,
    limit: Option<i64>,
    interleaved: Option<bool>,
    unmask: Option<bool>,
}

pub fn filter_log_events(call: &Call, input: FilterLogEventsInput) -> Result<Outcome, ApiError> {
    let _ = (input.interleaved, input.unmask);
    if input.log_stream_name_prefix.as_deref() == Some("") {
        return Err(constraint(
            "logStreamNamePrefix",
            "",
            "Member must have length greater than or equal to 1",
        ));
    }
    if input.log_stream_names.is_some() && input.log_stream_name_prefix.is_some() {
        return Err(invalid(
            "Cannot specify both logStreamNames and logStreamNamePrefix.",
        ));
    }
    if let Some(names) = &input.log_stream_names {
        if names.is_empty() || names.len() > 100 {
            return Err(constraint(
                "logStreamNames",
                names.len(),
                "Member must have length between 1 and 100",
            ));
        }
    }
    let group = find_group(
        call,
        input.log_group_name.as_deref(),
        input.log_group_identifier.as_deref(),
    )?;
    let limit = check_limit(input.limit, MAX_EVENTS)?;
    let pattern_text = input.filter_pattern.clone().unwrap_or_default();
    let set = FilterSet::new(vec![Filter::new(parse_pattern(&pattern_text, "filter")?)]);
    let fingerprint = format!(
        "FilterLogEvents\n{}\n{:?}\n{:?}\n{:?}\n{:?}\n{pattern_text}",
        group.id,
        input.log_stream_names,
        input.log_stream_name_prefix,
        input.start_time,
        input.end_time
    );
    let after = match input.next_token.as_deref() {
        Some(token) => call
            .app
            .tokens
            .open(token, fingerprint.as_bytes())
            .ok_or_else(|| invalid("The specified nextToken is invalid."))?,
        None => HEAD,
    };
    let after = (after.time, after.seq);
    let (start, end) = check_times(input.start_time, input.end_time)?;
    let start = start.max(retained_from(call, &group));
    let wanted_stream =
        |stream: &str| match (&input.log_stream_names, &input.log_stream_name_prefix) {
            (Some(names), _) => names.iter().any(|n| n == stream),
            (None, Some(prefix)) => stream.starts_with(prefix.as_str()),
            (None, None) => true,
        };
    let mut nearest = Nearest::new(limit, false);
    let mut scratch = Scratch::default();
    scan(call, &group, |event| {
        let in_window = key(&event) > after && event.timestamp >= start && event.timestamp <= end;
        if in_window && wanted_stream(&event.stream) {
            set.evaluate(&event.message, &mut scratch);
            if set.is_match(&scratch, 0) {
                nearest.push(event);
            }
        }
        true
    })?;
    // A page that left events out is followed by the rest.
    let (events, more) = nearest.into_nearest();
    let out: Vec<Value> = events
        .iter()
        .map(|e| {
            json!({
                "logStreamName": e.stream,
                "timestamp": e.timestamp,
                "message": e.message,
                "ingestionTime": e.ingestion_time,
                "eventId": format!("{:020}{:020}", e.timestamp.max(0), e.seq),
            })
        })
        .collect();
    let mut response = json!({ "events": out, "searchedLogStreams": [] });
    if more {
        if let Some(last) = events.last() {
            let position = Cursor {
                time: last.timestamp,
                seq: last.seq,
            };
            response["nextToken"] = json!(call.app.tokens.issue(position, fingerprint.as_bytes()));
        }
    }
    Ok(Outcome::of(response))
}
