//! `cairn bench`: measurements that print figures. They report; they do not gate.

mod gen;
mod ingest;
mod lookup;

#[derive(clap::Subcommand)]
pub enum Bench {
    /// The event history: LookupEvents latency per attribute, bytes per event, expiry, memory.
    Lookup(lookup::Args),
    /// Durable ingest over HTTP: a real `cairn serve` and concurrent bulk-endpoint clients.
    Ingest(ingest::Args),
}

pub fn run(bench: Bench) -> anyhow::Result<()> {
    match bench {
        Bench::Lookup(args) => lookup::run(args),
        Bench::Ingest(args) => ingest::run(args),
    }
}
