//! `cairn bench freshness`: how soon an acknowledged event is counted in `/metrics`.
//!
//! A real `cairn serve` with a trail sending to a log group that carries the 15 CIS
//! metric filters and one that counts every event. Signed bulk batches go in at a fixed
//! rate on one connection while a poller reads `/metrics` every few milliseconds; an
//! event's freshness is the time from its batch's acknowledgement to the first scrape
//! whose count includes it.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::json;
use tokio::io::BufReader as AsyncBufReader;
use tokio::net::TcpStream;

use super::gen::{percentile, WorkDir};
use super::ingest::{
    body, call, exchange, start_server, stop_server, templates, Target, ACCOUNT, REGION,
};

#[derive(clap::Args)]
pub struct Args {
    /// Events per second to send.
    #[arg(long, default_value_t = 5_000)]
    rate: u64,
    /// How long to send, in seconds.
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// Data directory for the server (default: a temporary one).
    #[arg(long)]
    dir: Option<PathBuf>,
}

const BATCH: u64 = 100;
const GROUP: &str = "bench/cloudtrail";
const POLL: Duration = Duration::from_millis(5);

/// The `AllEvents` counter in a `/metrics` page.
fn all_events(page: &str) -> Option<f64> {
    page.lines()
        .find(|l| {
            l.starts_with("cairn_log_metric_total{") && l.contains("metric_name=\"AllEvents\"")
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

async fn scrape(client: &reqwest::Client, url: &str) -> anyhow::Result<Option<f64>> {
    let page = client.get(url).send().await?.text().await?;
    Ok(all_events(&page))
}

pub fn run(args: Args) -> anyhow::Result<()> {
    if args.rate == 0 {
        bail!("--rate must be at least 1");
    }
    let work = WorkDir::new(args.dir.clone())?;
    let (server, host) = start_server(work.path(), "buckets = [\"bench-bucket\"]", "")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("bench-client")
        .enable_all()
        .build()?;
    let url = format!("http://{host}/metrics");
    println!(
        "cairn bench freshness: {} events/s for {} s into a trail's log group with {} metric filters",
        args.rate,
        args.seconds,
        cairn_filter::cis::CONTROLS.len() + 1
    );
    let report = runtime.block_on(async {
        let logs = |op: &str| format!("Logs_20140328.{op}");
        call(&host, &logs("CreateLogGroup"), json!({"logGroupName": GROUP})).await?;
        let mut filters: Vec<(&str, &str)> = cairn_filter::cis::CONTROLS
            .iter()
            .map(|c| (c.metric, c.pattern))
            .collect();
        filters.push(("AllEvents", "{ $.eventID = * }"));
        for (metric, pattern) in filters {
            let transformation = json!({"metricName": metric, "metricNamespace": cairn_filter::cis::NAMESPACE,
                                        "metricValue": "1", "defaultValue": 0});
            call(&host, &logs("PutMetricFilter"), json!({"logGroupName": GROUP, "filterName": metric,
                "filterPattern": pattern, "metricTransformations": [transformation]})).await?;
        }
        let trail = |op: &str| format!("CloudTrail_20131101.{op}");
        call(&host, &trail("CreateTrail"), json!({"Name": "bench", "S3BucketName": "bench-bucket",
            "CloudWatchLogsLogGroupArn": format!("arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{GROUP}:*"),
            "CloudWatchLogsRoleArn": format!("arn:aws:iam::{ACCOUNT}:role/CloudTrail_CloudWatchLogs_Role")})).await?;
        call(&host, &trail("StartLogging"), json!({"Name": "bench"})).await?;
        // The count so far: StartLogging's own event goes to the group too.
        let client = reqwest::Client::new();
        let settle = Instant::now();
        let mut baseline = None;
        while settle.elapsed() < Duration::from_secs(10) {
            let now = scrape(&client, &url).await?;
            if now.is_some() && now == baseline {
                break;
            }
            baseline = now;
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        let baseline = baseline.context("the AllEvents metric never appeared")?;

        // The poller: (time, count) of every scrape.
        let scrapes: Arc<Mutex<Vec<(Instant, f64)>>> = Arc::default();
        let polling = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let poller = {
            let (scrapes, polling, client, url) = (scrapes.clone(), polling.clone(), client.clone(), url.clone());
            tokio::spawn(async move {
                while polling.load(std::sync::atomic::Ordering::Relaxed) {
                    if let Some(count) = scrape(&client, &url).await? {
                        scrapes.lock().expect("scrapes").push((Instant::now(), count));
                    }
                    tokio::time::sleep(POLL).await;
                }
                anyhow::Ok(())
            })
        };

        let templates = templates(crate::now());
        let mut stream = AsyncBufReader::new(TcpStream::connect(&host).await?);
        stream.get_mut().set_nodelay(true)?;
        let began = Instant::now();
        let mut acks = Vec::new();
        let total = args.rate * args.seconds;
        let mut sent = 0;
        while sent < total {
            let due = began + Duration::from_secs_f64(sent as f64 / args.rate as f64);
            tokio::time::sleep_until(due.into()).await;
            let batch = BATCH.min(total - sent);
            let (status, response) = exchange(&mut stream, &host, Target::Records, &body(&templates, 0, sent, batch, None)).await?;
            if status != 200 {
                bail!("batch refused ({status}): {}", String::from_utf8_lossy(&response));
            }
            sent += batch;
            acks.push((Instant::now(), baseline + sent as f64));
        }
        let wait_from = Instant::now();
        while scrapes.lock().expect("scrapes").last().is_none_or(|(_, c)| *c < baseline + sent as f64)
            && wait_from.elapsed() < Duration::from_secs(30)
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        polling.store(false, std::sync::atomic::Ordering::Relaxed);
        poller.await??;
        let scrapes = std::mem::take(&mut *scrapes.lock().expect("scrapes"));
        anyhow::Ok((sent, acks, scrapes, baseline))
    })?;
    stop_server(server)?;
    let (sent, acks, scrapes, baseline) = report;
    let counted = scrapes.last().map_or(0.0, |(_, c)| c - baseline);
    // Per batch: the first scrape at or after its acknowledgement that counts it.
    let mut ms = Vec::new();
    let mut missing = 0;
    for (acked, needed) in &acks {
        match scrapes.iter().find(|(t, c)| t >= acked && c >= needed) {
            Some((t, _)) => ms.push(t.duration_since(*acked).as_secs_f64() * 1000.0),
            None => missing += 1,
        }
    }
    ms.sort_by(|a, b| a.total_cmp(b));
    let within = ms.iter().filter(|m| **m <= 2000.0).count();
    println!(
        "sent {sent} events; counted {counted:.0}; {} scrapes",
        scrapes.len()
    );
    println!(
        "acknowledgement → counted in /metrics ({} ms polling): p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms; {:.2}% within 2 s",
        POLL.as_millis(),
        percentile(&ms, 0.5),
        percentile(&ms, 0.99),
        ms.last().copied().unwrap_or(0.0),
        within as f64 * 100.0 / acks.len().max(1) as f64
    );
    if missing > 0 || counted != sent as f64 {
        bail!("{missing} batches never counted; counted {counted} of {sent}");
    }
    Ok(())
}
