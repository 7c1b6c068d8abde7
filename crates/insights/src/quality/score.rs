//! Scoring Insights against the labelled anomalies: precision, recall and F1 per anomaly
//! window, detection delay, Insights on bursty APIs, and who the Insight blamed.

use super::traffic::{Anomaly, Traffic, SCORED_FROM_DAY};
use crate::history::MINUTES_PER_DAY;

/// An Insight as the scorer sees it, in minutes since the scenario's start.
#[derive(Clone, Debug)]
pub struct Found {
    pub api: usize,
    pub error_code: Option<String>,
    pub start: i64,
    /// The minute whose close opened it.
    pub decided: i64,
    /// The identity at the top of the Start's attribution.
    pub top_identity: Option<String>,
}

/// An Insight counts for an anomaly when it opens between just before the anomaly and ten
/// minutes after it ends.
const EARLY: i64 = 2;
const LATE: i64 = 10;

#[derive(Debug, Default)]
pub struct Score {
    pub anomalies: usize,
    /// Anomalies found, each by its first Insight: the true Insights. (Insights on the
    /// other series of an anomaly's API, the calls of an error burst or the errors of a
    /// spike, are real but not what was labelled: neither true nor false.)
    pub detected: usize,
    pub on_bursty: usize,
    /// Minutes from an anomaly's start to the close of the minute that opened its Insight.
    pub delays: Vec<i64>,
    /// Error bursts whose Insight named the intruder first, of those detected.
    pub intruder_named: usize,
    pub error_bursts_detected: usize,
    /// Per kind of anomaly: (name, anomalies, detected).
    pub by_kind: Vec<(&'static str, usize, usize)>,
    /// The false Insights.
    pub false_found: Vec<Found>,
}

impl Score {
    pub fn false_insights(&self) -> usize {
        self.false_found.len()
    }

    pub fn precision(&self) -> f64 {
        ratio(self.detected, self.detected + self.false_insights())
    }

    pub fn recall(&self) -> f64 {
        ratio(self.detected, self.anomalies)
    }

    pub fn f1(&self) -> f64 {
        let (p, r) = (self.precision(), self.recall());
        if p + r == 0.0 {
            0.0
        } else {
            2.0 * p * r / (p + r)
        }
    }

    pub fn median_delay(&self) -> Option<i64> {
        self.delay_percentile(0.5)
    }

    /// The delay that a fraction `p` of detections were within.
    pub fn delay_percentile(&self, p: f64) -> Option<i64> {
        let mut delays = self.delays.clone();
        delays.sort_unstable();
        let last = delays.len().checked_sub(1)?;
        Some(delays[(last as f64 * p).round() as usize])
    }

    /// Adds another run's score to this one.
    pub fn merge(&mut self, other: Score) {
        self.anomalies += other.anomalies;
        self.detected += other.detected;
        self.on_bursty += other.on_bursty;
        self.delays.extend(other.delays);
        self.intruder_named += other.intruder_named;
        self.error_bursts_detected += other.error_bursts_detected;
        for (name, count, found) in other.by_kind {
            let entry = self.kind_entry(name);
            entry.1 += count;
            entry.2 += found;
        }
        self.by_kind.sort();
        self.false_found.extend(other.false_found);
    }

    fn kind_entry(&mut self, name: &'static str) -> &mut (&'static str, usize, usize) {
        let index = match self.by_kind.iter().position(|(n, _, _)| *n == name) {
            Some(index) => index,
            None => {
                self.by_kind.push((name, 0, 0));
                self.by_kind.len() - 1
            }
        };
        &mut self.by_kind[index]
    }
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 {
        1.0
    } else {
        a as f64 / b as f64
    }
}

fn kind_name(anomaly: &Anomaly) -> &'static str {
    use super::traffic::AnomalyKind::*;
    match anomaly.kind {
        Spike { .. } => "spike",
        LevelShift { .. } => "level shift",
        Ramp { .. } => "slow ramp",
        ErrorBurst { .. } => "error burst",
        LowVolume { .. } => "low-volume",
    }
}

/// Scores the Insights opened in the scored days.
pub fn score(traffic: &Traffic, found: &[Found]) -> Score {
    let scored_from = SCORED_FROM_DAY * MINUTES_PER_DAY;
    let mut score = Score {
        anomalies: traffic.anomalies.len(),
        ..Score::default()
    };
    let mut matched = vec![false; traffic.anomalies.len()];
    for insight in found.iter().filter(|f| f.start >= scored_from) {
        if traffic.apis[insight.api].bursty() {
            score.on_bursty += 1;
        }
        let near = traffic.anomalies.iter().enumerate().filter(|(_, a)| {
            a.api == insight.api && (a.start - EARLY..a.end + LATE).contains(&insight.start)
        });
        let mut side = false;
        let mut hit = None;
        for (index, anomaly) in near {
            if anomaly.error_code() == insight.error_code.as_deref() {
                hit = Some(index);
            } else {
                side = true;
            }
        }
        match hit {
            Some(index) if !matched[index] => {
                matched[index] = true;
                score.detected += 1;
                let anomaly = &traffic.anomalies[index];
                score.delays.push(insight.decided + 1 - anomaly.start);
                if let Some(intruder) = &anomaly.intruder {
                    score.error_bursts_detected += 1;
                    if insight.top_identity.as_deref() == Some(intruder) {
                        score.intruder_named += 1;
                    }
                }
            }
            None if side => {}
            // A second Insight for one anomaly (the incident was split), or none at all.
            _ => score.false_found.push(insight.clone()),
        }
    }
    for (anomaly, detected) in traffic.anomalies.iter().zip(&matched) {
        let entry = score.kind_entry(kind_name(anomaly));
        entry.1 += 1;
        entry.2 += usize::from(*detected);
    }
    score.by_kind.sort();
    score
}
