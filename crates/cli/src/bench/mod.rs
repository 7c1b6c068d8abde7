//! `cairn bench`: measurements that print figures. They report; they do not gate.

mod delivery;
mod freshness;
mod gen;
mod import;
mod ingest;
mod insights;
mod lookup;
mod metrics;
mod scan;
mod validate;

#[derive(clap::Subcommand)]
pub enum Bench {
    /// The event history: LookupEvents latency per attribute, bytes per event, expiry, memory.
    Lookup(lookup::Args),
    /// Durable ingest over HTTP: a real `cairn serve` and concurrent bulk-endpoint clients.
    Ingest(ingest::Args),
    /// Trail delivery: acknowledgement-to-readable latency and whether delivery keeps up.
    Delivery(delivery::Args),
    /// Log groups: acknowledgement to counted in `/metrics`, through a trail and the CIS filters.
    Freshness(freshness::Args),
    /// `cairn import` of AWS-layout gzip log files into a fresh store.
    Import(import::Args),
    /// Insights: F1, detection delay and false Insights on labelled synthetic traffic, and
    /// what detection costs.
    Insights(insights::Args),
    /// What saving the Insights metrics (ListInsightsMetricData's counts) costs.
    Metrics(metrics::Args),
    /// `cairn insights scan` of AWS-layout gzip log files.
    Scan(scan::Args),
    /// `cairn validate-logs` on a local copy of a bucket of signed digest chains.
    Validate(validate::Args),
}

pub fn run(bench: Bench) -> anyhow::Result<()> {
    match bench {
        Bench::Lookup(args) => lookup::run(args),
        Bench::Ingest(args) => ingest::run(args),
        Bench::Import(args) => import::run(args),
        Bench::Delivery(args) => delivery::run(args),
        Bench::Freshness(args) => freshness::run(args),
        Bench::Validate(args) => validate::run(args),
        Bench::Insights(args) => insights::run(args),
        Bench::Metrics(args) => metrics::run(args),
        Bench::Scan(args) => scan::run(args),
    }
}
