//! `cairn bench import`: writes AWS-layout gzip CloudTrail log files of realistic records,
//! then times `cairn import` of them into a fresh store, or (`--through-server`) into a
//! running `cairn serve` through its bulk endpoint.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use cairn_core::timefmt::format_event_time;
use cairn_store::{Store, StoreOptions};
use indicatif::ProgressBar;

use super::gen::{Generator, WorkDir, ACCOUNTS, REGIONS};

#[derive(clap::Args)]
pub struct Args {
    /// Events to write and import.
    #[arg(long, default_value_t = 1_000_000)]
    events: u64,
    /// Records per log file.
    #[arg(long, default_value_t = 1000)]
    per_file: u64,
    /// Working directory (default: a temporary one).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Import into a running `cairn serve` (started here) through its bulk endpoint, as
    /// `cairn import --endpoint-url` does.
    #[arg(long)]
    through_server: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let work = WorkDir::new(args.dir.clone())?;
    let dir = work.path().to_owned();
    let logs = dir.join("logs");
    let now = crate::now();
    let (files, compressed) = write_logs(&logs, args.events, args.per_file, now, 80 * 86_400)?;
    println!(
        "cairn bench import: {} events in {files} gzip log files ({:.1} MB compressed)",
        files * args.per_file,
        compressed as f64 / 1e6
    );
    let files = crate::logfiles::LogFiles::Local(crate::logfiles::files_under(&logs)?);
    let options = crate::import::Options {
        retention_days: 90,
        now,
        deliver: args.through_server,
    };
    let (summary, elapsed) = if args.through_server {
        let (server, host) = super::ingest::start_server(&dir, "", "")?;
        let url = format!("http://{host}");
        let client = crate::bulk_client::BulkClient::new(&url, super::ingest::credentials())?;
        let began = Instant::now();
        let target = crate::import::Target::Server(&client);
        let summary = crate::import::import(&target, &files, &options, &ProgressBar::hidden())?;
        let elapsed = began.elapsed().as_secs_f64();
        super::ingest::stop_server(server)?;
        (summary, elapsed)
    } else {
        let store = Store::open(&dir.join("data"), StoreOptions::default())?;
        let began = Instant::now();
        let target = crate::import::Target::Store(&store);
        let summary = crate::import::import(&target, &files, &options, &ProgressBar::hidden())?;
        let elapsed = began.elapsed().as_secs_f64();
        store.close();
        (summary, elapsed)
    };
    println!(
        "import: {:.0} events/s ({} events, {} stored, {} rejected, {:.1} s)",
        summary.events as f64 / elapsed,
        summary.events,
        summary.stored,
        summary.rejected,
        elapsed
    );
    Ok(())
}

/// Writes `events` realistic records over the `span_secs` before `now` as AWS-layout gzip
/// log files of `per_file` records under `logs`: three accounts and three regions, each
/// account and region's files following one another in time. Returns the number of files
/// and their compressed bytes.
pub(super) fn write_logs(
    logs: &std::path::Path,
    events: u64,
    per_file: u64,
    now: i64,
    span_secs: i64,
) -> anyhow::Result<(u64, u64)> {
    let mut generator = Generator::new(7);
    let files = events.div_ceil(per_file);
    let mut compressed = 0u64;
    for f in 0..files {
        let account = ACCOUNTS[(f % 3) as usize];
        let region = REGIONS[(f / 3 % 3) as usize];
        // Each file covers its account and region's next slice of the span.
        let slice = span_secs / files.div_ceil(9) as i64;
        let time = now - span_secs + (f / 9) as i64 * slice;
        let stamp = format_event_time(time);
        let (date, hm) = (
            &stamp[..10],
            format!("{}{}", &stamp[11..13], &stamp[14..16]),
        );
        let folder = logs.join(format!(
            "AWSLogs/{account}/CloudTrail/{region}/{}",
            date.replace('-', "/")
        ));
        std::fs::create_dir_all(&folder)?;
        let mut body = Vec::with_capacity(per_file as usize * 1400);
        body.extend_from_slice(b"{\"Records\":[");
        for n in 0..per_file {
            if n > 0 {
                body.push(b',');
            }
            let at = time + n as i64 * slice / per_file as i64;
            body.extend_from_slice(&generator.record(at, account, region));
        }
        body.extend_from_slice(b"]}");
        let name = format!(
            "{account}_CloudTrail_{region}_{}T{hm}Z_{f:016}.json.gz",
            date.replace('-', "")
        );
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&body)?;
        let bytes = gz.finish()?;
        compressed += bytes.len() as u64;
        std::fs::write(folder.join(name), bytes)?;
    }
    Ok((files, compressed))
}
