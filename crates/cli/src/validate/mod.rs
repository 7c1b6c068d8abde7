//! `cairn validate-logs`: proves a trail's log files were not changed, deleted or added
//! to, from its signed digest chain. It takes the AWS CLI's arguments and reports in the
//! AWS CLI's words, and it also validates a local copy of a bucket with no service
//! running, works in parallel, reports log files no digest lists, and speaks JSON.

mod walk;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context};
use base64::Engine as _;
use cairn_core::digest::{ChainPattern, ListedLog};
use cairn_core::timefmt::{format_event_time, parse_event_time};
use cairn_server::buckets::Buckets;
use serde_json::{json, Value};

use crate::api_client::{self, Credentials};
use walk::{Finding, LogProblem, Source};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    Text,
    Json,
}

#[derive(clap::Args)]
pub struct Args {
    /// The trail's ARN.
    #[arg(long)]
    trail_arn: String,
    /// Validate log files delivered on or after this UTC time (e.g. 2026-01-08T05:21:42Z).
    #[arg(long)]
    start_time: String,
    /// Validate log files delivered on or before this UTC time. Default: now.
    #[arg(long)]
    end_time: Option<String>,
    /// The bucket holding the digests. Default: the trail's, from DescribeTrails.
    #[arg(long)]
    s3_bucket: Option<String>,
    /// The key prefix of the digests. Default: the trail's, from DescribeTrails.
    #[arg(long)]
    s3_prefix: Option<String>,
    /// The account whose logs to validate (a member account, for organization trails).
    #[arg(long)]
    account_id: Option<String>,
    /// The organization id, for an organization trail.
    #[arg(long)]
    organization_id: Option<String>,
    /// Also print every valid file.
    #[arg(long)]
    verbose: bool,
    /// The source region whose digests to validate. Default: the trail's home region.
    #[arg(long, env = "AWS_REGION")]
    region: Option<String>,
    /// The CloudTrail endpoint (Cairn's) for DescribeTrails and ListPublicKeys.
    #[arg(long, env = "AWS_ENDPOINT_URL_CLOUDTRAIL")]
    endpoint_url: Option<String>,
    /// The S3 endpoint holding the bucket.
    #[arg(long, env = "AWS_ENDPOINT_URL_S3")]
    s3_endpoint_url: Option<String>,
    /// Validate a local copy of the bucket: a directory whose contents are the bucket's keys.
    #[arg(long)]
    local: Option<PathBuf>,
    /// Public keys from a file (the JSON `aws cloudtrail list-public-keys` prints) instead
    /// of calling ListPublicKeys.
    #[arg(long)]
    public_keys: Option<PathBuf>,
    /// `text` (the AWS CLI's wording) or `json`.
    #[arg(long, value_enum, default_value = "text")]
    output: Output,
    /// Files fetched and hashed at once. Default: 64 from S3, twice the cores locally.
    #[arg(long)]
    jobs: Option<usize>,
}

/// Parses a time as the AWS CLI accepts it: ISO 8601 (UTC when no zone is given), a
/// date, or epoch seconds.
fn parse_time(text: &str) -> anyhow::Result<i64> {
    let text = text.trim();
    let candidates = [
        text.to_owned(),
        format!("{text}Z"),
        format!("{text}T00:00:00Z"),
        text.replace(' ', "T") + "Z",
    ];
    candidates
        .iter()
        .find_map(|t| parse_event_time(t))
        .or_else(|| text.parse::<i64>().ok())
        .with_context(|| format!("Unable to parse date value: {text}"))
}

/// The trail's account, home region and name, from its ARN.
fn parse_arn(arn: &str) -> anyhow::Result<(String, String, String)> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let valid = parts.len() == 6
        && parts[0] == "arn"
        && parts[2] == "cloudtrail"
        && parts[4].len() == 12
        && parts[4].bytes().all(|b| b.is_ascii_digit())
        && parts[5].starts_with("trail/")
        && parts[5].len() > "trail/".len();
    if !valid {
        bail!("Invalid trail ARN provided: {arn}");
    }
    let name = parts[5].rsplit('/').next().unwrap_or_default();
    Ok((parts[4].to_owned(), parts[3].to_owned(), name.to_owned()))
}

/// Where the trail's files are, from the arguments or DescribeTrails.
struct Location {
    bucket: String,
    prefix: Option<String>,
    organization: Option<String>,
}

async fn locate(
    args: &Args,
    region: &str,
    credentials: Option<&Credentials>,
) -> anyhow::Result<Location> {
    if let Some(bucket) = &args.s3_bucket {
        return Ok(Location {
            bucket: bucket.clone(),
            prefix: args.s3_prefix.clone(),
            organization: args.organization_id.clone(),
        });
    }
    let (Some(endpoint), Some(credentials)) = (&args.endpoint_url, credentials) else {
        bail!("--s3-bucket is needed when no --endpoint-url can describe the trail");
    };
    let trails =
        api_client::call(endpoint, region, credentials, "DescribeTrails", &json!({})).await?;
    let trail = trails["trailList"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|t| t["TrailARN"] == args.trail_arn.as_str())
        .with_context(|| format!("Trail not found: {}", args.trail_arn))?;
    let organization = if trail["IsOrganizationTrail"] == true {
        if args.account_id.is_none() {
            bail!("Missing required parameter for organization trail: '--account-id'");
        }
        Some(
            args.organization_id
                .clone()
                .context("an organization trail needs --organization-id")?,
        )
    } else {
        None
    };
    Ok(Location {
        bucket: trail["S3BucketName"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        prefix: args
            .s3_prefix
            .clone()
            .or(trail["S3KeyPrefix"].as_str().map(str::to_owned)),
        organization,
    })
}

/// Public keys by fingerprint: from a file, or ListPublicKeys over `[start, end]`.
async fn load_public_keys(
    args: &Args,
    region: &str,
    credentials: Option<&Credentials>,
    start: i64,
    end: i64,
) -> anyhow::Result<HashMap<String, Vec<u8>>> {
    let listing = match (&args.public_keys, &args.endpoint_url, credentials) {
        (Some(path), _, _) => {
            let text =
                std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            serde_json::from_slice::<Value>(&text)
                .with_context(|| format!("{} is not JSON", path.display()))?
        }
        (None, Some(endpoint), Some(credentials)) => {
            let input = json!({"StartTime": start, "EndTime": end});
            api_client::call(endpoint, region, credentials, "ListPublicKeys", &input).await?
        }
        _ => bail!("public keys come from --public-keys FILE or from --endpoint-url"),
    };
    let mut keys = HashMap::new();
    for key in listing["PublicKeyList"].as_array().into_iter().flatten() {
        let (Some(fingerprint), Some(value)) = (key["Fingerprint"].as_str(), key["Value"].as_str())
        else {
            continue;
        };
        if let Ok(der) = base64::engine::general_purpose::STANDARD.decode(value) {
            keys.insert(fingerprint.to_owned(), der);
        }
    }
    if keys.is_empty() {
        bail!(
            "No public keys found between {} and {}",
            format_event_time(start),
            format_event_time(end)
        );
    }
    Ok(keys)
}

fn source(
    args: &Args,
    bucket: &str,
    region: &str,
    credentials: Option<Credentials>,
) -> anyhow::Result<Source> {
    if let Some(dir) = &args.local {
        let dir = dir
            .canonicalize()
            .with_context(|| format!("{} cannot be read", dir.display()))?;
        let name = dir
            .file_name()
            .context("the local copy must be a directory")?
            .to_string_lossy()
            .into_owned();
        let root = dir.parent().context("the local copy must be a directory")?;
        return Ok(Source {
            buckets: Buckets::local(root.to_owned()),
            local: Some((bucket.to_owned(), name)),
        });
    }
    let credentials = credentials.map_or_else(Credentials::from_env, Ok)?;
    Ok(Source {
        buckets: crate::logfiles::s3_buckets(args.s3_endpoint_url.clone(), region, credentials),
        local: None,
    })
}

/// The delivery time in a log file's key (`…_YYYYMMDDTHHmmZ_<16>.json.gz`), epoch seconds.
fn log_key_time(key: &str) -> Option<i64> {
    let name = key.rsplit('/').next()?.strip_suffix(".json.gz")?;
    // `YYYYMMDDTHHmm` of `…_YYYYMMDDTHHmmZ_<16>`.
    let minute = name.get(name.len().checked_sub(31)?..name.len() - 18)?;
    cairn_core::timefmt::parse_compact(&format!("{minute}00Z"))
}

/// Log files of the chain's account and region delivered inside `found` that no digest
/// lists. Log keys carry their delivery minute; files of the last minute are left out, as
/// they may have been delivered after the newest digest closed.
async fn unlisted(
    source: &Source,
    pattern: &ChainPattern<'_>,
    bucket: &str,
    found: (i64, i64),
    listed: &HashSet<String>,
) -> anyhow::Result<Vec<String>> {
    let digest_prefix = pattern.list_prefix();
    let logs_prefix = digest_prefix.replace("/CloudTrail-Digest/", "/CloudTrail/");
    let (first_minute, last_minute) = (found.0 / 60 * 60, found.1 / 60 * 60);
    let mut out = Vec::new();
    let mut day = found.0 / 86_400;
    while day <= found.1 / 86_400 {
        let date = format_event_time(day * 86_400);
        let folder = format!(
            "{logs_prefix}/{}/{}/{}/",
            &date[0..4],
            &date[5..7],
            &date[8..10]
        );
        for key in source.list(bucket, &folder).await? {
            let inside = log_key_time(&key).is_some_and(|t| t >= first_minute && t < last_minute);
            if inside && !listed.contains(&key) {
                out.push(key);
            }
        }
        day += 1;
    }
    Ok(out)
}

/// Everything one run found.
struct Report {
    findings: Vec<Finding>,
    logs: Vec<(ListedLog, Result<u64, LogProblem>)>,
    unlisted: Vec<(String, String)>,
    found: Option<(i64, i64)>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let valid = runtime.block_on(validate(args))?;
    if !valid {
        std::process::exit(1);
    }
    Ok(())
}

async fn validate(args: Args) -> anyhow::Result<bool> {
    let began = Instant::now();
    let (trail_account, home_region, trail_name) = parse_arn(&args.trail_arn)?;
    let start = parse_time(&args.start_time)?;
    let end = match &args.end_time {
        Some(t) => parse_time(t)?,
        None => crate::now(),
    };
    if start > end {
        bail!("Invalid time range specified: start-time must occur before end-time");
    }
    let region = args.region.clone().unwrap_or_else(|| home_region.clone());
    let credentials = Credentials::from_env().ok();
    let location = locate(&args, &region, credentials.as_ref()).await?;
    let public_keys =
        load_public_keys(&args, &region, credentials.as_ref(), start, end + 7200).await?;
    let account = args.account_id.clone().unwrap_or(trail_account);
    let pattern = ChainPattern {
        prefix: location.prefix.as_deref(),
        organization: location.organization.as_deref(),
        account: &account,
        region: &region,
        trail_name: &trail_name,
        home_region: &home_region,
    };
    let source = Arc::new(source(&args, &location.bucket, &region, credentials)?);
    let jobs = args.jobs.unwrap_or_else(|| {
        if args.local.is_some() {
            2 * std::thread::available_parallelism().map_or(2, usize::from)
        } else {
            64
        }
    });
    if args.output == Output::Text {
        println!(
            "Validating log files for trail {} between {} and {}\n",
            args.trail_arn,
            format_event_time(start),
            format_event_time(end)
        );
    }

    let keys = source
        .list(&location.bucket, &pattern.list_prefix())
        .await?;
    let (standard, backfill) = walk::in_range(&keys, &pattern, start, end);
    let mut report = Report {
        findings: Vec::new(),
        logs: Vec::new(),
        unlisted: Vec::new(),
        found: None,
    };
    let mut to_check = Vec::new();
    let mut listed = HashSet::new();
    for (keys, is_backfill) in [(standard, false), (backfill, true)] {
        let fetched = walk::prefetch(&source, &location.bucket, &keys, jobs).await;
        let walked = walk::walk(
            &source,
            &pattern,
            &location.bucket,
            keys,
            fetched,
            &public_keys,
            start,
            is_backfill,
            &home_region,
        )
        .await;
        report.findings.extend(walked.findings);
        to_check.extend(walked.logs);
        listed.extend(walked.listed.into_iter().map(|l| l.key));
        report.found = match (report.found, walked.found) {
            (Some((s, e)), Some((s2, e2))) => Some((s.min(s2), e.max(e2))),
            (a, b) => a.or(b),
        };
    }

    let progress = if args.output == Output::Text {
        indicatif::ProgressBar::new(to_check.len() as u64).with_style(
            indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} log files, {eta} left")
                .expect("a valid template"),
        )
    } else {
        indicatif::ProgressBar::hidden()
    };
    let checked = check_logs(&source, to_check, jobs, &progress).await;
    progress.finish_and_clear();
    report.logs = checked;
    if let Some(found) = report.found {
        let found = (found.0.max(start), found.1.min(end));
        for key in unlisted(&source, &pattern, &location.bucket, found, &listed).await? {
            report.unlisted.push((location.bucket.clone(), key));
        }
    }
    let inflated: u64 = report
        .logs
        .iter()
        .filter_map(|(_, r)| r.as_ref().ok())
        .sum();
    let elapsed = began.elapsed();
    let valid = match args.output {
        Output::Text => print_text(&args, &report, start, end),
        Output::Json => print_json(&args, &report, start, end, elapsed, inflated),
    };
    tracing::debug!(
        seconds = elapsed.as_secs_f64(),
        mb = inflated as f64 / 1e6,
        "validation finished"
    );
    Ok(valid)
}

async fn check_logs(
    source: &Arc<Source>,
    logs: Vec<ListedLog>,
    jobs: usize,
    progress: &indicatif::ProgressBar,
) -> Vec<(ListedLog, Result<u64, LogProblem>)> {
    use futures_util::StreamExt;
    futures_util::stream::iter(logs)
        .map(|log| {
            let source = source.clone();
            async move {
                let result = walk::check_log(&source, &log).await;
                (log, result)
            }
        })
        .buffered(jobs.max(1))
        .inspect(|_| progress.inc(1))
        .collect()
        .await
}

/// Counts of (valid, invalid).
#[derive(Default)]
struct Tally {
    digests: (u64, u64),
    backfill: (u64, u64),
    logs: (u64, u64),
}

fn tally(report: &Report) -> Tally {
    let mut t = Tally::default();
    for finding in &report.findings {
        match finding {
            Finding::DigestValid { backfill, .. } => {
                if *backfill {
                    t.backfill.0 += 1
                } else {
                    t.digests.0 += 1
                }
            }
            Finding::DigestInvalid { backfill, .. } => {
                if *backfill {
                    t.backfill.1 += 1
                } else {
                    t.digests.1 += 1
                }
            }
            Finding::Gap { .. } => {}
        }
    }
    for (_, result) in &report.logs {
        if result.is_ok() {
            t.logs.0 += 1
        } else {
            t.logs.1 += 1
        }
    }
    t
}

/// Prints the AWS CLI's report (errors to stderr, valid files with --verbose, the summary)
/// and Cairn's extra finding: log files no digest lists. Returns whether all is valid.
fn print_text(args: &Args, report: &Report, start: i64, end: i64) -> bool {
    let mut out = String::new();
    let mut err = String::new();
    // The AWS CLI separates error lines with blank lines.
    let mut last_double = true;
    let mut status = |message: String, is_error: bool, out: &mut String, err: &mut String| {
        if is_error {
            if !last_double {
                err.push('\n');
            }
            err.push_str(&message);
            err.push_str("\n\n");
            last_double = true;
        } else if args.verbose {
            last_double = false;
            out.push_str(&message);
            out.push('\n');
        }
    };
    let log_line = |(log, result): &(ListedLog, Result<u64, LogProblem>)| match result {
        Ok(_) => format!("Log file\ts3://{}/{}\tvalid", log.bucket, log.key),
        Err(problem) => format!(
            "Log file\ts3://{}/{}\tINVALID: {}",
            log.bucket,
            log.key,
            problem.message()
        ),
    };
    // As the AWS CLI does: each valid digest, then the log files it lists.
    let mut logs = report.logs.iter();
    for finding in &report.findings {
        match finding {
            Finding::DigestValid {
                bucket,
                key,
                backfill,
                logs: listed,
            } => {
                status(
                    format!(
                        "{}Digest file\ts3://{bucket}/{key}\tvalid",
                        label(*backfill)
                    ),
                    false,
                    &mut out,
                    &mut err,
                );
                for log in logs.by_ref().take(*listed) {
                    status(log_line(log), log.1.is_err(), &mut out, &mut err);
                }
            }
            Finding::DigestInvalid {
                bucket,
                key,
                message,
                backfill,
            } => status(
                format!(
                    "{}Digest file\ts3://{bucket}/{key}\tINVALID: {message}",
                    label(*backfill)
                ),
                true,
                &mut out,
                &mut err,
            ),
            Finding::Gap { from, to, backfill } => status(
                format!(
                    "{}No log files were delivered by CloudTrail between {} and {}",
                    label(*backfill),
                    format_event_time(*from),
                    format_event_time(*to)
                ),
                true,
                &mut out,
                &mut err,
            ),
        }
    }
    for log in logs {
        status(log_line(log), log.1.is_err(), &mut out, &mut err);
    }
    for (bucket, key) in &report.unlisted {
        status(
            format!("Log file\ts3://{bucket}/{key}\tINVALID: not listed in any digest"),
            true,
            &mut out,
            &mut err,
        );
    }
    if !last_double {
        out.push('\n');
    }
    let t = tally(report);
    out.push_str(&format!(
        "Results requested for {} to {}\n",
        format_event_time(start),
        format_event_time(end)
    ));
    let no_digests = t.digests == (0, 0) && t.backfill == (0, 0);
    if no_digests {
        out.push_str("No digests found\n");
    } else {
        match report.found {
            Some((s, e)) => out.push_str(&format!(
                "Results found for {} to {}:\n",
                format_event_time(s.max(start)),
                format_event_time(e.min(end))
            )),
            None => out.push_str("No valid digests found in range\n"),
        }
        for ((valid, invalid), name) in [
            (t.digests, "digest"),
            (t.backfill, "backfill digest"),
            (t.logs, "log"),
        ] {
            let total = valid + invalid;
            if total > 0 {
                out.push_str(&format!("\n{valid}/{total} {name} files valid"));
                if invalid > 0 {
                    out.push_str(&format!(", {invalid}/{total} {name} files INVALID"));
                }
            }
        }
        if !report.unlisted.is_empty() {
            out.push_str(&format!(
                "\n{} log files are not listed in any digest",
                report.unlisted.len()
            ));
        }
        out.push('\n');
    }
    eprint!("{err}");
    print!("{out}");
    t.digests.1 + t.backfill.1 + t.logs.1 == 0 && report.unlisted.is_empty()
}

fn label(backfill: bool) -> &'static str {
    if backfill {
        "(backfill) "
    } else {
        ""
    }
}

fn print_json(
    args: &Args,
    report: &Report,
    start: i64,
    end: i64,
    elapsed: std::time::Duration,
    inflated: u64,
) -> bool {
    let t = tally(report);
    let counts = |(valid, invalid): (u64, u64)| json!({"valid": valid, "invalid": invalid});
    let mut problems = Vec::new();
    for finding in &report.findings {
        match finding {
            Finding::DigestInvalid {
                bucket,
                key,
                message,
                backfill,
            } => problems.push(json!({
                "kind": if *backfill { "backfillDigest" } else { "digest" },
                "s3Uri": format!("s3://{bucket}/{key}"),
                "problem": message,
            })),
            Finding::Gap { from, to, .. } => problems.push(json!({
                "kind": "gap",
                "from": format_event_time(*from),
                "to": format_event_time(*to),
            })),
            Finding::DigestValid { .. } => {}
        }
    }
    for (log, result) in &report.logs {
        if let Err(problem) = result {
            problems.push(json!({
                "kind": "log",
                "s3Uri": format!("s3://{}/{}", log.bucket, log.key),
                "problem": problem.message(),
            }));
        }
    }
    for (bucket, key) in &report.unlisted {
        problems.push(json!({
            "kind": "unlisted",
            "s3Uri": format!("s3://{bucket}/{key}"),
            "problem": "not listed in any digest",
        }));
    }
    let valid = problems.iter().all(|p| p["kind"] == "gap");
    let out = json!({
        "trailArn": args.trail_arn,
        "requested": {"start": format_event_time(start), "end": format_event_time(end)},
        "found": report.found.map(|(s, e)| json!({
            "start": format_event_time(s.max(start)),
            "end": format_event_time(e.min(end)),
        })),
        "digests": counts(t.digests),
        "backfillDigests": counts(t.backfill),
        "logs": counts(t.logs),
        "unlisted": report.unlisted.len(),
        "valid": valid,
        "problems": problems,
        "seconds": elapsed.as_secs_f64(),
        "uncompressedLogBytes": inflated,
    });
    println!("{}", serde_json::to_string_pretty(&out).expect("JSON"));
    valid
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_parse_as_the_aws_cli_takes_them() {
        assert_eq!(
            parse_arn("arn:aws:cloudtrail:us-east-1:111122223333:trail/main").unwrap(),
            ("111122223333".into(), "us-east-1".into(), "main".into())
        );
        assert!(parse_arn("arn:aws:cloudtrail:us-east-1:1111:trail/main").is_err());
        assert!(parse_arn("not an arn").is_err());
        let t = 1_767_225_600; // 2026-01-01T00:00:00Z
        for text in [
            "2026-01-01T00:00:00Z",
            "2026-01-01T00:00:00",
            "2026-01-01",
            "1767225600",
        ] {
            assert_eq!(parse_time(text).unwrap(), t, "{text}");
        }
        assert!(parse_time("yesterday").is_err());
        assert_eq!(
            log_key_time("p/AWSLogs/1/CloudTrail/r/2026/01/01/1_CloudTrail_r_20260101T0001Z_abcdefghijklmnop.json.gz"),
            Some(t + 60)
        );
        assert_eq!(log_key_time("short.json.gz"), None);
    }
}
