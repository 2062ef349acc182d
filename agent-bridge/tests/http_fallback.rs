//! The HTTP fallback and persistence across bridge restarts.

mod common;

use common::{Options, Stack, Ws, closed_port};
use protocol::chat_frames::ServerFrame;
use serde_json::{Value, json};

async fn post_chat(stack: &Stack, body: Value) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(stack.http_url("/api/chat"))
        .json(&body)
        .send()
        .await
        .expect("POST /api/chat");
    let status = response.status().as_u16();
    (status, response.json().await.expect("a JSON body"))
}

async fn history(stack: &Stack, session: &str) -> (u16, Value) {
    let response = reqwest::get(stack.http_url(&format!("/api/sessions/{session}/messages")))
        .await
        .expect("GET messages");
    let status = response.status().as_u16();
    (status, response.json().await.expect("a JSON body"))
}

#[tokio::test]
async fn post_chat_returns_the_finished_run_and_history_keeps_it_across_a_restart() {
    let mut stack = Stack::start().await;
    let (status, run) = post_chat(
        &stack,
        json!({"content": "Create a P0 bug for login loop", "session_id": "http-session-1"}),
    )
    .await;
    assert_eq!(status, 200, "{run}");
    assert_eq!(run["sessionId"], "http-session-1");
    assert_eq!(run["status"], "completed");
    assert!(
        run["message"]["content"]
            .as_str()
            .unwrap()
            .contains("Login loop")
    );
    assert_eq!(
        run["message"]["artifacts"][0]["output"]["priority"],
        "critical"
    );
    assert_eq!(run["toolExecutions"][0]["status"], "completed");
    assert_eq!(run["toolExecutions"][0]["tool"], "create_task");

    stack.restart_bridge().await;
    let (status, body) = history(&stack, "http-session-1").await;
    assert_eq!(status, 200, "{body}");
    let messages = body["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[0]["role"], "user");
    assert_eq!(messages[0]["content"], "Create a P0 bug for login loop");
    assert_eq!(messages[1]["role"], "assistant");
    assert_eq!(messages[1]["content"], run["message"]["content"]);
    assert_eq!(
        messages[1]["toolExecutions"][0]["output"]["title"],
        "Login loop"
    );

    // Sequence numbers go on after the restart.
    let (mut ws, connected) = Ws::open(&stack.ws_url("?session_id=http-session-1")).await;
    let last = connected.seq().unwrap();
    assert!(last > 0);
    ws.say("hello").await;
    let frames = ws.until_terminal().await;
    assert_eq!(frames[0].seq(), Some(last + 1));
    stack.stop().await;
}

#[tokio::test]
async fn bad_requests_and_unknown_sessions_are_json_errors() {
    let stack = Stack::start().await;
    let (status, body) = post_chat(&stack, json!({"content": "   "})).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "invalid_request");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("content")
    );
    let response = reqwest::Client::new()
        .post(stack.http_url("/api/chat"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);
    let body: Value = response.json().await.expect("errors are JSON");
    assert_eq!(body["error"]["code"], "invalid_request");
    let (status, body) = history(&stack, "never-seen").await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "not_found");
    stack.stop().await;
}

#[tokio::test]
async fn a_down_agent_backend_answers_503_with_a_json_body() {
    let url = format!("http://{}/", closed_port());
    let stack = Stack::start_with(Options {
        agent_url: Some(url),
        ..Options::default()
    })
    .await;
    let (status, body) =
        post_chat(&stack, json!({"content": "hello", "session_id": "down-1"})).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["status"], "failed");
    assert_eq!(body["error"]["code"], "agent_unavailable");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("unavailable")
    );

    // The same session over WebSocket: an error frame, and the next message is accepted.
    let (mut ws, _) = Ws::open(&stack.ws_url("?session_id=down-1")).await;
    for _ in 0..2 {
        ws.say("hello").await;
        let frames = ws.until_terminal().await;
        let ServerFrame::Error { data, .. } = frames.last().unwrap() else {
            panic!("{frames:?}")
        };
        assert_eq!(data.code, "agent_unavailable");
    }
    stack.stop().await;
}
