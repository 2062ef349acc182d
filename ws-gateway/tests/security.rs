//! Tokens, origins and connection limits.

mod common;

use common::*;
use jsonwebtoken::{EncodingKey, Header, encode};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const SECRET: &str = "test-secret";

fn token(claims: Value) -> String {
    encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap()
}

fn in_a_minute() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 60
}

async fn secured() -> Stack {
    Stack::start_with(|c| {
        c.auth = service_kit::auth::AuthConfig::with_secret(SECRET);
        c.allowed_origins = vec!["https://boards.example".into()];
    })
    .await
}

#[tokio::test]
async fn token_grants_reading_and_writing_only_the_boards_it_names() {
    let mut stack = secured().await;
    stack.board("readable").await;
    stack.board("writable").await;
    stack.board("secret").await;
    let task = stack.task("readable", "todo", "t").await;
    let jwt = token(
        json!({"exp": in_a_minute(), "sub": "ann", "read": ["readable"], "write": ["writable"]}),
    );
    let mut ws = Ws::connect(&format!("{}?token={jwt}", stack.ws_url())).await;
    ws.next_of("connected").await;

    assert_eq!(ws.subscribe("readable").await["type"], "board.sync");
    assert_eq!(ws.subscribe("writable").await["type"], "board.sync");
    ws.send(json!({"type": "subscribe", "boardId": "secret", "id": "s"}))
        .await;
    let denied = ws.next_of("error").await;
    assert_eq!(denied["code"], "forbidden");
    assert_eq!(denied["id"], "s");

    ws.send(
        json!({"type": "task.delete", "id": "d1", "boardId": "readable", "data": {"id": task.id}}),
    )
    .await;
    let denied = ws.next_of("error").await;
    assert_eq!(
        (denied["code"].as_str(), denied["id"].as_str()),
        (Some("forbidden"), Some("d1"))
    );
    // Naming a writable board does not unlock a task of another board.
    ws.send(
        json!({"type": "task.delete", "id": "d2", "boardId": "writable", "data": {"id": task.id}}),
    )
    .await;
    assert_eq!(ws.next_of("error").await["code"], "forbidden");

    ws.send(json!({"type": "task.create", "id": "c1", "boardId": "writable", "data": {"title": "ok", "lane": "todo"}}))
        .await;
    assert_eq!(ws.next_of("ack").await["id"], "c1");
}

#[tokio::test]
async fn connection_without_token_must_authenticate_by_frame() {
    let mut stack = secured().await;
    stack.board("b").await;
    let mut ws = stack.connect().await;
    ws.next_of("connected").await;
    ws.send(json!({"type": "subscribe", "boardId": "b"})).await;
    assert_eq!(ws.next_of("error").await["code"], "unauthorized");

    let jwt = token(json!({"exp": in_a_minute(), "read": ["*"]}));
    ws.send(json!({"type": "auth", "token": jwt})).await;
    assert_eq!(ws.subscribe("b").await["type"], "board.sync");

    let mut bearer = "ws://x/ws".into_client_request().unwrap();
    *bearer.uri_mut() = stack.ws_url().parse().unwrap();
    bearer
        .headers_mut()
        .insert("authorization", format!("Bearer {jwt}").parse().unwrap());
    let mut ws = Ws::connect_request(bearer).await.expect("bearer accepted");
    assert_eq!(ws.subscribe("b").await["type"], "board.sync");
}

#[tokio::test]
async fn invalid_token_closes_with_4001_and_expiry_with_4002() {
    let stack = secured().await;
    let mut forged = Ws::connect(&format!("{}?token=not-a-token", stack.ws_url())).await;
    assert_eq!(forged.close_code().await, 4001);

    let mut ws = stack.connect().await;
    ws.next_of("connected").await;
    let wrong = encode(
        &Header::default(),
        &json!({"exp": in_a_minute()}),
        &EncodingKey::from_secret(b"other"),
    )
    .unwrap();
    ws.send(json!({"type": "auth", "token": wrong})).await;
    assert_eq!(ws.next_of("error").await["code"], "unauthorized");
    assert_eq!(ws.close_code().await, 4001);

    let soon = in_a_minute() - 57;
    let mut expiring = Ws::connect(&format!(
        "{}?token={}",
        stack.ws_url(),
        token(json!({"exp": soon, "read": ["*"]}))
    ))
    .await;
    assert_eq!(expiring.close_code().await, 4002);
}

#[tokio::test]
async fn origin_outside_the_allowlist_is_refused() {
    let stack = secured().await;
    let mut request = stack.ws_url().into_client_request().unwrap();
    request
        .headers_mut()
        .insert("origin", "https://evil.example".parse().unwrap());
    let refused = Ws::connect_request(request).await.err().expect("refused");
    assert!(refused.to_string().contains("403"), "{refused}");

    let mut request = stack.ws_url().into_client_request().unwrap();
    request
        .headers_mut()
        .insert("origin", "https://boards.example".parse().unwrap());
    let jwt = token(json!({"exp": in_a_minute()}));
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {jwt}").parse().unwrap());
    let mut ws = Ws::connect_request(request).await.expect("allowed origin");
    assert_eq!(ws.next().await["type"], "connected");

    // An Origin that is not text is still a browser's, and not on the list.
    let mut request = stack.ws_url().into_client_request().unwrap();
    request.headers_mut().insert(
        "origin",
        axum::http::HeaderValue::from_bytes(b"https://\xffevil").unwrap(),
    );
    let refused = Ws::connect_request(request).await.err().expect("refused");
    assert!(refused.to_string().contains("403"), "{refused}");
}

/// The page the gateway serves itself connects back from the gateway's own
/// origin, which an allowlist for other web apps need not name.
#[tokio::test]
async fn the_gateways_own_origin_is_welcome_whatever_the_allowlist() {
    let stack = secured().await;
    let mut request = stack.ws_url().into_client_request().unwrap();
    let host = request.headers()["host"].to_str().unwrap().to_owned();
    request
        .headers_mut()
        .insert("origin", format!("http://{host}").parse().unwrap());
    let jwt = token(json!({"exp": in_a_minute()}));
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {jwt}").parse().unwrap());
    let mut ws = Ws::connect_request(request).await.expect("same origin");
    assert_eq!(ws.next().await["type"], "connected");
}

#[tokio::test]
async fn connection_limits_close_with_codes_naming_the_limit() {
    let stack = Stack::start_with(|c| c.max_connections = 1).await;
    let mut first = stack.connect().await;
    first.next_of("connected").await;
    let mut second = stack.connect().await;
    assert_eq!(second.close_code().await, 1013);
    drop(first);

    let stack = Stack::start_with(|c| c.max_connects_per_ip_per_min = 2).await;
    let _a = stack.connect().await;
    let _b = stack.connect().await;
    let mut third = stack.connect().await;
    assert_eq!(third.close_code().await, 4030);
    let metrics = reqwest::get(stack.http_url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("ws_gateway_connections_rejected_total 1"),
        "{metrics}"
    );
}
