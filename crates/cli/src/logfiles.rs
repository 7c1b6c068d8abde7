//! Where CloudTrail log files are read from: a local file or directory, or an S3 bucket and
//! prefix (`s3://BUCKET/PREFIX`). The files are listed once, in a stable order; any thread
//! may then read any of them.

use std::path::PathBuf;

use anyhow::Context;
use cairn_server::buckets::Buckets;

use crate::api_client::Credentials;
use crate::import::{files_under, is_log_file_name, text_of};

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

    /// File `i`'s text, gunzipped when it is gzip.
    pub fn read_text(&self, i: usize) -> anyhow::Result<String> {
        let bytes = match self {
            LogFiles::Local(paths) => std::fs::read(&paths[i])?,
            LogFiles::S3(s3) => s3
                .runtime
                .block_on(s3.buckets.get(&s3.bucket, &s3.keys[i]))?
                .context("gone since it was listed")?,
        };
        text_of(bytes)
    }
}
