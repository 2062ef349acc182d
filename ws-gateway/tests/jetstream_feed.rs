//! Board feeds from NATS JetStream (`NATS_URL` on both services) against a
//! real board-service, PostgreSQL and nats-server: frames arrive through
//! the stream, in order and once, resume with `sinceVersion`, and survive a
//! NATS restart mid-write by falling back to WatchBoard and coming back.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::json;
use service_kit::{local_nats, testing};

/// Board-service relays to `nats_url` and the gateway reads from it.
async fn stack_on(nats_url: &str) -> Stack {
    let relay = nats_url.to_owned();
    let feed = nats_url.to_owned();
    Stack::start_both(
        move |c| c.nats_url = Some(relay),
        move |c| c.nats_url = Some(feed),
    )
    .await
}

async fn gateway_metric(stack: &Stack, name: &str) -> f64 {
    let scrape = testing::scrape_metrics(&stack.http_url("/metrics")).await;
    testing::metric_value(&scrape, name, &[])
}

const EVENTS: &str = "ws_gateway_jetstream_events_total";
const FALLBACKS: &str = "ws_gateway_jetstream_fallbacks_total";
const RECONNECTS: &str = "ws_gateway_upstream_reconnects_total";

#[tokio::test]
async fn frames_come_through_jetstream_in_order_and_resume_with_since_version() {
    let mut stack = stack_on(&local_nats::url()).await;
    let board = stack.board("streamed").await;
    let mut reader = stack.connect().await;
    assert_eq!(reader.subscribe("streamed").await["version"], 0);
    for i in 0..5 {
        stack.task("streamed", "todo", &format!("t{i}")).await;
    }
    let frames = read_until(&mut reader, 0, 5).await;
    assert!(frames.iter().all(|f| f["type"] == "task.created"));
    // The first writes may land before the feed's consumer exists; those
    // come as the subject's last message plus a catch-up from the log.
    // Once it exists, every event comes from the stream.
    let before = gateway_metric(&stack, EVENTS).await;
    for i in 5..10 {
        stack.task("streamed", "todo", &format!("t{i}")).await;
    }
    read_until(&mut reader, 5, 10).await;
    assert_eq!(
        gateway_metric(&stack, EVENTS).await - before,
        5.0,
        "the frames came from JetStream"
    );
    assert_eq!(gateway_metric(&stack, FALLBACKS).await, 0.0);
    assert_eq!(gateway_metric(&stack, RECONNECTS).await, 0.0);

    // A client back from a disconnect gets what it missed, then live frames.
    let mut back = stack.connect().await;
    back.send(json!({"type": "subscribe", "boardId": board.id, "sinceVersion": 7}))
        .await;
    read_until(&mut back, 7, 10).await;
    stack.task("streamed", "todo", "live").await;
    let live = read_until(&mut back, 10, 11).await;
    assert_eq!(live[0]["data"]["title"], "live");
    read_until(&mut reader, 10, 11).await;
}

#[tokio::test]
async fn a_board_with_history_on_the_stream_starts_from_its_snapshot() {
    // The stream holds versions the snapshot already has: none is repeated.
    let mut stack = stack_on(&local_nats::url()).await;
    stack.board("history").await;
    for i in 0..8 {
        stack.task("history", "todo", &format!("old {i}")).await;
    }
    let mut reader = stack.connect().await;
    let sync = reader.subscribe("history").await;
    let start = sync["version"].as_u64().expect("sync version");
    assert_eq!(start, 8);
    for i in 0..3 {
        stack.task("history", "todo", &format!("new {i}")).await;
    }
    let frames = read_until(&mut reader, start, start + 3).await;
    assert_eq!(frames[0]["data"]["title"], "new 0");
}

#[tokio::test]
async fn a_nats_restart_during_writes_loses_and_repeats_nothing() {
    // Always a private server: the test stops it.
    let nats = local_nats::LocalNats::start_throwaway().unwrap_or_else(|e| panic!("{e}"));
    let mut stack = stack_on(&nats.url()).await;
    stack.board("outage").await;
    let mut reader = stack.connect().await;
    reader.subscribe("outage").await;
    let mut version = 0;
    for i in 0..10 {
        stack.task("outage", "todo", &format!("before {i}")).await;
    }
    read_until(&mut reader, version, 10).await;
    version = 10;

    let stopped = tokio::task::spawn_blocking(move || nats.stop())
        .await
        .expect("stop nats-server");
    // Writes while NATS is away reach the reader through WatchBoard once
    // the gateway gives up waiting for the stream.
    for i in 0..15 {
        stack.task("outage", "todo", &format!("down {i}")).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    read_until(&mut reader, version, 25).await;
    version = 25;
    assert!(gateway_metric(&stack, FALLBACKS).await >= 1.0);

    let nats = tokio::task::spawn_blocking(move || stopped.start())
        .await
        .expect("join")
        .unwrap_or_else(|e| panic!("restart: {e}"));
    // Back on the stream within a fallback period or two.
    let on_stream = gateway_metric(&stack, EVENTS).await;
    let deadline = Instant::now() + Duration::from_secs(40);
    let mut n = 0;
    while gateway_metric(&stack, EVENTS).await <= on_stream {
        assert!(Instant::now() < deadline, "the feed went back to JetStream");
        stack.task("outage", "todo", &format!("after {n}")).await;
        n += 1;
        read_until(&mut reader, version, version + 1).await;
        version += 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for i in 0..5 {
        stack.task("outage", "todo", &format!("last {i}")).await;
    }
    read_until(&mut reader, version, version + 5).await;
    drop(nats);
}

#[tokio::test]
async fn a_stream_nobody_relays_to_is_not_trusted() {
    // board-service without NATS_URL: the stream stays empty, and the
    // gateway must notice (no relay heartbeat) rather than go quiet. A
    // private server: another test's relay would beat on a shared one.
    let nats = local_nats::LocalNats::start_throwaway().unwrap_or_else(|e| panic!("{e}"));
    let nats_url = nats.url();
    let mut stack = Stack::start_with(move |c| c.nats_url = Some(nats_url)).await;
    stack.board("unrelayed").await;
    let mut reader = stack.connect().await;
    reader.subscribe("unrelayed").await;
    for i in 0..3 {
        stack.task("unrelayed", "todo", &format!("t{i}")).await;
    }
    read_until(&mut reader, 0, 3).await;
    assert!(gateway_metric(&stack, FALLBACKS).await >= 1.0);
    assert_eq!(gateway_metric(&stack, EVENTS).await, 0.0);
    drop(nats);
}
