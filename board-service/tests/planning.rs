//! The planning model through gRPC: projects, epics and sprints, each
//! change an event on the board streams it concerns.

mod common;

use common::*;
use protocol::v1::{
    CreateBoardRequest, CreateProjectRequest, CreateTaskRequest, DeleteTaskRequest,
    GetBoardRequest, GetProjectRequest, ListProjectsRequest, MoveTaskRequest, Progress,
    SetBoardProjectRequest, Task, TaskKind, UpdateProjectRequest, UpdateTaskRequest,
};
use tonic::Code;

#[tokio::test]
async fn projects_group_boards_and_announce_changes_on_each_boards_stream() {
    let (_db, _service, mut client) = start().await;
    let a = create_board(&mut client, "Web").await;
    let b = create_board(&mut client, "API").await;
    let c = create_board(&mut client, "Ops").await;

    let project = client
        .create_project(CreateProjectRequest {
            name: "Launch Q3".into(),
            description: "Everything for the launch".into(),
            board_ids: vec![a.slug.clone(), b.id.clone()],
            ..Default::default()
        })
        .await
        .expect("create project")
        .into_inner();
    assert_eq!(project.slug, "launch-q3");
    assert_eq!(project.board_ids, [a.id.clone(), b.id.clone()]);

    let taken = client
        .create_project(CreateProjectRequest {
            name: "Other".into(),
            board_ids: vec![a.id.clone()],
            ..Default::default()
        })
        .await
        .expect_err("a board belongs to at most one project");
    assert_eq!(taken.code(), Code::FailedPrecondition);
    assert!(
        taken
            .message()
            .starts_with("board_ids: board \"web\" already belongs"),
        "{}",
        taken.message()
    );
    let ghost = client
        .create_project(CreateProjectRequest {
            name: "Ghost".into(),
            board_ids: vec!["nowhere".into()],
            ..Default::default()
        })
        .await
        .expect_err("unknown board");
    assert_eq!(ghost.code(), Code::NotFound);

    let rename = UpdateProjectRequest {
        project_id: project.slug.clone(),
        name: Some("Launch".into()),
        expected_version: Some(1),
        request_id: "rename-1".into(),
        ..Default::default()
    };
    let renamed = client
        .update_project(rename.clone())
        .await
        .expect("rename")
        .into_inner();
    assert_eq!((renamed.name.as_str(), renamed.version), ("Launch", 2));
    let again = client
        .update_project(rename)
        .await
        .expect("retried rename replays")
        .into_inner();
    assert_eq!(again, renamed);
    let stale = client
        .update_project(UpdateProjectRequest {
            project_id: project.id.clone(),
            name: Some("Late".into()),
            expected_version: Some(1),
            ..Default::default()
        })
        .await
        .expect_err("stale project version");
    assert_eq!(stale.code(), Code::Aborted);
    let empty_name = client
        .update_project(UpdateProjectRequest {
            project_id: project.id.clone(),
            name: Some("  ".into()),
            ..Default::default()
        })
        .await
        .expect_err("empty name");
    assert_eq!(
        (empty_name.code(), empty_name.message()),
        (Code::InvalidArgument, "name must be 1–200 characters")
    );

    // c joins, then a leaves.
    let joined = client
        .set_board_project(SetBoardProjectRequest {
            board_id: c.slug.clone(),
            project_id: project.slug.clone(),
            ..Default::default()
        })
        .await
        .expect("c joins")
        .into_inner();
    assert_eq!(joined.board_ids, [a.id.clone(), b.id.clone(), c.id.clone()]);
    let left = client
        .set_board_project(SetBoardProjectRequest {
            board_id: a.id.clone(),
            project_id: String::new(),
            ..Default::default()
        })
        .await
        .expect("a leaves")
        .into_inner();
    assert_eq!(left.board_ids, [b.id.clone(), c.id.clone()]);
    assert_eq!(left.version, 4);

    // A board created in the project joins it at once.
    let d = client
        .create_board(CreateBoardRequest {
            name: "Docs".into(),
            project_id: Some(project.id.clone()),
            ..Default::default()
        })
        .await
        .expect("create board in project")
        .into_inner();
    assert_eq!((d.project_id.as_str(), d.version), (project.id.as_str(), 1));
    let no_project = client
        .create_board(CreateBoardRequest {
            name: "Stray".into(),
            project_id: Some("nope".into()),
            ..Default::default()
        })
        .await
        .expect_err("unknown project");
    assert_eq!(no_project.code(), Code::NotFound);

    let view = client
        .get_project(GetProjectRequest {
            project_id: project.slug.clone(),
        })
        .await
        .expect("get project")
        .into_inner();
    let slugs: Vec<_> = view.boards.iter().map(|b| b.slug.as_str()).collect();
    assert_eq!(slugs, ["api", "ops", "docs"]);
    assert_eq!(view.project.unwrap().version, 5);
    let listed = client
        .list_projects(ListProjectsRequest {})
        .await
        .expect("list")
        .into_inner();
    assert_eq!(listed.projects.len(), 1);
    let snapshot = client
        .get_board(GetBoardRequest {
            board_id: b.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(snapshot.board.unwrap().project_id, project.id);

    // Each board's stream holds exactly the project changes that concern it, in order.
    let kinds = |events: &[protocol::v1::BoardEvent]| {
        events
            .iter()
            .map(|e| {
                let p = e
                    .project
                    .as_ref()
                    .expect("project events carry the project");
                (e.r#type.clone(), e.version, p.version, p.board_ids.len())
            })
            .collect::<Vec<_>>()
    };
    let mut on_a = watch(&mut client, &a.id, 0).await;
    let events_a = next_events(&mut on_a, 4).await;
    assert_eq!(
        kinds(&events_a),
        [
            ("project.created".into(), 1, 1, 2),
            ("project.updated".into(), 2, 2, 2),
            ("project.updated".into(), 3, 3, 3),
            // It left: the project as it is without it, and nothing after.
            ("project.updated".into(), 4, 4, 2),
        ]
    );
    assert_quiet(&mut on_a).await;
    assert_eq!(events_a[1].changed_fields, ["name"]);
    let mut on_b = watch(&mut client, &b.id, 0).await;
    let events_b = next_events(&mut on_b, 5).await;
    assert_eq!(
        events_b.iter().map(|e| e.version).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5]
    );
    assert_eq!(events_b[3].changed_fields, ["board_ids"]);
    let mut on_c = watch(&mut client, &c.id, 0).await;
    let events_c = next_events(&mut on_c, 3).await;
    assert_eq!(
        kinds(&events_c),
        [
            ("project.updated".into(), 1, 3, 3),
            ("project.updated".into(), 2, 4, 2),
            ("project.updated".into(), 3, 5, 3),
        ]
    );
}

async fn add(client: &mut Client, board: &str, title: &str, kind: TaskKind, parent: &str) -> Task {
    client
        .create_task(CreateTaskRequest {
            board_id: board.into(),
            lane_id: "todo".into(),
            title: title.into(),
            kind: kind as i32,
            parent_id: parent.into(),
            ..Default::default()
        })
        .await
        .unwrap_or_else(|e| panic!("create {title}: {e}"))
        .into_inner()
}

fn progress(done: u32, total: u32) -> Option<Progress> {
    Some(Progress { done, total })
}

#[tokio::test]
async fn an_epics_progress_follows_its_tasks_and_travels_as_its_update() {
    let (_db, _service, mut client) = start().await;
    let board = create_board(&mut client, "Epics").await;
    let b = board.id.as_str();
    let epic = add(&mut client, b, "Checkout", TaskKind::Epic, "").await;
    assert_eq!(epic.progress, progress(0, 0));
    let pay = add(&mut client, b, "Pay", TaskKind::Story, &epic.id).await;
    assert_eq!(
        (pay.parent_id.as_str(), pay.progress),
        (epic.id.as_str(), None)
    );
    let ship = add(&mut client, b, "Ship", TaskKind::Task, &epic.id).await;
    client
        .move_task(MoveTaskRequest {
            task_id: pay.id.clone(),
            to_lane_id: "done".into(),
            ..Default::default()
        })
        .await
        .expect("move to done");
    // Leaves the epic: the total drops.
    client
        .update_task(UpdateTaskRequest {
            task_id: ship.id.clone(),
            parent_id: Some(String::new()),
            ..Default::default()
        })
        .await
        .expect("leave the epic");
    // A title change does not move progress: no epic event.
    client
        .update_task(UpdateTaskRequest {
            task_id: pay.id.clone(),
            title: Some("Pay by card".into()),
            ..Default::default()
        })
        .await
        .expect("rename");
    client
        .delete_task(DeleteTaskRequest {
            task_id: pay.id.clone(),
            ..Default::default()
        })
        .await
        .expect("delete the done task");

    let mut stream = watch(&mut client, b, 0).await;
    let events = next_events(&mut stream, 12).await;
    assert_quiet(&mut stream).await;
    let seen: Vec<(u64, &str, &str, Option<Progress>)> = events
        .iter()
        .map(|e| {
            let t = e.task.as_ref().expect("task events");
            (e.version, e.r#type.as_str(), t.title.as_str(), t.progress)
        })
        .collect();
    assert_eq!(
        seen,
        [
            (1, "task.created", "Checkout", progress(0, 0)),
            (2, "task.created", "Pay", None),
            (3, "task.updated", "Checkout", progress(0, 1)),
            (4, "task.created", "Ship", None),
            (5, "task.updated", "Checkout", progress(0, 2)),
            (6, "task.moved", "Pay", None),
            (7, "task.updated", "Checkout", progress(1, 2)),
            (8, "task.updated", "Ship", None),
            (9, "task.updated", "Checkout", progress(1, 1)),
            (10, "task.updated", "Pay by card", None),
            (11, "task.deleted", "Pay by card", None),
            (12, "task.updated", "Checkout", progress(0, 0)),
        ]
    );
    assert_eq!(events[2].changed_fields, ["progress"]);
    assert_eq!(events[7].changed_fields, ["parent_id"]);
}

#[tokio::test]
async fn parents_must_be_epics_of_the_same_board_and_epics_have_none() {
    let (_db, _service, mut client) = start().await;
    let board = create_board(&mut client, "Rules").await;
    let other = create_board(&mut client, "Elsewhere").await;
    let b = board.id.as_str();
    let epic = add(&mut client, b, "Epic", TaskKind::Epic, "").await;
    let story = add(&mut client, b, "Story", TaskKind::Story, &epic.id).await;
    let foreign = add(&mut client, &other.id, "Foreign epic", TaskKind::Epic, "").await;

    let attempt = |title: &str, kind: TaskKind, parent: &str| CreateTaskRequest {
        board_id: b.into(),
        lane_id: "todo".into(),
        title: title.into(),
        kind: kind as i32,
        parent_id: parent.into(),
        ..Default::default()
    };
    let cases = [
        (
            attempt("Nested", TaskKind::Task, &story.id),
            Code::FailedPrecondition,
            format!("parent_id: task {} is a story, not an epic", story.id),
        ),
        (
            attempt("Epic in epic", TaskKind::Epic, &epic.id),
            Code::InvalidArgument,
            "parent_id: an epic cannot have a parent (epics are one level deep)".into(),
        ),
        (
            attempt("Cross-board", TaskKind::Task, &foreign.id),
            Code::FailedPrecondition,
            format!(
                "parent_id: task {} is on another board; an epic's tasks share its board",
                foreign.id
            ),
        ),
        (
            attempt("Bad id", TaskKind::Task, "nope"),
            Code::InvalidArgument,
            "parent_id must be a UUID".into(),
        ),
    ];
    for (request, code, message) in cases {
        let status = client.create_task(request).await.expect_err("refused");
        assert_eq!((status.code(), status.message()), (code, message.as_str()));
    }

    let update = |task: &Task, kind: Option<TaskKind>, parent: Option<&str>| UpdateTaskRequest {
        task_id: task.id.clone(),
        kind: kind.map(|k| k as i32),
        parent_id: parent.map(str::to_owned),
        ..Default::default()
    };
    let refusals = [
        // A cycle: the epic as its own parent.
        (
            update(&epic, None, Some(&epic.id)),
            Code::InvalidArgument,
            "parent_id: a task cannot be its own parent".to_string(),
        ),
        // A task of an epic turned into an epic itself.
        (
            update(&story, Some(TaskKind::Epic), None),
            Code::InvalidArgument,
            "parent_id: an epic cannot have a parent (epics are one level deep)".into(),
        ),
        // An epic with tasks turned into a task.
        (
            update(&epic, Some(TaskKind::Task), None),
            Code::FailedPrecondition,
            "kind: the epic still has 1 tasks; clear their parent_id first".into(),
        ),
        (
            update(&story, None, Some(&foreign.id)),
            Code::FailedPrecondition,
            format!(
                "parent_id: task {} is on another board; an epic's tasks share its board",
                foreign.id
            ),
        ),
    ];
    for (request, code, message) in refusals {
        let status = client.update_task(request).await.expect_err("refused");
        assert_eq!((status.code(), status.message()), (code, message.as_str()));
    }

    // Deleting the epic keeps its task, without a parent, and says so.
    let before = client
        .get_board(GetBoardRequest { board_id: b.into() })
        .await
        .unwrap()
        .into_inner()
        .version;
    assert_eq!(
        before, 3,
        "epic, story, and the epic's progress; refusals wrote nothing"
    );
    let deleted = client
        .delete_task(DeleteTaskRequest {
            task_id: epic.id.clone(),
            ..Default::default()
        })
        .await
        .expect("delete epic")
        .into_inner();
    assert_eq!(deleted.board_version, 5);
    let mut stream = watch(&mut client, b, before).await;
    let events = next_events(&mut stream, 2).await;
    assert_eq!(
        (
            events[0].r#type.as_str(),
            events[0].changed_fields.as_slice()
        ),
        ("task.updated", &["parent_id".to_string()][..])
    );
    assert_eq!(events[0].task.as_ref().unwrap().parent_id, "");
    assert_eq!(events[1].r#type, "task.deleted");
    assert_quiet(&mut stream).await;
}
