//! The auth matrix against the real bridge and board-service, auth on:
//! who may open, read, join and cancel a session, and what the built-in
//! agent may change on whose behalf.

mod common;

use std::time::Duration;

use common::{Options, Stack, Ws, token};
use protocol::{
    chat_frames::{ClientFrame, ServerFrame, ToolStatus},
    v1::{CreateBoardRequest, board_service_client::BoardServiceClient},
};
use serde_json::{Value, json};

const SECRET: &str = "auth-matrix-secret";

async fn stack() -> Stack {
    Stack::start_with(Options {
        jwt_secret: Some(SECRET.into()),
        ..Options::default()
    })
    .await
}

fn user(sub: &str) -> String {
    token(SECRET, sub, &["*"], &["*"], 3600)
}

async fn post(stack: &Stack, bearer: Option<&str>, body: Value) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .post(stack.http_url("/api/chat"))
        .json(&body);
    if let Some(bearer) = bearer {
        request = request.bearer_auth(bearer);
    }
    let response = request.send().await.expect("POST /api/chat");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn history(stack: &Stack, bearer: Option<&str>, session: &str) -> (u16, Value) {
    let mut request =
        reqwest::Client::new().get(stack.http_url(&format!("/api/sessions/{session}/messages")));
    if let Some(bearer) = bearer {
        request = request.bearer_auth(bearer);
    }
    let response = request.send().await.expect("GET messages");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// The close code a socket gets before any frame.
async fn close_code(url: &str, headers: &[(&str, &str)]) -> u16 {
    let mut ws = Ws::connect_with(url, headers).await;
    match ws.next_or_close().await {
        Err(Some(close)) => u16::from(close.code),
        other => panic!("expected a close, got {other:?}"),
    }
}

#[tokio::test]
async fn no_bad_or_expired_token_is_refused_on_every_route_but_health() {
    let stack = stack().await;
    let body = json!({"content": "list tasks", "session_id": "s-anon"});
    let garbage = "not.a.token";
    let wrong_key = token("another-secret", "mallory", &["*"], &["*"], 3600);
    let expired = token(SECRET, "alice", &["*"], &["*"], -3600);

    for (bearer, code) in [
        (None, "unauthorized"),
        (Some(garbage), "unauthorized"),
        (Some(wrong_key.as_str()), "unauthorized"),
        (Some(expired.as_str()), "token_expired"),
    ] {
        let (status, reply) = post(&stack, bearer, body.clone()).await;
        assert_eq!(
            (status, reply["error"]["code"].as_str()),
            (401, Some(code)),
            "{reply}"
        );
        let (status, reply) = history(&stack, bearer, "s-anon").await;
        assert_eq!(
            (status, reply["error"]["code"].as_str()),
            (401, Some(code)),
            "{reply}"
        );
    }
    // A token without a subject could reach every other such token's sessions.
    let nobody = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &json!({"exp": 4_000_000_000u64, "read": "*", "write": "*"}),
        &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap();
    assert_eq!(post(&stack, Some(&nobody), body.clone()).await.0, 401);

    let url = stack.ws_url("?session_id=s-anon");
    assert_eq!(close_code(&url, &[]).await, 4001);
    assert_eq!(
        close_code(&stack.ws_url("?token=not.a.token"), &[]).await,
        4001
    );
    let bearer = format!("Bearer {wrong_key}");
    assert_eq!(close_code(&url, &[("authorization", &bearer)]).await, 4001);
    assert_eq!(
        close_code(&stack.ws_url(&format!("?token={expired}")), &[]).await,
        4002
    );
    let health = reqwest::get(stack.http_url("/health")).await.unwrap();
    assert_eq!(health.status().as_u16(), 200);
    // Nothing was stored for the refused callers.
    let pool = sqlx::PgPool::connect(stack.db.url()).await.unwrap();
    let sessions: i64 = sqlx::query_scalar("SELECT count(*) FROM chat_sessions")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(sessions, 0);
    stack.stop().await;
}

#[tokio::test]
async fn another_user_cannot_read_join_post_to_or_cancel_a_session() {
    let stack = Stack::start_with(Options {
        jwt_secret: Some(SECRET.into()),
        token_delay: Duration::from_millis(40),
        ..Options::default()
    })
    .await;
    let (alice, bob) = (user("alice"), user("bob"));
    let (mut ws, _) = Ws::open(&stack.ws_url(&format!("?session_id=s-alice&token={alice}"))).await;
    ws.say("Create a P2 task for Alice's secret plan").await;
    let ServerFrame::Status { run_id, .. } = ws.next().await else {
        panic!("a run starts with a status frame");
    };

    // Bob can neither follow the session nor use it.
    let as_bob = format!("Bearer {bob}");
    let url = stack.ws_url("?session_id=s-alice");
    assert_eq!(close_code(&url, &[("authorization", &as_bob)]).await, 4003);
    let (status, reply) = history(&stack, Some(&bob), "s-alice").await;
    assert_eq!(
        (status, reply["error"]["code"].as_str()),
        (403, Some("forbidden")),
        "{reply}"
    );
    let (status, _) = post(
        &stack,
        Some(&bob),
        json!({"content": "delete Alice's secret plan", "session_id": "s-alice"}),
    )
    .await;
    assert_eq!(status, 403);
    // A cancel needs a socket on the session, which Bob cannot get: Alice's
    // run ends on its own, completed.
    let mut bob_ws = Ws::connect_with(&url, &[("authorization", &as_bob)]).await;
    bob_ws
        .send(&ClientFrame::Cancel {
            run_id: run_id.clone(),
            data: None,
        })
        .await;
    let frames = ws.until_terminal().await;
    assert!(
        matches!(frames.last(), Some(ServerFrame::Message { .. })),
        "Alice's run was not cancelled: {frames:?}"
    );

    // Alice still reads her own history, which holds nothing from Bob.
    let (status, reply) = history(&stack, Some(&alice), "s-alice").await;
    assert_eq!(status, 200, "{reply}");
    let messages = reply["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 2, "{reply}");
    assert!(!reply.to_string().contains("delete Alice"), "{reply}");
    // And the session keeps its owner in PostgreSQL.
    let pool = sqlx::PgPool::connect(stack.db.url()).await.unwrap();
    let owner: String = sqlx::query_scalar("SELECT owner FROM chat_sessions WHERE id = 's-alice'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(owner, "alice");
    stack.stop().await;
}

#[tokio::test]
async fn a_read_only_token_gets_a_refusal_in_chat_and_nothing_is_written() {
    let stack = stack().await;
    let reader = token(SECRET, "reader", &["*"], &[], 3600);
    let (mut ws, _) = Ws::open(&stack.ws_url(&format!("?token={reader}"))).await;
    ws.say("Create a P1 story for reader sneaks a task in")
        .await;
    let frames = ws.until_terminal().await;
    let tools = common::tool_frames(&frames);
    assert_eq!(
        tools.last().map(|t| t.status),
        Some(ToolStatus::Failed),
        "{frames:?}"
    );
    let ServerFrame::Message { data, .. } = frames.last().unwrap() else {
        panic!("the run ends with a reply: {frames:?}");
    };
    assert!(
        data.content.contains("could not create"),
        "{}",
        data.content
    );
    assert!(data.content.contains("access"), "{}", data.content);
    // Reading works with the same token.
    ws.say("list tasks").await;
    let frames = ws.until_terminal().await;
    assert!(
        matches!(frames.last(), Some(ServerFrame::Message { .. })),
        "{frames:?}"
    );
    let board = stack.board().await;
    assert!(
        board.tasks.iter().all(|t| !t.title.contains("sneaks")),
        "a read-only token wrote a task"
    );
    stack.stop().await;
}

#[tokio::test]
async fn a_token_for_one_board_cannot_act_on_another_through_board_id() {
    let stack = stack().await;
    let admin = token(SECRET, "admin", &[], &["*"], 3600);
    let mut client = BoardServiceClient::connect(format!("http://{}", stack.board_addr))
        .await
        .unwrap();
    let mut request = tonic::Request::new(CreateBoardRequest {
        name: "Other".into(),
        slug: Some("other".into()),
        request_id: "make-other".into(),
        ..Default::default()
    });
    service_kit::auth::insert_bearer(request.metadata_mut(), &admin);
    client.create_board(request).await.expect("board B exists");

    let only_default = token(SECRET, "carol", &["default"], &["default"], 3600);
    // A new session on board B, by socket or HTTP.
    let url = stack.ws_url(&format!("?board_id=other&token={only_default}"));
    assert_eq!(close_code(&url, &[]).await, 4003);
    let (status, reply) = post(
        &stack,
        Some(&only_default),
        json!({"content": "Create a P1 bug for intruder", "board_id": "other"}),
    )
    .await;
    assert_eq!(status, 403, "{reply}");
    // Moving her own session from A to B is refused too.
    let (status, reply) = post(
        &stack,
        Some(&only_default),
        json!({"content": "list tasks", "session_id": "s-carol"}),
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    let (status, _) = post(
        &stack,
        Some(&only_default),
        json!({"content": "Create a P1 bug for intruder", "session_id": "s-carol", "board_id": "other"}),
    )
    .await;
    assert_eq!(status, 403);
    let other = stack.board_named("other").await;
    assert!(
        other.tasks.is_empty(),
        "board B was written: {:?}",
        other.tasks
    );
    // The session stayed on board A.
    let pool = sqlx::PgPool::connect(stack.db.url()).await.unwrap();
    let board: String =
        sqlx::query_scalar("SELECT board_id FROM chat_sessions WHERE id = 's-carol'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(board, "default");
    stack.stop().await;
}

#[tokio::test]
async fn a_socket_closes_4002_when_its_token_expires() {
    let stack = stack().await;
    let short = token(SECRET, "dave", &["*"], &["*"], 2);
    let (mut ws, _) = Ws::open(&stack.ws_url(&format!("?token={short}"))).await;
    let close = ws.closed().await.expect("a close frame");
    assert_eq!(u16::from(close.code), 4002);
    stack.stop().await;
}

#[tokio::test]
async fn browsers_from_other_origins_get_403_and_allowed_ones_get_cors() {
    let stack = Stack::start_with(Options {
        allowed_origins: vec!["http://good.example".into()],
        ..Options::default()
    })
    .await;
    // The upgrade itself is refused.
    let request = reqwest::Client::new()
        .get(stack.http_url("/ws/chat"))
        .header("origin", "http://evil.example")
        .header("connection", "upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .send()
        .await
        .unwrap();
    assert_eq!(request.status().as_u16(), 403);
    let (status, reply) = {
        let response = reqwest::Client::new()
            .post(stack.http_url("/api/chat"))
            .header("origin", "http://evil.example")
            .json(&json!({"content": "list tasks"}))
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    };
    assert_eq!(status, 403, "{reply}");
    assert!(reply.contains("origin"), "{reply}");

    let (mut ws, _) = {
        let mut ws =
            Ws::connect_with(&stack.ws_url(""), &[("origin", "http://good.example")]).await;
        let connected = ws.next().await;
        (ws, connected)
    };
    ws.say("list tasks").await;
    assert!(matches!(
        ws.until_terminal().await.last(),
        Some(ServerFrame::Message { .. })
    ));
    let preflight = reqwest::Client::new()
        .request(reqwest::Method::OPTIONS, stack.http_url("/api/chat"))
        .header("origin", "http://good.example")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization, content-type",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        preflight
            .headers()
            .get("access-control-allow-origin")
            .and_then(|v| v.to_str().ok()),
        Some("http://good.example")
    );
    stack.stop().await;
}
