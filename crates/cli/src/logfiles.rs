//! Where CloudTrail log files are read from: a local file or directory, or an S3 bucket and
//! prefix (`s3://BUCKET/PREFIX`). The files are listed once, in a stable order; any thread
//! may then read any of them. A file holds a log file's `{"Records":[…]}`, a JSON array of
//! records or NDJSON, gzip-compressed or not.

use std::path::{Path, PathBuf};

use anyhow::Context;
use cairn_core::logfile::{records_of, text_of};
use cairn_server::buckets::Buckets;
use serde_json::value::RawValue;

use crate::api_client::Credentials;

pub enum LogFiles {
    Local(Vec<PathBuf>),
    S3(Box<S3Files>),
}

pub struct S3Files {
    buckets: Buckets,
    bucket: String,
    keys: Vec<String>,
    /// Runs the S3 requests; reader threads block on it.
    runtime: tokio::runtime::Runtime,
}

/// Buckets on `endpoint` (default AWS's S3 in `region`), path-style, signed with
/// `credentials`.
pub fn s3_buckets(endpoint: Option<String>, region: &str, credentials: Credentials) -> Buckets {
    Buckets::s3(cairn_server::config::S3Settings {
        endpoint: endpoint.unwrap_or_else(|| format!("https://s3.{region}.amazonaws.com")),
        region: region.to_owned(),
        access_key_id: credentials.access_key_id,
        secret_access_key: credentials.secret_access_key,
        virtual_hosted_style: false,
    })
}

/// Where the log files to read are: the source argument of `import` and `insights scan`.
#[derive(clap::Args)]
pub struct Source {
    /// A log file, a directory searched recursively for `.json`, `.json.gz`, `.gz`,
    /// `.ndjson` and `.jsonl` files, or `s3://BUCKET/PREFIX` (with AWS_ACCESS_KEY_ID and
    /// AWS_SECRET_ACCESS_KEY).
    source: String,
    /// The S3-compatible endpoint of an `s3://` source. Default: AWS's, in `--region`.
    #[arg(long)]
    s3_endpoint_url: Option<String>,
    /// The region of an `s3://` source's bucket.
    #[arg(long, env = "AWS_REGION", default_value = "us-east-1")]
    region: String,
}

impl Source {
    /// The files of the source; one that holds none is an error.
    pub fn list(&self) -> anyhow::Result<LogFiles> {
        let files = LogFiles::list(&self.source, self.s3_endpoint_url.clone(), &self.region)?;
        anyhow::ensure!(
            !files.is_empty(),
            "no CloudTrail log files under {}",
            self.source
        );
        Ok(files)
    }
}

impl LogFiles {
    /// Lists `source`: a path, or `s3://BUCKET/PREFIX` on `s3_endpoint` (default AWS's in
    /// `region`) with the credentials in `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`.
    pub fn list(
        source: &str,
        s3_endpoint: Option<String>,
        region: &str,
    ) -> anyhow::Result<LogFiles> {
        let Some(location) = source.strip_prefix("s3://") else {
            return Ok(LogFiles::Local(files_under(source.as_ref())?));
        };
        let (bucket, prefix) = location.split_once('/').unwrap_or((location, ""));
        anyhow::ensure!(!bucket.is_empty(), "{source:?} names no bucket");
        let buckets = s3_buckets(s3_endpoint, region, Credentials::from_env()?);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        let mut keys: Vec<String> = runtime
            .block_on(buckets.list(bucket, prefix))
            .with_context(|| format!("listing {source}"))?
            .into_iter()
            .filter(|key| is_log_file_name(key))
            .collect();
        keys.sort();
        Ok(LogFiles::S3(Box::new(S3Files {
            buckets,
            bucket: bucket.to_owned(),
            keys,
            runtime,
        })))
    }

    pub fn len(&self) -> usize {
        match self {
            LogFiles::Local(paths) => paths.len(),
            LogFiles::S3(s3) => s3.keys.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// File `i` as a person would name it.
    pub fn name(&self, i: usize) -> String {
        match self {
            LogFiles::Local(paths) => paths[i].display().to_string(),
            LogFiles::S3(s3) => format!("s3://{}/{}", s3.bucket, s3.keys[i]),
        }
    }

    /// Reads every file with `read` on `threads` threads and hands what each gave to
    /// `consume` in file order, reading ahead while it consumes. Stops at the first error
    /// `consume` returns.
    pub fn read_in_order<T: Send>(
        &self,
        threads: usize,
        read: impl Fn(&LogFiles, usize) -> T + Sync,
        mut consume: impl FnMut(T) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        let threads = threads.max(1);
        let read = &read;
        std::thread::scope(|scope| {
            // Reader k reads files k, k + threads, …, at most a few ahead of the consumer.
            let readers: Vec<_> = (0..threads)
                .map(|k| {
                    let (sender, receiver) = std::sync::mpsc::sync_channel(4);
                    scope.spawn(move || {
                        for i in (k..self.len()).step_by(threads) {
                            if sender.send(read(self, i)).is_err() {
                                return; // the consumer stopped
                            }
                        }
                    });
                    receiver
                })
                .collect();
            for i in 0..self.len() {
                let result = readers[i % threads]
                    .recv()
                    .expect("a reader thread panicked");
                consume(result)?;
            }
            Ok(())
        })
    }

    /// The records in file `i`'s `text`; the error names the file.
    pub fn records_in<'t>(&self, i: usize, text: &'t str) -> Result<Vec<&'t RawValue>, String> {
        records_of(text).map_err(|e| format!("{}: not CloudTrail records: {e}", self.name(i)))
    }

    /// File `i`'s text, gunzipped when it is gzip; the error names the file.
    pub fn read_text(&self, i: usize) -> Result<String, String> {
        let read = || -> anyhow::Result<String> {
            let bytes = match self {
                LogFiles::Local(paths) => std::fs::read(&paths[i])?,
                LogFiles::S3(s3) => s3
                    .runtime
                    .block_on(s3.buckets.get(&s3.bucket, &s3.keys[i]))?
                    .context("gone since it was listed")?,
            };
            Ok(text_of(bytes)?)
        };
        read().map_err(|e| format!("{}: {e:#}", self.name(i)))
    }
}

/// Threads for reading files: one per core.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Whether a file of this name may hold CloudTrail records.
fn is_log_file_name(name: &str) -> bool {
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
