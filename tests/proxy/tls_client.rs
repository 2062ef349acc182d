//! What the TLS tests share: a test certificate, and `client.py` (Python's
//! `websockets` and `urllib` over `ssl`, trusting only its authority) run
//! against an `https://` base, with its findings checked.

use std::{path::Path, time::Duration};

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
