//! `cairn import PATH`: loads CloudTrail log files as AWS delivers them (the
//! `AWSLogs/…/CloudTrail/…` tree of `.json.gz` files), plain `.json` files (a log file's
//! `{"Records":[…]}` or an array of records) and NDJSON (a record per line) into a data
//! directory, keeping each event's account, region and time. Importing twice changes
//! nothing: an event already held (same account and eventID) is counted as a duplicate.
//! The server must not be running on the same data directory (the store is locked).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context};
use cairn_core::json::minify;
use cairn_server::records::{self, Policy};
use cairn_store::{Event, Store, StoreOptions};
use serde_json::value::RawValue;

#[derive(clap::Args)]
pub struct Args {
    /// A log file, or a directory searched recursively for `.json`, `.json.gz`, `.gz`,
    /// `.ndjson` and `.jsonl` files.
    path: PathBuf,
    /// The data directory to import into (the server must be stopped).
    #[arg(long, env = "CAIRN_DATA_DIR", default_value = "cairn-data")]
    data_dir: PathBuf,
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
    pub reasons: BTreeMap<&'static str, (u64, String)>,
    pub unreadable: Vec<String>,
}

/// Whether a file of this name may hold CloudTrail records.
pub(crate) fn is_log_file_name(name: &str) -> bool {
    let name = name.to_lowercase();
    [".json", ".json.gz", ".gz", ".ndjson", ".jsonl"]
        .iter()
        .any(|e| name.ends_with(e))
}

/// Files to read, in a stable order.
pub(crate) fn files_under(path: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let wanted = |p: &Path| {
        p.file_name()
            .is_some_and(|n| is_log_file_name(&n.to_string_lossy()))
    };
    if path.is_file() {
        return Ok(vec![path.to_owned()]);
    }
    let mut out = Vec::new();
    let mut stack = vec![path.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in
            std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))?
        {
            let entry = entry?;
            let p = entry.path();
            if entry.file_type()?.is_dir() {
                stack.push(p);
            } else if wanted(&p) {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// A file's text, gunzipped when it is gzip (by magic number, whatever its name).
pub(crate) fn read_text(path: &Path) -> anyhow::Result<String> {
    text_of(std::fs::read(path)?)
}

/// Text from a file's bytes, gunzipped when they are gzip.
pub(crate) fn text_of(bytes: Vec<u8>) -> anyhow::Result<String> {
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut text = String::new();
        flate2::read::MultiGzDecoder::new(&bytes[..]).read_to_string(&mut text)?;
        Ok(text)
    } else {
        Ok(String::from_utf8(bytes)?)
    }
}

#[derive(serde::Deserialize)]
struct LogFile<'a> {
    #[serde(rename = "Records", borrow)]
    records: Vec<&'a RawValue>,
}

/// The records of one file: a log file's `Records`, a JSON array, or NDJSON lines.
pub(crate) fn records_of(text: &str) -> anyhow::Result<Vec<&RawValue>> {
    let trimmed = text.trim_start();
    if trimmed.starts_with('[') {
        return Ok(serde_json::from_str(text)?);
    }
    if let Ok(file) = serde_json::from_str::<LogFile<'_>>(text) {
        return Ok(file.records);
    }
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| serde_json::from_str::<&RawValue>(line).map_err(Into::into))
        .collect()
}

/// Imports every file under `path` into `store`; `now` fixes the retention window.
pub fn import(
    store: &Store,
    path: &Path,
    retention_days: u32,
    now: i64,
    progress: &indicatif::ProgressBar,
) -> anyhow::Result<Summary> {
    let files = files_under(path)?;
    if files.is_empty() {
        bail!("no CloudTrail log files under {}", path.display());
    }
    progress.set_length(files.len() as u64);
    let anyone = |_: &str| true;
    let oldest = now - i64::from(retention_days) * 86_400;
    // Age is judged apart from the other checks: old events are skipped, not rejected.
    let policy = Policy {
        may_write_for: &anyone,
        oldest: i64::MIN,
        newest: now + 86_400,
    };
    let mut summary = Summary::default();
    let mut batch: Vec<Event> = Vec::new();
    for file in &files {
        progress.inc(1);
        let text = match read_text(file) {
            Ok(text) => text,
            Err(e) => {
                summary.unreadable.push(format!("{}: {e}", file.display()));
                continue;
            }
        };
        let records = match records_of(&text) {
            Ok(records) => records,
            Err(e) => {
                summary
                    .unreadable
                    .push(format!("{}: not CloudTrail records: {e}", file.display()));
                continue;
            }
        };
        summary.files += 1;
        for raw in records {
            summary.events += 1;
            match records::check(raw.get(), &policy) {
                Ok(fields) if fields.time < oldest => summary.too_old += 1,
                Ok(fields) => batch.push(Event {
                    fields,
                    record: minify(raw.get()).into_bytes(),
                }),
                Err(refusal) => {
                    summary.rejected += 1;
                    let entry = summary
                        .reasons
                        .entry(refusal.code)
                        .or_insert_with(|| (0, format!("{}: {}", file.display(), refusal.message)));
                    entry.0 += 1;
                }
            }
            if batch.len() >= 5000 {
                store_batch(store, &mut batch, &mut summary)?;
            }
        }
    }
    store_batch(store, &mut batch, &mut summary)?;
    Ok(summary)
}

fn store_batch(store: &Store, batch: &mut Vec<Event>, summary: &mut Summary) -> anyhow::Result<()> {
    if batch.is_empty() {
        return Ok(());
    }
    let appended = store.append_blocking(std::mem::take(batch))?;
    let stored = appended.stored.iter().filter(|s| s.is_some()).count() as u64;
    summary.stored += stored;
    summary.duplicates += appended.stored.len() as u64 - stored;
    Ok(())
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let store = Store::open(&args.data_dir, StoreOptions::default()).with_context(|| {
        format!(
            "opening {} (is cairn serve running on it?)",
            args.data_dir.display()
        )
    })?;
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
    let summary = import(
        &store,
        &args.path,
        args.retention_days,
        crate::now(),
        &progress,
    )?;
    progress.finish_and_clear();
    store.close();
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
    if summary.rejected > 0 || !summary.unreadable.is_empty() {
        bail!(
            "{} records rejected, {} files unreadable",
            summary.rejected,
            summary.unreadable.len()
        );
    }
    Ok(())
}
