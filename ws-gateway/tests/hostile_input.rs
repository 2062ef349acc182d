//! Hostile input through real clients against the real gateway and
//! board-service: every bad frame gets an error naming its field, never a
//! panic, an `internal` or a silent accept; bad upgrades get RFC 6455's
//! answers; half-sent requests are dropped at the header timeout.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{Value, json};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};
use tokio_tungstenite::tungstenite::Message;

/// Sends `frame` and returns the error it gets.
async fn refused(ws: &mut Ws, frame: &Value) -> Value {
    ws.send(frame.clone()).await;
    let reply = ws.next().await;
    assert_eq!(reply["type"], "error", "{frame} → {reply}");
    reply
}

/// Asserts the error's code and that its message names `field`.
fn assert_names(error: &Value, code: &str, field: &str, frame: &Value) {
    assert_eq!(error["code"], code, "{frame} → {error}");
    let message = error["message"].as_str().unwrap_or_default();
    // As a word: "invalid" does not name `id`.
    let named = message.match_indices(field).any(|(at, _)| {
        let before = message[..at].chars().next_back();
        let after = message[at + field.len()..].chars().next();
        !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
    });
    assert!(named, "{frame} → {error}");
}

fn create(id: &str, data: Value) -> Value {
    json!({"type": "task.create", "id": id, "boardId": "hostile", "data": data})
}

#[tokio::test]
async fn mistyped_fields_are_named() {
    let mut stack = Stack::start().await;
    stack.board("hostile").await;
    let mut ws = stack.connect().await;
    ws.next_of("connected").await;
    let cases = [
        (
            json!({"type":"subscribe","boardId":123,"id":"a"}),
            "boardId",
        ),
        (
            json!({"type":"subscribe","boardId":"hostile","sinceVersion":"7"}),
            "sinceVersion",
        ),
        (
            json!({"type":"subscribe","boardId":"hostile","sinceVersion":-1}),
            "sinceVersion",
        ),
        (json!({"type":"unsubscribe","boardId":["x"]}), "boardId"),
        (json!({"type":"auth","token":42}), "token"),
        (
            json!({"type":"task.create","id":"c1","boardId":123,"data":{"title":"x"}}),
            "boardId",
        ),
        (create("c2", json!({"title": 5})), "title"),
        (
            create("c3", json!({"title": "x", "labels": "one"})),
            "labels",
        ),
        (
            create("c4", json!({"title": "x", "priority": "urgent!"})),
            "priority",
        ),
        (
            create("c5", json!({"title": "x", "estimatedHours": "two"})),
            "estimatedHours",
        ),
        (
            json!({"type":"task.create","id":"c6","boardId":"hostile","data":"title"}),
            "data",
        ),
        (
            json!({"type":"task.create","id":7,"boardId":"hostile","data":{"title":"x"}}),
            "id",
        ),
        (
            json!({"type":"task.update","id":"u1","boardId":"hostile","data":{"id":"t","changes":{"title":false}}}),
            "title",
        ),
        (
            json!({"type":"task.update","id":"u2","boardId":"hostile","expectedVersion":"3","data":{"id":"t","changes":{}}}),
            "expectedVersion",
        ),
        (
            json!({"type":"task.move","id":"m1","boardId":"hostile","data":{"id":"t","before":1}}),
            "before",
        ),
        (
            json!({"type":"task.delete","id":"d1","boardId":"hostile","data":{"id":null}}),
            "id",
        ),
    ];
    for (frame, field) in &cases {
        let error = refused(&mut ws, frame).await;
        assert_names(&error, "invalid_frame", field, frame);
    }
    // Still serving after every case.
    ws.send(json!({"type": "ping"})).await;
    assert_eq!(ws.next().await["type"], "pong");
}

#[tokio::test]
async fn empty_ids_both_neighbours_and_negative_versions_are_refused() {
    let mut stack = Stack::start().await;
    stack.board("hostile").await;
    let task = stack.task("hostile", "todo", "target").await;
    let mut ws = stack.connect().await;
    ws.next_of("connected").await;
    let cases = [
        (create("", json!({"title": "x", "lane": "todo"})), "id"),
        (create("   ", json!({"title": "x", "lane": "todo"})), "id"),
        (
            json!({"type":"subscribe","boardId":"hostile","id":""}),
            "id",
        ),
        (
            json!({"type":"task.delete","id":"d","boardId":"hostile","data":{"id":""}}),
            "data.id",
        ),
        (
            json!({"type":"task.update","id":"u","boardId":"hostile","data":{"id":"","changes":{}}}),
            "data.id",
        ),
        (
            json!({"type":"task.move","id":"m","boardId":"hostile","data":{"id":task.id,"toLane":"done","before":"a","after":"b"}}),
            "before",
        ),
        (
            json!({"type":"task.update","id":"v","boardId":"hostile","expectedVersion":-1,"data":{"id":task.id,"changes":{"title":"y"}}}),
            "expectedVersion",
        ),
        (
            json!({"type":"task.move","id":"v2","boardId":"hostile","expectedVersion":-5,"data":{"id":task.id,"toLane":"done"}}),
            "expectedVersion",
        ),
        (
            json!({"type":"task.delete","id":"v3","boardId":"hostile","expectedVersion":1.5,"data":{"id":task.id}}),
            "expectedVersion",
        ),
    ];
    for (frame, field) in &cases {
        let error = refused(&mut ws, frame).await;
        assert_names(&error, "invalid_frame", field, frame);
    }
    // Nothing above reached the board.
    let snapshot = ws.subscribe("hostile").await;
    let lanes = snapshot["data"]["lanes"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let tasks: Vec<(&String, &Value)> = lanes
        .iter()
        .flat_map(|(lane, tasks)| {
            tasks
                .as_array()
                .into_iter()
                .flatten()
                .map(move |t| (lane, t))
        })
        .collect();
    assert_eq!(tasks.len(), 1, "{snapshot}");
    assert_eq!(tasks[0].0, "todo", "{snapshot}");
    assert_eq!(tasks[0].1["title"], "target", "{snapshot}");
    assert_eq!(tasks[0].1["version"], task.version, "{snapshot}");
}

#[tokio::test]
async fn control_characters_are_refused_by_field_before_board_service_is_called() {
    let mut stack = Stack::start().await;
    stack.board("hostile").await;
    let task = stack.task("hostile", "todo", "target").await;
    let mut ws = stack.connect().await;
    ws.next_of("connected").await;
    let update = |id: &str, changes: Value| json!({"type":"task.update","id":id,"boardId":"hostile","data":{"id":task.id,"changes":changes}});
    let cases = [
        (
            create("n1", json!({"title": "a\u{0}b", "lane": "todo"})),
            "title",
        ),
        (
            create(
                "n2",
                json!({"title": "x", "lane": "todo", "description": "a\u{0}b"}),
            ),
            "description",
        ),
        (
            create("n3", json!({"title": "bell\u{7}", "lane": "todo"})),
            "title",
        ),
        (
            create("n4", json!({"title": "\u{1b}[2J", "lane": "todo"})),
            "title",
        ),
        (
            create("n5", json!({"title": "two\nlines", "lane": "todo"})),
            "title",
        ),
        (
            create(
                "n6",
                json!({"title": "x", "lane": "todo", "assignee": "a\u{0}"}),
            ),
            "assignee",
        ),
        (
            create(
                "n7",
                json!({"title": "x", "lane": "todo", "labels": ["ok", "b\u{8}"]}),
            ),
            "labels",
        ),
        (
            create("n8", json!({"title": "x", "lane": "to\u{0}do"})),
            "lane",
        ),
        (
            create(
                "n9",
                json!({"title": "x", "lane": "todo", "description": "del\u{7f}"}),
            ),
            "description",
        ),
        (
            create(
                "n10",
                json!({"title": "x", "lane": "todo", "description": "c1\u{85}"}),
            ),
            "description",
        ),
        (update("u1", json!({"title": "a\u{0}"})), "title"),
        (
            update("u2", json!({"description": "a\u{0}"})),
            "description",
        ),
        (update("u3", json!({"labels": ["\u{1}"]})), "labels"),
        (
            json!({"type":"subscribe","boardId":"host\u{0}ile","id":"s"}),
            "boardId",
        ),
        (
            json!({"type":"task.move","id":"m","boardId":"hostile","data":{"id":task.id,"toLane":"do\u{0}ne"}}),
            "toLane",
        ),
    ];
    for (frame, field) in &cases {
        let error = refused(&mut ws, frame).await;
        assert_names(&error, "invalid_argument", field, frame);
    }
    // Newlines and tabs are fine in a description.
    ws.send(create(
        "ok",
        json!({"title": "fine", "lane": "todo", "description": "one\n\ttwo\r\n"}),
    ))
    .await;
    let ack = ws.next_of("ack").await;
    assert_eq!(ack["result"]["description"], "one\n\ttwo\r\n", "{ack}");

    // With board-service gone the answers stay the same: the gateway
    // decided them alone.
    stack.board_service.stop_in_place().await;
    for (frame, field) in cases.iter().take(3) {
        let error = refused(&mut ws, frame).await;
        assert_names(&error, "invalid_argument", field, frame);
    }
}

#[tokio::test]
async fn garbage_frames_get_errors_and_the_socket_keeps_serving() {
    let stack = Stack::start().await;
    let mut ws = stack.connect().await;
    ws.next_of("connected").await;
    let deep = "[".repeat(100_000);
    let cases: [(&str, &str); 9] = [
        ("not json", "invalid_json"),
        ("", "invalid_json"),
        (&deep, "invalid_json"),
        ("[1,2,3]", "invalid_frame"),
        ("\"subscribe\"", "invalid_frame"),
        ("{\"type\":7}", "invalid_frame"),
        ("{\"type\":\"task.explode\",\"id\":\"x\"}", "unknown_type"),
        (
            "{\"type\":\"subscribe\",\"boardId\":\"b\",\"sinceVersion\":1e400}",
            "invalid_json",
        ),
        ("{\"type\":\"subscribe\"}", "invalid_frame"),
    ];
    for (text, code) in cases {
        ws.send_raw(Message::text(text)).await;
        let reply = ws.next().await;
        assert_eq!(reply["type"], "error", "{text:.40} → {reply}");
        assert_eq!(reply["code"], code, "{text:.40} → {reply}");
    }
    ws.send(json!({"type": "ping"})).await;
    assert_eq!(ws.next().await["type"], "pong");
}

/// Sends raw bytes to the gateway and returns what it answered, up to the
/// end of the headers.
async fn raw_exchange(addr: std::net::SocketAddr, request: &str) -> String {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    // A server that drops the connection may do so before this is written.
    let _ = tcp.write_all(request.as_bytes()).await;
    let mut answer = Vec::new();
    let mut buf = [0u8; 1024];
    let _ = tokio::time::timeout(WAIT, async {
        while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
            match tcp.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    String::from_utf8_lossy(&answer).into_owned()
}

fn upgrade_request(method: &str, version: &str, extra: &[(&str, &str)]) -> String {
    let mut headers = vec![
        ("Host", "localhost"),
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Version", "13"),
        ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ];
    for (name, value) in extra {
        headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        if !value.is_empty() {
            headers.push((name, value));
        }
    }
    let mut request = format!("{method} /ws {version}\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request
}

fn status_of(answer: &str) -> u16 {
    answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn upgrades_are_checked_as_rfc_6455_says() {
    let stack = Stack::start().await;
    let addr = stack.gateway.addr;

    let good = raw_exchange(addr, &upgrade_request("GET", "HTTP/1.1", &[])).await;
    assert_eq!(status_of(&good), 101, "{good}");
    // RFC 6455's own example key and accept value.
    assert!(
        good.to_ascii_lowercase()
            .contains("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo="),
        "{good}"
    );

    for version in ["8", "14", "13, 8", "", "abc"] {
        let answer = raw_exchange(
            addr,
            &upgrade_request("GET", "HTTP/1.1", &[("Sec-WebSocket-Version", version)]),
        )
        .await;
        assert_eq!(status_of(&answer), 426, "version {version:?}: {answer}");
        assert!(
            answer
                .to_ascii_lowercase()
                .contains("sec-websocket-version: 13"),
            "version {version:?}: {answer}"
        );
    }
    let bad_keys = [
        "",
        "c2hvcnQ=",                         // 5 bytes
        "not base64 at all!!",              // not base64
        "AAAAAAAAAAAAAAAAAAAAAAAA",         // 18 bytes
        "dGhlIHNhbXBsZSBub25jZQ",           // unpadded
        "dGhlIHNhbXBsZSBub25jZQ==dGhlIHNh", // trailing bytes
    ];
    for key in bad_keys {
        let answer = raw_exchange(
            addr,
            &upgrade_request("GET", "HTTP/1.1", &[("Sec-WebSocket-Key", key)]),
        )
        .await;
        assert_eq!(status_of(&answer), 400, "key {key:?}: {answer}");
    }
    for (method, version) in [
        ("POST", "HTTP/1.1"),
        ("PUT", "HTTP/1.1"),
        ("GET", "HTTP/1.0"),
    ] {
        let answer = raw_exchange(addr, &upgrade_request(method, version, &[])).await;
        let status = status_of(&answer);
        assert!(
            status == 400 || status == 405,
            "{method} {version}: {answer}"
        );
    }
    for (name, value) in [
        ("Upgrade", ""),
        ("Connection", "keep-alive"),
        ("Upgrade", "h2c"),
    ] {
        let answer =
            raw_exchange(addr, &upgrade_request("GET", "HTTP/1.1", &[(name, value)])).await;
        assert_eq!(status_of(&answer), 400, "{name}: {value:?}: {answer}");
    }
}

#[tokio::test]
async fn half_sent_requests_are_dropped_at_the_header_timeout() {
    let stack = Stack::start_with(|c| c.header_timeout_ms = 300).await;
    let addr = stack.gateway.addr;
    for partial in [
        &b"GET /ws HT"[..],
        b"GET /ws HTTP/1.1\r\nHost: x\r\n",
        b"GET /health HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nX-Slow: ",
        b"",
    ] {
        let mut slow = TcpStream::connect(addr).await.unwrap();
        slow.write_all(partial).await.unwrap();
        let mut buf = [0u8; 512];
        let closed = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                match slow.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
            }
        })
        .await;
        assert!(
            closed.is_ok(),
            "{:?} was held past the header timeout",
            String::from_utf8_lossy(partial)
        );
    }
    // And a whole request is still served.
    let health = reqwest::get(stack.http_url("/health")).await.unwrap();
    assert_eq!(health.status(), 200);
}

#[tokio::test]
async fn bad_board_bodies_get_400_naming_the_field() {
    let stack = Stack::start().await;
    let http = reqwest::Client::new();
    let post = |body: &'static str| {
        http.post(stack.http_url("/api/boards"))
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    for (body, field) in [
        (r#"{"name": 123}"#, "name"),
        (r#"{"name": "ok", "slug": ["x"]}"#, "slug"),
        (r#"{"name": "a\u0000b"}"#, "name"),
        (r#"{"name": "ok", "slug": "s\u001b"}"#, "slug"),
        (r#"{"nom": "x"}"#, "name"),
        ("not json", "JSON"),
    ] {
        let answer = post(body).await.unwrap();
        assert_eq!(answer.status(), 400, "{body}");
        let error: Value = answer.json().await.unwrap();
        assert_eq!(error["code"], "invalid_argument", "{body} → {error}");
        let message = error["message"].as_str().unwrap_or_default();
        // Past the fixed preamble, which names both fields.
        let detail = message.split_once("}: ").map_or(message, |(_, d)| d);
        assert!(detail.contains(field), "{body} → {error}");
    }
    let listed: Value = reqwest::get(stack.http_url("/api/boards"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["boards"], json!([]), "{listed}");
}

#[tokio::test]
async fn a_command_while_board_service_is_down_is_unavailable_not_internal() {
    let mut stack = Stack::start().await;
    stack.board("hostile").await;
    let mut ws = stack.connect().await;
    ws.next_of("connected").await;
    stack.board_service.stop_in_place().await;
    ws.send(create("down", json!({"title": "x", "lane": "todo"})))
        .await;
    let error = ws.next_of("error").await;
    assert_eq!(error["code"], "unavailable", "{error}");
    assert_eq!(error["id"], "down");
    let listed = reqwest::get(stack.http_url("/api/boards")).await.unwrap();
    assert_eq!(listed.status(), 503);
    let body: Value = listed.json().await.unwrap();
    assert_eq!(body["code"], "unavailable", "{body}");
}

#[tokio::test]
async fn connections_past_the_pending_cap_are_dropped_until_the_slow_ones_go() {
    // A header timeout far beyond the test, so only the cap can drop anyone.
    let stack = Stack::start_with(|c| {
        c.header_timeout_ms = 600_000;
        c.max_pending_connections = 2;
    })
    .await;
    let addr = stack.gateway.addr;
    // A served WebSocket holds no pending slot.
    let mut ws = stack.connect().await;
    ws.next_of("connected").await;
    let mut slow = Vec::new();
    for _ in 0..2 {
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        tcp.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        slow.push(tcp);
    }
    // The listener accepts in arrival order, so both slow ones hold a slot.
    let answer = raw_exchange(addr, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert_eq!(answer, "", "served past the pending cap: {answer}");
    ws.send(json!({"type": "ping"})).await;
    assert_eq!(ws.next().await["type"], "pong");

    drop(slow);
    let served = tokio::time::timeout(WAIT, async {
        loop {
            let answer = raw_exchange(addr, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n").await;
            if status_of(&answer) == 200 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(served.is_ok(), "the slots of closed connections came back");
}
