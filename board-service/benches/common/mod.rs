//! What board-service's benchmarks share.

#![allow(dead_code)]

use hdrhistogram::Histogram;
use protocol::v1::{CreateBoardRequest, board_service_client::BoardServiceClient};
use tokio::task::JoinHandle;
use tonic::transport::Channel;

/// The environment variable `name` as a number, else `default`.
pub fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A latency histogram in µs, from 1 µs to 60 s.
pub fn latencies() -> anyhow::Result<Histogram<u64>> {
    Ok(Histogram::new_with_bounds(1, 60_000_000, 3)?)
}

/// A benchmark worker: how many operations it did, and their latencies.
pub type Worker = JoinHandle<anyhow::Result<(u64, Histogram<u64>)>>;

/// Waits for every worker and adds up their counts and latencies.
pub async fn merge(workers: Vec<Worker>) -> anyhow::Result<(u64, Histogram<u64>)> {
    let mut total = 0;
    let mut merged = latencies()?;
    for worker in workers {
        let (count, histogram) = worker.await??;
        total += count;
        merged.add(histogram)?;
    }
    Ok((total, merged))
}

/// `count` new boards named `<prefix> <i>`; their ids.
pub async fn create_boards(
    client: &mut BoardServiceClient<Channel>,
    count: usize,
    prefix: &str,
) -> anyhow::Result<Vec<String>> {
    let mut ids = Vec::with_capacity(count);
    for i in 0..count {
        let board = client
            .create_board(CreateBoardRequest {
                name: format!("{prefix} {i}"),
                ..Default::default()
            })
            .await?
            .into_inner();
        ids.push(board.id);
    }
    Ok(ids)
}
