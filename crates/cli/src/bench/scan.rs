//! `cairn bench scan`: writes AWS-layout gzip CloudTrail log files of realistic records,
//! then times `cairn insights scan` over them (reading, gunzipping, parsing and detecting).

use std::path::PathBuf;
use std::time::Instant;

use super::gen::WorkDir;

#[derive(clap::Args)]
pub struct Args {
    /// Events to write and scan.
    #[arg(long, default_value_t = 2_000_000)]
    events: u64,
    /// Days the events span.
    #[arg(long, default_value_t = 2)]
    days: i64,
    /// Records per log file.
    #[arg(long, default_value_t = 1000)]
    per_file: u64,
    /// Reader threads (default: one per core).
    #[arg(long)]
    threads: Option<usize>,
    /// Working directory (default: a temporary one).
    #[arg(long)]
    dir: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let work = WorkDir::new(args.dir.clone())?;
    let logs = work.path().join("logs");
    let (files, compressed) = super::import::write_logs(
        &logs,
        args.events,
        args.per_file,
        crate::now(),
        args.days * 86_400,
    )?;
    println!(
        "cairn bench scan: {} events in {files} gzip log files ({:.1} MB compressed)",
        files * args.per_file,
        compressed as f64 / 1e6
    );
    let threads = args.threads.unwrap_or_else(crate::logfiles::cores);
    let files = crate::logfiles::LogFiles::Local(crate::logfiles::files_under(&logs)?);
    let began = Instant::now();
    let scanned = crate::scan::scan(
        &files,
        (i64::MIN, i64::MAX),
        crate::scan::params(cairn_insights::Params::default().learning_minutes),
        threads,
    );
    let elapsed = began.elapsed().as_secs_f64();
    println!(
        "scan: {:.0} events/s, {:.0} MB/s of gzip ({} records, {} management calls, {} late, {} Insights events; {threads} reader threads, {:.2} s)",
        scanned.records as f64 / elapsed,
        compressed as f64 / 1e6 / elapsed,
        scanned.records,
        scanned.calls,
        scanned.late,
        scanned.insights.len(),
        elapsed
    );
    Ok(())
}
