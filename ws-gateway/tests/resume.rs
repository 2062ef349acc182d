//! Delivery guarantees: resume with sinceVersion, across a board-service
//! restart, snapshot-then-live under racing writes, one upstream per board.

mod common;

use std::collections::BTreeSet;

use common::*;
use protocol::v1::GetBoardRequest;
use serde_json::{Value, json};

#[tokio::test]
async fn resumes_with_since_version_after_a_client_reconnect() {
    let mut stack = Stack::start().await;
    stack.board("resume").await;
    let mut ws = stack.connect().await;
    let sync = ws.subscribe("resume").await;
    assert_eq!(sync["version"], 0);
    stack.task("resume", "todo", "one").await;
    let seen = ws.next_of("task.created").await;
    assert_eq!(seen["version"], 1);
    drop(ws);

    for title in ["two", "three", "four"] {
        stack.task("resume", "todo", title).await;
    }
    let mut ws = stack.connect().await;
    ws.send(json!({"type": "subscribe", "boardId": "resume", "sinceVersion": 1, "id": "s"}))
        .await;
    let ack = ws.next_of("ack").await;
    assert_eq!(ack["id"], "s");
    let missed = read_until(&mut ws, 1, 4).await;
    let titles: Vec<_> = missed
        .iter()
        .map(|f| f["data"]["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles, ["two", "three", "four"]);
    assert!(missed.iter().all(|f| f["type"] == "task.created"));

    // Up to date: nothing is replayed, live frames follow.
    let mut current = stack.connect().await;
    current
        .send(json!({"type": "subscribe", "boardId": "resume", "sinceVersion": 4}))
        .await;
    stack.task("resume", "todo", "five").await;
    let live = current.next_of("task.created").await;
    assert_eq!(live["version"], 5);
}

#[tokio::test]
async fn resuming_from_before_the_window_replays_the_gap_from_the_log() {
    let mut stack = Stack::start_with(|c| c.replay_window = 2).await;
    stack.board("window").await;
    let mut watcher = stack.connect().await;
    watcher.subscribe("window").await;
    for i in 0..5 {
        stack.task("window", "todo", &format!("t{i}")).await;
    }
    read_until(&mut watcher, 0, 5).await;

    let mut late = stack.connect().await;
    late.send(json!({"type": "subscribe", "boardId": "window", "sinceVersion": 1}))
        .await;
    let frames = read_until(&mut late, 1, 5).await;
    let titles: Vec<_> = frames
        .iter()
        .map(|f| f["data"]["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles, ["t1", "t2", "t3", "t4"]);
    stack.task("window", "todo", "live").await;
    assert_eq!(
        read_until(&mut late, 5, 6).await[0]["data"]["title"],
        "live"
    );

    // A client ahead of the board is given the board as it is.
    let mut ahead = stack.connect().await;
    ahead
        .send(json!({"type": "subscribe", "boardId": "window", "sinceVersion": 99}))
        .await;
    assert_eq!(ahead.next_of("board.sync").await["version"], 6);
}

#[tokio::test]
async fn resuming_after_the_log_was_trimmed_gets_a_board_sync() {
    let mut stack = Stack::start().await;
    let addr = stack.board_service.addr;
    stack.board_service.stop_in_place().await;
    stack.board_service = start_board_service_with(stack.db.url(), addr, |c| {
        c.event_retention = 2;
        c.trim_interval = std::time::Duration::from_millis(50);
    })
    .await;
    stack.api = connect_api(addr).await;
    stack.board("trimmed").await;
    for i in 0..5 {
        stack.task("trimmed", "todo", &format!("t{i}")).await;
    }
    // Let the trimmer run; the log then holds only versions 4 and 5.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;

    let mut ws = stack.connect().await;
    ws.send(json!({"type": "subscribe", "boardId": "trimmed", "sinceVersion": 1}))
        .await;
    let sync = ws.next_of("board.sync").await;
    assert_eq!(sync["version"], 5);
    assert_eq!(sync["data"]["lanes"]["todo"].as_array().unwrap().len(), 5);
}

#[tokio::test]
async fn resumes_after_board_service_restart_without_gaps() {
    let mut stack = Stack::start().await;
    stack.board("restart").await;
    let mut ws = stack.connect().await;
    ws.subscribe("restart").await;
    stack.task("restart", "todo", "before").await;
    read_until(&mut ws, 0, 1).await;

    let addr = stack.board_service.addr;
    stack.board_service.stop_in_place().await;
    stack.board_service = start_board_service(stack.db.url(), addr).await;
    stack.api = connect_api(addr).await;

    // Written right after the restart, likely before the gateway has
    // reconnected: it must resume from version 1 and miss nothing.
    for title in ["after-1", "after-2", "after-3"] {
        stack.task("restart", "todo", title).await;
    }
    let frames = read_until(&mut ws, 1, 4).await;
    let titles: Vec<_> = frames
        .iter()
        .map(|f| f["data"]["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles, ["after-1", "after-2", "after-3"]);
    assert!(
        frames.iter().all(|f| f["type"] == "task.created"),
        "no extra board.sync"
    );
    let metrics = reqwest::get(stack.http_url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !metrics.contains("ws_gateway_upstream_reconnects_total 0"),
        "the lost watch counts as a reconnect:\n{metrics}"
    );
}

#[tokio::test]
async fn snapshot_then_live_loses_nothing_while_writes_race_the_subscribe() {
    let mut stack = Stack::start().await;
    stack.board("race").await;
    const WRITES: usize = 60;
    let mut writer_api = stack.api.clone();
    let writer = tokio::spawn(async move {
        for i in 0..WRITES {
            writer_api
                .create_task(protocol::v1::CreateTaskRequest {
                    board_id: "race".into(),
                    lane_id: "todo".into(),
                    title: format!("t{i}"),
                    ..Default::default()
                })
                .await
                .expect("create");
        }
    });

    let mut clients = Vec::new();
    for _ in 0..6 {
        let mut ws = stack.connect().await;
        ws.send(json!({"type": "subscribe", "boardId": "race"}))
            .await;
        clients.push(ws);
        tokio::time::sleep(std::time::Duration::from_millis(15)).await;
    }
    writer.await.unwrap();
    let final_board = stack
        .api
        .get_board(GetBoardRequest {
            board_id: "race".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let expected: BTreeSet<String> = final_board.tasks.iter().map(|t| t.id.clone()).collect();
    assert_eq!(expected.len(), WRITES);

    for mut ws in clients {
        let sync = ws.next_of("board.sync").await;
        let start = sync["version"].as_u64().unwrap();
        let mut ids: BTreeSet<String> = sync["data"]["lanes"]["todo"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["id"].as_str().unwrap().to_owned())
            .collect();
        for frame in read_until(&mut ws, start, final_board.version).await {
            assert_eq!(frame["type"], "task.created");
            assert!(
                ids.insert(frame["data"]["id"].as_str().unwrap().to_owned()),
                "no duplicate"
            );
        }
        assert_eq!(ids, expected, "snapshot plus live frames rebuild the board");
    }
}

#[tokio::test]
async fn one_upstream_watch_per_board_closed_when_the_last_subscriber_leaves() {
    let mut stack = Stack::start().await;
    let board = stack.board("shared").await;
    let mut a = stack.connect().await;
    let mut b = stack.connect().await;
    a.subscribe("shared").await;
    b.subscribe(&board.id).await;
    let stats: Value = reqwest::get(stack.http_url("/stats"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["boards"].as_array().unwrap().len(), 1, "{stats}");
    assert_eq!(stats["boards"][0]["subscribers"], 2);

    a.send(json!({"type": "unsubscribe", "boardId": "shared", "id": "u"}))
        .await;
    assert_eq!(a.next_of("ack").await["id"], "u");
    drop(b);
    let mut boards = usize::MAX;
    for _ in 0..200 {
        let stats: Value = reqwest::get(stack.http_url("/stats"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        boards = stats["boards"].as_array().unwrap().len();
        if boards == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert_eq!(boards, 0, "the feed closes with its last subscriber");
}

#[tokio::test]
async fn feed_that_fell_behind_a_trimmed_log_sends_a_fresh_board_sync() {
    let mut stack = Stack::start().await;
    stack.board("behind").await;
    let mut ws = stack.connect().await;
    ws.subscribe("behind").await;
    stack.task("behind", "todo", "seen").await;
    read_until(&mut ws, 0, 1).await;

    // board-service goes away; meanwhile another instance on the same
    // database takes writes and trims the log past the gateway's version.
    let addr = stack.board_service.addr;
    stack.board_service.stop_in_place().await;
    let other = start_board_service_with(stack.db.url(), "127.0.0.1:0".parse().unwrap(), |c| {
        c.event_retention = 1;
        c.trim_interval = std::time::Duration::from_millis(50);
    })
    .await;
    let mut other_api = connect_api(other.addr).await;
    for i in 0..4 {
        other_api
            .create_task(protocol::v1::CreateTaskRequest {
                board_id: "behind".into(),
                lane_id: "todo".into(),
                title: format!("missed {i}"),
                ..Default::default()
            })
            .await
            .unwrap();
    }
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    other.stop().await;
    stack.board_service = start_board_service(stack.db.url(), addr).await;

    let sync = ws.next_of("board.sync").await;
    assert_eq!(sync["version"], 5);
    assert_eq!(sync["data"]["lanes"]["todo"].as_array().unwrap().len(), 5);
    stack.api = connect_api(addr).await;
    stack.task("behind", "todo", "live again").await;
    assert_eq!(
        read_until(&mut ws, 5, 6).await[0]["data"]["title"],
        "live again"
    );
}
