//! Settings, all from the environment (or flags) with defaults that suit
//! local development.

use std::{net::SocketAddr, time::Duration};

/// Everything ws-gateway needs to start. Flatten it into a binary's clap
/// arguments, or build it with [`Config::new`] in tests.
#[derive(Debug, Clone, clap::Args)]
pub struct Config {
    /// HTTP/WebSocket listen address; port 0 picks a free one.
    #[arg(
        long = "ws-listen-addr",
        env = "WS_GATEWAY_ADDR",
        default_value = "0.0.0.0:4002"
    )]
    pub listen_addr: SocketAddr,
    /// A second address serving only Socket.IO (`/socket.io/`), for
    /// clients built for a port of their own (seed 000's 8002); unset, it
    /// is served on the main port only.
    #[arg(long = "socketio-addr", env = "SOCKETIO_ADDR")]
    pub socketio_addr: Option<SocketAddr>,
    /// board-service's gRPC URL.
    #[arg(
        long,
        env = "BOARD_SERVICE_URL",
        default_value = "http://127.0.0.1:50051"
    )]
    pub board_service_url: String,
    /// A NATS server with JetStream (SCALING.md): set, board feeds follow
    /// the `BOARDWIRE_BOARDS` stream board-service relays to, instead of one
    /// WatchBoard per board, channel feeds follow core NATS instead of one
    /// WatchChannel per channel, and presence is shared with the other
    /// gateways over it; unset, all of it through board-service as on a
    /// single machine.
    #[arg(long, env = "NATS_URL", hide_env_values = true)]
    pub nats_url: Option<String>,
    /// Bearer-token checks, shared by every service (README, "Security").
    #[command(flatten)]
    pub auth: service_kit::auth::AuthConfig,
    /// TLS served by the gateway itself (`TLS_CERT_FILE`, `TLS_KEY_FILE`).
    #[command(flatten)]
    pub tls: service_kit::tls::TlsConfig,
    /// Origins allowed to connect, comma-separated; empty allows any.
    #[arg(long, env = "WS_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Vec<String>,
    /// Open connections at most (WebSocket and SSE together).
    #[arg(long, env = "WS_MAX_CONNECTIONS", default_value_t = 100_000)]
    pub max_connections: usize,
    /// New connections per client IP per minute.
    #[arg(long, env = "WS_MAX_CONNECTS_PER_IP_PER_MIN", default_value_t = 600)]
    pub max_connects_per_ip_per_min: u32,
    /// Client frames per second per connection (bursts of twice that pass).
    #[arg(long, env = "WS_MAX_MESSAGES_PER_SEC", default_value_t = 50)]
    pub max_messages_per_sec: u32,
    /// Largest incoming frame in bytes; larger closes with 1009.
    #[arg(long, env = "WS_MAX_FRAME_BYTES", default_value_t = 1 << 20)]
    pub max_frame_bytes: usize,
    /// Boards one connection may watch at once.
    #[arg(long, env = "WS_MAX_SUBSCRIPTIONS", default_value_t = 32)]
    pub max_subscriptions: usize,
    /// Frames a client may have queued before they are dropped for a fresh board.sync.
    #[arg(long, env = "WS_CLIENT_QUEUE", default_value_t = 1024)]
    pub client_queue: usize,
    /// Recent frames kept per board for clients resuming with sinceVersion.
    #[arg(long, env = "WS_REPLAY_WINDOW", default_value_t = 4096)]
    pub replay_window: usize,
    /// Server ping interval, ms.
    #[arg(long, env = "WS_HEARTBEAT_MS", default_value_t = 30_000)]
    pub heartbeat_ms: u64,
    /// A client silent this long is closed (4008), ms.
    #[arg(long, env = "WS_CLIENT_TIMEOUT_MS", default_value_t = 75_000)]
    pub client_timeout_ms: u64,
    /// A socket that accepts no bytes this long is closed (4009), ms.
    #[arg(long, env = "WS_STUCK_TIMEOUT_MS", default_value_t = 30_000)]
    pub stuck_timeout_ms: u64,
    /// Time to send a request's headers, the first one included, ms.
    #[arg(long, env = "WS_HEADER_TIMEOUT_MS", default_value_t = 10_000)]
    pub header_timeout_ms: u64,
    /// Connections at most that have not finished their first request.
    #[arg(long, env = "WS_MAX_PENDING_CONNECTIONS", default_value_t = 1024)]
    pub max_pending_connections: usize,
    /// How often the gateway's KPIs are published on the `metrics` channel
    /// (seed 004's `metric.update`), ms; 0 for never.
    #[arg(long, env = "WS_METRICS_CHANNEL_MS", default_value_t = 5_000)]
    pub metrics_channel_ms: u64,
    /// Time to send an `auth` frame when a token is required, ms.
    #[arg(long, env = "WS_AUTH_TIMEOUT_MS", default_value_t = 10_000)]
    pub auth_timeout_ms: u64,
    /// This gateway's presence lease, ms: renewed every third of it, so the
    /// members of a gateway that dies leave within about this long.
    #[arg(long, env = "PRESENCE_LEASE_MS", default_value_t = 15_000)]
    pub presence_lease_ms: u32,
    /// Joins and leaves are sent to board-service in batches this far apart, ms.
    #[arg(long, env = "PRESENCE_BATCH_MS", default_value_t = 150)]
    pub presence_batch_ms: u64,
    /// Above this many members, a board's presence is sent as a count only.
    #[arg(long, env = "PRESENCE_MAX_MEMBERS", default_value_t = 100)]
    pub presence_max_members: usize,
}

impl Config {
    /// The defaults above (each written once, in its `#[arg]`), listening on
    /// `127.0.0.1:0` and talking to `board_service_url`: for tests and
    /// embedders. Like the binary, it reads the environment.
    pub fn new(board_service_url: impl Into<String>) -> Self {
        #[derive(clap::Parser)]
        struct Defaults {
            #[command(flatten)]
            config: Config,
        }
        let mut config = <Defaults as clap::Parser>::parse_from(["ws-gateway"]).config;
        config.listen_addr = SocketAddr::from(([127, 0, 0, 1], 0));
        config.board_service_url = board_service_url.into();
        config
    }

    pub fn heartbeat(&self) -> Duration {
        Duration::from_millis(self.heartbeat_ms)
    }

    pub fn stuck_timeout(&self) -> Duration {
        Duration::from_millis(self.stuck_timeout_ms)
    }

    /// Whether a browser from `origin` may connect.
    pub fn origin_allowed(&self, origin: Option<&str>) -> bool {
        service_kit::http_server::origin_allowed(&self.allowed_origins, origin)
    }
}
