//! Live Insights. A consumer of the journal, with its own cursor, feeds each management
//! API call to the detector when a logging trail with Insights selectors covers the call's
//! account and region, closes the minutes the clock has passed, and records the Insights
//! events the detector decides as events of their own. From the journal they reach the
//! event history (LookupEvents with `EventCategory=insight`) and, through delivery and log
//! groups, the trails that asked for their type: `CloudTrail-Insight/` files (digested with
//! the trail's log files) and the trails' log groups.
//!
//! An Insights event's eventID is a function of the Insight (account, region, API, type,
//! first minute and state), so an event decided again after a restart is stored once: the
//! journal keeps the first of an account's events with one eventID.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cairn_insights::source::ReadCall;
use cairn_insights::{Params, Scopes};
use cairn_store::journal::JournalReader;
use cairn_store::Event;
use serde::{Deserialize, Serialize};

use crate::app::App;
use crate::delivery::build::PlannedTrail;
use crate::tasks::{self, AtStop};

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
/// The cursor is saved at least this often while it moves.
const SAVE_EVERY: Duration = Duration::from_secs(2);
const STATE_FILE: &str = "state.json";

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
}

pub struct Insights {
    dir: PathBuf,
    params: Params,
    live: Mutex<Live>,
    /// The cursor as last saved, and when: the journal is kept from here.
    saved: Mutex<(u64, std::time::Instant)>,
}

impl Insights {
    /// Opens `<data_dir>/insights`; a new one starts at journal position `start`.
    pub fn open(data_dir: &Path, start: u64, params: Params) -> std::io::Result<Insights> {
        let dir = data_dir.join("insights");
        let saved = tasks::read_state(&dir.join(STATE_FILE))?.unwrap_or(Saved { cursor: start });
        Ok(Insights {
            dir,
            params,
            live: Mutex::new(Live {
                cursor: saved.cursor,
                detector: None,
                reader: None,
                unsent: Vec::new(),
            }),
            saved: Mutex::new((saved.cursor, std::time::Instant::now())),
        })
    }

    /// The journal position below which nothing is needed any more.
    pub fn saved_cursor(&self) -> u64 {
        self.saved.lock().expect("saved lock").0
    }

    /// Reads new events every second until `stop` fires, then once more.
    pub async fn run(app: Arc<App>, stop: tokio::sync::watch::Receiver<bool>) {
        let pass: fn(&App) -> Result<bool, String> =
            |app| app.insights.pass(app, crate::app::now());
        tasks::every(POLL, stop, AtStop::Finish, || {
            tasks::drain(&app, "an Insights pass", pass)
        })
        .await;
        let cursor = app.insights.live.lock().expect("insights lock").cursor;
        if let Err(error) = app.insights.save(&app, cursor, true) {
            tracing::error!(%error, "Insights: the cursor could not be saved at shutdown");
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
            if !live.unsent.is_empty() {
                tracing::warn!(
                    count = live.unsent.len(),
                    "Insights events the store refused are dropped: no trail asks for Insights now"
                );
                live.unsent.clear();
            }
            live.cursor = until.max(cursor);
            drop(guard);
            return self.save(app, until.max(cursor), false).map(|()| false);
        }
        // The range is read whole before any call is counted, so that a failed read
        // counts nothing and the next pass reads it again.
        let mut records = Vec::new();
        let mut to = cursor;
        if until > cursor {
            if live.reader.as_ref().is_none_or(|r| r.next_seq() != cursor) {
                live.reader = Some(app.store.journal_reader(cursor));
            }
            let reader = live.reader.as_mut().expect("opened above");
            match reader.read(until, PASS_BUDGET, |seq, record| {
                records.push((seq, record.to_vec()))
            }) {
                Ok(read_to) => to = read_to,
                Err(error) => {
                    live.reader = None;
                    return Err(error.to_string());
                }
            }
        }
        let detector = live
            .detector
            .get_or_insert_with(|| Scopes::new(self.params.clone()));
        for (seq, record) in &records {
            let Ok(read) = ReadCall::parse(record) else {
                continue;
            };
            let call = read.call();
            let covered = trails.iter().any(|t| {
                t.trail.logging_at(*seq) && t.covers(call.account, call.region, call.event_source)
            });
            if covered && call.time <= now + MAX_AHEAD_SECS {
                detector.observe(&call, 1, now);
            }
        }
        detector.close_idle(now, IDLE_SECS);
        for insight in detector.take() {
            let wanted = trails.iter().any(|t| {
                t.covers(&insight.account, &insight.region, &insight.event_source)
                    && t.trail.wants_insights(insight.kind.name())
            });
            if !wanted {
                continue;
            }
            match Event::from_record(insight.record().into_bytes()) {
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
        drop(guard);
        self.save(app, to, false)?;
        Ok(to < until)
    }

    /// Saves the cursor when it moved and a while has passed since the last save (or
    /// `now`), and lets the journal go below it.
    fn save(&self, app: &App, cursor: u64, now: bool) -> Result<(), String> {
        let mut saved = self.saved.lock().expect("saved lock");
        if saved.0 == cursor || (!now && saved.1.elapsed() < SAVE_EVERY) {
            return Ok(());
        }
        let bytes = serde_json::to_vec(&Saved { cursor }).expect("state serializes");
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| e.to_string())
            .and_then(|()| {
                cairn_store::fsutil::write_atomic(&self.dir.join(STATE_FILE), &bytes)
                    .map_err(|e| e.to_string())
            })
            .map_err(|e| format!("saving the Insights cursor: {e}"))?;
        *saved = (cursor, std::time::Instant::now());
        drop(saved);
        app.release_journal();
        Ok(())
    }
}
