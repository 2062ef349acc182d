//! A real stack for agent-bridge tests: a fresh database, board-service and
//! agent-bridge on 127.0.0.1:0, plus WebSocket and AG-UI helpers.

#![allow(dead_code)]

pub mod agui_server;
pub mod cut_proxy;
pub mod fake_agent;
pub mod process;
pub mod python_env;
pub mod ws;

// Each test binary uses some of these.
#[allow(unused_imports)]
pub use agui_server::AgUiServer;
#[allow(unused_imports)]
pub use ws::{Ws, assert_contiguous, assert_rising, run_seqs, streamed_text, tool_frames};

use std::{net::SocketAddr, time::Duration};

use protocol::v1::{BoardSnapshot, GetBoardRequest, board_service_client::BoardServiceClient};
use service_kit::test_database::TestDatabase;

/// Guards against a hung test; never a timing assertion.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// How to start agent-bridge.
#[derive(Clone)]
pub struct Options {
    pub agent_url: Option<String>,
    pub agent_timeout: Duration,
    pub token_delay: Duration,
    /// Point the built-in agent at a port where nothing listens.
    pub board_service_down: bool,
    pub socket_queue: usize,
    pub replay_frames: usize,
    /// Turns auth on in board-service and agent-bridge alike.
    pub jwt_secret: Option<String>,
    pub allowed_origins: Vec<String>,
    pub limits: agent_bridge::config::Limits,
    pub run_lease: Duration,
    pub approvals: agent_bridge::agent::approvals::Approvals,
    /// Share sessions with other bridges on this NATS server.
    pub nats_url: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            agent_url: None,
            agent_timeout: Duration::from_secs(10),
            token_delay: Duration::ZERO,
            board_service_down: false,
            socket_queue: 1024,
            replay_frames: 10_000,
            jwt_secret: None,
            allowed_origins: Vec::new(),
            limits: agent_bridge::config::Limits::default(),
            run_lease: Duration::from_secs(15),
            approvals: Default::default(),
            nats_url: None,
        }
    }
}

/// A running service and the way to stop it.
pub use service_kit::testing::RunningService as Running;

/// board-service and agent-bridge over one fresh database.
pub struct Stack {
    pub db: TestDatabase,
    pub board_addr: SocketAddr,
    pub addr: SocketAddr,
    pub options: Options,
    board: Running,
    bridge: Running,
}

impl Stack {
    pub async fn start() -> Self {
        Self::start_with(Options::default()).await
    }

    pub async fn start_with(options: Options) -> Self {
        let db = TestDatabase::create().await;
        let mut config = board_service::Config::new(db.url());
        config.listen_addr = "127.0.0.1:0".parse().unwrap();
        config.default_board = Some("default".into());
        if let Some(secret) = &options.jwt_secret {
            config.auth = service_kit::auth::AuthConfig::with_secret(secret);
        }
        let app = board_service::App::build(config)
            .await
            .expect("board-service starts");
        let board_addr = app.local_addr();
        let board = Running::spawn(board_addr, |stopped| app.run_until_stopped(stopped));
        let (addr, bridge) = start_bridge(db.url(), board_addr, &options).await;
        Self {
            db,
            board_addr,
            addr,
            options,
            board,
            bridge,
        }
    }

    /// Stops agent-bridge gracefully and starts a new one on the same database.
    pub async fn restart_bridge(&mut self) {
        let (addr, bridge) = start_bridge(self.db.url(), self.board_addr, &self.options).await;
        let old = std::mem::replace(&mut self.bridge, bridge);
        old.stop().await;
        self.addr = addr;
    }

    /// Another agent-bridge, like the first, on the same database and
    /// board-service: the caller keeps it running.
    pub async fn another_bridge(&self) -> (SocketAddr, Running) {
        start_bridge(self.db.url(), self.board_addr, &self.options).await
    }

    pub async fn stop(self) {
        self.bridge.stop().await;
        self.board.stop().await;
    }

    pub fn ws_url(&self, query: &str) -> String {
        format!("ws://{}/ws/chat{query}", self.addr)
    }

    pub fn http_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// `POST /api/chat` with `body`: the status and the JSON answer.
    pub async fn post_chat(&self, body: serde_json::Value) -> (u16, serde_json::Value) {
        let response = reqwest::Client::new()
            .post(self.http_url("/api/chat"))
            .json(&body)
            .send()
            .await
            .expect("POST /api/chat");
        let status = response.status().as_u16();
        (
            status,
            response.json().await.unwrap_or(serde_json::Value::Null),
        )
    }

    /// Drops the bridge without a graceful stop: its tasks keep running
    /// in this process, so this is no crash; see `restart.rs` for one.
    pub fn abort_bridge(&mut self) {
        self.bridge.abort();
    }

    pub async fn board(&self) -> BoardSnapshot {
        self.board_named("default").await
    }

    pub async fn board_named(&self, board: &str) -> BoardSnapshot {
        let mut client = BoardServiceClient::connect(format!("http://{}", self.board_addr))
            .await
            .expect("connect to board-service");
        let mut request = tonic::Request::new(GetBoardRequest {
            board_id: board.into(),
        });
        if let Some(secret) = &self.options.jwt_secret {
            let token = token(secret, "admin", &[], &["*"], 3600);
            service_kit::auth::insert_bearer(request.metadata_mut(), &token);
        }
        client
            .get_board(request)
            .await
            .expect("get the default board")
            .into_inner()
    }
}

async fn start_bridge(
    database_url: &str,
    board_addr: SocketAddr,
    options: &Options,
) -> (SocketAddr, Running) {
    let mut config = agent_bridge::Config::new(database_url);
    config.listen_addr = "127.0.0.1:0".parse().unwrap();
    config.board_service_url = if options.board_service_down {
        format!("http://{}", closed_port())
    } else {
        format!("http://{board_addr}")
    };
    config.agent_url = options.agent_url.clone();
    config.agent_timeout = options.agent_timeout;
    config.builtin_token_delay = options.token_delay;
    config.socket_queue = options.socket_queue;
    config.replay_frames = options.replay_frames;
    if let Some(secret) = &options.jwt_secret {
        config.auth = service_kit::auth::AuthConfig::with_secret(secret);
    }
    config.allowed_origins = options.allowed_origins.clone();
    config.limits = options.limits;
    config.run_lease = options.run_lease;
    config.approvals = options.approvals;
    config.nats_url = options.nats_url.clone();
    let app = agent_bridge::App::build(config)
        .await
        .expect("agent-bridge starts");
    let addr = app.local_addr();
    (
        addr,
        Running::spawn(addr, |stopped| app.run_until_stopped(stopped)),
    )
}

/// An address where nothing listens.
pub fn closed_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

/// An HS256 token for `sub` with these grants, expiring `ttl_secs` from now
/// (negative: already expired).
pub fn token(secret: &str, sub: &str, read: &[&str], write: &[&str], ttl_secs: i64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let claims = serde_json::json!({
        "sub": sub,
        "exp": now + ttl_secs,
        "iat": now,
        "read": read,
        "write": write,
    });
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}
