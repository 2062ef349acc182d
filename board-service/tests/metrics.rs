//! `/metrics`, read by a real Prometheus text parser: RPC counts by method
//! and code, latency histograms, watchers and events streamed.

mod common;

use board_service::Config;
use common::{Service, create_board, create_task, next_events, watch};
use protocol::v1::GetBoardRequest;
use service_kit::{
    test_database::TestDatabase,
    testing::{metric_value as value, scrape_metrics},
};

async fn scrape(service: &Service) -> prometheus_parse::Scrape {
    let addr = service.metrics_addr.expect("metrics are served");
    scrape_metrics(&format!("http://{addr}/metrics")).await
}

#[tokio::test]
async fn metrics_count_calls_codes_watchers_and_events() {
    let db = TestDatabase::create().await;
    let mut config = Config::new(db.url());
    config.metrics_addr = Some("127.0.0.1:0".parse().unwrap());
    let service = Service::start_with(config, "127.0.0.1:0".parse().unwrap()).await;
    let mut client = service.client().await;

    let board = create_board(&mut client, "Measured").await;
    let mut stream = watch(&mut client, &board.id, 0).await;
    create_task(&mut client, &board.id, "todo", "one").await;
    create_task(&mut client, &board.id, "todo", "two").await;
    next_events(&mut stream, 2).await;
    let missing = client
        .get_board(GetBoardRequest {
            board_id: "no-such-board".into(),
        })
        .await;
    assert!(missing.is_err());

    let first = scrape(&service).await;
    let calls = "boardwire_board_service_rpc_calls_total";
    assert_eq!(
        value(&first, calls, &[("method", "CreateTask"), ("code", "0")]),
        2.0
    );
    assert_eq!(
        value(&first, calls, &[("method", "GetBoard"), ("code", "5")]),
        1.0
    );
    assert_eq!(value(&first, "boardwire_board_service_watchers", &[]), 1.0);
    assert_eq!(
        value(&first, "boardwire_board_service_events_streamed_total", &[]),
        2.0
    );
    let timed = value(
        &first,
        "boardwire_board_service_rpc_duration_seconds",
        &[("method", "CreateTask")],
    );
    assert_eq!(timed, 2.0, "both creates are in the latency histogram");

    drop(stream);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let after = scrape(&service).await;
    assert_eq!(
        value(&after, "boardwire_board_service_watchers", &[]),
        0.0,
        "a closed stream is not counted"
    );
}
