//! `cairn bench lookup`: builds a realistic event history through the real store (journal,
//! group commit, runs) and measures what the foundation promises: LookupEvents latency
//! per attribute, bytes on disk per event, the cost of expiring a day, and peak memory.

use std::path::PathBuf;
use std::time::Instant;

use cairn_core::timefmt::{day_of, SECONDS_PER_DAY};
use cairn_core::LookupKey;
use cairn_store::{Event, LookupQuery, Store, StoreOptions};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::gen::{
    dir_bytes, peak_rss_mb, percentile, Generator, WorkDir, ACCOUNTS, CALLS, REGIONS,
};

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

pub fn run(args: Args) -> anyhow::Result<()> {
    let work = WorkDir::new(args.dir.clone())?;
    let dir = work.path().to_owned();
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
    // No trail or log group reads this journal: segments go once the history holds them.
    store.retain_from(u64::MAX);
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
    println!("peak RSS: {:.0} MB", peak_rss_mb(None));
    store.close();
    Ok(())
}
