//! `velometry-lab`: the whole platform on one machine, as processes — InfluxDB, NATS, the
//! collector, the query service and stream hubs — for benchmark runs that write their
//! results into BENCHMARKS.md, and for chaos runs that kill and restart services while
//! riders ride and followers follow. See `velometry-lab --help`.

mod bench;
mod chaos;
mod stack;

use clap::{Parser, Subcommand};

/// The whole velometry platform on this machine, for benchmark and chaos runs.
///
/// Starts InfluxDB and NATS (JetStream) on free ports with temporary data directories, and
/// the collector, the query service and stream hubs from the release binaries next to this
/// one (build them with `cargo build --release --bins`). Everything stops when the run ends.
#[derive(Debug, Parser)]
#[command(name = "velometry-lab", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a k6 benchmark scenario against the stack and write its results into BENCHMARKS.md
    Bench(Box<bench::Args>),
    /// Kill and restart random services while riders ride, then check nothing acknowledged was lost
    Chaos(chaos::Args),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Bench(args) => bench::run(*args).await,
        Command::Chaos(args) => chaos::run(args).await,
    }
}
