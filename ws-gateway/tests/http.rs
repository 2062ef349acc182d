//! SSE, health, stats, metrics and shutdown.

mod common;

use common::*;
use futures::StreamExt;
use serde_json::Value;

/// One parsed Server-Sent Event.
#[derive(Debug)]
struct SseEvent {
    event: String,
    id: Option<String>,
    data: Value,
}

/// Reads events from an SSE response body.
struct SseReader {
    body: std::pin::Pin<Box<dyn futures::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>,
    buffer: String,
}

impl SseReader {
    async fn open(url: &str, last_event_id: Option<&str>) -> Self {
        let mut request = reqwest::Client::new().get(url);
        if let Some(id) = last_event_id {
            request = request.header("Last-Event-ID", id);
        }
        let response = request.send().await.expect("SSE request");
        assert_eq!(response.status(), 200);
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/event-stream")
        );
        Self {
            body: Box::pin(response.bytes_stream()),
            buffer: String::new(),
        }
    }

    async fn next(&mut self) -> SseEvent {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let (mut event, mut id, mut data) = (String::from("message"), None, String::new());
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        event = v.trim().to_owned();
                    } else if let Some(v) = line.strip_prefix("id:") {
                        id = Some(v.trim().to_owned());
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                    }
                }
                if data.is_empty() {
                    continue; // keep-alive comment
                }
                return SseEvent {
                    event,
                    id,
                    data: serde_json::from_str(&data).expect("JSON data"),
                };
            }
            let chunk = tokio::time::timeout(WAIT, self.body.next())
                .await
                .expect("an event within the wait")
                .expect("stream open")
                .expect("chunk");
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
}

#[tokio::test]
async fn sse_carries_the_same_frames_and_resumes_from_last_event_id() {
    let mut stack = Stack::start().await;
    stack.board("sse").await;
    let url = stack.http_url("/events?boardId=sse");
    let mut sse = SseReader::open(&url, None).await;
    let sync = sse.next().await;
    assert_eq!(sync.event, "board.sync");
    assert_eq!(sync.id.as_deref(), Some("0"));
    assert_eq!(sync.data["type"], "board.sync");

    stack.task("sse", "todo", "one").await;
    let created = sse.next().await;
    assert_eq!(created.event, "task.created");
    assert_eq!(created.id.as_deref(), Some("1"));
    assert_eq!(created.data["data"]["title"], "one");
    drop(sse);

    stack.task("sse", "todo", "two").await;
    stack.task("sse", "todo", "three").await;
    let mut resumed = SseReader::open(&url, Some("1")).await;
    let two = resumed.next().await;
    let three = resumed.next().await;
    assert_eq!(
        (two.id.as_deref(), three.id.as_deref()),
        (Some("2"), Some("3"))
    );
    assert_eq!(two.data["data"]["title"], "two");

    let missing = SseReader::open(&stack.http_url("/events?boardId=nope"), None)
        .await
        .next()
        .await;
    assert_eq!(missing.event, "error");
    assert_eq!(missing.data["code"], "not_found");
}

#[tokio::test]
async fn health_reports_board_service_and_turns_503_when_it_is_gone() {
    let mut stack = Stack::start().await;
    let health = reqwest::get(stack.http_url("/health")).await.unwrap();
    assert_eq!(health.status(), 200);
    let body: Value = health.json().await.unwrap();
    assert_eq!(body["boardService"], "serving");
    assert_eq!(body["websocket"]["running"], true);
    assert_eq!(body["websocket"]["port"], stack.gateway.addr.port());

    stack.board_service.stop_in_place().await;
    let health = reqwest::get(stack.http_url("/health")).await.unwrap();
    assert_eq!(health.status(), 503);
    let body: Value = health.json().await.unwrap();
    assert_eq!(body["boardService"], "unavailable");
}

#[tokio::test]
async fn stats_and_metrics_count_connections_and_frames() {
    let mut stack = Stack::start().await;
    stack.board("m").await;
    let mut ws = stack.connect().await;
    ws.subscribe("m").await;
    stack.task("m", "todo", "t").await;
    ws.next_of("task.created").await;

    let stats: Value = reqwest::get(stack.http_url("/stats"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["clients"], 1);
    assert_eq!(stats["boards"][0]["slug"], "m");
    assert!(stats["framesOut"].as_u64().unwrap() >= 3);

    let metrics = reqwest::get(stack.http_url("/metrics")).await.unwrap();
    let content_type = metrics.headers()["content-type"].to_str().unwrap();
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    // Read by a real Prometheus text parser, as a scraper would.
    let scrape = service_kit::testing::scrape_metrics(&stack.http_url("/metrics")).await;
    let value = |name| service_kit::testing::metric_value(&scrape, name, &[]);
    assert_eq!(value("ws_gateway_connections_active"), 1.0);
    assert_eq!(value("ws_gateway_connections_total"), 1.0);
    assert_eq!(value("ws_gateway_connections_rejected_total"), 0.0);
    assert_eq!(value("ws_gateway_frames_received_total"), 1.0);
    assert_eq!(value("ws_gateway_upstream_reconnects_total"), 0.0);
    assert_eq!(value("ws_gateway_boards_active"), 1.0);
    assert_eq!(value("ws_gateway_client_queue_max"), 0.0);
    // board.sync and task.created were written, each timed from its commit.
    assert!(value("ws_gateway_commit_to_send_ms") >= 2.0);
}

#[tokio::test]
async fn shutdown_closes_every_socket_with_1001() {
    let mut stack = Stack::start().await;
    stack.board("bye").await;
    let mut ws = stack.connect().await;
    ws.subscribe("bye").await;
    let gateway = std::mem::replace(
        &mut stack.gateway,
        start_gateway(ws_gateway::Config::new("http://127.0.0.1:1")).await,
    );
    let stopping = tokio::spawn(gateway.stop());
    assert_eq!(ws.close_code().await, 1001);
    stopping.await.unwrap();
}

/// Seed 003's client connects at the root, `ws://host:4002`: an upgrade on
/// `/` is the board WebSocket, and a plain GET still gets the page.
#[tokio::test]
async fn the_root_path_upgrades_websockets_and_serves_the_page_otherwise() {
    let mut stack = Stack::start().await;
    stack.board("root-path").await;
    let mut ws = Ws::connect(&format!("ws://{}/", stack.gateway.addr)).await;
    let sync = ws.subscribe("root-path").await;
    assert_eq!(sync["type"], "board.sync", "{sync}");
    let page = reqwest::get(stack.http_url("/")).await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("<html"));
}
