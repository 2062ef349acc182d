//! Every frame type, commands with their ack and broadcast, and bad input.

mod common;

use common::*;
use futures::SinkExt;
use protocol::v1::{
    CreateLaneRequest, DeleteLaneRequest, MoveTaskRequest, UpdateLaneRequest, UpdateTaskRequest,
};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn subscriber_gets_connected_sync_and_a_frame_for_every_change() {
    let mut stack = Stack::start().await;
    let board = stack.board("demo").await;
    let first = stack.task("demo", "todo", "first").await;
    let mut ws = stack.connect().await;
    let connected = ws.next().await;
    assert_eq!(connected["type"], "connected");
    assert!(connected["heartbeatMs"].as_u64().unwrap() > 0);

    let sync = ws.subscribe("demo").await;
    assert_eq!(sync["boardId"], board.id.as_str());
    assert_eq!(sync["version"], 1);
    assert_eq!(sync["data"]["lanes"]["todo"][0]["id"], first.id.as_str());
    assert_eq!(sync["data"]["laneOrder"][0], "backlog");

    let second = stack.task("demo", "backlog", "second").await;
    let created = ws.next().await;
    assert_eq!(created["type"], "task.created");
    assert_eq!(created["version"], 2);
    assert_eq!(created["data"]["lane"], "backlog");
    assert_eq!(created["data"]["id"], second.id.as_str());
    assert!(created["ts"].as_i64().unwrap() > 0);

    stack
        .api
        .update_task(UpdateTaskRequest {
            task_id: second.id.clone(),
            title: Some("renamed".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let updated = ws.next().await;
    assert_eq!(updated["type"], "task.updated");
    assert_eq!(updated["version"], 3);
    assert_eq!(updated["data"]["changes"], json!({"title": "renamed"}));

    stack
        .api
        .move_task(MoveTaskRequest {
            task_id: second.id.clone(),
            to_lane_id: "todo".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let moved = ws.next().await;
    assert_eq!(moved["type"], "task.moved");
    assert_eq!(moved["data"]["fromLane"], "backlog");
    assert_eq!(moved["data"]["toLane"], "todo");

    let lane = stack
        .api
        .create_lane(CreateLaneRequest {
            board_id: board.id.clone(),
            key: "review".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let created_lane = ws.next().await;
    assert_eq!(created_lane["type"], "lane.created");
    assert_eq!(created_lane["data"]["lane"]["key"], "review");

    stack
        .api
        .update_lane(UpdateLaneRequest {
            lane_id: lane.id.clone(),
            name: Some("Review".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(ws.next().await["type"], "lane.updated");
    stack
        .api
        .delete_lane(DeleteLaneRequest {
            lane_id: lane.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    let deleted_lane = ws.next().await;
    assert_eq!(deleted_lane["type"], "lane.deleted");
    assert_eq!(deleted_lane["version"], 7);

    ws.send(
        json!({"type": "task.delete", "id": "del-1", "boardId": "demo", "data": {"id": second.id}}),
    )
    .await;
    let mut seen = Vec::new();
    for _ in 0..2 {
        seen.push(ws.next().await);
    }
    let deleted = seen
        .iter()
        .find(|f| f["type"] == "task.deleted")
        .expect("task.deleted");
    assert_eq!(deleted["version"], 8);
    assert_eq!(deleted["commandId"], "del-1");
    let ack = seen.iter().find(|f| f["type"] == "ack").expect("ack");
    assert_eq!(ack["result"]["boardVersion"], 8);

    ws.send(json!({"type": "ping"})).await;
    assert_eq!(ws.next().await["type"], "pong");
}

#[tokio::test]
async fn command_is_acked_to_its_sender_and_broadcast_to_every_subscriber() {
    let mut stack = Stack::start().await;
    stack.board("team").await;
    let mut alice = stack.connect().await;
    let mut bob = stack.connect().await;
    alice.subscribe("team").await;
    bob.subscribe("team").await;

    alice
        .send(json!({
            "type": "task.create", "id": "cmd-42", "boardId": "team",
            "data": {"title": "Write docs", "lane": "todo", "priority": "high"}
        }))
        .await;
    let mut frames = [alice.next().await, alice.next().await];
    frames.sort_by_key(|f| f["type"].as_str().unwrap().to_owned());
    let (ack, created) = (&frames[0], &frames[1]);
    assert_eq!(ack["type"], "ack");
    assert_eq!(ack["id"], "cmd-42");
    assert_eq!(ack["ok"], true);
    assert_eq!(ack["result"]["title"], "Write docs");
    assert_eq!(created["type"], "task.created");
    assert_eq!(created["commandId"], "cmd-42");

    let seen_by_bob = bob.next().await;
    assert_eq!(seen_by_bob["type"], "task.created");
    assert_eq!(seen_by_bob["commandId"], "cmd-42");
    assert_eq!(seen_by_bob["data"]["priority"], "high");

    // The same command again is a replay: acked with the same task, nothing new broadcast.
    alice
        .send(json!({
            "type": "task.create", "id": "cmd-42", "boardId": "team",
            "data": {"title": "Write docs", "lane": "todo", "priority": "high"}
        }))
        .await;
    let replay = alice.next_of("ack").await;
    assert_eq!(replay["result"]["id"], ack["result"]["id"]);

    // The same id with another command is refused, never acked with the first result.
    alice
        .send(json!({
            "type": "task.create", "id": "cmd-42", "boardId": "team",
            "data": {"title": "Something else", "lane": "todo"}
        }))
        .await;
    let refused = alice.next_of("error").await;
    assert_eq!(refused["id"], "cmd-42");
    assert_eq!(refused["code"], "failed_precondition", "{refused}");
}

#[tokio::test]
async fn failed_commands_get_an_error_with_their_id() {
    let mut stack = Stack::start().await;
    stack.board("errs").await;
    let task = stack.task("errs", "todo", "t").await;
    let mut ws = stack.connect().await;
    ws.next_of("connected").await;

    ws.send(json!({
        "type": "task.update", "id": "u1", "boardId": "errs", "expectedVersion": 99,
        "data": {"id": task.id, "changes": {"title": "x"}}
    }))
    .await;
    let conflict = ws.next_of("error").await;
    assert_eq!(conflict["code"], "version_conflict");
    assert_eq!(conflict["id"], "u1");

    ws.send(json!({
        "type": "task.move", "id": "m1", "boardId": "errs",
        "data": {"id": task.id, "toLane": "nowhere"}
    }))
    .await;
    let missing = ws.next_of("error").await;
    assert_eq!(missing["code"], "not_found");
    assert_eq!(missing["id"], "m1");

    ws.send(json!({
        "type": "task.create", "id": "c1", "boardId": "errs", "data": {"title": "", "lane": "todo"}
    }))
    .await;
    let invalid = ws.next_of("error").await;
    assert_eq!(invalid["code"], "invalid_argument");
    assert!(invalid["message"].as_str().unwrap().contains("title"));

    ws.send(json!({"type": "subscribe", "boardId": "no-such-board", "id": "s1"}))
        .await;
    let unknown = ws.next_of("error").await;
    assert_eq!(unknown["code"], "not_found");
    assert_eq!(unknown["id"], "s1");
}

#[tokio::test]
async fn bad_frames_get_error_frames_and_the_connection_stays_open() {
    let stack = Stack::start().await;
    let mut ws = stack.connect().await;
    ws.next_of("connected").await;

    ws.send_raw(Message::text("{not json")).await;
    assert_eq!(ws.next().await["code"], "invalid_json");
    ws.send(json!({"type": "dance"})).await;
    assert_eq!(ws.next().await["code"], "unknown_type");
    ws.send(json!({"type": "subscribe"})).await;
    let missing = ws.next().await;
    assert_eq!(missing["code"], "invalid_frame");
    assert!(missing["message"].as_str().unwrap().contains("boardId"));
    ws.send(json!({"noType": true})).await;
    assert_eq!(ws.next().await["code"], "invalid_frame");
    ws.send(json!({"type": "unsubscribe", "boardId": "x"}))
        .await;
    assert_eq!(ws.next().await["code"], "not_subscribed");
    ws.send_raw(Message::binary(vec![1, 2, 3])).await;
    assert_eq!(ws.next().await["code"], "unsupported_frame");

    ws.send(json!({"type": "ping"})).await;
    assert_eq!(ws.next().await["type"], "pong");
}

#[tokio::test]
async fn oversized_frame_closes_with_1009() {
    let stack = Stack::start_with(|c| c.max_frame_bytes = 64 * 1024).await;
    let mut ws = stack.connect().await;
    ws.next_of("connected").await;
    let big = format!(
        "{{\"type\":\"ping\",\"pad\":\"{}\"}}",
        "x".repeat(100 * 1024)
    );
    ws.send_raw(Message::text(big)).await;
    assert_eq!(ws.close_code().await, 1009);
}

#[tokio::test]
async fn message_rate_limit_answers_rate_limited_then_closes_4029() {
    let stack = Stack::start_with(|c| c.max_messages_per_sec = 5).await;
    let mut ws = stack.connect().await;
    ws.next_of("connected").await;
    for _ in 0..12 {
        ws.send(json!({"type": "ping"})).await;
    }
    let limited = ws.next_of("error").await;
    assert_eq!(limited["code"], "rate_limited");
    // Keep flooding: past the burst again the gateway gives up on the client.
    for _ in 0..40 {
        if ws
            .stream
            .send(Message::text(r#"{"type":"ping"}"#))
            .await
            .is_err()
        {
            break;
        }
    }
    assert_eq!(ws.close_code().await, 4029);
}

#[tokio::test]
async fn silent_client_is_closed_with_4008_after_the_heartbeat_timeout() {
    let stack = Stack::start_with(|c| {
        c.heartbeat_ms = 300;
        c.client_timeout_ms = 1_000;
    })
    .await;
    let mut ws = stack.connect().await;
    // Not reading means not answering the server's pings either.
    tokio::time::sleep(std::time::Duration::from_millis(2_000)).await;
    assert_eq!(ws.close_code().await, 4008);
}

#[tokio::test]
async fn one_connection_watches_several_boards_up_to_the_limit() {
    let mut stack = Stack::start_with(|c| c.max_subscriptions = 2).await;
    let a = stack.board("alpha").await;
    let b = stack.board("beta").await;
    stack.board("gamma").await;
    let mut ws = stack.connect().await;
    assert_eq!(ws.subscribe("alpha").await["boardId"], a.id.as_str());
    assert_eq!(ws.subscribe("beta").await["boardId"], b.id.as_str());
    ws.send(json!({"type": "subscribe", "boardId": "gamma", "id": "g"}))
        .await;
    let refused = ws.next_of("error").await;
    assert_eq!(refused["code"], "too_many_subscriptions");
    assert_eq!(refused["id"], "g");

    stack.task("beta", "todo", "on beta").await;
    stack.task("alpha", "todo", "on alpha").await;
    // Order holds per board; frames of different boards may interleave.
    let mut seen = Vec::new();
    for _ in 0..2 {
        let frame = ws.next_of("task.created").await;
        assert_eq!(frame["version"], 1);
        seen.push(frame["boardId"].as_str().unwrap().to_owned());
    }
    seen.sort();
    let mut expected = vec![a.id.clone(), b.id.clone()];
    expected.sort();
    assert_eq!(seen, expected);
}

#[tokio::test]
async fn websocket_pings_are_answered_between_board_frames() {
    let mut stack = Stack::start().await;
    stack.board("pings").await;
    let mut ws = stack.connect().await;
    ws.subscribe("pings").await;
    ws.send_raw(Message::Ping(b"are you there".to_vec().into()))
        .await;
    stack.task("pings", "todo", "after the ping").await;
    let (mut pong, mut created) = (false, false);
    while !(pong && created) {
        let message = tokio::time::timeout(WAIT, futures::StreamExt::next(&mut ws.stream))
            .await
            .expect("a frame within the wait")
            .expect("open")
            .expect("readable");
        match message {
            Message::Pong(payload) => {
                assert_eq!(&payload[..], b"are you there");
                pong = true;
            }
            Message::Text(text) => {
                let frame: serde_json::Value = serde_json::from_str(&text).unwrap();
                assert_eq!(frame["type"], "task.created");
                created = true;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}
