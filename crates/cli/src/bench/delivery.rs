//! `cairn bench delivery`: a real `cairn serve` with trails logging, fed with signed bulk
//! batches at a fixed rate (or as fast as it takes them), while a watcher lists the bucket
//! and reads each new log file. Prints, per event, the time from its batch's
//! acknowledgement to its file being readable, and whether delivery kept up.

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::bail;
use cairn_server::buckets::Buckets;
use tokio::io::BufReader as AsyncBufReader;
use tokio::net::TcpStream;

use super::gen::{percentile, WorkDir};
use super::ingest::{body, call, exchange, start_server, stop_server, templates, Target, Template};

#[derive(clap::Args)]
pub struct Args {
    /// Events per second to send; 0 sends as fast as the server acknowledges.
    #[arg(long, default_value_t = 10_000)]
    rate: u64,
    /// How long to send, in seconds.
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// Trails logging at once (1 to 5): single- and multi-region, the odd ones with
    /// write-only selectors.
    #[arg(long, default_value_t = 1)]
    trails: u64,
    /// Delivery interval in milliseconds.
    #[arg(long, default_value_t = 1000)]
    interval_ms: u64,
    /// Deliver to this S3-compatible endpoint (bucket `bench-bucket` must exist there)
    /// instead of the local store.
    #[arg(long)]
    s3_endpoint: Option<String>,
    /// Concurrent client connections.
    #[arg(long, default_value_t = 4)]
    connections: u64,
    /// Data directory for the server (default: a temporary one).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Measure the delivery pipeline on its own instead: record this many events with
    /// delivery held back (a 15-minute interval), then time the server's SIGTERM, which
    /// delivers every recorded event to every trail before it exits. Sent in whole
    /// batches on every connection, so rounded up.
    #[arg(long)]
    backlog: Option<u64>,
    /// Turn log file validation on for every trail, with a digest every this many seconds
    /// (per trail and region): what signing digests costs delivery.
    #[arg(long)]
    digest_period_secs: Option<i64>,
    /// Turn Insights on for every trail (both types) and stamp each batch with the time
    /// it is sent; report the events the server's Insights consumer read and the CPU time
    /// it used (from `/metrics`).
    #[arg(long)]
    insights: bool,
}

const BUCKET: &str = "bench-bucket";
const BATCH: u64 = 100;

/// When each batch was acknowledged, by the batch's (connection, first record number).
type Acks = Arc<Mutex<HashMap<(u64, u64), Instant>>>;

fn s3_settings(endpoint: &str) -> cairn_server::config::S3Settings {
    cairn_server::config::S3Settings {
        endpoint: endpoint.to_owned(),
        region: "us-east-1".into(),
        access_key_id: "testing".into(),
        secret_access_key: "testing".into(),
        virtual_hosted_style: false,
    }
}

/// The bench's own events in a log file's JSON, as (connection, record number), found by
/// scanning: parsing every file fully would take the CPU the server is measured with. The
/// server's own events (CreateTrail, …) are passed over.
fn bench_events(json: &[u8]) -> impl Iterator<Item = (u64, u64)> + '_ {
    memchr::memmem::find_iter(json, b"\"eventID\":\"").filter_map(|at| {
        let id = json.get(at + 11..at + 47)?;
        std::str::from_utf8(id).ok().and_then(origin)
    })
}

/// (connection, record number) from a bench eventID `cccccccc-0000-4000-8000-nnnnnnnnnnnn`.
fn origin(event_id: &str) -> Option<(u64, u64)> {
    if event_id.get(8..24)? != "-0000-4000-8000-" {
        return None;
    }
    let connection = u64::from_str_radix(event_id.get(..8)?, 16).ok()?;
    let n = u64::from_str_radix(event_id.get(24..)?, 16).ok()?;
    Some((connection, n))
}

pub fn run(args: Args) -> anyhow::Result<()> {
    if !(1..=5).contains(&args.trails) {
        bail!("--trails is 1 to 5");
    }
    if args.connections == 0 {
        bail!("--connections must be at least 1");
    }
    if args.insights && args.backlog.is_some() {
        bail!("--insights measures events as they arrive; it does not go with --backlog");
    }
    let work = WorkDir::new(args.dir.clone())?;
    let dir = work.path().to_owned();
    let (top, tail) = match &args.s3_endpoint {
        None => (format!("buckets = [\"{BUCKET}\"]"), String::new()),
        Some(endpoint) => (
            String::new(),
            format!("[s3]\nendpoint = \"{endpoint}\"\naccess_key_id = \"testing\"\nsecret_access_key = \"testing\"\n"),
        ),
    };
    let interval_ms = if args.backlog.is_some() {
        900_000
    } else {
        args.interval_ms
    };
    let mut tail = format!("[delivery]\ninterval_ms = {interval_ms}\n{tail}");
    if let Some(period) = args.digest_period_secs {
        tail.push_str(&format!("[digests]\nperiod_secs = {period}\n"));
    }
    let (server, host) = start_server(&dir, &top, &tail)?;
    let buckets = Arc::new(match &args.s3_endpoint {
        None => Buckets::local(dir.join("data").join("buckets")),
        Some(endpoint) => Buckets::s3(s3_settings(endpoint)),
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("bench-client")
        .enable_all()
        .build()?;
    let templates = Arc::new(templates(crate::now()));
    if let Some(events) = args.backlog {
        return backlog(&args, events, &runtime, server, &host, &buckets, templates);
    }
    let batches_per_connection = if args.rate == 0 {
        u64::MAX
    } else {
        (args.rate * args.seconds).div_ceil(BATCH * args.connections)
    };
    println!(
        "cairn bench delivery: {} trail(s), {} ms interval, {} for {} s, to {}",
        args.trails,
        args.interval_ms,
        if args.rate == 0 {
            "as fast as acknowledged".to_owned()
        } else {
            format!("{} events/s", args.rate)
        },
        args.seconds,
        args.s3_endpoint.as_deref().unwrap_or("the local store")
    );

    let acks: Acks = Arc::default();
    let report = runtime.block_on(async {
        create_trails(
            &host,
            args.trails,
            args.digest_period_secs.is_some(),
            args.insights,
        )
        .await?;
        // The watcher: lists the first trail's folder and reads every new file.
        let watching = Arc::new(AtomicBool::new(true));
        let delivered_count = Arc::new(AtomicU64::new(0));
        let watcher = {
            let (buckets, acks, watching, count) = (
                buckets.clone(),
                acks.clone(),
                watching.clone(),
                delivered_count.clone(),
            );
            tokio::spawn(async move {
                let mut seen_files = HashSet::new();
                let mut latencies = Vec::new();
                let mut delivered = HashSet::new();
                // One buffer for every file: a fresh one per file costs page faults.
                let mut json = Vec::new();
                let prefix = "bench-trail-0/AWSLogs/";
                while watching.load(Ordering::Relaxed) {
                    let keys = buckets.list(BUCKET, prefix).await.unwrap_or_default();
                    let found = Instant::now();
                    for key in keys {
                        if !seen_files.insert(key.clone()) {
                            continue;
                        }
                        let Ok(Some(gzip)) = buckets.get(BUCKET, &key).await else {
                            continue;
                        };
                        json.clear();
                        flate2::read::GzDecoder::new(gzip.as_slice()).read_to_end(&mut json)?;
                        let acks = acks.lock().expect("acks");
                        for (c, n) in bench_events(&json) {
                            if let Some(acked) = acks.get(&(c, n - n % BATCH)) {
                                if delivered.insert((c, n)) {
                                    latencies.push(found.saturating_duration_since(*acked));
                                }
                            }
                        }
                    }
                    count.store(delivered.len() as u64, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                anyhow::Ok((latencies, delivered.len()))
            })
        };
        let began = Instant::now();
        let deadline = began + Duration::from_secs(args.seconds);
        let senders: Vec<_> = (0..args.connections)
            .map(|connection| {
                let sending = Sending {
                    host: host.clone(),
                    templates: templates.clone(),
                    acks: Some(acks.clone()),
                    connection,
                    batches: batches_per_connection,
                    rate: args.rate as f64 / args.connections as f64,
                    began,
                    deadline,
                    stamped: args.insights,
                };
                tokio::spawn(sending.run())
            })
            .collect();
        let mut sent = 0;
        for s in senders {
            sent += s.await??;
        }
        let sending = began.elapsed();
        // Wait for the first trail to have everything (or give up after a minute).
        let wait_from = Instant::now();
        while delivered_count.load(Ordering::Relaxed) < sent
            && wait_from.elapsed() < Duration::from_secs(60)
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let drained = wait_from.elapsed();
        watching.store(false, Ordering::Relaxed);
        let (latencies, delivered) = watcher.await??;
        let insights = if args.insights {
            Some(insights_usage(&host, sent).await?)
        } else {
            None
        };
        anyhow::Ok((sent, sending, drained, latencies, delivered, insights))
    })?;
    let (sent, sending, drained, latencies, delivered, insights) = report;
    let mut ms: Vec<f64> = latencies.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
    ms.sort_by(|a, b| a.total_cmp(b));
    println!(
        "ingest: {sent} events in {:.1} s ({:.0} events/s acknowledged)",
        sending.as_secs_f64(),
        sent as f64 / sending.as_secs_f64()
    );
    println!(
        "delivered to bench-trail-0: {delivered} of {sent} events; last file {:.1} s after the last acknowledgement",
        drained.as_secs_f64()
    );
    println!(
        "acknowledgement → readable in the bucket (50 ms polling): p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        percentile(&ms, 0.5),
        percentile(&ms, 0.99),
        ms.last().copied().unwrap_or(0.0)
    );
    if let Some((events, cpu)) = insights {
        let per_event = cpu / events.max(1) as f64;
        println!(
            "Insights consumer: read {events} events in {cpu:.3} s of CPU, {:.2} µs per event: \
             {:.1}% of one core at this run's {:.0} events/s, {:.1}% at 100,000 events/s",
            per_event * 1e6,
            per_event * sent as f64 / sending.as_secs_f64() * 100.0,
            sent as f64 / sending.as_secs_f64(),
            per_event * 100_000.0 * 100.0
        );
    }
    stop_server(server)?;
    if delivered as u64 != sent {
        bail!(
            "delivery did not keep up: {} events missing",
            sent - delivered as u64
        );
    }
    Ok(())
}

/// Creates the bench's trails and starts them logging: the odd ones multi-region, the
/// third and fifth with write-only selectors, the fourth with selectors for all; all with
/// log file validation when `validated`, both Insights types when `insights`.
async fn create_trails(
    host: &str,
    trails: u64,
    validated: bool,
    insights: bool,
) -> anyhow::Result<()> {
    for t in 0..trails {
        let name = format!("bench-trail-{t}");
        let multi = t % 2 == 1;
        let trail = serde_json::json!({"Name": name, "S3BucketName": BUCKET, "S3KeyPrefix": name,
            "IsMultiRegionTrail": multi, "EnableLogFileValidation": validated});
        call(host, "CloudTrail_20131101.CreateTrail", trail).await?;
        if t >= 2 {
            let selectors = serde_json::json!([{"ReadWriteType": if t % 2 == 0 { "WriteOnly" } else { "All" }}]);
            call(
                host,
                "CloudTrail_20131101.PutEventSelectors",
                serde_json::json!({"TrailName": name, "EventSelectors": selectors}),
            )
            .await?;
        }
        if insights {
            let selectors = serde_json::json!([{"InsightType": "ApiCallRateInsight"}, {"InsightType": "ApiErrorRateInsight"}]);
            call(
                host,
                "CloudTrail_20131101.PutInsightSelectors",
                serde_json::json!({"TrailName": name, "InsightSelectors": selectors}),
            )
            .await?;
        }
        call(
            host,
            "CloudTrail_20131101.StartLogging",
            serde_json::json!({"Name": name}),
        )
        .await?;
    }
    Ok(())
}

/// The server's Insights consumer's events read and CPU seconds, from `/metrics`, once it
/// has read at least the `sent` events (or after a minute).
async fn insights_usage(host: &str, sent: u64) -> anyhow::Result<(u64, f64)> {
    let started = Instant::now();
    loop {
        let text = reqwest::get(format!("http://{host}/metrics"))
            .await?
            .error_for_status()?
            .text()
            .await?;
        let value = |name: &str| {
            text.lines()
                .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
                .and_then(|v| v.trim().parse::<f64>().ok())
        };
        let events = value("cairn_insights_events_read_total").unwrap_or(0.0) as u64;
        let cpu = value("cairn_insights_cpu_seconds_total").unwrap_or(0.0);
        if events >= sent || started.elapsed() > Duration::from_secs(60) {
            return Ok((events, cpu));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// One client connection sending bulk batches, at a rate or as fast as acknowledged.
struct Sending {
    host: String,
    templates: Arc<Vec<Template>>,
    /// Where each acknowledged batch is noted, when someone reads it.
    acks: Option<Acks>,
    connection: u64,
    batches: u64,
    /// Events per second on this connection; 0 sends as fast as acknowledged.
    rate: f64,
    began: Instant,
    deadline: Instant,
    /// Stamp each batch with the time it is sent.
    stamped: bool,
}

impl Sending {
    /// Sends until the batches or the time are done; returns how many events were sent.
    async fn run(self) -> anyhow::Result<u64> {
        let mut stream = AsyncBufReader::new(TcpStream::connect(&self.host).await?);
        stream.get_mut().set_nodelay(true)?;
        let mut sent = 0u64;
        for b in 0..self.batches {
            if Instant::now() >= self.deadline {
                break;
            }
            if self.rate > 0.0 {
                let due = self.began + Duration::from_secs_f64(sent as f64 / self.rate);
                tokio::time::sleep_until(due.into()).await;
            }
            let first = b * BATCH;
            let time = self
                .stamped
                .then(|| cairn_core::timefmt::format_event_time(crate::now()));
            let body = body(
                &self.templates,
                self.connection,
                first,
                BATCH,
                time.as_deref(),
            );
            let (status, response) =
                exchange(&mut stream, &self.host, Target::Records, &body).await?;
            if status != 200 {
                bail!(
                    "batch refused ({status}): {}",
                    String::from_utf8_lossy(&response)
                );
            }
            if let Some(acks) = &self.acks {
                acks.lock()
                    .expect("acks")
                    .insert((self.connection, b * BATCH), Instant::now());
            }
            sent += BATCH;
        }
        Ok(sent)
    }
}

/// `--backlog`: records `events` while delivery waits, then times the shutdown that
/// delivers them, and checks that the first trail's files hold every event once.
fn backlog(
    args: &Args,
    events: u64,
    runtime: &tokio::runtime::Runtime,
    server: std::process::Child,
    host: &str,
    buckets: &Buckets,
    templates: Arc<Vec<Template>>,
) -> anyhow::Result<()> {
    println!(
        "cairn bench delivery --backlog: {events} events to {} trail(s), held back, then delivered at shutdown, to {}",
        args.trails,
        args.s3_endpoint.as_deref().unwrap_or("the local store")
    );
    let (sent, recording) = runtime.block_on(async {
        create_trails(host, args.trails, args.digest_period_secs.is_some(), false).await?;
        let began = Instant::now();
        let senders: Vec<_> = (0..args.connections)
            .map(|connection| {
                let sending = Sending {
                    host: host.to_owned(),
                    templates: templates.clone(),
                    acks: None,
                    connection,
                    batches: events.div_ceil(BATCH * args.connections),
                    rate: 0.0,
                    began,
                    deadline: began + Duration::from_secs(24 * 3600),
                    stamped: false,
                };
                tokio::spawn(sending.run())
            })
            .collect();
        let mut sent = 0;
        for s in senders {
            sent += s.await??;
        }
        anyhow::Ok((sent, began.elapsed()))
    })?;
    println!(
        "recorded: {sent} events in {:.1} s ({:.0} events/s), none delivered yet",
        recording.as_secs_f64(),
        sent as f64 / recording.as_secs_f64()
    );
    let stopping = Instant::now();
    stop_server(server)?;
    let delivering = stopping.elapsed();

    let (files, gzip_bytes, delivered) = runtime.block_on(async {
        let (mut files, mut gzip_bytes, mut ids) = (0, 0, HashSet::new());
        let mut json = Vec::new();
        for key in buckets.list(BUCKET, "bench-trail-0/AWSLogs/").await? {
            let Some(gzip) = buckets.get(BUCKET, &key).await? else {
                continue;
            };
            files += 1;
            gzip_bytes += gzip.len();
            json.clear();
            flate2::read::GzDecoder::new(gzip.as_slice()).read_to_end(&mut json)?;
            for (c, n) in bench_events(&json) {
                if !ids.insert((c, n)) {
                    bail!("event {n} of connection {c} delivered twice");
                }
            }
        }
        anyhow::Ok((files, gzip_bytes, ids.len() as u64))
    })?;
    println!(
        "delivered at shutdown to {} trail(s): {:.1} s from SIGTERM to exit, {:.0} events/s recorded-to-delivered",
        args.trails,
        delivering.as_secs_f64(),
        sent as f64 / delivering.as_secs_f64()
    );
    println!(
        "bench-trail-0: {delivered} of {sent} events in {files} files, {:.1} MB of gzip",
        gzip_bytes as f64 / 1e6
    );
    if delivered != sent {
        bail!("bench-trail-0 holds {delivered} of the {sent} events sent");
    }
    Ok(())
}
