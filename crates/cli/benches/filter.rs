//! Filter evaluation on realistic CloudTrail records, one core: a typical CIS pattern alone,
//! the whole CIS pack in one set, and, for scale, what building a `serde_json` tree of
//! each event costs. Reports events per second, throughput and bytes allocated per event.
//!
//! `cargo bench -p cairn --bench filter [-- EVENTS SECONDS]`

use cairn_filter::cis::CONTROLS;
use cairn_filter::{Filter, FilterSet, Pattern, Scratch};
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};
use std::alloc::System;
use std::hint::black_box;
use std::time::{Duration, Instant};

#[allow(dead_code)]
#[path = "../src/bench/gen.rs"]
mod gen;

/// The system allocator, counted (stats_alloc can wrap only it in a static on stable Rust).
#[global_allocator]
static ALLOCATOR: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

fn main() {
    let mut args = std::env::args().skip(1).filter(|a| !a.starts_with('-'));
    let count: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(20_000);
    let seconds: f64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(3.0);

    let mut generator = gen::Generator::new(7);
    let start = 1_790_000_000;
    let events: Vec<String> = (0..count)
        .map(|i| {
            let account = gen::ACCOUNTS[i % gen::ACCOUNTS.len()];
            let region = gen::REGIONS[i % gen::REGIONS.len()];
            String::from_utf8(generator.record(start + i as i64, account, region)).expect("UTF-8")
        })
        .collect();
    let bytes: usize = events.iter().map(String::len).sum();
    println!(
        "{count} generated CloudTrail records, {:.0} B on average; one core, {seconds} s per case",
        bytes as f64 / count as f64
    );
    println!(
        "{:<44} {:>12} {:>9} {:>9} {:>9} {:>8}",
        "case", "events/s", "MB/s", "ns/event", "B alloc", "matched"
    );

    let control = |id: &str| CONTROLS.iter().find(|c| c.id == id).expect("a control");
    for id in ["4.1", "4.3", "4.10"] {
        let c = control(id);
        let set = FilterSet::new(vec![Filter::new(
            Pattern::parse(c.pattern).expect("parses"),
        )]);
        measure(&format!("CIS {id} {}", c.title), &events, seconds, &set);
    }
    let pack = FilterSet::new(
        CONTROLS
            .iter()
            .map(|c| Filter::new(Pattern::parse(c.pattern).expect("parses")))
            .collect(),
    );
    measure("CIS pack: 15 filters, one scan", &events, seconds, &pack);

    // For scale: parsing each event into a tree, which filtering never does. "matched"
    // counts events with an errorCode, so the tree is used.
    let run = |events: &[String]| {
        let mut matched = 0;
        for event in events {
            let value: serde_json::Value = serde_json::from_str(event).expect("valid JSON");
            matched += usize::from(value.get("errorCode").is_some());
        }
        matched
    };
    report(
        "reference: serde_json::Value per event",
        &events,
        seconds,
        run,
    );
}

fn measure(name: &str, events: &[String], seconds: f64, set: &FilterSet) {
    let mut scratch = Scratch::default();
    let filters = set.filters().len();
    let mut run = |events: &[String]| {
        let mut matched = 0;
        for event in events {
            set.evaluate(black_box(event), &mut scratch);
            matched += (0..filters).filter(|&i| set.is_match(&scratch, i)).count();
        }
        matched
    };
    report(name, events, seconds, &mut run);
}

fn report(name: &str, events: &[String], seconds: f64, mut run: impl FnMut(&[String]) -> usize) {
    let matched = run(events); // warm-up: buffers reach their working size
    let region = Region::new(ALLOCATOR);
    run(events);
    let allocated = region.change().bytes_allocated as f64 / events.len() as f64;

    let bytes: usize = events.iter().map(String::len).sum();
    let started = Instant::now();
    let mut passes = 0u64;
    while started.elapsed() < Duration::from_secs_f64(seconds) {
        black_box(run(events));
        passes += 1;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let per_second = (passes as f64 * events.len() as f64) / elapsed;
    println!(
        "{:<44} {:>12.0} {:>9.0} {:>9.0} {:>9.1} {:>8}",
        name,
        per_second,
        per_second * (bytes as f64 / events.len() as f64) / 1e6,
        1e9 / per_second,
        allocated,
        matched
    );
}
