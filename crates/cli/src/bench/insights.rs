//! `cairn bench insights`: the Insights detector on labelled synthetic traffic. Prints
//! precision, recall and F1 per anomaly window, detection delay, false Insights per API
//! per day on the same traffic without anomalies, and what detection costs.

use cairn_core::timefmt::format_event_time;
use cairn_insights::quality::reference::Reference;
use cairn_insights::quality::score::{Found, Score};
use cairn_insights::quality::traffic::{Traffic, SCORED_FROM_DAY, START_MINUTE};
use cairn_insights::quality::{self, Clean};
use cairn_insights::source::ReadCall;
use cairn_insights::trace::Watch;
use cairn_insights::Params;

use anyhow::Context;

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
    /// Draw each false Insight's series, twelve hours around it, as an SVG in this
    /// directory (as `cairn insights plot` does).
    #[arg(long)]
    plot: Option<std::path::PathBuf>,
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
    // As the server runs it: closed minutes' counts are kept for ListInsightsMetricData.
    let params = Params {
        keep_counts: true,
        ..Params::default()
    };
    let seeds = args.seed..args.seed + args.runs;
    let (mut labelled, mut clean) = (Score::default(), Clean::default());
    let mut cost = quality::Cost::default();
    for seed in seeds.clone() {
        let report = quality::run(seed, args.apis, args.days, &params);
        let s = &report.labelled;
        println!(
            "seed {seed}: F1 {:.3} (precision {:.3}, recall {:.3}; {} anomalies, {} false), \
             median delay {} min, false/API/day {:.4} (first week {:.4}), on bursty APIs {}",
            s.f1(),
            s.precision(),
            s.recall(),
            s.anomalies,
            s.false_insights(),
            s.median_delay().unwrap_or(0),
            report.clean.false_per_api_day(),
            report.clean.first_week_false_per_api_day(),
            s.on_bursty + report.clean.on_bursty,
        );
        if args.verbose {
            let traffic = Traffic::new(seed, args.apis, args.days, false);
            for found in s.false_found.iter().chain(&report.clean.found) {
                println!("  false: {}", describe(&traffic, found));
            }
        }
        if let Some(dir) = &args.plot {
            let false_found = s.false_found.iter().map(|f| (f, true));
            for (found, anomalies) in
                false_found.chain(report.clean.found.iter().map(|f| (f, false)))
            {
                let path = plot_false(dir, &args, seed, found, anomalies, &params)?;
                println!("  drew {}", path.display());
            }
        }
        cost.calls += report.cost.calls;
        cost.detecting += report.cost.detecting;
        cost.series = cost.series.max(report.cost.series);
        cost.bytes = cost.bytes.max(report.cost.bytes);
        cost.snapshot_bytes = cost.snapshot_bytes.max(report.cost.snapshot_bytes);
        cost.snapshotting = cost.snapshotting.max(report.cost.snapshotting);
        labelled.merge(report.labelled);
        clean.merge(report.clean);
    }
    print_totals(&labelled, &clean);
    let rate = cost.calls as f64 / cost.detecting.as_secs_f64();
    let series = cost.series.max(1);
    println!(
        "  cost: {:.2} M calls/s on one core, so {:.1}% of a core at 100,000 calls/s; {} B per tracked series ({} series); \
         saved state {} B per series, made in {:.1} ms",
        rate / 1e6,
        100.0 * 100_000.0 / rate,
        cost.bytes / series,
        cost.series,
        cost.snapshot_bytes / series,
        cost.snapshotting.as_secs_f64() * 1000.0,
    );
    let (parsing, summary, bytes) = read_cost();
    println!(
        "  reading a call from its {bytes:.0}-byte record (as scan does): {parsing:.2} µs; from the \
         record's summary (as the server does, kept beside it at ingest): {summary:.3} µs, so \
         {:.2}% of a core at 100,000 events/s; with the detector, {:.1}%",
        summary * 10.0,
        summary * 10.0 + 100.0 * 100_000.0 / rate
    );
    if args.references {
        for (name, which) in [
            ("flat 7-day average", Reference::FlatWeek),
            ("same minute of the day, 7 days", Reference::SameTimeOfDay),
        ] {
            let (mut score, mut clean) = (Score::default(), Clean::default());
            for seed in seeds.clone() {
                let (s, c) = quality::run_reference(seed, args.apis, args.days, which);
                score.merge(s);
                clean.merge(c);
            }
            println!(
                "reference, {name}: F1 {:.3} (precision {:.3}, recall {:.3}), \
                 false/API/day {:.4}, Insights on bursty APIs {}",
                score.f1(),
                score.precision(),
                score.recall(),
                clean.false_per_api_day(),
                score.on_bursty + clean.on_bursty
            );
        }
    }
    Ok(())
}

fn print_totals(s: &Score, clean: &Clean) {
    println!("all runs:");
    println!(
        "  F1 {:.3}: precision {:.3}, recall {:.3} ({} of {} anomalies; {} false Insights)",
        s.f1(),
        s.precision(),
        s.recall(),
        s.detected,
        s.anomalies,
        s.false_insights()
    );
    for (name, count, found) in &s.by_kind {
        println!("    {name}: {found} of {count}");
    }
    println!(
        "  detection delay: median {} min, p90 {} min",
        s.median_delay().unwrap_or(0),
        s.delay_percentile(0.9).unwrap_or(0)
    );
    println!(
        "  false Insights on clean traffic: {:.4} per API per day in the scored days, {:.4} in the first week",
        clean.false_per_api_day(),
        clean.first_week_false_per_api_day()
    );
    println!(
        "  Insights on naturally bursty APIs: {}",
        s.on_bursty + clean.on_bursty
    );
    println!(
        "  error bursts whose Insight names the intruder first: {} of {}",
        s.intruder_named, s.error_bursts_detected
    );
}

/// What reading the fields Insights needs costs, per event, over realistic 1.2–1.8 KB
/// records: from the record's JSON (as `insights scan` reads logs) and from the summary
/// kept beside it in the journal (as the server's consumer reads every event it takes).
/// Returns microseconds for each, best of three, and the records' mean size.
fn read_cost() -> (f64, f64, f64) {
    let mut generator = crate::bench::gen::Generator::new(7);
    let records: Vec<Vec<u8>> = (0..100_000)
        .map(|i| generator.record(1_767_571_200 + i, "111122223333", "eu-west-1"))
        .collect();
    let summaries: Vec<Vec<u8>> = records
        .iter()
        .map(|r| cairn_core::summary::read(r).expect("generated records are JSON"))
        .collect();
    let bytes = records.iter().map(Vec::len).sum::<usize>() as f64 / records.len() as f64;
    let best_of_three = |read: &dyn Fn(&[u8]) -> Option<usize>, inputs: &[Vec<u8>]| {
        let mut best = f64::MAX;
        for _ in 0..3 {
            let began = std::time::Instant::now();
            let calls: usize = inputs.iter().filter_map(|input| read(input)).sum();
            assert!(calls > 0, "the records are management calls");
            best = best.min(began.elapsed().as_secs_f64());
        }
        best * 1e6 / inputs.len() as f64
    };
    let name_len = |read: ReadCall<'_>| std::hint::black_box(read.call()).event_name.len();
    let parsing = best_of_three(&|r| ReadCall::parse(r).ok().map(name_len), &records);
    let summary = best_of_three(&|s| ReadCall::of_summary(s).ok().map(name_len), &summaries);
    (parsing, summary, bytes)
}

/// Draws the series of a false Insight, six hours either side of it, into `dir`.
fn plot_false(
    dir: &std::path::Path,
    args: &Args,
    seed: u64,
    found: &Found,
    anomalies: bool,
    params: &Params,
) -> anyhow::Result<std::path::PathBuf> {
    let traffic = Traffic::new(seed, args.apis, args.days, anomalies);
    let api = &traffic.apis[found.api];
    let watch = Watch {
        account: Some(api.account.clone()),
        region: Some(api.region.clone()),
        event_source: api.event_source.clone(),
        event_name: api.event_name.clone(),
        errors: found.error_code.is_some(),
        error_code: found.error_code.clone(),
    };
    let params = Params {
        watch: Some(watch),
        ..params.clone()
    };
    let traces = quality::traces(seed, args.apis, args.days, anomalies, &params);
    let trace = traces
        .first()
        .context("the false Insight's series was not traced")?;
    let start = START_MINUTE + found.start;
    let points: Vec<_> = trace
        .points
        .iter()
        .filter(|p| (start - 360..start + 360).contains(&p.minute))
        .cloned()
        .collect();
    anyhow::ensure!(
        !points.is_empty(),
        "the false Insight's series has no minutes around it"
    );
    let title = format!(
        "seed {seed}{}: {} {:?} — {:?}",
        if anomalies { "" } else { ", without anomalies" },
        api.event_name,
        found.error_code,
        api.shape
    );
    let insights = crate::chart::open_windows(&points);
    let svg = crate::chart::svg(&crate::chart::Chart {
        title: &title,
        points: &points,
        insights: &insights,
    });
    std::fs::create_dir_all(dir)?;
    let path = dir.join(format!(
        "seed{seed}-{}-{}-{}-{}{}-{}.svg",
        if anomalies { "labelled" } else { "clean" },
        api.account,
        api.region,
        api.event_name,
        found
            .error_code
            .as_deref()
            .map_or(String::new(), |code| format!("-{code}")),
        format_event_time(start * 60).replace(':', "")
    ));
    std::fs::write(&path, svg)?;
    Ok(path)
}

fn describe(traffic: &Traffic, found: &Found) -> String {
    let api = &traffic.apis[found.api];
    format!(
        "{} {} {:?} {:?}",
        format_event_time((START_MINUTE + found.start) * 60),
        api.event_name,
        found.error_code,
        api.shape
    )
}
