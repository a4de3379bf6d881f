//! `collector`: see `collector --help`.

use clap::Parser;
use velometry_collector::app::Application;
use velometry_collector::cli::{Cli, Command};
use velometry_core::riders::{generate_token, TokenHash};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Token => {
            let token = generate_token();
            println!("token:        {token}");
            println!("token_sha256: {}", TokenHash::of(&token).to_hex());
            Ok(())
        }
        Command::Import(args) => {
            if velometry_collector::import::run(args).await? {
                Ok(())
            } else {
                std::process::exit(1)
            }
        }
        Command::Event(args) => velometry_collector::event::run(args).await,
        Command::Replay(args) => {
            velometry_collector::replay::run(args, velometry_core::shutdown::signal()).await
        }
        Command::Serve(args) => {
            velometry_core::telemetry::init_logging();
            let settings = args.into_settings().map_err(anyhow::Error::msg)?;
            let app = Application::build(settings).await?;
            // Scripts and tests read this line to learn the bound ports.
            println!(
                "collector listening on http://{} (metrics on http://{}/metrics)",
                app.addr()?,
                app.metrics_addr()?
            );
            app.run_until_stopped(velometry_core::shutdown::signal()).await
        }
    }
}
