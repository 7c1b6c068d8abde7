//! `cairn bench insights`: the Insights detector on labelled synthetic traffic. Prints
//! precision, recall and F1 per anomaly window, detection delay, false Insights per API
//! per day on the same traffic without anomalies, and what detection costs.

use cairn_insights::quality::{self, traffic::SCORED_FROM_DAY};
use cairn_insights::Params;

#[derive(clap::Args)]
pub struct Args {
    /// APIs in the scenario (a quarter of them naturally bursty).
    #[arg(long, default_value_t = 60)]
    apis: usize,
    /// Days of traffic: the first week is baseline, the rest is scored.
    #[arg(long, default_value_t = 14)]
    days: i64,
    /// Scenarios to run, with seeds `seed`, `seed + 1`, …
    #[arg(long, default_value_t = 3)]
    runs: u64,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// List each false Insight.
    #[arg(long)]
    verbose: bool,
    /// Also score two simple detectors on the same traffic, for context.
    #[arg(long)]
    references: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.days > SCORED_FROM_DAY,
        "--days must exceed the {SCORED_FROM_DAY}-day baseline"
    );
    println!(
        "{} APIs, {} days ({} scored after a {SCORED_FROM_DAY}-day baseline), {} runs",
        args.apis,
        args.days,
        args.days - SCORED_FROM_DAY,
        args.runs
    );
    let params = Params::default();
    let mut total = Totals::default();
    for seed in args.seed..args.seed + args.runs {
        let report = quality::run(seed, args.apis, args.days, &params);
        let s = &report.labelled;
        println!(
            "seed {seed}: F1 {:.3} (precision {:.3}, recall {:.3}; {} anomalies, {} false), \
             median delay {} min, false/API/day {:.4} (first week {:.4}), on bursty APIs {}",
            s.f1(),
            s.precision(),
            s.recall(),
            s.anomalies,
            s.false_insights,
            s.median_delay().unwrap_or(0),
            report.false_per_api_day(),
            report.first_week_false_per_api_day(),
            s.on_bursty + report.clean_on_bursty,
        );
        if args.verbose {
            let traffic =
                cairn_insights::quality::traffic::Traffic::new(seed, args.apis, args.days, false);
            for f in s.false_found.iter().chain(&report.clean_found) {
                let api = &traffic.apis[f.api];
                println!(
                    "  false: day {} {:02}:{:02} {} {:?} {:?}",
                    f.start / 1440,
                    f.start % 1440 / 60,
                    f.start % 60,
                    api.event_name,
                    f.error_code,
                    api.shape
                );
            }
        }
        total.add(&report);
    }
    total.print();
    if args.references {
        use cairn_insights::quality::reference::Reference;
        for (name, which) in [
            ("flat 7-day average", Reference::FlatWeek),
            ("same minute of the day, 7 days", Reference::SameTimeOfDay),
        ] {
            let mut runs = Vec::new();
            for seed in args.seed..args.seed + args.runs {
                runs.push(quality::run_reference(seed, args.apis, args.days, which));
            }
            let (mut tp, mut fp, mut detected, mut anomalies, mut on_bursty) = (0, 0, 0, 0, 0);
            let mut false_rate = 0.0;
            for (score, rate, bursty) in &runs {
                tp += score.true_insights;
                fp += score.false_insights;
                detected += score.detected;
                anomalies += score.anomalies;
                on_bursty += bursty;
                false_rate += rate / runs.len() as f64;
            }
            let precision = tp as f64 / (tp + fp).max(1) as f64;
            let recall = detected as f64 / anomalies.max(1) as f64;
            let f1 = 2.0 * precision * recall / (precision + recall).max(f64::EPSILON);
            println!(
                "reference, {name}: F1 {f1:.3} (precision {precision:.3}, recall {recall:.3}), \
                 false/API/day {false_rate:.4}, Insights on bursty APIs {on_bursty}"
            );
        }
    }
    Ok(())
}

#[derive(Default)]
struct Totals {
    anomalies: usize,
    detected: usize,
    true_insights: usize,
    false_insights: usize,
    delays: Vec<i64>,
    clean_false: usize,
    clean_api_days: f64,
    first_week: usize,
    first_week_api_days: f64,
    on_bursty: usize,
    by_kind: Vec<(&'static str, usize, usize)>,
    intruder_named: usize,
    error_bursts: usize,
    calls: u64,
    seconds: f64,
    series: usize,
    bytes: usize,
}

impl Totals {
    fn add(&mut self, r: &quality::Report) {
        let s = &r.labelled;
        self.anomalies += s.anomalies;
        self.detected += s.detected;
        self.true_insights += s.true_insights;
        self.false_insights += s.false_insights;
        self.delays.extend(&s.delays);
        self.clean_false += r.clean_false;
        self.clean_api_days += (r.apis as i64 * r.scored_days()) as f64;
        self.first_week += r.clean_first_week;
        self.first_week_api_days += (r.apis as i64 * (SCORED_FROM_DAY - 1)) as f64;
        self.on_bursty += s.on_bursty + r.clean_on_bursty;
        for &(name, count, found) in &s.by_kind {
            match self.by_kind.iter_mut().find(|(n, _, _)| *n == name) {
                Some(entry) => {
                    entry.1 += count;
                    entry.2 += found;
                }
                None => self.by_kind.push((name, count, found)),
            }
        }
        self.intruder_named += s.intruder_named;
        self.error_bursts += s.error_bursts_detected;
        self.calls += r.calls;
        self.seconds += r.detecting.as_secs_f64();
        self.series = self.series.max(r.series);
        self.bytes = self.bytes.max(r.bytes);
    }

    fn print(&mut self) {
        let ratio = |a: usize, b: usize| if b == 0 { 1.0 } else { a as f64 / b as f64 };
        let precision = ratio(self.true_insights, self.true_insights + self.false_insights);
        let recall = ratio(self.detected, self.anomalies);
        let f1 = 2.0 * precision * recall / (precision + recall).max(f64::EPSILON);
        self.delays.sort_unstable();
        let median = self.delays.get(self.delays.len() / 2).copied().unwrap_or(0);
        let p90 = self
            .delays
            .get(self.delays.len() * 9 / 10)
            .copied()
            .unwrap_or(0);
        println!("all runs:");
        println!(
            "  F1 {f1:.3}: precision {precision:.3}, recall {recall:.3} ({} of {} anomalies; {} false Insights)",
            self.detected, self.anomalies, self.false_insights
        );
        for (name, count, found) in &self.by_kind {
            println!("    {name}: {found} of {count}");
        }
        println!("  detection delay: median {median} min, p90 {p90} min");
        println!(
            "  false Insights on clean traffic: {:.4} per API per day in the scored days, {:.4} in the first week",
            self.clean_false as f64 / self.clean_api_days,
            self.first_week as f64 / self.first_week_api_days
        );
        println!("  Insights on naturally bursty APIs: {}", self.on_bursty);
        println!(
            "  error bursts whose Insight names the intruder first: {} of {}",
            self.intruder_named, self.error_bursts
        );
        let rate = self.calls as f64 / self.seconds;
        println!(
            "  cost: {:.2} M calls/s on one core, so {:.1}% of a core at 100,000 calls/s; {} B per tracked series ({} series)",
            rate / 1e6,
            100.0 * 100_000.0 / rate,
            self.bytes / self.series.max(1),
            self.series
        );
    }
}
