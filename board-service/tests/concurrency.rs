//! Concurrent writers on one board keep a consistent order and gapless versions.

mod common;

use std::collections::HashSet;

use common::*;
use protocol::v1::{
    GetBoardRequest, MoveTaskRequest, UpdateLaneRequest, move_task_request::Anchor,
};
use tonic::Code;

#[tokio::test]
async fn fifty_concurrent_moves_into_one_lane_leave_a_consistent_order_and_gapless_versions() {
    let (_db, _service, mut client) = start().await;
    let board = create_board(&mut client, "Race").await;
    let anchor = create_task(&mut client, &board.id, "done", "anchor").await;
    let mut tasks = Vec::new();
    for i in 0..50 {
        tasks.push(create_task(&mut client, &board.id, "backlog", &format!("t{i}")).await);
    }
    let mut stream = watch(&mut client, &board.id, 51).await;

    // Half go right after the anchor, half to the end: neighbours collide.
    let moves = tasks.iter().enumerate().map(|(i, task)| {
        let mut client = client.clone();
        let request = MoveTaskRequest {
            task_id: task.id.clone(),
            to_lane_id: "done".into(),
            anchor: (i % 2 == 0).then(|| Anchor::AfterTaskId(anchor.id.clone())),
            ..Default::default()
        };
        tokio::spawn(async move { client.move_task(request).await.map(|r| r.into_inner()) })
    });
    let moved: Vec<_> = futures::future::join_all(moves).await;
    for result in &moved {
        result
            .as_ref()
            .expect("join")
            .as_ref()
            .expect("every move succeeds");
    }

    let snapshot = client
        .get_board(GetBoardRequest {
            board_id: board.id.clone(),
        })
        .await
        .expect("get")
        .into_inner();
    assert_eq!(snapshot.version, 101);
    let done: Vec<_> = snapshot
        .tasks
        .iter()
        .filter(|t| t.lane_key == "done")
        .collect();
    assert_eq!(done.len(), 51);
    let positions: Vec<_> = done.iter().map(|t| t.position.as_str()).collect();
    let mut sorted = positions.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(
        positions, sorted,
        "positions are unique and the snapshot is in position order"
    );
    assert_eq!(
        done[0].id, anchor.id,
        "nothing was placed before the anchor"
    );

    let events = next_events(&mut stream, 50).await;
    let versions: Vec<_> = events.iter().map(|e| e.version).collect();
    assert_eq!(versions, (52..=101).collect::<Vec<_>>());
    let ids: HashSet<_> = events
        .iter()
        .map(|e| e.task.as_ref().expect("task").id.clone())
        .collect();
    assert_eq!(ids.len(), 50, "one event per move");
    assert_quiet(&mut stream).await;
}

#[tokio::test]
async fn concurrent_moves_cannot_overfill_a_wip_lane() {
    let (_db, _service, mut client) = start().await;
    let board = create_board(&mut client, "WIP race").await;
    let lane = board
        .lanes
        .iter()
        .find(|l| l.key == "in_progress")
        .expect("lane");
    client
        .update_lane(UpdateLaneRequest {
            lane_id: lane.id.clone(),
            wip_limit: Some(3),
            ..Default::default()
        })
        .await
        .expect("limit");
    let mut tasks = Vec::new();
    for i in 0..20 {
        tasks.push(create_task(&mut client, &board.id, "todo", &format!("t{i}")).await);
    }
    let moves = tasks.iter().map(|task| {
        let mut client = client.clone();
        let request = MoveTaskRequest {
            task_id: task.id.clone(),
            to_lane_id: "in_progress".into(),
            ..Default::default()
        };
        tokio::spawn(async move { client.move_task(request).await })
    });
    let results: Vec<_> = futures::future::join_all(moves)
        .await
        .into_iter()
        .map(|r| r.expect("join"))
        .collect();
    let accepted = results.iter().filter(|r| r.is_ok()).count();
    let refused = results
        .iter()
        .filter(|r| {
            r.as_ref()
                .is_err_and(|s| s.code() == Code::FailedPrecondition)
        })
        .count();
    assert_eq!((accepted, refused), (3, 17));
    assert_eq!(
        lane_order(&mut client, &board.id, "in_progress")
            .await
            .len(),
        3
    );
}
