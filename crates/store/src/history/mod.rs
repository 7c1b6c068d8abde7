//! The event history: management and Insights events of the last N days, by account and
//! region, newest first.
//!
//! New events go into an in-memory *memtable*. When it grows past a size it is frozen
//! and a background thread writes it out as one run per UTC day it touches, then commits
//! the new runs and the journal position they cover to the manifest in one atomic file
//! replacement. Another thread merges runs of similar size within a day (see
//! `compaction.rs`).
//! Expiring a day removes it from the manifest, then deletes its directory: the cost is a
//! few file operations, whatever the day holds.

mod bloom;
mod compaction;
mod manifest;
mod memtable;
mod query;
mod run;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock};

use cairn_core::timefmt::{day_label, day_of, SECONDS_PER_DAY};
use cairn_core::IndexFields;

use crate::error::{Result, StoreError};
use crate::fsutil;
use manifest::Manifest;
use memtable::{MemEntry, Memtable};
use query::{kind_of, Source};
pub use query::{Cursor, Hit, LookupQuery};
pub use run::id_hash as event_key;
use run::{id_hash, Run, RunWriter};

/// Tuning knobs of the history.
#[derive(Clone, Debug)]
pub struct HistoryOptions {
    /// Freeze and flush the memtable beyond this many bytes.
    pub memtable_bytes: usize,
    /// Merge this many runs of similar size within a day into one (size-tiered
    /// compaction: every event is rewritten about log_fanout(events per day) times, and a
    /// day holds at most fanout − 1 runs per size tier).
    pub compaction_fanout: usize,
}

impl Default for HistoryOptions {
    fn default() -> Self {
        HistoryOptions {
            memtable_bytes: 24 << 20,
            compaction_fanout: 8,
        }
    }
}

struct State {
    active: Memtable,
    /// Frozen memtables, oldest first, waiting to become runs.
    frozen: Vec<Arc<Memtable>>,
    days: BTreeMap<i64, Vec<Arc<Run>>>,
    /// Days before this one are expired: neither kept nor accepted.
    first_day: i64,
}

impl State {
    /// Moves the active memtable to the frozen list, starting an empty one that continues
    /// from the same journal position.
    fn freeze_active(&mut self) {
        let upto_seq = self.active.upto_seq;
        let full = std::mem::replace(
            &mut self.active,
            Memtable {
                upto_seq,
                ..Memtable::default()
            },
        );
        self.frozen.push(Arc::new(full));
    }
}

pub struct History {
    dir: PathBuf,
    options: HistoryOptions,
    state: RwLock<State>,
    /// Held by whoever rewrites the manifest (flush, compaction, expiry).
    manifest: Mutex<Manifest>,
    /// The journal position up to which the runs hold everything: the history's durable
    /// consumer cursor.
    durable_seq: AtomicU64,
    /// How many frozen memtables wait for the flusher; writers wait while it is high, so
    /// memory stays bounded when ingest outruns flushing.
    backlog: (Mutex<usize>, Condvar),
    /// Held while a compaction merges, and while days expire: the days whose last merge
    /// failed.
    merging: Mutex<BTreeSet<i64>>,
}

/// Frozen memtables allowed to wait before writers are slowed down.
const MAX_BACKLOG: usize = 1;

/// Figures about the history, for benchmarks and status.
#[derive(Clone, Debug, Default)]
pub struct HistoryStats {
    pub days: usize,
    pub runs: usize,
    pub run_events: usize,
    pub memory_events: usize,
    pub disk_bytes: u64,
    pub index_memory_bytes: usize,
}

fn sort_key(fields: &IndexFields, seq: u64) -> (&str, &str, u8, i64, u64) {
    (
        &fields.account,
        &fields.region,
        kind_of(fields),
        fields.time,
        seq,
    )
}

impl History {
    /// Opens the history in `dir`: loads the manifest, opens its runs and removes files a
    /// crash left behind that the manifest does not name.
    pub fn open(dir: &Path, options: HistoryOptions) -> Result<History> {
        fsutil::create_dir(dir)?;
        let manifest = Manifest::load(dir)?;
        let mut days: BTreeMap<i64, Vec<Arc<Run>>> = BTreeMap::new();
        for (&day, ids) in &manifest.days {
            for &id in ids {
                let run = Run::open(&run_path(dir, day, id), id)?;
                days.entry(day).or_default().push(Arc::new(run));
            }
        }
        manifest.remove_unlisted(dir)?;
        let durable = manifest.history_seq;
        Ok(History {
            dir: dir.to_owned(),
            options,
            state: RwLock::new(State {
                active: Memtable {
                    upto_seq: durable,
                    ..Memtable::default()
                },
                frozen: Vec::new(),
                days,
                first_day: i64::MIN,
            }),
            manifest: Mutex::new(manifest),
            durable_seq: AtomicU64::new(durable),
            backlog: (Mutex::new(0), Condvar::new()),
            merging: Mutex::new(BTreeSet::new()),
        })
    }

    /// The journal position the runs cover; the journal must be replayed after it.
    pub fn durable_seq(&self) -> u64 {
        self.durable_seq.load(Ordering::Acquire)
    }

    /// Offers newly journaled events (with their sequence numbers) to the history; `upto`
    /// is the last sequence number of the batch. Returns true when a frozen memtable is
    /// waiting to be flushed.
    pub fn insert(
        &self,
        events: impl IntoIterator<Item = (u64, IndexFields, Box<[u8]>)>,
        upto: u64,
    ) -> bool {
        let mut state = self.state.write().expect("history lock");
        let first_day = state.first_day;
        for (seq, fields, record) in events {
            if day_of(fields.time) >= first_day {
                state.active.push(MemEntry {
                    seq,
                    fields,
                    record,
                });
            }
        }
        state.active.upto_seq = state.active.upto_seq.max(upto);
        if state.active.bytes >= self.options.memtable_bytes {
            state.freeze_active();
        }
        self.set_backlog(state.frozen.len());
        !state.frozen.is_empty()
    }

    fn set_backlog(&self, frozen: usize) {
        let (count, changed) = &self.backlog;
        *count.lock().expect("backlog lock") = frozen;
        changed.notify_all();
    }

    /// Blocks while more memtables wait for the flusher than memory should hold.
    pub fn wait_for_backlog(&self) {
        let (count, changed) = &self.backlog;
        let mut waiting = count.lock().expect("backlog lock");
        while *waiting > MAX_BACKLOG {
            waiting = changed.wait(waiting).expect("backlog lock");
        }
    }

    /// Whether the history holds an event of `account` with `event_id` whose time falls
    /// on `day` (a duplicate carries the same time as its original).
    pub fn holds(&self, account: &str, event_id: &str, day: i64) -> Result<bool> {
        let hash = id_hash(account, event_id);
        let runs = {
            let state = self.state.read().expect("history lock");
            if state.active.ids.contains(&hash)
                || state.frozen.iter().any(|m| m.ids.contains(&hash))
            {
                return Ok(true);
            }
            state.days.get(&day).cloned().unwrap_or_default()
        };
        for run in runs {
            if run.holds(hash)? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Freezes whatever the memtable holds, so that the next flush writes it.
    pub fn freeze(&self) {
        let mut state = self.state.write().expect("history lock");
        if !state.active.entries.is_empty() || state.active.upto_seq > self.durable_seq() {
            state.freeze_active();
            self.set_backlog(state.frozen.len());
        }
    }

    /// Writes every frozen memtable out as runs, oldest first.
    pub fn flush(&self) -> Result<()> {
        loop {
            let next = self
                .state
                .read()
                .expect("history lock")
                .frozen
                .first()
                .cloned();
            let Some(memtable) = next else { return Ok(()) };
            self.flush_one(&memtable)?;
        }
    }

    fn flush_one(&self, memtable: &Arc<Memtable>) -> Result<()> {
        let mut manifest = self.manifest.lock().expect("manifest lock");
        let still_waiting = self
            .state
            .read()
            .expect("history lock")
            .frozen
            .iter()
            .any(|m| Arc::ptr_eq(m, memtable));
        if !still_waiting {
            return Ok(()); // another flush wrote it while we waited for the manifest
        }
        let mut by_day: BTreeMap<i64, Vec<&MemEntry>> = BTreeMap::new();
        for entry in &memtable.entries {
            by_day
                .entry(day_of(entry.fields.time))
                .or_default()
                .push(entry);
        }
        let first_day = self.state.read().expect("history lock").first_day;
        let mut written = Vec::new();
        let committed = self.write_runs(
            &mut manifest,
            by_day,
            first_day,
            memtable.upto_seq,
            &mut written,
        );
        if let Err(error) = committed {
            // Not named by the manifest: remove now rather than at the next start.
            for run in &written {
                let _ = std::fs::remove_file(run_path(&self.dir, run.day, run.id));
            }
            return Err(error);
        }

        let mut state = self.state.write().expect("history lock");
        for run in written {
            state.days.entry(run.day).or_default().push(run);
        }
        state.frozen.retain(|m| !Arc::ptr_eq(m, memtable));
        self.set_backlog(state.frozen.len());
        self.durable_seq
            .store(manifest.history_seq, Ordering::Release);
        Ok(())
    }

    /// Writes one run per day and commits them, with the journal position they reach, to
    /// the manifest.
    fn write_runs(
        &self,
        manifest: &mut Manifest,
        by_day: BTreeMap<i64, Vec<&MemEntry>>,
        first_day: i64,
        upto_seq: u64,
        written: &mut Vec<Arc<Run>>,
    ) -> Result<()> {
        for (day, mut entries) in by_day {
            if day < first_day {
                continue;
            }
            entries.sort_unstable_by(|a, b| {
                sort_key(&a.fields, a.seq).cmp(&sort_key(&b.fields, b.seq))
            });
            let id = manifest.take_run_id();
            fsutil::create_dir(&day_dir(&self.dir, day))?;
            let mut writer = RunWriter::create(&run_path(&self.dir, day, id), day)?;
            for entry in entries {
                writer.push(&entry.fields, entry.seq, &entry.record)?;
            }
            let path = writer.finish()?;
            fsutil::sync_dir(&day_dir(&self.dir, day))?;
            written.push(Arc::new(Run::open(&path, id)?));
        }
        let mut next = manifest.clone();
        for run in written.iter() {
            next.days.entry(run.day).or_default().push(run.id);
        }
        next.history_seq = next.history_seq.max(upto_seq);
        next.commit(&self.dir)?;
        *manifest = next;
        Ok(())
    }

    /// Expires every day before `first_day`: removes them from the manifest, then deletes
    /// their files. Returns how many days were dropped.
    pub fn drop_before(&self, first_day: i64) -> Result<usize> {
        // No merge runs meanwhile: one writing its run into a day being removed makes the
        // removal fail ("directory not empty"). Flushes hold the manifest lock.
        let _merges = self.merging.lock().expect("merge lock");
        let mut manifest = self.manifest.lock().expect("manifest lock");
        let mut state = self.state.write().expect("history lock");
        state.first_day = state.first_day.max(first_day);
        let expired: Vec<i64> = state.days.range(..first_day).map(|(d, _)| *d).collect();
        let cutoff = first_day * SECONDS_PER_DAY;
        state.active.entries.retain(|e| e.fields.time >= cutoff);
        drop(state);
        if expired.is_empty() {
            return Ok(0);
        }
        let mut next = manifest.clone();
        for day in &expired {
            next.days.remove(day);
        }
        next.commit(&self.dir)?;
        *manifest = next;
        let mut state = self.state.write().expect("history lock");
        for day in &expired {
            state.days.remove(day);
        }
        drop(state);
        for day in &expired {
            let dir = day_dir(&self.dir, *day);
            std::fs::remove_dir_all(&dir).map_err(|e| StoreError::io(dir.display(), e))?;
        }
        Ok(expired.len())
    }

    /// The newest events matching `query`, newest first, at most `query.limit` of them.
    pub fn lookup(&self, query: &LookupQuery) -> Result<Vec<Hit>> {
        if query.start > query.end || query.limit == 0 {
            return Ok(Vec::new());
        }
        let mut query = query.clone();
        if let Some(after) = query.after {
            // Nothing newer than the cursor can come next.
            query.end = query.end.min(after.time);
        }
        let mut candidates = Vec::new();
        let mut runs: Vec<Arc<Run>> = Vec::new();
        let mut days: Vec<(i64, std::ops::Range<usize>)> = Vec::new();
        {
            let state = self.state.read().expect("history lock");
            query.start = query
                .start
                .max(state.first_day.saturating_mul(SECONDS_PER_DAY));
            if query.start > query.end {
                return Ok(Vec::new());
            }
            state.active.search(&query, &mut candidates);
            for frozen in &state.frozen {
                frozen.search(&query, &mut candidates);
            }
            for (&day, day_runs) in state
                .days
                .range(day_of(query.start)..=day_of(query.end))
                .rev()
            {
                let from = runs.len();
                runs.extend(day_runs.iter().cloned());
                days.push((day, from..runs.len()));
            }
        }

        for (day, range) in days {
            let after_day = (day + 1) * SECONDS_PER_DAY;
            if candidates.iter().filter(|c| c.time >= after_day).count() >= query.limit {
                break; // this day and older ones hold only events older than enough found
            }
            for index in range {
                runs[index].search(&query, Source::Run(index), &mut candidates)?;
            }
        }

        candidates.sort_unstable_by_key(|c| std::cmp::Reverse(c.key()));
        candidates.truncate(query.limit);

        // Fetch the records of run candidates, one read per block.
        let mut by_run: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for (i, c) in candidates.iter().enumerate() {
            if let Source::Run(index) = c.source {
                by_run.entry(index).or_default().push(i);
            }
        }
        for (index, positions) in by_run {
            let ords: Vec<u32> = positions.iter().map(|&i| candidates[i].ord).collect();
            for (record, &i) in runs[index].records(&ords)?.into_iter().zip(&positions) {
                candidates[i].record = Some(record);
            }
        }
        Ok(candidates
            .into_iter()
            .map(|c| Hit {
                cursor: c.key(),
                record: c.record.unwrap_or_default(),
            })
            .collect())
    }

    pub fn stats(&self) -> HistoryStats {
        let state = self.state.read().expect("history lock");
        let mut stats = HistoryStats {
            days: state.days.len(),
            memory_events: state.active.entries.len()
                + state.frozen.iter().map(|m| m.entries.len()).sum::<usize>(),
            ..HistoryStats::default()
        };
        for run in state.days.values().flatten() {
            stats.runs += 1;
            stats.run_events += run.count();
            stats.disk_bytes += run.disk_bytes();
            stats.index_memory_bytes += run.memory_bytes();
        }
        stats
    }
}

fn day_dir(dir: &Path, day: i64) -> PathBuf {
    dir.join(day_label(day))
}

fn run_path(dir: &Path, day: i64, id: u64) -> PathBuf {
    day_dir(dir, day).join(format!("{id:016}.run"))
}
