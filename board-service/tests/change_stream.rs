//! WatchBoard: replay then live, resume across restarts, replicas, resync.

mod common;

use std::time::Duration;

use board_service::Config;
use common::*;
use protocol::v1::{MoveTaskRequest, UpdateTaskRequest};
use service_kit::test_database::TestDatabase;

fn versions(events: &[protocol::v1::BoardEvent]) -> Vec<u64> {
    events.iter().map(|e| e.version).collect()
}

#[tokio::test]
async fn watch_replays_the_log_then_streams_live_in_order() {
    let (_db, _service, mut client) = start().await;
    let board = create_board(&mut client, "Stream").await;
    let a = create_task(&mut client, &board.id, "todo", "a").await;
    create_task(&mut client, &board.id, "todo", "b").await;

    let mut stream = watch(&mut client, &board.slug, 0).await;
    let replayed = next_events(&mut stream, 2).await;
    assert_eq!(versions(&replayed), [1, 2]);
    assert_eq!(replayed[0].r#type, "task.created");
    assert_eq!(replayed[0].task.as_ref().expect("task").title, "a");

    client
        .move_task(MoveTaskRequest {
            task_id: a.id.clone(),
            to_lane_id: "done".into(),
            request_id: "move-a".into(),
            ..Default::default()
        })
        .await
        .expect("move");
    let live = next_events(&mut stream, 1).await;
    let moved = &live[0];
    assert_eq!((moved.r#type.as_str(), moved.version), ("task.moved", 3));
    assert_eq!(
        (moved.from_lane_key.as_str(), moved.to_lane_key.as_str()),
        ("todo", "done")
    );
    assert_eq!(moved.request_id, "move-a");
    assert_eq!(moved.board_id, board.id);
    assert_quiet(&mut stream).await;

    let mut resumed = watch(&mut client, &board.id, 2).await;
    assert_eq!(versions(&next_events(&mut resumed, 1).await), [3]);
    assert_quiet(&mut resumed).await;
}

#[tokio::test]
async fn watch_resumes_after_a_board_service_restart_with_every_event_once() {
    let db = TestDatabase::create().await;
    let service = Service::start(db.url()).await;
    let mut client = service.client().await;
    let board = create_board(&mut client, "Restart").await;
    let task = create_task(&mut client, &board.id, "todo", "t").await;

    let mut stream = watch(&mut client, &board.id, 0).await;
    let mut seen = versions(&next_events(&mut stream, 1).await);
    let addr = service.addr;
    service.stop().await;
    // The stream ends with the server; the client keeps the last version.
    while let Ok(Some(event)) = stream.message().await {
        seen.push(event.version);
    }

    let service = Service::start_with(Config::new(db.url()), addr).await;
    let mut client = service.client().await;
    for title in ["renamed once", "renamed twice"] {
        client
            .update_task(UpdateTaskRequest {
                task_id: task.id.clone(),
                title: Some(title.into()),
                ..Default::default()
            })
            .await
            .expect("update");
    }
    let last = *seen.last().expect("one event before restart");
    let mut stream = watch(&mut client, &board.id, last).await;
    seen.extend(versions(&next_events(&mut stream, 2).await));
    create_task(&mut client, &board.id, "todo", "after").await;
    seen.extend(versions(&next_events(&mut stream, 1).await));
    assert_eq!(seen, [1, 2, 3, 4]);
    assert_quiet(&mut stream).await;
    service.stop().await;
}

#[tokio::test]
async fn two_replicas_on_one_database_both_stream_every_change() {
    let db = TestDatabase::create().await;
    let first = Service::start(db.url()).await;
    let second = Service::start(db.url()).await;
    let mut via_first = first.client().await;
    let mut via_second = second.client().await;
    let board = create_board(&mut via_first, "Replicas").await;

    let mut watch_first = watch(&mut via_first, &board.id, 0).await;
    let mut watch_second = watch(&mut via_second, &board.id, 0).await;
    create_task(&mut via_first, &board.id, "todo", "made on the first").await;
    create_task(&mut via_second, &board.id, "todo", "made on the second").await;

    for stream in [&mut watch_first, &mut watch_second] {
        let events = next_events(stream, 2).await;
        assert_eq!(versions(&events), [1, 2]);
        let titles: Vec<_> = events
            .iter()
            .map(|e| e.task.as_ref().expect("task").title.as_str())
            .collect();
        assert_eq!(titles, ["made on the first", "made on the second"]);
        assert_quiet(stream).await;
    }
}

/// Other replicas hear of a board commit by `NOTIFY board_events
/// '<board>:<version>'` and of a channel publication by `NOTIFY
/// boardwire_channels '<channel>'`, both sent after the writer's commit (so
/// that no writer holds NOTIFY's commit lock). The feeds' periodic re-check
/// sends none, so this fails if commits stop being announced.
#[tokio::test]
async fn every_commit_and_publication_is_announced_to_other_replicas() {
    let (db, service, mut client) = start().await;
    let mut listener = sqlx::postgres::PgListener::connect(db.url())
        .await
        .expect("connect the listener");
    listener
        .listen_all([
            board_service::store::log::NOTIFY_CHANNEL,
            board_service::channels::NOTIFY_CHANNEL,
        ])
        .await
        .expect("LISTEN");
    let board = create_board(&mut client, "Announced").await;
    for title in ["a", "b", "c"] {
        create_task(&mut client, &board.id, "todo", title).await;
    }
    let mut channels = protocol::v1::channel_service_client::ChannelServiceClient::connect(
        format!("http://{}", service.addr),
    )
    .await
    .expect("connect");
    channels
        .publish(protocol::v1::PublishRequest {
            channel: "jobs:announced".into(),
            event: "status".into(),
            data_json: "{}".into(),
            ttl_ms: 0,
        })
        .await
        .expect("publish");
    let (mut newest, mut published) = (0u64, false);
    while newest < 3 || !published {
        let notification = tokio::time::timeout(Duration::from_secs(30), listener.recv())
            .await
            .expect("a notification for each commit, within 30 s")
            .expect("LISTEN connection");
        if notification.channel() == board_service::channels::NOTIFY_CHANNEL {
            assert_eq!(notification.payload(), "jobs:announced");
            published = true;
            continue;
        }
        let (board_id, version) = notification
            .payload()
            .split_once(':')
            .expect("payload <board>:<version>");
        assert_eq!(board_id, board.id);
        let version: u64 = version.parse().expect("a version");
        assert!(
            version > newest && version <= 3,
            "versions rise: {version} after {newest}"
        );
        newest = version;
    }
}

#[tokio::test]
async fn watchers_resuming_from_before_the_retained_log_are_told_to_resync() {
    let db = TestDatabase::create().await;
    let mut config = Config::new(db.url());
    config.event_retention = 2;
    config.trim_interval = Duration::from_millis(50);
    let service = Service::start_with(config, "127.0.0.1:0".parse().expect("addr")).await;
    let mut client = service.client().await;
    let board = create_board(&mut client, "Retention").await;
    for title in ["1", "2", "3", "4", "5"] {
        create_task(&mut client, &board.id, "todo", title).await;
    }
    // Wait until the trimmer has run: the log then starts at version 4.
    let mut oldest = 0;
    for _ in 0..200 {
        let mut stream = watch(&mut client, &board.id, 0).await;
        oldest = next_events(&mut stream, 1).await[0].version;
        if oldest != 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(oldest, 5, "a resync carries the current version");

    let mut from_zero = watch(&mut client, &board.id, 0).await;
    let resync = &next_events(&mut from_zero, 1).await[0];
    assert_eq!(
        (resync.r#type.as_str(), resync.version),
        ("board.resync", 5)
    );
    assert!(
        from_zero.message().await.expect("clean end").is_none(),
        "the stream ends after a resync"
    );

    let mut retained = watch(&mut client, &board.id, 3).await;
    assert_eq!(versions(&next_events(&mut retained, 2).await), [4, 5]);

    let mut ahead = watch(&mut client, &board.id, 99).await;
    let resync = &next_events(&mut ahead, 1).await[0];
    assert_eq!(
        (resync.r#type.as_str(), resync.version),
        ("board.resync", 5)
    );
}

#[tokio::test]
async fn a_slow_watcher_catches_up_from_the_log_without_gaps() {
    let (_db, _service, mut client) = start().await;
    let board = create_board(&mut client, "Burst").await;
    let mut stream = watch(&mut client, &board.id, 0).await;
    // More events than the live feed buffers (1024) while the watcher does not read.
    let mut writers = Vec::new();
    for w in 0..4 {
        let mut client = client.clone();
        let board = board.id.clone();
        writers.push(tokio::spawn(async move {
            for i in 0..350 {
                create_task(&mut client, &board, "backlog", &format!("{w}-{i}")).await;
            }
        }));
    }
    for writer in writers {
        writer.await.expect("writer");
    }
    let events = next_events(&mut stream, 1400).await;
    assert_eq!(versions(&events), (1..=1400).collect::<Vec<_>>());
    assert_quiet(&mut stream).await;
}

#[tokio::test]
async fn watching_an_unknown_board_is_not_found() {
    let (_db, _service, mut client) = start().await;
    let status = client
        .watch_board(protocol::v1::WatchBoardRequest {
            board_id: "ghost".into(),
            after_version: 0,
        })
        .await
        .expect_err("unknown board");
    assert_eq!(status.code(), tonic::Code::NotFound);
}

#[tokio::test]
async fn watching_from_the_current_version_streams_only_new_events() {
    let (_db, _service, mut client) = start().await;
    let board = create_board(&mut client, "Now").await;
    create_task(&mut client, &board.id, "todo", "old").await;
    let mut stream = watch(&mut client, &board.id, 1).await;
    assert_quiet(&mut stream).await;
    create_task(&mut client, &board.id, "todo", "new").await;
    let events = next_events(&mut stream, 1).await;
    assert_eq!(
        (
            events[0].version,
            events[0].task.as_ref().expect("task").title.as_str()
        ),
        (2, "new")
    );
}

#[tokio::test]
async fn watchers_keep_streaming_after_the_database_drops_every_connection() {
    let (db, _service, mut client) = start().await;
    let board = create_board(&mut client, "Flaky").await;
    let mut stream = watch(&mut client, &board.id, 0).await;

    // Kill every server connection of the service, the LISTEN one included.
    let mut admin = <sqlx::PgConnection as sqlx::Connection>::connect(db.url())
        .await
        .expect("admin");
    let killed: Vec<(bool,)> = sqlx::query_as(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .fetch_all(&mut admin)
    .await
    .expect("terminate");
    assert!(!killed.is_empty());

    // Writes may fail while the pool notices; a client retries them.
    let mut created = 0;
    for attempt in 0..50 {
        let result = client
            .create_task(protocol::v1::CreateTaskRequest {
                board_id: board.id.clone(),
                lane_id: "todo".into(),
                title: format!("after the outage {created}"),
                request_id: format!("outage-{created}"),
                ..Default::default()
            })
            .await;
        match result {
            Ok(_) => created += 1,
            Err(status) => assert_eq!(
                status.code(),
                tonic::Code::Unavailable,
                "attempt {attempt}: {status}"
            ),
        }
        if created == 3 {
            break;
        }
    }
    assert_eq!(created, 3);
    let events = next_events(&mut stream, 3).await;
    assert_eq!(versions(&events), [1, 2, 3]);
}

/// The announcer's sending task lives on the runtime of the first commit it
/// heard of; when that runtime is gone, the next commit starts it again on
/// its own runtime instead of queueing notifications nobody sends.
#[test]
fn commits_are_announced_after_the_runtime_that_first_announced_is_gone() {
    use board_service::{events::Announcer, store::log::NOTIFY_CHANNEL};
    let first = tokio::runtime::Runtime::new().expect("runtime");
    let (db, announcer) = first.block_on(async {
        let db = TestDatabase::create().await;
        let pool = sqlx::PgPool::connect(db.url()).await.expect("connect");
        let announcer = Announcer::new(pool);
        announcer.committed(&[(uuid::Uuid::now_v7(), 1)]);
        (db, announcer)
    });
    drop(first);
    let second = tokio::runtime::Runtime::new().expect("runtime");
    second.block_on(async {
        let mut listener = sqlx::postgres::PgListener::connect(db.url())
            .await
            .expect("connect the listener");
        listener.listen(NOTIFY_CHANNEL).await.expect("LISTEN");
        let board = uuid::Uuid::now_v7();
        announcer.committed(&[(board, 7)]);
        let expected = format!("{board}:7");
        loop {
            let notification = tokio::time::timeout(Duration::from_secs(30), listener.recv())
                .await
                .expect("the commit is announced within 30 s")
                .expect("LISTEN connection");
            if notification.payload() == expected {
                break;
            }
        }
    });
}
