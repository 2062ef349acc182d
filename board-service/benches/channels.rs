//! Channel publish throughput and publish→watcher latency, ephemeral
//! (unlogged tables) beside durable (logged), on one hot channel and on one
//! channel per client.
//!
//! `cargo bench -p board-service --bench channels`
//! Env: BENCH_CLIENTS (16), BENCH_SECONDS (5), DATABASE_URL (unset: a
//! private PostgreSQL).
//!
//! Every publication is also read back by a `WatchChannel` per channel,
//! which checks that offsets arrive gapless and in order and measures the
//! time from the publish call's start to its arrival at the watcher.

mod common;

use common::env_or;
use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use board_service::{App, Config, channels::Policy};
use hdrhistogram::Histogram;
use protocol::v1::{
    PublishRequest, WatchChannelRequest, channel_service_client::ChannelServiceClient,
    channel_update::Update,
};
use service_kit::test_database::TestDatabase;
use tonic::transport::Channel;

/// When each (channel, offset) was sent, for the watcher's latency.
type Sent = Arc<Mutex<HashMap<(String, u64), Instant>>>;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let clients = env_or("BENCH_CLIENTS", 16) as usize;
    let seconds = env_or("BENCH_SECONDS", 5);
    let db = TestDatabase::create().await;
    let mut config = Config::new(db.url());
    config.listen_addr = "127.0.0.1:0".parse()?;
    config.db_max_connections = (clients as u32 + 8).max(8);
    config.channel_history = Policy::parse("durable/*=1000/300/durable,*=1000/300")?;
    let app = App::build(config).await?;
    let endpoint = format!("http://{}", app.local_addr());
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    let channel = Channel::from_shared(endpoint)?.connect().await?;

    println!(
        "Channel publish benchmark: {clients} clients, {seconds} s per shape, board-service in-process"
    );
    for durable in [false, true] {
        for hot in [true, false] {
            let prefix = if durable { "durable" } else { "ephemeral" };
            let names: Vec<String> = (0..if hot { 1 } else { clients })
                .map(|i| format!("{prefix}/{}-{i}", if hot { "hot" } else { "own" }))
                .collect();
            let (published, rpc, delivered, watched) =
                run_shape(&channel, &names, clients, seconds).await?;
            println!(
                "  {:<9} {:<24} {:>7.0} publishes/s   publish p50 {:>5.2} ms p99 {:>6.2} ms   to watcher p50 {:>5.2} ms p99 {:>6.2} ms   delivered {delivered}/{published}",
                prefix,
                if hot {
                    "one channel, all clients"
                } else {
                    "one channel per client"
                },
                published as f64 / seconds as f64,
                rpc.value_at_quantile(0.50) as f64 / 1000.0,
                rpc.value_at_quantile(0.99) as f64 / 1000.0,
                watched.value_at_quantile(0.50) as f64 / 1000.0,
                watched.value_at_quantile(0.99) as f64 / 1000.0,
            );
        }
    }
    Ok(())
}

async fn run_shape(
    channel: &Channel,
    names: &[String],
    clients: usize,
    seconds: u64,
) -> anyhow::Result<(u64, Histogram<u64>, u64, Histogram<u64>)> {
    let sent: Sent = Arc::default();
    let mut watchers = Vec::new();
    for name in names {
        let mut api = ChannelServiceClient::new(channel.clone());
        let mut stream = api
            .watch_channel(WatchChannelRequest {
                channel: name.clone(),
                ..Default::default()
            })
            .await?
            .into_inner();
        // The head position: from here on the watch sees every publication.
        stream.message().await?;
        let (sent, name) = (sent.clone(), name.clone());
        watchers.push(tokio::spawn(async move {
            let mut latency = Histogram::<u64>::new(3).expect("histogram");
            let (mut last, mut count) = (None::<u64>, 0u64);
            while let Ok(Ok(Some(update))) =
                tokio::time::timeout(Duration::from_secs(2), stream.message()).await
            {
                let Some(Update::Publication(p)) = update.update else {
                    continue;
                };
                assert!(
                    last.is_none_or(|l| p.offset == l + 1),
                    "gap on {name}: {last:?} → {}",
                    p.offset
                );
                last = Some(p.offset);
                count += 1;
                let at = sent.lock().unwrap().remove(&(name.clone(), p.offset));
                if let Some(at) = at {
                    let _ = latency.record(at.elapsed().as_micros() as u64);
                }
            }
            (count, latency)
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for i in 0..clients {
        let mut api = ChannelServiceClient::new(channel.clone());
        let (name, sent) = (names[i % names.len()].clone(), sent.clone());
        tasks.push(tokio::spawn(async move {
            let mut latency = Histogram::<u64>::new(3).expect("histogram");
            let mut count = 0u64;
            while Instant::now() < deadline {
                let start = Instant::now();
                let request = PublishRequest {
                    channel: name.clone(),
                    event: "bench".into(),
                    data_json: r#"{"n":1}"#.into(),
                    ttl_ms: 0,
                };
                let offset = api
                    .publish(request)
                    .await
                    .expect("publish")
                    .into_inner()
                    .offset;
                // The watcher may see it before this insert; then it has no
                // latency sample, which only trims the fastest few.
                sent.lock().unwrap().insert((name.clone(), offset), start);
                let _ = latency.record(start.elapsed().as_micros() as u64);
                count += 1;
            }
            (count, latency)
        }));
    }
    let (mut published, mut rpc) = (0, Histogram::<u64>::new(3)?);
    for task in tasks {
        let (count, latency) = task.await?;
        published += count;
        rpc.add(latency)?;
    }
    let (mut delivered, mut watched) = (0, Histogram::<u64>::new(3)?);
    for watcher in watchers {
        let (count, latency) = watcher.await?;
        delivered += count;
        watched.add(latency)?;
    }
    Ok((published, rpc, delivered, watched))
}
