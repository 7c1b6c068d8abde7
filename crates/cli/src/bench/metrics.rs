//! `cairn bench metrics`: what saving the Insights metrics costs. Every series counts a
//! call in every minute of a day (the worst case: every series busy all day), and the
//! metrics are saved after each minute (the server saves them with the detector's state,
//! every 30 seconds). Prints the bytes written per save and the time a save takes, next to
//! the whole day's size, which every save wrote when the open days were saved whole.

use std::time::{Duration, Instant};

use cairn_insights::{MinuteCount, Subject};
use cairn_server::insights::metrics::Metrics;

#[derive(clap::Args)]
pub struct Args {
    /// Series counting in every minute.
    #[arg(long, default_value_t = 10_000)]
    series: usize,
    /// Minutes simulated (one save after each).
    #[arg(long, default_value_t = 1440)]
    minutes: i64,
}

/// 2026-01-05T00:00Z in epoch minutes: the day simulated.
const FIRST_MINUTE: i64 = 20_458 * 1440;

pub fn run(args: Args) -> anyhow::Result<()> {
    anyhow::ensure!(args.series > 0 && args.minutes > 0, "nothing to simulate");
    let dir = tempfile::tempdir()?;
    let mut metrics = Metrics::open(dir.path(), FIRST_MINUTE * 60).map_err(anyhow::Error::msg)?;
    let subjects: Vec<Subject> = (0..args.series)
        .map(|i| Subject {
            account: "111122223333".into(),
            region: "eu-west-1".into(),
            event_source: "ec2.amazonaws.com".into(),
            event_name: format!("Call{i}"),
            error_code: None,
        })
        .collect();
    let mut saves = Vec::with_capacity(args.minutes as usize);
    let mut recording = Duration::ZERO;
    for m in 0..args.minutes {
        let minute = FIRST_MINUTE + m;
        let counts = subjects
            .iter()
            .enumerate()
            .map(|(i, subject)| MinuteCount {
                subject: subject.clone(),
                minute,
                count: 1 + (i as u32 + m as u32) % 50,
            })
            .collect();
        let now = (minute + 3) * 60;
        let began = Instant::now();
        metrics.record(counts, now);
        recording += began.elapsed();
        let began = Instant::now();
        metrics.write_ended_days(now)?;
        metrics.save()?;
        saves.push(began.elapsed());
    }
    let written = metrics.bytes_saved();
    saves.sort();
    let at = |q: f64| saves[((saves.len() - 1) as f64 * q) as usize].as_secs_f64() * 1000.0;
    let whole_day = rewrite_size(&mut metrics)?;
    println!(
        "{} series busy every minute, {} minutes, a save after each:",
        args.series, args.minutes
    );
    println!(
        "  written: {:.1} MB in all, {:.0} KB per save on average",
        written as f64 / 1e6,
        written as f64 / 1e3 / saves.len() as f64
    );
    println!(
        "  save: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; recording the counts {:.2} ms per minute",
        at(0.5),
        at(0.99),
        at(1.0),
        recording.as_secs_f64() * 1000.0 / saves.len() as f64
    );
    println!(
        "  the open days whole, at the end: {:.1} MB (what each save wrote when they were saved whole)",
        whole_day as f64 / 1e6
    );
    Ok(())
}

/// The size of every open day saved whole: the base, rewritten once more.
fn rewrite_size(metrics: &mut Metrics) -> anyhow::Result<u64> {
    let before = metrics.bytes_saved();
    metrics.rewrite_base()?;
    Ok(metrics.bytes_saved() - before)
}
