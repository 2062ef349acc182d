//! Hostile input against the real bridge: oversized frames, control
//! characters, text that used to panic the built-in agent, floods,
//! half-sent requests and idle sockets. Each gets a clear answer; the bridge
//! goes on serving.

mod common;

use std::time::Duration;

use common::{Options, PATIENCE, Stack, Ws};
use protocol::chat_frames::{ClientFrame, MessageData, ServerFrame};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn limits() -> agent_bridge::config::Limits {
    agent_bridge::config::Limits::default()
}

fn error_of(frame: &ServerFrame) -> Option<(&str, &str)> {
    match frame {
        ServerFrame::Error { data, .. } => Some((data.code.as_str(), data.message.as_str())),
        _ => None,
    }
}

#[tokio::test]
async fn control_characters_get_an_error_naming_the_field_never_a_500() {
    let stack = Stack::start().await;
    let (mut ws, _) = Ws::open(&stack.ws_url("?session_id=hostile-1")).await;
    let cases = [
        (
            json!({"type": "message", "data": {"content": "create a bug for x\u{0}y"}}),
            "content",
        ),
        (
            json!({"type": "message", "data": {"content": "\u{1b}[2J hi"}}),
            "content",
        ),
        (
            json!({"type": "message", "data": {"content": "hi", "message_id": "m\u{0}"}}),
            "message_id",
        ),
        (
            json!({"type": "message", "data": {"content": "hi", "message_id": ""}}),
            "message_id",
        ),
        (
            json!({"type": "message", "data": {"content": "hi", "session_id": "s\u{0}"}}),
            "session_id",
        ),
        (json!({"type": "cancel", "runId": "r\u{0}"}), "runId"),
        (
            json!({"type": "message", "data": {"content": 12}}),
            "content",
        ),
    ];
    for (frame, field) in cases {
        ws.send_text(frame.to_string()).await;
        let reply = ws.next().await;
        let (code, message) = error_of(&reply).unwrap_or_else(|| panic!("{frame}: {reply:?}"));
        assert_eq!(code, "invalid_frame", "{frame}");
        assert!(message.contains(field), "{frame}: {message}");
    }
    for (body, field) in [
        (json!({"content": "nul\u{0}here"}), "content"),
        (
            json!({"content": "hi", "session_id": "a\u{0}b"}),
            "session_id",
        ),
        (json!({"content": "hi", "board_id": "b\u{0}"}), "board_id"),
        (
            json!({"content": "hi", "message_id": "\u{7}"}),
            "message_id",
        ),
    ] {
        let (status, reply) = stack.post_chat(body.clone()).await;
        assert_eq!(status, 400, "{body}: {reply}");
        let message = reply["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(field), "{body}: {reply}");
    }
    for query in ["?session_id=a%00b", "?board_id=b%00", "?session_id=%C4%B0"] {
        let response = reqwest::get(stack.http_url(&format!("/ws/chat{query}")))
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 400, "{query}");
    }
    let response = reqwest::get(stack.http_url("/api/sessions/a%00b/messages"))
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);
    // Nothing of that reached the database.
    let pool = sqlx::PgPool::connect(stack.db.url()).await.unwrap();
    let runs: i64 = sqlx::query_scalar("SELECT count(*) FROM chat_runs")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(runs, 0);
    stack.stop().await;
}

#[tokio::test]
async fn text_that_once_panicked_the_agent_gets_one_answer_and_the_bridge_serves_on() {
    let stack = Stack::start().await;
    let (mut ws, _) = Ws::open(&stack.ws_url("?session_id=hostile-2")).await;
    for text in [
        "delete aaaaaaaé",
        "İİ € …",
        "create a bug İİİİ called ÉÉ in İN PROGRESS",
        "move İstanbul İİ to İİ",
        "show me İİİ",
    ] {
        ws.say(text).await;
        let frames = ws.until_terminal().await;
        let terminals = frames.iter().filter(|f| f.is_terminal()).count();
        assert_eq!(terminals, 1, "{text}: {frames:?}");
        assert!(
            matches!(frames.last(), Some(ServerFrame::Message { .. })),
            "{text}: {frames:?}"
        );
        // Nothing else arrives for the run after its terminal frame.
        common::assert_contiguous(&frames);
    }
    let (status, reply) = stack.post_chat(json!({"content": "delete aaaaaaaé"})).await;
    assert_eq!(status, 200, "{reply}");
    let pool = sqlx::PgPool::connect(stack.db.url()).await.unwrap();
    let stuck: i64 = sqlx::query_scalar("SELECT count(*) FROM chat_runs WHERE status = 'running'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(stuck, 0);
    let health = reqwest::get(stack.http_url("/health")).await.unwrap();
    assert_eq!(health.status().as_u16(), 200);
    stack.stop().await;
}

#[tokio::test]
async fn a_flooding_socket_is_rate_limited_and_connections_are_capped() {
    let stack = Stack::start_with(Options {
        limits: agent_bridge::config::Limits {
            max_messages_per_sec: 5,
            max_connections: 3,
            ..limits()
        },
        ..Options::default()
    })
    .await;
    let (mut ws, _) = Ws::open(&stack.ws_url("")).await;
    for _ in 0..40 {
        ws.send(&ClientFrame::Ping).await;
    }
    let (mut pongs, mut limited) = (0, 0);
    while pongs + limited < 40 {
        let frame = tokio::time::timeout(Duration::from_secs(2), ws.next()).await;
        match frame {
            Ok(ServerFrame::Pong) => pongs += 1,
            Ok(ref f) if error_of(f).is_some_and(|(code, _)| code == "rate_limited") => {
                limited += 1
            }
            Ok(other) => panic!("unexpected {other:?}"),
            // Replies to a flood may be dropped (the socket's own queue is small).
            Err(_) => break,
        }
    }
    assert!(limited > 0, "no frame was rate limited ({pongs} pongs)");
    assert!(pongs <= 12, "{pongs} pongs at 5 frames/s with bursts of 10");
    // The socket still works once the client slows down.
    tokio::time::sleep(Duration::from_millis(400)).await;
    ws.send(&ClientFrame::Ping).await;
    loop {
        if ws.next().await == ServerFrame::Pong {
            break;
        }
    }
    // Open connections are capped: the fourth gets 503.
    let (_b, _) = Ws::open(&stack.ws_url("")).await;
    let (_c, _) = Ws::open(&stack.ws_url("")).await;
    let refused = tokio_tungstenite::connect_async(stack.ws_url("")).await;
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status().as_u16(), 503)
        }
        other => panic!("a fourth socket was let in: {:?}", other.map(|_| ())),
    }
    drop(_b);
    stack.stop().await;
}

#[tokio::test]
async fn connects_per_ip_per_minute_are_capped() {
    let stack = Stack::start_with(Options {
        limits: agent_bridge::config::Limits {
            max_connects_per_ip_per_min: 3,
            ..limits()
        },
        ..Options::default()
    })
    .await;
    for _ in 0..3 {
        let (ws, _) = Ws::open(&stack.ws_url("")).await;
        ws.close().await;
    }
    match tokio_tungstenite::connect_async(stack.ws_url("")).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status().as_u16(), 429)
        }
        other => panic!("a fourth connect was let in: {:?}", other.map(|_| ())),
    }
    stack.stop().await;
}

#[tokio::test]
async fn half_sent_requests_are_closed_and_silent_sockets_time_out() {
    let stack = Stack::start_with(Options {
        limits: agent_bridge::config::Limits {
            header_timeout: Duration::from_millis(500),
            heartbeat: Duration::from_millis(100),
            client_timeout: Duration::from_millis(600),
            ..limits()
        },
        ..Options::default()
    })
    .await;
    // Slowloris: ten connections that never finish their headers.
    let mut held = Vec::new();
    for _ in 0..10 {
        let mut tcp = tokio::net::TcpStream::connect(stack.addr).await.unwrap();
        tcp.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: 1")
            .await
            .unwrap();
        held.push(tcp);
    }
    for mut tcp in held {
        let mut buf = [0u8; 256];
        let read = tokio::time::timeout(PATIENCE, tcp.read(&mut buf))
            .await
            .expect("the bridge closes a half-sent request");
        // Closed (0 bytes or reset), possibly after a 408.
        if let Ok(n) = read
            && n > 0
        {
            assert!(String::from_utf8_lossy(&buf[..n]).contains("408"));
        }
    }
    // A socket whose client never answers pings is closed with 4008; the
    // server pinged it meanwhile.
    let mut silent = tokio::net::TcpStream::connect(stack.addr).await.unwrap();
    silent
        .write_all(
            format!(
                "GET /ws/chat HTTP/1.1\r\nHost: {}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
                 Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
                stack.addr
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = tokio::time::timeout(PATIENCE, silent.read(&mut buf))
            .await
            .expect("the bridge closes a silent socket")
            .unwrap_or(0);
        if n == 0 {
            break;
        }
        seen.extend_from_slice(&buf[..n]);
    }
    // Server frames are unmasked: 0x89 is a ping; 0x88 0x?? 0x0F 0xA8 a close 4008.
    assert!(seen.windows(1).any(|w| w[0] == 0x89), "no ping was sent");
    let close_4008 = seen
        .windows(4)
        .any(|w| w[0] == 0x88 && w[2] == 0x0f && w[3] == 0xa8);
    assert!(close_4008, "no close 4008 in {} bytes", seen.len());
    let health = reqwest::get(stack.http_url("/health")).await.unwrap();
    assert_eq!(health.status().as_u16(), 200);
    stack.stop().await;
}

/// Messages of the same `Ws` helper built by hand, for frames serde would reject.
#[allow(dead_code)]
fn message(content: &str) -> ClientFrame {
    ClientFrame::Message {
        data: MessageData {
            content: content.into(),
            session_id: None,
            message_id: None,
            message_history: None,
        },
    }
}
