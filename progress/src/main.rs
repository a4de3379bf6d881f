//! `progress`: see `progress --help`.

use clap::Parser;
use velometry_progress::service::cli::{Cli, Command};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => {
            velometry_core::telemetry::init_logging();
            velometry_progress::service::app::serve(*args, velometry_core::shutdown::signal()).await
        }
    }
}
