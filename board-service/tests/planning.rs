//! The planning model through gRPC: projects, epics and sprints, each
//! change an event on the board streams it concerns.

mod common;

use common::*;
use protocol::v1::{
    CompleteSprintRequest, CompleteSprintResponse, CreateBoardRequest, CreateProjectRequest,
    CreateSprintRequest, CreateTaskRequest, DeleteTaskRequest, GetBoardRequest, GetProjectRequest,
    ListProjectsRequest, ListSprintsRequest, MoveTaskRequest, Progress, SetBoardProjectRequest,
    Sprint, SprintState, StartSprintRequest, Task, TaskKind, UpdateProjectRequest,
    UpdateTaskRequest,
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

/// A sprint of two weeks starting `week` weeks after 2026-12-07.
fn sprint_request(board: &str, name: &str, week: i64) -> CreateSprintRequest {
    let start = 1_796_601_600 + week * 7 * 86_400;
    CreateSprintRequest {
        board_id: board.into(),
        name: name.into(),
        goal: format!("{name}: ship it"),
        starts_at: Some(prost_types::Timestamp {
            seconds: start,
            nanos: 0,
        }),
        ends_at: Some(prost_types::Timestamp {
            seconds: start + 14 * 86_400,
            nanos: 0,
        }),
        ..Default::default()
    }
}

async fn new_sprint(client: &mut Client, board: &str, name: &str, week: i64) -> Sprint {
    client
        .create_sprint(sprint_request(board, name, week))
        .await
        .expect("create sprint")
        .into_inner()
}

async fn start_sprint(client: &mut Client, sprint: &Sprint) -> Result<Sprint, tonic::Status> {
    client
        .start_sprint(StartSprintRequest {
            sprint_id: sprint.id.clone(),
            ..Default::default()
        })
        .await
        .map(|r| r.into_inner())
}

async fn plan(client: &mut Client, task: &Task, sprint: &str) -> Result<Task, tonic::Status> {
    client
        .update_task(UpdateTaskRequest {
            task_id: task.id.clone(),
            sprint_id: Some(sprint.into()),
            ..Default::default()
        })
        .await
        .map(|r| r.into_inner())
}

async fn complete(
    client: &mut Client,
    sprint: &Sprint,
    move_to: &str,
    request_id: &str,
) -> Result<CompleteSprintResponse, tonic::Status> {
    client
        .complete_sprint(CompleteSprintRequest {
            sprint_id: sprint.id.clone(),
            move_to_sprint_id: move_to.into(),
            request_id: request_id.into(),
            ..Default::default()
        })
        .await
        .map(|r| r.into_inner())
}

fn refused(result: Result<impl std::fmt::Debug, tonic::Status>, code: Code, message: &str) {
    let status = result.expect_err(message);
    assert_eq!(
        (status.code(), status.message()),
        (code, message),
        "expected {code:?} {message:?}"
    );
}

#[tokio::test]
async fn a_sprint_starts_alone_and_its_unfinished_tasks_move_on_when_it_completes() {
    let (db, _service, mut client) = start().await;
    let board = create_board(&mut client, "Sprints").await;
    let other = create_board(&mut client, "Elsewhere").await;
    let b = board.id.as_str();
    let one = new_sprint(&mut client, b, "Sprint 1", 0).await;
    let two = new_sprint(&mut client, b, "Sprint 2", 2).await;
    let three = new_sprint(&mut client, &board.slug, "Sprint 3", 4).await;
    let foreign = new_sprint(&mut client, &other.id, "Their sprint", 0).await;
    assert_eq!(
        (one.state(), one.board_id.as_str(), one.goal.as_str()),
        (SprintState::Planned, b, "Sprint 1: ship it")
    );

    let mut backwards = sprint_request(b, "Backwards", 0);
    std::mem::swap(&mut backwards.starts_at, &mut backwards.ends_at);
    refused(
        client.create_sprint(backwards).await,
        Code::InvalidArgument,
        "ends_at must be after starts_at",
    );
    let mut open_ended = sprint_request(b, "Open", 0);
    open_ended.ends_at = None;
    refused(
        client.create_sprint(open_ended).await,
        Code::InvalidArgument,
        "ends_at is required",
    );
    let mut ancient = sprint_request(b, "Ancient", 0);
    ancient.starts_at = Some(prost_types::Timestamp {
        seconds: -62_135_596_800,
        nanos: 0,
    });
    refused(
        client.create_sprint(ancient).await,
        Code::InvalidArgument,
        "starts_at must be a time between 1970 and 9999",
    );
    let mut noisy = sprint_request(b, "Noisy", 0);
    noisy.goal = "bell\u{7}".into();
    refused(
        client.create_sprint(noisy).await,
        Code::InvalidArgument,
        "goal must not contain control characters (found U+0007)",
    );
    let mut rambling = sprint_request(b, "Rambling", 0);
    rambling.goal = "x".repeat(2_001);
    refused(
        client.create_sprint(rambling).await,
        Code::InvalidArgument,
        "goal must be at most 2000 characters",
    );
    refused(
        client.create_sprint(sprint_request(b, "", 0)).await,
        Code::InvalidArgument,
        "name must be 1–200 characters",
    );

    let started = start_sprint(&mut client, &one).await.expect("start one");
    assert_eq!(
        (started.state(), started.version),
        (SprintState::Active, one.version + 1)
    );
    refused(
        start_sprint(&mut client, &two).await,
        Code::FailedPrecondition,
        &format!(
            "sprint_id: sprint {} (\"Sprint 1\") is already active on this board; \
             complete it first",
            one.id
        ),
    );
    refused(
        start_sprint(&mut client, &one).await,
        Code::FailedPrecondition,
        &format!(
            "sprint_id: sprint {} is active; only a planned sprint can start",
            one.id
        ),
    );
    // The database holds the rule too, should a writer skip the lock.
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(db.url())
        .await
        .expect("connect");
    let second_active = sqlx::query("UPDATE sprints SET state = 2 WHERE id = $1::uuid")
        .bind(&two.id)
        .execute(&mut conn)
        .await
        .expect_err("a second active sprint on one board");
    assert_eq!(
        second_active
            .as_database_error()
            .and_then(|e| e.constraint()),
        Some("sprints_one_active_per_board")
    );
    // Another board's sprint is its own business: one active there too.
    start_sprint(&mut client, &foreign)
        .await
        .expect("each board has its own active sprint");

    let todo = create_task(&mut client, b, "todo", "Todo").await;
    let doing = create_task(&mut client, b, "in_progress", "Doing").await;
    let finished = create_task(&mut client, b, "done", "Finished").await;
    let loose = create_task(&mut client, b, "todo", "Loose").await;
    assert_eq!(todo.sprint_id, "");
    for task in [&todo, &doing, &finished] {
        let planned = plan(&mut client, task, &one.id).await.expect("plan");
        assert_eq!(planned.sprint_id, one.id);
    }
    refused(
        plan(&mut client, &loose, &foreign.id).await,
        Code::FailedPrecondition,
        &format!(
            "sprint_id: sprint {} is on another board; a task's sprint shares its board",
            foreign.id
        ),
    );
    refused(
        plan(&mut client, &loose, "sprint-1").await,
        Code::InvalidArgument,
        "sprint_id must be a UUID",
    );
    let ghost = uuid::Uuid::now_v7();
    refused(
        plan(&mut client, &loose, &ghost.to_string()).await,
        Code::FailedPrecondition,
        &format!("sprint_id: sprint {ghost} does not exist"),
    );
    refused(
        complete(&mut client, &two, "", "").await,
        Code::FailedPrecondition,
        &format!(
            "sprint_id: sprint {} is planned; only the active sprint can complete",
            two.id
        ),
    );
    refused(
        complete(&mut client, &one, &foreign.id, "").await,
        Code::FailedPrecondition,
        &format!(
            "move_to_sprint_id: sprint {} is on another board",
            foreign.id
        ),
    );
    refused(
        complete(&mut client, &one, &one.id, "").await,
        Code::InvalidArgument,
        "move_to_sprint_id: a sprint cannot take its own unfinished tasks",
    );

    // First case: the unfinished tasks go back to the backlog.
    let done_one = complete(&mut client, &one, "", "complete-1")
        .await
        .expect("complete one");
    let sprint = done_one.sprint.as_ref().expect("sprint");
    assert_eq!(sprint.state(), SprintState::Completed);
    let moved: Vec<(&str, &str)> = done_one
        .moved_tasks
        .iter()
        .map(|t| (t.title.as_str(), t.sprint_id.as_str()))
        .collect();
    assert_eq!(moved, [("Todo", ""), ("Doing", "")]);
    assert_eq!(done_one.board_version, 14);
    // The same request again is replayed, not applied twice.
    let again = complete(&mut client, &one, "", "complete-1")
        .await
        .expect("replay");
    assert_eq!(again, done_one);
    refused(
        complete(&mut client, &one, "", "").await,
        Code::FailedPrecondition,
        &format!(
            "sprint_id: sprint {} is completed; only the active sprint can complete",
            one.id
        ),
    );
    refused(
        plan(&mut client, &loose, &one.id).await,
        Code::FailedPrecondition,
        &format!(
            "sprint_id: sprint {} is completed; plan the task in another sprint",
            one.id
        ),
    );

    // Second case: into a planned sprint named in the request.
    start_sprint(&mut client, &two)
        .await
        .expect("start two once one is completed");
    plan(&mut client, &todo, &two.id).await.expect("plan todo");
    plan(&mut client, &doing, &two.id)
        .await
        .expect("plan doing");
    refused(
        complete(&mut client, &two, &one.id, "").await,
        Code::FailedPrecondition,
        &format!(
            "move_to_sprint_id: sprint {} is completed, not planned",
            one.id
        ),
    );
    let done_two = complete(&mut client, &two, &three.id, "complete-2")
        .await
        .expect("complete two");
    let moved: Vec<(&str, &str)> = done_two
        .moved_tasks
        .iter()
        .map(|t| (t.title.as_str(), t.sprint_id.as_str()))
        .collect();
    assert_eq!(
        moved,
        [("Todo", three.id.as_str()), ("Doing", three.id.as_str())]
    );
    assert_eq!(done_two.board_version, 20);

    let listed = client
        .list_sprints(ListSprintsRequest {
            board_id: board.slug.clone(),
        })
        .await
        .expect("list")
        .into_inner()
        .sprints;
    let listed: Vec<(&str, SprintState)> = listed
        .iter()
        .map(|s| (s.name.as_str(), s.state()))
        .collect();
    assert_eq!(
        listed,
        [
            ("Sprint 1", SprintState::Completed),
            ("Sprint 2", SprintState::Completed),
            ("Sprint 3", SprintState::Planned),
        ]
    );

    let mut stream = watch(&mut client, b, 0).await;
    let events = next_events(&mut stream, 20).await;
    assert_quiet(&mut stream).await;
    let seen: Vec<(u64, &str, String)> = events
        .iter()
        .map(|e| {
            let what = match (&e.sprint, &e.task) {
                (Some(s), None) => format!("{} {:?}", s.name, s.state()),
                (None, Some(t)) => format!("{} in {:?}", t.title, t.sprint_id),
                other => panic!("{}: {other:?}", e.r#type),
            };
            (e.version, e.r#type.as_str(), what)
        })
        .collect();
    let (s1, s2, s3) = (&one.id, &two.id, &three.id);
    let expected: Vec<(u64, &str, String)> = vec![
        (1, "sprint.created", "Sprint 1 Planned".into()),
        (2, "sprint.created", "Sprint 2 Planned".into()),
        (3, "sprint.created", "Sprint 3 Planned".into()),
        (4, "sprint.started", "Sprint 1 Active".into()),
        (5, "task.created", "Todo in \"\"".into()),
        (6, "task.created", "Doing in \"\"".into()),
        (7, "task.created", "Finished in \"\"".into()),
        (8, "task.created", "Loose in \"\"".into()),
        (9, "task.updated", format!("Todo in {s1:?}")),
        (10, "task.updated", format!("Doing in {s1:?}")),
        (11, "task.updated", format!("Finished in {s1:?}")),
        (12, "sprint.completed", "Sprint 1 Completed".into()),
        (13, "task.updated", "Todo in \"\"".into()),
        (14, "task.updated", "Doing in \"\"".into()),
        (15, "sprint.started", "Sprint 2 Active".into()),
        (16, "task.updated", format!("Todo in {s2:?}")),
        (17, "task.updated", format!("Doing in {s2:?}")),
        (18, "sprint.completed", "Sprint 2 Completed".into()),
        (19, "task.updated", format!("Todo in {s3:?}")),
        (20, "task.updated", format!("Doing in {s3:?}")),
    ];
    assert_eq!(seen, expected);
    for i in [8, 12, 13, 18, 19] {
        assert_eq!(events[i].changed_fields, ["sprint_id"], "event {}", i + 1);
    }
    assert_eq!(events[11].request_id, "complete-1");
    assert_eq!(events[12].request_id, "complete-1");
    // The finished task stays in the sprint it was done in.
    let snapshot = client
        .get_board(GetBoardRequest { board_id: b.into() })
        .await
        .expect("snapshot")
        .into_inner();
    let finished_now = snapshot
        .tasks
        .iter()
        .find(|t| t.id == finished.id)
        .expect("finished task");
    assert_eq!(finished_now.sprint_id, one.id);
}

#[tokio::test]
async fn a_task_is_created_straight_into_a_sprint_and_an_epic_under_update_tasks_rules() {
    let (_db, _service, mut client) = start().await;
    let board = create_board(&mut client, "Born planned").await;
    let other = create_board(&mut client, "Elsewhere").await;
    let b = board.id.as_str();
    let epic = add(&mut client, b, "Epic", TaskKind::Epic, "").await;
    let planned = new_sprint(&mut client, b, "Next", 2).await;
    let active = new_sprint(&mut client, b, "Now", 0).await;
    start_sprint(&mut client, &active).await.expect("start now");
    let finished = new_sprint(&mut client, b, "Done", 4).await;
    let foreign = new_sprint(&mut client, &other.id, "Theirs", 0).await;
    let before = client
        .get_board(GetBoardRequest { board_id: b.into() })
        .await
        .unwrap()
        .into_inner()
        .version;

    let story = client
        .create_task(CreateTaskRequest {
            board_id: b.into(),
            lane_id: "todo".into(),
            title: "Login".into(),
            kind: TaskKind::Story as i32,
            status: "working".into(),
            parent_id: epic.id.clone(),
            sprint_id: planned.id.clone(),
            ..Default::default()
        })
        .await
        .expect("create in sprint and epic")
        .into_inner();
    assert_eq!(
        (
            story.sprint_id.as_str(),
            story.parent_id.as_str(),
            story.status.as_str()
        ),
        (planned.id.as_str(), epic.id.as_str(), "working")
    );
    let mut stream = watch(&mut client, b, before).await;
    let events = next_events(&mut stream, 2).await;
    assert_eq!(events[0].r#type, "task.created");
    assert_eq!(events[0].task.as_ref().unwrap().sprint_id, planned.id);
    assert_eq!(
        (
            events[1].r#type.as_str(),
            events[1].task.as_ref().unwrap().progress
        ),
        ("task.updated", progress(0, 1))
    );
    let in_active = add_in_sprint(&mut client, b, "Now task", &active.id).await;
    assert_eq!(in_active.expect("the active sprint").sprint_id, active.id);

    // The completed sprint: complete "Now" first (it holds one task).
    complete(&mut client, &active, "", "complete-now")
        .await
        .expect("complete now");
    start_sprint(&mut client, &finished)
        .await
        .expect("start done");
    complete(&mut client, &finished, "", "complete-done")
        .await
        .expect("complete done");
    let version = client
        .get_board(GetBoardRequest { board_id: b.into() })
        .await
        .unwrap()
        .into_inner()
        .version;
    let cases = [
        (
            foreign.id.clone(),
            Code::FailedPrecondition,
            format!(
                "sprint_id: sprint {} is on another board; a task's sprint shares its board",
                foreign.id
            ),
        ),
        (
            finished.id.clone(),
            Code::FailedPrecondition,
            format!(
                "sprint_id: sprint {} is completed; plan the task in another sprint",
                finished.id
            ),
        ),
        (
            epic.id.clone(),
            Code::FailedPrecondition,
            format!("sprint_id: sprint {} does not exist", epic.id),
        ),
        (
            "nope".into(),
            Code::InvalidArgument,
            "sprint_id must be a UUID".into(),
        ),
    ];
    for (sprint, code, message) in cases {
        refused(
            add_in_sprint(&mut client, b, "Refused", &sprint).await,
            code,
            &message,
        );
    }
    // An epic in an epic is refused on create as on update.
    let status = client
        .create_task(CreateTaskRequest {
            board_id: b.into(),
            lane_id: "todo".into(),
            title: "Epic in epic".into(),
            kind: TaskKind::Epic as i32,
            parent_id: epic.id.clone(),
            sprint_id: planned.id.clone(),
            ..Default::default()
        })
        .await
        .expect_err("an epic with a parent");
    assert_eq!(status.code(), Code::InvalidArgument);
    let after = client
        .get_board(GetBoardRequest { board_id: b.into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(after.version, version, "refusals wrote nothing");
    assert!(after.tasks.iter().all(|t| t.title != "Refused"));
}

async fn add_in_sprint(
    client: &mut Client,
    board: &str,
    title: &str,
    sprint: &str,
) -> Result<Task, tonic::Status> {
    client
        .create_task(CreateTaskRequest {
            board_id: board.into(),
            lane_id: "todo".into(),
            title: title.into(),
            sprint_id: sprint.into(),
            ..Default::default()
        })
        .await
        .map(|r| r.into_inner())
}
