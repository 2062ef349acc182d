//! `boardwire`: the whole stack in one process, for a laptop or a demo.
//!
//! With `DATABASE_URL` unset it runs a private PostgreSQL from the installed
//! binaries, keeping its data in `BOARDWIRE_DATA_DIR` (default `.boardwire/`)
//! so boards survive restarts, and stops it on exit. Each service reads the
//! same environment variables it reads when it runs alone.

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use service_kit::local_postgres::{LocalPostgres, Options};

#[derive(Parser, Debug)]
#[command(version, about = "Runs every Boardwire service in one process")]
struct Args {
    /// PostgreSQL URL; unset starts a private server in the data folder.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// Where the private PostgreSQL keeps its data.
    #[arg(long, env = "BOARDWIRE_DATA_DIR", default_value = ".boardwire")]
    data_dir: PathBuf,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let telemetry = service_kit::telemetry::init("boardwire");
    let args = Args::parse();

    // Kept alive until the end of main: dropping it stops PostgreSQL.
    let (database_url, _postgres) = match args.database_url {
        Some(url) => (url, None),
        None => {
            let dir = args.data_dir.join("postgres");
            let postgres = tokio::task::spawn_blocking(move || {
                LocalPostgres::start(Options {
                    dir,
                    throwaway: false,
                })
            })
            .await?
            .context("DATABASE_URL is unset, so Boardwire starts its own PostgreSQL, but")?;
            (postgres.url("postgres"), Some(postgres))
        }
    };

    // Settings come from the environment only, as each service reads them alone.
    let board_config =
        board_service::cli::Args::parse_from(["board-service"]).into_config(Some(database_url))?;
    let board_service = board_service::App::build(board_config)
        .await
        .context("start board-service")?;
    println!("Boardwire is running:");
    println!("  board-service (gRPC)  {}", board_service.local_addr());

    let result = board_service
        .run_until_stopped(service_kit::shutdown::signal())
        .await;
    telemetry.shutdown();
    result
}
