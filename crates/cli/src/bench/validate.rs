//! `cairn bench validate`: builds a bucket of hourly digest chains over gzip log files,
//! signed as the service signs them, then times `cairn validate-logs` on the local copy,
//! on one core and on all.

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use anyhow::Context;
use base64::Engine as _;
use cairn_core::layout::{unique_suffix, FileKey, FileKind};
use cairn_server::delivery::build::compress;
use cairn_server::delivery::digests::{self, Chain, DigestEntry, Generation};
use cairn_server::trails::Trail;

use super::gen::{Generator, WorkDir};

const ACCOUNT: &str = "111122223333";
const REGION: &str = "us-east-1";
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

fn write(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    std::fs::create_dir_all(path.parent().expect("a file in a folder"))?;
    std::fs::File::create(path)?.write_all(bytes)?;
    Ok(())
}

/// Writes the bucket and the public keys file; returns (start time, uncompressed bytes).
fn build_bucket(args: &Args, root: &Path, work: &Path) -> anyhow::Result<(i64, u64)> {
    let meta = cairn_store::MetaStore::open(&work.join("meta"))?;
    let keys = cairn_server::keys::Keys::new(work, 30 * 86_400);
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
    let bucket = root.join(BUCKET);
    let mut inflated = 0u64;
    for file in 0..args.files {
        let hour = file * args.hours / args.files;
        let time = start + hour as i64 * 3600 + (file % 3000) as i64;
        // Close the hours before this file's.
        while chain.start + 3600 <= time {
            let end = chain.start + 3600;
            write_digest(&bucket, &mut chain, &target, end, &signer)?;
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
        write(&bucket.join(&key), &compressed[body])?;
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
        write_digest(&bucket, &mut chain, &target, end, &signer)?;
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
    bucket: &Path,
    chain: &mut Chain,
    target: &digests::Target<'_>,
    end: i64,
    signer: &cairn_server::keys::Signer,
) -> anyhow::Result<()> {
    let digest = digests::close(chain, target, end, signer).map_err(anyhow::Error::msg)?;
    write(&bucket.join(&digest.key), &compress(&digest.json))?;
    let metadata = serde_json::json!({
        "signature": digest.signature,
        "signature-algorithm": cairn_core::digest::SIGNATURE_ALGORITHM,
    });
    write(
        &bucket.join(cairn_server::buckets::metadata_key(&digest.key)),
        metadata.to_string().as_bytes(),
    )
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
        .args(["validate-logs", "--trail-arn"])
        .arg(format!("arn:aws:cloudtrail:{REGION}:{ACCOUNT}:trail/bench"))
        .arg("--start-time")
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
    let report: serde_json::Value =
        serde_json::from_slice(&out.stdout).context("validate-logs printed no JSON report")?;
    if report["valid"] != true {
        anyhow::bail!("the benchmark bucket did not validate: {report}");
    }
    Ok((seconds, report))
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let work = WorkDir::new(args.dir.clone())?;
    let root = work.path().join("copy");
    let began = Instant::now();
    let (start, inflated) = build_bucket(&args, &root, work.path())?;
    let cores = crate::logfiles::cores();
    println!(
        "cairn bench validate: {} log files of {} KB ({:.0} MB uncompressed), {} hourly digests; built in {:.1} s; {cores} cores",
        args.files,
        args.file_kb,
        inflated as f64 / 1e6,
        args.hours,
        began.elapsed().as_secs_f64()
    );
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
