//! `cairn insights scan PATH | s3://BUCKET/PREFIX`: runs the live detector over existing
//! CloudTrail logs (AWS's `AWSLogs/…` tree of `.json.gz` files, plain `.json`, NDJSON), on
//! disk or in an S3-compatible bucket, and writes the Insights
//! events it finds, with a short summary. Files are read, gunzipped and parsed on every
//! core; the detector takes their calls in file order, one account and region at a time
//! closing minutes by the calls' own eventTimes, as the server does.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context};
use cairn_insights::source::ReadCall;
use cairn_insights::{Call, Insight, Params, Scopes, State};

use crate::logfiles::LogFiles;

#[derive(clap::Args)]
pub struct ScanArgs {
    #[command(flatten)]
    source: crate::logfiles::Source,
    /// Only Insights starting at or after this time (`2026-11-01T00:00:00Z`). The eight
    /// days before it are still read, to learn the baseline.
    #[arg(long, value_parser = parse_time)]
    since: Option<i64>,
    /// Calls at or after this time are not read (an Insight open then stays without End).
    #[arg(long, value_parser = parse_time)]
    until: Option<i64>,
    /// Where to write the Insights events. Default: standard output.
    #[arg(long)]
    output: Option<PathBuf>,
    /// `ndjson` (one record per line) or `records` (a log file's `{"Records":[…]}`).
    #[arg(long, default_value = "ndjson")]
    format: Format,
    /// Minutes an account and region are observed before their first Insight can start.
    #[arg(long, default_value_t = Params::default().learning_minutes)]
    learning_minutes: i64,
}

/// How far before `--since` calls are read to learn the baseline: a week and a day.
pub const BASELINE_SECS: i64 = 8 * 86_400;

#[derive(Clone, Copy, clap::ValueEnum)]
enum Format {
    Ndjson,
    Records,
}

pub fn parse_time(text: &str) -> Result<i64, String> {
    cairn_core::timefmt::parse_event_time(text)
        .ok_or_else(|| format!("{text:?} is not a time such as 2026-11-01T00:00:00Z"))
}

/// Minutes a scanned minute stays open for calls out of order: a log file holds about five
/// minutes of calls, not strictly in order, so a scan waits longer than the server does.
/// (Only when a minute is decided changes, not what is decided.)
const SCAN_REORDER_MINUTES: i64 = 10;

/// The detector's settings for a scan.
pub fn params(learning_minutes: i64) -> Params {
    Params {
        learning_minutes,
        reorder_minutes: SCAN_REORDER_MINUTES,
        ..Params::default()
    }
}

/// One call, owned, so that reader threads can hand it over: its text fields in one buffer.
struct OwnedCall {
    text: String,
    /// End offsets in `text` of account, region, source, name, identity, agent, error.
    ends: [u32; 7],
    time: i64,
    read_only: bool,
    failed: bool,
}

impl OwnedCall {
    fn new(call: &Call) -> OwnedCall {
        let parts = [
            call.account,
            call.region,
            call.event_source,
            call.event_name,
            call.identity_arn,
            call.user_agent,
            call.error_code.unwrap_or(""),
        ];
        let mut text = String::with_capacity(parts.iter().map(|p| p.len()).sum());
        let mut ends = [0u32; 7];
        for (end, part) in ends.iter_mut().zip(parts) {
            text.push_str(part);
            *end = text.len() as u32;
        }
        OwnedCall {
            text,
            ends,
            time: call.time,
            read_only: call.read_only,
            failed: call.error_code.is_some(),
        }
    }

    fn call(&self) -> Call<'_> {
        let part = |i: usize| {
            let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
            &self.text[start..self.ends[i] as usize]
        };
        Call {
            account: part(0),
            region: part(1),
            event_source: part(2),
            event_name: part(3),
            identity_arn: part(4),
            user_agent: part(5),
            error_code: self.failed.then(|| part(6)),
            time: self.time,
            read_only: self.read_only,
        }
    }
}

/// What one file gave.
struct FileCalls {
    calls: Vec<OwnedCall>,
    records: u64,
}

/// The calls in file `i` within `window`; the error says why the file cannot be read.
fn read_file(files: &LogFiles, i: usize, window: (i64, i64)) -> Result<FileCalls, String> {
    let text = files.read_text(i)?;
    // A log file's records are read in one pass; other layouts record by record.
    let reads = match cairn_insights::source::parse_log_file(&text) {
        Some(reads) => reads,
        None => files
            .records_in(i, &text)?
            .into_iter()
            .map(|raw| ReadCall::parse(raw.get().as_bytes()))
            .collect(),
    };
    let calls = reads
        .iter()
        .flatten()
        .map(ReadCall::call)
        .filter(|call| (window.0..window.1).contains(&call.time))
        .map(|call| OwnedCall::new(&call))
        .collect();
    Ok(FileCalls {
        calls,
        records: reads.len() as u64,
    })
}

/// What a scan found.
pub struct Scanned {
    pub insights: Vec<Insight>,
    pub files: usize,
    pub records: u64,
    pub calls: u64,
    pub late: u64,
    pub unreadable: Vec<String>,
    /// The minutes of the series `params.watch` names.
    pub traces: Vec<cairn_insights::trace::Trace>,
}

/// Scans `files` with `threads` readers; calls outside `window` are not counted.
pub fn scan(files: &LogFiles, window: (i64, i64), params: Params, threads: usize) -> Scanned {
    let mut detector = Scopes::new(params);
    let mut scanned = Scanned {
        insights: Vec::new(),
        files: files.len(),
        records: 0,
        calls: 0,
        late: 0,
        unreadable: Vec::new(),
        traces: Vec::new(),
    };
    // The detector takes each file's calls in file order while the next files are read.
    files
        .read_in_order(
            threads,
            |files, i| read_file(files, i, window),
            |file| {
                let file = match file {
                    Ok(file) => file,
                    Err(unreadable) => {
                        scanned.unreadable.push(unreadable);
                        return Ok(());
                    }
                };
                scanned.records += file.records;
                for owned in &file.calls {
                    let call = owned.call();
                    detector.observe(&call, 1, call.time);
                }
                scanned.calls += file.calls.len() as u64;
                scanned.insights.extend(detector.take());
                Ok(())
            },
        )
        .expect("consuming calls cannot fail");
    detector.flush();
    scanned.insights.extend(detector.take());
    scanned.late = detector.late();
    scanned.traces = detector.take_traces();
    scanned
}

fn write_insights(
    out: &mut dyn Write,
    insights: &[Insight],
    format: Format,
) -> std::io::Result<()> {
    match format {
        Format::Ndjson => {
            for insight in insights {
                writeln!(out, "{}", insight.record())?;
            }
        }
        Format::Records => {
            write!(out, "{{\"Records\":[")?;
            for (i, insight) in insights.iter().enumerate() {
                if i > 0 {
                    write!(out, ",")?;
                }
                write!(out, "{}", insight.record())?;
            }
            writeln!(out, "]}}")?;
        }
    }
    out.flush()
}

/// One line per Insight: when, where, what, how much, and who first.
fn summary_line(start: &Insight, end: Option<&Insight>) -> String {
    let kind = match &start.kind {
        cairn_insights::InsightKind::ApiCallRate => "call rate".to_owned(),
        cairn_insights::InsightKind::ApiErrorRate { error_code } => format!("errors {error_code}"),
    };
    let (duration, average) = match end {
        Some(end) => (format!("{} min", end.insight_duration), end.insight_average),
        None => ("still open".to_owned(), start.insight_average),
    };
    let who = start
        .attributions
        .first()
        .and_then(|a| a.insight.first())
        .map(|(value, _)| value.as_str())
        .unwrap_or("-");
    format!(
        "  {}  {} {}  {}:{}  {kind}  {duration}, {average:.1}/min against {:.1}/min  top caller {who}",
        cairn_core::timefmt::format_event_time(start.time),
        start.account,
        start.region,
        start.event_source,
        start.event_name,
        start.baseline_average
    )
}

pub fn run(args: ScanArgs) -> anyhow::Result<()> {
    if args.learning_minutes < 1 {
        bail!("--learning-minutes must be at least 1");
    }
    let files = args.source.list()?;
    let threads = crate::logfiles::cores();
    let params = params(args.learning_minutes);
    let began = Instant::now();
    // The baseline needs the week (and a day of margin) before --since.
    let window = (
        args.since.map_or(i64::MIN, |since| since - BASELINE_SECS),
        args.until.unwrap_or(i64::MAX),
    );
    let mut scanned = scan(&files, window, params, threads);
    let seconds = began.elapsed().as_secs_f64();
    // Calls before --since only teach the baseline: Insights that start before it are not
    // reported (their End, if after, is not either).
    if let Some(since) = args.since {
        scanned.insights.retain(|i| i.started >= since);
    }
    match &args.output {
        Some(path) => {
            let mut file = std::fs::File::create(path)
                .with_context(|| format!("creating {}", path.display()))?;
            write_insights(&mut file, &scanned.insights, args.format)?;
        }
        None => write_insights(
            &mut std::io::stdout().lock(),
            &scanned.insights,
            args.format,
        )?,
    }
    let starts: Vec<&Insight> = scanned
        .insights
        .iter()
        .filter(|i| i.state == State::Start)
        .collect();
    eprintln!(
        "scanned {} files: {} records, {} management calls, {} late ({:.0} records/s); {} Insights",
        scanned.files,
        scanned.records,
        scanned.calls,
        scanned.late,
        scanned.records as f64 / seconds.max(1e-9),
        starts.len()
    );
    let ends: std::collections::HashMap<String, &Insight> = scanned
        .insights
        .iter()
        .filter(|i| i.state == State::End)
        .map(|i| (i.shared_event_id(), i))
        .collect();
    for start in starts {
        let end = ends.get(&start.shared_event_id()).copied();
        eprintln!("{}", summary_line(start, end));
    }
    for file in &scanned.unreadable {
        eprintln!("  unreadable: {file}");
    }
    Ok(())
}
