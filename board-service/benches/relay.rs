//! Relay throughput: events/s one relaying board-service publishes from the
//! `board_events` outbox to JetStream (SCALING.md, issue 15).
//!
//! `cargo bench -p board-service --bench relay`
//! Env: BENCH_EVENTS (20000), BENCH_BOARDS (16), DATABASE_URL (unset: the
//! private PostgreSQL), NATS_URL (unset: a private `nats-server -js`).
//!
//! The events are written first with the relay off, through the gRPC API;
//! then a board-service with `NATS_URL` starts, and the time from its start
//! until the stream holds every event is the relay's figure (its start-up,
//! a few milliseconds, included).

mod common;

use common::env_or;
use std::time::{Duration, Instant};

use board_service::{App, Config};
use protocol::v1::{CreateTaskRequest, board_service_client::BoardServiceClient};
use service_kit::{board_stream, test_database::TestDatabase};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let events = env_or("BENCH_EVENTS", 20_000) as usize;
    let boards = env_or("BENCH_BOARDS", 16) as usize;
    let db = TestDatabase::create().await;
    let nats_url = service_kit::local_nats::url();

    // Written with no relay: the outbox fills.
    let mut config = Config::new(db.url());
    config.listen_addr = "127.0.0.1:0".parse()?;
    config.nats_url = None;
    let writer = App::build(config).await?;
    let endpoint = format!("http://{}", writer.local_addr());
    let stop = tokio_util::sync::CancellationToken::new();
    let running = tokio::spawn(writer.run_until_stopped(stop.clone().cancelled_owned()));
    let client = BoardServiceClient::connect(endpoint).await?;
    let ids = common::create_boards(&mut client.clone(), boards, "relay bench").await?;
    let per_board = events.div_ceil(boards);
    let mut writers = Vec::new();
    for id in &ids {
        let (mut client, id) = (client.clone(), id.clone());
        writers.push(tokio::spawn(async move {
            for n in 0..per_board {
                client
                    .create_task(CreateTaskRequest {
                        board_id: id.clone(),
                        lane_id: "todo".into(),
                        title: format!("relayed {n}"),
                        ..Default::default()
                    })
                    .await?;
            }
            anyhow::Ok(())
        }));
    }
    for writer in writers {
        writer.await??;
    }
    stop.cancel();
    running.await??;
    let pool = sqlx::PgPool::connect(db.url()).await?;
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM board_events")
        .fetch_one(&pool)
        .await?;
    let total = total as u64;

    let context = board_stream::connect(&nats_url, "relay bench").await?;
    let stream = board_stream::ensure(&context).await?;
    let before = stream.get_info().await?.state.messages;

    let mut config = Config::new(db.url());
    config.listen_addr = "127.0.0.1:0".parse()?;
    config.nats_url = Some(nats_url.clone());
    let relayer = App::build(config).await?;
    let stop = tokio_util::sync::CancellationToken::new();
    let started = Instant::now();
    let running = tokio::spawn(relayer.run_until_stopped(stop.clone().cancelled_owned()));
    let deadline = started + Duration::from_secs(300);
    loop {
        let now = stream.get_info().await?.state.messages - before;
        if now >= total {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "only {now} of {total} events relayed"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let elapsed = started.elapsed();
    println!(
        "relay: {total} events on {boards} boards published to JetStream in {:.2} s: {:.0} events/s through one relayer",
        elapsed.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64()
    );
    stop.cancel();
    running.await??;
    Ok(())
}
