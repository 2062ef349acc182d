//! The board-service binary: configuration from flags or environment.

use std::net::SocketAddr;

use anyhow::Context;
use clap::Parser;

/// Boards, lanes and tasks over gRPC.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// gRPC listen address.
    #[arg(long, env = "BOARD_SERVICE_ADDR", default_value = "0.0.0.0:50051")]
    listen_addr: SocketAddr,
    /// PostgreSQL URL; required when running board-service alone.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// Database connections in the pool.
    #[arg(long, env = "DB_MAX_CONNECTIONS", default_value_t = 32)]
    db_max_connections: u32,
    /// Events kept in each board's log for resuming watchers.
    #[arg(long, env = "EVENT_RETENTION", default_value_t = 100_000)]
    event_retention: u64,
    /// Slug of a board created at start-up if missing; empty for none.
    #[arg(long, env = "DEFAULT_BOARD", default_value = "default")]
    default_board: String,
    /// Ask the board-service on `listen_addr`'s port for its gRPC health and
    /// exit 0 when serving (the container healthcheck).
    #[arg(long)]
    check_health: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let telemetry = service_kit::telemetry::init("board-service");
    let args = Args::parse();
    if args.check_health {
        return check_health(args.listen_addr.port()).await;
    }
    let database_url = args.database_url.context(
        "DATABASE_URL is required (or run `boardwire`, which starts its own PostgreSQL)",
    )?;
    let mut config = board_service::Config::new(database_url);
    config.listen_addr = args.listen_addr;
    config.db_max_connections = args.db_max_connections;
    config.event_retention = args.event_retention;
    config.default_board = Some(args.default_board).filter(|s| !s.is_empty());
    let app = board_service::App::build(config)
        .await
        .context("start board-service")?;
    let result = app.run_until_stopped(service_kit::shutdown::signal()).await;
    telemetry.shutdown();
    result
}

async fn check_health(port: u16) -> anyhow::Result<()> {
    use tonic_health::pb::{
        HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
    };
    let channel = tonic::transport::Endpoint::from_shared(format!("http://127.0.0.1:{port}"))?
        .connect()
        .await
        .context("connect to board-service")?;
    let mut client = HealthClient::new(channel);
    let status = client
        .check(HealthCheckRequest {
            service: "boardwire.v1.BoardService".into(),
        })
        .await?
        .into_inner()
        .status();
    anyhow::ensure!(
        status == ServingStatus::Serving,
        "board-service is {status:?}"
    );
    Ok(())
}
