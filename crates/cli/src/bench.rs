//! `cairn bench`: builds a realistic event history through the real store (journal,
//! group commit, runs) and measures what the foundation promises: LookupEvents latency
//! per attribute, bytes on disk per event, the cost of expiring a day, and peak memory.

use std::path::PathBuf;
use std::time::Instant;

use cairn_core::timefmt::{day_of, format_event_time, SECONDS_PER_DAY};
use cairn_core::LookupKey;
use cairn_store::{Event, LookupQuery, Store, StoreOptions};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

#[derive(clap::Args)]
pub struct Args {
    /// How many events to build the history from.
    #[arg(long, default_value_t = 1_000_000)]
    events: u64,
    /// How many days they spread over.
    #[arg(long, default_value_t = 90)]
    days: i64,
    /// Queries timed per attribute.
    #[arg(long, default_value_t = 500)]
    queries: usize,
    /// Where to build the history (default: a temporary directory, removed afterwards).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Threads appending concurrently (their commits are grouped).
    #[arg(long, default_value_t = 4)]
    writers: u64,
}

const ACCOUNTS: [&str; 3] = ["123456789012", "111122223333", "444455556666"];
const REGIONS: [&str; 3] = ["us-east-1", "eu-west-1", "ap-southeast-2"];

/// (eventSource, eventName, readOnly, resource type)
const CALLS: &[(&str, &str, bool, &str)] = &[
    ("ec2.amazonaws.com", "DescribeInstances", true, ""),
    (
        "ec2.amazonaws.com",
        "RunInstances",
        false,
        "AWS::EC2::Instance",
    ),
    (
        "ec2.amazonaws.com",
        "TerminateInstances",
        false,
        "AWS::EC2::Instance",
    ),
    (
        "ec2.amazonaws.com",
        "AuthorizeSecurityGroupIngress",
        false,
        "AWS::EC2::SecurityGroup",
    ),
    ("ec2.amazonaws.com", "DescribeSecurityGroups", true, ""),
    ("s3.amazonaws.com", "ListBuckets", true, ""),
    ("s3.amazonaws.com", "CreateBucket", false, "AWS::S3::Bucket"),
    (
        "s3.amazonaws.com",
        "PutBucketPolicy",
        false,
        "AWS::S3::Bucket",
    ),
    ("s3.amazonaws.com", "GetBucketAcl", true, "AWS::S3::Bucket"),
    ("iam.amazonaws.com", "GetUser", true, ""),
    ("iam.amazonaws.com", "CreateRole", false, "AWS::IAM::Role"),
    (
        "iam.amazonaws.com",
        "AttachRolePolicy",
        false,
        "AWS::IAM::Role",
    ),
    ("iam.amazonaws.com", "ListRoles", true, ""),
    ("sts.amazonaws.com", "AssumeRole", true, "AWS::IAM::Role"),
    ("sts.amazonaws.com", "GetCallerIdentity", true, ""),
    ("kms.amazonaws.com", "Decrypt", true, "AWS::KMS::Key"),
    (
        "kms.amazonaws.com",
        "GenerateDataKey",
        true,
        "AWS::KMS::Key",
    ),
    ("lambda.amazonaws.com", "ListFunctions20150331", true, ""),
    (
        "lambda.amazonaws.com",
        "UpdateFunctionCode20150331v2",
        false,
        "AWS::Lambda::Function",
    ),
    ("cloudtrail.amazonaws.com", "LookupEvents", true, ""),
    ("cloudtrail.amazonaws.com", "DescribeTrails", true, ""),
    (
        "cloudtrail.amazonaws.com",
        "StopLogging",
        false,
        "AWS::CloudTrail::Trail",
    ),
    ("rds.amazonaws.com", "DescribeDBInstances", true, ""),
    (
        "secretsmanager.amazonaws.com",
        "GetSecretValue",
        true,
        "AWS::SecretsManager::Secret",
    ),
    ("ssm.amazonaws.com", "GetParameter", true, ""),
    (
        "logs.amazonaws.com",
        "CreateLogStream",
        false,
        "AWS::Logs::LogGroup",
    ),
];

const AGENTS: [&str; 5] = [
    "aws-cli/2.15.30 md/awscrt#0.19.19 ua/2.0 os/linux#6.5.0-1014-aws md/arch#x86_64 lang/python#3.11.8 md/installer#exe md/distrib#ubuntu.22 md/prompt#off md/command#",
    "Boto3/1.34.69 md/Botocore#1.34.69 ua/2.0 os/linux#5.10.210-201.852.amzn2.x86_64 md/arch#x86_64 lang/python#3.12.2 md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1.34.69",
    "aws-sdk-go-v2/1.26.0 os/linux lang/go#1.22.1 md/GOOS#linux md/GOARCH#amd64 api/",
    "console.amazonaws.com",
    "Terraform/1.7.5 (+https://www.terraform.io) terraform-provider-aws/5.42.0 (+https://registry.terraform.io/providers/hashicorp/aws) aws-sdk-go-v2/1.26.0 os/linux lang/go#1.22.1",
];

struct Generator {
    rng: StdRng,
    users: Vec<(String, String, String)>, // (kind, name, access key)
}

impl Generator {
    fn new(seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut users = Vec::new();
        for i in 0..40 {
            let kind = match i % 5 {
                0 => "Root",
                1 | 2 => "IAMUser",
                _ => "AssumedRole",
            };
            let name = match kind {
                "Root" => "root".to_owned(),
                "IAMUser" => format!("user-{i:02}"),
                _ => format!("session-{i:02}"),
            };
            let key: String = (0..16)
                .map(|_| char::from(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"[rng.random_range(0..32)]))
                .collect();
            let prefix = if kind == "AssumedRole" {
                "ASIA"
            } else {
                "AKIA"
            };
            users.push((kind.to_owned(), name, format!("{prefix}{key}")));
        }
        Generator { rng, users }
    }

    fn uuid(&mut self) -> String {
        let v: u128 = self.rng.random();
        let h = format!("{v:032x}");
        format!(
            "{}-{}-4{}-a{}-{}",
            &h[0..8],
            &h[8..12],
            &h[13..16],
            &h[17..20],
            &h[20..32]
        )
    }

    /// One record of roughly 1.2-1.8 KB.
    fn record(&mut self, time: i64, account: &str, region: &str) -> Vec<u8> {
        let (source, name, read_only, resource_type) = CALLS[self.rng.random_range(0..CALLS.len())];
        let (kind, user, key) = self.users[self.rng.random_range(0..self.users.len())].clone();
        let identity = match kind.as_str() {
            "Root" => format!(
                r#"{{"type":"Root","principalId":"{account}","arn":"arn:aws:iam::{account}:root","accountId":"{account}","accessKeyId":"{key}"}}"#
            ),
            "IAMUser" => format!(
                r#"{{"type":"IAMUser","principalId":"AIDA{}","arn":"arn:aws:iam::{account}:user/{user}","accountId":"{account}","accessKeyId":"{key}","userName":"{user}"}}"#,
                &key[4..]
            ),
            _ => format!(
                r#"{{"type":"AssumedRole","principalId":"AROA{k}:{user}","arn":"arn:aws:sts::{account}:assumed-role/Deployer/{user}","accountId":"{account}","accessKeyId":"{key}","sessionContext":{{"sessionIssuer":{{"type":"Role","principalId":"AROA{k}","arn":"arn:aws:iam::{account}:role/Deployer","accountId":"{account}","userName":"Deployer"}},"attributes":{{"creationDate":"{c}","mfaAuthenticated":"false"}}}}}}"#,
                k = &key[4..],
                c = format_event_time(time - 600)
            ),
        };
        let resource_id = self.rng.random_range(0..5000u32);
        let (params, resources) = if resource_type.is_empty() {
            (r#"{"maxResults":100,"filterSet":{"items":[{"name":"instance-state-name","valueSet":{"items":[{"value":"running"}]}}]}}"#.to_owned(), String::new())
        } else {
            let arn = match resource_type {
                "AWS::S3::Bucket" => format!("arn:aws:s3:::bucket-{resource_id}"),
                "AWS::IAM::Role" => format!("arn:aws:iam::{account}:role/role-{resource_id}"),
                "AWS::EC2::Instance" => {
                    format!("arn:aws:ec2:{region}:{account}:instance/i-{resource_id:017x}")
                }
                _ => format!(
                    "arn:aws:{}:{region}:{account}:resource/r-{resource_id}",
                    source.split('.').next().unwrap_or("x")
                ),
            };
            (
                format!(
                    r#"{{"resourceArn":"{arn}","description":"managed by automation","tags":[{{"key":"team","value":"platform"}},{{"key":"env","value":"prod"}}]}}"#
                ),
                format!(
                    r#","resources":[{{"accountId":"{account}","type":"{resource_type}","ARN":"{arn}"}}]"#
                ),
            )
        };
        let error = if self.rng.random_range(0..100) < 6 {
            r#","errorCode":"AccessDenied","errorMessage":"User is not authorized to perform this operation because no identity-based policy allows the action""#
        } else {
            ""
        };
        let response = if read_only || !error.is_empty() {
            "null".to_owned()
        } else {
            format!(r#"{{"requestId":"{}","return":true}}"#, self.uuid())
        };
        let agent = AGENTS[self.rng.random_range(0..AGENTS.len())];
        let ip = format!(
            "203.0.{}.{}",
            self.rng.random_range(0..4),
            self.rng.random_range(1..255)
        );
        format!(
            r#"{{"eventVersion":"1.11","userIdentity":{identity},"eventTime":"{t}","eventSource":"{source}","eventName":"{name}","awsRegion":"{region}","sourceIPAddress":"{ip}","userAgent":"{agent}"{error},"requestParameters":{params},"responseElements":{response},"requestID":"{rid}","eventID":"{eid}","readOnly":{read_only}{resources},"eventType":"AwsApiCall","managementEvent":true,"recipientAccountId":"{account}","eventCategory":"Management","tlsDetails":{{"tlsVersion":"TLSv1.3","cipherSuite":"TLS_AES_128_GCM_SHA256","clientProvidedHostHeader":"{host}.{region}.amazonaws.com"}}}}"#,
            t = format_event_time(time),
            rid = self.uuid(),
            eid = self.uuid(),
            host = source.split('.').next().unwrap_or("x"),
        )
        .into_bytes()
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .map(str::to_owned)
        })
        .and_then(|l| {
            l.split_whitespace()
                .nth(1)
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

fn dir_bytes(path: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(path) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let temp;
    let dir = match &args.dir {
        Some(dir) => dir.clone(),
        None => {
            temp = tempfile::tempdir()?;
            temp.path().to_owned()
        }
    };
    let now = crate::now();
    let first_day = day_of(now) - args.days + 1;
    let span = args.days * SECONDS_PER_DAY;
    let start_time = first_day * SECONDS_PER_DAY;
    println!(
        "cairn bench: {} events over {} days, {} writer threads, data in {}",
        args.events,
        args.days,
        args.writers,
        dir.display()
    );

    // Ingest, in time order, through the real journal and group commit.
    let store = std::sync::Arc::new(Store::open(&dir, StoreOptions::default())?);
    let began = Instant::now();
    let mut record_bytes = 0u64;
    let per_writer = args.events / args.writers;
    let threads: Vec<_> = (0..args.writers)
        .map(|w| {
            let store = store.clone();
            std::thread::spawn(move || -> anyhow::Result<u64> {
                let mut generator = Generator::new(w + 1);
                let mut bytes = 0u64;
                let mut batch = Vec::with_capacity(500);
                for i in 0..per_writer {
                    let time = start_time + (i as i128 * span as i128 / per_writer as i128) as i64;
                    let n = w * per_writer + i;
                    let account = ACCOUNTS[(n % 7 % 3) as usize];
                    let region = REGIONS[(n % 5 % 3) as usize];
                    let record = generator.record(time, account, region);
                    bytes += record.len() as u64;
                    batch.push(Event::from_record(record)?);
                    if batch.len() == 500 {
                        store.append_blocking(std::mem::take(&mut batch))?;
                    }
                }
                store.append_blocking(batch)?;
                Ok(bytes)
            })
        })
        .collect();
    for t in threads {
        record_bytes += t.join().map_err(|_| anyhow::anyhow!("writer panicked"))??;
    }
    let ingest = began.elapsed();
    let total = per_writer * args.writers;
    println!(
        "ingest: {:.0} events/s durable ({} events, {:.1} s, mean record {:.0} B)",
        total as f64 / ingest.as_secs_f64(),
        total,
        ingest.as_secs_f64(),
        record_bytes as f64 / total as f64
    );
    let settle_began = Instant::now();
    store.flush()?;
    store.compact()?;
    println!(
        "flush of the last memtable and remaining compactions: {:.1} s",
        settle_began.elapsed().as_secs_f64()
    );

    let stats = store.stats();
    let history = dir_bytes(&dir.join("history"));
    let journal = dir_bytes(&dir.join("journal"));
    println!(
        "disk: {:.0} B/event (history {:.1} MB + journal {:.1} MB for {} events; raw records {:.0} B/event); {} runs over {} days; index in memory {:.1} MB",
        (history + journal) as f64 / total as f64,
        history as f64 / 1e6,
        journal as f64 / 1e6,
        total,
        record_bytes as f64 / total as f64,
        stats.history.runs,
        stats.history.days,
        stats.history.index_memory_bytes as f64 / 1e6
    );

    // Lookups: one-day windows, values that exist.
    let mut rng = StdRng::seed_from_u64(99);
    let sampler = Generator::new(1);
    let sample_value = |key: LookupKey, rng: &mut StdRng| -> String {
        match key {
            LookupKey::EventId | LookupKey::ResourceName => String::new(), // taken from real events
            LookupKey::EventName => CALLS[rng.random_range(0..CALLS.len())].1.to_owned(),
            LookupKey::EventSource => CALLS[rng.random_range(0..CALLS.len())].0.to_owned(),
            LookupKey::ReadOnly => (rng.random_range(0..2) == 0).to_string(),
            LookupKey::Username => sampler.users[rng.random_range(0..sampler.users.len())]
                .1
                .clone(),
            LookupKey::AccessKeyId => sampler.users[rng.random_range(0..sampler.users.len())]
                .2
                .clone(),
            LookupKey::ResourceType => [
                "AWS::EC2::Instance",
                "AWS::IAM::Role",
                "AWS::S3::Bucket",
                "AWS::KMS::Key",
            ][rng.random_range(0..4)]
            .to_owned(),
        }
    };
    let mut keys: Vec<Option<LookupKey>> = LookupKey::ALL.into_iter().map(Some).collect();
    keys.push(None);
    println!(
        "LookupEvents (MaxResults 50, one-day window, {} queries each, warm):",
        args.queries
    );
    for key in keys {
        let mut latencies = Vec::with_capacity(args.queries);
        let mut returned = 0usize;
        for _ in 0..args.queries {
            let account = ACCOUNTS[rng.random_range(0..3)];
            let region = REGIONS[rng.random_range(0..3)];
            let window_start = start_time + rng.random_range(0..span - SECONDS_PER_DAY);
            let mut query = LookupQuery {
                account: account.into(),
                region: region.into(),
                insights: false,
                start: window_start,
                end: window_start + SECONDS_PER_DAY,
                attribute: None,
                after: None,
                limit: 51,
            };
            if let Some(key) = key {
                let value = if matches!(key, LookupKey::EventId | LookupKey::ResourceName) {
                    // Values that exist in the window: taken from a real event there.
                    let probe = LookupQuery {
                        limit: 200,
                        ..query.clone()
                    };
                    let hits = store.lookup(&probe)?;
                    let fields: Vec<_> = hits
                        .iter()
                        .filter_map(|h| cairn_core::IndexFields::extract(&h.record).ok())
                        .filter(|f| key == LookupKey::EventId || f.attribute(key).is_some())
                        .collect();
                    if fields.is_empty() {
                        continue;
                    }
                    let f = &fields[rng.random_range(0..fields.len())];
                    match key {
                        LookupKey::EventId => f.event_id.clone(),
                        _ => f.attribute(key).unwrap_or_default().to_owned(),
                    }
                } else {
                    sample_value(key, &mut rng)
                };
                query.attribute = Some((key, value));
            }
            let began = Instant::now();
            let hits = store.lookup(&query)?;
            latencies.push(began.elapsed().as_secs_f64() * 1000.0);
            returned += hits.len();
        }
        latencies.sort_by(|a, b| a.total_cmp(b));
        println!(
            "  {:<14} p50 {:>6.3} ms  p99 {:>6.3} ms  max {:>6.3} ms  (mean {:.1} events returned)",
            key.map(|k| k.name()).unwrap_or("time range"),
            percentile(&latencies, 0.5),
            percentile(&latencies, 0.99),
            latencies.last().copied().unwrap_or(0.0),
            returned as f64 / latencies.len().max(1) as f64
        );
    }

    // Expire the oldest day.
    let before = store.stats().history;
    let began = Instant::now();
    let dropped = store.drop_before(first_day + 1)?;
    let took = began.elapsed();
    let after = store.stats().history;
    println!(
        "expire one day: {:.2} ms ({} day, {} events dropped)",
        took.as_secs_f64() * 1000.0,
        dropped,
        before.run_events - after.run_events
    );
    println!("peak RSS: {:.0} MB", peak_rss_mb());
    store.close();
    Ok(())
}
