//! `cairn bench ingest`: starts a real `cairn serve` on a loopback port and drives the bulk
//! endpoint (or, with `--api put-audit-events`, `PutAuditEvents` into a channel) from
//! concurrent keep-alive connections with signed 100-event batches of realistic events,
//! every batch acknowledged only once fsynced. Prints events/s, request latency
//! percentiles and the server's peak memory.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader as AsyncBufReader};
use tokio::net::TcpStream;

use super::gen::{peak_rss_mb, percentile, Generator, WorkDir};

#[derive(clap::Args)]
pub struct Args {
    /// Events to send in all.
    #[arg(long, default_value_t = 1_000_000)]
    events: u64,
    /// Concurrent client connections.
    #[arg(long, default_value_t = 8)]
    connections: u64,
    /// Records per request.
    #[arg(long, default_value_t = 100)]
    batch: u64,
    /// Data directory for the server (default: a temporary one).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Where the events go: the bulk endpoint (full CloudTrail records) or
    /// `cloudtrail-data:PutAuditEvents` (eventData through a channel).
    #[arg(long, value_enum, default_value_t = Api::Records)]
    api: Api,
    /// The server's ceiling on request bodies in memory, in MiB (its `max_inflight_bytes`);
    /// throttled batches are retried after 10 ms, as an SDK would.
    #[arg(long)]
    max_inflight_mib: Option<u64>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Api {
    Records,
    PutAuditEvents,
}

pub(super) const ACCOUNT: &str = "123456789012";
const KEY: &str = "AKIABENCH0000000001";
const SECRET: &str = "bench-secret-key-0000000000000000000001";
static CREDENTIALS: std::sync::LazyLock<crate::api_client::Credentials> =
    std::sync::LazyLock::new(credentials);

/// The bench user's key, which the bench server's configuration holds.
pub(super) fn credentials() -> crate::api_client::Credentials {
    crate::api_client::Credentials {
        access_key_id: KEY.into(),
        secret_access_key: SECRET.into(),
    }
}
pub(super) const REGION: &str = "us-east-1";

/// A record split around its eventID, so each use gets a fresh id by concatenation.
pub(super) struct Template {
    before: String,
    after: String,
    /// Where the eventTime value starts in `before`, for batches stamped with the time
    /// they are sent (a record's template; an eventData's has none).
    time_at: Option<usize>,
}

pub(super) fn templates(now: i64) -> Vec<Template> {
    let mut generator = Generator::new(42);
    (0..500)
        .map(|i| {
            let text = String::from_utf8(generator.record(now - 3600 + i, ACCOUNT, REGION))
                .expect("UTF-8");
            let at = text
                .find("\"eventID\":\"")
                .expect("records have an eventID")
                + "\"eventID\":\"".len();
            let end = at + text[at..].find('"').expect("closing quote");
            let time_at = text[..at]
                .find("\"eventTime\":\"")
                .expect("eventTime comes before eventID")
                + "\"eventTime\":\"".len();
            Template {
                before: text[..at].to_owned(),
                after: text[end..].to_owned(),
                time_at: Some(time_at),
            }
        })
        .collect()
}

impl Template {
    fn write(&self, out: &mut String, id: &str) {
        out.push_str(&self.before);
        out.push_str(id);
        out.push_str(&self.after);
    }

    /// Writes the record with eventTime `time` (`YYYY-MM-DDTHH:MM:SSZ`).
    fn write_at(&self, out: &mut String, id: &str, time: &str) {
        let at = self.time_at.expect("a record's template");
        out.push_str(&self.before[..at]);
        out.push_str(time);
        out.push_str(&self.before[at + time.len()..]);
        out.push_str(id);
        out.push_str(&self.after);
    }
}

/// `{"<member>":[…]}` with `count` events from the templates, each given an id unique per
/// (connection, number) and written by `item` (with its place in the batch).
fn batch(
    templates: &[Template],
    member: &str,
    connection: u64,
    first: u64,
    count: u64,
    item: impl Fn(&mut String, u64, &Template, &str),
) -> Vec<u8> {
    let mut out = String::with_capacity(count as usize * 1500 + 16);
    out.push_str(&format!("{{\"{member}\":["));
    for n in first..first + count {
        if n > first {
            out.push(',');
        }
        let t = &templates[(n % templates.len() as u64) as usize];
        item(
            &mut out,
            n - first,
            t,
            &format!("{connection:08x}-0000-4000-8000-{n:012x}"),
        );
    }
    out.push_str("]}");
    out.into_bytes()
}

/// A bulk-endpoint body of `count` records, stamped with eventTime `time` when given.
pub(super) fn body(
    templates: &[Template],
    connection: u64,
    first: u64,
    count: u64,
    time: Option<&str>,
) -> Vec<u8> {
    batch(
        templates,
        "Records",
        connection,
        first,
        count,
        |out, _, t, id| match time {
            Some(time) => t.write_at(out, id, time),
            None => t.write(out, id),
        },
    )
}

/// The same generated calls as `eventData` for `PutAuditEvents`: each JSON-escaped, ready
/// to be a string value, split around its `UID`.
fn audit_event_templates(now: i64) -> Vec<Template> {
    const UID: &str = "UID-GOES-HERE";
    let mut generator = Generator::new(42);
    (0..500)
        .map(|i| {
            let record: Value =
                serde_json::from_slice(&generator.record(now - 3600 + i, ACCOUNT, REGION))
                    .expect("generated records are JSON");
            let identity = &record["userIdentity"];
            let data = json!({
                "version": "1.0",
                "userIdentity": {
                    "type": identity["type"],
                    "principalId": identity["principalId"],
                    "details": identity,
                },
                "userAgent": record["userAgent"],
                "eventSource": record["eventSource"],
                "eventName": record["eventName"],
                "eventTime": record["eventTime"],
                "UID": UID,
                "requestParameters": record["requestParameters"],
                "responseElements": record["responseElements"],
                "sourceIPAddress": record["sourceIPAddress"],
                "recipientAccountId": ACCOUNT,
                "additionalEventData": record["tlsDetails"],
            });
            let escaped = serde_json::to_string(&data.to_string()).expect("a string");
            let (before, after) = escaped.split_once(UID).expect("the UID is in the data");
            Template {
                before: before.to_owned(),
                after: after.to_owned(),
                time_at: None,
            }
        })
        .collect()
}

/// A `PutAuditEvents` body of `count` events, the unique id as each one's UID.
fn audit_events_body(templates: &[Template], connection: u64, first: u64, count: u64) -> Vec<u8> {
    batch(
        templates,
        "auditEvents",
        connection,
        first,
        count,
        |out, index, t, uid| {
            out.push_str(&format!("{{\"id\":\"{index}\",\"eventData\":"));
            t.write(out, uid);
            out.push('}');
        },
    )
}

/// Where a request goes.
#[derive(Clone, Copy)]
pub(super) enum Target<'a> {
    /// The bulk endpoint, `POST /records`.
    Records,
    /// An operation: `CloudTrail_20131101.CreateTrail`, `Logs_20140328.CreateLogGroup`.
    Operation(&'a str),
    /// `PutAuditEvents` with this query (`channelArn=…`, encoded).
    PutAuditEvents(&'a str),
}

/// Sends one signed request on a keep-alive connection and returns (status, body).
pub(super) async fn exchange(
    stream: &mut AsyncBufReader<TcpStream>,
    host: &str,
    target: Target<'_>,
    body: &[u8],
) -> anyhow::Result<(u16, Vec<u8>)> {
    let (service, path, query, content_type, operation) = match target {
        Target::Records => (
            "cloudtrail",
            "/records",
            "",
            "application/x-amz-json-1.1",
            None,
        ),
        Target::Operation(operation) => (
            cairn_server::api::signing_name(operation),
            "/",
            "",
            "application/x-amz-json-1.1",
            Some(operation),
        ),
        Target::PutAuditEvents(query) => (
            "cloudtrail-data",
            "/PutAuditEvents",
            query,
            "application/json",
            None,
        ),
    };
    let (amz_date, authorization) =
        crate::api_client::authorization(&CREDENTIALS, service, REGION, host, path, query, body);
    let target = operation
        .map(|t| format!("X-Amz-Target: {t}\r\n"))
        .unwrap_or_default();
    let path_and_query = if query.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{query}")
    };
    let head = format!(
        "POST {path_and_query} HTTP/1.1\r\nHost: {host}\r\nContent-Type: {content_type}\r\n{target}X-Amz-Date: {amz_date}\r\nAuthorization: {authorization}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.get_mut().write_all(head.as_bytes()).await?;
    stream.get_mut().write_all(body).await?;
    let mut line = String::new();
    stream.read_line(&mut line).await?;
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("bad status line")?;
    let mut length = 0usize;
    loop {
        line.clear();
        stream.read_line(&mut line).await?;
        if line == "\r\n" || line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse()?;
            }
        }
    }
    let mut response = vec![0u8; length];
    stream.read_exact(&mut response).await?;
    Ok((status, response))
}

/// Calls an operation on a fresh connection and returns its JSON answer; an error answer
/// is an error.
pub(super) async fn call(host: &str, operation: &str, input: Value) -> anyhow::Result<Value> {
    let mut stream = AsyncBufReader::new(TcpStream::connect(host).await?);
    let (status, response) = exchange(
        &mut stream,
        host,
        Target::Operation(operation),
        input.to_string().as_bytes(),
    )
    .await?;
    if status != 200 {
        bail!(
            "{operation} failed ({status}): {}",
            String::from_utf8_lossy(&response)
        );
    }
    Ok(serde_json::from_slice(&response)?)
}

/// Starts `cairn serve` on a loopback port; `top` adds top-level settings, `tail` tables.
pub(super) fn start_server(
    dir: &std::path::Path,
    top: &str,
    tail: &str,
) -> anyhow::Result<(std::process::Child, String)> {
    let config = dir.join("bench.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:0\"\ndata_dir = \"{}\"\n{top}\n{tail}\n[[accounts]]\nid = \"{ACCOUNT}\"\nwrite_records_for = [\"*\"]\n[[accounts.users]]\nname = \"bench\"\naccess_key_id = \"{KEY}\"\nsecret_access_key = \"{SECRET}\"\n",
            dir.join("data").display()
        ),
    )?;
    let mut child = Command::new(std::env::current_exe()?)
        .args(["serve", "--config"])
        .arg(&config)
        .env("CAIRN_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .context("starting cairn serve")?;
    let stdout = child.stdout.take().context("server stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    while let Some(line) = lines.next().transpose()? {
        if let Some(at) = line.find("http://") {
            let host = line[at + 7..]
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_owned();
            // Keep draining the banner so the server never blocks on a full pipe.
            std::thread::spawn(move || lines.for_each(drop));
            return Ok((child, host));
        }
    }
    bail!("cairn serve exited before listening")
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let work = WorkDir::new(args.dir.clone())?;
    let dir = work.path().to_owned();
    let top = args
        .max_inflight_mib
        .map(|mib| {
            format!(
                "max_body_bytes = {}\nmax_inflight_bytes = {}",
                (mib << 20).min(8 << 20),
                mib << 20
            )
        })
        .unwrap_or_default();
    let (server, host) = start_server(&dir, &top, "")?;
    let throttled = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let now = crate::now();
    let (templates, what) = match args.api {
        Api::Records => (templates(now), "bulk-endpoint"),
        Api::PutAuditEvents => (audit_event_templates(now), "PutAuditEvents"),
    };
    let templates = std::sync::Arc::new(templates);
    let batches_per_connection = args.events / args.batch / args.connections;
    println!(
        "cairn bench ingest: {} events as {}-event signed {what} batches over {} connections to {host}",
        batches_per_connection * args.batch * args.connections,
        args.batch,
        args.connections
    );

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("bench-client")
        .enable_all()
        .build()?;
    // PutAuditEvents' query, the same for every batch.
    let channel: Option<String> = match args.api {
        Api::Records => None,
        Api::PutAuditEvents => {
            let arn = runtime.block_on(create_channel(&host))?;
            Some(format!("channelArn={}", cairn_server::sigv4::encode(&arn)))
        }
    };
    let began = Instant::now();
    let latencies: Vec<Duration> = runtime.block_on(async {
        let mut tasks = Vec::new();
        for connection in 0..args.connections {
            let (templates, host, batch) = (templates.clone(), host.clone(), args.batch);
            let (channel, throttled) = (channel.clone(), throttled.clone());
            tasks.push(tokio::spawn(async move {
                let mut stream = AsyncBufReader::new(TcpStream::connect(&host).await?);
                stream.get_mut().set_nodelay(true)?;
                let mut latencies = Vec::new();
                for b in 0..batches_per_connection {
                    let (target, body) = match &channel {
                        None => (
                            Target::Records,
                            body(&templates, connection, b * batch, batch, None),
                        ),
                        Some(query) => (
                            Target::PutAuditEvents(query),
                            audit_events_body(&templates, connection, b * batch, batch),
                        ),
                    };
                    let sent = Instant::now();
                    let (status, response) = loop {
                        let (status, response) =
                            exchange(&mut stream, &host, target, &body).await?;
                        if status != 429 {
                            break (status, response);
                        }
                        throttled.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    };
                    latencies.push(sent.elapsed());
                    if status != 200 || !response.windows(11).any(|w| w == b"\"failed\":[]") {
                        bail!(
                            "request refused ({status}): {}",
                            String::from_utf8_lossy(&response)
                        );
                    }
                }
                anyhow::Ok(latencies)
            }));
        }
        let mut all = Vec::new();
        for task in tasks {
            all.extend(task.await??);
        }
        anyhow::Ok(all)
    })?;
    let elapsed = began.elapsed();
    let events = latencies.len() as u64 * args.batch;
    let mut ms: Vec<f64> = latencies.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
    ms.sort_by(|a, b| a.total_cmp(b));
    println!(
        "durable ingest: {:.0} events/s ({} events in {:.1} s)",
        events as f64 / elapsed.as_secs_f64(),
        events,
        elapsed.as_secs_f64()
    );
    println!(
        "request latency ({}-event batches, throttled retries included): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        args.batch,
        percentile(&ms, 0.5),
        percentile(&ms, 0.99),
        ms.last().copied().unwrap_or(0.0)
    );
    println!(
        "throttled requests (ThrottlingException, retried): {}",
        throttled.load(std::sync::atomic::Ordering::Relaxed)
    );
    stop_server(server)
}

/// A channel for the bench's events, as a producer would create one.
async fn create_channel(host: &str) -> anyhow::Result<String> {
    let answer = call(
        host,
        "CloudTrail_20131101.CreateChannel",
        json!({
            "Name": "bench",
            "Source": "Custom",
            "Destinations": [{
                "Type": "EVENT_DATA_STORE",
                "Location": format!("arn:aws:cloudtrail:{REGION}:{ACCOUNT}:eventdatastore/00000000-0000-0000-0000-000000000001"),
            }],
        }),
    )
    .await?;
    answer["ChannelArn"]
        .as_str()
        .map(str::to_owned)
        .context("CreateChannel gave no ChannelArn")
}

/// Prints the server's peak memory and stops it.
pub(super) fn stop_server(mut server: std::process::Child) -> anyhow::Result<()> {
    let pid = server.id();
    println!("server peak RSS: {:.0} MB", peak_rss_mb(Some(pid)));
    Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()?;
    server.wait()?;
    Ok(())
}
