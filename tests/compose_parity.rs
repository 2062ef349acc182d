//! `docker compose up` without Docker: every service of docker-compose.yml
//! is started from its own `command`, as a local process, with that
//! service's environment (service hostnames mapped to 127.0.0.1, the
//! database to a test database), and each healthcheck command must pass.
//! Then the standalone binaries must serve what a compose user opens: the
//! page and `/api/boards` on the gateway, a board over WebSocket, one chat
//! turn whose task appears on the board, and the same in headless Chromium:
//! the page shows the live board, and a chat turn typed into it puts a card
//! on it.

mod common {
    pub mod compose_file;
    pub mod service_binaries;
}

use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::Duration,
};

use common::compose_file::{Healthcheck, compose};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use service_kit::test_database::TestDatabase;
use tokio_tungstenite::{connect_async, tungstenite::Message};

const OURS: [&str; 3] = ["board-service", "ws-gateway", "agent-bridge"];

/// `${VAR:-default}` as compose resolves it with VAR unset.
fn resolve(value: &serde_yaml::Value) -> String {
    let text = match value {
        serde_yaml::Value::String(s) => s.clone(),
        other => serde_yaml::to_string(other).unwrap().trim().to_owned(),
    };
    let mut out = String::new();
    let mut rest = text.as_str();
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').map_or(rest.len(), |e| start + e);
        let inner = &rest[start + 2..end];
        out.push_str(inner.split_once(":-").map_or("", |(_, default)| default));
        rest = rest.get(end + 1..).unwrap_or("");
    }
    out.push_str(rest);
    out
}

/// Kills the services when the test ends, however it ends.
struct Processes(Vec<Child>);

impl Drop for Processes {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn healthy(service: &str, check: &Healthcheck) -> bool {
    let mut argv = check
        .test
        .iter()
        .skip_while(|a| *a == "CMD" || *a == "CMD-SHELL");
    let Some(program) = argv.next() else {
        return true;
    };
    let program = if OURS.contains(&program.as_str()) {
        common::service_binaries::dir().join(program)
    } else {
        PathBuf::from(program)
    };
    Command::new(&program)
        .args(argv)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap_or_else(|e| panic!("{service}'s healthcheck {program:?} cannot run: {e}"))
        .success()
}

#[tokio::test]
async fn compose_services_run_as_local_processes_and_serve_the_board_and_chat() {
    common::service_binaries::build();

    let db = TestDatabase::create().await;
    let compose = compose();
    let mut processes = Processes(Vec::new());
    for name in OURS {
        let service = &compose.services[name];
        let mut command = Command::new(common::service_binaries::dir().join(&service.command[0]));
        command.args(&service.command[1..]).env_clear();
        command.env("PATH", std::env::var_os("PATH").unwrap_or_default());
        for (key, value) in &service.environment {
            let value = match key.as_str() {
                "DATABASE_URL" => db.url().to_owned(),
                _ => OURS.iter().fold(resolve(value), |v, host| {
                    v.replace(&format!("//{host}:"), "//127.0.0.1:")
                }),
            };
            command.env(key, value);
        }
        // Compose gives each container its own ports; here the services
        // share a host, so board-service's metrics port must not collide.
        if name == "board-service" {
            command.env("BOARD_SERVICE_METRICS_ADDR", "off");
        }
        command.stdout(Stdio::null()).stderr(Stdio::null());
        processes.0.push(
            command
                .spawn()
                .unwrap_or_else(|e| panic!("start {name}: {e}")),
        );
        let check = service
            .healthcheck
            .as_ref()
            .expect("every service has a healthcheck");
        let mut tries = 0;
        while !healthy(name, check) {
            tries += 1;
            assert!(
                tries < 100,
                "{name} never passed its healthcheck {:?}",
                check.test
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    let http = reqwest::Client::new();
    let page = http.get("http://127.0.0.1:4002/").send().await.unwrap();
    assert_eq!(
        page.status(),
        200,
        "the standalone gateway serves the web UI"
    );
    assert!(page.text().await.unwrap().contains("<html"));
    let boards: Value = http
        .get("http://127.0.0.1:4002/api/boards")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        boards["boards"]
            .as_array()
            .unwrap()
            .iter()
            .any(|b| b["slug"] == "default"),
        "{boards}"
    );

    let (mut board, _) = connect_async("ws://127.0.0.1:4002/ws")
        .await
        .expect("board socket");
    board
        .send(Message::text(
            json!({"type": "subscribe", "boardId": "default"}).to_string(),
        ))
        .await
        .unwrap();
    next_of(&mut board, "board.sync").await;

    let (mut chat, _) = connect_async("ws://127.0.0.1:8001/ws/chat")
        .await
        .expect("chat socket");
    chat.send(Message::text(
        json!({"type": "message", "data": {"content": "Create a P1 story for compose parity"}})
            .to_string(),
    ))
    .await
    .unwrap();
    let reply = next_of(&mut chat, "message").await;
    assert!(reply["data"]["content"].as_str().is_some(), "{reply}");
    let created = next_of(&mut board, "task.created").await;
    assert!(
        created["data"]["title"]
            .as_str()
            .unwrap_or("")
            .to_lowercase()
            .contains("compose parity"),
        "{created}"
    );

    // What a compose user does: open the page in a browser, see the live
    // board, and chat a task onto it.
    let turn = page_chat_turn(
        "http://127.0.0.1:4002/?board=default",
        "Create a P2 task for the browser parity check",
        "The browser parity check",
    )
    .await;
    assert_eq!(turn["ok"], true, "{turn}");
    assert!(
        turn["lanes"].as_array().is_some_and(|l| !l.is_empty()),
        "{turn}"
    );
    assert_eq!(turn["transport"], "websocket", "{turn}");
    assert_eq!(turn["errors"], json!([]), "{turn}");
}

/// `web/tools/page-chat-turn.mjs` in headless Chromium: its JSON line.
async fn page_chat_turn(url: &str, message: &str, card: &str) -> Value {
    let web = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("web");
    let args = [url.to_owned(), message.to_owned(), card.to_owned()];
    let output = tokio::task::spawn_blocking(move || {
        service_kit::testing::ensure_node_packages(&web, &["playwright-core"]);
        Command::new("node")
            .arg(web.join("tools/page-chat-turn.mjs"))
            .args(args)
            .output()
            .expect("node runs (apt-get install nodejs npm chromium)")
    })
    .await
    .expect("the page script");
    let stdout = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str(stdout.lines().last().unwrap_or_default()).unwrap_or_else(|_| {
        panic!(
            "no JSON from the page script: {stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

async fn next_of<S>(socket: &mut S, kind: &str) -> Value
where
    S: StreamExt<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    loop {
        let message = tokio::time::timeout(Duration::from_secs(20), socket.next())
            .await
            .unwrap_or_else(|_| panic!("no {kind} frame within 20 s"))
            .expect("socket open")
            .expect("frame reads");
        if let Message::Text(text) = message {
            let frame: Value = serde_json::from_str(&text).unwrap();
            if frame["type"] == "error" && kind != "error" {
                panic!("error frame while waiting for {kind}: {frame}");
            }
            if frame["type"] == kind {
                return frame;
            }
        }
    }
}
