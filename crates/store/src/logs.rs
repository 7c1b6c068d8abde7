//! Log groups' events: what trails send to CloudWatch Logs, kept per group in append-only
//! files, one per UTC day of ingestion (`<group id>/<YYYYMMDD>.log`), so retention drops
//! whole files.
//!
//! A file is a sequence of frames: `u32` payload length, `u32` CRC-32 of the payload, then
//! the payload: journal sequence number (`u64`), event timestamp and ingestion time
//! (milliseconds, `i64`), the stream name (`u16` length, bytes) and the message. All
//! integers are little-endian.
//!
//! The files are their own cursor: every frame carries the journal position of its event,
//! and a group takes events in journal order, so after a crash an event already in the
//! group (its position is at or below the group's last one) is not written again. A torn
//! frame at the end of the newest file is cut off when the group is first opened; a whole
//! frame that does not decode is skipped.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::error::{Result, StoreError};
use crate::fsutil;

const FRAME_HEADER: usize = 8;
const FIXED_PAYLOAD: usize = 8 + 8 + 8 + 2;
/// Larger than any event a trail sends (CloudWatch Logs' own limit is 1 MiB); a frame
/// claiming more is damage.
const MAX_PAYLOAD: usize = 2 << 20;
const DAY_MILLIS: i64 = cairn_core::timefmt::SECONDS_PER_DAY * 1000;

/// An event on its way into a group.
pub struct NewLogEvent<'a> {
    /// Its position in the journal.
    pub seq: u64,
    /// Milliseconds since the epoch (the CloudTrail event's `eventTime`).
    pub timestamp: i64,
    pub stream: String,
    pub message: &'a [u8],
}

/// An event read from a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEvent {
    pub seq: u64,
    pub timestamp: i64,
    pub ingestion_time: i64,
    pub stream: String,
    pub message: String,
}

/// The open newest file of a group, and the last journal position the group holds.
struct Writer {
    day: i64,
    file: File,
    last_seq: Option<u64>,
}

pub struct LogStore {
    dir: PathBuf,
    writers: Mutex<HashMap<String, Writer>>,
}

fn day_file(day: i64) -> String {
    format!("{}.log", cairn_core::timefmt::day_label(day))
}

/// The days of a group's files, oldest first.
fn days(dir: &Path) -> Result<Vec<(i64, PathBuf)>> {
    crate::fsutil::day_files(dir, ".log")
}

/// CloudWatch Logs' longest stream name.
const MAX_STREAM_BYTES: usize = 512;

fn encode(out: &mut Vec<u8>, event: &NewLogEvent, ingestion_time: i64) {
    let mut cut = event.stream.len().min(MAX_STREAM_BYTES);
    while !event.stream.is_char_boundary(cut) {
        cut -= 1;
    }
    let stream = &event.stream.as_bytes()[..cut];
    let payload_len = FIXED_PAYLOAD + stream.len() + event.message.len();
    let start = out.len();
    out.extend_from_slice(&(payload_len as u32).to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&event.seq.to_le_bytes());
    out.extend_from_slice(&event.timestamp.to_le_bytes());
    out.extend_from_slice(&ingestion_time.to_le_bytes());
    out.extend_from_slice(&(stream.len() as u16).to_le_bytes());
    out.extend_from_slice(stream);
    out.extend_from_slice(event.message);
    let crc = crc32fast::hash(&out[start + FRAME_HEADER..]);
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

fn le_u64(bytes: &[u8]) -> u64 {
    u64::from_le_bytes(bytes[..8].try_into().expect("eight bytes"))
}

fn decode(payload: &[u8]) -> Option<LogEvent> {
    if payload.len() < FIXED_PAYLOAD {
        return None;
    }
    let stream_len = usize::from(u16::from_le_bytes([payload[24], payload[25]]));
    let stream = payload.get(FIXED_PAYLOAD..FIXED_PAYLOAD + stream_len)?;
    let message = &payload[FIXED_PAYLOAD + stream_len..];
    Some(LogEvent {
        seq: le_u64(&payload[0..]),
        timestamp: le_u64(&payload[8..]) as i64,
        ingestion_time: le_u64(&payload[16..]) as i64,
        stream: String::from_utf8(stream.to_vec()).ok()?,
        message: String::from_utf8(message.to_vec()).ok()?,
    })
}

/// Reads frames from `reader` until the end or the first incomplete or damaged frame;
/// `visit` returns false to stop. Returns the byte length of the whole frames read.
fn read_frames(reader: impl Read, mut visit: impl FnMut(LogEvent) -> bool) -> u64 {
    let mut reader = BufReader::with_capacity(1 << 16, reader);
    let mut good = 0u64;
    let mut header = [0u8; FRAME_HEADER];
    let mut payload = Vec::new();
    loop {
        if reader.read_exact(&mut header).is_err() {
            return good;
        }
        let len = u32::from_le_bytes(header[..4].try_into().expect("four bytes")) as usize;
        let crc = u32::from_le_bytes(header[4..].try_into().expect("four bytes"));
        if !(FIXED_PAYLOAD..=MAX_PAYLOAD).contains(&len) {
            return good;
        }
        payload.resize(len, 0);
        if reader.read_exact(&mut payload).is_err() || crc32fast::hash(&payload) != crc {
            return good;
        }
        good += (FRAME_HEADER + len) as u64;
        // A whole frame that does not decode is skipped: what follows it is intact.
        let Some(event) = decode(&payload) else {
            tracing::error!(at = good, "skipping an undecodable log event frame");
            continue;
        };
        if !visit(event) {
            return good;
        }
    }
}

impl LogStore {
    pub fn open(dir: &Path) -> Result<LogStore> {
        fsutil::create_dir(dir)?;
        Ok(LogStore {
            dir: dir.to_owned(),
            writers: Mutex::new(HashMap::new()),
        })
    }

    fn group_dir(&self, group: &str) -> Result<PathBuf> {
        // Group ids are names Cairn makes (hex); anything else must not become a path.
        if group.is_empty() || !group.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(StoreError::corrupt(format!(
                "{group:?} is not a log group id"
            )));
        }
        Ok(self.dir.join(group))
    }

    /// Finds the last journal position a group holds, cutting off a torn tail of its
    /// newest file.
    fn recover(&self, dir: &Path) -> Result<Option<u64>> {
        let files = days(dir)?;
        let mut last_seq = None;
        for (index, (_, path)) in files.iter().enumerate().rev() {
            let file = File::open(path).map_err(|e| StoreError::io(path.display(), e))?;
            let good = read_frames(&file, |event| {
                last_seq = Some(event.seq);
                true
            });
            let newest = index + 1 == files.len();
            let len = file
                .metadata()
                .map_err(|e| StoreError::io(path.display(), e))?
                .len();
            if newest && good < len {
                tracing::warn!(file = %path.display(), at = good, "cutting off a torn log event frame");
                fsutil::cut(path, good)?;
            }
            if last_seq.is_some() {
                break;
            }
        }
        Ok(last_seq)
    }

    /// Opens a group's file of `day` for appending. `last_seq` is the group's last journal
    /// position, if the caller knows it (a day rolling over); otherwise it is recovered.
    fn open_writer(&self, group: &str, day: i64, last_seq: Option<Option<u64>>) -> Result<Writer> {
        let dir = self.group_dir(group)?;
        fsutil::create_dir(&dir)?;
        let last_seq = match last_seq {
            Some(known) => known,
            None => self.recover(&dir)?,
        };
        let path = dir.join(day_file(day));
        let created = !path.exists();
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| StoreError::io(path.display(), e))?;
        if created {
            fsutil::sync_dir(&dir)?;
        }
        Ok(Writer {
            day,
            file,
            last_seq,
        })
    }

    /// Appends `events` (in journal order) to `group`, ingested at `ingestion_time`
    /// (milliseconds), and makes them durable. Events the group already holds are
    /// skipped. Returns how many were written.
    pub fn append(
        &self,
        group: &str,
        ingestion_time: i64,
        events: &[NewLogEvent],
    ) -> Result<usize> {
        let day = ingestion_time.div_euclid(DAY_MILLIS);
        let mut writers = self.writers.lock().expect("log writers lock");
        if writers.get(group).is_none_or(|w| w.day != day) {
            // A new day keeps what the old day's writer knew.
            let known = writers.remove(group).map(|w| w.last_seq);
            let writer = self.open_writer(group, day, known)?;
            writers.insert(group.to_owned(), writer);
        }
        let writer = writers.get_mut(group).expect("opened above");
        let mut buffer = Vec::new();
        let mut last = writer.last_seq;
        let mut written = 0;
        for event in events {
            if last.is_some_and(|l| event.seq <= l) {
                continue;
            }
            if FIXED_PAYLOAD + MAX_STREAM_BYTES + event.message.len() > MAX_PAYLOAD {
                return Err(StoreError::corrupt(format!(
                    "a log event of {} bytes is larger than a group takes",
                    event.message.len()
                )));
            }
            encode(&mut buffer, event, ingestion_time);
            last = Some(event.seq);
            written += 1;
        }
        if buffer.is_empty() {
            return Ok(0);
        }
        let result = writer
            .file
            .write_all(&buffer)
            .and_then(|()| writer.file.sync_data());
        if let Err(e) = result {
            // The file may end in part of a frame: reopen (and cut it off) next time.
            writers.remove(group);
            return Err(StoreError::io(format!("log group {group}"), e));
        }
        writer.last_seq = last;
        Ok(written)
    }

    /// Calls `visit` for each event of `group`, in the order they were ingested, until it
    /// returns false. A frame being written while this reads is not seen.
    pub fn scan(&self, group: &str, mut visit: impl FnMut(LogEvent) -> bool) -> Result<()> {
        let dir = self.group_dir(group)?;
        for (_, path) in days(&dir)? {
            let file = match File::open(&path) {
                Ok(file) => file,
                // Removed by retention meanwhile.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(StoreError::io(path.display(), e)),
            };
            let mut go_on = true;
            read_frames(file, |event| {
                go_on = visit(event);
                go_on
            });
            if !go_on {
                break;
            }
        }
        Ok(())
    }

    /// Bytes a group holds on disk.
    pub fn stored_bytes(&self, group: &str) -> Result<u64> {
        let dir = self.group_dir(group)?;
        Ok(days(&dir)?
            .iter()
            .filter_map(|(_, path)| fs::metadata(path).ok())
            .map(|m| m.len())
            .sum())
    }

    /// Removes a group's files of days before `first_day` (days since the epoch).
    /// Returns how many files went.
    pub fn expire(&self, group: &str, first_day: i64) -> Result<usize> {
        let dir = self.group_dir(group)?;
        let writers = self.writers.lock().expect("log writers lock");
        let mut removed = 0;
        for (day, path) in days(&dir)? {
            let open = writers.get(group).is_some_and(|w| w.day == day);
            if day < first_day && !open {
                fs::remove_file(&path).map_err(|e| StoreError::io(path.display(), e))?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Removes a group's files (a deleted log group).
    pub fn remove(&self, group: &str) -> Result<()> {
        let dir = self.group_dir(group)?;
        let mut writers = self.writers.lock().expect("log writers lock");
        writers.remove(group);
        match fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(StoreError::io(dir.display(), e))
            }
            _ => Ok(()),
        }
    }

    /// Removes every group not in `live` (deleted log groups), except groups written to
    /// since the store opened: `live` may be older than a group created meanwhile.
    pub fn keep_only(&self, live: &[String]) -> Result<usize> {
        let entries = fs::read_dir(&self.dir).map_err(|e| StoreError::io(self.dir.display(), e))?;
        let writers = self.writers.lock().expect("log writers lock");
        let mut removed = 0;
        for entry in entries {
            let entry = entry.map_err(|e| StoreError::io(self.dir.display(), e))?;
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if !entry.path().is_dir() || live.contains(&name) || writers.contains_key(&name) {
                continue;
            }
            fs::remove_dir_all(entry.path())
                .map_err(|e| StoreError::io(entry.path().display(), e))?;
            removed += 1;
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(seq: u64, stream: &str, message: &'static str) -> NewLogEvent<'static> {
        NewLogEvent {
            seq,
            timestamp: 1_700_000_000_000 + seq as i64,
            stream: stream.to_owned(),
            message: message.as_bytes(),
        }
    }

    fn all(store: &LogStore, group: &str) -> Vec<LogEvent> {
        let mut out = Vec::new();
        store
            .scan(group, |e| {
                out.push(e);
                true
            })
            .unwrap();
        out
    }

    const NOW: i64 = 1_700_000_000_000;

    #[test]
    fn appends_and_reads_back_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = LogStore::open(dir.path()).unwrap();
        let events = [event(3, "a", "{\"x\":1}"), event(5, "b", "two")];
        assert_eq!(store.append("g1", NOW, &events).unwrap(), 2);
        let read = all(&store, "g1");
        assert_eq!(read.len(), 2);
        assert_eq!(read[0].seq, 3);
        assert_eq!(read[0].stream, "a");
        assert_eq!(read[0].message, "{\"x\":1}");
        assert_eq!(read[0].ingestion_time, NOW);
        assert_eq!(read[1].timestamp, NOW + 5);
        assert!(all(&store, "other").is_empty());
    }

    #[test]
    fn events_already_held_are_not_written_again_even_after_reopening() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = LogStore::open(dir.path()).unwrap();
            store
                .append("g", NOW, &[event(1, "s", "one"), event(2, "s", "two")])
                .unwrap();
        }
        let store = LogStore::open(dir.path()).unwrap();
        let replay = [
            event(1, "s", "one"),
            event(2, "s", "two"),
            event(3, "s", "three"),
        ];
        assert_eq!(store.append("g", NOW, &replay).unwrap(), 1);
        let seqs: Vec<u64> = all(&store, "g").iter().map(|e| e.seq).collect();
        assert_eq!(seqs, [1, 2, 3]);
    }

    #[test]
    fn a_torn_frame_is_cut_off_and_its_event_written_again() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = LogStore::open(dir.path()).unwrap();
            store
                .append("g", NOW, &[event(1, "s", "one"), event(2, "s", "two")])
                .unwrap();
        }
        let path = dir.path().join("g").join(day_file(NOW / DAY_MILLIS));
        let len = fs::metadata(&path).unwrap().len();
        crate::fsutil::cut(&path, len - 3).unwrap();
        let store = LogStore::open(dir.path()).unwrap();
        assert_eq!(
            all(&store, "g").len(),
            1,
            "a reader stops at the torn frame"
        );
        assert_eq!(store.append("g", NOW, &[event(2, "s", "two")]).unwrap(), 1);
        let seqs: Vec<u64> = all(&store, "g").iter().map(|e| e.seq).collect();
        assert_eq!(seqs, [1, 2]);
    }

    #[test]
    fn long_stream_names_are_cut_at_a_character_and_bad_frames_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let store = LogStore::open(dir.path()).unwrap();
        let long = "é".repeat(600);
        store
            .append("g", NOW, &[event(1, &long, "one"), event(2, "s", "two")])
            .unwrap();
        let read = all(&store, "g");
        assert_eq!(read.len(), 2);
        // Two-byte characters: cut at a character, exactly at the limit.
        assert_eq!(read[0].stream.len(), MAX_STREAM_BYTES);
        assert!(long.starts_with(&read[0].stream));
        // A frame whose checksum holds but whose content does not decode (a stream name
        // that is not UTF-8) is skipped; the frames after it are read.
        let mut bytes = Vec::new();
        encode(&mut bytes, &event(3, "s", "three"), NOW);
        let bad = FRAME_HEADER + FIXED_PAYLOAD;
        bytes[bad] = 0xff;
        let crc = crc32fast::hash(&bytes[FRAME_HEADER..]);
        bytes[4..8].copy_from_slice(&crc.to_le_bytes());
        encode(&mut bytes, &event(4, "s", "four"), NOW);
        let mut seen = Vec::new();
        read_frames(bytes.as_slice(), |e| {
            seen.push(e.seq);
            true
        });
        assert_eq!(seen, [4]);
    }

    #[test]
    fn a_new_day_starts_a_new_file_and_expiry_drops_old_days() {
        let dir = tempfile::tempdir().unwrap();
        let store = LogStore::open(dir.path()).unwrap();
        store.append("g", NOW, &[event(1, "s", "day one")]).unwrap();
        let tomorrow = NOW + DAY_MILLIS;
        store
            .append(
                "g",
                tomorrow,
                &[event(1, "s", "again"), event(2, "s", "day two")],
            )
            .unwrap();
        assert_eq!(all(&store, "g").len(), 2);
        assert_eq!(store.expire("g", tomorrow / DAY_MILLIS).unwrap(), 1);
        let left = all(&store, "g");
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].message, "day two");
    }

    #[test]
    fn deleted_groups_are_removed_and_ids_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let store = LogStore::open(dir.path()).unwrap();
        store.append("keep", NOW, &[event(1, "s", "x")]).unwrap();
        store.append("gone", NOW, &[event(1, "s", "y")]).unwrap();
        assert_eq!(
            store.keep_only(&["keep".to_owned()]).unwrap(),
            0,
            "groups being written are kept"
        );
        drop(store);
        let store = LogStore::open(dir.path()).unwrap();
        assert_eq!(store.keep_only(&["keep".to_owned()]).unwrap(), 1);
        assert!(all(&store, "gone").is_empty());
        assert_eq!(all(&store, "keep").len(), 1);
        assert!(store.append("../x", NOW, &[event(1, "s", "z")]).is_err());
    }
}
