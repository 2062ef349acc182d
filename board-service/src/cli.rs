//! Command-line flags and environment variables of the board-service binary.

use std::net::SocketAddr;

use anyhow::Context;

use crate::Config;

/// Boards, lanes and tasks over gRPC.
#[derive(clap::Parser, Debug)]
#[command(name = "board-service", version)]
pub struct Args {
    /// gRPC listen address.
    #[arg(long, env = "BOARD_SERVICE_ADDR", default_value = "0.0.0.0:50051")]
    pub listen_addr: SocketAddr,
    /// PostgreSQL URL; required when running board-service alone.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Database connections in the pool.
    #[arg(long, env = "DB_MAX_CONNECTIONS", default_value_t = 32)]
    pub db_max_connections: u32,
    /// Events kept in each board's log for resuming watchers.
    #[arg(long, env = "EVENT_RETENTION", default_value_t = 100_000)]
    pub event_retention: u64,
    /// Slug of a board created at start-up if missing; empty for none.
    #[arg(long, env = "DEFAULT_BOARD", default_value = "default")]
    pub default_board: String,
    /// Largest gRPC request in bytes; larger gets RESOURCE_EXHAUSTED.
    #[arg(long, env = "BOARD_SERVICE_MAX_MESSAGE_BYTES", default_value_t = crate::DEFAULT_MAX_MESSAGE_BYTES)]
    pub max_message_bytes: usize,
    /// Where `/metrics` is served; default: the gRPC host, port 9464; `off` for none.
    #[arg(long, env = "BOARD_SERVICE_METRICS_ADDR")]
    pub metrics_addr: Option<String>,
    /// Milliseconds a new connection has to send the HTTP/2 preface.
    #[arg(
        long,
        env = "BOARD_SERVICE_HANDSHAKE_TIMEOUT_MS",
        default_value_t = 10_000
    )]
    pub handshake_timeout_ms: u64,
    /// Connections at most that have not sent the preface yet.
    #[arg(
        long,
        env = "BOARD_SERVICE_MAX_PENDING_HANDSHAKES",
        default_value_t = 1024
    )]
    pub max_pending_handshakes: usize,
    /// History per channel pattern: `pattern=size/age_secs[/durable]`,
    /// comma-separated, first match wins, `*=…` for the rest (default
    /// 100 publications, 300 s, ephemeral).
    #[arg(long, env = "CHANNEL_HISTORY", default_value = "")]
    pub channel_history: String,
    /// NATS server with JetStream; when set, committed board events are
    /// relayed to the `BOARDWIRE_BOARDS` stream and channel publications
    /// announced on core NATS. Unset: no NATS at all.
    #[arg(long, env = "NATS_URL", hide_env_values = true)]
    pub nats_url: Option<String>,
    #[command(flatten)]
    pub auth: service_kit::auth::AuthConfig,
    /// Ask the board-service on `listen_addr`'s port for its gRPC health and
    /// exit 0 when serving (the container healthcheck).
    #[arg(long)]
    pub check_health: bool,
}

impl Args {
    /// The service configuration; `database_url` overrides the flag (the
    /// all-in-one binary passes its private PostgreSQL).
    pub fn into_config(self, database_url: Option<String>) -> anyhow::Result<Config> {
        let database_url = database_url.or(self.database_url).context(
            "DATABASE_URL is required (or run `boardwire`, which starts its own PostgreSQL)",
        )?;
        let metrics_addr = match self.metrics_addr.as_deref().map(str::trim) {
            None | Some("") => Some(SocketAddr::new(
                self.listen_addr.ip(),
                crate::DEFAULT_METRICS_PORT,
            )),
            Some("off") => None,
            Some(addr) => Some(addr.parse().with_context(|| {
                format!("BOARD_SERVICE_METRICS_ADDR {addr:?} is not host:port")
            })?),
        };
        let channel_history = crate::channels::Policy::parse(&self.channel_history)?;
        Ok(Config {
            channel_history,
            listen_addr: self.listen_addr,
            database_url,
            db_max_connections: self.db_max_connections,
            event_retention: self.event_retention,
            trim_interval: crate::TRIM_INTERVAL,
            default_board: Some(self.default_board).filter(|s| !s.is_empty()),
            auth: self.auth,
            max_message_bytes: self.max_message_bytes,
            metrics_addr,
            handshake_timeout: std::time::Duration::from_millis(self.handshake_timeout_ms),
            max_pending_handshakes: self.max_pending_handshakes,
            nats_url: self.nats_url.filter(|url| !url.trim().is_empty()),
        })
    }
}
