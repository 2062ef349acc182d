//! A caller's W3C trace context continues through board-service: its spans
//! join the caller's trace, and the event the call produced carries it on.

mod common;

use common::*;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
use protocol::v1::CreateTaskRequest;

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

#[tokio::test]
async fn a_call_joins_the_callers_trace_and_its_event_carries_it() {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let _telemetry =
        service_kit::telemetry::init_with_provider("board-service", Some(provider.clone()));

    let (_db, _service, mut client) = start().await;
    let board = create_board(&mut client, "Traced").await;
    let mut stream = watch(&mut client, &board.id, 0).await;

    let mut request = tonic::Request::new(CreateTaskRequest {
        board_id: board.id.clone(),
        lane_id: "todo".into(),
        title: "traced".into(),
        ..Default::default()
    });
    request.metadata_mut().insert(
        "traceparent",
        format!("00-{TRACE_ID}-00f067aa0ba902b7-01")
            .parse()
            .expect("header"),
    );
    client.create_task(request).await.expect("create");

    let event = &next_events(&mut stream, 1).await[0];
    let traceparent = event
        .trace_context
        .get("traceparent")
        .expect("event carries traceparent");
    assert!(traceparent.contains(TRACE_ID), "{traceparent}");

    let _ = provider.force_flush();
    let spans = exporter.get_finished_spans().expect("spans");
    let in_trace: Vec<_> = spans
        .iter()
        .filter(|s| s.span_context.trace_id().to_string() == TRACE_ID)
        .map(|s| s.name.to_string())
        .collect();
    assert!(
        in_trace.iter().any(|n| n == "create_task"),
        "spans in the trace: {in_trace:?}"
    );
}
