//! `progress`: see `progress --help`.

use clap::Parser;
use velometry_progress::service::app::Application;
use velometry_progress::service::cli::{Cli, Command};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => {
            velometry_core::telemetry::init_logging();
            let app = Application::build(*args).await?;
            // Scripts and tests read this line to learn the bound ports.
            println!(
                "progress listening on http://{} (metrics on http://{}/metrics)",
                app.addr()?,
                app.metrics_addr()
            );
            app.run_until_stopped(velometry_core::shutdown::signal()).await
        }
        Command::Recompute(args) => {
            velometry_core::telemetry::init_logging();
            velometry_progress::service::recompute::run(*args).await
        }
    }
}
