//! The planning model through gRPC: projects, epics and sprints, each
//! change an event on the board streams it concerns.

mod common;

use common::*;
use protocol::v1::{
    CreateBoardRequest, CreateProjectRequest, GetBoardRequest, GetProjectRequest,
    ListProjectsRequest, SetBoardProjectRequest, UpdateProjectRequest,
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
