//! Task create/update/move/delete, validation and idempotency through gRPC.

mod common;

use common::*;
use protocol::v1::{
    CreateTaskRequest, DeleteTaskRequest, GetBoardRequest, Labels, MoveTaskRequest, Priority,
    TaskKind, UpdateLaneRequest, UpdateTaskRequest, move_task_request::Anchor,
};
use tonic::Code;

#[tokio::test]
async fn created_tasks_keep_all_fields_and_default_sensibly() {
    let (_db, _service, mut client) = start().await;
    let board = create_board(&mut client, "Fields").await;
    let full = client
        .create_task(CreateTaskRequest {
            board_id: board.slug.clone(),
            lane_id: "todo".into(),
            title: "  Login page ".into(),
            description: "OAuth and password".into(),
            priority: Priority::High as i32,
            kind: TaskKind::Story as i32,
            estimated_hours: 5.5,
            assignee: "ana".into(),
            labels: vec!["auth".into(), "web".into(), "auth".into()],
            request_id: String::new(),
            status: String::new(),
            parent_id: String::new(),
            sprint_id: String::new(),
        })
        .await
        .expect("create")
        .into_inner();
    assert_eq!(full.title, "Login page");
    assert_eq!(
        (full.priority, full.kind),
        (Priority::High as i32, TaskKind::Story as i32)
    );
    assert_eq!(full.labels, ["auth", "web"]);
    assert_eq!(
        (full.lane_key.as_str(), full.version, full.estimated_hours),
        ("todo", 1, 5.5)
    );
    assert!(full.created_at.is_some() && full.updated_at.is_some());

    let plain = create_task(&mut client, &board.id, "todo", "plain").await;
    assert_eq!(
        (plain.priority, plain.kind),
        (Priority::Medium as i32, TaskKind::Task as i32)
    );
    assert!(
        plain.position > full.position,
        "new tasks go to the end of the lane"
    );

    let snapshot = client
        .get_board(GetBoardRequest { board_id: board.id })
        .await
        .expect("get")
        .into_inner();
    assert_eq!(snapshot.version, 2);
    assert_eq!(snapshot.tasks, vec![full, plain]);
}

#[tokio::test]
async fn invalid_input_is_refused_with_the_field_and_rule() {
    let (_db, _service, mut client) = start().await;
    let board = create_board(&mut client, "Validation").await;
    let attempt = |title: String, priority: i32, lane: &str| CreateTaskRequest {
        board_id: board.id.clone(),
        lane_id: lane.into(),
        title,
        priority,
        ..Default::default()
    };
    let cases = [
        (
            attempt(String::new(), 0, "todo"),
            Code::InvalidArgument,
            "title must be 1–500 characters",
        ),
        (
            attempt("x".repeat(501), 0, "todo"),
            Code::InvalidArgument,
            "title must be 1–500 characters",
        ),
        (
            attempt("ok".into(), 42, "todo"),
            Code::InvalidArgument,
            "priority 42 is not a known Priority",
        ),
        (
            attempt("ok".into(), 0, "nowhere"),
            Code::NotFound,
            "lane \"nowhere\" not found on this board",
        ),
    ];
    for (request, code, message) in cases {
        let status = client.create_task(request).await.expect_err("refused");
        assert_eq!((status.code(), status.message()), (code, message));
    }
    let unknown_board = client
        .create_task(CreateTaskRequest {
            board_id: "ghost".into(),
            lane_id: "todo".into(),
            title: "x".into(),
            ..Default::default()
        })
        .await
        .expect_err("unknown board");
    assert_eq!(unknown_board.code(), Code::NotFound);

    let bad_id = client
        .update_task(UpdateTaskRequest {
            task_id: "not-a-uuid".into(),
            title: Some("x".into()),
            ..Default::default()
        })
        .await
        .expect_err("bad id");
    assert_eq!(
        (bad_id.code(), bad_id.message()),
        (Code::InvalidArgument, "task_id must be a UUID")
    );

    let missing = client
        .delete_task(DeleteTaskRequest {
            task_id: uuid::Uuid::now_v7().to_string(),
            ..Default::default()
        })
        .await
        .expect_err("missing task");
    assert_eq!(missing.code(), Code::NotFound);

    let snapshot = client
        .get_board(GetBoardRequest { board_id: board.id })
        .await
        .expect("get")
        .into_inner();
    assert_eq!(
        (snapshot.version, snapshot.tasks.len()),
        (0, 0),
        "refused calls write nothing"
    );
}

#[tokio::test]
async fn updates_change_only_the_given_fields_and_check_the_version() {
    let (_db, _service, mut client) = start().await;
    let board = create_board(&mut client, "Updates").await;
    let task = create_task(&mut client, &board.id, "todo", "Draft").await;

    let updated = client
        .update_task(UpdateTaskRequest {
            task_id: task.id.clone(),
            title: Some("Final".into()),
            labels: Some(Labels {
                values: vec!["ready".into()],
            }),
            expected_version: Some(1),
            ..Default::default()
        })
        .await
        .expect("update")
        .into_inner();
    assert_eq!((updated.title.as_str(), updated.version), ("Final", 2));
    assert_eq!(updated.labels, ["ready"]);
    assert_eq!(
        (updated.priority, updated.description.as_str()),
        (task.priority, "")
    );

    let stale = client
        .update_task(UpdateTaskRequest {
            task_id: task.id.clone(),
            title: Some("Lost update".into()),
            expected_version: Some(1),
            ..Default::default()
        })
        .await
        .expect_err("stale");
    assert_eq!(stale.code(), Code::Aborted);
    assert!(stale.message().contains("version 2"), "{}", stale.message());

    let nothing = client
        .update_task(UpdateTaskRequest {
            task_id: task.id.clone(),
            ..Default::default()
        })
        .await
        .expect_err("empty update");
    assert_eq!(nothing.code(), Code::InvalidArgument);

    let same = client
        .update_task(UpdateTaskRequest {
            task_id: task.id.clone(),
            title: Some("Final".into()),
            ..Default::default()
        })
        .await
        .expect("same value")
        .into_inner();
    assert_eq!(same.version, 2, "writing the stored value changes nothing");

    let mut events = watch(&mut client, &board.id, 0).await;
    let events = next_events(&mut events, 2).await;
    assert_eq!(events[1].r#type, "task.updated");
    assert_eq!(events[1].changed_fields, ["title", "labels"]);
}

#[tokio::test]
async fn moves_place_tasks_before_after_or_at_the_end() {
    let (_db, _service, mut client) = start().await;
    let board = create_board(&mut client, "Moves").await;
    let a = create_task(&mut client, &board.id, "todo", "a").await;
    let b = create_task(&mut client, &board.id, "todo", "b").await;
    let c = create_task(&mut client, &board.id, "backlog", "c").await;
    let mv = |id: &str, lane: &str, anchor: Option<Anchor>| MoveTaskRequest {
        task_id: id.into(),
        to_lane_id: lane.into(),
        anchor,
        ..Default::default()
    };

    client
        .move_task(mv(&c.id, "todo", Some(Anchor::BeforeTaskId(b.id.clone()))))
        .await
        .expect("before");
    assert_eq!(
        lane_order(&mut client, &board.id, "todo").await,
        [a.id.clone(), c.id.clone(), b.id.clone()]
    );
    client
        .move_task(mv(&a.id, "todo", Some(Anchor::AfterTaskId(b.id.clone()))))
        .await
        .expect("after");
    assert_eq!(
        lane_order(&mut client, &board.id, "todo").await,
        [c.id.clone(), b.id.clone(), a.id.clone()]
    );
    client
        .move_task(mv(&c.id, "todo", None))
        .await
        .expect("end");
    assert_eq!(
        lane_order(&mut client, &board.id, "todo").await,
        [b.id.clone(), a.id.clone(), c.id.clone()]
    );
    let done = client
        .move_task(mv(&b.id, "done", None))
        .await
        .expect("other lane")
        .into_inner();
    assert_eq!((done.lane_key.as_str(), done.version), ("done", 2));

    let wrong_lane = client
        .move_task(mv(
            &a.id,
            "backlog",
            Some(Anchor::AfterTaskId(c.id.clone())),
        ))
        .await
        .expect_err("anchor in another lane");
    assert_eq!(wrong_lane.code(), Code::FailedPrecondition);
    let itself = client
        .move_task(mv(&a.id, "todo", Some(Anchor::AfterTaskId(a.id.clone()))))
        .await
        .expect_err("anchor is the task");
    assert_eq!(itself.code(), Code::InvalidArgument);
    let stale = client
        .move_task(MoveTaskRequest {
            expected_version: Some(1),
            ..mv(&c.id, "done", None)
        })
        .await
        .expect_err("stale");
    assert_eq!(stale.code(), Code::Aborted);
}

#[tokio::test]
async fn a_full_wip_lane_refuses_tasks() {
    let (_db, _service, mut client) = start().await;
    let board = create_board(&mut client, "WIP").await;
    let lane = board
        .lanes
        .iter()
        .find(|l| l.key == "in_progress")
        .expect("lane");
    client
        .update_lane(UpdateLaneRequest {
            lane_id: lane.id.clone(),
            wip_limit: Some(1),
            ..Default::default()
        })
        .await
        .expect("limit");
    create_task(&mut client, &board.id, "in_progress", "busy").await;
    let waiting = create_task(&mut client, &board.id, "todo", "waiting").await;

    let full = client
        .move_task(MoveTaskRequest {
            task_id: waiting.id.clone(),
            to_lane_id: "in_progress".into(),
            ..Default::default()
        })
        .await
        .expect_err("lane full");
    assert_eq!(full.code(), Code::FailedPrecondition);
    assert_eq!(
        full.message(),
        "lane \"in_progress\" is at its WIP limit of 1 tasks"
    );
    let created = client
        .create_task(CreateTaskRequest {
            board_id: board.id.clone(),
            lane_id: "in_progress".into(),
            title: "x".into(),
            ..Default::default()
        })
        .await
        .expect_err("lane full");
    assert_eq!(created.code(), Code::FailedPrecondition);
}

#[tokio::test]
async fn a_repeated_request_id_returns_the_first_result_and_writes_once() {
    let (_db, _service, mut client) = start().await;
    let board = create_board(&mut client, "Retries").await;
    let request = CreateTaskRequest {
        board_id: board.id.clone(),
        lane_id: "todo".into(),
        title: "once".into(),
        request_id: "req-1".into(),
        ..Default::default()
    };
    let first = client
        .create_task(request.clone())
        .await
        .expect("first")
        .into_inner();
    let again = client
        .create_task(request)
        .await
        .expect("retry")
        .into_inner();
    assert_eq!(first, again);

    let delete = DeleteTaskRequest {
        task_id: first.id.clone(),
        request_id: "req-2".into(),
        ..Default::default()
    };
    let deleted = client
        .delete_task(delete.clone())
        .await
        .expect("delete")
        .into_inner();
    let deleted_again = client
        .delete_task(delete)
        .await
        .expect("retried delete")
        .into_inner();
    assert_eq!(deleted, deleted_again);

    // The same key with a different request is refused (the IETF
    // Idempotency-Key draft's 422), never answered with the first result.
    let reused = client
        .create_task(CreateTaskRequest {
            board_id: board.id.clone(),
            lane_id: "todo".into(),
            title: "another".into(),
            request_id: "req-1".into(),
            ..Default::default()
        })
        .await
        .expect_err("request_id reused for another request");
    assert_eq!(reused.code(), Code::FailedPrecondition);
    assert!(
        reused.message().contains("different"),
        "{}",
        reused.message()
    );

    let snapshot = client
        .get_board(GetBoardRequest { board_id: board.id })
        .await
        .expect("get")
        .into_inner();
    assert_eq!(
        (snapshot.version, snapshot.tasks.len()),
        (2, 0),
        "one create and one delete"
    );
}

#[tokio::test]
async fn a_tasks_free_text_status_is_stored_bounded_and_announced() {
    let (_db, _service, mut client) = start().await;
    let board = create_board(&mut client, "Status").await;
    let task = client
        .create_task(CreateTaskRequest {
            board_id: board.id.clone(),
            lane_id: "in_progress".into(),
            title: "Login".into(),
            status: " working ".into(),
            ..Default::default()
        })
        .await
        .expect("create with a status")
        .into_inner();
    assert_eq!(
        (task.status.as_str(), task.lane_key.as_str()),
        ("working", "in_progress"),
        "the status is trimmed and is not the lane"
    );

    let too_long = client
        .update_task(UpdateTaskRequest {
            task_id: task.id.clone(),
            status: Some("x".repeat(101)),
            ..Default::default()
        })
        .await
        .expect_err("status over 100 characters");
    assert_eq!(
        (too_long.code(), too_long.message()),
        (Code::InvalidArgument, "status must be 1–100 characters")
    );
    let control = client
        .update_task(UpdateTaskRequest {
            task_id: task.id.clone(),
            status: Some("bad\u{0}".into()),
            ..Default::default()
        })
        .await
        .expect_err("status with NUL");
    assert_eq!(control.code(), Code::InvalidArgument);
    assert!(control.message().starts_with("status must not contain"));

    let blocked = client
        .update_task(UpdateTaskRequest {
            task_id: task.id.clone(),
            status: Some("blocked".into()),
            ..Default::default()
        })
        .await
        .expect("status update")
        .into_inner();
    assert_eq!((blocked.status.as_str(), blocked.version), ("blocked", 2));
    let cleared = client
        .update_task(UpdateTaskRequest {
            task_id: task.id.clone(),
            status: Some(String::new()),
            ..Default::default()
        })
        .await
        .expect("clear the status")
        .into_inner();
    assert_eq!(cleared.status, "");

    let snapshot = client
        .get_board(GetBoardRequest {
            board_id: board.id.clone(),
        })
        .await
        .expect("get")
        .into_inner();
    assert_eq!(snapshot.tasks[0].status, "");
    let mut events = watch(&mut client, &board.id, 0).await;
    let events = next_events(&mut events, 3).await;
    assert_eq!(events[0].task.as_ref().unwrap().status, "working");
    assert_eq!(events[1].changed_fields, ["status"]);
    assert_eq!(events[1].task.as_ref().unwrap().status, "blocked");
    assert_eq!(events[2].changed_fields, ["status"]);
}

/// MoveTask and UpdateTask run as one call of a database function each;
/// their request_ids keep every promise the other writes keep.
#[tokio::test]
async fn moves_and_updates_replay_their_request_ids_even_after_the_task_is_gone() {
    let (_db, _service, mut client) = start().await;
    let board = create_board(&mut client, "Replays").await;
    let task = create_task(&mut client, &board.id, "todo", "replayed").await;
    let mut stream = watch(&mut client, &board.id, board.version + 1).await;

    let move_once = MoveTaskRequest {
        task_id: task.id.clone(),
        to_lane_id: "done".into(),
        request_id: "move-1".into(),
        ..Default::default()
    };
    let moved = client
        .move_task(move_once.clone())
        .await
        .expect("move")
        .into_inner();
    let again = client
        .move_task(move_once.clone())
        .await
        .expect("retry")
        .into_inner();
    assert_eq!(moved, again, "a retry answers the first move");
    let update_once = UpdateTaskRequest {
        task_id: task.id.clone(),
        title: Some("renamed".into()),
        request_id: "update-1".into(),
        ..Default::default()
    };
    let updated = client
        .update_task(update_once.clone())
        .await
        .expect("update")
        .into_inner();
    let again = client
        .update_task(update_once.clone())
        .await
        .expect("retry")
        .into_inner();
    assert_eq!((updated.title.as_str(), updated.version), ("renamed", 3));
    assert_eq!(updated, again, "a retry answers the first update");
    let events = next_events(&mut stream, 2).await;
    let kinds: Vec<_> = events
        .iter()
        .map(|e| (e.r#type.as_str(), e.version))
        .collect();
    assert_eq!(
        kinds,
        [
            ("task.moved", board.version + 2),
            ("task.updated", board.version + 3)
        ],
        "each write is announced once, retries never"
    );
    assert_eq!(events[0].to_lane_key, "done");
    assert_eq!(events[0].request_id, "move-1");
    assert_eq!(events[1].changed_fields, ["title"]);
    assert_eq!(events[1].task.as_ref(), Some(&updated));
    assert_quiet(&mut stream).await;

    // The same key for another move is refused, never answered.
    let reused = client
        .move_task(MoveTaskRequest {
            to_lane_id: "todo".into(),
            ..move_once.clone()
        })
        .await
        .expect_err("request_id reused for another move");
    assert_eq!(reused.code(), Code::FailedPrecondition);
    assert!(
        reused.message().contains("different MoveTask"),
        "{}",
        reused.message()
    );

    client
        .delete_task(DeleteTaskRequest {
            task_id: task.id.clone(),
            ..Default::default()
        })
        .await
        .expect("delete");
    let late = client
        .move_task(move_once)
        .await
        .expect("retry after delete")
        .into_inner();
    assert_eq!(late, moved, "the task is gone, its move's answer is not");
    let gone = client
        .move_task(MoveTaskRequest {
            task_id: task.id.clone(),
            to_lane_id: "todo".into(),
            ..Default::default()
        })
        .await
        .expect_err("a new move of a deleted task");
    assert_eq!(gone.code(), Code::NotFound);
}
