//! One series (an API's write calls, or its failures with one error code) minute by minute:
//! its history, its band for the current slot, and whether an Insight is open.

use serde::{Deserialize, Serialize};

use crate::attribution::{Attribute, Tally};
use crate::history::{slot_of, Band, History, SCALES};
use crate::trace::Point;

/// How far outside its band a series must go, and for how long it must come back.
#[derive(Clone, Debug)]
pub struct Thresholds {
    /// Standard deviations (of a Poisson count at the band) above the band.
    pub sigmas: f64,
    /// …and at least this fraction of the band above it, plus this fraction divided by the
    /// days learned…
    pub ratio: f64,
    pub few_days_ratio: f64,
    /// …and at least this many times the band's spread between days.
    pub spread_factor: f64,
    /// Fewest calls per window, per scale, that can open an Insight at all.
    pub floors: [f64; SCALES.len()],
    /// Minutes back inside the band (five-minute window) that close an Insight.
    pub quiet_minutes: i64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            sigmas: 4.0,
            ratio: 0.5,
            few_days_ratio: 1.0,
            spread_factor: 1.0,
            floors: [10.0, 15.0, 25.0, 35.0],
            quiet_minutes: 15,
        }
    }
}

impl Thresholds {
    /// The most a window of `SCALES[k]` minutes may hold and stay usual. The fewer days
    /// the band was learned from, the more room above it: one day's peak says less about
    /// a job's largest run than a week's.
    fn open_limit(&self, band: &Band, k: usize) -> f64 {
        let peak = band.peak[k];
        let few_days = self.few_days_ratio / band.days.max(1) as f64;
        let ratio = self.ratio + few_days;
        let margin = (self.sigmas * (1.0 + few_days) * (peak + 1.0).sqrt())
            .max(ratio * peak)
            .max(self.spread_factor * band.spread[k]);
        (peak + margin).max(self.floors[k])
    }

    /// The limits of `band`, worked out once per slot rather than per minute.
    fn limits(&self, band: &Band) -> Limits {
        let settle = band.peak[SETTLE_SCALE];
        let usual_minute = band.peak[1] / 5.0;
        Limits {
            open: std::array::from_fn(|k| self.open_limit(band, k)),
            settled: settle + (settle + 1.0).sqrt(),
            loud: usual_minute + usual_minute.sqrt() + 1.0,
        }
    }
}

/// What a band allows, per window and minute.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
struct Limits {
    /// Per scale: above this a window is outside its band.
    open: [f64; SCALES.len()],
    /// Inside the band again: the quarter-hour window at most one deviation above its
    /// band (that window decides, so that a thin rise's noisy minutes do not end it).
    settled: f64,
    /// A loud minute: above the five-minute band's share of a minute, with room for noise.
    loud: f64,
}

/// An Insight being open on a series.
#[derive(Debug, Serialize, Deserialize)]
pub struct Open {
    pub start: i64,
    /// The band when it opened, for the baseline statistics.
    pub band: Band,
    /// The first minute of the current run of settled minutes.
    pub settled_since: Option<i64>,
    /// The last minute above the usual per-minute rate before settling: the Insight's
    /// activity ends after it. The calls up to it, and who made them.
    pub last_loud: i64,
    pub total: u64,
    pub callers: [Tally; 3],
    /// Calls after `last_loud`, kept apart until a loud minute claims them.
    quiet_total: u64,
    quiet_callers: [Tally; 3],
}

impl Open {
    /// Who made the calls, claimed and not yet claimed.
    pub fn tallies(&self) -> impl Iterator<Item = &Tally> {
        self.callers.iter().chain(&self.quiet_callers)
    }

    /// The minute the Insight's activity ended: the one after its last loud minute.
    pub fn end(&self) -> i64 {
        self.last_loud + 1
    }

    fn new(start: i64, band: Band) -> Self {
        Open {
            start,
            band,
            settled_since: None,
            last_loud: start,
            total: 0,
            callers: Default::default(),
            quiet_total: 0,
            quiet_callers: Default::default(),
        }
    }

    fn record(&mut self, t: i64, count: u32, callers: &[(Attribute, u32, u32)], loud: bool) {
        self.quiet_total += u64::from(count);
        for &(attribute, value, n) in callers {
            self.quiet_callers[attribute.index()].add(value, f64::from(n), INSIGHT_CALLERS);
        }
        if t == self.start || (loud && self.settled_since.is_none()) {
            self.last_loud = t;
            self.total += std::mem::take(&mut self.quiet_total);
            for (mine, quiet) in self.callers.iter_mut().zip(&mut self.quiet_callers) {
                for (value, n) in quiet.drain() {
                    mine.add(value, n, INSIGHT_CALLERS);
                }
            }
        }
    }
}

/// What a minute changed.
#[derive(Debug)]
pub enum Change {
    Started,
    /// The Insight that ended.
    Ended(Box<Open>),
}

/// The window (an index into `SCALES`) that says whether a series is back in its band.
const SETTLE_SCALE: usize = 2;

/// Most distinct values kept per attribute.
pub const USUAL_CALLERS: usize = 16;
pub const INSIGHT_CALLERS: usize = 64;
/// Hourly decay of the usual callers' counts: a half-life of three and a half days.
const HOURLY_DECAY: f64 = 0.991_783;

#[derive(Default, Serialize, Deserialize)]
pub struct Series {
    history: History,
    band: Band,
    limits: Limits,
    band_slot: Option<i64>,
    pub open: Option<Box<Open>>,
    /// The minute the last Insight's activity ended.
    last_end: Option<i64>,
    /// This minute's calls by attribute value, filled before `step`.
    pub minute_callers: Vec<(Attribute, u32, u32)>,
    /// Usual callers (outside Insights), decayed, and the minutes they cover, decayed alike.
    pub usual: [Tally; 3],
    pub usual_minutes: f64,
    /// Whether the last minute stepped could have opened an Insight (for traces only).
    #[serde(skip)]
    could_open: bool,
}

impl Series {
    /// Whether the history has all its slots (a snapshot read back may not).
    pub fn is_whole(&self) -> bool {
        self.history.is_whole()
    }

    pub fn bytes(&self) -> usize {
        History::BYTES
            + std::mem::size_of::<Self>()
            + self.usual.iter().map(Tally::bytes).sum::<usize>()
            + self.minute_callers.capacity() * 12
    }

    /// Takes minute `t` with `count` calls. `observed_from` is the first minute observed;
    /// `eligible` whether an Insight may open yet.
    pub fn step(
        &mut self,
        t: i64,
        count: u32,
        observed_from: i64,
        eligible: bool,
        thresholds: &Thresholds,
    ) -> Option<Change> {
        let slot = slot_of(t);
        if self.band_slot != Some(slot) {
            self.band = self.history.band(slot, observed_from);
            self.limits = thresholds.limits(&self.band);
            self.band_slot = Some(slot);
        }
        if t.rem_euclid(60) == 0 {
            for tally in &mut self.usual {
                tally.scale(HOURLY_DECAY);
            }
            self.usual_minutes *= HOURLY_DECAY;
        }
        let sums = self.history.push(t, count);
        // After an Insight ends, a window still holding its minutes cannot open another.
        let clear_of_last = |k: usize| {
            self.last_end
                .is_none_or(|end| t - SCALES[k] as i64 >= end - 1)
        };
        let limits = self.limits;
        let outside =
            (0..SCALES.len()).any(|k| clear_of_last(k) && sums[k] as f64 > limits.open[k]);
        self.could_open = eligible && self.band.baseline_minutes > 0;
        let change = match &mut self.open {
            None if self.could_open && outside => {
                self.open = Some(Box::new(Open::new(t, self.band)));
                Some(Change::Started)
            }
            None => None,
            Some(open) => {
                // The long windows stay high for up to half an hour after the activity ends;
                // only the short ones tell whether it goes on.
                let flaring = (0..2).any(|k| sums[k] as f64 > limits.open[k]);
                let settled = sums[SETTLE_SCALE] as f64 <= limits.settled;
                if !settled || flaring {
                    open.settled_since = None;
                    None
                } else {
                    let since = *open.settled_since.get_or_insert(t);
                    (t - since + 1 >= thresholds.quiet_minutes).then_some(())
                }
                .map(|()| {
                    let open = self.open.take().expect("open");
                    self.last_end = Some(open.end());
                    Change::Ended(open)
                })
            }
        };
        let learned = match self.open {
            Some(_) => count.min(self.band.peak[0].ceil() as u32),
            None => count,
        };
        self.history.learn(t, learned);
        self.record_callers(t, count);
        change
    }

    /// Minute `t`, just stepped with `count`, as a trace shows it.
    pub fn point(&self, t: i64, count: u32) -> Point {
        Point {
            minute: t,
            count,
            sums: self.history.sums(),
            usual: self.band.peak,
            limit: self.could_open.then_some(self.limits.open),
            open: self.open.is_some(),
        }
    }

    fn record_callers(&mut self, t: i64, count: u32) {
        match &mut self.open {
            Some(open) => {
                let loud = f64::from(count) > self.limits.loud;
                open.record(t, count, &self.minute_callers, loud);
            }
            None => {
                self.usual_minutes += 1.0;
                for &(attribute, value, n) in &self.minute_callers {
                    self.usual[attribute.index()].add(value, f64::from(n), USUAL_CALLERS);
                }
            }
        }
        self.minute_callers.clear();
    }
}
