//! The `cairn` command: `serve` runs the service; `import`, `insights scan`, `insights
//! plot` and `validate-logs` work on existing logs; `bench` measures.

mod api_client;
mod bench;
mod bulk_client;
mod chart;
mod import;
mod logfiles;
mod plot;
mod scan;
mod validate;

/// mimalloc returns memory freed on other threads promptly (events are allocated by
/// request threads and freed by the flusher), which keeps resident memory near the
/// working set.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::PathBuf;

use anyhow::Context;
use cairn_server::app::now;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "cairn",
    version,
    about = "A self-hosted, AWS-compatible CloudTrail"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the service (embedded default: ./cairn-data, 127.0.0.1:9450).
    Serve {
        /// A TOML config file; CAIRN_* environment variables override it.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Manage local buckets (directories under <data_dir>/buckets).
    #[command(subcommand)]
    Buckets(Buckets),
    /// Load existing CloudTrail log files (a directory tree, .json.gz, .json, NDJSON).
    Import(import::Args),
    /// Insights over existing logs: `cairn insights scan PATH`, `cairn insights plot PATH`.
    #[command(subcommand)]
    Insights(Insights),
    /// Validate a trail's log files against its signed digests (on S3, or a local copy).
    ValidateLogs(Box<validate::Args>),
    /// Measure: `cairn bench lookup` (event history), `cairn bench ingest` (HTTP ingest).
    #[command(subcommand)]
    Bench(bench::Bench),
}

#[derive(Subcommand)]
enum Insights {
    /// Run the Insights detector over CloudTrail log files and write the Insights events
    /// it finds (NDJSON or a log file's `{"Records":[…]}`), with a summary on stderr.
    Scan(scan::ScanArgs),
    /// Draw one API's series from CloudTrail log files as an SVG picture: per window
    /// length, its calls, its usual band, the limit above which an Insight opens, and the
    /// Insights the detector found.
    Plot(Box<plot::PlotArgs>),
}

#[derive(Subcommand)]
enum Buckets {
    /// Create a local bucket, so that trails can deliver to it.
    Create {
        /// The bucket name (S3 naming rules).
        name: String,
        /// The config file whose data directory holds the buckets.
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CAIRN_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { config } => serve(config),
        Command::Buckets(Buckets::Create { name, config }) => create_bucket(&name, config),
        Command::Import(args) => import::run(args),
        Command::Insights(Insights::Scan(args)) => scan::run(args),
        Command::Insights(Insights::Plot(args)) => plot::run(*args),
        Command::ValidateLogs(args) => validate::run(*args),
        Command::Bench(bench) => bench::run(bench),
    }
}

fn serve(config: Option<PathBuf>) -> anyhow::Result<()> {
    let settings = cairn_server::Config::load(config.as_deref(), |name| std::env::var(name).ok())
        .and_then(|c| c.settle())
        .context("refusing to start")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        // Before the banner: a SIGTERM right after it must shut down cleanly, not kill.
        let shutdown = shutdown_signal().context("installing signal handlers")?;
        let server = cairn_server::Server::start(settings)
            .await
            .context("refusing to start")?;
        println!("{}", cairn_server::banner(server.settings()));
        server.run(shutdown).await.context("serving")
    })
}

fn create_bucket(name: &str, config: Option<PathBuf>) -> anyhow::Result<()> {
    cairn_server::trails::names::check_bucket_name(name).map_err(anyhow::Error::msg)?;
    let config = cairn_server::Config::load(config.as_deref(), |n| std::env::var(n).ok())?;
    if config.s3.is_some() {
        anyhow::bail!("buckets live on the configured S3 endpoint; create {name} there");
    }
    let dir = config.data_dir.join("buckets").join(name);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    println!("bucket {name} is {}", dir.display());
    Ok(())
}

/// Resolves on SIGTERM or SIGINT. The handlers are installed at once, so a signal that
/// arrives before the future is first polled is not lost to the default action.
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {},
            _ = interrupt.recv() => {},
        }
        tracing::info!("shutting down: finishing requests in flight and flushing the history");
    })
}
