use serde_json::json;

use super::*;
use crate::board_frames::{Change, TaskMovedData};

fn task(kind: TaskKind) -> TaskData {
    TaskData {
        id: "t1".into(),
        lane: "todo".into(),
        lane_id: "l1".into(),
        title: "Write".into(),
        description: String::new(),
        priority: Priority::Medium,
        kind,
        estimated_hours: 0.0,
        assignee: String::new(),
        labels: vec![],
        position: "a0".into(),
        version: 1,
        created_at: 1,
        updated_at: 1,
        status: String::new(),
        parent_id: None,
        sprint_id: None,
        progress: None,
    }
}

fn change<T>(version: u64, data: T) -> Change<T> {
    Change {
        board_id: "b1".into(),
        version,
        ts: 5,
        command_id: Some("c1".into()),
        data,
    }
}

#[test]
fn task_events_are_flat_with_the_room_and_board_version() {
    let mut epics = Epics::default();
    let frame = ServerFrame::TaskCreated(change(7, task(TaskKind::Task)));
    let events = events_from_frame(&frame, "demo", &mut epics);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].name, outgoing::TASK_CREATED);
    let p = &events[0].payload;
    assert_eq!(p["projectId"], "demo");
    assert_eq!(p["boardId"], "b1");
    assert_eq!(p["boardVersion"], 7);
    assert_eq!(p["commandId"], "c1");
    assert_eq!(p["id"], "t1");
    assert_eq!(p["title"], "Write");
    assert_eq!(p["lane"], "todo");
}

#[test]
fn a_move_is_an_update_and_a_status_change_and_epics_get_epic_events() {
    let mut epics = Epics::default();
    events_from_frame(
        &ServerFrame::TaskCreated(change(1, task(TaskKind::Epic))),
        "demo",
        &mut epics,
    );
    let moved = ServerFrame::TaskMoved(change(
        2,
        TaskMovedData {
            id: "t1".into(),
            from_lane: "todo".into(),
            to_lane: "done".into(),
            from_lane_id: "l1".into(),
            to_lane_id: "l2".into(),
            position: "a1".into(),
            task_version: 2,
        },
    ));
    let events = events_from_frame(&moved, "demo", &mut epics);
    let names: Vec<_> = events.iter().map(|e| e.name).collect();
    assert_eq!(
        names,
        [outgoing::EPIC_UPDATED, outgoing::TASK_STATUS_CHANGED]
    );
    assert_eq!(events[0].payload["lane"], "done");
    assert_eq!(events[1].payload["fromLane"], "todo");
    assert!(events.iter().all(|e| e.payload["boardVersion"] == 2));
}

#[test]
fn flat_payloads_become_commands_and_unknown_fields_are_refused() {
    let payload = TaskPayload::parse(json!({
        "projectId": "demo", "taskId": "t1", "lane": "done", "title": "x", "boardVersion": 3
    }))
    .unwrap();
    let edit = payload.to_edit("r1".into()).unwrap();
    assert_eq!(edit.board_id, "demo");
    assert_eq!(edit.id, "r1");
    assert_eq!(edit.data.id, "t1");
    assert_eq!(edit.data.changes.lane.as_deref(), Some("done"));
    assert_eq!(edit.data.changes.fields.title.as_deref(), Some("x"));
    let err = TaskPayload::parse(json!({"projectId": "demo", "colour": "red"})).unwrap_err();
    assert!(err.0.contains("colour"), "{}", err.0);
    let err = TaskPayload::parse(json!({"projectId": "demo", "title": 5})).unwrap_err();
    assert!(err.0.starts_with("title"), "{}", err.0);
    let err = TaskPayload::parse(json!({"title": "x"}))
        .unwrap()
        .to_create("r".into())
        .unwrap_err();
    assert!(err.0.contains("projectId"), "{}", err.0);
}

#[test]
fn join_takes_an_id_or_an_object_with_a_version() {
    let join: JoinPayload = serde_json::from_value(json!("demo")).unwrap();
    assert_eq!((join.room(), join.since_version()), ("demo", None));
    let join: JoinPayload =
        serde_json::from_value(json!({"projectId": "demo", "sinceVersion": 4})).unwrap();
    assert_eq!((join.room(), join.since_version()), ("demo", Some(4)));
}

#[test]
fn sprint_events_are_flat_and_a_payload_plans_a_task_in_a_sprint() {
    use crate::board_frames::{SprintData, SprintState};
    let sprint = |state| SprintData {
        id: "s1".into(),
        name: "Sprint 1".into(),
        goal: String::new(),
        state,
        starts_at: 10,
        ends_at: 20,
        version: 2,
        created_at: 1,
        updated_at: 2,
    };
    let mut epics = Epics::default();
    let frames = [
        ServerFrame::SprintCreated(change(1, sprint(SprintState::Planned))),
        ServerFrame::SprintStarted(change(2, sprint(SprintState::Active))),
        ServerFrame::SprintCompleted(change(3, sprint(SprintState::Completed))),
    ];
    let names: Vec<_> = frames
        .iter()
        .flat_map(|f| events_from_frame(f, "demo", &mut epics))
        .map(|e| {
            (
                e.name,
                e.payload["state"].clone(),
                e.payload["boardVersion"].clone(),
            )
        })
        .collect();
    assert_eq!(
        names,
        [
            (outgoing::SPRINT_CREATED, json!("planned"), json!(1)),
            (outgoing::SPRINT_STARTED, json!("active"), json!(2)),
            (outgoing::SPRINT_COMPLETED, json!("completed"), json!(3)),
        ]
    );
    assert_eq!(outgoing::SPRINT_STARTED, "sprint:started");

    let payload =
        TaskPayload::parse(json!({"projectId": "demo", "taskId": "t1", "sprintId": null})).unwrap();
    let edit = payload.to_edit("r1".into()).unwrap();
    assert_eq!(edit.data.changes.fields.sprint_id, Some(None));
    // A new task may be born in a sprint and an epic, with a status.
    let create = TaskPayload::parse(json!({"projectId": "demo", "title": "x", "sprintId": "s1",
                                           "parentId": "e1", "status": "working"}))
    .and_then(|p| p.to_create("r2".into()))
    .unwrap();
    let request = create.to_request();
    assert_eq!(
        (
            request.sprint_id.as_str(),
            request.parent_id.as_str(),
            request.status.as_str()
        ),
        ("s1", "e1", "working")
    );
    let create = TaskPayload::parse(json!({"projectId": "demo", "title": "x", "sprintId": null}))
        .and_then(|p| p.to_create("r3".into()))
        .unwrap();
    assert_eq!(create.to_request().sprint_id, "", "null is the backlog");
}

#[test]
fn project_events_and_a_status_change_reach_seed_000s_names() {
    use crate::board_frames::{ProjectData, TaskChanges, TaskUpdatedData};
    let project = ProjectData {
        id: "p1".into(),
        slug: "launch".into(),
        name: "Launch".into(),
        description: String::new(),
        version: 2,
        board_ids: vec!["b1".into()],
        created_at: 1,
        updated_at: 2,
        changed: vec!["boardIds".into()],
    };
    let status = TaskUpdatedData {
        id: "t1".into(),
        changes: TaskChanges {
            status: Some("blocked".into()),
            ..Default::default()
        },
        task_version: 4,
    };
    let mut epics = Epics::default();
    let frames = [
        ServerFrame::ProjectCreated(change(1, project.clone())),
        ServerFrame::ProjectUpdated(change(2, project)),
        ServerFrame::TaskUpdated(change(3, status)),
    ];
    let events: Vec<_> = frames
        .iter()
        .flat_map(|f| events_from_frame(f, "demo", &mut epics))
        .map(|e| (e.name, e.payload["boardVersion"].clone()))
        .collect();
    assert_eq!(
        events,
        [
            (outgoing::PROJECT_CREATED, json!(1)),
            (outgoing::PROJECT_UPDATED, json!(2)),
            (outgoing::TASK_UPDATED, json!(3)),
            (outgoing::TASK_STATUS_CHANGED, json!(3)),
        ]
    );
}
