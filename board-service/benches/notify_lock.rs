//! What PostgreSQL's NOTIFY lock costs board writes (issue 11).
//!
//! `cargo bench -p board-service --bench notify_lock`
//! Env: BENCH_CLIENTS (32), BENCH_BOARDS (64), BENCH_SECONDS (5),
//! DATABASE_URL (unset: the private PostgreSQL, fsync off; set it to a
//! server with fsync on to see the lock held across the WAL flush).
//!
//! A transaction that has issued `NOTIFY` takes one database-wide lock at
//! commit, so that notifications are queued in commit order, and keeps it
//! until its commit record is flushed: notifying writers commit one at a
//! time. This runs the statement board-service appends an event with (bump
//! the board's version, insert the event, `pg_notify`), on tables shaped as
//! `boards` and `board_events` are, from many clients over many boards,
//! with and without the `pg_notify`, and a third way, which is what
//! board-service does: no `pg_notify` in the writer's transaction, the
//! commit handed to board-service's own `Announcer`, which notifies after
//! it in batches that do not wait for a flush.

mod common;

use common::env_or;
use std::time::{Duration, Instant};

use board_service::events::Announcer;
use hdrhistogram::Histogram;
use service_kit::test_database::TestDatabase;
use sqlx::postgres::PgPoolOptions;
use uuid::Uuid;

const WITH_NOTIFY: &str = "WITH bump AS (UPDATE bench_boards SET version = $2 WHERE id = $1),
     logged AS (INSERT INTO bench_events (board_id, version, event) VALUES ($1, $2, $3))
 SELECT pg_notify('bench_events', $1::text || ':' || $2::text)";
const WITHOUT_NOTIFY: &str = "WITH bump AS (UPDATE bench_boards SET version = $2 WHERE id = $1)
 INSERT INTO bench_events (board_id, version, event) VALUES ($1, $2, $3)";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let clients = env_or("BENCH_CLIENTS", 32) as usize;
    let boards = env_or("BENCH_BOARDS", 64) as usize;
    let seconds = env_or("BENCH_SECONDS", 5);
    let db = TestDatabase::create().await;
    let pool = PgPoolOptions::new()
        .max_connections(clients as u32 + 1)
        .connect(db.url())
        .await?;
    sqlx::raw_sql(
        "CREATE TABLE bench_boards (id uuid PRIMARY KEY, version bigint NOT NULL DEFAULT 0);
         CREATE TABLE bench_events (board_id uuid NOT NULL, version bigint NOT NULL,
             event bytea NOT NULL, PRIMARY KEY (board_id, version));",
    )
    .execute(&pool)
    .await?;
    let fsync: String = sqlx::query_scalar("SHOW fsync").fetch_one(&pool).await?;
    println!(
        "NOTIFY lock benchmark: {clients} clients over {boards} boards, {seconds} s per mode, fsync={fsync}"
    );
    let mut results = Vec::new();
    for (name, sql, announce) in [
        ("with pg_notify", WITH_NOTIFY, false),
        ("without pg_notify", WITHOUT_NOTIFY, false),
        ("announced after", WITHOUT_NOTIFY, true),
    ] {
        sqlx::query("TRUNCATE bench_events").execute(&pool).await?;
        sqlx::query("DELETE FROM bench_boards")
            .execute(&pool)
            .await?;
        let ids: Vec<Uuid> = (0..boards).map(|_| Uuid::now_v7()).collect();
        sqlx::query("INSERT INTO bench_boards (id) SELECT unnest($1::uuid[])")
            .bind(&ids)
            .execute(&pool)
            .await?;
        let announcer = announce.then(|| Announcer::new(pool.clone()));
        let (count, histogram, elapsed) =
            run(&pool, sql, announcer, &ids, clients, seconds).await?;
        let tps = count as f64 / elapsed.as_secs_f64();
        println!(
            "  {name:<18} {tps:>8.0} writes/s   p50 {:>6.2} ms   p99 {:>6.2} ms",
            histogram.value_at_quantile(0.50) as f64 / 1000.0,
            histogram.value_at_quantile(0.99) as f64 / 1000.0,
        );
        results.push(tps);
    }
    println!(
        "  NOTIFY in the transaction costs {:.0}% of write throughput; announced after commit, {:.0}%",
        (1.0 - results[0] / results[1]) * 100.0,
        (1.0 - results[2] / results[1]) * 100.0,
    );
    Ok(())
}

/// `clients` writers, each appending to boards in turn (client c takes
/// boards c, c + clients, …), each write its own transaction; with an
/// `announcer`, each commit is handed to it as board-service does.
async fn run(
    pool: &sqlx::PgPool,
    sql: &'static str,
    announcer: Option<Announcer>,
    boards: &[Uuid],
    clients: usize,
    seconds: u64,
) -> anyhow::Result<(u64, Histogram<u64>, Duration)> {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let payload = vec![7u8; 160];
    let mut workers = Vec::new();
    for c in 0..clients {
        let (pool, payload, announcer) = (pool.clone(), payload.clone(), announcer.clone());
        let mine: Vec<Uuid> = boards
            .iter()
            .enumerate()
            .filter(|(b, _)| b % clients == c % boards.len().min(clients))
            .map(|(_, id)| *id)
            .collect();
        workers.push(tokio::spawn(async move {
            let mut histogram = common::latencies()?;
            let mut count = 0u64;
            while Instant::now() < deadline && !mine.is_empty() {
                let i = count as usize % mine.len();
                let sent = Instant::now();
                let mut tx = pool.begin().await?;
                // The board's row lock, as board-service takes it.
                let version: i64 =
                    sqlx::query_scalar("SELECT version FROM bench_boards WHERE id = $1 FOR UPDATE")
                        .bind(mine[i])
                        .fetch_one(&mut *tx)
                        .await?;
                sqlx::query(sql)
                    .bind(mine[i])
                    .bind(version + 1)
                    .bind(&payload)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                if let Some(announcer) = &announcer {
                    announcer.committed(&[(mine[i], version as u64 + 1)]);
                }
                histogram.record(sent.elapsed().as_micros() as u64)?;
                count += 1;
            }
            anyhow::Ok((count, histogram))
        }));
    }
    let (total, merged) = common::merge(workers).await?;
    Ok((total, merged, started.elapsed()))
}
