//! A client that stops reading never holds the others back: its queue is
//! dropped and it gets a fresh board.sync once it drains.

mod common;

use std::collections::BTreeSet;

use common::*;
use protocol::v1::CreateTaskRequest;
use serde_json::{Value, json};
use tokio::net::TcpSocket;

/// A WebSocket whose kernel receive buffer is tiny, so not reading soon
/// backs up into the gateway.
async fn connect_with_small_buffer(stack: &Stack) -> Ws {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(stack.gateway.addr).await.unwrap();
    let (stream, _) = tokio_tungstenite::client_async(
        stack.ws_url(),
        tokio_tungstenite::MaybeTlsStream::Plain(stream),
    )
    .await
    .unwrap();
    Ws { stream }
}

/// Applies frames to a set of task ids; asserts order and no duplicates.
fn apply(ids: &mut BTreeSet<String>, last: &mut u64, frame: &Value) {
    let version = frame["version"].as_u64().unwrap();
    match frame["type"].as_str().unwrap() {
        "board.sync" => {
            assert!(version >= *last, "a sync never goes back");
            *ids = frame["data"]["lanes"]["todo"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["id"].as_str().unwrap().to_owned())
                .collect();
        }
        "task.created" => {
            assert_eq!(version, *last + 1, "no gap, no duplicate");
            assert!(ids.insert(frame["data"]["id"].as_str().unwrap().to_owned()));
        }
        other => panic!("unexpected {other}"),
    }
    *last = version;
}

#[tokio::test]
async fn slow_client_is_resynced_without_holding_back_fast_clients() {
    let mut stack = Stack::start_with(|c| c.client_queue = 32).await;
    stack.board("busy").await;
    let mut fast = stack.connect().await;
    fast.subscribe("busy").await;
    let mut slow = connect_with_small_buffer(&stack).await;
    slow.send(json!({"type": "subscribe", "boardId": "busy"}))
        .await;

    // Enough bytes to fill the kernel's socket buffers behind the slow client.
    const WRITERS: u64 = 16;
    const WRITES: u64 = 640;
    let description = "x".repeat(20_000);
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let mut api = stack.api.clone();
        let description = description.clone();
        writers.push(tokio::spawn(async move {
            for i in 0..WRITES / WRITERS {
                api.create_task(CreateTaskRequest {
                    board_id: "busy".into(),
                    lane_id: "todo".into(),
                    title: format!("t{w}-{i}"),
                    description: description.clone(),
                    ..Default::default()
                })
                .await
                .unwrap();
            }
        }));
    }
    // The fast client keeps up, in order, while the slow one reads nothing.
    let mut expected = BTreeSet::new();
    for version in 1..=WRITES {
        let frame = fast.next_of("task.created").await;
        assert_eq!(frame["version"], version);
        expected.insert(frame["data"]["id"].as_str().unwrap().to_owned());
    }
    for writer in writers {
        writer.await.unwrap();
    }

    let stats: Value = reqwest::get(stack.http_url("/stats"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(stats["droppedClients"].as_u64().unwrap() >= 1, "{stats}");

    let (mut ids, mut last, mut syncs) = (BTreeSet::new(), 0, 0);
    while last < WRITES {
        let frame = slow.next().await;
        if frame["type"] == "connected" {
            continue;
        }
        syncs += usize::from(frame["type"] == "board.sync");
        apply(&mut ids, &mut last, &frame);
    }
    assert!(
        syncs >= 2,
        "the slow client got a fresh board.sync after draining"
    );
    assert_eq!(ids, expected);
}
