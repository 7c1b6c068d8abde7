//! Size-tiered compaction of a day's runs.
//!
//! A run's tier is `log_fanout(events / BASE)`, with BASE below a typical flushed run, so
//! that merging a full tier lands in the next one. When a day holds `fanout` runs of one
//! tier, they are merged into one run of the next tier by a streaming k-way merge. Merging
//! only runs of similar size rewrites each event about log_fanout(events per day) times,
//! and keeps a day at a few runs per tier, so a lookup reads few runs whatever the ingest
//! rate.
//!
//! No record is parsed: events are ordered by the groups, times and sequence numbers the
//! inputs hold, and their id tables and posting lists are carried over with ordinals
//! renumbered. Memory: one block per input, 12 bytes per input event (sequence number, new
//! ordinal), and the merged run's index as any run writer holds it.
//!
//! The merge runs without the manifest lock (runs are immutable); only the commit takes
//! it, and the commit is skipped when expiry dropped the day meanwhile. A day whose merge
//! failed goes after the other days until one of its merges succeeds, so one damaged run
//! does not hold up every later day.

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap};
use std::sync::Arc;

use cairn_core::timefmt::day_label;

use super::run::{Run, RunCursor, RunWriter};
use super::{day_dir, run_path, History};
use crate::error::{Result, StoreError};
use crate::fsutil;

/// Runs smaller than this many events are all tier 0.
const BASE: usize = 4096;

fn tier(events: usize, fanout: usize) -> u32 {
    let mut tier = 0;
    let mut size = BASE * fanout;
    while events >= size {
        tier += 1;
        size = size.saturating_mul(fanout);
    }
    tier
}

impl History {
    /// Performs one merge if some day has enough runs of one tier. Returns whether it did.
    pub fn compact_once(&self) -> Result<bool> {
        // One merge at a time: two would pick the same inputs, and memory stays bounded.
        let mut failed_days = self.merging.lock().expect("merge lock");
        let Some((day, inputs)) = self.pick_merge(&failed_days) else {
            return Ok(false);
        };
        match self.merge(day, &inputs) {
            Ok(()) => {
                failed_days.remove(&day);
                Ok(true)
            }
            Err(error) => {
                failed_days.insert(day);
                Err(error)
            }
        }
    }

    /// The first day with a full tier, the days in `failed_days` last.
    fn pick_merge(&self, failed_days: &BTreeSet<i64>) -> Option<(i64, Vec<Arc<Run>>)> {
        let fanout = self.options.compaction_fanout.max(2);
        let state = self.state.read().expect("history lock");
        let (healthy, failed): (Vec<_>, Vec<_>) = state
            .days
            .iter()
            .partition(|(day, _)| !failed_days.contains(day));
        for (&day, runs) in healthy.into_iter().chain(failed) {
            let mut by_tier: std::collections::BTreeMap<u32, Vec<Arc<Run>>> = Default::default();
            for run in runs {
                by_tier
                    .entry(tier(run.count(), fanout))
                    .or_default()
                    .push(run.clone());
            }
            if let Some(group) = by_tier.into_values().find(|g| g.len() >= fanout) {
                return Some((day, group));
            }
        }
        None
    }

    /// Merges `inputs` into one run (see the module's description).
    fn merge(&self, day: i64, inputs: &[Arc<Run>]) -> Result<()> {
        let id = self.manifest.lock().expect("manifest lock").take_run_id();
        let path = run_path(&self.dir, day, id);
        let mut writer = RunWriter::create(&path, day)?;

        // Every group of every input, numbered in (account, region, kind) order, the
        // merged run's order, so that events of different inputs compare by plain numbers.
        let mut all_groups: Vec<(&str, &str, u8)> =
            inputs.iter().flat_map(|r| r.groups()).collect();
        all_groups.sort_unstable();
        all_groups.dedup();
        let group_numbers: Vec<Vec<usize>> = inputs
            .iter()
            .map(|r| {
                r.groups()
                    .map(|g| all_groups.binary_search(&g).expect("collected above"))
                    .collect()
            })
            .collect();

        let mut cursors = inputs
            .iter()
            .map(|r| r.cursor())
            .collect::<Result<Vec<_>>>()?;
        let head = |input: usize, cursor: &RunCursor<'_>| {
            cursor
                .key()
                .map(|(group, time, seq)| Reverse((group_numbers[input][group], time, seq, input)))
        };
        let mut heap: BinaryHeap<_> = cursors
            .iter()
            .enumerate()
            .filter_map(|(input, cursor)| head(input, cursor))
            .collect();
        // The merged ordinal of each input ordinal.
        let mut renumbered: Vec<Vec<u32>> = inputs
            .iter()
            .map(|r| Vec::with_capacity(r.count()))
            .collect();
        while let Some(Reverse((_, _, _, input))) = heap.pop() {
            let cursor = &mut cursors[input];
            renumbered[input].push(writer.push_event(&cursor.event())?);
            cursor.advance()?;
            heap.extend(head(input, cursor));
        }
        drop(cursors);

        for (input, run) in inputs.iter().enumerate() {
            let groups: Vec<(&str, &str, u8)> = run.groups().collect();
            let numbers = &renumbered[input];
            let mut damaged = false;
            run.each_id(|hash, ord| match numbers.get(ord as usize) {
                Some(&merged) => writer.add_id(hash, merged),
                None => damaged = true,
            })?;
            run.each_posting_list(|key, group, value, ords| {
                let merged_group = groups
                    .get(group as usize)
                    .and_then(|&(account, region, kind)| writer.group_index(account, region, kind));
                let merged_ords: Option<Vec<u32>> = ords
                    .iter()
                    .map(|&o| numbers.get(o as usize).copied())
                    .collect();
                match (merged_group, merged_ords) {
                    (Some(group), Some(ords)) => writer.add_postings(key, group, value, ords),
                    _ => damaged = true,
                }
            })?;
            if damaged {
                return Err(StoreError::corrupt(format!(
                    "compacting day {}: run {} has an id or a posting list outside its events",
                    day_label(day),
                    run.id
                )));
            }
        }
        writer.finish()?;
        fsutil::sync_dir(&day_dir(&self.dir, day))?;
        let merged = Arc::new(Run::open(&path, id)?);

        let mut manifest = self.manifest.lock().expect("manifest lock");
        let live = manifest.days.get(&day).cloned().unwrap_or_default();
        if !inputs.iter().all(|r| live.contains(&r.id)) {
            // The day expired while we merged.
            let _ = std::fs::remove_file(&path);
            return Ok(());
        }
        let mut next = manifest.clone();
        let ids = next.days.entry(day).or_default();
        ids.retain(|id| !inputs.iter().any(|r| r.id == *id));
        ids.push(id);
        if let Err(error) = next.commit(&self.dir) {
            let _ = std::fs::remove_file(&path);
            return Err(error);
        }
        *manifest = next;
        {
            let mut state = self.state.write().expect("history lock");
            let runs = state.days.entry(day).or_default();
            runs.retain(|r| !inputs.iter().any(|i| Arc::ptr_eq(r, i)));
            runs.push(merged);
        }
        drop(manifest);
        for input in inputs {
            let path = run_path(&self.dir, day, input.id);
            std::fs::remove_file(&path).map_err(|e| StoreError::io(path.display(), e))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn tiers_grow_by_fanout() {
        assert_eq!(super::tier(1, 8), 0);
        assert_eq!(super::tier(4096 * 8 - 1, 8), 0);
        assert_eq!(super::tier(4096 * 8, 8), 1);
        assert_eq!(super::tier(4096 * 64, 8), 2);
        // A merge of a full tier lands in the next one.
        assert_eq!(super::tier(8 * 28_000, 8), super::tier(28_000, 8) + 1);
    }
}
