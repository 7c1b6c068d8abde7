//! The journal: an append-only sequence of segment files holding every accepted event in
//! the order it was acknowledged.
//!
//! A segment `journal/<first seq, 20 digits>.seg` is a run of frames. A frame holds one
//! group commit: a 32-byte header, then a payload of `count × (u32 record length, u32
//! summary length, record bytes, summary bytes)`, stored as is (flag bit 0 clear) or
//! zstd-compressed (bit 0 set; readers accept both). The summary is what the journal's
//! consumers read of the record (see `cairn_core::summary`); it may be empty. Frames of
//! format version 1 have no summaries (`count × (u32 length, record bytes)`) and read as
//! having empty ones.
//!
//! ```text
//! offset size field
//!   0     4  magic "CNRJ"
//!   4     1  format version (2; 1 is read)
//!   5     1  flags (bit 0: payload is zstd)
//!   6     2  reserved, zero
//!   8     8  sequence number of the first event
//!  16     4  event count
//!  20     4  payload length in bytes
//!  24     4  CRC-32 of the payload (as stored)
//!  28     4  CRC-32 of bytes 0..28
//! ```
//!
//! Frames are written with one `write` and made durable with `fdatasync` before any of
//! their events is acknowledged. A crash can leave a torn frame only at the end of the
//! last segment; opening the journal cuts it off there (keeping the cut bytes in a
//! `.torn` file for inspection). Those events were never acknowledged.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};

use crate::error::{Result, StoreError};
use crate::fsutil;

const MAGIC: [u8; 4] = *b"CNRJ";
const VERSION: u8 = 2;
/// Frames without summaries.
const VERSION_1: u8 = 1;
const FLAG_ZSTD: u8 = 1;
const HEADER_LEN: usize = 32;
/// A frame never exceeds this, so a corrupt length cannot make us allocate without bound.
const MAX_PAYLOAD: usize = 256 << 20;
const SEGMENT_TARGET: u64 = 64 << 20;

struct Segment {
    first_seq: u64,
    path: PathBuf,
}

fn file_len(path: &Path) -> u64 {
    fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

pub struct Journal {
    dir: PathBuf,
    segments: Vec<Segment>,
    active: File,
    /// Length of the active segment up to the last durable frame.
    active_len: u64,
    /// Bytes of the closed (non-active) segments.
    closed_len: u64,
    next_seq: u64,
    /// Reused between commits: fresh multi-megabyte buffers cost page faults every time.
    frame: Vec<u8>,
}

/// One journal entry: a record and its summary (empty when it has none).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry<'a> {
    pub record: &'a [u8],
    pub summary: &'a [u8],
}

#[cfg(test)]
impl<'a> Entry<'a> {
    /// An entry without a summary.
    pub fn bare(record: &'a [u8]) -> Entry<'a> {
        Entry {
            record,
            summary: &[],
        }
    }
}

/// A decoded frame header.
struct Header {
    version: u8,
    first_seq: u64,
    count: u32,
    payload_len: usize,
    payload_crc: u32,
    zstd: bool,
}

fn encode_header(first_seq: u64, count: u32, payload: &[u8], zstd: bool) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[0..4].copy_from_slice(&MAGIC);
    h[4] = VERSION;
    h[5] = if zstd { FLAG_ZSTD } else { 0 };
    h[8..16].copy_from_slice(&first_seq.to_le_bytes());
    h[16..20].copy_from_slice(&count.to_le_bytes());
    h[20..24].copy_from_slice(&(payload.len() as u32).to_le_bytes());
    h[24..28].copy_from_slice(&crc32fast::hash(payload).to_le_bytes());
    let crc = crc32fast::hash(&h[0..28]);
    h[28..32].copy_from_slice(&crc.to_le_bytes());
    h
}

fn decode_header(h: &[u8]) -> Option<Header> {
    if h.len() < HEADER_LEN || h[0..4] != MAGIC || !matches!(h[4], VERSION | VERSION_1) {
        return None;
    }
    let word = |at: usize| u32::from_le_bytes(h[at..at + 4].try_into().unwrap());
    if crc32fast::hash(&h[0..28]) != word(28) {
        return None;
    }
    let payload_len = word(20) as usize;
    if payload_len > MAX_PAYLOAD {
        return None;
    }
    Some(Header {
        version: h[4],
        first_seq: u64::from_le_bytes(h[8..16].try_into().unwrap()),
        count: word(16),
        payload_len,
        payload_crc: word(24),
        zstd: h[5] & FLAG_ZSTD != 0,
    })
}

fn segment_name(first_seq: u64) -> String {
    format!("{first_seq:020}.seg")
}

/// Splits a frame payload of format `version` into its entries.
fn split_payload(payload: &[u8], count: u32, version: u8) -> Option<Vec<Entry<'_>>> {
    let mut entries = Vec::with_capacity(count as usize);
    let mut pos = 0usize;
    let word = |pos: &mut usize| {
        let bytes = payload.get(*pos..*pos + 4)?;
        *pos += 4;
        Some(u32::from_le_bytes(bytes.try_into().ok()?) as usize)
    };
    for _ in 0..count {
        let record_len = word(&mut pos)?;
        let summary_len = if version == VERSION_1 {
            0
        } else {
            word(&mut pos)?
        };
        let record = payload.get(pos..pos + record_len)?;
        pos += record_len;
        let summary = payload.get(pos..pos + summary_len)?;
        pos += summary_len;
        entries.push(Entry { record, summary });
    }
    (pos == payload.len()).then_some(entries)
}

/// Walks the frames of one segment's bytes, calling `visit(first_seq, records)` for each.
/// Returns the offset where valid frames end.
fn scan_frames(
    bytes: &[u8],
    mut visit: impl FnMut(u64, Vec<Entry<'_>>) -> Result<()>,
) -> Result<(usize, bool)> {
    let mut pos = 0usize;
    let mut scratch = Vec::new();
    while pos < bytes.len() {
        let Some(header) = decode_header(&bytes[pos..]) else {
            return Ok((pos, false));
        };
        let start = pos + HEADER_LEN;
        let Some(stored) = bytes.get(start..start + header.payload_len) else {
            return Ok((pos, false));
        };
        if crc32fast::hash(stored) != header.payload_crc {
            return Ok((pos, false));
        }
        let payload: &[u8] = if header.zstd {
            scratch.clear();
            zstd::stream::copy_decode(stored, &mut scratch)
                .map_err(|e| StoreError::corrupt(format!("frame at byte {pos}: {e}")))?;
            &scratch
        } else {
            stored
        };
        let entries = split_payload(payload, header.count, header.version).ok_or_else(|| {
            StoreError::corrupt(format!("frame at byte {pos}: bad record lengths"))
        })?;
        visit(header.first_seq, entries)?;
        pos = start + header.payload_len;
    }
    Ok((pos, true))
}

impl Journal {
    /// Opens (or creates) the journal in `dir`, cutting a torn tail off the last segment.
    /// `floor_seq` is the lowest sequence number that must come next if every segment has
    /// already been consumed and removed.
    pub fn open(dir: &Path, floor_seq: u64) -> Result<Journal> {
        fsutil::create_dir(dir)?;
        let mut segments = Vec::new();
        for entry in fs::read_dir(dir).map_err(|e| StoreError::io(dir.display(), e))? {
            let entry = entry.map_err(|e| StoreError::io(dir.display(), e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(seq) = name
                .strip_suffix(".seg")
                .and_then(|s| s.parse::<u64>().ok())
            {
                segments.push(Segment {
                    first_seq: seq,
                    path: entry.path(),
                });
            }
        }
        segments.sort_by_key(|s| s.first_seq);

        let mut next_seq = floor_seq;
        if let Some(last) = segments.last() {
            let bytes = fs::read(&last.path).map_err(|e| StoreError::io(last.path.display(), e))?;
            let mut end_seq = last.first_seq;
            let (valid_len, clean) = scan_frames(&bytes, |first, records| {
                end_seq = first + records.len() as u64;
                Ok(())
            })?;
            if !clean {
                let torn = last.path.with_extension(format!("torn-{valid_len}"));
                fs::write(&torn, &bytes[valid_len..])
                    .map_err(|e| StoreError::io(torn.display(), e))?;
                fsutil::cut(&last.path, valid_len as u64)?;
                tracing::warn!(
                    segment = %last.path.display(),
                    offset = valid_len,
                    cut_bytes = bytes.len() - valid_len,
                    "journal ended in a torn frame (a crash during a write); cut it off, kept in {}",
                    torn.display()
                );
            }
            next_seq = next_seq.max(end_seq);
        }

        let (active, active_len) = match segments.last() {
            Some(last) => {
                let file = OpenOptions::new()
                    .append(true)
                    .open(&last.path)
                    .map_err(|e| StoreError::io(last.path.display(), e))?;
                let len = file
                    .metadata()
                    .map_err(|e| StoreError::io(last.path.display(), e))?
                    .len();
                (file, len)
            }
            None => {
                let path = dir.join(segment_name(next_seq));
                let file = create_segment(&path)?;
                segments.push(Segment {
                    first_seq: next_seq,
                    path,
                });
                (file, 0)
            }
        };
        let closed_len = segments[..segments.len() - 1]
            .iter()
            .map(|s| file_len(&s.path))
            .sum();
        Ok(Journal {
            dir: dir.to_owned(),
            closed_len,
            segments,
            active,
            active_len,
            next_seq,
            frame: Vec::new(),
        })
    }

    /// The sequence number the next appended event gets.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// The first sequence number still on disk (or the next one, when none is).
    pub fn first_seq(&self) -> u64 {
        self.segments.first().map_or(self.next_seq, |s| s.first_seq)
    }

    /// Appends `entries` as one durable frame and returns the first one's sequence number.
    /// On failure nothing is appended: a partly written frame is cut off again.
    pub fn append(&mut self, entries: &[Entry<'_>]) -> Result<u64> {
        if self.active_len >= SEGMENT_TARGET {
            self.rotate()?;
        }
        // The frame is built in place: header space first, then the payload. Records are
        // already compressed once, into runs, when the memtable is flushed; compressing the
        // journal too cost more CPU than the smaller write saved.
        self.frame.clear();
        self.frame.resize(HEADER_LEN, 0);
        for entry in entries {
            for part in [entry.record, entry.summary] {
                self.frame
                    .extend_from_slice(&(part.len() as u32).to_le_bytes());
            }
            self.frame.extend_from_slice(entry.record);
            self.frame.extend_from_slice(entry.summary);
        }
        let first_seq = self.next_seq;
        let header = encode_header(
            first_seq,
            entries.len() as u32,
            &self.frame[HEADER_LEN..],
            false,
        );
        self.frame[..HEADER_LEN].copy_from_slice(&header);
        let frame = &self.frame;

        let written = self
            .active
            .write_all(frame)
            .and_then(|_| self.active.sync_data());
        if let Err(err) = written {
            let error = StoreError::io("writing the journal", err);
            // Cut the partial frame so the next frame starts on a clean boundary.
            if let Err(cut) = self
                .active
                .set_len(self.active_len)
                .and_then(|_| self.active.sync_data())
            {
                tracing::error!(%cut, "could not cut a failed journal write; it will be cut on restart");
            }
            return Err(error);
        }
        self.active_len += frame.len() as u64;
        self.next_seq += entries.len() as u64;
        Ok(first_seq)
    }

    fn rotate(&mut self) -> Result<()> {
        let path = self.dir.join(segment_name(self.next_seq));
        self.active = create_segment(&path)?;
        fsutil::sync_dir(&self.dir)?;
        self.segments.push(Segment {
            first_seq: self.next_seq,
            path,
        });
        self.closed_len += self.active_len;
        self.active_len = 0;
        Ok(())
    }

    /// Calls `visit(seq, record)` for every event with sequence number ≥ `from`, in order.
    pub fn read_from(
        &self,
        from: u64,
        mut visit: impl FnMut(u64, &[u8]) -> Result<()>,
    ) -> Result<()> {
        for (i, segment) in self.segments.iter().enumerate() {
            let next_first = self.segments.get(i + 1).map(|s| s.first_seq);
            if next_first.is_some_and(|n| n <= from) {
                continue;
            }
            let bytes = read_file(&segment.path)?;
            let (valid_len, clean) = scan_frames(&bytes, |first, entries| {
                for (k, entry) in entries.into_iter().enumerate() {
                    let seq = first + k as u64;
                    if seq >= from {
                        visit(seq, entry.record)?;
                    }
                }
                Ok(())
            })?;
            if !clean {
                return Err(StoreError::corrupt(format!(
                    "journal segment {} is damaged at byte {valid_len}",
                    segment.path.display()
                )));
            }
        }
        Ok(())
    }

    /// Removes whole segments whose every event is below `seq` (already consumed by every
    /// consumer). The active segment always stays.
    pub fn remove_before(&mut self, seq: u64) -> Result<usize> {
        let mut removed = 0;
        while self.segments.len() > 1 && self.segments[1].first_seq <= seq {
            let segment = self.segments.remove(0);
            self.closed_len = self.closed_len.saturating_sub(file_len(&segment.path));
            fs::remove_file(&segment.path)
                .map_err(|e| StoreError::io(segment.path.display(), e))?;
            removed += 1;
        }
        Ok(removed)
    }

    /// Bytes the journal holds on disk.
    pub fn disk_bytes(&self) -> u64 {
        self.closed_len + self.active_len
    }
}

/// Reads the journal from another thread while the writer appends: frame by frame with
/// positioned reads, from where it left off, never past a position the caller knows to
/// be durable. The writer keeps every segment at or above the reader's position (see
/// `Store::retain_from`).
pub struct JournalReader {
    dir: PathBuf,
    /// The next event to read.
    next_seq: u64,
    /// The open segment and the byte offset of the next frame in it.
    at: Option<(u64, File, u64)>,
    /// Positions passed over: events that belong to the history only.
    passed_over: Vec<Range<u64>>,
    /// Kept between reads: a fresh frame-sized buffer costs page faults every time.
    payload: Vec<u8>,
}

impl JournalReader {
    pub fn new(dir: &Path, from_seq: u64) -> JournalReader {
        JournalReader {
            dir: dir.to_owned(),
            next_seq: from_seq,
            at: None,
            passed_over: Vec::new(),
            payload: Vec::new(),
        }
    }

    /// The reader does not visit events at these positions.
    pub fn passing_over(mut self, ranges: Vec<Range<u64>>) -> JournalReader {
        self.passed_over = ranges;
        self
    }

    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// The segments' first sequence numbers, in order.
    fn segments(dir: &Path) -> Result<Vec<u64>> {
        let mut firsts = Vec::new();
        let entries = fs::read_dir(dir).map_err(|e| StoreError::io(dir.display(), e))?;
        for entry in entries {
            let entry = entry.map_err(|e| StoreError::io(dir.display(), e))?;
            let name = entry.file_name();
            if let Some(first) = name
                .to_str()
                .and_then(|n| n.strip_suffix(".seg"))
                .and_then(|n| n.parse::<u64>().ok())
            {
                firsts.push(first);
            }
        }
        firsts.sort_unstable();
        Ok(firsts)
    }

    /// Opens the segment holding `next_seq` and finds its frame by walking headers.
    fn seek(&mut self) -> Result<()> {
        let segments = Self::segments(&self.dir)?;
        let Some(&first) = segments.iter().rev().find(|&&f| f <= self.next_seq) else {
            return Err(StoreError::corrupt(format!(
                "journal position {} is no longer on disk",
                self.next_seq
            )));
        };
        let path = self.dir.join(segment_name(first));
        let file = File::open(&path).map_err(|e| StoreError::io(path.display(), e))?;
        let mut offset = 0u64;
        let mut header = [0u8; HEADER_LEN];
        loop {
            if !read_exact_at(&file, &mut header, offset)? {
                break;
            }
            let Some(h) = decode_header(&header) else {
                break;
            };
            if h.first_seq + u64::from(h.count) > self.next_seq {
                break;
            }
            offset += (HEADER_LEN + h.payload_len) as u64;
        }
        self.at = Some((first, file, offset));
        Ok(())
    }

    /// Calls `visit(seq, entry)` for the events from the reader's position up to (not
    /// including) `until`, whole frames at a time, and stops early once `budget` bytes of
    /// records were visited. Returns the new position. A read that fails leaves the
    /// position just past the last frame visited, so the events visited are exactly those
    /// below [`next_seq`](Self::next_seq).
    pub fn read(
        &mut self,
        until: u64,
        budget: usize,
        mut visit: impl FnMut(u64, Entry<'_>),
    ) -> Result<u64> {
        let mut spent = 0usize;
        let mut header = [0u8; HEADER_LEN];
        let mut payload = std::mem::take(&mut self.payload);
        while self.next_seq < until && spent < budget {
            if self.at.is_none() {
                self.seek()?;
            }
            let (first, file, offset) = self.at.as_mut().expect("seek opened a segment");
            let complete = read_exact_at(file, &mut header, *offset)?;
            let decoded = complete.then(|| decode_header(&header)).flatten();
            let Some(h) = decoded else {
                // The end of this segment's frames: move on if a later segment exists.
                let later = Self::segments(&self.dir)?.into_iter().find(|&f| f > *first);
                match later {
                    Some(next) if next <= self.next_seq => {
                        self.at = None;
                        continue;
                    }
                    _ => {
                        return Err(StoreError::corrupt(format!(
                            "journal segment {} ends before durable position {until}",
                            segment_name(*first)
                        )))
                    }
                }
            };
            let at = *offset + HEADER_LEN as u64;
            let frame_end = h.first_seq + u64::from(h.count);
            if !covered(&self.passed_over, h.first_seq..frame_end) {
                payload.resize(h.payload_len, 0);
                if !read_exact_at(file, &mut payload, at)?
                    || crc32fast::hash(&payload) != h.payload_crc
                {
                    return Err(StoreError::corrupt(format!(
                        "journal segment {} is damaged at byte {offset}",
                        segment_name(*first)
                    )));
                }
                let decompressed;
                let bytes: &[u8] = if h.zstd {
                    decompressed = zstd::stream::decode_all(payload.as_slice())
                        .map_err(|e| StoreError::corrupt(format!("journal frame: {e}")))?;
                    &decompressed
                } else {
                    &payload
                };
                let entries = split_payload(bytes, h.count, h.version)
                    .ok_or_else(|| StoreError::corrupt("journal frame: bad record lengths"))?;
                // Records are checked one by one only in a frame a range reaches into.
                let partly_passed_over = self
                    .passed_over
                    .iter()
                    .any(|r| r.start < frame_end && h.first_seq < r.end);
                for (k, entry) in entries.into_iter().enumerate() {
                    let seq = h.first_seq + k as u64;
                    let passed_over =
                        partly_passed_over && covered(&self.passed_over, seq..seq + 1);
                    if seq >= self.next_seq && !passed_over {
                        spent += entry.record.len();
                        visit(seq, entry);
                    }
                }
            }
            *offset = at + h.payload_len as u64;
            self.next_seq = self.next_seq.max(frame_end);
        }
        self.payload = payload;
        Ok(self.next_seq)
    }
}

/// Whether `seqs` lies inside one of `ranges`.
fn covered(ranges: &[Range<u64>], seqs: Range<u64>) -> bool {
    ranges
        .iter()
        .any(|r| r.start <= seqs.start && seqs.end <= r.end)
}

/// Fills `buf` from `offset`; false if the file ends first.
fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> Result<bool> {
    use std::os::unix::fs::FileExt;
    match file.read_exact_at(buf, offset) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(false),
        Err(e) => Err(StoreError::io("reading the journal", e)),
    }
}

fn create_segment(path: &Path) -> Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| StoreError::io(path.display(), e))
}

fn read_file(path: &Path) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    File::open(path)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .map_err(|e| StoreError::io(path.display(), e))?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bare<'a>(records: &[&'a [u8]]) -> Vec<Entry<'a>> {
        records.iter().map(|r| Entry::bare(r)).collect()
    }

    fn collect(journal: &Journal, from: u64) -> Vec<(u64, Vec<u8>)> {
        let mut out = Vec::new();
        journal
            .read_from(from, |seq, r| {
                out.push((seq, r.to_vec()));
                Ok(())
            })
            .unwrap();
        out
    }

    #[test]
    fn appends_and_reads_back_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut journal = Journal::open(dir.path(), 1).unwrap();
        assert_eq!(journal.append(&bare(&[b"a", b"bb"])).unwrap(), 1);
        assert_eq!(journal.append(&bare(&[b"ccc"])).unwrap(), 3);
        drop(journal);
        let journal = Journal::open(dir.path(), 1).unwrap();
        assert_eq!(journal.next_seq(), 4);
        let all = collect(&journal, 2);
        assert_eq!(all, vec![(2, b"bb".to_vec()), (3, b"ccc".to_vec())]);
    }

    #[test]
    fn a_reader_passes_over_ranges_inside_frames_and_whole_frames() {
        let dir = tempfile::tempdir().unwrap();
        let mut journal = Journal::open(dir.path(), 1).unwrap();
        journal.append(&bare(&[b"a", b"b", b"c", b"d"])).unwrap();
        journal.append(&bare(&[b"e", b"f"])).unwrap();
        journal.append(&bare(&[b"g"])).unwrap();
        // Damage the second frame's payload: a frame passed over whole is never read.
        let segment = fs::read_dir(dir.path())
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        let mut bytes = fs::read(&segment).unwrap();
        let second_payload = 2 * HEADER_LEN + 4 * 9;
        bytes[second_payload + 4] ^= 1;
        fs::write(&segment, bytes).unwrap();
        let mut seen = Vec::new();
        let end = JournalReader::new(dir.path(), 1)
            .passing_over(vec![2..4, 5..7])
            .read(8, usize::MAX, |seq, e| seen.push((seq, e.record.to_vec())))
            .unwrap();
        assert_eq!(end, 8);
        assert_eq!(
            seen,
            vec![(1, b"a".to_vec()), (4, b"d".to_vec()), (7, b"g".to_vec())]
        );
    }

    #[test]
    fn torn_tail_is_cut_and_earlier_frames_survive() {
        let dir = tempfile::tempdir().unwrap();
        let mut journal = Journal::open(dir.path(), 1).unwrap();
        journal.append(&bare(&[b"kept"])).unwrap();
        journal.append(&bare(&[b"torn away"])).unwrap();
        let path = journal.segments[0].path.clone();
        drop(journal);
        let len = fs::metadata(&path).unwrap().len();
        crate::fsutil::cut(&path, len - 3).unwrap();

        let mut journal = Journal::open(dir.path(), 1).unwrap();
        assert_eq!(journal.next_seq(), 2);
        assert_eq!(collect(&journal, 1), vec![(1, b"kept".to_vec())]);
        assert_eq!(journal.append(&bare(&[b"next"])).unwrap(), 2);
        assert_eq!(collect(&journal, 1).len(), 2);
    }

    #[test]
    fn corruption_inside_an_older_segment_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let mut journal = Journal::open(dir.path(), 1).unwrap();
        journal.append(&bare(&[b"first"])).unwrap();
        journal.rotate().unwrap();
        journal.append(&bare(&[b"second"])).unwrap();
        let first = journal.segments[0].path.clone();
        let mut bytes = fs::read(&first).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        fs::write(&first, bytes).unwrap();
        let err = journal.read_from(1, |_, _| Ok(())).unwrap_err();
        assert_eq!(err.kind, crate::StoreErrorKind::Corrupt);
    }

    #[test]
    fn a_failed_read_stops_past_the_frames_it_visited() {
        let dir = tempfile::tempdir().unwrap();
        let mut journal = Journal::open(dir.path(), 1).unwrap();
        journal.append(&bare(&[b"one", b"two"])).unwrap();
        journal.append(&bare(&[b"three"])).unwrap();
        journal.append(&bare(&[b"four", b"five"])).unwrap();
        // Damage the last frame's payload: its CRC no longer matches.
        let path = journal.segments[0].path.clone();
        let mut bytes = fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        fs::write(&path, bytes).unwrap();
        let mut reader = JournalReader::new(dir.path(), 2);
        let mut seen = Vec::new();
        let err = reader
            .read(6, usize::MAX, |seq, e| seen.push((seq, e.record.to_vec())))
            .unwrap_err();
        assert_eq!(err.kind, crate::StoreErrorKind::Corrupt);
        assert_eq!(seen, vec![(2, b"two".to_vec()), (3, b"three".to_vec())]);
        assert_eq!(reader.next_seq(), 4);
    }

    #[test]
    fn consumed_segments_are_removed_and_numbering_continues() {
        let dir = tempfile::tempdir().unwrap();
        let mut journal = Journal::open(dir.path(), 1).unwrap();
        journal.append(&bare(&[b"a"])).unwrap();
        journal.rotate().unwrap();
        journal.append(&bare(&[b"b"])).unwrap();
        assert_eq!(journal.remove_before(2).unwrap(), 1);
        drop(journal);
        let journal = Journal::open(dir.path(), 1).unwrap();
        assert_eq!(journal.next_seq(), 3);
        assert_eq!(collect(&journal, 0), vec![(2, b"b".to_vec())]);
    }

    #[test]
    fn disk_bytes_follow_the_files_without_reading_them() {
        let dir = tempfile::tempdir().unwrap();
        let on_disk = |j: &Journal| j.segments.iter().map(|s| file_len(&s.path)).sum::<u64>();
        let mut journal = Journal::open(dir.path(), 1).unwrap();
        journal.append(&bare(&[b"first"])).unwrap();
        journal.rotate().unwrap();
        journal.append(&bare(&[b"second", b"third"])).unwrap();
        assert_eq!(journal.disk_bytes(), on_disk(&journal));
        journal.remove_before(2).unwrap();
        assert_eq!(journal.disk_bytes(), on_disk(&journal));
        drop(journal);
        let journal = Journal::open(dir.path(), 1).unwrap();
        assert_eq!(journal.disk_bytes(), on_disk(&journal));
    }

    #[test]
    fn a_reader_follows_the_writer_across_segments() {
        let dir = tempfile::tempdir().unwrap();
        let mut journal = Journal::open(dir.path(), 1).unwrap();
        let mut reader = JournalReader::new(dir.path(), 1);
        let mut seen = Vec::new();
        for round in 0..3u64 {
            let records: Vec<Vec<u8>> = (0..4)
                .map(|i| format!("r{round}-{i}").into_bytes())
                .collect();
            let refs: Vec<&[u8]> = records.iter().map(Vec::as_slice).collect();
            journal.append(&bare(&refs)).unwrap();
            journal.rotate().unwrap();
            let until = journal.next_seq();
            reader
                .read(until, usize::MAX, |seq, e| {
                    seen.push((seq, e.record.to_vec()))
                })
                .unwrap();
            assert_eq!(reader.next_seq(), until);
        }
        assert_eq!(seen.len(), 12);
        assert_eq!(seen[5], (6, b"r1-1".to_vec()));
        // A reader starting mid-frame sees only what follows its position.
        let mut late = JournalReader::new(dir.path(), 7);
        let mut tail = Vec::new();
        late.read(journal.next_seq(), usize::MAX, |seq, _| tail.push(seq))
            .unwrap();
        assert_eq!(tail, (7..13).collect::<Vec<u64>>());
        // A budget stops at a frame boundary.
        let mut budgeted = JournalReader::new(dir.path(), 1);
        assert_eq!(budgeted.read(13, 1, |_, _| {}).unwrap(), 5);
    }

    #[test]
    fn summaries_are_kept_beside_records_and_old_frames_read_without() {
        let dir = tempfile::tempdir().unwrap();
        // A format 1 frame, as journals held before summaries were kept.
        let payload = [&3u32.to_le_bytes()[..], b"old"].concat();
        let mut header = encode_header(1, 1, &payload, false);
        header[4] = VERSION_1;
        let crc = crc32fast::hash(&header[0..28]);
        header[28..32].copy_from_slice(&crc.to_le_bytes());
        fs::write(
            dir.path().join(segment_name(1)),
            [&header[..], &payload].concat(),
        )
        .unwrap();

        let mut journal = Journal::open(dir.path(), 1).unwrap();
        assert_eq!(journal.next_seq(), 2);
        journal
            .append(&[
                Entry {
                    record: b"new",
                    summary: b"its summary",
                },
                Entry::bare(b"bare"),
            ])
            .unwrap();
        let mut seen = Vec::new();
        JournalReader::new(dir.path(), 1)
            .read(4, usize::MAX, |seq, e| {
                seen.push((seq, e.record.to_vec(), e.summary.to_vec()))
            })
            .unwrap();
        assert_eq!(
            seen,
            vec![
                (1, b"old".to_vec(), vec![]),
                (2, b"new".to_vec(), b"its summary".to_vec()),
                (3, b"bare".to_vec(), vec![]),
            ]
        );
        drop(journal);
        // Opening and replaying read both formats too.
        let journal = Journal::open(dir.path(), 1).unwrap();
        assert_eq!(collect(&journal, 1).len(), 3);
    }

    #[test]
    fn garbage_header_is_not_trusted() {
        assert!(decode_header(&[0u8; HEADER_LEN]).is_none());
        let mut h = encode_header(7, 1, b"x", false);
        assert!(decode_header(&h).is_some());
        h[10] ^= 1;
        assert!(decode_header(&h).is_none());
    }
}
