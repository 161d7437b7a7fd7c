//! `tollgate`: the server (`serve`) and the client commands of operators
//! and CI jobs, in one binary.

mod cli;
mod client;
mod commands;
mod metrics;
mod output;
mod progress;
mod relay_status;
mod serve;
mod watch;

use clap::Parser;
use cli::{Cli, Command, ProducerKeyCommand, TokenCommand};
use std::process::ExitCode;
use tracing_subscriber::EnvFilter;

/// mimalloc instead of the C library's allocator: a bulk rebuild allocates
/// and frees millions of short-lived strings across threads, and spent a
/// quarter of its CPU in glibc's malloc and free (BENCHMARKS.md, rebuild).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(matches!(cli.command, Command::Serve(_) | Command::Watch { .. }));
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Receipts that were submitted but failed are an answer, not an error.
            if let Some(failing) = e.downcast_ref::<commands::junit::Failing>() {
                eprintln!("{failing}");
                return ExitCode::from(3);
            }
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let format = cli.client.format;
    match cli.command {
        Command::Serve(args) => {
            let app = serve::Application::build(&args).await?;
            let addr = app.local_addr()?;
            // Tests and scripts read this line to learn the port.
            println!("tollgate listening on http://{addr}");
            tracing::info!(%addr, data_dir = %args.data_dir.display(), "serving");
            app.run_until_stopped().await
        }
        Command::Token(TokenCommand::Mint { data_dir, subject, roles, ttl_hours }) => {
            commands::token::mint(&data_dir, &subject, &roles, ttl_hours)
        }
        Command::ProducerKey(ProducerKeyCommand::New { file }) => commands::receipt::new_producer_key(&file, format),
        Command::Rebuild { projection, data_dir, database_url } => {
            commands::rebuild::run(&data_dir, database_url.as_deref(), projection.as_deref()).await
        }
        Command::Watch { name, config, metrics_addr } => {
            watch::watch(&name, &config, metrics_addr, serve::shutdown_signal()).await
        }
        other => {
            let client = client::Client::new(&cli.client)?;
            match other {
                Command::Gate(cmd) => commands::catalog::gate(&client, format, cmd).await,
                Command::Stage(cmd) => commands::catalog::stage(&client, format, cmd).await,
                Command::Receipt(cmd) => commands::receipt::run(&client, format, cmd).await,
                Command::Junit(args) => commands::junit::run(&client, format, args).await,
                Command::Unit(cmd) => commands::unit::run(&client, format, cmd).await,
                Command::Explain { unit, stage } => {
                    commands::explain::run(&client, format, &unit, stage.as_deref()).await
                }
                Command::Audit(cmd) => commands::audit::run(&client, format, cmd).await,
                Command::Serve(_)
                | Command::Token(_)
                | Command::ProducerKey(_)
                | Command::Watch { .. }
                | Command::Rebuild { .. } => Ok(()),
            }
        }
    }
}

/// Logs go to stderr, so that stdout carries only answers. The server
/// logs at info by default; client commands only warn. `TOLLGATE_LOG`
/// (an env-filter directive) overrides both.
fn init_tracing(server: bool) {
    let default = if server { "info" } else { "warn" };
    let filter = EnvFilter::try_from_env("TOLLGATE_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
}
