//! Seed 000's Socket.IO frontend against the real gateway and
//! board-service, through the published `socket.io-client` 4.x in Node
//! (`web/tools/socketio-client.mjs`; `npm ci --prefix web` installs it).

mod common;

use std::{path::PathBuf, process::Command};

use common::Stack;
use serde_json::{Value, json};

fn web() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../web")
}

/// Runs the client script; its one JSON line.
async fn run_client(url: String, board: &str, mode: &str, token: Option<String>) -> Value {
    let board = board.to_owned();
    let mode = mode.to_owned();
    let output = tokio::task::spawn_blocking(move || {
        service_kit::testing::ensure_node_packages(&web(), &["socket.io-client"]);
        let mut command = Command::new("node");
        command
            .arg(web().join("tools/socketio-client.mjs"))
            .args([url, board, mode]);
        command.args(token);
        command
            .output()
            .expect("node runs (npm ci --prefix web first)")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(line).unwrap_or_else(|_| {
        panic!(
            "no JSON from the client: {stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

/// The board versions of `events` from `from` on, one entry per version
/// (a move is two events of one version: `task:updated` and
/// `task:status_changed`).
fn versions(events: &[Value]) -> Vec<u64> {
    let mut versions: Vec<u64> = events
        .iter()
        .filter(|e| e["event"] != "board:sync" && e["event"] != "notification")
        .map(|e| {
            e["boardVersion"]
                .as_u64()
                .expect("every event has boardVersion")
        })
        .collect();
    versions.dedup();
    versions
}

#[tokio::test]
async fn socket_io_client_joins_writes_and_catches_up_after_a_reconnect_with_nothing_lost_or_repeated()
 {
    let mut stack = Stack::start().await;
    let board = stack.board("seed000").await;
    let report = run_client(
        format!("http://{}", stack.gateway.addr),
        "seed000",
        "scenario",
        None,
    )
    .await;
    assert!(report.get("error").is_none(), "{report}");
    let acks = report["acks"].as_array().unwrap();
    assert_eq!(acks.len(), 7, "{acks:?}");
    let refused = &acks[3];
    assert_eq!(refused["ok"], false);
    assert_eq!(refused["error"]["code"], "invalid_frame");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("colour")
    );
    let created = &acks[0];
    assert_eq!(created["ok"], true);
    assert_eq!(created["task"]["title"], "first");
    assert_eq!(created["version"], 1);

    let b = report["b"].as_array().unwrap();
    let syncs: Vec<_> = b.iter().filter(|e| e["event"] == "board:sync").collect();
    assert_eq!(
        syncs.len(),
        1,
        "the rejoin resumed instead of resyncing: {b:?}"
    );
    let names: Vec<_> = b.iter().map(|e| e["event"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "board:sync",
            "task:created",
            "task:updated",
            "task:updated",
            "task:status_changed",
            // Written while B was away:
            "task:created",
            "task:updated",
            "task:deleted",
        ],
        "{b:?}"
    );
    assert!(b.iter().all(|e| e["projectId"] == "seed000"), "{b:?}");
    assert_eq!(b[1]["title"], "first");
    assert_eq!(b[2]["title"], "renamed");
    assert_eq!(
        (&b[4]["fromLane"], &b[4]["lane"]),
        (&json!("todo"), &json!("done"))
    );
    assert_eq!(b[5]["title"], "while away");
    // One version after another, none missing, none twice.
    let seen = versions(b);
    let first = b[0]["boardVersion"].as_u64().unwrap();
    let expected: Vec<u64> = (first + 1..=report["target"].as_u64().unwrap()).collect();
    assert_eq!(seen, expected);
    assert!(report["awayFrom"].as_u64().unwrap() < report["target"].as_u64().unwrap());

    // And board-service agrees with what the clients saw.
    let snapshot = stack
        .api
        .get_board(protocol::v1::GetBoardRequest {
            board_id: board.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(snapshot.version, report["target"].as_u64().unwrap());
    let titles: Vec<_> = snapshot.tasks.iter().map(|t| t.title.as_str()).collect();
    assert_eq!(titles, ["while away, renamed"]);
}

const SECRET: &str = "socketio-secret";

fn token(sub: &str) -> String {
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 60;
    jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &json!({"exp": exp, "sub": sub, "read": ["*"], "write": ["*"]}),
        &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap()
}

#[tokio::test]
async fn a_bad_or_missing_token_is_refused_at_connect_and_a_good_one_joins() {
    let mut stack =
        Stack::start_with(|c| c.auth = service_kit::auth::AuthConfig::with_secret(SECRET)).await;
    stack.board("guarded").await;
    let url = format!("http://{}", stack.gateway.addr);
    let bad = run_client(url.clone(), "guarded", "connect", Some("not-a-jwt".into())).await;
    assert_eq!(bad["connected"], false, "{bad}");
    assert!(
        bad["error"].as_str().unwrap().starts_with("unauthorized"),
        "{bad}"
    );
    let none = run_client(url.clone(), "guarded", "connect", None).await;
    assert_eq!(none["connected"], false, "{none}");
    assert!(
        none["error"]
            .as_str()
            .unwrap()
            .contains("token is required"),
        "{none}"
    );
    let good = run_client(url, "guarded", "connect", Some(token("ann"))).await;
    assert_eq!(good["connected"], true, "{good}");
    assert_eq!(good["join"]["ok"], true, "{good}");
    assert_eq!(good["join"]["slug"], "guarded", "{good}");
}

#[tokio::test]
async fn socketio_addr_serves_socket_io_on_a_port_of_its_own() {
    let mut stack = Stack::start().await;
    stack.board("own-port").await;
    let mut config = ws_gateway::Config::new(format!("http://{}", stack.board_service.addr));
    config.socketio_addr = Some("127.0.0.1:0".parse().unwrap());
    let app = ws_gateway::App::build(config).await.unwrap();
    let addr = app.socketio_addr().expect("SOCKETIO_ADDR is bound");
    let gateway = common::spawn_gateway(app);
    let report = run_client(format!("http://{addr}"), "own-port", "connect", None).await;
    assert_eq!(report["join"]["ok"], true, "{report}");
    gateway.stop().await;
}

#[tokio::test]
async fn joining_a_project_joins_all_its_boards_and_a_board_added_later() {
    use protocol::v1::{CreateProjectRequest, SetBoardProjectRequest};
    use tokio::io::{AsyncBufReadExt, BufReader};

    let mut stack = Stack::start().await;
    let first = stack.board("launch-web").await;
    let second = stack.board("launch-api").await;
    let later = stack.board("launch-docs").await;
    let outside = stack.board("elsewhere").await;
    stack
        .api
        .create_project(CreateProjectRequest {
            name: "Launch".into(),
            slug: Some("launch".into()),
            board_ids: vec![first.id.clone(), second.id.clone()],
            ..Default::default()
        })
        .await
        .expect("create project");

    let web = web();
    tokio::task::spawn_blocking({
        let web = web.clone();
        move || service_kit::testing::ensure_node_packages(&web, &["socket.io-client"])
    })
    .await
    .unwrap();
    let mut child = tokio::process::Command::new("node")
        .arg(web.join("tools/socketio-client.mjs"))
        .args([
            format!("http://{}", stack.gateway.addr),
            "launch".into(),
            "project".into(),
        ])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node runs (npm ci --prefix web first)");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut last = String::new();
    while let Some(line) =
        tokio::time::timeout(std::time::Duration::from_secs(60), lines.next_line())
            .await
            .expect("the client reports within a minute")
            .unwrap()
    {
        if line.contains(r#""step":"joined""#) {
            // A board joins the project while the clients are in its room.
            stack
                .api
                .set_board_project(SetBoardProjectRequest {
                    board_id: later.id.clone(),
                    project_id: "launch".into(),
                    ..Default::default()
                })
                .await
                .expect("add the third board");
        }
        last = line;
    }
    child.wait().await.unwrap();
    let report: Value = serde_json::from_str(&last).unwrap_or_else(|_| panic!("{last}"));
    assert!(report.get("error").is_none(), "{report}");

    let join = &report["joins"]["b"][0];
    assert_eq!(join["ok"], true, "{join}");
    assert_eq!(join["boardIds"], json!([first.id, second.id]), "{join}");
    assert_eq!(report["third"], later.id);
    let b = report["b"].as_array().unwrap();
    let created = |title: &str| {
        b.iter()
            .find(|e| e["event"] == "task:created" && e["title"] == title)
            .unwrap_or_else(|| panic!("{title} in {b:?}"))
    };
    // No boardId: the project's first (oldest) board.
    assert_eq!(created("no board given")["boardId"], first.id);
    assert_eq!(created("second board")["boardId"], second.id);
    assert_eq!(created("third board")["boardId"], later.id);
    // Every event is the project's, and none is from outside it.
    assert!(b.iter().all(|e| e["projectId"] == "launch"), "{b:?}");
    assert!(b.iter().all(|e| e["boardId"] != outside.id), "{b:?}");
    let announced = b.iter().filter(|e| e["event"] == "project:updated").count();
    assert!(
        announced >= 1,
        "the project's boards announced the new one: {b:?}"
    );
    // One sync per board: the added board from its start, the others once.
    let mut syncs: Vec<_> = b
        .iter()
        .filter(|e| e["event"] == "board:sync")
        .map(|e| e["boardId"].as_str().unwrap())
        .collect();
    syncs.sort();
    let mut boards = [first.id.as_str(), second.id.as_str(), later.id.as_str()];
    boards.sort();
    assert_eq!(syncs, boards, "{b:?}");

    // board-service agrees where each task went.
    for (board, title) in [
        (&first, "no board given"),
        (&second, "second board"),
        (&later, "third board"),
    ] {
        let snapshot = stack
            .api
            .get_board(protocol::v1::GetBoardRequest {
                board_id: board.id.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        let titles: Vec<_> = snapshot.tasks.iter().map(|t| t.title.as_str()).collect();
        assert_eq!(titles, [title], "{}", board.slug);
    }
}
