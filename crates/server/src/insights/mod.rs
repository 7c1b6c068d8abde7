//! Live Insights. A consumer of the journal, with its own cursor, feeds each management
//! API call to the detector when a logging trail with Insights selectors covers the call's
//! account and region, closes the minutes the clock has passed, and records the Insights
//! events the detector decides as events of their own. From the journal they reach the
//! event history (LookupEvents with `EventCategory=insight`) and, through delivery and log
//! groups, the trails that asked for their type: `CloudTrail-Insight/` files (digested with
//! the trail's log files) and the trails' log groups.
//!
//! The detector's state is saved with the cursor it belongs to (every half minute while it
//! learns, and at shutdown), and the journal is kept from that cursor; a restart restores
//! it and reads the journal again from there, so it goes on from where it stopped (an open
//! Insight still gets its End) instead of learning a day afresh. An Insights event's
//! eventID is a function of the Insight (account, region, API, type, first minute and
//! state), so an event decided again after a restart is stored once: the journal keeps the
//! first of an account's events with one eventID.
//!
//! Every minute the detector closes gives its counts to the metrics
//! ([`metrics`]), which ListInsightsMetricData reads. Each event stored is also queued for
//! the webhook ([`webhook`]), when one is configured, before the state that decided it is
//! saved.

pub mod metrics;
pub mod usage;
pub mod webhook;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cairn_core::summary;
use cairn_insights::source::ReadCall;
use cairn_insights::{Params, Scopes};
use cairn_store::fsutil;
use cairn_store::journal::{Entry, JournalReader};
use cairn_store::Event;
use serde::{Deserialize, Serialize};

use crate::app::App;
use crate::delivery::build::PlannedTrail;
use crate::tasks::{self, AtStop};
use metrics::{Metrics, Subject};

/// How often the journal is read and the minutes the clock has passed are closed.
const POLL: Duration = Duration::from_secs(1);
/// The most record bytes one pass reads.
const PASS_BUDGET: usize = 32 << 20;
/// Calls stamped further ahead of the clock than this are not counted: one producer's
/// wrong clock must not close the current minutes for every other caller (a call closes
/// the minutes more than the reordering allowance before its own).
const MAX_AHEAD_SECS: i64 = 60;
/// An account and region that received no call for this long closes its minutes by the
/// clock; until then by its calls' eventTimes (so a backlog sent late still counts).
const IDLE_SECS: i64 = 10;
/// The cursor is saved at least this often while it moves; with the detector's state
/// (which grows with the APIs tracked) less often.
const SAVE_EVERY: Duration = Duration::from_secs(2);
const SNAPSHOT_EVERY: Duration = Duration::from_secs(30);
const STATE_FILE: &str = "state.json";
/// The journal position (8 bytes, little-endian) and the detector's snapshot. Written
/// before the state file, so it is never older than the cursor there.
const SNAPSHOT_FILE: &str = "detector.bin";

#[derive(Debug, Default, Serialize, Deserialize)]
struct Saved {
    /// Every event below this journal position has been read.
    cursor: u64,
}

struct Live {
    cursor: u64,
    /// None while no trail asks for Insights: nothing is learned then.
    detector: Option<Scopes>,
    reader: Option<JournalReader>,
    /// Insights events decided but not yet stored (the store refused them); sent first
    /// next pass.
    unsent: Vec<Event>,
    /// Insights events decided (stored, or in `unsent`) but not yet in the webhook's queue.
    unqueued: Vec<Vec<u8>>,
}

pub struct Insights {
    dir: PathBuf,
    params: Params,
    live: Mutex<Live>,
    /// The cursor as last saved, and when: the journal is kept from here.
    saved: Mutex<(u64, std::time::Instant)>,
    metrics: Mutex<Metrics>,
    /// What the consumer has read and the CPU it has used, for `/metrics`.
    pub usage: usage::Usage,
}

impl Insights {
    /// Opens `<data_dir>/insights`, with the detector as it was saved; a new one starts at
    /// journal position `start`.
    pub fn open(data_dir: &Path, start: u64, params: Params) -> std::io::Result<Insights> {
        let dir = data_dir.join("insights");
        let saved = tasks::load_state(&dir.join(STATE_FILE), || Saved { cursor: start })?;
        let (cursor, detector) = match restore(&dir, saved.cursor, &params)? {
            Some((cursor, scopes)) => (cursor, Some(scopes)),
            None => (saved.cursor, None),
        };
        let metrics = open_metrics(&dir);
        Ok(Insights {
            dir,
            params,
            live: Mutex::new(Live {
                cursor,
                detector,
                reader: None,
                unsent: Vec::new(),
                unqueued: Vec::new(),
            }),
            saved: Mutex::new((cursor, std::time::Instant::now())),
            metrics: Mutex::new(metrics),
            usage: usage::Usage::default(),
        })
    }

    /// `subject`'s non-zero per-minute counts from epoch minute `from` up to `to`.
    pub fn metric_counts(
        &self,
        subject: &Subject,
        from: i64,
        to: i64,
    ) -> std::io::Result<Vec<(i64, u32)>> {
        // The files are read after the lock is let go: a query never holds up detection.
        let lookup = self
            .metrics
            .lock()
            .expect("metrics lock")
            .lookup(subject, from, to);
        lookup.read()
    }

    /// Removes the metrics' day files older than the days kept before `now`.
    pub fn expire_metrics(&self, now: i64) -> std::io::Result<usize> {
        self.metrics
            .lock()
            .expect("metrics lock")
            .remove_expired(now)
    }

    /// The journal position below which nothing is needed any more.
    pub fn saved_cursor(&self) -> u64 {
        self.saved.lock().expect("saved lock").0
    }

    /// Reads new events every second until `stop` fires, then once more.
    pub async fn run(app: Arc<App>, stop: tokio::sync::watch::Receiver<bool>) {
        let pass: fn(&App) -> Result<bool, String> = |app| {
            let insights = &app.insights;
            insights
                .usage
                .time(|| insights.pass(app, crate::app::now()))
        };
        tasks::every(POLL, stop, AtStop::Finish, || {
            tasks::drain(&app, "an Insights pass", pass)
        })
        .await;
        let live = app.insights.live.lock().expect("insights lock");
        if let Err(error) = app.insights.save(&app, &live, true) {
            tracing::error!(%error, "Insights: the state could not be saved at shutdown");
        }
    }

    /// One pass: what the journal holds beyond the cursor (up to the budget), then idle
    /// accounts and regions close their minutes by the clock `now`, and the Insights
    /// decided are stored. Returns whether more of the journal waits.
    pub fn pass(&self, app: &App, now: i64) -> Result<bool, String> {
        let mut guard = self.live.lock().expect("insights lock");
        let live = &mut *guard;
        let cursor = live.cursor;
        // Trail changes record their event inside the metadata lock, so no change below
        // `until` is missing from this snapshot.
        let (trails, until) = app.meta.read(|entries| {
            let trails: Vec<PlannedTrail> = crate::delivery::planned_trails(entries, &app.settings)
                .into_iter()
                .filter(|t| !t.trail.insight_selectors.is_empty() && t.trail.logging_since(cursor))
                .collect();
            (trails, app.store.committed_seq())
        });
        if trails.is_empty() {
            // Nothing is learned while no trail asks: a baseline with a hole in it would
            // make the first minutes after Insights are turned on again look unusual.
            live.detector = None;
            if !live.unsent.is_empty() || !live.unqueued.is_empty() {
                tracing::warn!(
                    unstored = live.unsent.len(),
                    unqueued = live.unqueued.len(),
                    "Insights events not yet stored or queued for the webhook are dropped: \
                     no trail asks for Insights now"
                );
                live.unsent.clear();
                live.unqueued.clear();
            }
            live.cursor = until.max(cursor);
            return self.save(app, live, false).map(|()| false);
        }
        // Calls are counted as they are read, straight from the summaries in the reader's
        // buffer. A read that fails part way leaves the cursor where it stopped: the
        // detector has then seen exactly the events below the cursor, and the next pass
        // goes on from there.
        let detector = live
            .detector
            .get_or_insert_with(|| Scopes::new(self.params.clone()));
        let (mut read, mut unreadable) = (0u64, 0u64);
        let mut count = |seq: u64, entry: Entry<'_>| {
            read += 1;
            let Ok(summary) = summary::of_entry(entry.record, entry.summary) else {
                unreadable += 1;
                return;
            };
            let Ok(call) = ReadCall::of_summary(&summary) else {
                return;
            };
            let call = call.call();
            let covered = trails.iter().any(|t| {
                t.trail.logging_at(seq) && t.covers(call.account, call.region, call.event_source)
            });
            if covered && call.time <= now + MAX_AHEAD_SECS {
                detector.observe(&call, 1, now);
            }
        };
        let reached = if until > cursor {
            tasks::read_journal(
                app,
                &mut live.reader,
                cursor,
                until,
                PASS_BUDGET,
                &mut count,
            )
        } else {
            Ok(cursor)
        };
        self.usage.read(read);
        if unreadable > 0 {
            tracing::error!(
                unreadable,
                "journal records Insights cannot read; not counted"
            );
        }
        let to = match reached {
            Ok(to) => to,
            Err(failed) => {
                live.cursor = failed.reached;
                return Err(failed.error);
            }
        };
        detector.close_idle(now, IDLE_SECS);
        let counts = detector.take_counts();
        if !counts.is_empty() {
            // (A count that cannot be kept is a hole in the metrics, which the metrics log;
            // the calls are counted already and are not counted again.)
            self.metrics
                .lock()
                .expect("metrics lock")
                .record(counts, now);
        }
        for insight in detector.take() {
            let wanted = trails.iter().any(|t| {
                t.covers(&insight.account, &insight.region, &insight.event_source)
                    && t.trail.wants_insights(insight.kind.name())
            });
            if !wanted {
                continue;
            }
            let record = insight.record().into_bytes();
            if app.insights_webhook.is_some() {
                live.unqueued.push(record.clone());
            }
            match Event::from_record(record) {
                Ok(event) => live.unsent.push(event),
                // Not expected: the record is ours. Dropping it keeps the others flowing.
                Err(error) => tracing::error!(%error, "an Insights record does not index; dropped"),
            }
        }
        live.cursor = to;
        if !live.unsent.is_empty() {
            // A copy goes to the store, so that the events stay for a retry if it fails
            // (Insights are few).
            app.store
                .append_blocking(live.unsent.clone())
                .map_err(|e| format!("storing Insights events: {e}"))?;
            live.unsent.clear();
        }
        if let Some(webhook) = &app.insights_webhook {
            if !live.unqueued.is_empty() {
                let records: Vec<&[u8]> = live.unqueued.iter().map(Vec::as_slice).collect();
                webhook.enqueue(&records)?;
                live.unqueued.clear();
            }
        }
        self.save(app, live, false)?;
        Ok(to < until)
    }

    /// Writes the metrics' ended days to their files, then what changed in the open days.
    /// Before the detector's snapshot, so the metrics saved are never older than that.
    fn save_metrics(&self) -> std::io::Result<()> {
        let mut metrics = self.metrics.lock().expect("metrics lock");
        metrics.write_ended_days(crate::app::now())?;
        metrics.save()
    }

    /// Saves the cursor, and the detector's state that goes with it, when the cursor moved
    /// and a while has passed since the last save (or `now`); then lets the journal go
    /// below it. Not while Insights decided wait to be stored or queued: a state that has
    /// decided them must not outlive them (the journal from the last save decides them
    /// again).
    /// Only the pass saves (under the live lock), so the saved lock is held just to read
    /// and to update, never while writing.
    fn save(&self, app: &App, live: &Live, now: bool) -> Result<(), String> {
        let (saved_cursor, saved_at) = *self.saved.lock().expect("saved lock");
        let every = match live.detector {
            Some(_) => SNAPSHOT_EVERY,
            None => SAVE_EVERY,
        };
        let due = now || saved_at.elapsed() >= every;
        let waiting = !live.unsent.is_empty() || !live.unqueued.is_empty();
        if saved_cursor == live.cursor || !due || waiting {
            return Ok(());
        }
        self.save_metrics()
            .map_err(|e| format!("saving the Insights metrics: {e}"))?;
        let snapshot = self.dir.join(SNAPSHOT_FILE);
        match &live.detector {
            Some(scopes) => {
                let mut bytes = live.cursor.to_le_bytes().to_vec();
                bytes.extend(scopes.snapshot());
                cairn_store::fsutil::write_atomic(&snapshot, &bytes).map_err(|e| e.to_string())
            }
            None => tasks::remove_state(&snapshot).map_err(|e| e.to_string()),
        }
        .and_then(|()| {
            let state = Saved {
                cursor: live.cursor,
            };
            tasks::write_state(&self.dir.join(STATE_FILE), &state)
        })
        .map_err(|e| format!("saving the Insights state: {e}"))?;
        *self.saved.lock().expect("saved lock") = (live.cursor, std::time::Instant::now());
        app.release_journal();
        Ok(())
    }
}

/// The metrics in `dir`, with their open days as saved; saved days that cannot be read
/// back are left out, and the log says so.
fn open_metrics(dir: &Path) -> Metrics {
    Metrics::open(dir, crate::app::now()).unwrap_or_else(|error| {
        tracing::warn!(%error, "Insights metrics: the days not yet written are lost");
        Metrics::empty(dir)
    })
}

/// The detector saved in `dir` and the journal position it goes on from, unless there is
/// none, or it is older than the saved `cursor` (the journal before that may be gone), or
/// it cannot be read back: then Insights learn afresh, and say so.
fn restore(dir: &Path, cursor: u64, params: &Params) -> std::io::Result<Option<(u64, Scopes)>> {
    let Some(bytes) =
        fsutil::read_optional(&dir.join(SNAPSHOT_FILE)).map_err(std::io::Error::other)?
    else {
        return Ok(None);
    };
    let restored = match bytes.split_first_chunk::<8>() {
        None => Err("too short".to_string()),
        Some((at, _)) if u64::from_le_bytes(*at) < cursor => {
            Err("older than the saved cursor".to_string())
        }
        Some((at, rest)) => Scopes::restore(params.clone(), rest, crate::app::now())
            .map(|scopes| (u64::from_le_bytes(*at), scopes)),
    };
    match restored {
        Ok(restored) => Ok(Some(restored)),
        Err(error) => {
            tracing::warn!(%error, "Insights: the saved detector state is not used; learning afresh");
            Ok(None)
        }
    }
}
