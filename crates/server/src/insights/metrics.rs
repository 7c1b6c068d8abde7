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
//! A day file: the header's length (u32), the header (postcard: each series with its
//! block's offset, length and CRC-32), the header's CRC-32, then the blocks, each a run of
//! (minute of the day u16, count u32), little-endian. A query reads a header and one block
//! per day.

use std::collections::BTreeMap;
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
/// The saved open days' layout; another is refused.
const FORMAT: u32 = 1;

/// A day's counts: per series, per minute of the day.
type Day = BTreeMap<Subject, BTreeMap<u16, u32>>;

pub struct Metrics {
    dir: PathBuf,
    /// Days not yet written, by epoch day.
    open: BTreeMap<i64, Day>,
    /// Whether `open` changed since it was last saved.
    changed: bool,
}

impl Metrics {
    /// The metrics in `dir`, with no open days.
    pub fn empty(dir: PathBuf) -> Metrics {
        Metrics {
            dir,
            open: BTreeMap::new(),
            changed: false,
        }
    }

    /// The metrics in `dir`, with the open days of a [`Metrics::saved`] state, if any.
    pub fn open(dir: PathBuf, saved: Option<&[u8]>) -> Result<Metrics, String> {
        let Some(bytes) = saved else {
            return Ok(Metrics::empty(dir));
        };
        let open = unframe(FORMAT, bytes)
            .and_then(|body| postcard::from_bytes(body).map_err(|e| e.to_string()))?;
        Ok(Metrics {
            dir,
            open,
            changed: false,
        })
    }

    /// Sets the counts of closed minutes; those older than the days kept before `now` go.
    pub fn record(&mut self, counts: Vec<MinuteCount>, now: i64) -> std::io::Result<()> {
        let oldest = oldest_day(now);
        for count in counts {
            let day = count.minute.div_euclid(MINUTES_PER_DAY);
            if day < oldest {
                continue;
            }
            if !self.open.contains_key(&day) {
                let written = self.read_day(day)?;
                self.open.insert(day, written);
            }
            let minute = count.minute.rem_euclid(MINUTES_PER_DAY) as u16;
            let series = self.open.get_mut(&day).expect("opened above");
            series
                .entry(count.subject)
                .or_default()
                .insert(minute, count.count);
            self.changed = true;
        }
        Ok(())
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
            self.changed = true;
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

    /// The open days as bytes, for [`Metrics::open`], when they changed since they were
    /// last [saved](Metrics::was_saved).
    pub fn saved(&self) -> Option<Vec<u8>> {
        if !self.changed {
            return None;
        }
        let body = postcard::to_allocvec(&self.open).expect("metrics serialize");
        Some(frame(FORMAT, &body))
    }

    /// The bytes [`Metrics::saved`] gave are on disk.
    pub fn was_saved(&mut self) {
        self.changed = false;
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
                        Some(open) => DaySource::Open(
                            open.get(subject)
                                .map(|m| m.iter().map(|(&k, &v)| (k, v)).collect())
                                .unwrap_or_default(),
                        ),
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
            out.insert(entry.subject, block.into_iter().collect());
        }
        Ok(out)
    }
}

fn oldest_day(now: i64) -> i64 {
    day_of(now) - KEPT_DAYS
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
        for (&minute, &count) in minutes {
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

    #[test]
    fn counts_come_back_from_memory_from_files_and_after_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let now = (DAY + 1) * SECONDS_PER_DAY + 600;
        let mut metrics = Metrics::open(dir.path().to_owned(), None).unwrap();
        let first = DAY * MINUTES_PER_DAY;
        metrics
            .record(
                vec![
                    count("RunInstances", first + 5, 3),
                    count("StopInstances", first + 5, 9),
                    count("RunInstances", first + 1439, 4),
                    count("RunInstances", first + 1440 + 2, 7),
                ],
                now,
            )
            .unwrap();
        let run = subject("RunInstances");
        let all = |m: &Metrics| m.counts(&run, first, first + 2 * 1440).unwrap();
        let expected = vec![(first + 5, 3), (first + 1439, 4), (first + 1442, 7)];
        assert_eq!(all(&metrics), expected);
        // Not an hour after the day: still in memory.
        metrics.write_ended_days(now).unwrap();
        assert!(!dir.path().join("20241004.bin").exists());
        metrics.write_ended_days(now + 3600).unwrap();
        assert!(dir.path().join("20241004.bin").exists());
        assert_eq!(all(&metrics), expected, "one day from its file");
        assert_eq!(
            metrics.counts(&run, first + 6, first + 1440).unwrap(),
            vec![(first + 1439, 4)]
        );

        // A late count for the written day opens it again; a count set twice is set once.
        metrics
            .record(
                vec![
                    count("RunInstances", first + 6, 1),
                    count("RunInstances", first + 6, 1),
                ],
                now,
            )
            .unwrap();
        let saved = metrics.saved().expect("changed");
        metrics.was_saved();
        assert!(metrics.saved().is_none(), "unchanged since");
        let restored = Metrics::open(dir.path().to_owned(), Some(&saved)).unwrap();
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
    fn damage_is_refused_and_old_days_go() {
        let dir = tempfile::tempdir().unwrap();
        let now = (DAY + 1) * SECONDS_PER_DAY + 7200;
        let mut metrics = Metrics::open(dir.path().to_owned(), None).unwrap();
        metrics
            .record(vec![count("RunInstances", DAY * MINUTES_PER_DAY, 3)], now)
            .unwrap();
        let mut saved = metrics.saved().unwrap();
        metrics.write_ended_days(now).unwrap();
        let path = dir.path().join("20241004.bin");
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(&path, bytes).unwrap();
        let run = subject("RunInstances");
        let minute = DAY * MINUTES_PER_DAY;
        assert!(metrics.counts(&run, minute, minute + 1).is_err());
        saved[10] ^= 1;
        assert!(Metrics::open(dir.path().to_owned(), Some(&saved)).is_err());
        // Ninety days on, the day's file goes, and counts that old are not kept.
        let later = now + KEPT_DAYS * SECONDS_PER_DAY;
        metrics
            .record(vec![count("RunInstances", minute + 7, 1)], later)
            .unwrap();
        metrics.write_ended_days(later).unwrap();
        assert_eq!(metrics.remove_expired(later).unwrap(), 1);
        assert!(!path.exists());
        assert!(metrics.open.is_empty());
    }
}
