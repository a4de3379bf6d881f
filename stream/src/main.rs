//! `stream`: see `stream --help`.

use clap::Parser;
use velometry_stream::app::Application;
use velometry_stream::cli::{Cli, Command};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => {
            velometry_core::telemetry::init_logging();
            let app = Application::build(args.into_settings()).await?;
            // Scripts and tests read this line to learn the bound ports.
            println!(
                "stream listening on http://{} (metrics on http://{}/metrics)",
                app.addr()?,
                app.metrics_addr()?
            );
            app.run_until_stopped(velometry_core::shutdown::signal()).await
        }
    }
}
