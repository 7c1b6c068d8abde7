//! Two simple detectors to put the benchmark's figures in context: a flat average over the
//! last seven days, and the mean of the same minute of the day over the last seven days.
//! Both use the same hysteresis as the detector (15 minutes back in range close an
//! Insight) and the same floor (10 calls in the minute), on the same per-minute series.

use std::collections::HashMap;

use super::score::Found;
use super::traffic::Traffic;
use crate::history::MINUTES_PER_DAY;

#[derive(Clone, Copy, Debug)]
pub enum Reference {
    FlatWeek,
    SameTimeOfDay,
}

const SIGMAS: f64 = 4.0;
const FLOOR: f64 = 10.0;
const QUIET: i64 = 15;

/// The Insights the reference opens on every series of the traffic.
pub fn detect(traffic: &Traffic, reference: Reference) -> Vec<Found> {
    let mut series: HashMap<(usize, Option<&'static str>), Vec<u32>> = HashMap::new();
    let minutes = traffic.minutes() as usize;
    let mut calls = Vec::new();
    for m in 0..traffic.minutes() {
        traffic.minute(m, &mut calls);
        for c in &calls {
            let api = c.index;
            let mut add = |key| {
                series.entry(key).or_insert_with(|| vec![0; minutes])[m as usize] += c.count;
            };
            if c.api.write {
                add((api, None));
            }
            if let Some(code) = c.error_code {
                add((api, Some(code)));
            }
        }
    }
    let mut found = Vec::new();
    for ((api, error_code), counts) in series {
        for start in run(&counts, reference) {
            found.push(Found {
                api,
                error_code: error_code.map(str::to_owned),
                start,
                decided: start,
                top_identity: None,
            });
        }
    }
    found
}

/// The minutes at which Insights open on one series.
fn run(counts: &[u32], reference: Reference) -> Vec<i64> {
    let day = MINUTES_PER_DAY as usize;
    let mut starts = Vec::new();
    let mut open = false;
    let mut quiet = 0;
    let mut window_sum = 0f64;
    for (t, &count) in counts.iter().enumerate() {
        if t >= 1 {
            window_sum += f64::from(counts[t - 1]);
            if t > 7 * day {
                window_sum -= f64::from(counts[t - 1 - 7 * day]);
            }
        }
        if t < day {
            continue;
        }
        let (mean, spread) = match reference {
            Reference::FlatWeek => {
                let mean = window_sum / t.min(7 * day) as f64;
                (mean, (mean + 1.0).sqrt())
            }
            Reference::SameTimeOfDay => {
                let mut samples = [0f64; 7];
                let days = (t / day).min(7);
                for (d, sample) in samples[..days].iter_mut().enumerate() {
                    *sample = f64::from(counts[t - (d + 1) * day]);
                }
                let samples = &samples[..days];
                let mean = samples.iter().sum::<f64>() / samples.len() as f64;
                let variance =
                    samples.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / samples.len() as f64;
                (mean, variance.sqrt().max((mean + 1.0).sqrt()))
            }
        };
        let count = f64::from(count);
        if !open {
            if count > (mean + SIGMAS * spread).max(FLOOR) {
                open = true;
                quiet = 0;
                starts.push(t as i64);
            }
        } else if count <= mean + spread {
            quiet += 1;
            if quiet >= QUIET {
                open = false;
            }
        } else {
            quiet = 0;
        }
    }
    starts
}
