//! Labelled synthetic traffic: per-minute calls for dozens of APIs over days, with daily
//! and weekly seasonality, Poisson noise, naturally bursty APIs (hourly jobs, batch runs,
//! quarter-hour crons) and injected anomalies whose windows are known.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::history::MINUTES_PER_DAY;

/// 2026-01-05T00:00Z, a Monday, in epoch minutes: day 0 of every scenario.
pub const START_MINUTE: i64 = 20_458 * MINUTES_PER_DAY;
/// Anomalies are injected, and Insights scored, from this day on: the first week is the
/// baseline.
pub const SCORED_FROM_DAY: i64 = 7;

#[derive(Clone, Debug)]
pub enum Shape {
    /// Business-hours traffic around `mean` calls a minute, peaking at `peak_hour` UTC,
    /// with weekends at `weekend` times a weekday.
    Steady {
        mean: f64,
        swing: f64,
        peak_hour: f64,
        weekend: f64,
    },
    /// An hourly job: about `size` calls over `spread` minutes at `minute` past each hour,
    /// up to two minutes early or late, on top of `base` calls a minute.
    Hourly {
        base: f64,
        minute: i64,
        size: f64,
        spread: i64,
    },
    /// Batch runs starting at each of `starts` (minutes of the day, up to a quarter of an
    /// hour early or late), `length` minutes at about `rate` calls a minute.
    Batch {
        base: f64,
        starts: Vec<i64>,
        length: i64,
        rate: f64,
    },
    /// A quarter-hour cron: about `size` calls in one minute, give or take a minute.
    Quarterly { base: f64, size: f64 },
}

#[derive(Clone, Debug)]
pub struct Api {
    pub account: String,
    pub region: String,
    pub event_source: String,
    pub event_name: String,
    pub write: bool,
    pub shape: Shape,
    pub error_code: &'static str,
    pub error_share: f64,
    /// (identity ARN, user agent, share of calls)
    pub callers: Vec<(String, &'static str, f64)>,
}

impl Api {
    pub fn bursty(&self) -> bool {
        !matches!(self.shape, Shape::Steady { .. })
    }

    /// Expected calls in minute `m` (minutes since the start), without anomalies.
    pub fn rate(&self, seed: u64, api: usize, m: i64) -> f64 {
        match &self.shape {
            Shape::Steady {
                mean,
                swing,
                peak_hour,
                weekend,
            } => {
                let hour = (m % MINUTES_PER_DAY) as f64 / 60.0;
                let daily = 1.0 + swing * (std::f64::consts::TAU * (hour - peak_hour) / 24.0).cos();
                let weekday = (m / MINUTES_PER_DAY) % 7;
                mean * daily * if weekday >= 5 { *weekend } else { 1.0 }
            }
            Shape::Hourly {
                base,
                minute,
                size,
                spread,
            } => {
                let hour = m / 60;
                // A run may start in the hour before or after its own.
                let burst: f64 = (hour - 1..=hour + 1)
                    .map(|h| {
                        let start = h * 60 + minute + jitter(seed, api, h, 2);
                        if (start..start + spread).contains(&m) {
                            size * between(seed, api, h, 0.7, 1.3) / *spread as f64
                        } else {
                            0.0
                        }
                    })
                    .sum();
                base + burst
            }
            Shape::Batch {
                base,
                starts,
                length,
                rate,
            } => {
                let day = m / MINUTES_PER_DAY;
                let mut total = *base;
                for d in day - 1..=day + 1 {
                    for (i, at) in starts.iter().enumerate() {
                        let key = d * 8 + i as i64;
                        let start = d * MINUTES_PER_DAY + at + jitter(seed, api, key, 15);
                        if (start..start + length).contains(&m) {
                            total += rate * between(seed, api, key, 0.8, 1.2);
                        }
                    }
                }
                total
            }
            Shape::Quarterly { base, size } => {
                let quarter = m / 15;
                let runs = (quarter - 1..=quarter + 1)
                    .filter(|&q| q * 15 + jitter(seed, api, q, 1) == m)
                    .count();
                base + runs as f64 * size * between(seed, api, quarter, 0.8, 1.2)
            }
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum AnomalyKind {
    /// A sharp burst of `factor` times the usual rate (at least 15 calls a minute more).
    Spike { factor: f64 },
    /// The rate multiplied by `factor` for hours.
    LevelShift { factor: f64 },
    /// A climb to `factor` times the rate over `ramp` minutes, held to the end.
    Ramp { factor: f64, ramp: i64 },
    /// One new identity's calls failing with AccessDenied at `rate` a minute.
    ErrorBurst { rate: f64 },
    /// A thin API suddenly carrying `rate` calls a minute more.
    LowVolume { rate: f64 },
}

#[derive(Clone, Debug)]
pub struct Anomaly {
    pub api: usize,
    pub kind: AnomalyKind,
    /// Minutes since the start; `end` is exclusive.
    pub start: i64,
    pub end: i64,
    /// The identity behind an error burst.
    pub intruder: Option<String>,
}

pub const INTRUDER_AGENT: &str = "python-requests/2.31.0";
pub const INTRUDER_ERROR: &str = "AccessDenied";

impl Anomaly {
    /// The series the anomaly is about: its error code for an error burst, else calls.
    pub fn error_code(&self) -> Option<&'static str> {
        matches!(self.kind, AnomalyKind::ErrorBurst { .. }).then_some(INTRUDER_ERROR)
    }

    /// Extra calls in minute `m` on top of `usual`.
    fn extra(&self, m: i64, usual: f64) -> f64 {
        if !(self.start..self.end).contains(&m) {
            return 0.0;
        }
        match self.kind {
            AnomalyKind::Spike { factor } => ((factor - 1.0) * usual).max(15.0),
            AnomalyKind::LevelShift { factor } => ((factor - 1.0) * usual).max(3.0),
            AnomalyKind::Ramp { factor, ramp } => {
                let progress = ((m - self.start + 1) as f64 / ramp as f64).min(1.0);
                ((factor - 1.0) * usual).max(4.0) * progress
            }
            AnomalyKind::ErrorBurst { rate } | AnomalyKind::LowVolume { rate } => rate,
        }
    }
}

/// A scenario: the APIs, the anomalies, and the seed that makes every minute reproducible.
pub struct Traffic {
    pub seed: u64,
    pub days: i64,
    pub apis: Vec<Api>,
    pub anomalies: Vec<Anomaly>,
}

/// Calls of one kind in one minute.
pub struct Calls<'a> {
    /// The API and its index in `Traffic::apis`.
    pub api: &'a Api,
    pub index: usize,
    pub identity: &'a str,
    pub user_agent: &'static str,
    pub error_code: Option<&'static str>,
    pub count: u32,
}

const SOURCES: [&str; 8] = [
    "ec2.amazonaws.com",
    "iam.amazonaws.com",
    "s3.amazonaws.com",
    "lambda.amazonaws.com",
    "rds.amazonaws.com",
    "kms.amazonaws.com",
    "dynamodb.amazonaws.com",
    "autoscaling.amazonaws.com",
];
const WRITE_VERBS: [&str; 5] = ["Create", "Delete", "Update", "Put", "Terminate"];
const READ_VERBS: [&str; 3] = ["Describe", "List", "Get"];
const NOUNS: [&str; 6] = ["Instance", "Policy", "Function", "Snapshot", "Key", "Table"];
const ERRORS: [&str; 4] = [
    "ThrottlingException",
    "ResourceNotFoundException",
    "ValidationException",
    "AccessDenied",
];
const ACCOUNTS: [&str; 2] = ["111122223333", "444455556666"];
const REGIONS: [&str; 2] = ["us-east-1", "eu-west-1"];

impl Traffic {
    /// `apis` APIs over `days` days; with `anomalies`, each ordinary API gets up to two
    /// anomalies in the scored days (bursty APIs never do: any Insight on them is false).
    pub fn new(seed: u64, apis: usize, days: i64, anomalies: bool) -> Traffic {
        let mut rng = StdRng::seed_from_u64(seed);
        let apis: Vec<Api> = (0..apis).map(|i| api(&mut rng, i)).collect();
        let mut list = Vec::new();
        if anomalies && days > SCORED_FROM_DAY {
            for (index, api) in apis.iter().enumerate() {
                if api.bursty() {
                    continue;
                }
                let count = [0, 1, 1, 2, 2][rng.random_range(0..5)];
                let window = SCORED_FROM_DAY * MINUTES_PER_DAY..days * MINUTES_PER_DAY - 600;
                let mut taken: Vec<(i64, i64)> = Vec::new();
                for _ in 0..count {
                    let start = rng.random_range(window.clone());
                    // Twelve hours apart, so each anomaly is its own incident.
                    if taken
                        .iter()
                        .any(|&(s, e)| start < e + 720 && start + 720 > s)
                    {
                        continue;
                    }
                    let anomaly = anomaly(&mut rng, index, api, start);
                    taken.push((anomaly.start, anomaly.end));
                    list.push(anomaly);
                }
            }
        }
        Traffic {
            seed,
            days,
            apis,
            anomalies: list,
        }
    }

    pub fn minutes(&self) -> i64 {
        self.days * MINUTES_PER_DAY
    }

    /// The calls of minute `m`, drawn from its own random stream.
    pub fn minute<'a>(&'a self, m: i64, out: &mut Vec<Calls<'a>>) {
        out.clear();
        let mut rng = StdRng::seed_from_u64(mix(self.seed, 0x6d69_6e75_7465, m as u64));
        for (index, api) in self.apis.iter().enumerate() {
            let usual = api.rate(self.seed, index, m);
            let mut extra = 0.0;
            let mut intruder = 0.0;
            let mut intruder_name = None;
            for anomaly in self.anomalies.iter().filter(|a| a.api == index) {
                let more = anomaly.extra(m, usual);
                if anomaly.error_code().is_some() {
                    intruder += more;
                    intruder_name = anomaly.intruder.as_deref().or(intruder_name);
                } else {
                    extra += more;
                }
            }
            let rate = usual + extra;
            for (identity, agent, share) in &api.callers {
                let ok = poisson(&mut rng, rate * share * (1.0 - api.error_share));
                let failed = poisson(&mut rng, rate * share * api.error_share);
                for (count, error_code) in [(ok, None), (failed, Some(api.error_code))] {
                    if count > 0 {
                        out.push(Calls {
                            api,
                            index,
                            identity,
                            user_agent: agent,
                            error_code,
                            count,
                        });
                    }
                }
            }
            if let Some(identity) = intruder_name {
                let count = poisson(&mut rng, intruder);
                if count > 0 {
                    out.push(Calls {
                        api,
                        index,
                        identity,
                        user_agent: INTRUDER_AGENT,
                        error_code: Some(INTRUDER_ERROR),
                        count,
                    });
                }
            }
        }
    }
}

fn api(rng: &mut StdRng, i: usize) -> Api {
    let account = ACCOUNTS[i % 2];
    let region = REGIONS[(i / 2) % 2];
    // A quarter are bursty (and write: their calls are what call-rate Insights watch).
    let bursty = i % 4 == 3;
    let write = bursty || rng.random_bool(0.65);
    let shape = if bursty {
        match (i / 4) % 3 {
            0 => Shape::Hourly {
                base: rng.random_range(0.2..3.0),
                minute: rng.random_range(0..60),
                size: rng.random_range(80.0..400.0),
                spread: rng.random_range(1..=3),
            },
            1 => Shape::Batch {
                base: rng.random_range(0.1..2.0),
                starts: (0..rng.random_range(1..=3))
                    .map(|k| k * 480 + rng.random_range(0..420))
                    .collect(),
                length: rng.random_range(20..=45),
                rate: rng.random_range(10.0..60.0),
            },
            _ => Shape::Quarterly {
                base: rng.random_range(0.1..2.0),
                size: rng.random_range(20.0..60.0),
            },
        }
    } else {
        Shape::Steady {
            // Log-uniform from a call every ten minutes to 200 a minute.
            mean: 10f64.powf(rng.random_range(-1.0..2.3)),
            swing: rng.random_range(0.0..0.8),
            peak_hour: rng.random_range(0.0..24.0),
            weekend: rng.random_range(0.3..1.0),
        }
    };
    let verb = if write {
        WRITE_VERBS[i % WRITE_VERBS.len()]
    } else {
        READ_VERBS[i % READ_VERBS.len()]
    };
    let roles = [
        ("app-server", "aws-sdk-go-v2/1.30.3", 0.6),
        ("deploy-pipeline", "Boto3/1.34.0", 0.3),
        ("ops-admin", "aws-cli/2.15.30", 0.1),
    ];
    Api {
        account: account.to_owned(),
        region: region.to_owned(),
        event_source: SOURCES[i % SOURCES.len()].to_owned(),
        event_name: format!("{verb}{}{i}", NOUNS[(i / 3) % NOUNS.len()]),
        write,
        shape,
        error_code: ERRORS[i % ERRORS.len()],
        error_share: rng.random_range(0.002..0.03),
        callers: roles
            .iter()
            .map(|(role, agent, share)| {
                let arn = format!("arn:aws:sts::{account}:assumed-role/{role}/session");
                (arn, *agent, *share)
            })
            .collect(),
    }
}

fn anomaly(rng: &mut StdRng, index: usize, api: &Api, start: i64) -> Anomaly {
    let Shape::Steady { mean, .. } = api.shape else {
        unreachable!("anomalies go to steady APIs")
    };
    let kind = match (api.write, rng.random_range(0..5)) {
        (false, _) | (true, 0) => AnomalyKind::ErrorBurst {
            rate: rng.random_range(4.0..40.0),
        },
        (true, 1) if mean < 1.5 => AnomalyKind::LowVolume {
            rate: rng.random_range(2.0..10.0),
        },
        (true, 1) | (true, 2) => AnomalyKind::Spike {
            factor: rng.random_range(3.0..15.0),
        },
        (true, 3) => AnomalyKind::LevelShift {
            factor: rng.random_range(2.0..5.0),
        },
        _ => AnomalyKind::Ramp {
            factor: rng.random_range(3.0..8.0),
            ramp: rng.random_range(30..120),
        },
    };
    let length = match kind {
        AnomalyKind::Spike { .. } => rng.random_range(3..20),
        AnomalyKind::LevelShift { .. } => rng.random_range(60..360),
        AnomalyKind::Ramp { ramp, .. } => ramp + rng.random_range(20..60),
        AnomalyKind::ErrorBurst { .. } => rng.random_range(5..30),
        AnomalyKind::LowVolume { .. } => rng.random_range(10..30),
    };
    let intruder = matches!(kind, AnomalyKind::ErrorBurst { .. }).then(|| {
        format!(
            "arn:aws:sts::{}:assumed-role/intruder/session-{index}",
            api.account
        )
    });
    Anomaly {
        api: index,
        kind,
        start,
        end: start + length,
        intruder,
    }
}

/// SplitMix64 over three inputs: reproducible per-hour and per-day choices without
/// threading one random stream through every minute.
fn mix(seed: u64, a: u64, b: u64) -> u64 {
    let mut z =
        seed ^ a.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ b.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn between(seed: u64, api: usize, key: i64, low: f64, high: f64) -> f64 {
    let unit = (mix(seed, api as u64, key as u64 ^ 0x5eed) >> 11) as f64 / (1u64 << 53) as f64;
    low + unit * (high - low)
}

fn jitter(seed: u64, api: usize, key: i64, reach: i64) -> i64 {
    (mix(seed, api as u64, key as u64) % (2 * reach as u64 + 1)) as i64 - reach
}

/// A Poisson draw: Knuth's product method for small means, a rounded normal for large.
fn poisson(rng: &mut StdRng, mean: f64) -> u32 {
    if mean <= 0.0 {
        return 0;
    }
    if mean < 30.0 {
        let limit = (-mean).exp();
        let mut product: f64 = rng.random();
        let mut count = 0;
        while product > limit {
            product *= rng.random::<f64>();
            count += 1;
        }
        return count;
    }
    // Box–Muller.
    let (u, v): (f64, f64) = (rng.random_range(f64::EPSILON..1.0), rng.random());
    let normal = (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos();
    (mean + mean.sqrt() * normal).round().max(0.0) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traffic_is_reproducible_and_labelled() {
        let a = Traffic::new(7, 24, 10, true);
        let b = Traffic::new(7, 24, 10, true);
        assert!(!a.anomalies.is_empty());
        assert_eq!(a.anomalies.len(), b.anomalies.len());
        for anomaly in &a.anomalies {
            assert!(anomaly.start >= SCORED_FROM_DAY * MINUTES_PER_DAY);
            assert!(!a.apis[anomaly.api].bursty());
        }
        let (mut x, mut y) = (Vec::new(), Vec::new());
        a.minute(9000, &mut x);
        b.minute(9000, &mut y);
        let counts = |v: &Vec<Calls>| v.iter().map(|c| c.count).collect::<Vec<_>>();
        assert_eq!(counts(&x), counts(&y));
    }

    #[test]
    fn poisson_draws_have_the_mean() {
        let mut rng = StdRng::seed_from_u64(1);
        for mean in [0.2, 5.0, 120.0] {
            let n = 20_000;
            let total: u64 = (0..n).map(|_| u64::from(poisson(&mut rng, mean))).sum();
            let average = total as f64 / n as f64;
            assert!(
                (average - mean).abs() < 0.05 * mean + 0.02,
                "{mean}: {average}"
            );
        }
    }
}
