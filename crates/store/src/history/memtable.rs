//! Events not yet written into runs: the newest part of the history, held in memory.
//! Every event here is already durable in the journal.

use cairn_core::IndexFields;

use std::collections::HashSet;

use super::query::{Candidate, LookupQuery, Source};
use super::run::id_hash;

pub(crate) struct MemEntry {
    pub seq: u64,
    pub fields: IndexFields,
    pub record: Box<[u8]>,
}

#[derive(Default)]
pub(crate) struct Memtable {
    pub entries: Vec<MemEntry>,
    pub bytes: usize,
    /// Every journal event up to this sequence number has been offered to the history
    /// (events that do not belong there, such as data events, are skipped).
    pub upto_seq: u64,
    /// (account, eventID) hashes of the entries, for deduplication.
    pub ids: HashSet<u64>,
}

impl Memtable {
    pub fn push(&mut self, entry: MemEntry) {
        self.ids
            .insert(id_hash(&entry.fields.account, &entry.fields.event_id));
        self.bytes +=
            entry.record.len() + heap_size(&entry.fields) + std::mem::size_of::<MemEntry>();
        self.entries.push(entry);
    }

    /// Adds the entries matching `query` to `out`, as candidates of `source`.
    pub fn search(&self, query: &LookupQuery, out: &mut Vec<Candidate>) {
        let mut found: Vec<&MemEntry> = self
            .entries
            .iter()
            .filter(|e| query.admits(&e.fields, e.seq))
            .collect();
        found.sort_unstable_by_key(|e| std::cmp::Reverse((e.fields.time, e.seq)));
        out.extend(found.into_iter().take(query.limit).map(|e| Candidate {
            time: e.fields.time,
            seq: e.seq,
            source: Source::Memory,
            ord: 0,
            record: Some(e.record.to_vec()),
        }));
    }
}

/// Roughly what the index fields of one entry occupy on the heap.
fn heap_size(fields: &IndexFields) -> usize {
    const STRING: usize = std::mem::size_of::<String>();
    fields.event_id.len()
        + fields.account.len()
        + fields.region.len()
        + fields
            .attributes
            .iter()
            .map(|(_, v)| v.len() + STRING + 8)
            .sum::<usize>()
}
