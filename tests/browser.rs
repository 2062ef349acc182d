//! The Kanban board and the PM chat in headless Chromium against the real
//! services: runs `web/tests/e2e.test.mjs` (Playwright) with board-service,
//! ws-gateway (serving the embedded UI) and agent-bridge running here, and
//! restarts the gateway when the script asks, over its stdin/stdout.
//!
//! Needs Node.js and Chromium (`apt-get install nodejs npm chromium`);
//! installs the pinned `web/` packages with `npm ci` when they are missing.

use std::{net::SocketAddr, path::PathBuf, process::Stdio, time::Duration};

use service_kit::{test_database::TestDatabase, testing::RunningService};
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    process::Command,
};

const SCRIPT_LIMIT: Duration = Duration::from_secs(300);

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A gateway serving the UI; stopped and started again on the same address.
type Gateway = RunningService;

async fn start_gateway(board_url: &str, addr: SocketAddr) -> (Gateway, SocketAddr) {
    let mut config = ws_gateway::Config::new(board_url);
    config.listen_addr = addr;
    // Binding the same port right after a stop may race the old socket's close.
    let mut attempt = 0;
    let app = loop {
        match ws_gateway::App::build(config.clone()).await {
            Ok(app) => {
                break app;
            }
            Err(err) if attempt < 50 => {
                attempt += 1;
                eprintln!("gateway not bound yet ({err:#}); retrying");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(err) => panic!("start ws-gateway: {err:#}"),
        }
    };
    let addr = app.local_addr();
    let gateway = RunningService::spawn(addr, |stopped| app.run_until_stopped(stopped));
    (gateway, addr)
}

async fn ensure_node_packages() {
    let web = repo().join("web");
    tokio::task::spawn_blocking(move || {
        service_kit::testing::ensure_node_packages(&web, &["playwright-core", "socket.io-client"])
    })
    .await
    .expect("npm ci");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_board_and_the_chat_work_in_a_real_browser() {
    assert!(
        std::path::Path::new(
            &std::env::var("CHROMIUM_PATH").unwrap_or_else(|_| "/usr/bin/chromium".into())
        )
        .exists(),
        "Chromium is required for the browser tests: apt-get install chromium (or set CHROMIUM_PATH)"
    );
    ensure_node_packages().await;
    let db = TestDatabase::create().await;

    let mut board_config = board_service::Config::new(db.url());
    board_config.listen_addr = "127.0.0.1:0".parse().expect("addr");
    board_config.default_board = Some("default".into());
    let board = board_service::App::build(board_config)
        .await
        .expect("board-service");
    let board_addr = board.local_addr();
    let board_url = format!("http://{board_addr}");
    tokio::spawn(board.run_until_stopped(std::future::pending()));

    let mut bridge_config = agent_bridge::Config::new(db.url());
    bridge_config.listen_addr = "127.0.0.1:0".parse().expect("addr");
    bridge_config.board_service_url = board_url.clone();
    let bridge = agent_bridge::App::build(bridge_config)
        .await
        .expect("agent-bridge");
    let bridge_addr = bridge.local_addr();
    tokio::spawn(bridge.run_until_stopped(std::future::pending()));

    let (gateway, gateway_addr) =
        start_gateway(&board_url, "127.0.0.1:0".parse().expect("addr")).await;
    let mut gateway = Some(gateway);

    let mut script = Command::new("node")
        .arg(repo().join("web/tests/e2e.test.mjs"))
        .env("BOARDWIRE_GRPC_ADDR", board_addr.to_string())
        .env("BOARDWIRE_WEB_URL", format!("http://{gateway_addr}/"))
        .env("BOARDWIRE_CHAT_URL", format!("ws://{bridge_addr}/ws/chat"))
        .env("BOARDWIRE_GATEWAY_CONTROL", "stdio")
        .env("BOARDWIRE_ARTIFACTS", repo().join("test-artifacts"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node is required for the browser tests (apt-get install nodejs)");
    let mut to_script = script.stdin.take().expect("stdin");
    let mut lines = BufReader::new(script.stdout.take().expect("stdout")).lines();

    let conversation = async {
        while let Some(line) = lines.next_line().await.expect("read script output") {
            println!("{line}");
            match line.trim() {
                "STOP_GATEWAY" => {
                    gateway.take().expect("gateway is running").stop().await;
                    to_script
                        .write_all(b"GATEWAY_STOPPED\n")
                        .await
                        .expect("tell script");
                }
                "START_GATEWAY" => {
                    let (restarted, _) = start_gateway(&board_url, gateway_addr).await;
                    gateway = Some(restarted);
                    to_script
                        .write_all(b"GATEWAY_STARTED\n")
                        .await
                        .expect("tell script");
                }
                _ => {}
            }
        }
        script.wait().await.expect("wait for script")
    };
    let status = tokio::time::timeout(SCRIPT_LIMIT, conversation)
        .await
        .expect("browser tests finish within 5 minutes");
    assert!(status.success(), "the browser tests failed (output above)");
}

/// The page against scripted gateway and bridge (refused moves, forms kept,
/// queued chat, offline states) and the client modules against a scripted
/// socket: `node --test web/tests/` (the real-stack suite skips itself there).
#[tokio::test]
async fn the_page_and_its_client_modules_pass_their_scripted_tests() {
    assert!(
        std::path::Path::new(
            &std::env::var("CHROMIUM_PATH").unwrap_or_else(|_| "/usr/bin/chromium".into())
        )
        .exists(),
        "Chromium is required for the browser tests: apt-get install chromium (or set CHROMIUM_PATH)"
    );
    ensure_node_packages().await;
    let status = Command::new("node")
        .args(["--test", "--test-concurrency=1"])
        .arg(repo().join("web/tests/"))
        .env_remove("BOARDWIRE_GRPC_ADDR")
        .env("BOARDWIRE_ARTIFACTS", repo().join("test-artifacts"))
        .kill_on_drop(true)
        .status();
    let status = tokio::time::timeout(SCRIPT_LIMIT, status)
        .await
        .expect("the scripted browser tests finish within 5 minutes")
        .expect("node is required for the browser tests (apt-get install nodejs)");
    assert!(
        status.success(),
        "node --test web/tests/ failed (output above)"
    );
}

/// Seed 001's client: Chromium's own `EventSource` on `/api/events`, read
/// with `onmessage`; the gateway stops while publications go on, and the
/// browser's reconnect with `Last-Event-ID` gets exactly what it missed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eventsource_reads_channels_and_resumes_after_a_gateway_restart() {
    ensure_node_packages().await;
    let _ = service_kit::telemetry::init("browser-tests");
    let db = TestDatabase::create().await;
    let board_config = board_service::Config::new(db.url());
    let board_app = board_service::App::build(board_config)
        .await
        .expect("board-service starts");
    let board_addr = board_app.local_addr();
    let _board = RunningService::spawn(board_addr, |stopped| board_app.run_until_stopped(stopped));
    let board_url = format!("http://{board_addr}");
    let (gateway, gateway_addr) =
        start_gateway(&board_url, "127.0.0.1:0".parse().expect("addr")).await;
    let mut gateway = Some(gateway);
    let publish = |body: serde_json::Value| {
        async move {
            // board-service holds the history whether or not a gateway is up.
            let mut channels = protocol::v1::channel_service_client::ChannelServiceClient::connect(
                format!("http://{board_addr}"),
            )
            .await
            .expect("connect to board-service");
            channels
                .publish(protocol::v1::PublishRequest {
                    channel: body["channel"].as_str().unwrap_or_default().into(),
                    event: "message".into(),
                    data_json: body["message"].to_string(),
                    ttl_ms: 0,
                })
                .await
                .expect("publish");
        }
    };

    let mut script = Command::new("node")
        .arg(repo().join("web/tools/page-eventsource.mjs"))
        .arg(format!("http://{gateway_addr}/"))
        .arg("ai:jobs:status,ui:activity")
        .arg("4")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node is required for the browser tests (apt-get install nodejs)");
    let mut lines = BufReader::new(script.stdout.take().expect("stdout")).lines();
    let mut messages = Vec::new();
    let conversation = async {
        while let Some(line) = lines.next_line().await.expect("read script output") {
            println!("{line}");
            if line == "OPEN 1" {
                publish(serde_json::json!({"channel": "ai:jobs:status", "message": {"jobId": "job_1", "status": "running"}})).await;
                publish(serde_json::json!({"channel": "ui:activity", "message": {"who": "ann"}}))
                    .await;
            } else if let Some(message) = line.strip_prefix("MSG ") {
                messages.push(serde_json::from_str::<serde_json::Value>(message).expect("JSON"));
                if messages.len() == 2 {
                    gateway.take().expect("gateway is running").stop().await;
                    publish(serde_json::json!({"channel": "ai:jobs:status", "message": {"jobId": "job_1", "status": "completed"}})).await;
                    publish(
                        serde_json::json!({"channel": "ui:activity", "message": {"who": "bob"}}),
                    )
                    .await;
                    let (restarted, _) = start_gateway(&board_url, gateway_addr).await;
                    gateway = Some(restarted);
                }
            } else if line == "DONE" || line.starts_with("FAILED") {
                return line;
            }
        }
        "EXITED".to_owned()
    };
    let end = tokio::time::timeout(SCRIPT_LIMIT, conversation)
        .await
        .expect("the page finishes within 5 minutes");
    assert_eq!(end, "DONE", "the page script failed (output above)");
    // Order holds within a channel; two channels' feeds are independent.
    let on = |channel: &str| -> Vec<serde_json::Value> {
        messages
            .iter()
            .map(|m| m["data"].clone())
            .filter(|d| d["channel"] == channel)
            .map(|d| d["message"].clone())
            .collect()
    };
    assert_eq!(messages.len(), 4, "four messages in all");
    assert_eq!(
        on("ai:jobs:status"),
        [
            serde_json::json!({"jobId": "job_1", "status": "running"}),
            serde_json::json!({"jobId": "job_1", "status": "completed"}),
        ],
        "each message once, in order, the missed one after the reconnect"
    );
    assert_eq!(
        on("ui:activity"),
        [
            serde_json::json!({"who": "ann"}),
            serde_json::json!({"who": "bob"}),
        ],
        "each message once, in order, the missed one after the reconnect"
    );
    assert!(
        messages
            .iter()
            .all(|m| m["lastEventId"].as_str().is_some_and(|id| id.contains(':')))
    );
}

/// The planning model in the page: an epic's progress badge, its tasks'
/// epic chip, the sprint picker filtering the board, and a sprint started
/// and completed from the header (its unfinished task back in the backlog).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn epics_and_sprints_show_and_work_in_the_page() {
    use protocol::v1::{CreateBoardRequest, CreateSprintRequest, CreateTaskRequest, TaskKind};
    ensure_node_packages().await;
    let _ = service_kit::telemetry::init("browser-tests");
    let db = TestDatabase::create().await;
    let board_app = board_service::App::build(board_service::Config::new(db.url()))
        .await
        .expect("board-service starts");
    let board_addr = board_app.local_addr();
    let _board = RunningService::spawn(board_addr, |stopped| board_app.run_until_stopped(stopped));
    let (_gateway, gateway_addr) = start_gateway(
        &format!("http://{board_addr}"),
        "127.0.0.1:0".parse().expect("addr"),
    )
    .await;
    let mut api = protocol::v1::board_service_client::BoardServiceClient::connect(format!(
        "http://{board_addr}"
    ))
    .await
    .expect("gRPC");
    let board = api
        .create_board(CreateBoardRequest {
            name: "Plan".into(),
            slug: Some("plan".into()),
            ..Default::default()
        })
        .await
        .expect("board")
        .into_inner();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    let at = |secs| prost_types::Timestamp {
        seconds: secs,
        nanos: 0,
    };
    let sprint = api
        .create_sprint(CreateSprintRequest {
            board_id: board.id.clone(),
            name: "Sprint 1".into(),
            goal: "Checkout".into(),
            starts_at: Some(at(now)),
            ends_at: Some(at(now + 14 * 86_400)),
            request_id: "sprint-1".into(),
        })
        .await
        .expect("sprint")
        .into_inner();
    let task = |title: &str, lane: &str, kind: TaskKind, parent: &str, sprint: &str| {
        let request = CreateTaskRequest {
            board_id: board.id.clone(),
            lane_id: lane.into(),
            title: title.into(),
            kind: kind as i32,
            parent_id: parent.into(),
            sprint_id: sprint.into(),
            request_id: format!("create-{title}"),
            ..Default::default()
        };
        let mut api = api.clone();
        async move { api.create_task(request).await.expect("task").into_inner() }
    };
    let epic = task("Checkout epic", "todo", TaskKind::Epic, "", "").await;
    task("Pay by card", "todo", TaskKind::Story, &epic.id, &sprint.id).await;
    task("Receipt mail", "done", TaskKind::Task, &epic.id, "").await;
    task("Unplanned", "backlog", TaskKind::Task, "", "").await;

    let web = repo().join("web");
    let url = format!("http://{gateway_addr}/?board=plan&chat=off");
    let sprint_id = sprint.id.clone();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new("node")
            .arg(web.join("tools/page-planning.mjs"))
            .arg(url)
            .arg(sprint_id)
            .output()
            .expect("node runs (apt-get install nodejs npm chromium)")
    })
    .await
    .expect("the page script");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let seen: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|_| {
            panic!(
                "no JSON from page-planning.mjs: {stdout}\n{}",
                String::from_utf8_lossy(&output.stderr)
            )
        });
    assert_eq!(seen["ok"], true, "{seen}");
    assert_eq!(
        seen["progress"], "1/2",
        "one of the epic's two tasks is done: {seen}"
    );
    assert_eq!(seen["chip"], "↳ Checkout epic");
    assert_eq!(seen["all"].as_array().map(Vec::len), Some(4), "{seen}");
    assert_eq!(seen["inSprint"], serde_json::json!(["Pay by card"]));
    assert_eq!(seen["before"], "start");
    assert!(
        seen["started"]
            .as_str()
            .is_some_and(|s| s.contains("active")),
        "{seen}"
    );
    assert!(
        seen["backlog"]
            .as_array()
            .is_some_and(|b| b.iter().any(|t| t == "Pay by card")),
        "{seen}"
    );
    assert_eq!(seen["errors"], serde_json::json!([]), "{seen}");
}
