//! Seed 004's agents, unchanged: `tests/seed004/agents.py` is written to
//! the seed's document with the real python `websockets` package, against
//! `/ws/agents` of a real gateway and board-service.

mod common;

#[allow(dead_code)]
#[path = "../../agent-bridge/tests/common/python_env.rs"]
mod python_env;

use common::Stack;
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_written_to_seed_004_works_unchanged() {
    let stack = Stack::start_with(|gw| gw.metrics_channel_ms = 200).await;
    let python = tokio::task::spawn_blocking(|| python_env::python_for("tests/seed004"))
        .await
        .expect("a venv with websockets");
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/seed004/agents.py");
    let base = format!("ws://{}", stack.gateway.addr);
    let output = tokio::time::timeout(
        std::time::Duration::from_secs(120),
        tokio::process::Command::new(python)
            .arg(script)
            .arg(base)
            .output(),
    )
    .await
    .expect("the agents finish")
    .expect("python runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let seen: Value = serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|_| {
            panic!(
                "no JSON from agents.py: {stdout}\n{}",
                String::from_utf8_lossy(&output.stderr)
            )
        });

    let connected = &seen["connected"];
    assert_eq!(connected["type"], "connected", "{connected}");
    assert!(connected["client_id"].is_string() && connected["timestamp"].is_i64());
    assert_eq!(seen["subscribe_ack"]["success"], true, "{seen}");
    assert!(seen["subscribe_ack"]["timestamp"].is_i64());
    assert_eq!(seen["joined"]["channel"], "global");
    assert_eq!(seen["joined"]["data"]["session_id"], "def456");
    assert_eq!(seen["publish_ack"]["success"], true);
    let message = &seen["message"];
    assert_eq!(message["channel"], "agents/backend-laravel");
    assert_eq!(message["data"], json!({"content": "Hello!", "ttl": 60}));
    assert_eq!(seen["heartbeat"]["channel"], "global");
    assert!(seen["pong"]["timestamp"].is_i64());
    let error = &seen["error"];
    assert!(
        error["error"]
            .as_str()
            .is_some_and(|e| e.contains("channel")),
        "{error}"
    );
    assert_eq!(error["code"], "INVALID_CHANNEL", "seed 004's own code");
    assert!(
        error.get("type").is_none(),
        "seed 004 errors carry no type: {error}"
    );
    assert_eq!(seen["left"]["event"], "agent.disconnected");
    let metric = &seen["metric"];
    assert_eq!(metric["channel"], "metrics");
    assert!(
        metric["data"]["connected_clients"]
            .as_u64()
            .is_some_and(|n| n >= 1),
        "{metric}"
    );
}
