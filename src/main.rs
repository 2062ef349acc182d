//! `boardwire`: the whole stack in one process, for a laptop or a demo.
//! `boardwire mcp` is instead an MCP server on stdin/stdout, for clients
//! that launch a command; it talks to a running board-service.
//!
//! With `DATABASE_URL` unset it runs a private PostgreSQL from the installed
//! binaries, keeping its data in `BOARDWIRE_DATA_DIR` (default `.boardwire/`)
//! so boards survive restarts, and stops it on exit. Each service reads the
//! same environment variables it reads when it runs alone.

use std::{
    net::{IpAddr, Ipv4Addr},
    path::PathBuf,
};

use anyhow::Context;
use boardwire::{Stack, StackConfig};
use clap::{Parser, Subcommand};
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
    /// Address every service listens on unless its own `*_ADDR` is set.
    /// Unset: their defaults with auth on, 127.0.0.1 with auth off.
    #[arg(long, env = "BOARDWIRE_BIND")]
    bind: Option<IpAddr>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serve the board as an MCP server on stdin/stdout (Claude Desktop,
    /// Cursor, ...), talking to board-service at BOARD_SERVICE_URL.
    Mcp(agent_bridge::mcp::StdioOptions),
}

/// ws-gateway's settings, read from the environment as the gateway reads them.
#[derive(Parser)]
struct GatewayEnv {
    #[command(flatten)]
    config: ws_gateway::Config,
}

/// agent-bridge's settings, likewise.
#[derive(Parser)]
struct BridgeEnv {
    #[command(flatten)]
    args: agent_bridge::ConfigArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if let Some(Command::Mcp(options)) = args.command {
        // stdout carries the protocol: logs go to stderr.
        agent_bridge::mcp::init_stderr_logging();
        return agent_bridge::mcp::serve_stdio(options).await;
    }
    let telemetry = service_kit::telemetry::init("boardwire");

    // Kept alive until the end of main: dropping it stops PostgreSQL.
    let (database_url, postgres) = match args.database_url {
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

    let config = StackConfig {
        board: board_service::cli::Args::parse_from(["board-service"])
            .into_config(Some(database_url.clone()))?,
        gateway: GatewayEnv::parse_from(["ws-gateway"]).config,
        bridge: BridgeEnv::parse_from(["agent-bridge", "--database-url", &database_url])
            .args
            .into(),
    };
    let mut config = config;
    let auth_on = config.board.auth.enabled();
    let loopback_only = !auth_on && args.bind.is_none();
    if let Some(ip) = args
        .bind
        .or((!auth_on).then_some(Ipv4Addr::LOCALHOST.into()))
    {
        bind_by_default(&mut config, ip);
    }
    let stack = Stack::build(config).await?;
    let web = format!("http://localhost:{}", stack.gateway_addr.port());
    println!();
    println!("Boardwire is running. Open {web}/?board=default");
    println!(
        "  board (WebSocket)   ws://localhost:{}/ws",
        stack.gateway_addr.port()
    );
    println!(
        "  chat (WebSocket)    ws://localhost:{}/ws/chat",
        stack.bridge_addr.port()
    );
    println!(
        "  MCP (HTTP)          http://localhost:{}/mcp   (stdio: boardwire mcp)",
        stack.bridge_addr.port()
    );
    println!(
        "  board-service gRPC  localhost:{}",
        stack.board_addr.port()
    );
    if postgres.is_some() {
        println!("  data                {}", args.data_dir.display());
    }
    if loopback_only {
        println!(
            "auth is off: listening on loopback only; set JWT_SECRET (or JWT_JWKS_URL) to \
             require tokens, or BOARDWIRE_BIND=0.0.0.0 (or a service's *_ADDR) to listen wider."
        );
    } else if !auth_on {
        println!(
            "auth is off: every client that reaches these ports may read and write every board."
        );
    }
    println!("Ctrl-C stops everything.");

    let result = stack
        .run_until_stopped(service_kit::shutdown::signal())
        .await;
    drop(postgres);
    telemetry.shutdown();
    result
}

/// With auth off anyone who reaches a port may do anything, so listeners
/// whose address the user did not choose stay on loopback (or go to
/// `BOARDWIRE_BIND`). Containers set `*_ADDR=0.0.0.0:…` explicitly.
fn bind_by_default(config: &mut StackConfig, ip: IpAddr) {
    let set = |addr: &mut std::net::SocketAddr, env: &str| {
        if std::env::var_os(env).is_none() {
            addr.set_ip(ip);
        }
    };
    set(&mut config.board.listen_addr, "BOARD_SERVICE_ADDR");
    if let Some(metrics) = &mut config.board.metrics_addr {
        set(metrics, "BOARD_SERVICE_METRICS_ADDR");
    }
    set(&mut config.gateway.listen_addr, "WS_GATEWAY_ADDR");
    set(&mut config.bridge.listen_addr, "AGENT_BRIDGE_ADDR");
}
