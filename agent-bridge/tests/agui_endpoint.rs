//! `POST /agui` driven by the published AG-UI client (`@ag-ui/client`'s
//! HttpAgent, in Node): a turn of the built-in agent arrives as AG-UI events
//! with the tool call and the text, in the same session store as the chat,
//! and aborting the client cancels the run.

mod common;

use std::{path::PathBuf, time::Duration};

use common::{Options, PATIENCE, Stack};
use serde_json::{Value, json};

fn web() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../web")
}

/// `npm ci --prefix web` unless the client package is there already.
async fn ensure_client() {
    tokio::task::spawn_blocking(|| {
        service_kit::testing::ensure_node_packages(&web(), &["@ag-ui/client"])
    })
    .await
    .expect("npm ci");
}

/// One turn through HttpAgent: what the client saw.
async fn client_turn(stack: &Stack, thread: &str, content: &str, mode: &str) -> Value {
    ensure_client().await;
    let output = tokio::time::timeout(
        PATIENCE,
        tokio::process::Command::new("node")
            .arg(web().join("tools/agui-run.mjs"))
            .args([&stack.http_url("/agui"), thread, content, mode])
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the AG-UI client finished in time")
    .expect("run node");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the client failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(stdout.lines().last().unwrap_or("")).expect("one JSON line")
}

fn types(seen: &Value) -> Vec<String> {
    seen["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn http_agent_runs_a_turn_and_sees_the_tool_call_the_text_and_the_board() {
    let stack = Stack::start().await;
    let seen = client_turn(&stack, "agui-1", "Create a P1 story for login", "").await;
    assert_eq!(seen["error"], Value::Null, "{seen}");
    let types = types(&seen);
    // Shown with --nocapture: what the client saw, for the issue note.
    println!("HttpAgent saw: {}", types.join(" "));
    assert_eq!(
        types.first().map(String::as_str),
        Some("RUN_STARTED"),
        "{types:?}"
    );
    assert_eq!(
        types.last().map(String::as_str),
        Some("RUN_FINISHED"),
        "{types:?}"
    );
    for wanted in [
        "STATE_SNAPSHOT",
        "TOOL_CALL_START",
        "TOOL_CALL_ARGS",
        "TOOL_CALL_END",
        "TOOL_CALL_RESULT",
        "TEXT_MESSAGE_START",
        "TEXT_MESSAGE_CONTENT",
        "TEXT_MESSAGE_END",
    ] {
        assert!(types.iter().any(|t| t == wanted), "no {wanted}: {types:?}");
    }
    let events = seen["events"].as_array().unwrap();
    assert!(
        events
            .iter()
            .any(|e| e["type"] == "TOOL_CALL_START" && e["toolCallName"] == "create_task")
    );
    assert!(
        events
            .iter()
            .any(|e| e["type"] == "STATE_SNAPSHOT" && e["hasBoard"] == true)
    );
    // The client's own view: the assistant's tool call and its answer.
    let text: String = events
        .iter()
        .filter(|e| e["type"] == "TEXT_MESSAGE_CONTENT")
        .map(|e| e["delta"].as_str().unwrap())
        .collect();
    assert!(text.contains("Login"), "{text}");
    let board = stack.board().await;
    assert_eq!(board.tasks.iter().filter(|t| t.title == "Login").count(), 1);
    // The chat sees the same session: the thread is the chat session.
    let history: Value = reqwest::get(stack.http_url("/api/sessions/agui-1/messages"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let roles: Vec<&str> = history["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["user", "assistant"], "{history}");

    // The same message again (same id): the same answer, no second task.
    let again = client_turn(&stack, "agui-1", "Create a P1 story for login", "").await;
    assert_eq!(again["error"], Value::Null, "{again}");
    assert_eq!(
        self::types(&again).last().map(String::as_str),
        Some("RUN_FINISHED")
    );
    let board = stack.board().await;
    assert_eq!(board.tasks.iter().filter(|t| t.title == "Login").count(), 1);
    stack.stop().await;
}

#[tokio::test]
async fn aborting_the_client_cancels_the_run() {
    let stack = Stack::start_with(Options {
        token_delay: Duration::from_millis(100),
        ..Options::default()
    })
    .await;
    let seen = client_turn(
        &stack,
        "agui-abort",
        "Create a P2 task for the abort check",
        "abort-after-first-token",
    )
    .await;
    assert!(
        types(&seen).contains(&"TEXT_MESSAGE_CONTENT".to_owned()),
        "{seen}"
    );
    let pool = sqlx::PgPool::connect(stack.db.url()).await.unwrap();
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let status: String =
            sqlx::query_scalar("SELECT status FROM chat_runs WHERE session_id = 'agui-abort'")
                .fetch_one(&pool)
                .await
                .unwrap();
        if status == "cancelled" {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the run was not cancelled: {status}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stack.stop().await;
}

/// A delete waits for approval: the first request ends with an `interrupt`
/// outcome naming the tool call, and the client's `resume` answers it; the
/// resumed request carries the rest of the run.
#[tokio::test]
async fn an_approval_is_an_interrupt_that_the_client_resumes() {
    let stack = Stack::start().await;
    let made = client_turn(
        &stack,
        "agui-approve",
        "Create a P2 task for the interrupt check",
        "",
    )
    .await;
    assert_eq!(made["error"], Value::Null, "{made}");
    let seen = client_turn(
        &stack,
        "agui-approve-2",
        "delete The interrupt check",
        "approve",
    )
    .await;
    assert_eq!(seen["error"], Value::Null, "{seen}");
    let first = seen["events"].as_array().unwrap();
    let finished = first.last().unwrap();
    assert_eq!(
        (finished["type"].as_str(), finished["outcome"].as_str()),
        (Some("RUN_FINISHED"), Some("interrupt")),
        "{seen}"
    );
    let interrupt = &seen["interrupts"][0];
    assert_eq!(interrupt["reason"], "tool_approval");
    assert!(
        interrupt["message"]
            .as_str()
            .unwrap()
            .contains("The interrupt check")
    );
    // The first request ran nothing: the call's result only comes on resume.
    assert!(
        first.iter().all(|e| e["type"] != "TOOL_CALL_RESULT"),
        "{first:?}"
    );
    let resumed = types(&json!({"events": seen["resumed"]}));
    println!("HttpAgent resumed: {}", resumed.join(" "));
    assert_eq!(resumed.first().map(String::as_str), Some("RUN_STARTED"));
    assert!(
        resumed.contains(&"TOOL_CALL_RESULT".to_owned()),
        "{resumed:?}"
    );
    assert_eq!(resumed.last().map(String::as_str), Some("RUN_FINISHED"));
    assert!(
        stack
            .board()
            .await
            .tasks
            .iter()
            .all(|t| t.title != "The interrupt check"),
        "the approved delete ran"
    );
    stack.stop().await;
}
