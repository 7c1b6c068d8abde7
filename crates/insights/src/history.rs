//! One series' past: per-minute counts for the last hour, and per five-minute slot over
//! the last week the slot's total and the largest rolling sum at each window length. The
//! band for a moment is read from the same time of day on the days before.

use serde::{Deserialize, Serialize};

/// Window lengths in minutes: a spike shows in one minute, a thin or slow rise over more.
pub const SCALES: [usize; 4] = [1, 5, 15, 30];
pub const MINUTES_PER_DAY: i64 = 1440;
pub const SLOT_MINUTES: i64 = 5;
const SLOTS_PER_DAY: i64 = MINUTES_PER_DAY / SLOT_MINUTES;
/// Days of baseline, as AWS uses.
pub const BASELINE_DAYS: i64 = 7;
/// Slots either side of the same time on an earlier day that the band covers, so that a
/// job running up to half an hour early or late stays inside its usual band.
pub const BAND_SLOTS: i64 = 6;
/// With one or two days learned the band reads a wider stretch of each day: one hour of
/// one day says little about the hours around it (an hourly job's failures that missed a
/// run by chance would leave its band empty there). Three hours either side after one day,
/// an hour and a half after two; from the third day, [`BAND_SLOTS`].
fn band_slots(days: i64) -> i64 {
    match days {
        ..=1 => 36,
        2 => 18,
        _ => BAND_SLOTS,
    }
}

/// Slots either side that measure how busy an earlier day was around this time.
const LEVEL_SLOTS: i64 = 36;
/// Events added to both sides of a weekday ratio, so thin series are not scaled by noise.
const LEVEL_PRIOR: f64 = 50.0;
const RING: usize = (BASELINE_DAYS * SLOTS_PER_DAY + LEVEL_SLOTS + 4) as usize;
const RECENT: usize = 64;

#[derive(Clone, Copy, Default, Serialize, Deserialize)]
struct Slot {
    total: u32,
    /// The largest rolling sum ending in this slot, per scale.
    peak: [u32; SCALES.len()],
}

/// The usual range of a series at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Band {
    /// Per scale: the largest rolling sum seen around this time on the days before.
    pub peak: [f64; SCALES.len()],
    /// Per scale: how far the largest day's peak stands above the median day's, so that a
    /// job whose size varies from day to day gets room to vary.
    pub spread: [f64; SCALES.len()],
    /// Earlier days the band was read from.
    pub days: i64,
    /// Calls over the baseline days, and how many minutes those days hold.
    pub baseline_total: u64,
    pub baseline_minutes: i64,
}

impl Band {
    pub fn baseline_average(&self) -> f64 {
        if self.baseline_minutes == 0 {
            0.0
        } else {
            self.baseline_total as f64 / self.baseline_minutes as f64
        }
    }
}

/// The last hour's per-minute counts and the rolling sums over them.
#[derive(Clone, Copy, Serialize, Deserialize)]
struct Recent {
    #[serde(with = "crate::snapshot::array")]
    counts: [u32; RECENT],
    sums: [u64; SCALES.len()],
}

impl Recent {
    fn push(&mut self, t: i64, count: u32) -> [u64; SCALES.len()] {
        for (sum, scale) in self.sums.iter_mut().zip(SCALES) {
            let leaving = self.counts[(t - scale as i64).rem_euclid(RECENT as i64) as usize];
            *sum = *sum + u64::from(count) - u64::from(leaving);
        }
        self.counts[t.rem_euclid(RECENT as i64) as usize] = count;
        self.sums
    }
}

/// Two views of the recent past: what happened (for deciding) and what is learned from
/// (the same, except that minutes inside an Insight are held to the band, so an anomaly
/// does not teach tomorrow's band to expect another).
#[derive(Serialize, Deserialize)]
pub struct History {
    seen: Recent,
    learned: Recent,
    slots: Box<[Slot]>,
}

impl Default for History {
    fn default() -> Self {
        let recent = Recent {
            counts: [0; RECENT],
            sums: [0; SCALES.len()],
        };
        History {
            seen: recent,
            learned: recent,
            slots: vec![Slot::default(); RING].into_boxed_slice(),
        }
    }
}

/// How much busier the same weekday a week ago was than an earlier day, around the same
/// time. Ratios near one are noise (a job's size varies) and count as one.
fn weekday_scale(week_ago: f64, that_day: f64) -> f64 {
    let ratio = (week_ago + LEVEL_PRIOR) / (that_day + LEVEL_PRIOR);
    if (0.67..=1.5).contains(&ratio) {
        1.0
    } else {
        ratio.clamp(0.2, 5.0)
    }
}

fn ring_index(slot: i64) -> usize {
    slot.rem_euclid(RING as i64) as usize
}

pub fn slot_of(minute: i64) -> i64 {
    minute.div_euclid(SLOT_MINUTES)
}

impl History {
    /// Bytes one series' history holds.
    pub const BYTES: usize = RING * std::mem::size_of::<Slot>() + 2 * std::mem::size_of::<Recent>();

    /// Whether every slot of the week is there.
    pub fn is_whole(&self) -> bool {
        self.slots.len() == RING
    }

    /// Records minute `t`, which must follow the minute recorded before it, and returns the
    /// rolling sums ending at `t`.
    pub fn push(&mut self, t: i64, count: u32) -> [u64; SCALES.len()] {
        self.seen.push(t, count)
    }

    /// The rolling sums ending at the last minute pushed.
    pub fn sums(&self) -> [u64; SCALES.len()] {
        self.seen.sums
    }

    /// Learns minute `t` as `count` (after [`push`](Self::push) for the same minute).
    pub fn learn(&mut self, t: i64, count: u32) {
        let sums = self.learned.push(t, count);
        let slot = &mut self.slots[ring_index(slot_of(t))];
        if t.rem_euclid(SLOT_MINUTES) == 0 {
            *slot = Slot::default();
        }
        slot.total = slot.total.saturating_add(count);
        for (peak, sum) in slot.peak.iter_mut().zip(sums) {
            *peak = (*peak).max(u32::try_from(sum).unwrap_or(u32::MAX));
        }
    }

    /// The band for `slot`, from up to [`BASELINE_DAYS`] earlier days whose window of
    /// [`BAND_SLOTS`] either side (and every rolling sum in it) lies after `observed_from`
    /// (the first minute observed). The wider windows of the first two days may reach
    /// before it; slots not observed hold zeros, which raise no peak.
    /// With a full week, each earlier day is scaled by how busy the same weekday was a
    /// week ago relative to that day, so a quiet Sunday does not make Monday look unusual
    /// and a busy Friday does not hide a Saturday's anomaly.
    pub fn band(&self, slot: i64, observed_from: i64) -> Band {
        let longest = SCALES[SCALES.len() - 1] as i64;
        let first_slot = slot_of(observed_from + longest + SLOT_MINUTES - 1);
        let days =
            ((slot - BAND_SLOTS - first_slot).div_euclid(SLOTS_PER_DAY)).clamp(0, BASELINE_DAYS);
        let level = |centre: i64| -> f64 {
            (centre - LEVEL_SLOTS..=centre + LEVEL_SLOTS)
                .map(|s| f64::from(self.slots[ring_index(s)].total))
                .sum()
        };
        let week_ago = slot - BASELINE_DAYS * SLOTS_PER_DAY;
        let weekly = (week_ago - LEVEL_SLOTS >= slot_of(observed_from + SLOT_MINUTES - 1))
            .then(|| level(week_ago));
        let mut band = Band {
            days,
            ..Band::default()
        };
        let mut daily = [[0f64; BASELINE_DAYS as usize]; SCALES.len()];
        let half_width = band_slots(days);
        for day in 1..=days {
            let centre = slot - day * SLOTS_PER_DAY;
            let scale = match weekly {
                Some(week_ago) => weekday_scale(week_ago, level(centre)),
                None => 1.0,
            };
            let mut peak = [0u32; SCALES.len()];
            for s in centre - half_width..=centre + half_width {
                for (p, q) in peak.iter_mut().zip(self.slots[ring_index(s)].peak) {
                    *p = (*p).max(q);
                }
            }
            for (k, p) in peak.into_iter().enumerate() {
                daily[k][day as usize - 1] = scale * f64::from(p);
            }
        }
        for (k, peaks) in daily.iter_mut().enumerate() {
            let peaks = &mut peaks[..days as usize];
            peaks.sort_by(f64::total_cmp);
            if let (Some(&top), Some(&median)) = (peaks.last(), peaks.get(peaks.len() / 2)) {
                band.peak[k] = top;
                band.spread[k] = top - median;
            }
        }
        let first = slot - days * SLOTS_PER_DAY;
        band.baseline_total = (first..slot)
            .map(|s| u64::from(self.slots[ring_index(s)].total))
            .sum();
        band.baseline_minutes = days * MINUTES_PER_DAY;
        band
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rolling_sums_cover_each_scale() {
        let mut h = History::default();
        let mut last = [0; 4];
        for t in 0..100 {
            last = h.push(t, 1);
            h.learn(t, 1);
        }
        assert_eq!(last, [1, 5, 15, 30]);
        let after = h.push(100, 10);
        assert_eq!(after, [10, 14, 24, 39]);
    }

    #[test]
    fn the_band_comes_from_the_same_time_on_earlier_days() {
        let mut h = History::default();
        // Two days: quiet, except a burst of 50 at 10:00 each day.
        for t in 0..2 * MINUTES_PER_DAY {
            let count = if t % MINUTES_PER_DAY == 600 { 50 } else { 0 };
            h.push(t, count);
            h.learn(t, count);
        }
        let at_ten = slot_of(2 * MINUTES_PER_DAY + 600);
        let band = h.band(at_ten, 0);
        assert_eq!(band.peak, [50.0, 50.0, 50.0, 50.0]);
        assert_eq!(band.baseline_total, 100);
        assert_eq!(band.baseline_minutes, 2 * MINUTES_PER_DAY);
        // Two hours later the burst is outside the window.
        let band = h.band(at_ten + 24, 0);
        assert_eq!(band.peak, [0.0; 4]);
        // One day observed, but not the hour before ten on it: no band yet.
        assert_eq!(h.band(at_ten, MINUTES_PER_DAY + 600).peak, [0.0; 4]);
        assert_eq!(h.band(at_ten, MINUTES_PER_DAY + 400).peak, [50.0; 4]);
    }

    #[test]
    fn with_one_day_learned_the_band_reads_three_hours_either_side() {
        let mut h = History::default();
        // Three days and two hours, quiet but for 8 calls at 01:00 on the first.
        for t in 0..3 * MINUTES_PER_DAY + 120 {
            let count = if t == 60 { 8 } else { 0 };
            h.push(t, count);
            h.learn(t, count);
        }
        // At 02:00 on the second day, one day is learned: 01:00 before is in the band.
        let day_two = slot_of(MINUTES_PER_DAY + 120);
        let band = h.band(day_two, 0);
        assert_eq!((band.days, band.peak[0]), (1, 8.0));
        // At 02:00 on the fourth, three days are: only half an hour either side counts.
        let band = h.band(slot_of(3 * MINUTES_PER_DAY + 120), 0);
        assert_eq!((band.days, band.peak[0]), (3, 0.0));
    }

    #[test]
    fn quiet_days_are_scaled_up_to_last_weeks_level() {
        let mut h = History::default();
        // A busy Monday, then six quiet days, each a flat rate.
        let rate = |t: i64| if t < MINUTES_PER_DAY { 10 } else { 2 };
        for t in 0..7 * MINUTES_PER_DAY {
            h.push(t, rate(t));
            h.learn(t, rate(t));
        }
        let monday = slot_of(7 * MINUTES_PER_DAY + 600);
        let band = h.band(monday, 0);
        // Each quiet day's 2 a minute scales by about (3650 + 50) / (730 + 50) to 9.5,
        // next to last Monday's 10: the days agree. Unscaled, the median day would be 2.
        assert_eq!(band.peak[0], 10.0);
        assert!(band.spread[0] < 1.0, "{band:?}");
        // Sunday alone, no week to scale by: 2.
        assert_eq!(h.band(monday, 6 * MINUTES_PER_DAY).peak[0], 2.0);
    }
}
