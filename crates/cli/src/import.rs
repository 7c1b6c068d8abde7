//! `cairn import PATH | s3://BUCKET/PREFIX`: loads CloudTrail log files as AWS delivers
//! them (the `AWSLogs/…/CloudTrail/…` tree of `.json.gz` files), plain `.json` files (a log
//! file's `{"Records":[…]}` or an array of records) and NDJSON (a record per line) into a
//! data directory, keeping each event's account, region and time. Importing twice changes
//! nothing: an event already held (same account and eventID) is counted as a duplicate.
//! The server must not be running on the same data directory (the store is locked).
//!
//! Imported events go to the event history only, unless `--deliver` is given: then the
//! server, when it next starts, routes them to the trails that are logging (and on to their
//! log groups and Insights) like newly received events.
//!
//! With `--endpoint-url` the checked records go to a running server's bulk endpoint
//! instead, signed with the caller's credentials; they then reach the trails as newly
//! received events do, which `--deliver` must acknowledge.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context};
use cairn_server::records::{self, Policy};
use cairn_store::{Event, Store, StoreOptions};

use cairn_core::timefmt::SECONDS_PER_DAY;

use crate::logfiles::{cores, LogFiles};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    source: crate::logfiles::Source,
    /// Also route the imported events to the trails that are logging (delivered when
    /// `cairn serve` next starts), like newly received events. Without it they go to the
    /// event history only.
    #[arg(long)]
    deliver: bool,
    /// The data directory to import into (the server must be stopped).
    #[arg(long, env = "CAIRN_DATA_DIR", default_value = "cairn-data")]
    data_dir: PathBuf,
    /// Send the records to the running `cairn serve` at this URL (`http://127.0.0.1:9450`)
    /// instead, through its bulk endpoint, signed with AWS_ACCESS_KEY_ID and
    /// AWS_SECRET_ACCESS_KEY. The events then also reach the trails that are logging, so
    /// `--deliver` must be given too.
    #[arg(long)]
    endpoint_url: Option<String>,
    /// Days of history kept: older events are skipped and counted.
    #[arg(long, env = "CAIRN_RETENTION_DAYS", default_value_t = 90)]
    retention_days: u32,
    /// Do not draw the progress bar.
    #[arg(long)]
    quiet: bool,
}

/// What an import did.
#[derive(Default, Debug)]
pub struct Summary {
    pub files: u64,
    pub events: u64,
    pub stored: u64,
    pub duplicates: u64,
    pub too_old: u64,
    pub rejected: u64,
    /// Rejection reasons by error code, with the first example of each.
    pub reasons: BTreeMap<String, (u64, String)>,
    pub unreadable: Vec<String>,
}

impl Summary {
    fn reject(&mut self, code: &str, count: u64, example: impl FnOnce() -> String) {
        self.rejected += count;
        match self.reasons.get_mut(code) {
            Some(reason) => reason.0 += count,
            None => {
                self.reasons.insert(code.to_owned(), (count, example()));
            }
        }
    }
}

/// Where checked events go.
pub enum Target<'a> {
    /// The data directory's store (the server stopped).
    Store(&'a Store),
    /// A running server's bulk endpoint.
    Server(&'a crate::bulk_client::BulkClient),
}

/// What one file gave: its new events, checked, and what was set aside.
struct FileEvents {
    events: Vec<Event>,
    records: u64,
    too_old: u64,
    /// Rejected records by error code, with the first example of each.
    rejected: BTreeMap<&'static str, (u64, String)>,
}

/// Reads and checks file `i`; events before `oldest` are counted, not kept. The error
/// says why the file cannot be read.
fn read_file(files: &LogFiles, i: usize, oldest: i64, newest: i64) -> Result<FileEvents, String> {
    let text = files.read_text(i)?;
    let records = files.records_in(i, &text)?;
    let anyone = |_: &str| true;
    // Age is judged apart from the other checks: old events are skipped, not rejected.
    let policy = Policy {
        may_write_for: &anyone,
        oldest: i64::MIN,
        newest,
    };
    let mut out = FileEvents {
        events: Vec::with_capacity(records.len()),
        records: records.len() as u64,
        too_old: 0,
        rejected: BTreeMap::new(),
    };
    for raw in records {
        match records::check(raw.get(), &policy) {
            Ok(event) if event.fields.time < oldest => out.too_old += 1,
            Ok(event) => out.events.push(event),
            Err(refusal) => {
                let example = || format!("{}: {}", files.name(i), refusal.message);
                out.rejected
                    .entry(refusal.code)
                    .or_insert_with(|| (0, example()))
                    .0 += 1;
            }
        }
    }
    Ok(out)
}

/// How an import runs.
pub struct Options {
    /// Days of history kept, before `now`: older events are skipped and counted.
    pub retention_days: u32,
    pub now: i64,
    /// Whether the server routes the events to trails; if not, they belong to the
    /// history only.
    pub deliver: bool,
}

/// Imports `files` into `target`.
pub fn import(
    target: &Target,
    files: &LogFiles,
    options: &Options,
    progress: &indicatif::ProgressBar,
) -> anyhow::Result<Summary> {
    progress.set_length(files.len() as u64);
    let oldest = options.now - i64::from(options.retention_days) * SECONDS_PER_DAY;
    let newest = options.now + SECONDS_PER_DAY;
    let mut summary = Summary::default();
    let mut batch: Vec<Event> = Vec::new();
    let history_only = match target {
        Target::Store(store) if !options.deliver => Some(store),
        _ => None,
    };
    if let Some(store) = history_only {
        store.begin_history_only()?;
    }
    files.read_in_order(
        cores(),
        |files, i| read_file(files, i, oldest, newest),
        |file| {
            progress.inc(1);
            let file = match file {
                Ok(file) => file,
                Err(unreadable) => {
                    summary.unreadable.push(unreadable);
                    return Ok(());
                }
            };
            summary.files += 1;
            summary.events += file.records;
            summary.too_old += file.too_old;
            for (code, (count, example)) in file.rejected {
                summary.reject(code, count, || example);
            }
            batch.extend(file.events);
            if batch.len() >= 5000 {
                send_batch(target, &mut batch, &mut summary)?;
            }
            Ok(())
        },
    )?;
    send_batch(target, &mut batch, &mut summary)?;
    if let Some(store) = history_only {
        store.end_history_only()?;
    }
    Ok(summary)
}

fn send_batch(
    target: &Target,
    batch: &mut Vec<Event>,
    summary: &mut Summary,
) -> anyhow::Result<()> {
    if batch.is_empty() {
        return Ok(());
    }
    match target {
        Target::Store(store) => {
            let appended = store.append_blocking(std::mem::take(batch))?;
            let stored = appended.stored.iter().filter(|s| s.is_some()).count() as u64;
            summary.stored += stored;
            summary.duplicates += appended.stored.len() as u64 - stored;
        }
        Target::Server(client) => {
            let records: Vec<&[u8]> = batch.iter().map(|e| e.record.as_slice()).collect();
            let sent = client.send(&records)?;
            batch.clear();
            summary.stored += sent.stored;
            summary.duplicates += sent.duplicates;
            for (code, message) in sent.refused {
                summary.reject(&code, 1, || message);
            }
        }
    }
    Ok(())
}

pub fn run(args: Args) -> anyhow::Result<()> {
    if args.endpoint_url.is_some() && !args.deliver {
        bail!(
            "through a running server, imported events reach the trails that are logging as \
             newly received events do: give --deliver to go on (to keep them out of the \
             trails, stop the server and import into its data directory)"
        );
    }
    let files = args.source.list()?;
    let (store, client);
    let target = match &args.endpoint_url {
        Some(url) => {
            let credentials = crate::api_client::Credentials::from_env()?;
            client = crate::bulk_client::BulkClient::new(url, credentials)?;
            Target::Server(&client)
        }
        None => {
            store = Store::open(&args.data_dir, StoreOptions::default()).with_context(|| {
                format!(
                    "opening {} (is cairn serve running on it?)",
                    args.data_dir.display()
                )
            })?;
            Target::Store(&store)
        }
    };
    let progress = if args.quiet {
        indicatif::ProgressBar::hidden()
    } else {
        indicatif::ProgressBar::new(0).with_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40} {pos}/{len} files, {elapsed} elapsed, {eta} left",
            )
            .expect("a valid template"),
        )
    };
    let began = Instant::now();
    let options = Options {
        retention_days: args.retention_days,
        now: crate::now(),
        deliver: args.deliver,
    };
    let summary = import(&target, &files, &options, &progress)?;
    progress.finish_and_clear();
    if let Target::Store(store) = target {
        store.close();
    }
    let seconds = began.elapsed().as_secs_f64();
    println!(
        "imported {} files: {} events, {} stored, {} duplicates, {} older than {} days skipped, {} rejected ({:.0} events/s)",
        summary.files,
        summary.events,
        summary.stored,
        summary.duplicates,
        summary.too_old,
        args.retention_days,
        summary.rejected,
        summary.events as f64 / seconds.max(1e-9)
    );
    for (code, (count, example)) in &summary.reasons {
        println!("  rejected {count} × {code}, e.g. {example}");
    }
    for file in &summary.unreadable {
        println!("  unreadable: {file}");
    }
    if args.deliver && summary.stored > 0 {
        let when = match args.endpoint_url {
            Some(_) => "now",
            None => "when cairn serve next starts",
        };
        println!(
            "  the {} new events go to the trails that are logging {when}",
            summary.stored
        );
    }
    if summary.rejected > 0 || !summary.unreadable.is_empty() {
        bail!(
            "{} records rejected, {} files unreadable",
            summary.rejected,
            summary.unreadable.len()
        );
    }
    Ok(())
}
