//! `cairn insights plot SOURCE --event-source S --event-name N --output FILE.svg`: runs the
//! Insights detector over existing logs, as `insights scan` does, and draws one series (an
//! API's write calls, or its failures) with its band, its limits and its Insights, so a
//! person can see why an Insight fired.

use std::path::PathBuf;

use anyhow::{bail, Context};
use cairn_insights::trace::{Trace, Watch};
use cairn_insights::{Insight, InsightKind, State};

use crate::chart::{self, Chart};
use crate::scan::{parse_time, BASELINE_SECS};

#[derive(clap::Args)]
pub struct PlotArgs {
    #[command(flatten)]
    source: crate::logfiles::Source,
    /// The API's event source, such as `ec2.amazonaws.com`.
    #[arg(long)]
    event_source: String,
    /// The API's event name, such as `RunInstances`.
    #[arg(long)]
    event_name: String,
    /// `ApiCallRateInsight` (the API's write calls) or `ApiErrorRateInsight` (its failed
    /// calls, per error code).
    #[arg(long, default_value = "ApiCallRateInsight")]
    insight_type: InsightType,
    /// With `ApiErrorRateInsight`: the error code whose failures to draw.
    #[arg(long)]
    error_code: Option<String>,
    /// The account, when the logs hold the API for several.
    #[arg(long)]
    account: Option<String>,
    /// The region (`awsRegion`), when the logs hold the API for several.
    #[arg(long = "event-region")]
    event_region: Option<String>,
    /// The first minute drawn (`2026-11-01T00:00:00Z`). Default: six hours before the
    /// series' first Insight, a day before `--until`, or a day before its last call.
    #[arg(long, value_parser = parse_time)]
    since: Option<i64>,
    /// The minute after the last drawn. Default: six hours after the last Insight ends, or
    /// a day after `--since`.
    #[arg(long, value_parser = parse_time)]
    until: Option<i64>,
    /// Where to write the SVG picture.
    #[arg(long)]
    output: PathBuf,
    /// Minutes an account and region are observed before their first Insight can start.
    #[arg(long, default_value_t = cairn_insights::Params::default().learning_minutes)]
    learning_minutes: i64,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum InsightType {
    #[value(name = "ApiCallRateInsight")]
    CallRate,
    #[value(name = "ApiErrorRateInsight")]
    ErrorRate,
}

/// Minutes shown around the Insights when no window is given.
const MARGIN_MINUTES: i64 = 6 * 60;
const DAY_MINUTES: i64 = 24 * 60;

pub fn run(args: PlotArgs) -> anyhow::Result<()> {
    if args.learning_minutes < 1 {
        bail!("--learning-minutes must be at least 1");
    }
    let errors = args.insight_type == InsightType::ErrorRate;
    if args.error_code.is_some() && !errors {
        bail!("--error-code goes with --insight-type ApiErrorRateInsight");
    }
    if let (Some(since), Some(until)) = (args.since, args.until) {
        if until <= since {
            bail!("--until must be after --since");
        }
    }
    let watch = Watch {
        account: args.account.clone(),
        region: args.event_region.clone(),
        event_source: args.event_source.clone(),
        event_name: args.event_name.clone(),
        errors,
        error_code: args.error_code.clone(),
    };
    let files = args.source.list()?;
    let params = cairn_insights::Params {
        watch: Some(watch),
        ..crate::scan::params(args.learning_minutes)
    };
    let window = (
        args.since.map_or(i64::MIN, |since| since - BASELINE_SECS),
        args.until.unwrap_or(i64::MAX),
    );
    let scanned = crate::scan::scan(&files, window, params, crate::logfiles::cores());
    let trace = the_one_series(scanned.traces, &args)?;
    let insights = insights_of(&trace, &scanned.insights);
    let (first, after) = shown(&trace, &insights, args.since, args.until)?;
    let points: Vec<_> = trace
        .points
        .iter()
        .filter(|p| (first..after).contains(&p.minute))
        .cloned()
        .collect();
    if points.is_empty() {
        bail!("the series has no minutes between the --since and --until given");
    }
    let title = title(&trace);
    let svg = chart::svg(&Chart {
        title: &title,
        points: &points,
        insights: &insights,
    });
    std::fs::write(&args.output, svg)
        .with_context(|| format!("writing {}", args.output.display()))?;
    let shown_insights = insights
        .iter()
        .filter(|(start, end)| *start < after && end.is_none_or(|end| end > first))
        .count();
    eprintln!(
        "{title}: {} minutes from {} drawn, {shown_insights} Insights in them; wrote {}",
        points.len(),
        cairn_core::timefmt::format_event_time(first * 60),
        args.output.display()
    );
    for file in &scanned.unreadable {
        eprintln!("  unreadable: {file}");
    }
    Ok(())
}

/// The traced series, when exactly one matched; otherwise an error that says which did.
fn the_one_series(mut traces: Vec<Trace>, args: &PlotArgs) -> anyhow::Result<Trace> {
    traces.retain(|t| !t.points.is_empty());
    match traces.len() {
        1 => Ok(traces.remove(0)),
        0 => {
            let what = match args.insight_type {
                InsightType::CallRate => "write calls",
                InsightType::ErrorRate => "failed calls",
            };
            bail!(
                "the logs hold no {what} of {}:{}{} (read-only calls make no call-rate series)",
                args.event_source,
                args.event_name,
                match (&args.account, &args.event_region) {
                    (None, None) => String::new(),
                    (account, region) => format!(
                        " in {} {}",
                        account.as_deref().unwrap_or("any account"),
                        region.as_deref().unwrap_or("any region")
                    ),
                }
            )
        }
        _ => {
            let names: Vec<String> = traces.iter().map(title).collect();
            bail!(
                "{} series match; name one with --account, --event-region or --error-code:\n  {}",
                traces.len(),
                names.join("\n  ")
            )
        }
    }
}

fn title(trace: &Trace) -> String {
    let s = &trace.subject;
    let kind = match &s.error_code {
        None => "ApiCallRateInsight".to_owned(),
        Some(code) => format!("ApiErrorRateInsight ({code})"),
    };
    format!(
        "{}:{} {kind}, account {} {}",
        s.event_source, s.event_name, s.account, s.region
    )
}

/// The Insights on the trace's series: first minute and the minute after their activity
/// (none while still open), in order.
fn insights_of(trace: &Trace, insights: &[Insight]) -> Vec<(i64, Option<i64>)> {
    let s = &trace.subject;
    let ours = |i: &&Insight| {
        let error_code = match &i.kind {
            InsightKind::ApiCallRate => None,
            InsightKind::ApiErrorRate { error_code } => Some(error_code),
        };
        i.account == s.account
            && i.region == s.region
            && i.event_source == s.event_source
            && i.event_name == s.event_name
            && error_code == s.error_code.as_ref()
    };
    let mut found: Vec<(i64, Option<i64>)> = Vec::new();
    for insight in insights.iter().filter(ours) {
        let start = insight.started / 60;
        match insight.state {
            State::Start => found.push((start, None)),
            State::End => {
                if let Some(open) = found
                    .iter_mut()
                    .find(|(s, end)| *s == start && end.is_none())
                {
                    open.1 = Some(insight.time / 60);
                }
            }
        }
    }
    found
}

/// The minutes to draw: those asked for, or the Insights with a margin either side, or the
/// last day of the series.
fn shown(
    trace: &Trace,
    insights: &[(i64, Option<i64>)],
    since: Option<i64>,
    until: Option<i64>,
) -> anyhow::Result<(i64, i64)> {
    let (Some(first), Some(last)) = (trace.points.first(), trace.points.last()) else {
        bail!("the series has no minutes");
    };
    let (first, after) = (first.minute, last.minute + 1);
    let (from, to) = match (insights.first(), insights.last()) {
        (Some(&(start, _)), Some(&(_, end))) => (
            start - MARGIN_MINUTES,
            end.unwrap_or(after) + MARGIN_MINUTES,
        ),
        _ => (after - DAY_MINUTES, after),
    };
    // One bound given: the other is a day away from it.
    let (from, to) = match (
        since.map(|s| s.div_euclid(60)),
        until.map(|u| u.div_euclid(60)),
    ) {
        (Some(from), Some(to)) => (from, to),
        (Some(from), None) => (from, from + DAY_MINUTES),
        (None, Some(to)) => (to - DAY_MINUTES, to),
        (None, None) => (from, to),
    };
    Ok((from.max(first), to.min(after)))
}
