//! Serving concerns: health, reflection, a database that goes away.

mod common;

use common::*;
use protocol::v1::CreateTaskRequest;
use sqlx::{Connection, PgConnection};
use tonic::Code;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};
use tonic_reflection::pb::v1::{
    ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
    server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
};

#[tokio::test]
async fn serves_grpc_health_and_reflection() {
    let (_db, service, _client) = start().await;
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", service.addr))
        .expect("endpoint")
        .connect()
        .await
        .expect("connect");

    let health = HealthClient::new(channel.clone())
        .check(HealthCheckRequest {
            service: "boardwire.v1.BoardService".into(),
        })
        .await
        .expect("health")
        .into_inner();
    assert_eq!(health.status(), ServingStatus::Serving);

    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = ServerReflectionClient::new(channel)
        .server_reflection_info(futures::stream::iter([request]))
        .await
        .expect("reflection")
        .into_inner();
    let response = responses
        .message()
        .await
        .expect("reply")
        .expect("one reply");
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("unexpected reflection reply");
    };
    let names: Vec<_> = list.service.iter().map(|s| s.name.as_str()).collect();
    assert!(names.contains(&"boardwire.v1.BoardService"), "{names:?}");
}

#[tokio::test]
async fn a_database_that_goes_away_gives_a_clean_error_not_sql() {
    let (db, _service, mut client) = start().await;
    let board = create_board(&mut client, "Doomed").await;

    // Take the database away under the running service.
    let name = db.url().rsplit('/').next().expect("db name").to_owned();
    let admin_url = service_kit::test_database::with_database(db.url(), "postgres");
    let mut admin = PgConnection::connect(&admin_url).await.expect("admin");
    sqlx::query(&format!(r#"DROP DATABASE "{name}" WITH (FORCE)"#))
        .execute(&mut admin)
        .await
        .expect("drop database");

    let status = client
        .create_task(CreateTaskRequest {
            board_id: board.id.clone(),
            lane_id: "todo".into(),
            title: "lost?".into(),
            ..Default::default()
        })
        .await
        .expect_err("no database");
    assert!(
        status.code() == Code::Unavailable,
        "{:?}: {}",
        status.code(),
        status.message()
    );
    let message = status.message().to_lowercase();
    assert!(
        !message.contains("sql") && !message.contains(&name),
        "leaks internals: {message}"
    );
}
