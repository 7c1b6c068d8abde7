//! Insights metrics: what each Insights series counted per minute, for
//! ListInsightsMetricData.
//!
//! The detector gives the non-zero counts of every minute it closes. A day's counts stay in
//! memory while the day may still change, and are saved with the detector's state (so they
//! belong to the same journal cursor); an hour after the day ends they are written to
//! `insights/metrics/<day>.bin`, indexed by series, and leave memory. A count is set, never
//! added: counts decided again after a restart change nothing. A count for a day already
//! written (an account and region far behind the clock) opens that day again from its file.
//! Day files older than 90 days are removed with the history's expiry.
//!
//! The days in memory are saved as a base, `insights/metrics.bin` (all of them, framed),
//! and a log, `insights/metrics.log`: each save appends only the counts set since the last
//! one, as a frame (length u32, CRC-32 u32, postcard body: the series new to the log, then
//! (series number, minute, count) triples, series numbered in the order the log named
//! them, so a busy series' names are written once per log). The base is rewritten, and the
//! log emptied, when a day leaves memory or the log outgrows the base, so a save costs
//! what changed, not every busy minute of the day again. Opening reads the base, then the
//! log's frames up to the first torn or damaged one, and cuts the log there. Frames older
//! than the base (a crash between its rewrite and the log's emptying) set counts the base
//! already holds, which changes nothing.
//!
//! A day file: the header's length (u32), the header (postcard: each series with its
//! block's offset, length and CRC-32), the header's CRC-32, then the blocks, each a run of
//! (minute of the day u16, count u32), little-endian. A query reads a header and one block
//! per day.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use cairn_core::timefmt::{day_label, day_of, SECONDS_PER_DAY};
use cairn_insights::snapshot::{frame, unframe};
use cairn_insights::MinuteCount;
pub use cairn_insights::Subject;
use cairn_store::fsutil::day_files;
use serde::{Deserialize, Serialize};

const MINUTES_PER_DAY: i64 = SECONDS_PER_DAY / 60;
/// Days of counts kept: the longest period AWS answers for (one-hour points).
pub const KEPT_DAYS: i64 = 90;
/// A day stays in memory this long after it ends, for accounts and regions a little behind.
const WRITE_AFTER_SECS: i64 = 3600;
/// The base's layout; another is refused.
const FORMAT: u32 = 1;
/// In the insights directory: the base, the log, and the written days' directory.
const BASE_FILE: &str = "metrics.bin";
const LOG_FILE: &str = "metrics.log";
const DAYS_DIR: &str = "metrics";
/// The log is let grow to the base's size, or this, before the base is rewritten.
const LOG_ALLOWANCE: u64 = 1 << 20;

/// A day's counts: per series, (minute of the day, count) in order of minute. (A sorted
/// list rather than a map: 6 bytes a count, where a map takes several times that.)
type Day = BTreeMap<Subject, Vec<(u16, u32)>>;

/// Sets `minute`'s count in a sorted list: minutes mostly come in order, so mostly a push.
fn set_count(minutes: &mut Vec<(u16, u32)>, minute: u16, count: u32) {
    match minutes.last() {
        Some(&(last, _)) if last < minute => minutes.push((minute, count)),
        _ => match minutes.binary_search_by_key(&minute, |&(m, _)| m) {
            Ok(at) => minutes[at].1 = count,
            Err(at) => minutes.insert(at, (minute, count)),
        },
    }
}

/// Counts set since the last save: per series, (epoch minute, count).
type Changes = BTreeMap<Subject, Vec<(i64, u32)>>;

/// One save's counts in the log.
#[derive(Default, Serialize, Deserialize)]
struct Frame {
    /// Series the log names for the first time; they take the next numbers.
    named: Vec<Subject>,
    /// (series number, epoch minute, count).
    counts: Vec<(u32, i64, u32)>,
}

pub struct Metrics {
    /// The written days' files.
    dir: PathBuf,
    base_path: PathBuf,
    log_path: PathBuf,
    /// Days not yet written, by epoch day.
    open: BTreeMap<i64, Day>,
    /// Counts set since the last save, for the log.
    unsaved: Changes,
    /// The series the log has named, with their numbers.
    logged: HashMap<Subject, u32>,
    /// Whether the next save rewrites the base: a day left memory, or the log cannot be
    /// trusted to end where a frame ends.
    rewrite: bool,
    base_len: u64,
    log_len: u64,
    /// Bytes saved since opened (bases and log frames), for the benchmark.
    written: u64,
}

impl Metrics {
    /// The metrics of the insights directory `dir`, with no open days; the first save
    /// writes the base afresh.
    pub fn empty(dir: &Path) -> Metrics {
        Metrics {
            dir: dir.join(DAYS_DIR),
            base_path: dir.join(BASE_FILE),
            log_path: dir.join(LOG_FILE),
            open: BTreeMap::new(),
            unsaved: Changes::new(),
            logged: HashMap::new(),
            rewrite: true,
            base_len: 0,
            log_len: 0,
            written: 0,
        }
    }

    /// The metrics of the insights directory `dir`, with the open days as saved (counts
    /// older than the days kept before `now` left out). A damaged base is an error; a
    /// log's torn or damaged tail is cut off.
    pub fn open(dir: &Path, now: i64) -> Result<Metrics, String> {
        let mut metrics = Metrics::empty(dir);
        let Some(bytes) = read_optional(&metrics.base_path)? else {
            return Ok(metrics);
        };
        metrics.open = unframe(FORMAT, &bytes)
            .and_then(|body| postcard::from_bytes(body).map_err(|e| e.to_string()))
            .map_err(|e| format!("{}: {e}", metrics.base_path.display()))?;
        metrics.base_len = bytes.len() as u64;
        metrics.rewrite = false;
        let log = read_optional(&metrics.log_path)?.unwrap_or_default();
        let (frames, named, whole) = read_log(&log);
        for changes in frames {
            metrics.set_all(&changes, now);
        }
        metrics.logged = (0u32..).zip(named).map(|(n, s)| (s, n)).collect();
        if whole < log.len() {
            tracing::warn!(
                log = %metrics.log_path.display(),
                cut = log.len() - whole,
                "Insights metrics: the log's torn or damaged end is cut off"
            );
            cairn_store::fsutil::cut(&metrics.log_path, whole as u64).map_err(|e| e.to_string())?;
        }
        metrics.log_len = whole as u64;
        Ok(metrics)
    }

    /// Sets the counts of closed minutes; those older than the days kept before `now` go.
    pub fn record(&mut self, counts: Vec<MinuteCount>, now: i64) {
        let mut changes = Changes::new();
        for count in counts {
            changes
                .entry(count.subject)
                .or_default()
                .push((count.minute, count.count));
        }
        self.set_all(&changes, now);
        for (subject, mut minutes) in changes {
            self.unsaved
                .entry(subject)
                .or_default()
                .append(&mut minutes);
        }
    }

    /// Sets `changes` in the open days. A written day whose file cannot be read back does
    /// not take them: opened empty, it would replace the file with only these counts.
    fn set_all(&mut self, changes: &Changes, now: i64) {
        let oldest = oldest_day(now);
        let mut unreadable = std::collections::BTreeSet::new();
        for (subject, minutes) in changes {
            for &(minute, count) in minutes {
                let day = minute.div_euclid(MINUTES_PER_DAY);
                if day < oldest || unreadable.contains(&day) {
                    continue;
                }
                if !self.open.contains_key(&day) {
                    match self.read_day(day) {
                        Ok(written) => {
                            self.open.insert(day, written);
                        }
                        Err(error) => {
                            tracing::error!(%error, "Insights metrics: a written day cannot be read back; its late counts are not kept");
                            unreadable.insert(day);
                            continue;
                        }
                    }
                }
                let series = self.open.get_mut(&day).expect("opened above");
                let of_day = minute.rem_euclid(MINUTES_PER_DAY) as u16;
                match series.get_mut(subject) {
                    Some(minutes) => {
                        set_count(minutes, of_day, count);
                    }
                    None => {
                        series.insert(subject.clone(), vec![(of_day, count)]);
                    }
                }
            }
        }
    }

    /// Saves what changed since the last save: the counts set, appended to the log, or the
    /// whole base when it is due (see the module's comment).
    pub fn save(&mut self) -> std::io::Result<()> {
        if self.rewrite || self.log_len > self.base_len.max(LOG_ALLOWANCE) {
            return self.rewrite_base();
        }
        if self.unsaved.is_empty() {
            return Ok(());
        }
        let mut log_frame = Frame::default();
        for (subject, minutes) in std::mem::take(&mut self.unsaved) {
            let number = match self.logged.get(&subject) {
                Some(&number) => number,
                None => {
                    let number = self.logged.len() as u32;
                    self.logged.insert(subject.clone(), number);
                    log_frame.named.push(subject);
                    number
                }
            };
            let counts = minutes.into_iter().map(|(m, c)| (number, m, c));
            log_frame.counts.extend(counts);
        }
        let body = postcard::to_allocvec(&log_frame).expect("metrics serialize");
        let mut frame = Vec::with_capacity(8 + body.len());
        frame.extend_from_slice(&(body.len() as u32).to_le_bytes());
        frame.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
        frame.extend_from_slice(&body);
        let appended = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .and_then(|mut log| log.write_all(&frame).and_then(|()| log.sync_data()));
        if let Err(error) = appended {
            // Part of the frame may be there, and the series numbers are off: the base is
            // rewritten from memory, and the log started afresh, next time.
            self.rewrite = true;
            return Err(error);
        }
        self.log_len += frame.len() as u64;
        self.written += frame.len() as u64;
        Ok(())
    }

    /// Saves the open days whole, as a base, and starts the log afresh (also the
    /// benchmark's comparison).
    pub fn rewrite_base(&mut self) -> std::io::Result<()> {
        let body = postcard::to_allocvec(&self.open).expect("metrics serialize");
        let bytes = frame(FORMAT, &body);
        cairn_store::fsutil::write_atomic(&self.base_path, &bytes)
            .map_err(std::io::Error::other)?;
        self.base_len = bytes.len() as u64;
        self.written += self.base_len;
        self.unsaved.clear();
        // The base holds everything now: the log's frames would only set counts again. A
        // log that cannot be emptied must not be appended to with numbers started afresh,
        // so until it is emptied every save rewrites the base.
        self.rewrite = true;
        std::fs::File::create(&self.log_path).and_then(|log| log.sync_all())?;
        self.logged.clear();
        self.log_len = 0;
        self.rewrite = false;
        Ok(())
    }

    /// Bytes saved since opened: bases rewritten and log frames appended.
    pub fn bytes_saved(&self) -> u64 {
        self.written
    }

    /// Writes the days that ended an hour before `now` to their files.
    pub fn write_ended_days(&mut self, now: i64) -> std::io::Result<()> {
        let ended: Vec<i64> = self
            .open
            .keys()
            .copied()
            .filter(|day| (day + 1) * SECONDS_PER_DAY + WRITE_AFTER_SECS <= now)
            .collect();
        for day in ended {
            write_day(&self.day_path(day), &self.open[&day])?;
            self.open.remove(&day);
            self.rewrite = true;
        }
        Ok(())
    }

    /// Removes the day files older than the days kept before `now`.
    pub fn remove_expired(&self, now: i64) -> std::io::Result<usize> {
        let oldest = oldest_day(now);
        let mut removed = 0;
        for (day, path) in day_files(&self.dir, ".bin").map_err(std::io::Error::other)? {
            if day < oldest {
                std::fs::remove_file(path)?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Where `subject`'s counts from epoch minute `from` up to `to` are: copied from the
    /// days in memory, and the files of the written days, which [`Lookup::read`] reads
    /// without holding the metrics.
    pub fn lookup(&self, subject: &Subject, from: i64, to: i64) -> Lookup {
        let days = if from >= to {
            Vec::new()
        } else {
            (from.div_euclid(MINUTES_PER_DAY)..=(to - 1).div_euclid(MINUTES_PER_DAY))
                .map(|day| {
                    let source = match self.open.get(&day) {
                        Some(open) => {
                            DaySource::Open(open.get(subject).cloned().unwrap_or_default())
                        }
                        None => DaySource::Written(self.day_path(day)),
                    };
                    (day, source)
                })
                .collect()
        };
        Lookup {
            subject: subject.clone(),
            span: from..to,
            days,
        }
    }

    /// `subject`'s non-zero counts from epoch minute `from` up to `to`, in order.
    #[cfg(test)]
    pub fn counts(
        &self,
        subject: &Subject,
        from: i64,
        to: i64,
    ) -> std::io::Result<Vec<(i64, u32)>> {
        self.lookup(subject, from, to).read()
    }

    fn day_path(&self, day: i64) -> PathBuf {
        self.dir.join(format!("{}.bin", day_label(day)))
    }

    /// A written day, whole (empty if it was never written).
    fn read_day(&self, day: i64) -> std::io::Result<Day> {
        let path = self.day_path(day);
        let Some((file, header)) = read_header(&path)? else {
            return Ok(Day::new());
        };
        let mut out = Day::new();
        for entry in header.series {
            let block = read_block(&file, &path, &entry)?;
            out.insert(entry.subject, block);
        }
        Ok(out)
    }
}

fn oldest_day(now: i64) -> i64 {
    day_of(now) - KEPT_DAYS
}

fn read_optional(path: &Path) -> Result<Option<Vec<u8>>, String> {
    cairn_store::fsutil::read_optional(path).map_err(|e| e.to_string())
}

/// The log's whole frames, decoded, the series they named in order, and the length they
/// take: reading stops at the first frame that is torn, fails its CRC, does not decode or
/// numbers a series not named before it.
fn read_log(log: &[u8]) -> (Vec<Changes>, Vec<Subject>, usize) {
    let mut frames = Vec::new();
    let mut named: Vec<Subject> = Vec::new();
    let mut at = 0;
    while let Some(header) = log.get(at..at + 8) {
        let len = u32::from_le_bytes(header[..4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_le_bytes(header[4..].try_into().expect("4 bytes"));
        let Some(body) = log.get(at + 8..at + 8 + len) else {
            break;
        };
        if crc32fast::hash(body) != crc {
            break;
        }
        let Ok(frame) = postcard::from_bytes::<Frame>(body) else {
            break;
        };
        let known = named.len() + frame.named.len();
        if frame.counts.iter().any(|&(n, _, _)| n as usize >= known) {
            break;
        }
        named.extend(frame.named);
        let mut changes = Changes::new();
        for (number, minute, count) in frame.counts {
            let subject = &named[number as usize];
            match changes.get_mut(subject) {
                Some(minutes) => minutes.push((minute, count)),
                None => {
                    changes.insert(subject.clone(), vec![(minute, count)]);
                }
            }
        }
        frames.push(changes);
        at += 8 + len;
    }
    (frames, named, at)
}

#[derive(Serialize, Deserialize)]
struct Header {
    series: Vec<BlockEntry>,
}

#[derive(Serialize, Deserialize)]
struct BlockEntry {
    subject: Subject,
    offset: u64,
    len: u32,
    crc: u32,
}

fn write_day(path: &Path, day: &Day) -> std::io::Result<()> {
    let mut blocks = Vec::new();
    let mut series = Vec::with_capacity(day.len());
    for (subject, minutes) in day {
        let start = blocks.len();
        for &(minute, count) in minutes {
            blocks.extend_from_slice(&minute.to_le_bytes());
            blocks.extend_from_slice(&count.to_le_bytes());
        }
        series.push(BlockEntry {
            subject: subject.clone(),
            offset: start as u64,
            len: (blocks.len() - start) as u32,
            crc: crc32fast::hash(&blocks[start..]),
        });
    }
    let header = postcard::to_allocvec(&Header { series }).expect("a header serializes");
    let mut bytes = Vec::with_capacity(8 + header.len() + blocks.len());
    bytes.extend_from_slice(&(header.len() as u32).to_le_bytes());
    bytes.extend_from_slice(&header);
    bytes.extend_from_slice(&crc32fast::hash(&header).to_le_bytes());
    bytes.extend_from_slice(&blocks);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    cairn_store::fsutil::write_atomic(path, &bytes).map_err(std::io::Error::other)
}

fn damaged(path: &Path, what: &str) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!("{}: {what}", path.display()),
    )
}

/// A day file's header, with the file; none if the day was never written.
fn read_header(path: &Path) -> std::io::Result<Option<(std::fs::File, Header)>> {
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut len = [0u8; 4];
    file.read_exact_at(&mut len, 0)?;
    let len = u32::from_le_bytes(len) as usize;
    let mut header = vec![0u8; len + 4];
    file.read_exact_at(&mut header, 4)?;
    let (body, crc) = header.split_at(len);
    if crc32fast::hash(body).to_le_bytes() != crc {
        return Err(damaged(path, "header checksum mismatch"));
    }
    let mut header: Header =
        postcard::from_bytes(body).map_err(|e| damaged(path, &e.to_string()))?;
    // Block offsets count from the end of the header.
    for entry in &mut header.series {
        entry.offset += 8 + len as u64;
    }
    Ok(Some((file, header)))
}

fn read_block(
    file: &std::fs::File,
    path: &Path,
    entry: &BlockEntry,
) -> std::io::Result<Vec<(u16, u32)>> {
    let mut block = vec![0u8; entry.len as usize];
    file.read_exact_at(&mut block, entry.offset)?;
    if crc32fast::hash(&block) != entry.crc || !block.len().is_multiple_of(6) {
        return Err(damaged(path, "block checksum mismatch"));
    }
    Ok(block
        .chunks_exact(6)
        .map(|c| {
            let minute = u16::from_le_bytes([c[0], c[1]]);
            let count = u32::from_le_bytes([c[2], c[3], c[4], c[5]]);
            (minute, count)
        })
        .collect())
}

/// One subject's counts over a span of minutes, as [`Metrics::lookup`] found them.
pub struct Lookup {
    subject: Subject,
    span: std::ops::Range<i64>,
    days: Vec<(i64, DaySource)>,
}

enum DaySource {
    /// Copied from the days in memory: (minute of the day, count).
    Open(Vec<(u16, u32)>),
    /// A written day's file.
    Written(PathBuf),
}

impl Lookup {
    /// The non-zero counts, in order, the written days read from their files.
    pub fn read(self) -> std::io::Result<Vec<(i64, u32)>> {
        let mut out = Vec::new();
        for (day, source) in self.days {
            let minutes = match source {
                DaySource::Open(minutes) => minutes,
                DaySource::Written(path) => read_series(&path, &self.subject)?,
            };
            let base = day * MINUTES_PER_DAY;
            out.extend(
                minutes
                    .into_iter()
                    .map(|(minute, count)| (base + i64::from(minute), count))
                    .filter(|(minute, _)| self.span.contains(minute)),
            );
        }
        Ok(out)
    }
}

/// One series' counts in a written day (none if the day or the series is not there).
fn read_series(path: &Path, subject: &Subject) -> std::io::Result<Vec<(u16, u32)>> {
    let Some((file, header)) = read_header(path)? else {
        return Ok(Vec::new());
    };
    match header.series.binary_search_by(|e| e.subject.cmp(subject)) {
        Ok(i) => read_block(&file, path, &header.series[i]),
        Err(_) => Ok(Vec::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 20_000;

    fn subject(name: &str) -> Subject {
        Subject {
            account: "111111111111".into(),
            region: "us-east-1".into(),
            event_source: "ec2.amazonaws.com".into(),
            event_name: name.into(),
            error_code: None,
        }
    }

    fn count(name: &str, minute: i64, count: u32) -> MinuteCount {
        MinuteCount {
            subject: subject(name),
            minute,
            count,
        }
    }

    /// The day files of the insights directory `dir`.
    fn day_file(dir: &Path) -> PathBuf {
        dir.join(DAYS_DIR).join("20241004.bin")
    }

    #[test]
    fn counts_come_back_from_memory_from_files_and_after_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let now = (DAY + 1) * SECONDS_PER_DAY + 600;
        let mut metrics = Metrics::open(dir.path(), now).unwrap();
        let first = DAY * MINUTES_PER_DAY;
        metrics.record(
            vec![
                count("RunInstances", first + 5, 3),
                count("StopInstances", first + 5, 9),
                count("RunInstances", first + 1439, 4),
                count("RunInstances", first + 1440 + 2, 7),
            ],
            now,
        );
        let run = subject("RunInstances");
        let all = |m: &Metrics| m.counts(&run, first, first + 2 * 1440).unwrap();
        let expected = vec![(first + 5, 3), (first + 1439, 4), (first + 1442, 7)];
        assert_eq!(all(&metrics), expected);
        // Not an hour after the day: still in memory.
        metrics.write_ended_days(now).unwrap();
        assert!(!day_file(dir.path()).exists());
        metrics.write_ended_days(now + 3600).unwrap();
        assert!(day_file(dir.path()).exists());
        assert_eq!(all(&metrics), expected, "one day from its file");
        assert_eq!(
            metrics.counts(&run, first + 6, first + 1440).unwrap(),
            vec![(first + 1439, 4)]
        );

        // A late count for the written day opens it again; a count set twice is set once.
        metrics.record(
            vec![
                count("RunInstances", first + 6, 1),
                count("RunInstances", first + 6, 1),
            ],
            now,
        );
        metrics.save().unwrap();
        let restored = Metrics::open(dir.path(), now).unwrap();
        let with_late = vec![
            (first + 5, 3),
            (first + 6, 1),
            (first + 1439, 4),
            (first + 1442, 7),
        ];
        assert_eq!(all(&restored), with_late);
        assert_eq!(
            restored
                .counts(&subject("StopInstances"), first, first + 1440)
                .unwrap(),
            vec![(first + 5, 9)]
        );
        assert!(restored
            .counts(&subject("Other"), first, first + 2 * 1440)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn a_save_appends_what_changed_and_a_torn_end_is_cut_off() {
        let dir = tempfile::tempdir().unwrap();
        let now = DAY * SECONDS_PER_DAY + 7200;
        let first = DAY * MINUTES_PER_DAY;
        let run = subject("RunInstances");
        let mut metrics = Metrics::open(dir.path(), now).unwrap();
        metrics.record(vec![count("RunInstances", first, 2)], now);
        metrics.save().unwrap();
        let base = dir.path().join(BASE_FILE);
        let log = dir.path().join(LOG_FILE);
        let base_bytes = std::fs::read(&base).unwrap();
        assert_eq!(
            std::fs::read(&log).unwrap(),
            b"",
            "the first save writes the base"
        );
        for minute in 1..=3 {
            metrics.record(vec![count("RunInstances", first + minute, 5)], now);
            metrics.save().unwrap();
        }
        metrics.save().unwrap();
        assert_eq!(std::fs::read(&base).unwrap(), base_bytes, "base untouched");
        let log_len = std::fs::metadata(&log).unwrap().len();
        assert!(log_len > 0);
        let every = vec![(first, 2), (first + 1, 5), (first + 2, 5), (first + 3, 5)];
        let read = |m: &Metrics| m.counts(&run, first, first + 1440).unwrap();
        assert_eq!(read(&Metrics::open(dir.path(), now).unwrap()), every);

        // A crash mid-append leaves half a frame: it is cut off, and what is appended
        // after it is read back.
        let mut torn = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
        torn.write_all(&[40, 0, 0, 0, 1, 2, 3]).unwrap();
        let mut reopened = Metrics::open(dir.path(), now).unwrap();
        assert_eq!(std::fs::metadata(&log).unwrap().len(), log_len);
        assert_eq!(read(&reopened), every);
        let ninth = vec![
            count("RunInstances", first + 9, 1),
            count("StopInstances", first + 9, 6),
        ];
        reopened.record(ninth, now);
        reopened.save().unwrap();
        let mut with_ninth = every.clone();
        with_ninth.push((first + 9, 1));
        let again = Metrics::open(dir.path(), now).unwrap();
        assert_eq!(read(&again), with_ninth, "the series named before");
        let stop = subject("StopInstances");
        let stopped = again.counts(&stop, first, first + 1440).unwrap();
        assert_eq!(
            stopped,
            vec![(first + 9, 6)],
            "a series named after the restart"
        );

        // A log grown past the base (and the allowance) is folded into a new base.
        reopened.log_len = LOG_ALLOWANCE + 1;
        reopened.save().unwrap();
        assert_eq!(std::fs::read(&log).unwrap(), b"");
        assert_eq!(read(&Metrics::open(dir.path(), now).unwrap()), with_ninth);

        // A log older than its base (emptying it was lost) only sets counts again.
        let mut stale = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
        let stale_frame = Frame {
            named: vec![run.clone()],
            counts: vec![(0, first + 1, 5)],
        };
        let body = postcard::to_allocvec(&stale_frame).unwrap();
        stale.write_all(&(body.len() as u32).to_le_bytes()).unwrap();
        stale
            .write_all(&crc32fast::hash(&body).to_le_bytes())
            .unwrap();
        stale.write_all(&body).unwrap();
        assert_eq!(read(&Metrics::open(dir.path(), now).unwrap()), with_ninth);
    }

    #[test]
    fn a_damaged_written_day_loses_only_its_own_late_counts() {
        let dir = tempfile::tempdir().unwrap();
        let now = (DAY + 1) * SECONDS_PER_DAY + 7200;
        let first = DAY * MINUTES_PER_DAY;
        let mut metrics = Metrics::open(dir.path(), now).unwrap();
        metrics.record(vec![count("RunInstances", first, 3)], now);
        metrics.write_ended_days(now).unwrap();
        metrics.save().unwrap();
        let path = day_file(dir.path());
        let mut damaged = std::fs::read(&path).unwrap();
        let last = damaged.len() - 1;
        damaged[last] ^= 1;
        std::fs::write(&path, &damaged).unwrap();
        // A late count for the damaged day, and one for today.
        let today = first + MINUTES_PER_DAY + 1;
        let late = vec![
            count("RunInstances", first + 5, 1),
            count("RunInstances", today, 2),
        ];
        metrics.record(late, now);
        metrics.save().unwrap();
        let reopened = Metrics::open(dir.path(), now).expect("opens");
        let run = subject("RunInstances");
        assert_eq!(
            reopened.counts(&run, today, today + 1).unwrap(),
            vec![(today, 2)]
        );
        assert_eq!(std::fs::read(&path).unwrap(), damaged, "left as it was");
    }

    #[test]
    fn counts_are_set_in_order_of_minute() {
        let mut minutes = Vec::new();
        for (minute, count) in [(5, 1), (9, 2), (7, 3), (9, 4), (0, 5)] {
            set_count(&mut minutes, minute, count);
        }
        assert_eq!(minutes, vec![(0, 5), (5, 1), (7, 3), (9, 4)]);
    }

    #[test]
    fn a_base_with_minutes_kept_as_maps_reads_the_same() {
        // Earlier versions kept each series' minutes as a map; postcard writes a map of
        // pairs as it writes a list of them.
        let earlier: BTreeMap<i64, BTreeMap<Subject, BTreeMap<u16, u32>>> = BTreeMap::from([(
            DAY,
            BTreeMap::from([(subject("RunInstances"), BTreeMap::from([(3, 4), (8, 1)]))]),
        )]);
        let bytes = postcard::to_allocvec(&earlier).unwrap();
        let now: BTreeMap<i64, Day> = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(now[&DAY][&subject("RunInstances")], vec![(3, 4), (8, 1)]);
    }

    #[test]
    fn damage_is_refused_and_old_days_go() {
        let dir = tempfile::tempdir().unwrap();
        let now = (DAY + 1) * SECONDS_PER_DAY + 7200;
        let mut metrics = Metrics::open(dir.path(), now).unwrap();
        metrics.record(vec![count("RunInstances", DAY * MINUTES_PER_DAY, 3)], now);
        metrics.save().unwrap();
        let base = dir.path().join(BASE_FILE);
        let mut saved = std::fs::read(&base).unwrap();
        metrics.write_ended_days(now).unwrap();
        let path = day_file(dir.path());
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(&path, bytes).unwrap();
        let run = subject("RunInstances");
        let minute = DAY * MINUTES_PER_DAY;
        assert!(metrics.counts(&run, minute, minute + 1).is_err());
        saved[10] ^= 1;
        std::fs::write(&base, saved).unwrap();
        assert!(Metrics::open(dir.path(), now).is_err());
        // Ninety days on, the day's file goes, and counts that old are not kept.
        let later = now + KEPT_DAYS * SECONDS_PER_DAY;
        metrics.record(vec![count("RunInstances", minute + 7, 1)], later);
        metrics.write_ended_days(later).unwrap();
        assert_eq!(metrics.remove_expired(later).unwrap(), 1);
        assert!(!path.exists());
        assert!(metrics.open.is_empty());
    }
}
