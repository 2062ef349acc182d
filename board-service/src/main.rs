//! The board-service binary: configuration from flags or environment.

use anyhow::Context;
use board_service::cli::Args;
use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let telemetry = service_kit::telemetry::init("board-service");
    let args = Args::parse();
    if args.check_health {
        return check_health(args.listen_addr.port()).await;
    }
    let app = board_service::App::build(args.into_config(None)?)
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
    let status = HealthClient::new(channel)
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
