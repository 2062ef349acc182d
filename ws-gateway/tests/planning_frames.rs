//! The planning model through the gateway: a subscribed WebSocket client
//! sees sprints start and complete, and task frames carry `parentId` and
//! `sprintId`.

mod common;

use common::*;
use protocol::v1::{
    CompleteSprintRequest, CreateSprintRequest, CreateTaskRequest, StartSprintRequest, TaskKind,
};
use serde_json::json;

#[tokio::test]
async fn a_subscriber_sees_a_sprint_start_and_its_tasks_sprint_and_epic() {
    let mut stack = Stack::start().await;
    let board = stack.board("plan").await;
    let epic = stack
        .api
        .create_task(CreateTaskRequest {
            board_id: "plan".into(),
            lane_id: "todo".into(),
            title: "Checkout".into(),
            kind: TaskKind::Epic as i32,
            ..Default::default()
        })
        .await
        .expect("epic")
        .into_inner();
    let story = stack
        .api
        .create_task(CreateTaskRequest {
            board_id: "plan".into(),
            lane_id: "todo".into(),
            title: "Pay by card".into(),
            kind: TaskKind::Story as i32,
            parent_id: epic.id.clone(),
            ..Default::default()
        })
        .await
        .expect("story")
        .into_inner();
    let at = |seconds: i64| Some(protocol::time::timestamp_from_ms(seconds * 1_000));
    let sprint = stack
        .api
        .create_sprint(CreateSprintRequest {
            board_id: board.id.clone(),
            name: "Sprint 1".into(),
            goal: "Take payments".into(),
            starts_at: at(1_796_601_600),
            ends_at: at(1_796_601_600 + 14 * 86_400),
            ..Default::default()
        })
        .await
        .expect("sprint")
        .into_inner();

    let mut ws = stack.connect().await;
    assert_eq!(ws.next().await["type"], "connected");
    let sync = ws.subscribe("plan").await;
    let synced = &sync["data"]["lanes"]["todo"][1];
    assert_eq!(synced["id"], story.id.as_str());
    assert_eq!(synced["parentId"], epic.id.as_str());
    assert_eq!(synced["sprintId"], json!(null));

    stack
        .api
        .start_sprint(StartSprintRequest {
            sprint_id: sprint.id.clone(),
            request_id: "start-1".into(),
            ..Default::default()
        })
        .await
        .expect("start");
    let started = ws.next().await;
    assert_eq!(started["type"], "sprint.started");
    assert_eq!(started["boardId"], board.id.as_str());
    assert_eq!(started["version"], sync["version"].as_u64().unwrap() + 1);
    assert_eq!(started["commandId"], "start-1");
    assert_eq!(started["data"]["id"], sprint.id.as_str());
    assert_eq!(started["data"]["name"], "Sprint 1");
    assert_eq!(started["data"]["goal"], "Take payments");
    assert_eq!(started["data"]["state"], "active");
    assert_eq!(started["data"]["startsAt"], 1_796_601_600_000_i64);

    // The client plans the story in the sprint itself: the ack carries the
    // task with both ids, the broadcast the change.
    ws.send(json!({
        "type": "task.update", "id": "plan-1", "boardId": "plan",
        "data": {"id": story.id, "changes": {"sprintId": sprint.id}}
    }))
    .await;
    let mut ack = None;
    let mut updated = None;
    while ack.is_none() || updated.is_none() {
        let frame = ws.next().await;
        match frame["type"].as_str() {
            Some("ack") => ack = Some(frame),
            Some("task.updated") => updated = Some(frame),
            other => panic!("unexpected {other:?}: {frame}"),
        }
    }
    let (ack, updated) = (ack.unwrap(), updated.unwrap());
    assert_eq!(ack["ok"], true, "{ack}");
    assert_eq!(ack["result"]["sprintId"], sprint.id.as_str());
    assert_eq!(ack["result"]["parentId"], epic.id.as_str());
    assert_eq!(updated["data"]["id"], story.id.as_str());
    assert_eq!(updated["data"]["changes"], json!({"sprintId": sprint.id}));

    // A client that arrives now gets the task's sprint in its board.sync.
    let mut late = stack.connect().await;
    assert_eq!(late.next().await["type"], "connected");
    let late_sync = late.subscribe("plan").await;
    let task = &late_sync["data"]["lanes"]["todo"][1];
    assert_eq!(
        (task["sprintId"].as_str(), task["parentId"].as_str()),
        (Some(sprint.id.as_str()), Some(epic.id.as_str()))
    );

    // Completing it sends the unfinished story back to the backlog.
    stack
        .api
        .complete_sprint(CompleteSprintRequest {
            sprint_id: sprint.id.clone(),
            ..Default::default()
        })
        .await
        .expect("complete");
    let completed = ws.next().await;
    assert_eq!(completed["type"], "sprint.completed");
    assert_eq!(completed["data"]["state"], "completed");
    let moved = ws.next().await;
    assert_eq!(moved["type"], "task.updated");
    assert_eq!(moved["version"], completed["version"].as_u64().unwrap() + 1);
    assert_eq!(moved["data"]["id"], story.id.as_str());
    assert_eq!(moved["data"]["changes"], json!({"sprintId": null}));
}
