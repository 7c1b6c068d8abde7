//! `cairn bench validate`: builds a bucket of hourly digest chains over gzip log files,
//! signed as the service signs them, then times `cairn validate-logs` on the local copy,
//! on one core and on all. With `--s3-endpoint-url` the bucket is built on that
//! S3-compatible server instead (`moto_server`, say), and `cairn validate-logs` and the AWS
//! CLI's `aws cloudtrail validate-logs` are both timed against it, with a `cairn serve`
//! answering ListPublicKeys, next to what the server itself serves per second.

use cairn_core::timefmt::format_event_time;
use std::path::Path;
use std::time::Instant;

use anyhow::Context;
use base64::Engine as _;
use cairn_core::layout::{unique_suffix, FileKey, FileKind};
use cairn_server::delivery::build::compress;
use cairn_server::delivery::digests::{self, Chain, DigestEntry, Generation};
use cairn_server::trails::Trail;

use super::gen::{Generator, WorkDir};
use super::ingest::{ACCOUNT, REGION};

const BUCKET: &str = "bench-bucket";

#[derive(clap::Args)]
pub struct Args {
    /// Log files in the bucket.
    #[arg(long, default_value_t = 2000)]
    files: usize,
    /// Uncompressed size of each log file, in KB.
    #[arg(long, default_value_t = 1200)]
    file_kb: usize,
    /// Hourly digests (the files are spread over them).
    #[arg(long, default_value_t = 24)]
    hours: usize,
    /// Work here instead of a temporary directory.
    #[arg(long)]
    dir: Option<std::path::PathBuf>,
    /// Build the bucket on this S3-compatible server (its bucket `bench-bucket` must
    /// exist and be empty) and time both validators against it.
    #[arg(long)]
    s3_endpoint_url: Option<String>,
}

/// Distinct log file bodies, reused across files (each file's hash is still its own).
fn bodies(file_kb: usize) -> Vec<Vec<u8>> {
    let mut generator = Generator::new(7);
    (0..8)
        .map(|_| {
            let mut json = b"{\"Records\":[".to_vec();
            let mut first = true;
            while json.len() < file_kb * 1024 {
                if !first {
                    json.push(b',');
                }
                first = false;
                json.extend(generator.record(1_767_225_600, ACCOUNT, REGION));
            }
            json.extend_from_slice(b"]}");
            json
        })
        .collect()
}

/// Where the bucket is built.
struct Bucket {
    buckets: cairn_server::buckets::Buckets,
    runtime: tokio::runtime::Runtime,
}

impl Bucket {
    fn put(&self, key: &str, bytes: Vec<u8>, metadata: Metadata) -> anyhow::Result<()> {
        let put = self.buckets.put_with_metadata(BUCKET, key, bytes, metadata);
        self.runtime
            .block_on(put)
            .map_err(|e| anyhow::anyhow!("{e}"))
    }
}

type Metadata = cairn_server::buckets::Metadata;

/// Writes the bucket, the signing keys in `data` (a data directory, so that a `cairn
/// serve` on it answers ListPublicKeys) and the public keys file in `work`; returns
/// (start time, uncompressed bytes).
fn build_bucket(
    args: &Args,
    bucket: &Bucket,
    data: &Path,
    work: &Path,
) -> anyhow::Result<(i64, u64)> {
    let meta = cairn_store::MetaStore::open(&data.join("meta"))?;
    let keys = cairn_server::keys::Keys::new(data, 30 * 86_400);
    let start = (crate::now() - (args.hours as i64 + 1) * 3600) / 3600 * 3600;
    let signer = keys
        .signer(&meta, REGION, start)
        .map_err(anyhow::Error::msg)?;
    let trail = Trail::new(ACCOUNT, REGION, "bench", BUCKET);
    let generation = Generation {
        logging_since: 1,
        validation_epoch: 1,
    };
    let mut chain = Chain::new(&trail.arn(), ACCOUNT, REGION, generation, start);
    let target = digests::Target {
        trail: &trail,
        organization: None,
    };
    let bodies = bodies(args.file_kb);
    let compressed: Vec<Vec<u8>> = bodies.iter().map(|b| compress(b)).collect();
    let hashes: Vec<String> = bodies
        .iter()
        .map(|b| cairn_core::digest::sha256_hex(b))
        .collect();
    let mut inflated = 0u64;
    for file in 0..args.files {
        let hour = file * args.hours / args.files;
        let time = start + hour as i64 * 3600 + (file % 3000) as i64;
        // Close the hours before this file's.
        while chain.start + 3600 <= time {
            let end = chain.start + 3600;
            write_digest(bucket, &mut chain, &target, end, &signer)?;
        }
        let body = file % bodies.len();
        let unique = unique_suffix(format!("{file}").as_bytes());
        let key = FileKey {
            prefix: None,
            organization: None,
            account: ACCOUNT,
            region: REGION,
            kind: FileKind::Log,
            time,
            unique: &unique,
        }
        .render();
        bucket.put(&key, compressed[body].clone(), Metadata::new())?;
        inflated += bodies[body].len() as u64;
        chain.add(
            BUCKET,
            &key,
            &DigestEntry {
                generation,
                account: ACCOUNT.into(),
                sha256: hashes[body].clone(),
                oldest: time - 60,
                newest: time,
            },
        );
    }
    while chain.start < start + args.hours as i64 * 3600 {
        let end = chain.start + 3600;
        write_digest(bucket, &mut chain, &target, end, &signer)?;
    }
    let public = signer.public();
    let listing = serde_json::json!({"PublicKeyList": [{
        "Fingerprint": public.fingerprint,
        "Value": base64::engine::general_purpose::STANDARD.encode(&public.der),
    }]});
    std::fs::write(work.join("keys.json"), listing.to_string())?;
    Ok((start, inflated))
}

fn write_digest(
    bucket: &Bucket,
    chain: &mut Chain,
    target: &digests::Target<'_>,
    end: i64,
    signer: &cairn_server::keys::Signer,
) -> anyhow::Result<()> {
    let digest = digests::close(chain, target, end, signer).map_err(anyhow::Error::msg)?;
    let metadata = Metadata::from([
        ("signature".to_owned(), digest.signature.clone()),
        (
            "signature-algorithm".to_owned(),
            cairn_core::digest::SIGNATURE_ALGORITHM.to_owned(),
        ),
    ]);
    bucket.put(&digest.key, compress(&digest.json), metadata)
}

/// Runs `cairn validate-logs` on the copy; returns (seconds, report).
fn validate(
    root: &Path,
    work: &Path,
    start: i64,
    hours: usize,
    jobs: usize,
) -> anyhow::Result<(f64, serde_json::Value)> {
    let began = Instant::now();
    let out = std::process::Command::new(std::env::current_exe()?)
        .args(["validate-logs", "--trail-arn", &trail_arn(), "--start-time"])
        .arg(start.to_string())
        .arg("--end-time")
        .arg((start + hours as i64 * 3600).to_string())
        .arg("--local")
        .arg(root.join(BUCKET))
        .args(["--s3-bucket", BUCKET, "--output", "json", "--jobs"])
        .arg(jobs.to_string())
        .arg("--public-keys")
        .arg(work.join("keys.json"))
        .output()?;
    let seconds = began.elapsed().as_secs_f64();
    Ok((seconds, valid_report(&out.stdout)?))
}

fn trail_arn() -> String {
    format!("arn:aws:cloudtrail:{REGION}:{ACCOUNT}:trail/bench")
}

/// `cairn validate-logs --output json`'s report, when it says everything is valid.
fn valid_report(stdout: &[u8]) -> anyhow::Result<serde_json::Value> {
    let report: serde_json::Value =
        serde_json::from_slice(stdout).context("validate-logs printed no JSON report")?;
    if report["valid"] != true {
        anyhow::bail!("the benchmark bucket did not validate: {report}");
    }
    Ok(report)
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let work = WorkDir::new(args.dir.clone())?;
    let root = work.path().join("copy");
    let credentials = super::ingest::credentials();
    let buckets = match &args.s3_endpoint_url {
        Some(endpoint) => crate::logfiles::s3_buckets(Some(endpoint.clone()), REGION, credentials),
        None => {
            let buckets = cairn_server::buckets::Buckets::local(root.clone());
            buckets
                .create_local(BUCKET)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            buckets
        }
    };
    let bucket = Bucket {
        buckets,
        runtime: tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?,
    };
    let began = Instant::now();
    let data = work.path().join("data");
    let (start, inflated) = build_bucket(&args, &bucket, &data, work.path())?;
    let cores = crate::logfiles::cores();
    println!(
        "cairn bench validate: {} log files of {} KB ({:.0} MB uncompressed), {} hourly digests; built in {:.1} s; {cores} cores",
        args.files,
        args.file_kb,
        inflated as f64 / 1e6,
        args.hours,
        began.elapsed().as_secs_f64()
    );
    if let Some(endpoint) = &args.s3_endpoint_url {
        return on_s3(&args, endpoint, &bucket, work.path(), start, inflated);
    }
    for (label, jobs) in [("one job", 1), ("all cores", 2 * cores)] {
        let (seconds, report) = validate(&root, work.path(), start, args.hours, jobs)?;
        let files = report["logs"]["valid"].as_u64().unwrap_or(0);
        let digests = report["digests"]["valid"].as_u64().unwrap_or(0);
        println!(
            "  {label:>9}: {digests} digests, {files} log files valid in {seconds:.2} s: {:.0} files/s, {:.0} MB/s uncompressed",
            files as f64 / seconds,
            inflated as f64 / 1e6 / seconds
        );
    }
    Ok(())
}

/// Times both validators against the S3 server holding the bucket, with a `cairn serve` on
/// the signing keys' data directory answering ListPublicKeys; then what the S3 server
/// answers per second on its own.
fn on_s3(
    args: &Args,
    endpoint: &str,
    bucket: &Bucket,
    work: &Path,
    start: i64,
    inflated: u64,
) -> anyhow::Result<()> {
    let (server, host) = super::ingest::start_server(work, "", "")?;
    let compared = compare(args, endpoint, &host, bucket, inflated, start);
    // Stopped whatever the comparison gave: it holds the terminal's output open.
    super::ingest::stop_server(server)?;
    compared
}

fn compare(
    args: &Args,
    endpoint: &str,
    host: &str,
    bucket: &Bucket,
    inflated: u64,
    start: i64,
) -> anyhow::Result<()> {
    let credentials = super::ingest::credentials();
    let end = start + args.hours as i64 * 3600;
    let run = |program: &str, head: &[&str], tail: &[&str]| -> anyhow::Result<(f64, Vec<u8>)> {
        let began = Instant::now();
        let out = std::process::Command::new(program)
            .args(head)
            .args(["--trail-arn", &trail_arn(), "--region", REGION])
            .args(["--s3-bucket", BUCKET])
            .args(["--endpoint-url", &format!("http://{host}")])
            .args(["--start-time", &format_event_time(start)])
            .args(["--end-time", &format_event_time(end)])
            .args(tail)
            .env("AWS_ACCESS_KEY_ID", &credentials.access_key_id)
            .env("AWS_SECRET_ACCESS_KEY", &credentials.secret_access_key)
            .env("AWS_ENDPOINT_URL_S3", endpoint)
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .env_remove("AWS_PROFILE")
            .output()
            .with_context(|| format!("running {program}"))?;
        if !out.status.success() {
            anyhow::bail!(
                "{program} validate-logs failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok((began.elapsed().as_secs_f64(), out.stdout))
    };
    let line = |who: &str, seconds: f64| {
        println!(
            "  {who:>20}: {} log files in {seconds:.2} s: {:.0} files/s, {:.0} MB/s uncompressed",
            args.files,
            args.files as f64 / seconds,
            inflated as f64 / 1e6 / seconds
        );
    };
    let cairn = std::env::current_exe()?;
    let cairn = cairn.to_str().context("the executable's path")?;
    let (seconds, stdout) = run(cairn, &["validate-logs"], &["--output", "json"])?;
    valid_report(&stdout)?;
    line("cairn validate-logs", seconds);
    match run("aws", &["cloudtrail", "validate-logs"], &[]) {
        Ok((seconds, stdout)) => {
            let text = String::from_utf8_lossy(&stdout);
            let all_valid = format!("{}/{} log files valid", args.files, args.files);
            anyhow::ensure!(text.contains(&all_valid), "the AWS CLI said: {text}");
            line("aws (AWS CLI)", seconds);
        }
        Err(error) => println!("  the AWS CLI was not timed: {error}"),
    }
    let (requests, seconds) = server_ceiling(bucket)?;
    println!(
        "  the S3 server alone: {requests} GETs of a digest, 16 at a time, in {seconds:.2} s: {:.0} requests/s",
        requests as f64 / seconds
    );
    Ok(())
}

/// GETs the first digest many times, 16 at a time: what the S3 server serves per second.
fn server_ceiling(bucket: &Bucket) -> anyhow::Result<(usize, f64)> {
    use futures_util::StreamExt as _;
    let runtime = &bucket.runtime;
    let prefix = format!("AWSLogs/{ACCOUNT}/CloudTrail-Digest/{REGION}/");
    let keys = runtime
        .block_on(bucket.buckets.list(BUCKET, &prefix))
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let key = keys.first().context("no digest in the bucket")?;
    const REQUESTS: usize = 2000;
    let began = Instant::now();
    let fetched = runtime.block_on(
        futures_util::stream::iter(0..REQUESTS)
            .map(|_| bucket.buckets.get(BUCKET, key))
            .buffer_unordered(16)
            .filter(|got| std::future::ready(matches!(got, Ok(Some(_)))))
            .count(),
    );
    anyhow::ensure!(fetched == REQUESTS, "{} GETs failed", REQUESTS - fetched);
    Ok((REQUESTS, began.elapsed().as_secs_f64()))
}
