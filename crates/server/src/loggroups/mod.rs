//! Trails → log groups. A trail with `CloudWatchLogsLogGroupArn` sends every event it
//! receives, as one JSON message, to the stream `<account>_CloudTrail_<region>` of its
//! log group (`<organization id>_<account>_CloudTrail_<region>` for an organization
//! trail), and the group's metric filters count it.
//!
//! This is its own consumer of the journal, with its own cursor, a few times a second, so
//! an event reaches its group and `/metrics` well within a second of being acknowledged,
//! whatever the trails' file delivery interval. The group files carry the journal position
//! of each event, so replaying a range after a crash writes nothing twice (see
//! `cairn_store::logs`). An event goes to a group once, however many trails send it there.
//!
//! A group whose files cannot be written falls behind alone: it keeps the journal position
//! from which it still needs events, and catches up from there on its own (tried again
//! every second), while the cursor, and the other groups, go on.

pub mod alarms;
pub mod metrics;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cairn_store::journal::JournalReader;
use cairn_store::logs::{LogStore, NewLogEvent};
use cairn_store::meta::under;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::app::App;
use crate::delivery::build::PlannedTrail;
use crate::delivery::Attempts;
use crate::tasks::JournalEvent;

/// How often the journal is checked for new events.
const POLL: Duration = Duration::from_millis(100);
/// The most record bytes one pass reads.
const PASS_BUDGET: usize = 32 << 20;
/// CloudTrail drops events larger than this instead of sending them to CloudWatch Logs.
pub const MAX_EVENT_BYTES: usize = 256 * 1024;
/// The cursor is saved at least this often while it moves with nothing delivered.
const IDLE_SAVE: Duration = Duration::from_secs(2);
/// A group that fell behind is tried again this long after it failed, twice as long after
/// each failure after that, up to the longest.
const BEHIND_RETRY: Duration = Duration::from_secs(1);
const BEHIND_RETRY_LONGEST: Duration = Duration::from_secs(30);

/// A log group as its metadata entry describes it.
#[derive(Clone, Debug)]
pub struct GroupInfo {
    /// Names the group's files; a group created again after a delete gets a new one.
    pub id: String,
    pub account: String,
    pub region: String,
    pub name: String,
    pub retention_days: Option<i64>,
    /// The stored metric filters.
    pub filters: Value,
}

pub fn group_key(account: &str, region: &str, name: &str) -> String {
    format!("loggroups/{account}/{region}/{name}")
}

impl GroupInfo {
    pub fn from_entry(key: &str, value: &Value) -> Option<GroupInfo> {
        let mut parts = key.strip_prefix("loggroups/")?.splitn(3, '/');
        let (account, region, name) = (parts.next()?, parts.next()?, parts.next()?);
        let created = value["creationTime"].as_i64().unwrap_or(0);
        let digest = Sha256::digest(format!("{account}\n{region}\n{name}\n{created}"));
        Some(GroupInfo {
            id: hex::encode(&digest[..16]),
            account: account.to_owned(),
            region: region.to_owned(),
            name: name.to_owned(),
            retention_days: value["retentionInDays"].as_i64(),
            filters: value["metricFilters"].clone(),
        })
    }

    pub fn find(
        entries: &BTreeMap<String, Value>,
        account: &str,
        region: &str,
        name: &str,
    ) -> Option<GroupInfo> {
        let key = group_key(account, region, name);
        GroupInfo::from_entry(&key, entries.get(&key)?)
    }

    /// The group's ARN, without `:*`.
    pub fn arn(&self) -> String {
        group_arn(&self.account, &self.region, &self.name)
    }

    /// The group a trail sends to, when it exists in the trail's account and home region.
    pub fn of_trail(
        entries: &BTreeMap<String, Value>,
        trail: &crate::trails::Trail,
    ) -> Option<GroupInfo> {
        let (region, account, name) = parse_group_arn(trail.log_group_arn.as_deref()?)?;
        if region != trail.home_region || account != trail.account {
            return None;
        }
        GroupInfo::find(entries, account, region, name)
    }

    fn all(entries: &BTreeMap<String, Value>) -> Vec<GroupInfo> {
        under(entries, "loggroups/")
            .filter_map(|(k, v)| GroupInfo::from_entry(k, v))
            .collect()
    }
}

/// Adds the CIS pack's metric filters (named after their metrics) that a group's entry
/// lacks, as PutMetricFilter would store them. Returns whether it added any.
pub fn add_cis_filters(group: &mut Value, now_ms: i64) -> bool {
    let name = group["logGroupName"].clone();
    let Some(filters) = group
        .as_object_mut()
        .map(|g| g.entry("metricFilters").or_insert_with(|| json!([])))
        .and_then(Value::as_array_mut)
    else {
        return false;
    };
    let before = filters.len();
    for control in cairn_filter::cis::CONTROLS {
        if filters.iter().any(|f| f["filterName"] == control.metric) {
            continue;
        }
        filters.push(json!({
            "filterName": control.metric,
            "filterPattern": control.pattern,
            "metricTransformations": [{
                "metricName": control.metric,
                "metricNamespace": cairn_filter::cis::NAMESPACE,
                "metricValue": "1",
                "defaultValue": 0.0,
            }],
            "creationTime": now_ms,
            "logGroupName": name,
        }));
    }
    filters.sort_by(|a, b| a["filterName"].as_str().cmp(&b["filterName"].as_str()));
    filters.len() > before
}

/// With the CIS pack on, gives existing groups of its name the filters they lack.
pub fn install_cis_pack(
    meta: &cairn_store::MetaStore,
    cis: &alarms::CisConfig,
    now_ms: i64,
) -> Result<(), cairn_store::StoreError> {
    if !cis.enabled {
        return Ok(());
    }
    meta.update(|entries| {
        let mut changes = Vec::new();
        for (key, value) in under(entries, "loggroups/") {
            if value["logGroupName"] != cis.log_group.as_str() {
                continue;
            }
            let mut group = value.clone();
            if add_cis_filters(&mut group, now_ms) {
                changes.push(cairn_store::Change::Put(key.clone(), group));
            }
        }
        Ok::<_, cairn_store::StoreError>((changes, ()))
    })
}

/// `arn:aws:logs:<region>:<account>:log-group:<name>` (what `parse_group_arn` reads,
/// without its `:*`).
pub fn group_arn(account: &str, region: &str, name: &str) -> String {
    format!("arn:aws:logs:{region}:{account}:log-group:{name}")
}

/// `arn:aws:logs:<region>:<account>:log-group:<name>[:*]` → (region, account, name).
pub fn parse_group_arn(arn: &str) -> Option<(&str, &str, &str)> {
    let parts: Vec<&str> = arn.split(':').collect();
    match parts.as_slice() {
        ["arn", "aws", "logs", region, account, "log-group", name]
        | ["arn", "aws", "logs", region, account, "log-group", name, "*"]
            if !name.is_empty() =>
        {
            Some((region, account, name))
        }
        _ => None,
    }
}

/// GetTrailStatus's CloudWatch Logs fields for one trail's delivery attempts.
pub fn status_json(attempts: &Attempts) -> Value {
    let mut out = serde_json::Map::new();
    attempts.write_outcome("CloudWatchLogsDelivery", &mut out);
    Value::Object(out)
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct State {
    /// Every event below this journal position has been sent to its groups, but those
    /// `behind`.
    cursor: u64,
    /// Per trail ARN.
    status: BTreeMap<String, Attempts>,
    /// Groups whose files could not be written, by id: the journal position from which
    /// each still needs its events.
    #[serde(default)]
    behind: BTreeMap<String, u64>,
}

impl State {
    /// The journal position below which no group needs anything.
    fn floor(&self) -> u64 {
        self.behind
            .values()
            .fold(self.cursor, |floor, &at| floor.min(at))
    }
}

const STATE_FILE: &str = "state.json";

pub struct LogGroups {
    pub store: LogStore,
    dir: PathBuf,
    state: Mutex<State>,
    /// The floor as last saved (see [`State::floor`]): the journal must be kept from here.
    saved: Mutex<(u64, std::time::Instant)>,
    reader: Mutex<Option<JournalReader>>,
    /// Groups behind, by id: when they may be tried next, and the wait after that.
    retry_at: Mutex<BTreeMap<String, (std::time::Instant, Duration)>>,
    pub metrics: metrics::Metrics,
    /// The metadata generation the metrics were last synced with.
    synced: AtomicU64,
}

/// Journal events, in order.
type Records = Vec<JournalEvent>;

/// What routing and writing a range did.
#[derive(Default)]
struct Sent {
    /// Per trail: delivered (`None`) or the error.
    outcomes: Vec<(String, Option<String>)>,
    /// Groups whose files could not be written, with the error.
    failed: Vec<(GroupInfo, String)>,
}

/// The events of one pass bound for one group.
struct Batch<'a> {
    group: GroupInfo,
    events: Vec<NewLogEvent<'a>>,
    trails: Vec<String>,
}

impl LogGroups {
    /// Opens `<data_dir>/logs`; a new one starts at journal position `start`.
    pub fn open(data_dir: &Path, start: u64, alarms: alarms::Alarms) -> std::io::Result<LogGroups> {
        let dir = data_dir.join("logs");
        let store = LogStore::open(&dir.join("groups")).map_err(std::io::Error::other)?;
        let state = crate::tasks::load_state(&dir.join(STATE_FILE), || State {
            cursor: start,
            ..State::default()
        })?;
        Ok(LogGroups {
            store,
            saved: Mutex::new((state.floor(), std::time::Instant::now())),
            state: Mutex::new(state),
            dir,
            reader: Mutex::new(None),
            retry_at: Mutex::new(BTreeMap::new()),
            metrics: metrics::Metrics::new(alarms),
            synced: AtomicU64::new(u64::MAX),
        })
    }

    /// The journal position below which nothing is needed any more.
    pub fn saved_cursor(&self) -> u64 {
        self.saved.lock().expect("saved lock").0
    }

    pub fn status(&self, trail_arn: &str) -> Attempts {
        self.state
            .lock()
            .expect("log groups lock")
            .status
            .get(trail_arn)
            .cloned()
            .unwrap_or_default()
    }

    fn save(&self, state: &State) -> Result<(), String> {
        crate::tasks::write_state(&self.dir.join(STATE_FILE), state)
            .map_err(|e| format!("saving the log group cursor: {e}"))?;
        *self.saved.lock().expect("saved lock") = (state.floor(), std::time::Instant::now());
        Ok(())
    }

    /// Sends new events to their groups until `stop` fires, then once more.
    pub async fn run(app: Arc<App>, stop: tokio::sync::watch::Receiver<bool>) {
        let pass: fn(&App) -> Result<bool, String> = |app| app.log_groups.pass(app);
        crate::tasks::every(POLL, stop, crate::tasks::AtStop::Finish, || {
            crate::tasks::drain(&app, "sending events to log groups", pass)
        })
        .await;
    }

    /// One pass: the groups behind catch up (up to the budget each), then what the journal
    /// holds beyond the cursor (up to the budget) goes to the other groups. Returns whether
    /// more waits.
    pub fn pass(&self, app: &App) -> Result<bool, String> {
        let (cursor, due, floor) = {
            let state = self.state.lock().expect("log groups lock");
            // Only the groups behind whose retry time has come catch up in this pass.
            let retry_at = self.retry_at.lock().expect("retry lock");
            let now = std::time::Instant::now();
            let due: Vec<(String, u64)> = state
                .behind
                .iter()
                .filter(|(group, _)| retry_at.get(*group).is_none_or(|&(at, _)| at <= now))
                .map(|(group, &from)| (group.clone(), from))
                .collect();
            (state.cursor, due, state.floor())
        };
        // Trail changes record their event inside the metadata lock, so no change below
        // `until` is missing from this snapshot.
        let synced = self.synced.load(Ordering::Acquire);
        let (trails, targets, changed, until) = app.meta.read(|entries| {
            // Updates bump the generation under this lock: the groups are read again
            // only when something changed.
            let generation = app.meta.generation();
            let changed = (generation != synced).then(|| (generation, GroupInfo::all(entries)));
            let until = app.store.committed_seq();
            if until <= cursor && due.is_empty() {
                return (Vec::new(), Vec::new(), changed, until); // nothing new to route
            }
            let trails: Vec<PlannedTrail> = crate::delivery::planned_trails(entries, &app.settings)
                .into_iter()
                .filter(|t| t.trail.log_group_arn.is_some() && t.trail.logging_since(floor))
                .collect();
            let targets: Vec<Option<GroupInfo>> = trails
                .iter()
                .map(|t| GroupInfo::of_trail(entries, &t.trail))
                .collect();
            (trails, targets, changed, until)
        });
        if let Some((generation, groups)) = changed {
            self.metrics.sync(&groups);
            self.synced.store(generation, Ordering::Release);
        }
        let mut more = false;
        for (group, from) in due {
            more |= self.catch_up(app, &group, from, cursor, &trails, &targets)?;
        }
        if until <= cursor {
            return Ok(more);
        }
        if trails.is_empty() {
            self.advance(app, cursor, until, Vec::new())?;
            return Ok(more);
        }
        let (records, to) = self.read(app, cursor, until)?;
        // Groups still behind get these events when they catch up.
        let behind = self.state.lock().expect("log groups lock").behind.clone();
        let sent = self.send(&records, &trails, &targets, &behind);
        for (group, error) in &sent.failed {
            tracing::error!(%error, group = %group.name, "log group falls behind: its events wait while the others go on");
            self.fall_behind(&group.id, cursor);
        }
        self.advance(app, cursor, to, sent.outcomes)?;
        Ok(more || to < until)
    }

    /// Routes `records` (see [`route`](Self::route)), writes each group's batch, and counts
    /// the events too large to send.
    fn send(
        &self,
        records: &Records,
        trails: &[PlannedTrail],
        targets: &[Option<GroupInfo>],
        behind: &BTreeMap<String, u64>,
    ) -> Sent {
        let mut sent = Sent::default();
        let mut dropped = Vec::new();
        let batches = self.route(
            records,
            trails,
            targets,
            behind,
            &mut sent.outcomes,
            &mut dropped,
        );
        let ingestion = (crate::app::now_precise() * 1000.0) as i64;
        for batch in &batches {
            if let Err(error) = self.append(batch, ingestion, &mut sent.outcomes) {
                sent.failed.push((batch.group.clone(), error));
            }
        }
        // Events too large to send are counted once: for a group that failed, its range is
        // routed again when it catches up.
        for (trail, group) in &dropped {
            if !sent.failed.iter().any(|(g, _)| &g.id == group) {
                self.metrics.dropped(trail);
            }
        }
        sent
    }

    /// The journal's records from `from` up to `until`, or as far as the budget goes, and
    /// the position where they end.
    fn read(&self, app: &App, from: u64, until: u64) -> Result<(Records, u64), String> {
        let mut reader = self.reader.lock().expect("reader lock");
        let mut records = Vec::new();
        let to = crate::tasks::read_journal(
            app,
            &mut reader,
            from,
            until,
            PASS_BUDGET,
            |seq, entry| records.push(JournalEvent::new(seq, entry)),
        )?;
        Ok((records, to))
    }

    /// Writes one group's batch and counts its new events in the group's metrics.
    fn append(
        &self,
        batch: &Batch,
        ingestion: i64,
        outcomes: &mut Vec<(String, Option<String>)>,
    ) -> Result<(), String> {
        match self.store.append(&batch.group.id, ingestion, &batch.events) {
            Ok(written) => {
                let fresh = &batch.events[batch.events.len() - written..];
                let messages = fresh
                    .iter()
                    .map(|e| std::str::from_utf8(e.message).unwrap_or_default());
                self.metrics.observe(&batch.group, messages);
                outcomes.extend(batch.trails.iter().map(|t| (t.clone(), None)));
                Ok(())
            }
            Err(error) => {
                let code = if error.kind == cairn_store::StoreErrorKind::DiskFull {
                    "ServiceUnavailableException"
                } else {
                    "InternalFailure"
                };
                outcomes.extend(
                    batch
                        .trails
                        .iter()
                        .map(|t| (t.clone(), Some(code.to_owned()))),
                );
                Err(error.to_string())
            }
        }
    }

    /// Notes that `group` still needs the events from journal position `from` on, and
    /// when to try it again.
    fn fall_behind(&self, group: &str, from: u64) {
        let mut state = self.state.lock().expect("log groups lock");
        let at = state.behind.entry(group.to_owned()).or_insert(from);
        *at = (*at).min(from);
        let mut retry_at = self.retry_at.lock().expect("retry lock");
        let wait = match retry_at.get(group) {
            Some(&(_, wait)) => (wait * 2).min(BEHIND_RETRY_LONGEST),
            None => BEHIND_RETRY,
        };
        retry_at.insert(group.to_owned(), (std::time::Instant::now() + wait, wait));
    }

    /// Sends `group` its events from `from` on (up to the budget), toward the cursor.
    /// Returns whether it has more to catch up now.
    fn catch_up(
        &self,
        app: &App,
        group: &str,
        from: u64,
        cursor: u64,
        trails: &[PlannedTrail],
        targets: &[Option<GroupInfo>],
    ) -> Result<bool, String> {
        // Only the trails that send to this group; a group no trail sends to any more (or
        // deleted) has nothing left to catch up.
        let (sending, only): (Vec<PlannedTrail>, Vec<Option<GroupInfo>>) = trails
            .iter()
            .zip(targets)
            .filter(|(_, target)| target.as_ref().is_some_and(|g| g.id == group))
            .map(|(trail, target)| (trail.clone(), target.clone()))
            .unzip();
        let mut to = cursor;
        if !sending.is_empty() && from < cursor {
            let records;
            (records, to) = self.read(app, from, cursor)?;
            let sent = self.send(&records, &sending, &only, &BTreeMap::new());
            self.note(sent.outcomes);
            if let Some((_, error)) = sent.failed.first() {
                tracing::debug!(%error, group, "log group still behind");
                self.fall_behind(group, from);
                return Ok(false);
            }
        }
        let mut state = self.state.lock().expect("log groups lock");
        if to >= state.cursor {
            state.behind.remove(group);
            self.retry_at.lock().expect("retry lock").remove(group);
            tracing::info!(group, "log group caught up");
        } else {
            state.behind.insert(group.to_owned(), to);
        }
        self.save(&state)?;
        drop(state);
        app.release_journal();
        Ok(to < cursor)
    }

    /// Which group receives which of `records`: for every trail that receives an event
    /// and sends to a group that exists and is not `behind`. Notes trails whose group is
    /// missing, and, per event too large to send, its trail and group in `dropped`.
    fn route<'a>(
        &self,
        records: &'a Records,
        trails: &[PlannedTrail],
        targets: &[Option<GroupInfo>],
        behind: &BTreeMap<String, u64>,
        outcomes: &mut Vec<(String, Option<String>)>,
        dropped: &mut Vec<(String, String)>,
    ) -> Vec<Batch<'a>> {
        // Per trail: the index of its batch; None when its group does not exist.
        let mut batches: Vec<Batch> = Vec::new();
        let mut target: Vec<Option<usize>> = Vec::new();
        let mut skipped = vec![false; trails.len()];
        for (t, group) in targets.iter().enumerate() {
            if group.as_ref().is_some_and(|g| behind.contains_key(&g.id)) {
                skipped[t] = true;
            }
            target.push(group.as_ref().map(
                |g| match batches.iter().position(|b| b.group.id == g.id) {
                    Some(index) => index,
                    None => {
                        batches.push(Batch {
                            group: g.clone(),
                            events: Vec::new(),
                            trails: Vec::new(),
                        });
                        batches.len() - 1
                    }
                },
            ));
        }
        let arns: Vec<String> = trails.iter().map(|t| t.trail.arn()).collect();
        let mut missing = vec![false; trails.len()];
        for journal_event in records {
            let (seq, record) = (journal_event.seq, &journal_event.record);
            if !trails.iter().any(|t| t.trail.logging_at(seq)) {
                continue;
            }
            let Ok(event) = journal_event.route_fields() else {
                continue;
            };
            for (t, planned) in trails.iter().enumerate() {
                if skipped[t] || !planned.receives(seq, &event) {
                    continue;
                }
                let Some(b) = target[t] else {
                    missing[t] = true;
                    continue;
                };
                if record.len() > MAX_EVENT_BYTES {
                    dropped.push((arns[t].clone(), batches[b].group.id.clone()));
                    continue;
                }
                let batch = &mut batches[b];
                if !batch.trails.contains(&arns[t]) {
                    batch.trails.push(arns[t].clone());
                }
                // Once per group, however many trails send the event there: events come
                // in journal order, so one already added is the batch's last.
                if batch.events.last().is_some_and(|e| e.seq == seq) {
                    continue;
                }
                let stream = match &planned.organization_id {
                    Some(org) => format!("{org}_{}_CloudTrail_{}", event.account, event.region),
                    None => format!("{}_CloudTrail_{}", event.account, event.region),
                };
                batch.events.push(NewLogEvent {
                    seq,
                    timestamp: event.event_time * 1000,
                    stream,
                    message: record,
                });
            }
        }
        for (arn, missing) in arns.into_iter().zip(missing) {
            if missing {
                outcomes.push((arn, Some("ResourceNotFoundException".into())));
            }
        }
        batches.retain(|b| !b.events.is_empty());
        batches
    }

    /// Removes a deleted group's events and metrics.
    pub fn remove_group(&self, group: &GroupInfo) {
        if let Err(error) = self.store.remove(&group.id) {
            tracing::warn!(%error, group = %group.name, "could not remove a deleted log group's files; the hourly sweep will");
        }
        self.metrics.forget_group(&group.id);
    }

    /// Drops events past their group's retention, and the files of groups that no longer
    /// exist.
    pub fn expire(&self, app: &App, now: i64) {
        let groups = app.meta.read(GroupInfo::all);
        for group in &groups {
            if let Some(days) = group.retention_days {
                let first_day = cairn_core::timefmt::day_of(now - days * 86_400);
                if let Err(error) = self.store.expire(&group.id, first_day) {
                    tracing::warn!(%error, group = %group.name, "expiring log events failed; will retry");
                }
            }
        }
        // (Metrics forget deleted groups when a pass sees the metadata change.)
        let live: Vec<String> = groups.iter().map(|g| g.id.clone()).collect();
        if let Err(error) = self.store.keep_only(&live) {
            tracing::warn!(%error, "removing deleted log groups' files failed; will retry");
        }
    }

    fn note(&self, outcomes: impl IntoIterator<Item = (String, Option<String>)>) {
        let mut state = self.state.lock().expect("log groups lock");
        let now = crate::app::now_precise();
        for (trail, error) in outcomes {
            state
                .status
                .entry(trail)
                .or_default()
                .record(now, error.as_deref());
        }
    }

    /// Notes the trails' `outcomes` and moves the cursor to `to`, saving it when there
    /// were outcomes or a while has passed, and lets the journal go below what is saved.
    fn advance(
        &self,
        app: &App,
        from: u64,
        to: u64,
        outcomes: Vec<(String, Option<String>)>,
    ) -> Result<(), String> {
        let delivered = !outcomes.is_empty();
        self.note(outcomes);
        let mut state = self.state.lock().expect("log groups lock");
        if state.cursor == from {
            state.cursor = to;
        }
        let idle_for = self.saved.lock().expect("saved lock").1.elapsed();
        if delivered || idle_for >= IDLE_SAVE {
            self.save(&state)?;
            drop(state);
            app.release_journal();
        }
        Ok(())
    }
}
