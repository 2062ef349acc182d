//! MoveTask throughput and latency, with PostgreSQL's own ceiling beside it.
//!
//! `cargo bench -p board-service --bench move_task`
//! Env: BENCH_CLIENTS (16), BENCH_SECONDS (10), DATABASE_URL (unset: a
//! private PostgreSQL, fsync off — pgbench runs on the same server, so the two
//! figures stay comparable).
//!
//! Two shapes: every client on one board (all writers serialise on the board
//! lock — the worst case), and one board per client. Each runs flat out
//! first (the peak), then paced at half that peak, where latency is what a
//! user sees at a busy but unsaturated service (measured from each move's
//! scheduled time, so a stall counts against every move it delays).

mod common;

use common::env_or;
use std::{
    process::Command,
    time::{Duration, Instant},
};

use board_service::{App, Config};
use hdrhistogram::Histogram;
use protocol::v1::{CreateTaskRequest, MoveTaskRequest, board_service_client::BoardServiceClient};
use service_kit::test_database::TestDatabase;
use tonic::transport::Channel;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let clients = env_or("BENCH_CLIENTS", 16) as usize;
    let seconds = env_or("BENCH_SECONDS", 10);
    let db = TestDatabase::create().await;
    let mut config = Config::new(db.url());
    config.listen_addr = "127.0.0.1:0".parse()?;
    config.db_max_connections = (clients as u32 + 4).max(8);
    let app = App::build(config).await?;
    let endpoint = format!("http://{}", app.local_addr());
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    let channel = Channel::from_shared(endpoint)?.connect().await?;

    println!(
        "MoveTask benchmark: {clients} clients, {seconds} s per shape, board-service in-process"
    );
    for shared_board in [true, false] {
        let shape = if shared_board {
            "one board, all clients"
        } else {
            "one board per client"
        };
        let mut peak = None;
        for pace in [None, Some(0.5)] {
            let per_client = peak
                .zip(pace)
                .map(|(peak, pace): (f64, f64)| peak * pace / clients as f64);
            let (count, histogram, elapsed) =
                run_shape(&channel, clients, seconds, shared_board, per_client).await?;
            let rate = count as f64 / elapsed.as_secs_f64();
            peak.get_or_insert(rate);
            println!(
                "  {:<22} {:<9} {:>8.0} moves/s   p50 {:>6.2} ms   p99 {:>6.2} ms   max {:>6.2} ms",
                shape,
                if pace.is_some() { "half peak" } else { "peak" },
                rate,
                histogram.value_at_quantile(0.50) as f64 / 1000.0,
                histogram.value_at_quantile(0.99) as f64 / 1000.0,
                histogram.max() as f64 / 1000.0,
            );
        }
    }
    match pgbench_ceiling(db.url(), clients, seconds) {
        Ok(tps) => println!(
            "  {:<22} {tps:>8.0} single-row UPDATE transactions/s (pgbench, same server)",
            "ceiling"
        ),
        Err(err) => println!("  ceiling: pgbench not run: {err}"),
    }
    Ok(())
}

async fn run_shape(
    channel: &Channel,
    clients: usize,
    seconds: u64,
    shared_board: bool,
    per_client_rate: Option<f64>,
) -> anyhow::Result<(u64, Histogram<u64>, Duration)> {
    let mut admin = BoardServiceClient::new(channel.clone());
    let count = if shared_board { 1 } else { clients };
    let boards = common::create_boards(&mut admin, count, &format!("bench {shared_board}")).await?;
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut workers = Vec::new();
    for c in 0..clients {
        let mut client = BoardServiceClient::new(channel.clone());
        let board = boards[c % boards.len()].clone();
        workers.push(tokio::spawn(async move {
            let task = client
                .create_task(CreateTaskRequest {
                    board_id: board,
                    lane_id: "todo".into(),
                    title: format!("client {c}"),
                    ..Default::default()
                })
                .await?
                .into_inner();
            let mut histogram = common::latencies()?;
            let lanes = ["in_progress", "done", "todo"];
            let mut count = 0u64;
            let mut pace = per_client_rate
                .map(|rate| tokio::time::interval(Duration::from_secs_f64(1.0 / rate.max(0.1))));
            while Instant::now() < deadline {
                let sent = match pace.as_mut() {
                    Some(pace) => pace.tick().await.into_std(),
                    None => Instant::now(),
                };
                client
                    .move_task(MoveTaskRequest {
                        task_id: task.id.clone(),
                        to_lane_id: lanes[count as usize % lanes.len()].into(),
                        ..Default::default()
                    })
                    .await?;
                histogram.record(sent.elapsed().as_micros() as u64)?;
                count += 1;
            }
            anyhow::Ok((count, histogram))
        }));
    }
    let (total, merged) = common::merge(workers).await?;
    Ok((total, merged, started.elapsed()))
}

/// TPS of single-row UPDATEs by pgbench with as many clients, on the same database.
fn pgbench_ceiling(url: &str, clients: usize, seconds: u64) -> anyhow::Result<f64> {
    let pgbench = std::fs::read_dir("/usr/lib/postgresql")?
        .flatten()
        .map(|e| e.path().join("bin/pgbench"))
        .find(|p| p.exists())
        .ok_or_else(|| anyhow::anyhow!("pgbench not found under /usr/lib/postgresql"))?;
    let init = Command::new(&pgbench)
        .args(["-i", "-q", "-s", "1"])
        .arg(url)
        .output()?;
    anyhow::ensure!(
        init.status.success(),
        "pgbench -i: {}",
        String::from_utf8_lossy(&init.stderr)
    );
    let script = std::env::temp_dir().join(format!("boardwire-pgbench-{}.sql", std::process::id()));
    std::fs::write(
        &script,
        "\\set aid random(1, 100000)\nUPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid = :aid;\n",
    )?;
    let run = Command::new(&pgbench)
        .args([
            "-n",
            "-c",
            &clients.to_string(),
            "-j",
            "2",
            "-T",
            &seconds.to_string(),
            "-f",
        ])
        .arg(&script)
        .arg(url)
        .output()?;
    let _ = std::fs::remove_file(&script);
    anyhow::ensure!(
        run.status.success(),
        "pgbench: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    let out = String::from_utf8_lossy(&run.stdout);
    out.lines()
        .find_map(|l| l.strip_prefix("tps = "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no tps in pgbench output: {out}"))
}
