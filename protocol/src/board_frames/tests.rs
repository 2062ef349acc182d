use serde_json::json;

use super::*;
use crate::{
    time::timestamp_from_ms,
    v1::{Board, BoardEvent, Lane, Task},
};

fn task(id: &str, lane: &str, position: &str) -> Task {
    Task {
        id: id.into(),
        board_id: "b1".into(),
        lane_id: format!("{lane}-id"),
        lane_key: lane.into(),
        title: format!("title {id}"),
        priority: 3,
        kind: 3,
        position: position.into(),
        version: 2,
        created_at: Some(timestamp_from_ms(1_000)),
        updated_at: Some(timestamp_from_ms(2_000)),
        ..Default::default()
    }
}

fn lane(key: &str, position: u32) -> Lane {
    Lane {
        id: format!("{key}-id"),
        board_id: "b1".into(),
        key: key.into(),
        name: key.into(),
        position,
        wip_limit: None,
    }
}

fn event(kind: &str) -> BoardEvent {
    BoardEvent {
        board_id: "b1".into(),
        version: 7,
        r#type: kind.into(),
        occurred_at: Some(timestamp_from_ms(5_000)),
        request_id: "cmd-1".into(),
        task: Some(task("t1", "todo", "a1")),
        ..Default::default()
    }
}

fn to_json(frame: &ServerFrame) -> serde_json::Value {
    serde_json::to_value(frame).expect("frames serialize")
}

#[test]
fn task_created_carries_envelope_and_lane_key() {
    let frame = ServerFrame::from_event(&event("task.created")).unwrap();
    let value = to_json(&frame);
    assert_eq!(value["type"], "task.created");
    assert_eq!(value["boardId"], "b1");
    assert_eq!(value["version"], 7);
    assert_eq!(value["ts"], 5_000);
    assert_eq!(value["commandId"], "cmd-1");
    assert_eq!(value["data"]["lane"], "todo");
    assert_eq!(value["data"]["priority"], "high");
    assert_eq!(value["data"]["kind"], "bug");
    assert_eq!(value["data"]["createdAt"], 1_000);
    let back: ServerFrame = serde_json::from_value(value).unwrap();
    assert_eq!(back, frame);
}

#[test]
fn task_updated_lists_only_changed_fields() {
    let mut e = event("task.updated");
    e.changed_fields = vec!["title".into(), "estimated_hours".into()];
    e.request_id.clear();
    let value = to_json(&ServerFrame::from_event(&e).unwrap());
    assert_eq!(
        value["data"],
        json!({"id": "t1", "changes": {"title": "title t1", "estimatedHours": 0.0}, "taskVersion": 2})
    );
    assert!(value.get("commandId").is_none());
}

#[test]
fn task_moved_uses_lane_keys() {
    let mut e = event("task.moved");
    e.from_lane_key = "backlog".into();
    e.to_lane_key = "todo".into();
    let value = to_json(&ServerFrame::from_event(&e).unwrap());
    assert_eq!(value["type"], "task.moved");
    assert_eq!(value["data"]["fromLane"], "backlog");
    assert_eq!(value["data"]["toLane"], "todo");
    assert_eq!(value["data"]["position"], "a1");
}

#[test]
fn task_deleted_and_lane_frames_have_their_data() {
    let value = to_json(&ServerFrame::from_event(&event("task.deleted")).unwrap());
    assert_eq!(value["data"], json!({"id": "t1", "lane": "todo"}));

    let mut e = event("lane.deleted");
    e.lane = Some(lane("done", 1));
    e.lanes = vec![lane("todo", 0)];
    e.moved_tasks = vec![task("t2", "todo", "b0")];
    let value = to_json(&ServerFrame::from_event(&e).unwrap());
    assert_eq!(value["type"], "lane.deleted");
    assert_eq!(value["data"]["lane"]["key"], "done");
    assert_eq!(value["data"]["lanes"][0]["key"], "todo");
    assert_eq!(value["data"]["movedTasks"][0]["id"], "t2");
}

#[test]
fn resync_has_no_frame() {
    assert!(ServerFrame::from_event(&event("board.resync")).is_none());
}

#[test]
fn board_sync_groups_tasks_by_lane_in_byte_order() {
    let board = Board {
        id: "b1".into(),
        slug: "demo".into(),
        name: "Demo".into(),
        version: 9,
        lanes: vec![lane("todo", 0), lane("done", 1)],
        created_at: None,
        project_id: String::new(),
    };
    let tasks = [
        task("t2", "todo", "a1"),
        task("t1", "todo", "Zz"),
        task("t3", "done", "a0"),
    ];
    let value = to_json(&ServerFrame::board_sync(&board, &tasks, 9, 10));
    assert_eq!(value["type"], "board.sync");
    assert_eq!(value["version"], 9);
    assert_eq!(value["data"]["laneOrder"], json!(["todo", "done"]));
    assert_eq!(value["data"]["lanes"]["todo"][0]["id"], "t1");
    assert_eq!(value["data"]["lanes"]["todo"][1]["id"], "t2");
    assert_eq!(value["data"]["lanes"]["done"][0]["id"], "t3");
    assert_eq!(value["data"]["board"]["slug"], "demo");
    // On the wire the lanes object lists its keys in the board's lane order
    // (not alphabetically: "done" sorts first), and reads back the same.
    let frame = ServerFrame::board_sync(&board, &tasks, 9, 10);
    let text = crate::json::encode(&frame);
    assert!(
        text.find("\"todo\":[").unwrap() < text.find("\"done\":[").unwrap(),
        "{text}"
    );
    let ServerFrame::BoardSync(change) = serde_json::from_str::<ServerFrame>(&text).unwrap() else {
        panic!("{text}")
    };
    let keys: Vec<&str> = change
        .data
        .lanes
        .0
        .iter()
        .map(|(k, _)| k.as_str())
        .collect();
    assert_eq!(keys, ["todo", "done"]);
    assert_eq!(change.data.lanes.get("done").unwrap()[0].id, "t3");
}

#[test]
fn control_frames_have_flat_shapes() {
    let connected = ServerFrame::Connected {
        client_id: "c1".into(),
        heartbeat_ms: 30_000,
    };
    assert_eq!(
        to_json(&connected),
        json!({"type": "connected", "clientId": "c1", "heartbeatMs": 30000})
    );
    let ack = ServerFrame::Ack(Ack {
        id: "x".into(),
        ok: true,
        result: Some(AckResult::Deleted {
            task_id: "t1".into(),
            board_version: 3,
        }),
    });
    assert_eq!(
        to_json(&ack),
        json!({"type": "ack", "id": "x", "ok": true, "result": {"taskId": "t1", "boardVersion": 3}})
    );
    let error = ServerFrame::Error(ErrorFrame {
        code: ErrorCode::UnknownType,
        message: "nope".into(),
        id: None,
        board_id: None,
    });
    assert_eq!(
        to_json(&error),
        json!({"type": "error", "code": "unknown_type", "message": "nope"})
    );
    assert_eq!(
        to_json(&ServerFrame::Pong { ts: 1 }),
        json!({"type": "pong", "ts": 1})
    );
}

#[test]
fn client_frames_parse_and_become_requests() {
    let frame =
        ClientFrame::parse(r#"{"type":"subscribe","boardId":"demo","sinceVersion":4}"#).unwrap();
    assert_eq!(
        frame,
        ClientFrame::Subscribe {
            board_id: "demo".into(),
            since_version: Some(4),
            id: None
        }
    );
    let frame = ClientFrame::parse(
        r#"{"type":"task.move","id":"c1","boardId":"demo","data":{"id":"t1","toLane":"done","after":"t2"},"expectedVersion":3}"#,
    )
    .unwrap();
    let ClientFrame::TaskMove(command) = frame else {
        panic!("not a move")
    };
    let request = command.to_request();
    assert_eq!(request.to_lane_id, "done");
    assert_eq!(request.expected_version, Some(3));
    assert_eq!(request.request_id, "c1");
    let frame = ClientFrame::parse(
        r#"{"type":"task.create","id":"c2","boardId":"demo","data":{"title":"x","lane":"todo","priority":"low"}}"#,
    )
    .unwrap();
    let ClientFrame::TaskCreate(command) = frame else {
        panic!("not a create")
    };
    assert_eq!(command.to_request().lane_id, "todo");
    assert_eq!(command.to_request().priority, 1);
    assert_eq!(command.to_request().sprint_id, "");
    let frame = ClientFrame::parse(
        r#"{"type":"task.create","id":"c3","boardId":"demo","data":{"title":"x",
            "sprintId":"s1","parentId":"e1","status":"working"}}"#,
    )
    .unwrap();
    let ClientFrame::TaskCreate(command) = frame else {
        panic!("not a create")
    };
    let request = command.to_request();
    assert_eq!(
        (
            request.sprint_id.as_str(),
            request.parent_id.as_str(),
            request.status.as_str()
        ),
        ("s1", "e1", "working")
    );
}

#[test]
fn bad_client_frames_name_the_problem() {
    let err = ClientFrame::parse("{nope").unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidJson);
    let err = ClientFrame::parse(r#"{"type":"dance","id":"7"}"#).unwrap_err();
    assert_eq!(err.code, ErrorCode::UnknownType);
    assert_eq!(err.id.as_deref(), Some("7"));
    let err = ClientFrame::parse(r#"{"type":"subscribe"}"#).unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidFrame);
    assert!(err.message.contains("boardId"), "{}", err.message);
    let err = ClientFrame::parse(
        r#"{"type":"task.update","id":"c","boardId":"b","data":{"id":"t","changes":{"colour":"x"}}}"#,
    )
    .unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidFrame);
    assert!(err.message.contains("colour"), "{}", err.message);
    let err = ClientFrame::parse(
        r#"{"type":"task.update","id":"c","boardId":"b","data":{"id":"t","changes":{"lane":5}}}"#,
    )
    .unwrap_err();
    assert!(
        err.message.contains("data.changes: lane"),
        "{}",
        err.message
    );
    let err = ClientFrame::parse(
        r#"{"type":"task.update","id":"c","boardId":"b","data":{"id":"t","changes":{"title":false}}}"#,
    )
    .unwrap_err();
    assert!(
        err.message.contains("data.changes: title"),
        "{}",
        err.message
    );
    let err = ClientFrame::parse(r#"{"type":"subscribe","boardId":5}"#).unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidFrame);
    assert!(err.message.contains("boardId"), "{}", err.message);
}

#[test]
fn mistyped_nested_fields_are_named_by_their_path() {
    let err = ClientFrame::parse(
        r#"{"type":"task.create","id":"c","boardId":"b","data":{"title":7,"lane":"todo"}}"#,
    )
    .unwrap_err();
    assert!(err.message.contains("data.title"), "{}", err.message);
    let err = ClientFrame::parse(
        r#"{"type":"task.update","id":"c","boardId":"b","expectedVersion":-1,"data":{"id":"t","changes":{}}}"#,
    )
    .unwrap_err();
    assert!(err.message.contains("expectedVersion"), "{}", err.message);
}

#[test]
fn empty_ids_and_two_neighbours_are_refused() {
    for frame in [
        r#"{"type":"task.delete","id":"","boardId":"b","data":{"id":"t"}}"#,
        r#"{"type":"task.delete","id":"  ","boardId":"b","data":{"id":"t"}}"#,
        r#"{"type":"task.delete","id":"c","boardId":"b","data":{"id":""}}"#,
        r#"{"type":"task.delete","id":"c\u0000","boardId":"b","data":{"id":"t"}}"#,
        r#"{"type":"task.move","id":"c","boardId":"b","data":{"id":"t","toLane":"done","before":"x","after":"y"}}"#,
    ] {
        let err = ClientFrame::parse(frame).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidFrame, "{frame}");
    }
    let long = format!(
        r#"{{"type":"task.delete","id":"{}","boardId":"b","data":{{"id":"t"}}}}"#,
        "x".repeat(201)
    );
    assert!(ClientFrame::parse(&long).is_err());
}

#[test]
fn kind_is_the_serialized_type_of_every_frame() {
    let mut frames = vec![
        ServerFrame::Connected {
            client_id: "c".into(),
            heartbeat_ms: 1,
        },
        ServerFrame::Pong { ts: 1 },
        ServerFrame::Error(ErrorFrame {
            code: ErrorCode::Internal,
            message: "m".into(),
            id: None,
            board_id: None,
        }),
        ServerFrame::Ack(Ack {
            id: "a".into(),
            ok: true,
            result: None,
        }),
        ServerFrame::board_sync(&Board::default(), [], 1, 5),
    ];
    let mut lane_event = event("lane.created");
    lane_event.lane = Some(lane("todo", 0));
    for kind in ["task.created", "task.updated", "task.moved", "task.deleted"] {
        frames.extend(ServerFrame::from_event(&event(kind)));
    }
    for kind in ["lane.created", "lane.updated", "lane.deleted"] {
        lane_event.r#type = kind.into();
        frames.extend(ServerFrame::from_event(&lane_event));
    }
    let mut project_event = event("project.created");
    project_event.project = Some(Default::default());
    for kind in ["project.created", "project.updated"] {
        project_event.r#type = kind.into();
        frames.extend(ServerFrame::from_event(&project_event));
    }
    frames.extend(planning_frames());
    frames.extend(presence_frames());
    assert_eq!(
        frames.len(),
        14 + planning_frames().len() + presence_frames().len(),
        "every kind is covered"
    );
    for frame in frames {
        let json = to_json(&frame);
        assert_eq!(json["type"], frame.kind());
        let reparsed: serde_json::Value = serde_json::from_str(&frame.to_json()).unwrap();
        assert_eq!(reparsed, json);
        let is_change = !matches!(
            json["type"].as_str(),
            Some(
                "connected"
                    | "pong"
                    | "error"
                    | "ack"
                    | "presence"
                    | "presence.joined"
                    | "presence.left"
            )
        );
        assert_eq!(frame.committed_ms().is_some(), is_change, "{json}");
    }
}

#[test]
fn a_tasks_status_travels_in_its_frames_and_commands() {
    let mut e = event("task.created");
    e.task.as_mut().unwrap().status = "working".into();
    let value = to_json(&ServerFrame::from_event(&e).unwrap());
    assert_eq!(value["data"]["status"], "working");
    assert_eq!(value["data"]["lane"], "todo", "the status is not the lane");

    e.r#type = "task.updated".into();
    e.changed_fields = vec!["status".into()];
    let value = to_json(&ServerFrame::from_event(&e).unwrap());
    assert_eq!(value["data"]["changes"], json!({"status": "working"}));

    let frame = ClientFrame::parse(
        r#"{"type":"task.update","id":"c","boardId":"b","data":{"id":"t","changes":{"status":"blocked"}}}"#,
    )
    .unwrap();
    let ClientFrame::TaskUpdate(command) = frame else {
        panic!("not an update")
    };
    assert_eq!(
        command
            .update()
            .expect("a field update")
            .to_request()
            .status
            .as_deref(),
        Some("blocked")
    );
}

fn sprint(state: i32) -> crate::v1::Sprint {
    crate::v1::Sprint {
        id: "s1".into(),
        board_id: "b1".into(),
        name: "Sprint 1".into(),
        goal: "Checkout works".into(),
        starts_at: Some(timestamp_from_ms(10_000)),
        ends_at: Some(timestamp_from_ms(20_000)),
        state,
        version: 2,
        created_at: Some(timestamp_from_ms(1_000)),
        updated_at: Some(timestamp_from_ms(3_000)),
    }
}

fn sprint_event(kind: &str, state: i32) -> BoardEvent {
    let mut e = event(kind);
    e.task = None;
    e.sprint = Some(sprint(state));
    e
}

/// The planning frames beyond projects, as later steps add them.
fn planning_frames() -> Vec<ServerFrame> {
    [
        ("sprint.created", 1),
        ("sprint.started", 2),
        ("sprint.completed", 3),
    ]
    .into_iter()
    .filter_map(|(kind, state)| ServerFrame::from_event(&sprint_event(kind, state)))
    .collect()
}

#[test]
fn sprint_frames_carry_the_sprint_and_tasks_their_sprint_id_in_camel_case() {
    let frames = planning_frames();
    assert_eq!(frames.len(), 3, "each sprint event has its frame");
    let value = to_json(&frames[1]);
    assert_eq!(value["type"], "sprint.started");
    assert_eq!(
        (
            value["boardId"].as_str(),
            value["version"].as_u64(),
            value["commandId"].as_str()
        ),
        (Some("b1"), Some(7), Some("cmd-1"))
    );
    assert_eq!(
        value["data"],
        json!({
            "id": "s1", "name": "Sprint 1", "goal": "Checkout works", "state": "active",
            "startsAt": 10_000, "endsAt": 20_000, "version": 2,
            "createdAt": 1_000, "updatedAt": 3_000
        })
    );
    let states: Vec<_> = frames
        .iter()
        .map(|f| to_json(f)["data"]["state"].clone())
        .collect();
    assert_eq!(states, ["planned", "active", "completed"]);
    let mut empty = sprint_event("sprint.completed", 3);
    empty.sprint = None;
    assert!(
        ServerFrame::from_event(&empty).is_none(),
        "a sprint event needs its sprint"
    );

    // Every task frame has sprintId, null for none.
    let mut e = event("task.created");
    let value = to_json(&ServerFrame::from_event(&e).unwrap());
    assert_eq!(value["data"]["sprintId"], json!(null));
    e.task.as_mut().unwrap().sprint_id = "s1".into();
    let value = to_json(&ServerFrame::from_event(&e).unwrap());
    assert_eq!(value["data"]["sprintId"], "s1");
    e.r#type = "task.updated".into();
    e.changed_fields = vec!["sprint_id".into()];
    let value = to_json(&ServerFrame::from_event(&e).unwrap());
    assert_eq!(value["data"]["changes"], json!({"sprintId": "s1"}));
    e.task.as_mut().unwrap().sprint_id.clear();
    let value = to_json(&ServerFrame::from_event(&e).unwrap());
    assert_eq!(value["data"]["changes"], json!({"sprintId": null}));

    // A command sets it with an id, and null puts the task back in the backlog.
    let request = |changes: &str| match ClientFrame::parse(&format!(
        r#"{{"type":"task.update","id":"c","boardId":"b","data":{{"id":"t","changes":{changes}}}}}"#
    )) {
        Ok(ClientFrame::TaskUpdate(command)) => {
            command.update().expect("a field update").to_request()
        }
        other => panic!("not an update: {other:?}"),
    };
    assert_eq!(
        request(r#"{"sprintId":"s1"}"#).sprint_id.as_deref(),
        Some("s1")
    );
    assert_eq!(
        request(r#"{"sprintId":null}"#).sprint_id.as_deref(),
        Some("")
    );
    assert_eq!(request(r#"{"title":"x"}"#).sprint_id, None);
}

#[test]
fn project_frames_carry_the_project_and_its_boards_in_camel_case() {
    let mut e = event("project.updated");
    e.task = None;
    e.changed_fields = vec!["board_ids".into()];
    e.project = Some(crate::v1::Project {
        id: "p1".into(),
        slug: "launch".into(),
        name: "Launch".into(),
        description: "Q3".into(),
        version: 3,
        board_ids: vec!["b1".into(), "b2".into()],
        created_at: Some(timestamp_from_ms(1_000)),
        updated_at: Some(timestamp_from_ms(4_000)),
    });
    let value = to_json(&ServerFrame::from_event(&e).unwrap());
    assert_eq!(value["type"], "project.updated");
    assert_eq!(
        (value["boardId"].as_str(), value["version"].as_u64()),
        (Some("b1"), Some(7))
    );
    assert_eq!(
        value["data"],
        json!({
            "id": "p1", "slug": "launch", "name": "Launch", "description": "Q3",
            "version": 3, "boardIds": ["b1", "b2"], "createdAt": 1_000, "updatedAt": 4_000,
            "changed": ["boardIds"]
        })
    );
    e.r#type = "project.created".into();
    e.changed_fields.clear();
    let value = to_json(&ServerFrame::from_event(&e).unwrap());
    assert_eq!(value["type"], "project.created");
    assert!(value["data"].get("changed").is_none());
    e.project = None;
    assert!(
        ServerFrame::from_event(&e).is_none(),
        "a project event needs its project"
    );

    let board = Board {
        id: "b1".into(),
        project_id: "p1".into(),
        ..Default::default()
    };
    let sync = to_json(&ServerFrame::board_sync(&board, [], 1, 5));
    assert_eq!(sync["data"]["board"]["projectId"], "p1");
    let alone = to_json(&ServerFrame::board_sync(&Board::default(), [], 1, 5));
    assert!(alone["data"]["board"].get("projectId").is_none());
}

#[test]
fn epic_frames_carry_parent_and_progress_in_camel_case() {
    let mut e = event("task.created");
    e.task.as_mut().unwrap().parent_id = "epic-1".into();
    let value = to_json(&ServerFrame::from_event(&e).unwrap());
    assert_eq!(value["data"]["parentId"], "epic-1");
    assert!(
        value["data"].get("progress").is_none(),
        "only epics have progress"
    );
    let mut orphan = event("task.created");
    orphan.task.as_mut().unwrap().parent_id.clear();
    let value = to_json(&ServerFrame::from_event(&orphan).unwrap());
    assert_eq!(value["data"]["parentId"], json!(null));

    let mut epic = event("task.updated");
    let task = epic.task.as_mut().unwrap();
    task.kind = 4;
    task.progress = Some(crate::v1::Progress { done: 1, total: 3 });
    epic.changed_fields = vec!["progress".into()];
    let value = to_json(&ServerFrame::from_event(&epic).unwrap());
    assert_eq!(
        value["data"]["changes"],
        json!({"progress": {"done": 1, "total": 3}})
    );
    epic.r#type = "task.created".into();
    let value = to_json(&ServerFrame::from_event(&epic).unwrap());
    assert_eq!(value["data"]["progress"], json!({"done": 1, "total": 3}));

    // A cleared parent is null in changes, and null in a command clears it.
    let mut cleared = event("task.updated");
    cleared.task.as_mut().unwrap().parent_id.clear();
    cleared.changed_fields = vec!["parent_id".into()];
    let value = to_json(&ServerFrame::from_event(&cleared).unwrap());
    assert_eq!(value["data"]["changes"], json!({"parentId": null}));
    let parse_update = |changes: &str| {
        ClientFrame::parse(&format!(
            r#"{{"type":"task.update","id":"c","boardId":"b","data":{{"id":"t","changes":{changes}}}}}"#
        ))
    };
    let Ok(ClientFrame::TaskUpdate(clear)) = parse_update(r#"{"parentId":null}"#) else {
        panic!("not an update")
    };
    assert_eq!(
        clear
            .update()
            .expect("a field update")
            .to_request()
            .parent_id
            .as_deref(),
        Some("")
    );
    let Ok(ClientFrame::TaskUpdate(set)) = parse_update(r#"{"parentId":"e1"}"#) else {
        panic!("not an update")
    };
    assert_eq!(
        set.update()
            .expect("a field update")
            .to_request()
            .parent_id
            .as_deref(),
        Some("e1")
    );
    let Ok(ClientFrame::TaskUpdate(untouched)) = parse_update(r#"{"title":"x"}"#) else {
        panic!("not an update")
    };
    assert_eq!(
        untouched
            .update()
            .expect("a field update")
            .to_request()
            .parent_id,
        None
    );
    let err = parse_update(r#"{"progress":{"done":1,"total":1}}"#).unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidFrame);
    assert!(err.message.contains("progress"), "{}", err.message);
}

fn edit(text: &str) -> Command<EditTask> {
    match ClientFrame::parse(text) {
        Ok(ClientFrame::TaskUpdate(command)) => command,
        other => panic!("not a task.update: {other:?}"),
    }
}

#[test]
fn task_update_with_a_lane_is_a_move_to_the_lane_end() {
    let command = edit(
        r#"{"type":"task.update","id":"c","boardId":"default","data":{"id":"t","changes":{"lane":"in_progress"}}}"#,
    );
    assert_eq!(command.update(), None, "a move alone updates no field");
    let request = command.lane_move(None).expect("a move").to_request();
    assert_eq!(request.task_id, "t");
    assert_eq!(request.to_lane_id, "in_progress");
    assert_eq!(request.anchor, None, "no neighbour: the lane's end");
    assert_eq!(request.request_id, "c");
}

#[test]
fn task_update_with_a_lane_and_fields_updates_then_moves_under_its_own_key() {
    let command = edit(
        r#"{"type":"task.update","id":"c","boardId":"b","expectedVersion":3,"data":{"id":"t","before":"u","changes":{"lane":"done","title":"Ship"}}}"#,
    );
    let update = command.update().expect("an update").to_request();
    assert_eq!(update.title.as_deref(), Some("Ship"));
    assert_eq!(update.expected_version, Some(3));
    assert_eq!(update.request_id, "c");
    let lane_move = command.lane_move(Some(4)).expect("a move").to_request();
    assert_eq!(lane_move.to_lane_id, "done");
    assert_eq!(lane_move.expected_version, Some(4));
    assert_eq!(lane_move.request_id, "c:move");
    assert_eq!(
        lane_move.anchor,
        Some(crate::v1::move_task_request::Anchor::BeforeTaskId(
            "u".into()
        ))
    );
}

#[test]
fn task_update_without_a_lane_stays_a_field_update() {
    let command =
        edit(r#"{"type":"task.update","id":"c","boardId":"b","data":{"id":"t","changes":{}}}"#);
    assert!(command.update().is_some());
    assert_eq!(command.lane_move(None), None);
    for (frame, rule) in [
        (
            r#"{"type":"task.update","id":"c","boardId":"b","data":{"id":"t","after":"u","changes":{"title":"x"}}}"#,
            "give data.changes.lane",
        ),
        (
            r#"{"type":"task.update","id":"c","boardId":"b","data":{"id":"t","changes":{"lane":"a","laneId":"b"}}}"#,
            "exclusive",
        ),
    ] {
        let err = ClientFrame::parse(frame).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidFrame);
        assert!(err.message.contains(rule), "{}", err.message);
    }
    let long_id = "x".repeat(client::ID_MAX);
    let frame = json!({"type":"task.update","id":long_id,"boardId":"b","data":{"id":"t","changes":{"lane":"a","title":"y"}}});
    let err = ClientFrame::parse(&frame.to_string()).unwrap_err();
    assert!(err.message.contains("at most 195 bytes"), "{}", err.message);
}

fn presence_frames() -> Vec<ServerFrame> {
    let target = PresenceTarget {
        board_id: Some("b".into()),
        channel: None,
    };
    let entries = vec![PresenceEntry {
        key: "u1".into(),
        name: "Ann".into(),
        connections: 3,
    }];
    let change = PresenceChange {
        target: target.clone(),
        entries: entries.clone(),
        count: 1,
    };
    vec![
        ServerFrame::Presence(PresenceList {
            target,
            id: Some("q".into()),
            entries: Some(entries),
            count: 1,
        }),
        ServerFrame::PresenceJoined(change.clone()),
        ServerFrame::PresenceLeft(change),
    ]
}

#[test]
fn presence_frames_say_board_entries_and_count_and_omit_entries_above_the_limit() {
    let frames = presence_frames();
    let list = to_json(&frames[0]);
    assert_eq!(
        list,
        serde_json::json!({"type": "presence", "boardId": "b", "id": "q", "count": 1,
            "entries": [{"key": "u1", "name": "Ann", "connections": 3}]})
    );
    let counts_only = ServerFrame::Presence(PresenceList {
        target: PresenceTarget {
            board_id: Some("b".into()),
            channel: None,
        },
        id: None,
        entries: None,
        count: 500,
    });
    assert_eq!(
        to_json(&counts_only),
        serde_json::json!({"type": "presence", "boardId": "b", "count": 500})
    );
    let query = ClientFrame::parse(r#"{"type":"presence","boardId":"b","id":"q"}"#).unwrap();
    assert_eq!(
        query,
        ClientFrame::Presence {
            board_id: Some("b".into()),
            channel: None,
            id: Some("q".into())
        }
    );
    let neither = ClientFrame::parse(r#"{"type":"presence","id":"q"}"#).unwrap_err();
    assert!(neither.message.contains("boardId"), "{}", neither.message);
}
