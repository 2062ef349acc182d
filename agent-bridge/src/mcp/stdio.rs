//! `boardwire mcp`: the same server over stdin/stdout, for clients that
//! launch a command (Claude Desktop, Cursor). It acts for one caller: the
//! token it is given, or nobody with auth off.

use std::time::Duration;

use anyhow::Context;
use rmcp::ServiceExt;
use service_kit::auth::{Access, AuthConfig, Authenticator};

use super::{BoardClient, BoardwireMcp};
use crate::http::Caller;

/// How the stdio server reaches board-service and whom it acts for.
#[derive(clap::Args, Debug, Clone)]
pub struct StdioOptions {
    /// board-service gRPC URL.
    #[arg(
        long,
        env = "BOARD_SERVICE_URL",
        default_value = "http://127.0.0.1:50051"
    )]
    pub board_service_url: String,
    /// Bearer token sent to board-service on every call; needed when its
    /// auth is on. Without write claims only the read tools are offered.
    #[arg(long, env = "BOARDWIRE_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Seconds to wait for one board-service call.
    #[arg(long, env = "BOARDWIRE_MCP_TIMEOUT", default_value_t = 30.0)]
    pub timeout: f64,
    /// With a secret or JWKS URL set, the token is checked here too, so
    /// tools/list can leave out what it may not do.
    #[command(flatten)]
    pub auth: AuthConfig,
}

/// Logs to stderr (`RUST_LOG`, default warnings): stdout is the protocol's.
pub fn init_stderr_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Serves MCP on stdin/stdout until the client closes them. Logs go to
/// stderr: stdout carries only protocol messages.
pub async fn serve_stdio(options: StdioOptions) -> anyhow::Result<()> {
    let timeout = Duration::from_secs_f64(options.timeout.max(0.001));
    let board = BoardClient::new(&options.board_service_url, timeout)
        .with_context(|| format!("invalid BOARD_SERVICE_URL {}", options.board_service_url))?;
    let token = options.token.filter(|t| !t.trim().is_empty());
    let access = match (
        Authenticator::from_config(&options.auth, "boardwire-mcp")?,
        &token,
    ) {
        (Some(auth), Some(token)) => auth
            .verify(token)
            .await
            .context("BOARDWIRE_TOKEN is not a valid token")?,
        // Unchecked here: board-service decides.
        _ => Access::open(),
    };
    let caller = Caller { access, token };
    let server = BoardwireMcp::for_caller(board, caller)
        .serve(rmcp::transport::stdio())
        .await
        .context("start the MCP session on stdio")?;
    server.waiting().await.context("MCP stdio session")?;
    Ok(())
}
