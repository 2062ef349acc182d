//! Boards and lanes through the real gRPC API.

mod common;

use common::*;
use protocol::v1::{
    CreateBoardRequest, CreateLaneRequest, DeleteLaneRequest, GetBoardRequest, ListBoardsRequest,
    UpdateLaneRequest,
};
use tonic::Code;

#[tokio::test]
async fn new_board_gets_default_lanes_and_is_found_by_id_or_slug() {
    let (_db, _service, mut client) = start().await;
    let board = client
        .create_board(CreateBoardRequest {
            name: "Default".into(),
            slug: Some("default".into()),
            ..Default::default()
        })
        .await
        .expect("create")
        .into_inner();
    let keys: Vec<_> = board.lanes.iter().map(|l| l.key.as_str()).collect();
    assert_eq!(keys, ["backlog", "todo", "in_progress", "done", "recovery"]);
    assert_eq!(board.lanes[2].name, "In progress");
    assert_eq!(board.version, 0);

    for reference in [board.id.clone(), "default".to_string()] {
        let snapshot = client
            .get_board(GetBoardRequest {
                board_id: reference,
            })
            .await
            .expect("get")
            .into_inner();
        assert_eq!(snapshot.board.expect("board").id, board.id);
    }
}

#[tokio::test]
async fn board_slugs_are_derived_unique_and_validated() {
    let (_db, _service, mut client) = start().await;
    let first = create_board(&mut client, "Q3 Launch!").await;
    let second = create_board(&mut client, "Q3 launch").await;
    assert_eq!(first.slug, "q3-launch");
    assert_eq!(second.slug, "q3-launch-2");

    let taken = client
        .create_board(CreateBoardRequest {
            name: "x".into(),
            slug: Some("q3-launch".into()),
            ..Default::default()
        })
        .await
        .expect_err("slug taken");
    assert_eq!(taken.code(), Code::AlreadyExists);

    let bad = client
        .create_board(CreateBoardRequest {
            name: "x".into(),
            slug: Some("Has Spaces".into()),
            ..Default::default()
        })
        .await
        .expect_err("bad slug");
    assert_eq!(bad.code(), Code::InvalidArgument);
    assert!(bad.message().contains("slug"), "{}", bad.message());

    let custom = client
        .create_board(CreateBoardRequest {
            name: "Ops".into(),
            lane_keys: vec!["open".into(), "closed".into()],
            ..Default::default()
        })
        .await
        .expect("custom lanes")
        .into_inner();
    assert_eq!(custom.lanes.len(), 2);

    let boards = client
        .list_boards(ListBoardsRequest {})
        .await
        .expect("list")
        .into_inner()
        .boards;
    let names: Vec<_> = boards.iter().map(|b| b.name.as_str()).collect();
    assert_eq!(names, ["Q3 Launch!", "Q3 launch", "Ops"]);
    assert_eq!(boards[2].lanes.len(), 2);
}

#[tokio::test]
async fn unknown_boards_are_not_found() {
    let (_db, _service, mut client) = start().await;
    let missing = client
        .get_board(GetBoardRequest {
            board_id: "nope".into(),
        })
        .await
        .expect_err("missing");
    assert_eq!(missing.code(), Code::NotFound);
    assert!(missing.message().contains("nope"));
}

#[tokio::test]
async fn lanes_are_created_renamed_limited_and_reordered() {
    let (_db, _service, mut client) = start().await;
    let board = create_board(&mut client, "Lanes").await;
    let review = client
        .create_lane(CreateLaneRequest {
            board_id: board.slug.clone(),
            key: "review".into(),
            position: Some(3),
            wip_limit: Some(2),
            ..Default::default()
        })
        .await
        .expect("create lane")
        .into_inner();
    assert_eq!(
        (review.position, review.wip_limit, review.name.as_str()),
        (3, Some(2), "Review")
    );

    let duplicate = client
        .create_lane(CreateLaneRequest {
            board_id: board.slug.clone(),
            key: "review".into(),
            ..Default::default()
        })
        .await
        .expect_err("duplicate key");
    assert_eq!(duplicate.code(), Code::AlreadyExists);

    let moved = client
        .update_lane(UpdateLaneRequest {
            lane_id: review.id.clone(),
            name: Some("Code review".into()),
            clear_wip_limit: true,
            position: Some(0),
            ..Default::default()
        })
        .await
        .expect("update lane")
        .into_inner();
    assert_eq!(
        (moved.position, moved.wip_limit, moved.name.as_str()),
        (0, None, "Code review")
    );

    let snapshot = client
        .get_board(GetBoardRequest {
            board_id: board.id.clone(),
        })
        .await
        .expect("get")
        .into_inner();
    let lanes = snapshot.board.expect("board").lanes;
    let order: Vec<_> = lanes.iter().map(|l| (l.key.as_str(), l.position)).collect();
    assert_eq!(
        order,
        [
            ("review", 0),
            ("backlog", 1),
            ("todo", 2),
            ("in_progress", 3),
            ("done", 4),
            ("recovery", 5)
        ]
    );
    assert_eq!(
        snapshot.version, 2,
        "each lane change bumps the board version once"
    );
}

#[tokio::test]
async fn deleting_a_lane_that_holds_tasks_needs_a_destination() {
    let (_db, _service, mut client) = start().await;
    let board = create_board(&mut client, "Delete lanes").await;
    let lane = |key: &str| {
        board
            .lanes
            .iter()
            .find(|l| l.key == key)
            .expect("lane")
            .clone()
    };
    let first = create_task(&mut client, &board.id, "recovery", "first").await;
    let second = create_task(&mut client, &board.id, "recovery", "second").await;
    let already_done = create_task(&mut client, &board.id, "done", "already done").await;

    let refused = client
        .delete_lane(DeleteLaneRequest {
            lane_id: lane("recovery").id,
            ..Default::default()
        })
        .await
        .expect_err("lane holds tasks");
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert!(
        refused.message().contains("2 tasks"),
        "{}",
        refused.message()
    );

    let deleted = client
        .delete_lane(DeleteLaneRequest {
            lane_id: lane("recovery").id,
            move_tasks_to_lane_id: Some("done".into()),
            ..Default::default()
        })
        .await
        .expect("delete with destination")
        .into_inner();
    assert_eq!(deleted.moved_tasks.len(), 2);
    assert!(
        deleted
            .moved_tasks
            .iter()
            .all(|t| t.lane_key == "done" && t.version == 2)
    );
    assert_eq!(
        lane_order(&mut client, &board.id, "done").await,
        [already_done.id, first.id, second.id],
        "moved tasks are appended in their old order"
    );

    let empty = client
        .delete_lane(DeleteLaneRequest {
            lane_id: lane("todo").id,
            ..Default::default()
        })
        .await
        .expect("an empty lane deletes without a destination");
    assert_eq!(empty.into_inner().lane.expect("lane").key, "todo");
    let lanes = client
        .get_board(GetBoardRequest { board_id: board.id })
        .await
        .expect("get")
        .into_inner()
        .board
        .expect("board")
        .lanes;
    let positions: Vec<_> = lanes.iter().map(|l| (l.key.as_str(), l.position)).collect();
    assert_eq!(positions, [("backlog", 0), ("in_progress", 1), ("done", 2)]);
}

#[tokio::test]
async fn the_default_board_is_created_once_by_replicas_starting_together() {
    let db = service_kit::test_database::TestDatabase::create().await;
    let config = || {
        let mut config = board_service::Config::new(db.url());
        config.default_board = Some("default".into());
        config
    };
    let addr: std::net::SocketAddr = "127.0.0.1:0".parse().expect("addr");
    let (first, second) = tokio::join!(
        Service::start_with(config(), addr),
        Service::start_with(config(), addr)
    );
    let boards = first
        .client()
        .await
        .list_boards(ListBoardsRequest {})
        .await
        .expect("list")
        .into_inner()
        .boards;
    assert_eq!(boards.len(), 1);
    assert_eq!(
        (boards[0].slug.as_str(), boards[0].lanes.len()),
        ("default", 5)
    );
    drop(second);
}
