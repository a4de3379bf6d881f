//! `query`: see `query --help`.

use clap::Parser;
use velometry_query::app::Application;
use velometry_query::cli::{Cli, Command};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => {
            velometry_core::telemetry::init_logging();
            let settings = args.into_settings().map_err(anyhow::Error::msg)?;
            let app = Application::build(settings).await?;
            // Scripts and tests read this line to learn the bound ports.
            println!(
                "query listening on http://{} (metrics on http://{}/metrics)",
                app.addr()?,
                app.metrics_addr()?
            );
            app.run_until_stopped(velometry_core::shutdown::signal()).await
        }
    }
}
