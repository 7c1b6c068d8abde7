//! Runs: immutable, compressed, indexed files of one UTC day's events.
//!
//! A run holds its events sorted by (account, region, kind, eventTime, seq), so one
//! account's events in a time window are a contiguous range of *ordinals*. Layout:
//!
//! ```text
//! blocks    zstd frames (with checksum), each `n × (u32 length, record)`, ~16 KiB raw
//! times     u32 × count   eventTime − day start, per ordinal (loaded into memory)
//! seqs      u64 × count   journal sequence number, per ordinal
//! ids       (u64, u32) × count   FNV-1a hash of (account, eventID) and ordinal, by hash
//! bloom     a Bloom filter of those hashes (10 bits per event, loaded into memory)
//! postings  per (attribute, group, value): ascending ordinals, delta varints
//! dict      the posting dictionary, sorted by (attribute, group, value), in chunks of
//!           64 entries: varint attribute, group, value length, value, postings offset, length
//! meta      zstd JSON: groups, block table, section offsets, the first entry of each dict
//!           chunk, the hash of every 256th id entry
//! trailer   u64 meta length, u32 CRC-32 of meta, u32 version, 8-byte magic "CAIRNRUN"
//! ```
//!
//! A run is written to `<id>.run.tmp`, fsynced and renamed; it becomes live only when
//! the manifest names it.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use cairn_core::timefmt::SECONDS_PER_DAY;
use cairn_core::{IndexFields, LookupKey};
use foldhash::HashMap;
use serde::{Deserialize, Serialize};

use super::bloom::Bloom;
use super::query::{kind_of, Candidate, LookupQuery, Source};
use crate::error::{Result, StoreError};
use crate::varint;

const MAGIC: &[u8; 8] = b"CAIRNRUN";
const VERSION: u32 = 1;
const TRAILER_LEN: usize = 24;
/// Raw bytes per block: small enough that fetching one record decompresses little.
pub(crate) const BLOCK_TARGET: usize = 16 << 10;
const BLOCK_LEVEL: i32 = 1;
/// Dictionary entries per chunk: one positioned read finds any entry.
const DICT_CHUNK: usize = 64;
/// Id table entries per fence: a lookup usually reads 3 KiB; 8 bytes of memory per 256
/// events.
const ID_FENCE: usize = 256;

#[derive(Serialize, Deserialize)]
struct GroupMeta {
    account: String,
    region: String,
    kind: u8,
    start: u32,
    end: u32,
}

#[derive(Serialize, Deserialize, Clone, Copy)]
struct BlockMeta {
    at: u64,
    len: u32,
    /// Uncompressed length, so a block decompresses into one exact allocation.
    raw: u32,
    first: u32,
}

/// The first entry of a dictionary chunk, and where the chunk is.
#[derive(Serialize, Deserialize)]
struct DictFence {
    key: u8,
    group: u32,
    value: String,
    at: u64,
    len: u32,
}

#[derive(Serialize, Deserialize)]
struct RunMeta {
    version: u32,
    day: i64,
    count: u32,
    min_seq: u64,
    max_seq: u64,
    groups: Vec<GroupMeta>,
    blocks: Vec<BlockMeta>,
    times_at: u64,
    seqs_at: u64,
    ids_at: u64,
    bloom_at: u64,
    bloom_len: u64,
    postings_at: u64,
    fences: Vec<DictFence>,
    /// The hash of every ID_FENCE-th entry of the id table, so that finding a hash reads
    /// one slice of the table. Runs written before it have none and are searched entry
    /// by entry.
    #[serde(default)]
    id_fences: Vec<u64>,
}

/// FNV-1a, 64-bit, over `account`, a 0xff separator and `event_id`: the identity of an
/// event for lookups by EventId and for deduplication. The format depends on it never
/// changing.
pub fn id_hash(account: &str, event_id: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in account.bytes().chain([0xff]).chain(event_id.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Writes one run from events given in run order.
pub(crate) struct RunWriter {
    tmp: PathBuf,
    path: PathBuf,
    out: BufWriter<File>,
    offset: u64,
    day: i64,
    compressor: zstd::bulk::Compressor<'static>,
    block: Vec<u8>,
    block_first: u32,
    blocks: Vec<BlockMeta>,
    times: Vec<u32>,
    seqs: Vec<u64>,
    ids: Vec<(u64, u32)>,
    groups: Vec<GroupMeta>,
    /// Posting lists by (attribute code, group), then value: a value is copied once per
    /// list, not once per event. (foldhash: seeded per map, and several times faster
    /// than SipHash on these short values.)
    postings: BTreeMap<(u8, u32), HashMap<String, Vec<u32>>>,
    min_seq: u64,
    max_seq: u64,
}

impl RunWriter {
    pub fn create(path: &Path, day: i64) -> Result<RunWriter> {
        let tmp = path.with_extension("run.tmp");
        let file = File::create(&tmp).map_err(|e| StoreError::io(tmp.display(), e))?;
        let mut compressor = zstd::bulk::Compressor::new(BLOCK_LEVEL)
            .map_err(|e| StoreError::io("starting zstd", e))?;
        compressor
            .set_parameter(zstd::zstd_safe::CParameter::ChecksumFlag(true))
            .map_err(|e| StoreError::io("configuring zstd", e))?;
        Ok(RunWriter {
            tmp,
            path: path.to_owned(),
            out: BufWriter::with_capacity(1 << 20, file),
            offset: 0,
            day,
            compressor,
            block: Vec::with_capacity(BLOCK_TARGET * 2),
            block_first: 0,
            blocks: Vec::new(),
            times: Vec::new(),
            seqs: Vec::new(),
            ids: Vec::new(),
            groups: Vec::new(),
            postings: BTreeMap::new(),
            min_seq: u64::MAX,
            max_seq: 0,
        })
    }

    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        self.out
            .write_all(bytes)
            .map_err(|e| StoreError::io(self.tmp.display(), e))?;
        self.offset += bytes.len() as u64;
        Ok(())
    }

    /// Adds the next event; events must come in (account, region, kind, time, seq) order.
    pub fn push(&mut self, fields: &IndexFields, seq: u64, record: &[u8]) -> Result<()> {
        let offset_in_day = fields.time - self.day * SECONDS_PER_DAY;
        debug_assert!((0..SECONDS_PER_DAY).contains(&offset_in_day));
        let ord = self.push_event(&StoredEvent {
            account: &fields.account,
            region: &fields.region,
            kind: kind_of(fields),
            offset_in_day: offset_in_day as u32,
            seq,
            record,
        })?;
        self.add_id(id_hash(&fields.account, &fields.event_id), ord);
        let group = self.groups.len() as u32 - 1;
        for (key, value) in &fields.attributes {
            let lists = self.postings.entry((key.code(), group)).or_default();
            match lists.get_mut(value.as_str()) {
                Some(list) => list.push(ord),
                None => {
                    lists.insert(value.clone(), vec![ord]);
                }
            }
        }
        Ok(())
    }

    /// Adds the next event without its id (see `add_id`) or postings (`add_postings`);
    /// events must come in run order. Returns the event's ordinal.
    pub fn push_event(&mut self, event: &StoredEvent<'_>) -> Result<u32> {
        let ord = self.times.len() as u32;
        let same_group = self.groups.last().is_some_and(|g| {
            g.account == event.account && g.region == event.region && g.kind == event.kind
        });
        if !same_group {
            self.groups.push(GroupMeta {
                account: event.account.to_owned(),
                region: event.region.to_owned(),
                kind: event.kind,
                start: ord,
                end: ord,
            });
        }
        self.groups.last_mut().expect("pushed above").end = ord + 1;

        self.times.push(event.offset_in_day);
        self.seqs.push(event.seq);
        self.min_seq = self.min_seq.min(event.seq);
        self.max_seq = self.max_seq.max(event.seq);

        let record = event.record;
        if self.block.is_empty() {
            self.block_first = ord;
        }
        self.block
            .extend_from_slice(&(record.len() as u32).to_le_bytes());
        self.block.extend_from_slice(record);
        if self.block.len() >= BLOCK_TARGET {
            self.finish_block()?;
        }
        Ok(ord)
    }

    /// The index of the group (account, region, kind) among the events pushed so far.
    pub fn group_index(&self, account: &str, region: &str, kind: u8) -> Option<u32> {
        find_group(&self.groups, account, region, kind)
    }

    /// Gives the event at `ord` its (account, eventID) hash.
    pub fn add_id(&mut self, hash: u64, ord: u32) {
        self.ids.push((hash, ord));
    }

    /// Adds ordinals, in any order, to the posting list of (attribute code, group, value).
    pub fn add_postings(
        &mut self,
        key: u8,
        group: u32,
        value: &str,
        ords: impl IntoIterator<Item = u32>,
    ) {
        let lists = self.postings.entry((key, group)).or_default();
        match lists.get_mut(value) {
            Some(list) => list.extend(ords),
            None => {
                lists.insert(value.to_owned(), ords.into_iter().collect());
            }
        }
    }

    fn finish_block(&mut self) -> Result<()> {
        if self.block.is_empty() {
            return Ok(());
        }
        let compressed = self
            .compressor
            .compress(&self.block)
            .map_err(|e| StoreError::io("compressing a run block", e))?;
        self.blocks.push(BlockMeta {
            at: self.offset,
            len: compressed.len() as u32,
            raw: self.block.len() as u32,
            first: self.block_first,
        });
        self.write(&compressed)?;
        self.block.clear();
        Ok(())
    }

    /// Writes the index sections and trailer, makes the file durable and gives it its
    /// final name. Returns the final path.
    pub fn finish(mut self) -> Result<PathBuf> {
        self.finish_block()?;
        let times_at = self.offset;
        let times: Vec<u8> = self.times.iter().flat_map(|t| t.to_le_bytes()).collect();
        self.write(&times)?;
        let seqs_at = self.offset;
        let seqs: Vec<u8> = self.seqs.iter().flat_map(|s| s.to_le_bytes()).collect();
        self.write(&seqs)?;
        let ids_at = self.offset;
        let mut ids = std::mem::take(&mut self.ids);
        ids.sort_unstable();
        let mut id_bytes = Vec::with_capacity(ids.len() * 12);
        for &(hash, ord) in &ids {
            id_bytes.extend_from_slice(&hash.to_le_bytes());
            id_bytes.extend_from_slice(&ord.to_le_bytes());
        }
        self.write(&id_bytes)?;
        let bloom_at = self.offset;
        let hashes: Vec<u64> = ids.iter().map(|(hash, _)| *hash).collect();
        let bloom = Bloom::build(&hashes).to_bytes();
        let id_fences = hashes.iter().step_by(ID_FENCE).copied().collect();
        self.write(&bloom)?;

        let postings_at = self.offset;
        let mut area = Vec::new();
        let mut entries = Vec::new();
        for ((key, group), lists) in std::mem::take(&mut self.postings) {
            let mut lists: Vec<(String, Vec<u32>)> = lists.into_iter().collect();
            lists.sort_unstable_by(|a, b| a.0.cmp(&b.0));
            for (value, mut ords) in lists {
                // A merge adds each input's ordinals in turn; a flush adds them in order.
                ords.sort_unstable();
                let at = area.len() as u64;
                let mut previous = 0u32;
                for (i, ord) in ords.iter().enumerate() {
                    let delta = if i == 0 { *ord } else { ord - previous };
                    varint::put(&mut area, u64::from(delta));
                    previous = *ord;
                }
                entries.push((key, group, value, at, area.len() as u64 - at));
            }
        }
        self.write(&area)?;

        let mut fences = Vec::with_capacity(entries.len() / DICT_CHUNK + 1);
        for chunk in entries.chunks(DICT_CHUNK) {
            let mut bytes = Vec::new();
            for (key, group, value, at, len) in chunk {
                varint::put(&mut bytes, u64::from(*key));
                varint::put(&mut bytes, u64::from(*group));
                varint::put(&mut bytes, value.len() as u64);
                bytes.extend_from_slice(value.as_bytes());
                varint::put(&mut bytes, *at);
                varint::put(&mut bytes, *len);
            }
            let (key, group, value, _, _) = &chunk[0];
            fences.push(DictFence {
                key: *key,
                group: *group,
                value: value.clone(),
                at: self.offset,
                len: bytes.len() as u32,
            });
            self.write(&bytes)?;
        }

        let meta = RunMeta {
            version: VERSION,
            day: self.day,
            count: self.times.len() as u32,
            min_seq: self.min_seq,
            max_seq: self.max_seq,
            groups: std::mem::take(&mut self.groups),
            blocks: std::mem::take(&mut self.blocks),
            times_at,
            seqs_at,
            ids_at,
            bloom_at,
            bloom_len: bloom.len() as u64,
            postings_at,
            fences,
            id_fences,
        };
        let json = serde_json::to_vec(&meta).expect("run metadata serializes");
        let meta_bytes = zstd::bulk::compress(&json, 3)
            .map_err(|e| StoreError::io("compressing run metadata", e))?;
        let mut trailer = Vec::with_capacity(TRAILER_LEN);
        trailer.extend_from_slice(&(meta_bytes.len() as u64).to_le_bytes());
        trailer.extend_from_slice(&crc32fast::hash(&meta_bytes).to_le_bytes());
        trailer.extend_from_slice(&VERSION.to_le_bytes());
        trailer.extend_from_slice(MAGIC);
        self.write(&meta_bytes)?;
        self.write(&trailer)?;

        self.out
            .flush()
            .and_then(|_| self.out.get_ref().sync_all())
            .map_err(|e| StoreError::io(self.tmp.display(), e))?;
        fs::rename(&self.tmp, &self.path).map_err(|e| StoreError::io(self.path.display(), e))?;
        Ok(self.path.clone())
    }
}

impl Drop for RunWriter {
    /// An unfinished run (a failed flush or compaction) leaves no temporary file behind;
    /// after a successful rename there is nothing to remove.
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.tmp);
    }
}

/// An open run. Only the metadata and the per-ordinal times live in memory; records,
/// sequence numbers, ids and postings are read with positioned reads when a query needs
/// them, so the page cache, not the heap, holds the history.
pub(crate) struct Run {
    pub id: u64,
    pub day: i64,
    path: PathBuf,
    file: File,
    meta: RunMeta,
    times: Vec<u32>,
    bloom: Bloom,
}

impl Run {
    pub fn open(path: &Path, id: u64) -> Result<Run> {
        let file = File::open(path).map_err(|e| StoreError::io(path.display(), e))?;
        let len = file
            .metadata()
            .map_err(|e| StoreError::io(path.display(), e))?
            .len();
        let corrupt = |what: &str| StoreError::corrupt(format!("run {}: {what}", path.display()));
        if len < TRAILER_LEN as u64 {
            return Err(corrupt("too short"));
        }
        let mut trailer = [0u8; TRAILER_LEN];
        read_at(&file, path, &mut trailer, len - TRAILER_LEN as u64)?;
        if &trailer[16..24] != MAGIC {
            return Err(corrupt("no trailer"));
        }
        let meta_len = u64::from_le_bytes(trailer[0..8].try_into().unwrap());
        let meta_crc = u32::from_le_bytes(trailer[8..12].try_into().unwrap());
        if meta_len > len - TRAILER_LEN as u64 {
            return Err(corrupt("metadata length out of range"));
        }
        let mut meta_bytes = vec![0u8; meta_len as usize];
        read_at(
            &file,
            path,
            &mut meta_bytes,
            len - TRAILER_LEN as u64 - meta_len,
        )?;
        if crc32fast::hash(&meta_bytes) != meta_crc {
            return Err(corrupt("metadata checksum mismatch"));
        }
        let json = zstd::stream::decode_all(&meta_bytes[..])
            .map_err(|_| corrupt("metadata does not decompress"))?;
        let meta: RunMeta =
            serde_json::from_slice(&json).map_err(|_| corrupt("metadata does not parse"))?;
        let fences_needed = (meta.count as usize).div_ceil(ID_FENCE);
        if !meta.id_fences.is_empty() && meta.id_fences.len() != fences_needed {
            return Err(corrupt("id fences do not match the event count"));
        }
        let mut raw_times = vec![0u8; meta.count as usize * 4];
        read_at(&file, path, &mut raw_times, meta.times_at)?;
        let times = raw_times
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        let mut bloom_bytes = vec![0u8; meta.bloom_len as usize];
        read_at(&file, path, &mut bloom_bytes, meta.bloom_at)?;
        let bloom = Bloom::from_bytes(&bloom_bytes).ok_or_else(|| corrupt("bad Bloom filter"))?;
        Ok(Run {
            id,
            day: meta.day,
            path: path.to_owned(),
            file,
            meta,
            times,
            bloom,
        })
    }

    pub fn count(&self) -> usize {
        self.meta.count as usize
    }

    pub fn disk_bytes(&self) -> u64 {
        self.file.metadata().map(|m| m.len()).unwrap_or(0)
    }

    pub fn memory_bytes(&self) -> usize {
        self.times.len() * 4
            + self.meta.blocks.len() * std::mem::size_of::<BlockMeta>()
            + self
                .meta
                .fences
                .iter()
                .map(|d| d.value.len() + 48)
                .sum::<usize>()
            + self.meta.id_fences.len() * 8
            + self.bloom.memory_bytes()
    }

    fn read(&self, buf: &mut [u8], at: u64) -> Result<()> {
        read_at(&self.file, &self.path, buf, at)
    }

    fn time(&self, ord: u32) -> i64 {
        self.day * SECONDS_PER_DAY + i64::from(self.times[ord as usize])
    }

    fn seq(&self, ord: u32) -> Result<u64> {
        let mut buf = [0u8; 8];
        self.read(&mut buf, self.meta.seqs_at + u64::from(ord) * 8)?;
        Ok(u64::from_le_bytes(buf))
    }

    /// Sequence numbers of `ords` (descending or ascending), with one read when they are
    /// close together.
    fn seqs(&self, ords: &[u32]) -> Result<Vec<u64>> {
        let (Some(&lo), Some(&hi)) = (ords.iter().min(), ords.iter().max()) else {
            return Ok(Vec::new());
        };
        if hi - lo > 4096 {
            return ords.iter().map(|o| self.seq(*o)).collect();
        }
        let mut bytes = vec![0u8; (hi - lo + 1) as usize * 8];
        self.read(&mut bytes, self.meta.seqs_at + u64::from(lo) * 8)?;
        Ok(ords
            .iter()
            .map(|o| {
                let at = (o - lo) as usize * 8;
                u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"))
            })
            .collect())
    }

    /// The query's group, and the ordinals of it whose time lies in the query window.
    fn window(&self, query: &LookupQuery) -> Option<(u32, u32, u32)> {
        let index = self.group_index(query)?;
        let group = &self.meta.groups[index as usize];
        let base = self.day * SECONDS_PER_DAY;
        if query.end < base {
            return None;
        }
        let slice = &self.times[group.start as usize..group.end as usize];
        let lo_t = query.start.saturating_sub(base).clamp(0, SECONDS_PER_DAY) as u32;
        let hi_t = query.end.saturating_sub(base).min(SECONDS_PER_DAY) as u32;
        let lo = group.start + slice.partition_point(|t| *t < lo_t) as u32;
        let hi = group.start + slice.partition_point(|t| *t <= hi_t) as u32;
        (lo < hi).then_some((index, lo, hi))
    }

    fn group_index(&self, query: &LookupQuery) -> Option<u32> {
        find_group(
            &self.meta.groups,
            &query.account,
            &query.region,
            query.kind(),
        )
    }

    /// Finds (offset, length) of a posting list in the dictionary: the chunk comes from
    /// the in-memory fences, the entry from one read of that chunk.
    fn dictionary_entry(
        &self,
        key: LookupKey,
        group: u32,
        value: &str,
    ) -> Result<Option<(u64, u64)>> {
        let target = (key.code(), group, value.as_bytes());
        let chunk = self
            .meta
            .fences
            .partition_point(|f| (f.key, f.group, f.value.as_bytes()) <= target);
        let Some(fence) = chunk.checked_sub(1).map(|c| &self.meta.fences[c]) else {
            return Ok(None);
        };
        let mut bytes = vec![0u8; fence.len as usize];
        self.read(&mut bytes, fence.at)?;
        let mut pos = 0;
        while pos < bytes.len() {
            let entry = DictEntry::next(&bytes, &mut pos).ok_or_else(|| self.bad_dictionary())?;
            if (entry.key, entry.group, entry.value) == target {
                return Ok(Some((entry.at, entry.len)));
            }
        }
        Ok(None)
    }

    fn bad_dictionary(&self) -> StoreError {
        StoreError::corrupt(format!(
            "run {}: bad posting dictionary",
            self.path.display()
        ))
    }

    fn bad_postings(&self) -> StoreError {
        StoreError::corrupt(format!("run {}: bad posting list", self.path.display()))
    }

    fn postings(&self, key: LookupKey, group: u32, value: &str) -> Result<Vec<u32>> {
        let Some((at, len)) = self.dictionary_entry(key, group, value)? else {
            return Ok(Vec::new());
        };
        let mut bytes = vec![0u8; len as usize];
        self.read(&mut bytes, self.meta.postings_at + at)?;
        decode_postings(&bytes).ok_or_else(|| self.bad_postings())
    }

    /// Calls `each` with every posting list of the run: attribute code, group, value and
    /// ordinals. Reads the dictionary and the postings with one read each.
    pub fn each_posting_list(&self, mut each: impl FnMut(u8, u32, &str, Vec<u32>)) -> Result<()> {
        let (Some(first), Some(last)) = (self.meta.fences.first(), self.meta.fences.last()) else {
            return Ok(());
        };
        let postings_len = first.at.checked_sub(self.meta.postings_at);
        let dictionary_len = (last.at + u64::from(last.len)).checked_sub(first.at);
        let (Some(postings_len), Some(dictionary_len)) = (postings_len, dictionary_len) else {
            return Err(self.bad_dictionary());
        };
        let mut postings = vec![0u8; postings_len as usize];
        self.read(&mut postings, self.meta.postings_at)?;
        let mut dictionary = vec![0u8; dictionary_len as usize];
        self.read(&mut dictionary, first.at)?;
        let mut pos = 0;
        while pos < dictionary.len() {
            let entry =
                DictEntry::next(&dictionary, &mut pos).ok_or_else(|| self.bad_dictionary())?;
            let value = std::str::from_utf8(entry.value).map_err(|_| self.bad_dictionary())?;
            let list = usize::try_from(entry.at)
                .ok()
                .zip(
                    entry
                        .at
                        .checked_add(entry.len)
                        .and_then(|end| usize::try_from(end).ok()),
                )
                .and_then(|(at, end)| postings.get(at..end))
                .ok_or_else(|| self.bad_dictionary())?;
            let ords = decode_postings(list).ok_or_else(|| self.bad_postings())?;
            each(entry.key, entry.group, value, ords);
        }
        Ok(())
    }

    /// Whether the run holds an event with this (account, eventID) hash.
    pub fn holds(&self, hash: u64) -> Result<bool> {
        Ok(self.bloom.may_contain(hash) && !self.ordinals_of(hash)?.is_empty())
    }

    /// Ordinals whose (account, eventID) hashes to `target`, ascending.
    fn ordinals_of(&self, target: u64) -> Result<Vec<u32>> {
        let count = u64::from(self.meta.count);
        let fences = &self.meta.id_fences;
        if fences.is_empty() {
            return self.ordinals_of_unfenced(target);
        }
        // Entries equal to the target lie between the last fence below it and the first
        // fence above it.
        let from = fences.partition_point(|f| *f < target).saturating_sub(1);
        let to = fences.partition_point(|f| *f <= target);
        if to == 0 {
            return Ok(Vec::new());
        }
        let first = (from * ID_FENCE) as u64;
        let last = ((to * ID_FENCE) as u64).min(count);
        let mut bytes = vec![0u8; ((last - first) * 12) as usize];
        self.read(&mut bytes, self.meta.ids_at + first * 12)?;
        let mut ords: Vec<u32> = bytes
            .chunks_exact(12)
            .map(id_entry)
            .filter(|(hash, _)| *hash == target)
            .map(|(_, ord)| ord)
            .collect();
        ords.sort_unstable();
        Ok(ords)
    }

    /// `ordinals_of` for a run without id fences: a binary search, a read per step.
    fn ordinals_of_unfenced(&self, target: u64) -> Result<Vec<u32>> {
        let (mut lo, mut hi) = (0u64, u64::from(self.meta.count));
        let entry = |i: u64| -> Result<(u64, u32)> {
            let mut buf = [0u8; 12];
            self.read(&mut buf, self.meta.ids_at + i * 12)?;
            Ok(id_entry(&buf))
        };
        while lo < hi {
            let mid = (lo + hi) / 2;
            if entry(mid)?.0 < target {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        let mut ords = Vec::new();
        while lo < u64::from(self.meta.count) {
            let (hash, ord) = entry(lo)?;
            if hash != target {
                break;
            }
            ords.push(ord);
            lo += 1;
        }
        ords.sort_unstable();
        Ok(ords)
    }

    /// Adds up to `query.limit` of this run's newest matching events to `out`.
    pub fn search(
        &self,
        query: &LookupQuery,
        source: Source,
        out: &mut Vec<Candidate>,
    ) -> Result<()> {
        let Some((group, lo, hi)) = self.window(query) else {
            return Ok(());
        };
        let ords: Box<dyn Iterator<Item = u32>> = match &query.attribute {
            None => Box::new((lo..hi).rev()),
            Some((LookupKey::EventId, id)) => {
                let ords = self.ordinals_of(id_hash(&query.account, id))?;
                Box::new(ords.into_iter().filter(move |o| (lo..hi).contains(o)).rev())
            }
            Some((key, value)) => {
                let ords = self.postings(*key, group, value)?;
                Box::new(ords.into_iter().filter(move |o| (lo..hi).contains(o)).rev())
            }
        };
        let confirm_id = match &query.attribute {
            Some((LookupKey::EventId, id)) => Some(id.as_str()),
            _ => None,
        };
        // Newest first: take ordinals until `limit` are certainly before the cursor.
        // Only a tie with the cursor's second needs the sequence number to decide.
        let mut taken: Vec<u32> = Vec::with_capacity(query.limit);
        for ord in ords {
            if taken.len() == query.limit {
                break;
            }
            let time = self.time(ord);
            if let Some(after) = query.after {
                if time == after.time && self.seq(ord)? >= after.seq {
                    continue;
                }
            }
            if let Some(id) = confirm_id {
                let record = self.records(&[ord])?.pop().unwrap_or_default();
                if IndexFields::extract(&record)
                    .map(|f| f.event_id != id)
                    .unwrap_or(true)
                {
                    continue;
                }
            }
            taken.push(ord);
        }
        for (ord, seq) in taken.iter().zip(self.seqs(&taken)?) {
            out.push(Candidate {
                time: self.time(*ord),
                seq,
                source,
                ord: *ord,
                record: None,
            });
        }
        Ok(())
    }

    /// The records at `ords` (ascending or not), decompressing each needed block once.
    pub fn records(&self, ords: &[u32]) -> Result<Vec<Vec<u8>>> {
        let mut out = vec![Vec::new(); ords.len()];
        let mut order: Vec<usize> = (0..ords.len()).collect();
        order.sort_by_key(|&i| ords[i]);
        let mut current: Option<(usize, Vec<u8>)> = None;
        for i in order {
            let ord = ords[i];
            let block_index = self.meta.blocks.partition_point(|b| b.first <= ord) - 1;
            if current.as_ref().is_none_or(|(b, _)| *b != block_index) {
                current = Some((block_index, self.block(block_index)?));
            }
            let (_, raw) = current.as_ref().expect("set above");
            let first = self.meta.blocks[block_index].first;
            out[i] = nth_record(raw, (ord - first) as usize)
                .ok_or_else(|| {
                    StoreError::corrupt(format!(
                        "run {}: block {block_index} is short",
                        self.path.display()
                    ))
                })?
                .to_vec();
        }
        Ok(out)
    }

    fn block(&self, index: usize) -> Result<Vec<u8>> {
        thread_local! {
            // Creating a zstd context costs more than decompressing a block: keep one.
            static DECOMPRESSOR: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> =
                const { std::cell::RefCell::new(None) };
        }
        let meta = *self.meta.blocks.get(index).ok_or_else(|| {
            StoreError::corrupt(format!(
                "run {}: its blocks hold fewer events than it counts",
                self.path.display()
            ))
        })?;
        let mut compressed = vec![0u8; meta.len as usize];
        self.read(&mut compressed, meta.at)?;
        let damaged = |e: std::io::Error| {
            StoreError::corrupt(format!(
                "run {}: block {index} is damaged: {e}",
                self.path.display()
            ))
        };
        DECOMPRESSOR.with(|cell| {
            let mut slot = cell.borrow_mut();
            if slot.is_none() {
                *slot = Some(
                    zstd::bulk::Decompressor::new()
                        .map_err(|e| StoreError::io("starting zstd", e))?,
                );
            }
            let decompressor = slot.as_mut().expect("set above");
            let raw = decompressor
                .decompress(&compressed, meta.raw as usize)
                .map_err(damaged)?;
            if raw.len() != meta.raw as usize {
                return Err(damaged(std::io::Error::other("wrong length")));
            }
            Ok(raw)
        })
    }
}

/// The index of (account, region, kind) among groups in run order.
fn find_group(groups: &[GroupMeta], account: &str, region: &str, kind: u8) -> Option<u32> {
    groups
        .binary_search_by(|g| {
            (g.account.as_str(), g.region.as_str(), g.kind).cmp(&(account, region, kind))
        })
        .ok()
        .map(|g| g as u32)
}

/// An entry of the id table: (account, eventID) hash and ordinal.
fn id_entry(bytes: &[u8]) -> (u64, u32) {
    (
        u64::from_le_bytes(bytes[..8].try_into().expect("12-byte entry")),
        u32::from_le_bytes(bytes[8..12].try_into().expect("12-byte entry")),
    )
}

fn nth_record(raw: &[u8], n: usize) -> Option<&[u8]> {
    let mut pos = 0usize;
    for _ in 0..n {
        let len = u32::from_le_bytes(raw.get(pos..pos + 4)?.try_into().ok()?) as usize;
        pos += 4 + len;
    }
    let len = u32::from_le_bytes(raw.get(pos..pos + 4)?.try_into().ok()?) as usize;
    raw.get(pos + 4..pos + 4 + len)
}

fn read_at(file: &File, path: &Path, buf: &mut [u8], at: u64) -> Result<()> {
    file.read_exact_at(buf, at)
        .map_err(|e| StoreError::io(path.display(), e))
}

/// One event as a run stores it: what orders it, and its record.
pub(crate) struct StoredEvent<'a> {
    pub account: &'a str,
    pub region: &'a str,
    pub kind: u8,
    pub offset_in_day: u32,
    pub seq: u64,
    pub record: &'a [u8],
}

/// Reads a run's events in run order without parsing any record: a merge orders and
/// indexes events by what the run's sections hold. Holds one block, and the sequence
/// number of every event.
pub(crate) struct RunCursor<'a> {
    run: &'a Run,
    seqs: Vec<u64>,
    group: usize,
    block_index: usize,
    block: Vec<u8>,
    /// Where the current record lies in `block`.
    record: std::ops::Range<usize>,
    ord: u32,
}

impl Run {
    /// A cursor on the run's first event.
    pub fn cursor(&self) -> Result<RunCursor<'_>> {
        let count = self.meta.count as usize;
        let mut raw = vec![0u8; count * 8];
        self.read(&mut raw, self.meta.seqs_at)?;
        let seqs = raw
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
            .collect();
        let mut cursor = RunCursor {
            run: self,
            seqs,
            group: 0,
            block_index: 0,
            block: Vec::new(),
            record: 0..0,
            ord: 0,
        };
        cursor.load()?;
        Ok(cursor)
    }

    /// Calls `each` with every (account, eventID) hash and its ordinal, reading the id
    /// table a slice at a time.
    pub fn each_id(&self, mut each: impl FnMut(u64, u32)) -> Result<()> {
        const SLICE: u64 = 64 << 10;
        let count = u64::from(self.meta.count);
        let mut bytes = Vec::new();
        for first in (0..count).step_by(SLICE as usize) {
            let entries = SLICE.min(count - first);
            bytes.resize((entries * 12) as usize, 0);
            self.read(&mut bytes, self.meta.ids_at + first * 12)?;
            for (hash, ord) in bytes.chunks_exact(12).map(id_entry) {
                each(hash, ord);
            }
        }
        Ok(())
    }

    /// The (account, region, kind) of each group, in run order.
    pub fn groups(&self) -> impl Iterator<Item = (&str, &str, u8)> {
        self.meta
            .groups
            .iter()
            .map(|g| (g.account.as_str(), g.region.as_str(), g.kind))
    }
}

impl RunCursor<'_> {
    /// The current event's ordering key among runs of the same day: group (as an index
    /// into the run's groups), offset in the day and sequence number; None at the end.
    pub fn key(&self) -> Option<(usize, u32, u64)> {
        (self.ord < self.run.meta.count).then(|| {
            let ord = self.ord as usize;
            (self.group, self.run.times[ord], self.seqs[ord])
        })
    }

    /// The current event; only valid while `key` is Some.
    pub fn event(&self) -> StoredEvent<'_> {
        let ord = self.ord as usize;
        let group = &self.run.meta.groups[self.group];
        StoredEvent {
            account: &group.account,
            region: &group.region,
            kind: group.kind,
            offset_in_day: self.run.times[ord],
            seq: self.seqs[ord],
            record: &self.block[self.record.clone()],
        }
    }

    pub fn advance(&mut self) -> Result<()> {
        let before = self.key();
        self.ord += 1;
        self.load()?;
        // A merge trusts this order (the sections that give it have no checksum): a run
        // damaged out of order must fail the merge, not yield an unsorted run.
        if let (Some(before), Some(after)) = (before, self.key()) {
            if after <= before {
                return Err(StoreError::corrupt(format!(
                    "run {}: events out of order at ordinal {}",
                    self.run.path.display(),
                    self.ord
                )));
            }
        }
        Ok(())
    }

    /// Finds the current ordinal's group and record, reading the next block when needed.
    fn load(&mut self) -> Result<()> {
        let meta = &self.run.meta;
        if self.ord >= meta.count {
            return Ok(());
        }
        while meta
            .groups
            .get(self.group)
            .is_some_and(|g| g.end <= self.ord)
        {
            self.group += 1;
        }
        let path = self.run.path.display();
        if self.group >= meta.groups.len() {
            return Err(StoreError::corrupt(format!(
                "run {path}: its groups do not cover every event"
            )));
        }
        let short = || StoreError::corrupt(format!("run {path}: short block"));
        let mut pos = self.record.end;
        if pos >= self.block.len() {
            self.block = self.run.block(self.block_index)?;
            self.block_index += 1;
            pos = 0;
        }
        let len = self.block.get(pos..pos + 4).ok_or_else(short)?;
        let len = u32::from_le_bytes(len.try_into().unwrap()) as usize;
        if pos + 4 + len > self.block.len() {
            return Err(short());
        }
        self.record = pos + 4..pos + 4 + len;
        Ok(())
    }
}

/// One entry of a posting dictionary chunk.
struct DictEntry<'a> {
    key: u8,
    group: u32,
    value: &'a [u8],
    at: u64,
    len: u64,
}

impl<'a> DictEntry<'a> {
    fn next(bytes: &'a [u8], pos: &mut usize) -> Option<DictEntry<'a>> {
        let key = u8::try_from(varint::get(bytes, pos)?).ok()?;
        let group = u32::try_from(varint::get(bytes, pos)?).ok()?;
        let n = usize::try_from(varint::get(bytes, pos)?).ok()?;
        let value = bytes.get(*pos..pos.checked_add(n)?)?;
        *pos += n;
        let at = varint::get(bytes, pos)?;
        let len = varint::get(bytes, pos)?;
        Some(DictEntry {
            key,
            group,
            value,
            at,
            len,
        })
    }
}

/// Decodes a posting list: ascending ordinals, the first as is, the rest as deltas.
fn decode_postings(bytes: &[u8]) -> Option<Vec<u32>> {
    let mut ords = Vec::new();
    let mut pos = 0;
    let mut current = 0u32;
    while pos < bytes.len() {
        let delta = u32::try_from(varint::get(bytes, &mut pos)?).ok()?;
        current = if ords.is_empty() {
            delta
        } else {
            current.checked_add(delta)?
        };
        ords.push(current);
    }
    Some(ords)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A run whose id table has `hashes` (some repeated) as its events' hashes.
    fn run_with_hashes(dir: &Path, hashes: &[u64]) -> Run {
        let path = dir.join("1.run");
        let mut writer = RunWriter::create(&path, 0).unwrap();
        for (i, &hash) in hashes.iter().enumerate() {
            let ord = writer
                .push_event(&StoredEvent {
                    account: "111111111111",
                    region: "us-east-1",
                    kind: 0,
                    offset_in_day: 0,
                    seq: i as u64,
                    record: b"{}",
                })
                .unwrap();
            writer.add_id(hash, ord);
        }
        writer.finish().unwrap();
        Run::open(&path, 1).unwrap()
    }

    #[test]
    fn a_cursor_refuses_events_out_of_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("1.run");
        let mut writer = RunWriter::create(&path, 0).unwrap();
        for i in 0..3u32 {
            let event = StoredEvent {
                account: "111111111111",
                region: "us-east-1",
                kind: 0,
                offset_in_day: 10 * i,
                seq: u64::from(i),
                record: b"{}",
            };
            writer.push_event(&event).unwrap();
        }
        writer.finish().unwrap();
        let times_at = Run::open(&path, 1).unwrap().meta.times_at;
        // The last event's time, damaged to come before the second's.
        let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        file.write_all_at(&5u32.to_le_bytes(), times_at + 8)
            .unwrap();
        let run = Run::open(&path, 1).unwrap();
        let mut cursor = run.cursor().unwrap();
        cursor.advance().unwrap();
        let error = cursor.advance().unwrap_err().to_string();
        assert!(error.contains("out of order"), "{error}");
    }

    #[test]
    fn fenced_id_search_finds_what_the_entry_by_entry_search_finds() {
        let dir = tempfile::tempdir().unwrap();
        // Runs of equal hashes longer than a fence, and at fence boundaries.
        let mut hashes: Vec<u64> = (0..3000u64).map(|i| (i / 7) * 1000 + (i % 3)).collect();
        hashes.extend([5_000_000; 600]);
        hashes.extend([0, u64::MAX, u64::MAX]);
        let run = run_with_hashes(dir.path(), &hashes);
        assert!(run.meta.id_fences.len() > 10);
        let mut probes: Vec<u64> = hashes.clone();
        probes.extend([1, 999, 4_999_999, 5_000_001, u64::MAX - 1]);
        for target in probes {
            let fenced = run.ordinals_of(target).unwrap();
            let expected: Vec<u32> = (0..hashes.len() as u32)
                .filter(|&o| hashes[o as usize] == target)
                .collect();
            assert_eq!(fenced, expected, "hash {target}");
            assert_eq!(run.ordinals_of_unfenced(target).unwrap(), expected);
        }
    }
}
