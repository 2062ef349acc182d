//! One trace follows a request across services: a chat message → the agent
//! run → each tool's gRPC call → board-service's transaction; a board command
//! → the gateway's gRPC call → board-service → the event → the frames sent.
//! All three services run here, exporting to an in-memory OpenTelemetry
//! exporter, so spans are told apart by the crate that made them.

use std::{collections::BTreeSet, time::Duration};

use boardwire::{Stack, StackConfig};
use futures::{SinkExt, StreamExt};
use opentelemetry::Value;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use service_kit::test_database::TestDatabase;
use tokio_tungstenite::{connect_async, tungstenite::Message};

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The crate a span came from: `board_service`, `ws_gateway`, `agent_bridge`.
fn service_of(span: &SpanData) -> Option<String> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == "code.module.name")
        .and_then(|kv| match &kv.value {
            Value::String(s) => s.as_str().split("::").next().map(str::to_owned),
            _ => None,
        })
}

/// Services with a span in the trace of the first span named `name` from `service`.
fn services_in_trace_of(spans: &[SpanData], service: &str, name: &str) -> BTreeSet<String> {
    let root = spans
        .iter()
        .find(|s| s.name == name && service_of(s).as_deref() == Some(service))
        .unwrap_or_else(|| panic!("no {service} span named {name}; spans: {:?}", names(spans)));
    let trace = root.span_context.trace_id();
    spans
        .iter()
        .filter(|s| s.span_context.trace_id() == trace)
        .filter_map(service_of)
        .collect()
}

fn names(spans: &[SpanData]) -> Vec<String> {
    spans
        .iter()
        .map(|s| format!("{}:{}", service_of(s).unwrap_or_default(), s.name))
        .collect()
}

/// Finished spans, once one named `name` from `service` has ended (spans
/// are exported when they close, which may trail the last frame a little).
async fn spans_after(
    provider: &SdkTracerProvider,
    exporter: &InMemorySpanExporter,
    service: &str,
    name: &str,
) -> Vec<SpanData> {
    for _ in 0..100 {
        let _ = provider.force_flush();
        let spans = exporter.get_finished_spans().expect("spans");
        if spans
            .iter()
            .any(|s| s.name == name && service_of(s).as_deref() == Some(service))
        {
            return spans;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    exporter.get_finished_spans().expect("spans")
}

/// The next text frame `wanted` accepts; on a timeout the panic lists the
/// frames skipped on the way, so a missing frame is told from a wrong one.
async fn next_json(
    socket: &mut Socket,
    what: &str,
    wanted: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let mut skipped = Vec::new();
    loop {
        let message = match tokio::time::timeout(Duration::from_secs(15), socket.next()).await {
            Ok(message) => message.expect("socket open").expect("frame"),
            Err(_) => panic!("no {what} within 15 s; skipped: {skipped:?}"),
        };
        if let Message::Text(text) = message {
            let frame: serde_json::Value = serde_json::from_str(&text).expect("JSON frame");
            if wanted(&frame) {
                return frame;
            }
            skipped.push(frame["type"].as_str().unwrap_or("?").to_owned());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_trace_holds_every_service_a_request_crosses() {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let _telemetry =
        service_kit::telemetry::init_with_provider("boardwire", Some(provider.clone()));

    let db = TestDatabase::create().await;
    let stack = Stack::build(StackConfig::for_tests(db.url()))
        .await
        .expect("stack");
    let (gateway, bridge) = (stack.gateway_addr, stack.bridge_addr);
    tokio::spawn(stack.run_until_stopped(std::future::pending()));

    // The chat: a message runs the built-in agent, whose tool calls board-service.
    let (mut chat, _) = connect_async(format!("ws://{bridge}/ws/chat?board_id=default"))
        .await
        .expect("chat socket");
    let connected = next_json(&mut chat, "connected", |f| f["type"] == "connected").await;
    let session = connected["sessionId"]
        .as_str()
        .expect("session id")
        .to_owned();
    let message = serde_json::json!({"type": "message", "data": {"content": "Create a P1 story for login", "session_id": session}});
    chat.send(Message::Text(message.to_string().into()))
        .await
        .expect("send");
    next_json(&mut chat, "chat message", |f| f["type"] == "message").await;

    let spans = spans_after(&provider, &exporter, "agent_bridge", "run").await;
    let services = services_in_trace_of(&spans, "agent_bridge", "run");
    assert!(
        services.contains("agent_bridge") && services.contains("board_service"),
        "the run's trace holds {services:?}"
    );

    // A board command: the gateway's gRPC call carries its trace to board-service.
    let (mut board, _) = connect_async(format!("ws://{gateway}/ws"))
        .await
        .expect("board socket");
    let subscribe = serde_json::json!({"type": "subscribe", "boardId": "default"});
    board
        .send(Message::Text(subscribe.to_string().into()))
        .await
        .expect("subscribe");
    next_json(&mut board, "board.sync", |f| f["type"] == "board.sync").await;
    let command = serde_json::json!({"type": "task.create", "id": "0193b2c4-trace-command", "boardId": "default",
        "data": {"title": "Traced from the browser", "lane": "todo"}});
    board
        .send(Message::Text(command.to_string().into()))
        .await
        .expect("send");
    // The event may reach the socket before the command's ack does: the
    // feed and the command's answer race, and either order is correct.
    let (mut acked, mut created) = (false, false);
    while !(acked && created) {
        let frame = next_json(&mut board, "ack and task.created", |f| {
            matches!(f["type"].as_str(), Some("ack" | "error" | "task.created"))
        })
        .await;
        if frame["type"] == "task.created" {
            created = true;
        } else {
            assert_eq!(frame["ok"], true, "{frame}");
            acked = true;
        }
    }
    let spans = spans_after(&provider, &exporter, "ws_gateway", "deliver").await;
    let services = services_in_trace_of(&spans, "ws_gateway", "command");
    assert!(
        services.contains("ws_gateway") && services.contains("board_service"),
        "the command's trace holds {services:?}"
    );
    // ... and the frames the gateway sent for the resulting event are in it too.
    let command = spans
        .iter()
        .find(|s| s.name == "command" && service_of(s).as_deref() == Some("ws_gateway"))
        .expect("command span");
    let delivered_in_trace = spans.iter().any(|s| {
        s.name == "deliver" && s.span_context.trace_id() == command.span_context.trace_id()
    });
    assert!(
        delivered_in_trace,
        "no deliver span in the command's trace: {:?}",
        names(&spans)
    );
}
