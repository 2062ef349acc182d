//! Settings, from flags or environment variables.

use std::{net::SocketAddr, time::Duration};

use crate::agent::approvals::ApprovalMode;

/// Everything agent-bridge needs to start, typed. [`ConfigArgs`] holds the
/// defaults and reads the environment; [`Config::new`] gives those defaults.
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
    /// Bearer-token checks, shared by every service.
    pub auth: service_kit::auth::AuthConfig,
    /// Browser origins allowed to connect and call the HTTP API; empty allows any.
    pub allowed_origins: Vec<String>,
    /// Socket and HTTP limits.
    pub limits: Limits,
    /// How long a run stays `running` in PostgreSQL without its bridge
    /// renewing it; after that any bridge marks it interrupted.
    pub run_lease: Duration,
    /// Which of the built-in agent's tool calls wait for a person's yes.
    pub approvals: crate::agent::approvals::Approvals,
    /// A NATS server with JetStream (SCALING.md): set, sessions are shared
    /// with the other bridges on it; `None`: this bridge alone.
    pub nats_url: Option<String>,
    /// TLS served by the bridge itself.
    pub tls: service_kit::tls::TlsConfig,
}

/// The limits a chat client meets, named like ws-gateway's.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest WebSocket frame or HTTP body; a larger frame closes with 1009,
    /// a larger body gets 413. Sized to [`MAX_CONTENT_CHARS`] of 4-byte characters.
    ///
    /// [`MAX_CONTENT_CHARS`]: crate::http::MAX_CONTENT_CHARS
    pub max_frame_bytes: usize,
    /// Client frames per second per socket; bursts of twice that pass.
    pub max_messages_per_sec: u32,
    /// Open chat sockets at most.
    pub max_connections: usize,
    /// New sockets per client IP per minute.
    pub max_connects_per_ip_per_min: u32,
    /// Server ping interval.
    pub heartbeat: Duration,
    /// A client that sends nothing (not even a pong) this long is closed (4008).
    pub client_timeout: Duration,
    /// Time to send a request's headers.
    pub header_timeout: Duration,
    /// Connections at most that have not finished their first request.
    pub max_pending_connections: usize,
}

impl Default for Limits {
    /// [`ConfigArgs`]' defaults, where each is written once.
    fn default() -> Self {
        Config::new("").limits
    }
}

impl Config {
    /// [`ConfigArgs`]' defaults (each written once, in its `#[arg]`) with
    /// `database_url`: for tests and embedders. Like the binary, it reads
    /// the environment.
    pub fn new(database_url: impl Into<String>) -> Self {
        #[derive(clap::Parser)]
        struct Defaults {
            #[command(flatten)]
            args: ConfigArgs,
        }
        let database_url: String = database_url.into();
        let parsed = <Defaults as clap::Parser>::try_parse_from([
            "agent-bridge",
            "--database-url",
            database_url.as_str(),
        ]);
        // Only a malformed environment variable can fail this; the binary
        // reports that one itself at start-up.
        let mut args = parsed.map_or_else(|e| panic!("agent-bridge settings: {e}"), |d| d.args);
        args.database_url = database_url;
        args.into()
    }

    /// Whether a browser from `origin` may connect or call the API.
    pub fn origin_allowed(&self, origin: Option<&str>) -> bool {
        origin_allowed(&self.allowed_origins, origin)
    }
}

pub use service_kit::http_server::origin_allowed;

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
    /// Bearer-token checks, shared by every service (README, "Security").
    #[command(flatten)]
    pub auth: service_kit::auth::AuthConfig,
    /// Browser origins allowed, comma-separated; empty falls back to
    /// WS_ALLOWED_ORIGINS, and allows any when that is empty too.
    #[arg(long, env = "CHAT_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Vec<String>,
    /// Largest client frame or HTTP body in bytes; larger closes with 1009.
    #[arg(long, env = "CHAT_MAX_FRAME_BYTES", default_value_t = 128 * 1024)]
    pub max_frame_bytes: usize,
    /// Client frames per second per socket (bursts of twice that pass).
    #[arg(long, env = "CHAT_MAX_MESSAGES_PER_SEC", default_value_t = 20)]
    pub max_messages_per_sec: u32,
    /// Open chat sockets at most.
    #[arg(long, env = "CHAT_MAX_CONNECTIONS", default_value_t = 10_000)]
    pub max_connections: usize,
    /// New chat sockets per client IP per minute.
    #[arg(long, env = "CHAT_MAX_CONNECTS_PER_IP_PER_MIN", default_value_t = 600)]
    pub max_connects_per_ip_per_min: u32,
    /// Server ping interval, ms.
    #[arg(long, env = "CHAT_HEARTBEAT_MS", default_value_t = 30_000)]
    pub heartbeat_ms: u64,
    /// A client silent this long is closed (4008), ms.
    #[arg(long, env = "CHAT_CLIENT_TIMEOUT_MS", default_value_t = 75_000)]
    pub client_timeout_ms: u64,
    /// Time to send a request's headers, ms.
    #[arg(long, env = "CHAT_HEADER_TIMEOUT_MS", default_value_t = 10_000)]
    pub header_timeout_ms: u64,
    /// Connections at most that have not finished their first request.
    #[arg(long, env = "CHAT_MAX_PENDING_CONNECTIONS", default_value_t = 1024)]
    pub max_pending_connections: usize,
    /// Milliseconds a run stays `running` without its bridge renewing it;
    /// then another (or a restarted) bridge marks it interrupted.
    #[arg(long, env = "CHAT_RUN_LEASE_MS", default_value_t = 15_000)]
    pub run_lease_ms: u64,
    /// Tool calls that wait for a person's yes: off, destructive (deleting a
    /// task or lane, moving or deleting several tasks at once) or all.
    #[arg(long, env = "AGENT_APPROVALS", value_enum, default_value_t = ApprovalMode::Destructive)]
    pub approvals: ApprovalMode,
    /// Seconds to wait for an approval; no answer counts as a rejection.
    #[arg(long, env = "AGENT_APPROVAL_TIMEOUT", default_value_t = 600)]
    pub approval_timeout_secs: u64,
    /// A NATS server with JetStream: set, any bridge serves any tab of any
    /// session, live (SCALING.md).
    #[arg(long, env = "NATS_URL", hide_env_values = true)]
    pub nats_url: Option<String>,
    /// TLS served by the bridge itself (`TLS_CERT_FILE`, `TLS_KEY_FILE`).
    #[command(flatten)]
    pub tls: service_kit::tls::TlsConfig,
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
            auth: args.auth,
            allowed_origins: origins(args.allowed_origins),
            limits: Limits {
                max_frame_bytes: args.max_frame_bytes.max(1024),
                max_messages_per_sec: args.max_messages_per_sec.max(1),
                max_connections: args.max_connections.max(1),
                max_connects_per_ip_per_min: args.max_connects_per_ip_per_min.max(1),
                heartbeat: Duration::from_millis(args.heartbeat_ms.max(10)),
                client_timeout: Duration::from_millis(args.client_timeout_ms.max(10)),
                header_timeout: Duration::from_millis(args.header_timeout_ms.max(10)),
                max_pending_connections: args.max_pending_connections.max(1),
            },
            run_lease: Duration::from_millis(args.run_lease_ms.max(100)),
            approvals: crate::agent::approvals::Approvals {
                mode: args.approvals,
                timeout: Duration::from_secs(args.approval_timeout_secs.max(1)),
            },
            nats_url: args
                .nats_url
                .map(|url| url.trim().to_owned())
                .filter(|url| !url.is_empty()),
            tls: args.tls,
        }
    }
}

/// CHAT_ALLOWED_ORIGINS, else WS_ALLOWED_ORIGINS, without blanks.
fn origins(chat: Vec<String>) -> Vec<String> {
    let clean = |list: Vec<String>| -> Vec<String> {
        list.into_iter()
            .map(|o| o.trim().to_owned())
            .filter(|o| !o.is_empty())
            .collect()
    };
    let chat = clean(chat);
    if !chat.is_empty() {
        return chat;
    }
    let ws = std::env::var("WS_ALLOWED_ORIGINS").unwrap_or_default();
    clean(ws.split(',').map(str::to_owned).collect())
}
