//! The server's background loops: delivery, log groups, Insights and alarms each do their
//! work on a tick until shutdown.

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use cairn_core::route::RouteFields;
use cairn_store::journal::Entry;

use crate::app::App;

/// What a loop does when shutdown is asked for.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum AtStop {
    /// Work once more, so that what was recorded before shutdown is handled.
    Finish,
    /// Stop at once.
    Quit,
}

/// Runs `work` every `period` (a late tick waits; ticks are not bunched) until `stop`
/// fires.
pub async fn every<F, Fut>(
    period: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
    at_stop: AtStop,
    mut work: F,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => break,
        }
        work().await;
    }
    if at_stop == AtStop::Finish {
        work().await;
    }
}

/// A journal consumer's saved JSON state, or `None` when it has none yet.
pub fn read_state<T: serde::de::DeserializeOwned>(path: &Path) -> std::io::Result<Option<T>> {
    cairn_store::fsutil::read_json(path).map_err(std::io::Error::other)
}

/// A journal consumer's saved state, or `new()` saved first: a consumer that stops before
/// its first save must resume where it began, not at wherever the journal has got to.
pub fn load_state<T>(path: &Path, new: impl FnOnce() -> T) -> std::io::Result<T>
where
    T: serde::Serialize + serde::de::DeserializeOwned,
{
    if let Some(state) = read_state(path)? {
        return Ok(state);
    }
    let state = new();
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    write_state(path, &state).map_err(std::io::Error::other)?;
    Ok(state)
}

/// Removes a consumer's state file, if there is one.
pub fn remove_state(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Writes a journal consumer's state as JSON, whole or not at all.
pub fn write_state<T: serde::Serialize>(path: &Path, state: &T) -> Result<(), String> {
    cairn_store::fsutil::write_json(path, state).map_err(|e| e.to_string())
}

/// An event read from the journal, as a consumer keeps it between reading and using it.
pub struct JournalEvent {
    pub seq: u64,
    pub record: Vec<u8>,
    /// What routing reads of the record (see `cairn_core::summary`); empty when the
    /// journal has none for it.
    pub summary: Vec<u8>,
}

impl JournalEvent {
    pub fn new(seq: u64, entry: Entry<'_>) -> JournalEvent {
        JournalEvent {
            seq,
            record: entry.record.to_vec(),
            summary: entry.summary.to_vec(),
        }
    }

    /// The fields the event is routed by, from its summary or else its record.
    pub fn route_fields(&self) -> Result<RouteFields, String> {
        RouteFields::of_summary(&cairn_core::summary::of_entry(&self.record, &self.summary)?)
    }
}

/// A journal read that failed part way.
pub struct ReadFailed {
    /// Every event below this position was visited, and none from it.
    pub reached: u64,
    pub error: String,
}

impl From<ReadFailed> for String {
    fn from(failed: ReadFailed) -> String {
        failed.error
    }
}

/// Reads the journal from `cursor` up to `until` (at most `budget` bytes of records),
/// calling `visit(seq, entry)`, with the reader a consumer keeps between passes in `kept`:
/// opened again when it is not at `cursor`, dropped when a read fails. Returns the
/// position reached.
pub fn read_journal(
    app: &App,
    kept: &mut Option<cairn_store::journal::JournalReader>,
    cursor: u64,
    until: u64,
    budget: usize,
    visit: impl FnMut(u64, Entry<'_>),
) -> Result<u64, ReadFailed> {
    if kept.as_ref().is_none_or(|r| r.next_seq() != cursor) {
        *kept = Some(app.store.journal_reader(cursor));
    }
    let reader = kept.as_mut().expect("opened above");
    match reader.read(until, budget, visit) {
        Ok(reached) => Ok(reached),
        Err(error) => {
            let reached = reader.next_seq();
            *kept = None;
            Err(ReadFailed {
                reached,
                error: error.to_string(),
            })
        }
    }
}

/// Runs a journal consumer's `pass` on a blocking thread until it reports that nothing
/// more waits (a pass returns whether more does), logging a failure as `what` failing.
pub async fn drain(app: &Arc<App>, what: &'static str, pass: fn(&App) -> Result<bool, String>) {
    let app = app.clone();
    let result = tokio::task::spawn_blocking(move || loop {
        match pass(&app) {
            Ok(true) => continue,
            Ok(false) => return Ok(()),
            Err(error) => return Err(error),
        }
    })
    .await;
    match result {
        Ok(Ok(())) => {}
        Ok(Err(error)) => tracing::error!(%error, "{what} failed; it will be retried"),
        Err(error) => tracing::error!(%error, "{what} panicked"),
    }
}
