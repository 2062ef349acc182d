//! Input an attacker or a buggy client sends gets a clear error naming the
//! field, never `internal`, and writes nothing.

mod common;

use common::{create_board, create_task, start};
use protocol::v1::{CreateTaskRequest, DeleteLaneRequest, GetBoardRequest, UpdateTaskRequest};
use tonic::Code;

#[tokio::test]
async fn control_characters_are_refused_naming_the_field() {
    let (_db, _service, mut client) = start().await;
    let board = create_board(&mut client, "Hostile").await;
    let cases = [
        (
            "description",
            CreateTaskRequest {
                description: "a\0b".into(),
                ..Default::default()
            },
        ),
        (
            "title",
            CreateTaskRequest {
                title: "bell\u{7}".into(),
                ..Default::default()
            },
        ),
        (
            "assignee",
            CreateTaskRequest {
                assignee: "x\0".into(),
                ..Default::default()
            },
        ),
        (
            "label",
            CreateTaskRequest {
                labels: vec!["ok".into(), "\0".into()],
                ..Default::default()
            },
        ),
        (
            "request_id",
            CreateTaskRequest {
                request_id: "r\0".into(),
                ..Default::default()
            },
        ),
        (
            "board_id",
            CreateTaskRequest {
                board_id: "be\0ta".into(),
                ..Default::default()
            },
        ),
    ];
    for (field, mut request) in cases {
        if request.board_id.is_empty() {
            request.board_id = board.id.clone();
        }
        request.lane_id = "todo".into();
        if request.title.is_empty() {
            request.title = "fine".into();
        }
        let err = client.create_task(request).await.unwrap_err();
        assert_eq!(
            err.code(),
            Code::InvalidArgument,
            "{field}: {}",
            err.message()
        );
        assert!(err.message().contains(field), "{field}: {}", err.message());
    }
    let task = create_task(&mut client, &board.id, "todo", "real").await;
    let err = client
        .update_task(UpdateTaskRequest {
            task_id: task.id,
            description: Some("nul\0".into()),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let err = client
        .get_board(GetBoardRequest {
            board_id: "\0".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let snapshot = client
        .get_board(GetBoardRequest { board_id: board.id })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(snapshot.tasks.len(), 1, "only the valid task was written");
}

#[tokio::test]
async fn an_oversized_message_is_resource_exhausted() {
    let (_db, _service, client) = start().await;
    let mut client = client.max_encoding_message_size(64 << 20);
    let board = create_board(&mut client, "Big").await;
    let err = client
        .create_task(CreateTaskRequest {
            board_id: board.id,
            lane_id: "todo".into(),
            title: "huge".into(),
            description: "x".repeat(5 << 20),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{}", err.message());
}

#[tokio::test]
async fn deleting_a_lane_into_itself_is_invalid_not_missing() {
    let (_db, _service, mut client) = start().await;
    let board = create_board(&mut client, "Lanes").await;
    let lane = board
        .lanes
        .iter()
        .find(|l| l.key == "todo")
        .unwrap()
        .clone();
    create_task(&mut client, &board.id, "todo", "keeps the lane busy").await;
    for target in [lane.id.clone(), lane.key.clone()] {
        let err = client
            .delete_lane(DeleteLaneRequest {
                lane_id: lane.id.clone(),
                move_tasks_to_lane_id: Some(target),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{}", err.message());
    }
}

#[tokio::test]
async fn silent_and_half_sent_connections_are_closed_after_the_handshake_deadline() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let db = service_kit::test_database::TestDatabase::create().await;
    let mut config = board_service::Config::new(db.url());
    config.handshake_timeout = std::time::Duration::from_millis(300);
    let service = common::Service::start_with(config, "127.0.0.1:0".parse().unwrap()).await;
    let mut silent = tokio::net::TcpStream::connect(service.addr).await.unwrap();
    let mut half = tokio::net::TcpStream::connect(service.addr).await.unwrap();
    half.write_all(b"PRI * HTTP/2.0\r\n").await.unwrap();
    for (name, tcp) in [("silent", &mut silent), ("half-sent", &mut half)] {
        let mut buf = [0u8; 64];
        let closed = tokio::time::timeout(std::time::Duration::from_secs(10), async {
            loop {
                match tcp.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
            }
        })
        .await;
        assert!(closed.is_ok(), "a {name} connection was held");
    }
    // A real client still gets through.
    let mut client = service.client().await;
    create_board(&mut client, "Still serving").await;
}
