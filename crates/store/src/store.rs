//! The store: journal, group-commit writer thread, history and its flusher thread.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use cairn_core::{IndexError, IndexFields};

use crate::error::{Result, StoreError};
use cairn_core::timefmt::day_of;

use crate::history::{event_key, History, HistoryOptions, HistoryStats, Hit, LookupQuery};
use crate::history_only::HistoryOnly;
use crate::journal::{Entry, Journal};

/// An event ready to be stored: its record, the fields the history indexes, and its
/// summary for the journal's other consumers (see `cairn_core::summary`; empty when it
/// has none, and they read the record instead).
#[derive(Clone)]
pub struct Event {
    pub fields: IndexFields,
    pub record: Vec<u8>,
    pub summary: Vec<u8>,
}

impl Event {
    /// Reads the index fields and the summary of a record (two parses: for Cairn's own
    /// events, which are few; records from producers are read once, as they are checked).
    pub fn from_record(record: Vec<u8>) -> std::result::Result<Event, cairn_core::IndexError> {
        let fields = IndexFields::extract(&record)?;
        let summary = cairn_core::summary::read(&record).map_err(IndexError::NotJson)?;
        Ok(Event {
            fields,
            record,
            summary,
        })
    }
}

/// What became of an acknowledged batch: for each event, its journal sequence number, or
/// `None` when the store already held an event of that account with that eventID (the
/// first occurrence in journal order wins; a duplicate is acknowledged, not stored).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Appended {
    pub stored: Vec<Option<u64>>,
}

pub type AppendCallback = Box<dyn FnOnce(Result<Appended>) + Send>;

struct AppendRequest {
    events: Vec<Event>,
    done: AppendCallback,
}

#[derive(Clone, Debug)]
pub struct StoreOptions {
    pub history: HistoryOptions,
    /// The writer takes at most this many bytes of waiting events into one frame.
    pub max_commit_bytes: usize,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            history: HistoryOptions::default(),
            max_commit_bytes: 8 << 20,
        }
    }
}

/// Figures about the store.
#[derive(Clone, Debug, Default)]
pub struct StoreStats {
    pub history: HistoryStats,
    pub journal_bytes: u64,
}

/// Journal positions shared between the writer and the journal's other consumers.
#[derive(Default)]
struct Positions {
    /// Every event below this position is durable.
    committed: AtomicU64,
    /// Consumers other than the history still need the journal from here on.
    retain_from: AtomicU64,
}

pub struct Store {
    history: Arc<History>,
    sender: Mutex<Option<Sender<AppendRequest>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    flusher: Mutex<Option<JoinHandle<()>>>,
    compactor: Mutex<Option<JoinHandle<()>>>,
    flush_signal: Mutex<Option<Sender<()>>>,
    journal_bytes: Arc<std::sync::atomic::AtomicU64>,
    positions: Arc<Positions>,
    journal_dir: std::path::PathBuf,
    history_only: Mutex<HistoryOnly>,
    /// Held while the store is open.
    _lock: std::fs::File,
}

impl Store {
    /// Opens the store in `dir`, replaying the journal tail into the history.
    pub fn open(dir: &Path, options: StoreOptions) -> Result<Store> {
        crate::fsutil::create_dir(dir)?;
        // One process at a time: the journal has a single writer.
        let lock_path = dir.join("LOCK");
        let lock = std::fs::File::create(&lock_path)
            .map_err(|e| StoreError::io(lock_path.display(), e))?;
        if let Err(e) = lock.try_lock() {
            return Err(StoreError {
                kind: crate::StoreErrorKind::Io,
                message: format!("{} is in use by another cairn process ({e})", dir.display()),
            });
        }
        let history = Arc::new(History::open(
            &dir.join("history"),
            options.history.clone(),
        )?);
        let durable = history.durable_seq();
        let journal = Journal::open(&dir.join("journal"), durable + 1)?;
        let history_only = HistoryOnly::open(dir, journal.next_seq(), journal.first_seq())?;

        let mut replayed = 0u64;
        let mut batch = Vec::new();
        journal.read_from(durable + 1, |seq, record| {
            match IndexFields::extract(record) {
                Ok(fields) => batch.push((seq, fields, record.into())),
                // Every journaled record was indexable when accepted; one that is not
                // has been damaged since, and must not stop the rest from loading.
                Err(e) => {
                    tracing::error!(seq, error = %e, "journal record cannot be indexed; skipped")
                }
            }
            replayed += 1;
            if batch.len() >= 4096 {
                history.insert(std::mem::take(&mut batch), seq);
            }
            Ok(())
        })?;
        let last = journal.next_seq() - 1;
        history.insert(batch, last);
        if replayed > 0 {
            tracing::info!(
                events = replayed,
                "replayed the journal tail into the history"
            );
        }

        let (compact_tx, compact_rx) = mpsc::channel::<()>();
        let compactor = {
            let history = history.clone();
            std::thread::Builder::new()
                .name("cairn-compact".into())
                .spawn(move || compact_loop(&history, compact_rx))
                .map_err(|e| StoreError::io("starting the compaction thread", e))?
        };
        let (flush_tx, flush_rx) = mpsc::channel::<()>();
        let flusher = {
            let history = history.clone();
            std::thread::Builder::new()
                .name("cairn-flush".into())
                .spawn(move || flush_loop(&history, flush_rx, compact_tx))
                .map_err(|e| StoreError::io("starting the flush thread", e))?
        };
        let _ = flush_tx.send(());

        let journal_bytes = Arc::new(std::sync::atomic::AtomicU64::new(journal.disk_bytes()));
        let positions = Arc::new(Positions {
            committed: AtomicU64::new(journal.next_seq()),
            // Nothing is removed for other consumers until one says where it stands.
            retain_from: AtomicU64::new(0),
        });
        let (tx, rx) = mpsc::channel::<AppendRequest>();
        let writer = {
            let history = history.clone();
            let flush_tx = flush_tx.clone();
            let journal_bytes = journal_bytes.clone();
            let positions = positions.clone();
            let max = options.max_commit_bytes;
            std::thread::Builder::new()
                .name("cairn-journal".into())
                .spawn(move || {
                    write_loop(
                        journal,
                        &history,
                        rx,
                        flush_tx,
                        max,
                        &journal_bytes,
                        &positions,
                    )
                })
                .map_err(|e| StoreError::io("starting the journal thread", e))?
        };
        Ok(Store {
            history,
            sender: Mutex::new(Some(tx)),
            writer: Mutex::new(Some(writer)),
            flusher: Mutex::new(Some(flusher)),
            compactor: Mutex::new(Some(compactor)),
            flush_signal: Mutex::new(Some(flush_tx)),
            journal_bytes,
            positions,
            journal_dir: dir.join("journal"),
            history_only: Mutex::new(history_only),
            _lock: lock,
        })
    }

    /// Queues events for the next group commit; `done` runs once they are durable and
    /// visible to lookups, or once the commit failed (then none of them was stored).
    pub fn append(&self, events: Vec<Event>, done: AppendCallback) {
        let sender = self.sender.lock().expect("sender lock").clone();
        match sender {
            Some(sender) => {
                if let Err(mpsc::SendError(request)) = sender.send(AppendRequest { events, done }) {
                    (request.done)(Err(StoreError::closed()));
                }
            }
            None => done(Err(StoreError::closed())),
        }
    }

    /// Appends and waits: for tools and tests that are not async.
    pub fn append_blocking(&self, events: Vec<Event>) -> Result<Appended> {
        let (tx, rx) = mpsc::channel();
        self.append(events, Box::new(move |r| drop(tx.send(r))));
        rx.recv().unwrap_or_else(|_| Err(StoreError::closed()))
    }

    pub fn lookup(&self, query: &LookupQuery) -> Result<Vec<Hit>> {
        self.history.lookup(query)
    }

    /// Every event below this journal position is durable (and acknowledged or about to be).
    pub fn committed_seq(&self) -> u64 {
        self.positions.committed.load(Ordering::Acquire)
    }

    /// Tells the store that a consumer other than the history (trail delivery) still
    /// needs the journal from `seq` on; segments below it may then be removed.
    pub fn retain_from(&self, seq: u64) {
        self.positions.retain_from.store(seq, Ordering::Release);
    }

    /// A reader of the journal from `seq` on, for a consumer that has called
    /// [`Store::retain_from`]. It passes over the events that belong to the history only.
    pub fn journal_reader(&self, seq: u64) -> crate::journal::JournalReader {
        let passed_over = self.history_only.lock().expect("ranges lock").closed();
        crate::journal::JournalReader::new(&self.journal_dir, seq).passing_over(passed_over)
    }

    /// Events appended from now until [`Store::end_history_only`] belong to the event
    /// history only: journal readers pass over them (an import without delivery). Call
    /// with no append in flight.
    pub fn begin_history_only(&self) -> Result<()> {
        let from = self.committed_seq();
        self.history_only.lock().expect("ranges lock").begin(from)
    }

    /// Ends what [`Store::begin_history_only`] began, once its appends are acknowledged.
    pub fn end_history_only(&self) -> Result<()> {
        let to = self.committed_seq();
        self.history_only.lock().expect("ranges lock").end(to)
    }

    /// Expires history days before `first_day`.
    pub fn drop_before(&self, first_day: i64) -> Result<usize> {
        self.history.drop_before(first_day)
    }

    /// Writes everything in memory into runs now (shutdown, benchmarks, tests).
    pub fn flush(&self) -> Result<()> {
        self.history.freeze();
        self.history.flush()
    }

    /// Runs every compaction that is due now (benchmarks, tests); the compaction thread
    /// does the same in the background.
    pub fn compact(&self) -> Result<()> {
        while self.history.compact_once()? {}
        Ok(())
    }

    pub fn stats(&self) -> StoreStats {
        StoreStats {
            history: self.history.stats(),
            journal_bytes: self
                .journal_bytes
                .load(std::sync::atomic::Ordering::Relaxed),
        }
    }

    /// Stops accepting events, finishes the commits in flight, stops the threads.
    pub fn close(&self) {
        self.sender.lock().expect("sender lock").take();
        if let Some(writer) = self.writer.lock().expect("writer lock").take() {
            let _ = writer.join();
        }
        self.flush_signal.lock().expect("flush lock").take();
        if let Some(flusher) = self.flusher.lock().expect("flusher lock").take() {
            let _ = flusher.join();
        }
        // The flusher's exit closes the compactor's channel; a merge in progress finishes.
        if let Some(compactor) = self.compactor.lock().expect("compactor lock").take() {
            let _ = compactor.join();
        }
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        self.close();
    }
}

/// The single journal writer: takes every waiting request into one frame (group commit),
/// makes it durable, shows it to the history, then answers each caller.
fn write_loop(
    mut journal: Journal,
    history: &History,
    requests: Receiver<AppendRequest>,
    flush: Sender<()>,
    max_commit_bytes: usize,
    journal_bytes: &std::sync::atomic::AtomicU64,
    positions: &Positions,
) {
    let mut last_removed_upto = 0;
    while let Ok(first) = requests.recv() {
        let mut batch = vec![first];
        let mut bytes: usize = batch[0].events.iter().map(|e| e.record.len()).sum();
        while bytes < max_commit_bytes {
            match requests.try_recv() {
                Ok(request) => {
                    bytes += request.events.iter().map(|e| e.record.len()).sum::<usize>();
                    batch.push(request);
                }
                Err(_) => break,
            }
        }
        match commit(&mut journal, history, batch, &positions.committed) {
            Ok(true) => {
                let _ = flush.send(());
                // Backpressure: while the flusher is behind, stop taking new commits.
                history.wait_for_backlog();
            }
            Ok(false) => {}
            Err(error) => {
                tracing::error!(%error, "journal commit failed; its callers got the error")
            }
        }
        // A segment goes once the history holds it and every other consumer is past it.
        let durable = history.durable_seq().min(
            positions
                .retain_from
                .load(Ordering::Acquire)
                .saturating_sub(1),
        );
        if durable > last_removed_upto {
            match journal.remove_before(durable + 1) {
                Ok(_) => last_removed_upto = durable,
                Err(error) => tracing::warn!(%error, "could not remove consumed journal segments"),
            }
        }
        journal_bytes.store(journal.disk_bytes(), std::sync::atomic::Ordering::Relaxed);
    }
}

/// One group commit: drops duplicates (in journal order), writes the rest as one durable
/// frame, shows them to the history, answers every caller. Returns whether a frozen
/// memtable now waits for the flusher.
fn commit(
    journal: &mut Journal,
    history: &History,
    batch: Vec<AppendRequest>,
    committed: &AtomicU64,
) -> Result<bool> {
    let fresh = match new_events(history, &batch) {
        Ok(fresh) => fresh,
        Err(error) => return Err(fail(batch, error)),
    };
    let entries: Vec<Entry<'_>> = batch
        .iter()
        .zip(&fresh)
        .flat_map(|(r, fresh)| {
            r.events
                .iter()
                .zip(fresh)
                .filter(|(_, new)| **new)
                .map(|(e, _)| Entry {
                    record: &e.record,
                    summary: &e.summary,
                })
        })
        .collect();
    let first_seq = if entries.is_empty() {
        journal.next_seq()
    } else {
        match journal.append(&entries) {
            Ok(seq) => seq,
            Err(error) => return Err(fail(batch, error)),
        }
    };
    let count = entries.len() as u64;
    drop(entries);
    committed.store(journal.next_seq(), Ordering::Release);

    let mut seq = first_seq;
    let mut answers = Vec::with_capacity(batch.len());
    let mut entries = Vec::with_capacity(count as usize);
    for (request, fresh) in batch.into_iter().zip(fresh) {
        let mut stored = Vec::with_capacity(request.events.len());
        for (event, new) in request.events.into_iter().zip(fresh) {
            if new {
                stored.push(Some(seq));
                entries.push((seq, event.fields, event.record.into_boxed_slice()));
                seq += 1;
            } else {
                stored.push(None);
            }
        }
        answers.push((request.done, Appended { stored }));
    }
    let waiting = count > 0 && history.insert(entries, first_seq + count - 1);
    for (done, appended) in answers {
        done(Ok(appended));
    }
    Ok(waiting)
}

/// For each event of each request: whether it is new, neither held already nor earlier in
/// this batch.
fn new_events(history: &History, batch: &[AppendRequest]) -> Result<Vec<Vec<bool>>> {
    let mut in_batch = std::collections::HashSet::new();
    batch
        .iter()
        .map(|request| {
            request
                .events
                .iter()
                .map(|e| {
                    let first_here =
                        in_batch.insert(event_key(&e.fields.account, &e.fields.event_id));
                    Ok(first_here
                        && !history.holds(
                            &e.fields.account,
                            &e.fields.event_id,
                            day_of(e.fields.time),
                        )?)
                })
                .collect()
        })
        .collect()
}

fn fail(batch: Vec<AppendRequest>, error: StoreError) -> StoreError {
    for request in batch {
        (request.done)(Err(error.clone()));
    }
    error
}

fn flush_loop(history: &History, signals: Receiver<()>, compact: Sender<()>) {
    while signals.recv().is_ok() {
        match history.flush() {
            Ok(()) => drop(compact.send(())),
            Err(error) => {
                tracing::error!(%error, "history flush failed; the journal still holds the events, retrying later");
                std::thread::sleep(std::time::Duration::from_secs(1));
            }
        }
    }
    history.freeze();
    if let Err(error) = history.flush() {
        tracing::error!(%error, "final history flush failed; the journal still holds the events");
    }
}

fn compact_loop(history: &History, signals: Receiver<()>) {
    while signals.recv().is_ok() {
        loop {
            // Shutting down (the flusher is gone): stop between merges, not after all.
            if let Err(mpsc::TryRecvError::Disconnected) = signals.try_recv() {
                return;
            }
            match history.compact_once() {
                Ok(true) => continue,
                Ok(false) => break,
                Err(error) => {
                    tracing::error!(%error, "compaction failed; the runs it read are unchanged");
                    std::thread::sleep(std::time::Duration::from_secs(1));
                    break;
                }
            }
        }
    }
}
