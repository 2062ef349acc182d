//! The ws-gateway binary: configuration from flags or environment.

use anyhow::Context;
use clap::Parser;

/// Live Kanban boards over WebSocket and SSE.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    #[command(flatten)]
    config: ws_gateway::Config,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let telemetry = service_kit::telemetry::init("ws-gateway");
    let args = Args::parse();
    let app = ws_gateway::App::build(args.config)
        .await
        .context("start ws-gateway")?;
    let result = app.run_until_stopped(service_kit::shutdown::signal()).await;
    telemetry.shutdown();
    result
}
