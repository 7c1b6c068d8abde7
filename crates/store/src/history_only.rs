//! Journal ranges that belong to the event history only: events imported without
//! delivery. The history indexes them like any others; the journal's other consumers
//! (trail delivery, log groups, Insights) pass over them.
//!
//! A range is saved open before its first event is written and closed after its last. An
//! import that stops half-way leaves it open; the store closes it at the journal's end the
//! next time it opens, since only the importer, holding the store's lock, wrote after it.

use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::fsutil;

#[derive(Default, Serialize, Deserialize)]
struct Saved {
    /// `[from, to)` journal positions; `to` is absent while the range is being written.
    ranges: Vec<(u64, Option<u64>)>,
}

pub(crate) struct HistoryOnly {
    path: PathBuf,
    saved: Saved,
}

impl HistoryOnly {
    /// Loads the ranges in `dir`, closes one left open at `journal_end` and forgets those
    /// wholly below `first_on_disk` (no consumer can read them any more).
    pub fn open(dir: &Path, journal_end: u64, first_on_disk: u64) -> Result<HistoryOnly> {
        let path = dir.join("history-only.json");
        let saved = fsutil::read_json(&path)?.unwrap_or_default();
        let mut ranges = HistoryOnly { path, saved };
        let mut changed = false;
        for range in &mut ranges.saved.ranges {
            if range.1.is_none() {
                tracing::info!(
                    from = range.0,
                    to = journal_end,
                    "an import stopped before it finished; its events stay out of trails"
                );
                range.1 = Some(journal_end);
                changed = true;
            }
        }
        changed |= ranges.prune(first_on_disk);
        if changed {
            ranges.save()?;
        }
        Ok(ranges)
    }

    /// Forgets closed ranges that are empty or wholly below `first_on_disk`; returns
    /// whether any went.
    fn prune(&mut self, first_on_disk: u64) -> bool {
        let before = self.saved.ranges.len();
        self.saved
            .ranges
            .retain(|&(from, to)| to.is_none_or(|to| to > first_on_disk && to > from));
        self.saved.ranges.len() != before
    }

    /// Starts a range at `from` (the next journal position), durably.
    pub fn begin(&mut self, from: u64) -> Result<()> {
        self.saved.ranges.push((from, None));
        self.save()
    }

    /// Closes the open range at `to`, durably; an empty range is forgotten.
    pub fn end(&mut self, to: u64) -> Result<()> {
        if let Some(last) = self.saved.ranges.last_mut() {
            if last.1.is_none() {
                last.1 = Some(to);
            }
        }
        self.prune(0);
        self.save()
    }

    /// The closed ranges.
    pub fn closed(&self) -> Vec<Range<u64>> {
        self.saved
            .ranges
            .iter()
            .filter_map(|&(from, to)| to.map(|to| from..to))
            .collect()
    }

    fn save(&self) -> Result<()> {
        fsutil::write_json(&self.path, &self.saved)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_range_left_open_is_closed_at_the_journal_end() {
        let dir = tempfile::tempdir().unwrap();
        let mut ranges = HistoryOnly::open(dir.path(), 1, 1).unwrap();
        ranges.begin(10).unwrap();
        assert!(ranges.closed().is_empty());
        let reopened = HistoryOnly::open(dir.path(), 25, 1).unwrap();
        assert_eq!(reopened.closed(), vec![10..25]);
    }

    #[test]
    fn empty_ranges_and_ranges_off_disk_are_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        let mut ranges = HistoryOnly::open(dir.path(), 1, 1).unwrap();
        ranges.begin(5).unwrap();
        ranges.end(9).unwrap();
        ranges.begin(9).unwrap();
        ranges.end(9).unwrap();
        ranges.begin(12).unwrap();
        ranges.end(20).unwrap();
        assert_eq!(ranges.closed(), vec![5..9, 12..20]);
        assert_eq!(
            HistoryOnly::open(dir.path(), 20, 9).unwrap().closed(),
            vec![12..20]
        );
        // Opened with nothing off disk: what comes back is only what was saved.
        assert_eq!(
            HistoryOnly::open(dir.path(), 20, 1).unwrap().closed(),
            vec![12..20],
            "the pruning was saved"
        );
    }
}
