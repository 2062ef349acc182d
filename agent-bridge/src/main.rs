//! The agent-bridge binary: configuration from flags or environment.

use anyhow::Context;
use clap::Parser;

/// PM chat over WebSocket and HTTP, relayed to an AG-UI agent or the built-in PM agent.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    #[command(flatten)]
    config: agent_bridge::ConfigArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let telemetry = service_kit::telemetry::init("agent-bridge");
    let args = Args::parse();
    let app = agent_bridge::App::build(args.config.into())
        .await
        .context("start agent-bridge")?;
    let result = app.run_until_stopped(service_kit::shutdown::signal()).await;
    telemetry.shutdown();
    result
}
