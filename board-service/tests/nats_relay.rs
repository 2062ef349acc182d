//! The NATS relay against a real PostgreSQL and a real nats-server (the one
//! at `NATS_URL`, else a private one): every committed event reaches the
//! JetStream stream once, in version order, with its message id, across
//! restarts, two replicas and a NATS restart.

mod common;

use std::time::{Duration, Instant};

use async_nats::jetstream;
use board_service::{
    Config,
    store::log::{LOGGED_COLUMNS, LoggedEvent},
};
use common::{Client, Service, create_board, create_task};
use futures::StreamExt;
use prost::Message;
use protocol::v1::BoardEvent;
use service_kit::{local_nats, test_database::TestDatabase};
use sqlx::PgPool;
use uuid::Uuid;

fn config(db: &TestDatabase, nats_url: &str) -> Config {
    let mut config = Config::new(db.url());
    config.nats_url = Some(nats_url.to_owned());
    config
}

async fn start(db: &TestDatabase, nats_url: &str) -> Service {
    Service::start_with(config(db, nats_url), "127.0.0.1:0".parse().expect("addr")).await
}

/// A board with its lanes; returns its id and first lane.
async fn new_board(client: &mut Client) -> (String, String) {
    let board = create_board(client, "Relayed").await;
    let lane = board
        .lanes
        .first()
        .expect("a new board has lanes")
        .id
        .clone();
    (board.id, lane)
}

async fn write_tasks(client: &mut Client, board: &str, lane: &str, n: usize, tag: &str) {
    for i in 0..n {
        create_task(client, board, lane, &format!("{tag} {i}")).await;
    }
}

async fn board_version(pool: &PgPool, board: &str) -> i64 {
    sqlx::query_scalar("SELECT version FROM boards WHERE id = $1::uuid")
        .bind(board)
        .fetch_one(pool)
        .await
        .expect("board version")
}

/// Waits until `board_relay` says every committed event of `board` is relayed.
async fn wait_relayed(pool: &PgPool, board: &str) -> i64 {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let version = board_version(pool, board).await;
        let relayed: Option<i64> =
            sqlx::query_scalar("SELECT relayed_version FROM board_relay WHERE board_id = $1::uuid")
                .bind(board)
                .fetch_optional(pool)
                .await
                .expect("read board_relay");
        if relayed.unwrap_or(0) == version {
            return version;
        }
        assert!(
            Instant::now() < deadline,
            "relayed {relayed:?} of {version} events within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One message of the stream: (stream sequence, Nats-Msg-Id, payload).
type Relayed = (u64, String, Vec<u8>);

/// Every message the stream holds on `boardwire.boards.<board>`, in stream order.
async fn read_subject(nats_url: &str, board: &str) -> Vec<Relayed> {
    let client = async_nats::connect(nats_url)
        .await
        .expect("connect to NATS");
    let js = jetstream::new(client);
    let stream = js
        .get_stream(service_kit::board_stream::STREAM)
        .await
        .expect("the stream exists");
    let board_id: Uuid = board.parse().expect("board id");
    let consumer = stream
        .create_consumer(jetstream::consumer::pull::OrderedConfig {
            filter_subject: service_kit::board_stream::subject(board_id),
            ..Default::default()
        })
        .await
        .expect("ordered consumer");
    let mut messages = consumer.messages().await.expect("consume");
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let message = tokio::time::timeout_at(deadline, messages.next())
            .await
            .unwrap_or_else(|_| panic!("the stream stalled after {} messages", out.len()))
            .expect("stream ended")
            .expect("message");
        let info = message.info().expect("message info");
        let (sequence, pending) = (info.stream_sequence, info.pending);
        let id = message
            .headers
            .as_ref()
            .and_then(|h| h.get("Nats-Msg-Id"))
            .map(|v| v.as_str().to_owned())
            .unwrap_or_default();
        out.push((sequence, id, message.payload.to_vec()));
        if pending == 0 {
            return out;
        }
    }
}

/// Asserts the stream holds versions 1..=`version` of `board`, each once, in
/// order, with its message id and the bytes board_events holds for it.
async fn assert_stream_matches_log(pool: &PgPool, nats_url: &str, board: &str, version: i64) {
    let relayed = read_subject(nats_url, board).await;
    let ids: Vec<&str> = relayed.iter().map(|(_, id, _)| id.as_str()).collect();
    let expected: Vec<String> = (1..=version).map(|v| format!("{board}:{v}")).collect();
    assert_eq!(ids, expected, "message ids in stream order");
    assert!(
        relayed.windows(2).all(|w| w[0].0 < w[1].0),
        "stream sequences increase"
    );
    let rows: Vec<LoggedEvent> = sqlx::query_as(&format!(
        "SELECT {LOGGED_COLUMNS} FROM board_events WHERE board_id = $1::uuid ORDER BY version"
    ))
    .bind(board)
    .fetch_all(pool)
    .await
    .expect("read board_events");
    // Stored encoded, or as JSON (the database's own task writes): the
    // stream carries the encoded event either way.
    let board_id = Uuid::parse_str(board).expect("board id");
    let stored: Vec<(i64, Vec<u8>)> = rows
        .into_iter()
        .map(|row| {
            (
                row.version,
                row.encoded(board_id).expect("a readable event"),
            )
        })
        .collect();
    assert_eq!(stored.last().map(|(v, _)| *v), Some(version));
    // Each event the log still holds (all, unless trimmed) is in the stream as stored.
    for (v, bytes) in &stored {
        let (_, id, payload) = &relayed[*v as usize - 1];
        assert_eq!(payload, bytes, "payload of {id} is the stored event");
    }
    for (i, (_, id, payload)) in relayed.iter().enumerate() {
        let event = BoardEvent::decode(payload.as_slice()).expect("payload decodes");
        assert_eq!(
            (event.board_id.as_str(), event.version),
            (board, i as u64 + 1),
            "payload of {id}"
        );
    }
}

#[tokio::test]
async fn every_event_once_in_order_and_a_restart_resends_nothing_new() {
    let nats_url = local_nats::url();
    let db = TestDatabase::create().await;
    let pool = PgPool::connect(db.url()).await.expect("pool");
    let service = start(&db, &nats_url).await;
    let mut client = service.client().await;
    let (board, lane) = new_board(&mut client).await;
    write_tasks(&mut client, &board, &lane, 30, "first").await;
    let version = wait_relayed(&pool, &board).await;
    assert!(version >= 30, "each task is an event");
    assert_stream_matches_log(&pool, &nats_url, &board, version).await;
    service.stop().await;

    // Forget all progress: the new relayer re-sends everything, and JetStream
    // drops every re-send as a duplicate.
    sqlx::query("UPDATE board_relay SET relayed_version = 0")
        .execute(&pool)
        .await
        .expect("reset progress");
    let service = start(&db, &nats_url).await;
    let mut client = service.client().await;
    assert_eq!(wait_relayed(&pool, &board).await, version);
    assert_stream_matches_log(&pool, &nats_url, &board, version).await;

    write_tasks(&mut client, &board, &lane, 10, "second").await;
    let version = wait_relayed(&pool, &board).await;
    assert_stream_matches_log(&pool, &nats_url, &board, version).await;
    service.stop().await;
}

#[tokio::test]
async fn two_replicas_relay_each_event_once() {
    let nats_url = local_nats::url();
    let db = TestDatabase::create().await;
    let pool = PgPool::connect(db.url()).await.expect("pool");
    let (first, second) = (start(&db, &nats_url).await, start(&db, &nats_url).await);
    let (mut a, mut b) = (first.client().await, second.client().await);
    let (board, lane) = new_board(&mut a).await;
    let (other, other_lane) = new_board(&mut b).await;
    write_tasks(&mut b, &other, &other_lane, 3, "other").await;
    for i in 0..10 {
        create_task(&mut a, &board, &lane, &format!("a {i}")).await;
        create_task(&mut b, &board, &lane, &format!("b {i}")).await;
    }
    let version = wait_relayed(&pool, &board).await;
    assert_stream_matches_log(&pool, &nats_url, &board, version).await;
    let other_version = wait_relayed(&pool, &other).await;
    assert_stream_matches_log(&pool, &nats_url, &other, other_version).await;

    // Whichever held the lock, the one left relays what follows.
    first.stop().await;
    write_tasks(&mut b, &board, &lane, 10, "after").await;
    let version = wait_relayed(&pool, &board).await;
    assert_stream_matches_log(&pool, &nats_url, &board, version).await;
    second.stop().await;
}

#[tokio::test]
async fn a_nats_restart_during_writes_loses_nothing() {
    // Always a private server: the test stops it.
    let nats = local_nats::LocalNats::start_throwaway().unwrap_or_else(|e| panic!("{e}"));
    let nats_url = nats.url();
    let db = TestDatabase::create().await;
    let pool = PgPool::connect(db.url()).await.expect("pool");
    let service = start(&db, &nats_url).await;
    let mut client = service.client().await;
    let (board, lane) = new_board(&mut client).await;
    write_tasks(&mut client, &board, &lane, 10, "before").await;
    wait_relayed(&pool, &board).await;

    let stopped = tokio::task::spawn_blocking(move || nats.stop())
        .await
        .expect("stop nats-server");
    write_tasks(&mut client, &board, &lane, 15, "while down").await;
    // Nothing can be acknowledged while NATS is down, so nothing may be
    // recorded as relayed.
    assert!(relayed_version(&pool, &board).await < board_version(&pool, &board).await);
    let nats = tokio::task::spawn_blocking(move || stopped.start())
        .await
        .expect("join")
        .unwrap_or_else(|e| panic!("restart: {e}"));
    write_tasks(&mut client, &board, &lane, 15, "after").await;

    let version = wait_relayed(&pool, &board).await;
    assert!(version >= 40);
    assert_stream_matches_log(&pool, &nats_url, &board, version).await;
    service.stop().await;
    drop(nats);
}

#[tokio::test]
async fn without_nats_url_nothing_is_relayed() {
    let db = TestDatabase::create().await;
    let pool = PgPool::connect(db.url()).await.expect("pool");
    let mut config = Config::new(db.url());
    config.nats_url = None;
    let service = Service::start_with(config, "127.0.0.1:0".parse().expect("addr")).await;
    let mut client = service.client().await;
    let (board, lane) = new_board(&mut client).await;
    write_tasks(&mut client, &board, &lane, 3, "plain").await;
    assert!(board_version(&pool, &board).await >= 3);
    service.stop().await;
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM board_relay")
        .fetch_one(&pool)
        .await
        .expect("count board_relay");
    assert_eq!(rows, 0, "no relay ran without a NATS URL");
}

/// The backend holding the relay lock in this test's database.
async fn lock_holder(pool: &PgPool) -> Option<i32> {
    sqlx::query_scalar(
        "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted
         AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
    )
    .fetch_optional(pool)
    .await
    .expect("read pg_locks")
}

async fn scrape(service: &Service) -> prometheus_parse::Scrape {
    let addr = service.metrics_addr.expect("metrics are served");
    service_kit::testing::scrape_metrics(&format!("http://{addr}/metrics")).await
}

/// Which of `services` says it relays, once exactly one does.
async fn leader(services: &[&Service]) -> usize {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut leaders = Vec::new();
        for (i, service) in services.iter().enumerate() {
            let scrape = scrape(service).await;
            let gauge = "boardwire_board_service_relay_leader";
            if service_kit::testing::metric_value(&scrape, gauge, &[]) == 1.0 {
                leaders.push(i);
            }
        }
        assert!(leaders.len() <= 1, "two relayers at once: {leaders:?}");
        if let [one] = leaders[..] {
            return one;
        }
        assert!(Instant::now() < deadline, "no relayer within 30 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_standby_takes_over_when_the_lock_is_lost_or_the_relayer_stops() {
    let nats_url = local_nats::url();
    let db = TestDatabase::create().await;
    let pool = PgPool::connect(db.url()).await.expect("pool");
    let with_metrics = || {
        let mut config = config(&db, &nats_url);
        config.metrics_addr = Some("127.0.0.1:0".parse().expect("addr"));
        config
    };
    let addr = || "127.0.0.1:0".parse().expect("addr");
    let mut services = vec![
        Service::start_with(with_metrics(), addr()).await,
        Service::start_with(with_metrics(), addr()).await,
    ];
    let mut client = services[0].client().await;
    let (board, lane) = new_board(&mut client).await;
    write_tasks(&mut client, &board, &lane, 5, "first").await;
    let version = wait_relayed(&pool, &board).await;
    let first_leader = leader(&[&services[0], &services[1]]).await;
    let relayed = "boardwire_board_service_relayed_events_total";
    let counts = [
        service_kit::testing::metric_value(&scrape(&services[0]).await, relayed, &[]),
        service_kit::testing::metric_value(&scrape(&services[1]).await, relayed, &[]),
    ];
    assert_eq!(counts[first_leader], version as f64, "the relayer counts");
    assert_eq!(counts[1 - first_leader], 0.0, "the standby relays nothing");

    // Cut the relayer's lock connection: it stops, and a relayer (either
    // replica) takes the lock again on a new connection.
    let holder = lock_holder(&pool).await.expect("the relay lock is held");
    sqlx::query("SELECT pg_terminate_backend($1)")
        .bind(holder)
        .execute(&pool)
        .await
        .expect("terminate the lock connection");
    write_tasks(&mut client, &board, &lane, 5, "lock lost").await;
    let version = wait_relayed(&pool, &board).await;
    assert_stream_matches_log(&pool, &nats_url, &board, version).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match lock_holder(&pool).await {
            Some(pid) if pid != holder => break,
            _ => assert!(
                Instant::now() < deadline,
                "the lock is not held on a new connection within 30 s"
            ),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Stop whichever relays now: the other takes over.
    let current = leader(&[&services[0], &services[1]]).await;
    services.remove(current).stop().await;
    let survivor = services.pop().expect("one service left");
    let mut client = survivor.client().await;
    write_tasks(&mut client, &board, &lane, 5, "after stop").await;
    let version = wait_relayed(&pool, &board).await;
    assert_stream_matches_log(&pool, &nats_url, &board, version).await;
    assert_eq!(leader(&[&survivor]).await, 0);
    survivor.stop().await;
}

#[tokio::test]
async fn the_log_keeps_events_until_they_are_relayed() {
    let nats = local_nats::LocalNats::start_throwaway().unwrap_or_else(|e| panic!("{e}"));
    let nats_url = nats.url();
    let db = TestDatabase::create().await;
    let pool = PgPool::connect(db.url()).await.expect("pool");
    let service = start(&db, &nats_url).await;
    let mut client = service.client().await;
    let (board, lane) = new_board(&mut client).await;
    write_tasks(&mut client, &board, &lane, 5, "relayed").await;
    wait_relayed(&pool, &board).await;

    let stopped = tokio::task::spawn_blocking(move || nats.stop())
        .await
        .expect("stop nats-server");
    write_tasks(&mut client, &board, &lane, 10, "held back").await;
    let version = board_version(&pool, &board).await;
    let relayed = relayed_version(&pool, &board).await;
    assert!(
        relayed < version,
        "nothing is acknowledged while NATS is down"
    );
    // Retention 2 would delete all but the last 2; the unrelayed stay.
    board_service::store::log::trim(&pool, 2, true)
        .await
        .expect("trim");
    assert_eq!(
        oldest_event(&pool, &board).await,
        relayed + 1,
        "relayed events go, unrelayed ones stay"
    );

    let nats = tokio::task::spawn_blocking(move || stopped.start())
        .await
        .expect("join")
        .unwrap_or_else(|e| panic!("restart: {e}"));
    assert_eq!(wait_relayed(&pool, &board).await, version);
    assert_stream_matches_log(&pool, &nats_url, &board, version).await;
    board_service::store::log::trim(&pool, 2, true)
        .await
        .expect("trim");
    assert_eq!(
        oldest_event(&pool, &board).await,
        version - 1,
        "once relayed, retention applies again"
    );
    service.stop().await;
    drop(nats);
}

async fn relayed_version(pool: &PgPool, board: &str) -> i64 {
    sqlx::query_scalar("SELECT relayed_version FROM board_relay WHERE board_id = $1::uuid")
        .bind(board)
        .fetch_one(pool)
        .await
        .expect("read board_relay")
}

async fn oldest_event(pool: &PgPool, board: &str) -> i64 {
    sqlx::query_scalar("SELECT min(version) FROM board_events WHERE board_id = $1::uuid")
        .bind(board)
        .fetch_one(pool)
        .await
        .expect("oldest event")
}
