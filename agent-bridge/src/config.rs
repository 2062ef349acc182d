//! Settings, from flags or environment variables.

use std::{net::SocketAddr, time::Duration};

/// Everything agent-bridge needs to start. [`Config::new`] gives the
/// defaults; [`ConfigArgs`] reads them from the environment.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where HTTP and WebSocket listen; port 0 picks a free one.
    pub listen_addr: SocketAddr,
    pub database_url: String,
    pub db_max_connections: u32,
    /// board-service's gRPC endpoint, for the built-in agent's tools.
    pub board_service_url: String,
    /// An AG-UI endpoint; `None` runs the built-in PM agent.
    pub agent_url: Option<String>,
    /// Longest wait for the agent backend to answer or send its next event,
    /// and for one board-service call of the built-in agent.
    pub agent_timeout: Duration,
    /// Board of sessions that name none (board-service's id or slug).
    pub default_board: String,
    /// Frames queued for one socket before it is closed as too slow (1013);
    /// the client then reconnects with `last_seq` and loses nothing.
    pub socket_queue: usize,
    /// Frames of the current or last run kept per session for `last_seq` replay.
    pub replay_frames: usize,
    /// Pause between the built-in agent's tokens, so its replies stream.
    pub builtin_token_delay: Duration,
    /// How long a session with no socket and no run stays in memory.
    pub session_idle: Duration,
}

impl Config {
    /// Defaults for everything but the database.
    pub fn new(database_url: impl Into<String>) -> Self {
        Self {
            listen_addr: SocketAddr::from(([0, 0, 0, 0], 8001)),
            database_url: database_url.into(),
            db_max_connections: 16,
            board_service_url: "http://127.0.0.1:50051".into(),
            agent_url: None,
            agent_timeout: Duration::from_secs(30),
            default_board: "default".into(),
            socket_queue: 1024,
            replay_frames: 10_000,
            builtin_token_delay: Duration::from_millis(15),
            session_idle: Duration::from_secs(600),
        }
    }
}

/// [`Config`] as command-line flags and environment variables, for `main`
/// and the all-in-one binary (`#[command(flatten)]`).
#[derive(clap::Args, Debug, Clone)]
pub struct ConfigArgs {
    /// HTTP/WebSocket listen address.
    #[arg(long, env = "AGENT_BRIDGE_ADDR", default_value = "0.0.0.0:8001")]
    pub listen_addr: SocketAddr,
    /// PostgreSQL URL.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: String,
    /// Database connections in the pool.
    #[arg(long, env = "AGENT_BRIDGE_DB_MAX_CONNECTIONS", default_value_t = 16)]
    pub db_max_connections: u32,
    /// board-service gRPC URL.
    #[arg(
        long,
        env = "BOARD_SERVICE_URL",
        default_value = "http://127.0.0.1:50051"
    )]
    pub board_service_url: String,
    /// AG-UI agent endpoint; unset runs the built-in PM agent.
    #[arg(long, env = "AGENT_URL")]
    pub agent_url: Option<String>,
    /// Seconds to wait for the agent backend's next event.
    #[arg(long, env = "AGENT_TIMEOUT", default_value_t = 30.0)]
    pub agent_timeout: f64,
    /// Board for sessions that name none.
    #[arg(long, env = "DEFAULT_BOARD", default_value = "default")]
    pub default_board: String,
    /// Frames queued per socket before a slow socket is closed.
    #[arg(long, env = "CHAT_SOCKET_QUEUE", default_value_t = 1024)]
    pub socket_queue: usize,
    /// Frames kept per session for reconnect replay.
    #[arg(long, env = "CHAT_REPLAY_FRAMES", default_value_t = 10_000)]
    pub replay_frames: usize,
    /// Milliseconds between the built-in agent's tokens.
    #[arg(long, env = "BUILTIN_TOKEN_DELAY_MS", default_value_t = 15)]
    pub builtin_token_delay_ms: u64,
    /// Seconds an unused session stays in memory (its replay buffer with it).
    #[arg(long, env = "CHAT_SESSION_IDLE_SECS", default_value_t = 600)]
    pub session_idle_secs: u64,
}

impl From<ConfigArgs> for Config {
    fn from(args: ConfigArgs) -> Self {
        Self {
            listen_addr: args.listen_addr,
            database_url: args.database_url,
            db_max_connections: args.db_max_connections,
            board_service_url: args.board_service_url,
            agent_url: args.agent_url.filter(|url| !url.trim().is_empty()),
            agent_timeout: Duration::from_secs_f64(args.agent_timeout.max(0.001)),
            default_board: args.default_board,
            socket_queue: args.socket_queue.max(1),
            replay_frames: args.replay_frames.max(1),
            builtin_token_delay: Duration::from_millis(args.builtin_token_delay_ms),
            session_idle: Duration::from_secs(args.session_idle_secs),
        }
    }
}
