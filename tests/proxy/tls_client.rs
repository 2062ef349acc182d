//! What the TLS tests share: a test certificate, and `client.py` (Python's
//! `websockets` and `urllib` over `ssl`, trusting only its authority) run
//! against an `https://` base, with its findings checked.

use std::{net::SocketAddr, path::Path, time::Duration};

use service_kit::{test_database::TestDatabase, testing::RunningService};

#[allow(dead_code)]
#[path = "../../agent-bridge/tests/common/python_env.rs"]
mod python_env;

pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

pub use service_kit::testing::test_cert;

/// Runs `client.py` against the gateway at `base` (and, given, the chat at
/// `chat`), trusting `ca`; returns what it saw.
pub async fn run_client(
    base: &str,
    board: &str,
    ca: &Path,
    chat: Option<&str>,
) -> serde_json::Value {
    let python = tokio::task::spawn_blocking(|| python_env::python_for("ws-gateway/tests/seed004"))
        .await
        .expect("a venv with websockets");
    let mut command = tokio::process::Command::new(python);
    command
        .arg(repo().join("tests/proxy/client.py"))
        .arg(base)
        .arg(board)
        .arg(ca);
    if let Some(chat) = chat {
        command.arg(chat);
    }
    let output = tokio::time::timeout(Duration::from_secs(120), command.output())
        .await
        .expect("the TLS client finishes")
        .expect("python runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str(stdout.lines().last().unwrap_or_default()).unwrap_or_else(|_| {
        panic!(
            "no JSON from client.py: {stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

/// The board path worked: wss:// frames and a command, both SSE streams.
pub fn assert_board_path(seen: &serde_json::Value) {
    assert_eq!(seen["sync_lanes"][0], "backlog", "{seen}");
    assert_eq!(seen["created_title"], "Through the proxy");
    assert!(
        seen["board_sse_type"]
            .as_str()
            .unwrap_or_default()
            .starts_with("text/event-stream")
    );
    assert_eq!(
        seen["board_sse_tasks"], 1,
        "the command's task is on the board: {seen}"
    );
    assert_eq!(seen["published"]["offset"], 1);
    assert_eq!(
        seen["job_event"],
        serde_json::json!({"channel": "ai:jobs:status", "message": {"jobId": "job_123", "status": "completed"}})
    );
}

/// board-service, a gateway and a bridge in-process over one fresh
/// database, and a board to watch; stopped when dropped.
pub struct Services {
    pub gateway: SocketAddr,
    pub bridge: SocketAddr,
    pub board_id: String,
    _running: Vec<RunningService>,
    _db: TestDatabase,
}

impl Services {
    pub async fn start(
        tweak_gateway: impl FnOnce(&mut ws_gateway::Config),
        tweak_bridge: impl FnOnce(&mut agent_bridge::Config),
    ) -> Self {
        let db = TestDatabase::create().await;
        let board_app = board_service::App::build(board_service::Config::new(db.url()))
            .await
            .expect("board-service starts");
        let board_addr = board_app.local_addr();
        let board =
            RunningService::spawn(board_addr, |stopped| board_app.run_until_stopped(stopped));

        let mut gateway_config = ws_gateway::Config::new(format!("http://{board_addr}"));
        tweak_gateway(&mut gateway_config);
        let gateway_app = ws_gateway::App::build(gateway_config)
            .await
            .expect("gateway starts");
        let gateway = gateway_app.local_addr();
        let gateway_running =
            RunningService::spawn(gateway, |stopped| gateway_app.run_until_stopped(stopped));

        let mut bridge_config = agent_bridge::Config::new(db.url());
        bridge_config.listen_addr = "127.0.0.1:0".parse().unwrap();
        bridge_config.board_service_url = format!("http://{board_addr}");
        bridge_config.builtin_token_delay = Duration::ZERO;
        tweak_bridge(&mut bridge_config);
        let bridge_app = agent_bridge::App::build(bridge_config)
            .await
            .expect("agent-bridge starts");
        let bridge = bridge_app.local_addr();
        let bridge_running =
            RunningService::spawn(bridge, |stopped| bridge_app.run_until_stopped(stopped));

        let mut api = protocol::v1::board_service_client::BoardServiceClient::connect(format!(
            "http://{board_addr}"
        ))
        .await
        .expect("gRPC");
        let created = api
            .create_board(protocol::v1::CreateBoardRequest {
                name: "Through TLS".into(),
                slug: Some("through-tls".into()),
                ..Default::default()
            })
            .await
            .expect("create board")
            .into_inner();
        Self {
            gateway,
            bridge,
            board_id: created.id,
            _running: vec![bridge_running, gateway_running, board],
            _db: db,
        }
    }
}
