//! Measuring the detector: labelled synthetic traffic ([`traffic`]), a scorer ([`score`]),
//! and [`run`], which drives the real [`Detector`] over a labelled scenario and over the
//! same scenario without anomalies, one call at a time.

pub mod reference;
pub mod score;
pub mod traffic;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::detector::{Call, Detector, Params};
use crate::history::MINUTES_PER_DAY;
use crate::record::{Insight, InsightKind, State};
use score::{Found, Score};
use traffic::{Traffic, SCORED_FROM_DAY, START_MINUTE};

/// What one run measured.
#[derive(Debug)]
pub struct Report {
    pub labelled: Score,
    pub clean: Clean,
    /// On the labelled traffic.
    pub cost: Cost,
}

/// What detection cost over one scenario.
#[derive(Debug, Default)]
pub struct Cost {
    pub calls: u64,
    pub detecting: Duration,
    pub series: usize,
    /// Bytes held at the end.
    pub bytes: usize,
    /// The detector's snapshot at the end, and the time taken to make it.
    pub snapshot_bytes: usize,
    pub snapshotting: Duration,
}

/// Insights on the traffic without anomalies, every one of them false: in the scored
/// days, in the first week (after the first day's learning), and on bursty APIs at any
/// time; with the API-days they are counted over.
#[derive(Debug, Default)]
pub struct Clean {
    pub found: Vec<Found>,
    pub scored: usize,
    pub first_week: usize,
    pub on_bursty: usize,
    pub scored_api_days: f64,
    pub first_week_api_days: f64,
}

impl Clean {
    fn count(traffic: &Traffic, found: Vec<Found>) -> Clean {
        let scored_from = SCORED_FROM_DAY * MINUTES_PER_DAY;
        let apis = traffic.apis.len() as f64;
        let first_week_days = (SCORED_FROM_DAY - 1).min(traffic.days - 1).max(1);
        Clean {
            scored: found.iter().filter(|f| f.start >= scored_from).count(),
            first_week: found.iter().filter(|f| f.start < scored_from).count(),
            on_bursty: found
                .iter()
                .filter(|f| traffic.apis[f.api].bursty())
                .count(),
            scored_api_days: apis * (traffic.days - SCORED_FROM_DAY) as f64,
            first_week_api_days: apis * first_week_days as f64,
            found,
        }
    }

    /// False Insights per API per scored day.
    pub fn false_per_api_day(&self) -> f64 {
        self.scored as f64 / self.scored_api_days
    }

    pub fn first_week_false_per_api_day(&self) -> f64 {
        self.first_week as f64 / self.first_week_api_days
    }

    /// Adds another run's figures to these.
    pub fn merge(&mut self, other: Clean) {
        self.found.extend(other.found);
        self.scored += other.scored;
        self.first_week += other.first_week;
        self.on_bursty += other.on_bursty;
        self.scored_api_days += other.scored_api_days;
        self.first_week_api_days += other.first_week_api_days;
    }
}

/// Runs the detector over `apis` APIs for `days` days (at least eight: a week of baseline,
/// then the scored days), with and without anomalies.
pub fn run(seed: u64, apis: usize, days: i64, params: &Params) -> Report {
    let labelled = Traffic::new(seed, apis, days, true);
    let (found, cost, _) = detect(&labelled, params);
    let clean = Traffic::new(seed, apis, days, false);
    let (clean_found, _, _) = detect(&clean, params);
    Report {
        labelled: score::score(&labelled, &found),
        clean: Clean::count(&clean, clean_found),
        cost,
    }
}

/// The minutes of the series `params.watch` names, in the scenario with or without its
/// anomalies: to see why the detector decided what it did.
pub fn traces(
    seed: u64,
    apis: usize,
    days: i64,
    anomalies: bool,
    params: &Params,
) -> Vec<crate::trace::Trace> {
    detect(&Traffic::new(seed, apis, days, anomalies), params).2
}

/// A reference detector's figures on the same scenarios.
pub fn run_reference(
    seed: u64,
    apis: usize,
    days: i64,
    which: reference::Reference,
) -> (Score, Clean) {
    let labelled = Traffic::new(seed, apis, days, true);
    let score = score::score(&labelled, &reference::detect(&labelled, which));
    let clean = Traffic::new(seed, apis, days, false);
    let clean_found = reference::detect(&clean, which);
    (score, Clean::count(&clean, clean_found))
}

/// Feeds every call of the scenario to a fresh detector and returns the Insights opened,
/// the cost, and the watched series' minutes.
fn detect(traffic: &Traffic, params: &Params) -> (Vec<Found>, Cost, Vec<crate::trace::Trace>) {
    let index: HashMap<(&str, &str), usize> = traffic
        .apis
        .iter()
        .enumerate()
        .map(|(i, api)| ((api.event_source.as_str(), api.event_name.as_str()), i))
        .collect();
    let mut detector = Detector::new(params.clone());
    let mut found = Vec::new();
    let mut calls = 0u64;
    let mut detecting = Duration::ZERO;
    let mut minute = Vec::new();
    for m in 0..traffic.minutes() {
        traffic.minute(m, &mut minute);
        let began = Instant::now();
        for batch in &minute {
            let call = Call {
                account: &batch.api.account,
                region: &batch.api.region,
                event_source: &batch.api.event_source,
                event_name: &batch.api.event_name,
                time: (START_MINUTE + m) * 60,
                read_only: !batch.api.write,
                error_code: batch.error_code,
                identity_arn: batch.identity,
                user_agent: batch.user_agent,
            };
            for _ in 0..batch.count {
                detector.observe(&call, 1);
            }
            calls += u64::from(batch.count);
        }
        // The server takes the closed minutes' counts for its metrics as it goes.
        drop(detector.take_counts());
        detecting += began.elapsed();
        collect(&index, detector.take(), &mut found);
    }
    let began = Instant::now();
    detector.flush();
    detecting += began.elapsed();
    collect(&index, detector.take(), &mut found);
    let began = Instant::now();
    let snapshot = postcard::to_allocvec(&detector).expect("the detector serializes");
    let snapshotting = began.elapsed();
    let cost = Cost {
        calls,
        detecting,
        series: detector.series_count(),
        bytes: detector.bytes(),
        snapshot_bytes: snapshot.len(),
        snapshotting,
    };
    (found, cost, detector.take_traces())
}

fn collect(index: &HashMap<(&str, &str), usize>, insights: Vec<Insight>, found: &mut Vec<Found>) {
    for insight in insights.into_iter().filter(|i| i.state == State::Start) {
        let api = index[&(insight.event_source.as_str(), insight.event_name.as_str())];
        let error_code = match insight.kind {
            InsightKind::ApiCallRate => None,
            InsightKind::ApiErrorRate { error_code } => Some(error_code),
        };
        let top_identity = insight
            .attributions
            .iter()
            .find(|a| a.attribute == "userIdentityArn")
            .and_then(|a| a.insight.first())
            .map(|(value, _)| value.clone());
        found.push(Found {
            api,
            error_code,
            start: insight.time / 60 - START_MINUTE,
            decided: insight.decided_at - START_MINUTE,
            top_identity,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small version of `cairn bench insights`: two dozen APIs, a week of baseline and
    /// three scored days.
    #[test]
    fn the_detector_finds_the_anomalies_and_little_else() {
        let report = run(11, 24, 10, &Params::default());
        let (s, clean) = (&report.labelled, &report.clean);
        let summary = format!(
            "F1 {:.3}, false/API/day {:.4}, clean {:?}, {s:?}",
            s.f1(),
            clean.false_per_api_day(),
            clean.found
        );
        assert!(s.anomalies >= 10, "{summary}");
        assert!(s.f1() >= 0.95, "{summary}");
        assert!(s.median_delay().is_some_and(|d| d <= 3), "{summary}");
        assert_eq!(s.on_bursty + clean.on_bursty, 0, "{summary}");
        assert!(clean.false_per_api_day() <= 0.005, "{summary}");
        assert_eq!(s.intruder_named, s.error_bursts_detected, "{summary}");
    }
}
