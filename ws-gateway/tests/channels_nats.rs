//! Channels over NATS (`NATS_URL` on every service) against real
//! board-services, gateways, PostgreSQL and nats-server: publications
//! committed on two replicas reach subscribers on two gateways in offset
//! order and once, whatever order NATS brought them in; a publication NATS
//! never carried still arrives (the position check); and a NATS restart
//! during publishing loses and repeats nothing.

mod common;

use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

use common::*;
use protocol::v1::{PublishRequest, channel_service_client::ChannelServiceClient};
use serde_json::{Value, json};
use service_kit::{local_nats, testing};
use tonic::transport::Channel;

/// Dots and `>` mean something in NATS subjects; the name must
/// still be one channel.
const CHANNEL: &str = "jobs.42.progress>";

const FROM_NATS: &str = "ws_gateway_channel_nats_publications_total";
const CATCHUPS: &str = "ws_gateway_channel_catchups_total";

async fn stack_on(nats_url: &str) -> Stack {
    let (relay, feed) = (nats_url.to_owned(), nats_url.to_owned());
    Stack::start_both(
        move |c| c.nats_url = Some(relay),
        move |c| c.nats_url = Some(feed),
    )
    .await
}

async fn metric(gateway: SocketAddr, name: &str) -> f64 {
    let scrape = testing::scrape_metrics(&format!("http://{gateway}/metrics")).await;
    testing::metric_value(&scrape, name, &[])
}

async fn channels_api(addr: SocketAddr) -> ChannelServiceClient<Channel> {
    ChannelServiceClient::connect(format!("http://{addr}"))
        .await
        .expect("connect to board-service")
}

async fn publish(api: &mut ChannelServiceClient<Channel>, n: u64) -> u64 {
    api.publish(PublishRequest {
        channel: CHANNEL.into(),
        event: "progress".into(),
        data_json: json!({"n": n}).to_string(),
        ttl_ms: 0,
    })
    .await
    .expect("publish")
    .into_inner()
    .offset
}

async fn subscriber(url: &str, since: Option<(u64, &str)>) -> (Ws, Value) {
    let mut ws = Ws::connect(url).await;
    ws.next_of("connected").await;
    let mut frame = json!({"type": "subscribe", "channel": CHANNEL, "id": "s"});
    if let Some((offset, epoch)) = since {
        frame["sinceOffset"] = offset.into();
        frame["epoch"] = epoch.into();
    }
    ws.send(frame).await;
    let ack = ws.next().await;
    assert_eq!(ack["type"], "ack", "{ack}");
    (ws, ack["result"].clone())
}

/// Reads publications until offset `last`, asserting each is the next.
async fn read_to(ws: &mut Ws, mut seen: u64, last: u64) -> u64 {
    while seen < last {
        let frame = ws.next_of("publication").await;
        let offset = frame["offset"].as_u64().expect("offset");
        assert_eq!(offset, seen + 1, "out of order or repeated: {frame}");
        assert_eq!(frame["channel"], CHANNEL);
        assert_eq!(frame["data"]["n"], offset, "{frame}");
        seen = offset;
    }
    seen
}

#[tokio::test]
async fn publications_on_two_replicas_reach_two_gateways_in_order_and_once() {
    let nats = local_nats::url();
    let stack = stack_on(&nats).await;
    let replica = start_board_service_with(stack.db.url(), "127.0.0.1:0".parse().unwrap(), |c| {
        c.nats_url = Some(nats.clone());
    })
    .await;
    let mut config = ws_gateway::Config::new(format!("http://{}", replica.addr));
    config.nats_url = Some(nats.clone());
    let second = start_gateway(config).await;

    let (mut one, head) = subscriber(&stack.ws_url(), None).await;
    let (mut two, _) = subscriber(&format!("ws://{}/ws", second.addr), None).await;
    let epoch = head["epoch"].as_str().expect("epoch").to_owned();

    // Both replicas publish at once, so NATS brings their publications in
    // whatever order; their offsets still count 1, 2, 3 … in commit order.
    let total = 200u64;
    let mut tasks = Vec::new();
    for addr in [stack.board_service.addr, replica.addr] {
        tasks.push(tokio::spawn(async move {
            let mut api = channels_api(addr).await;
            let mut offsets = Vec::new();
            for _ in 0..total / 2 {
                offsets.push(publish(&mut api, 0).await);
            }
            offsets
        }));
    }
    let mut offsets = Vec::new();
    for task in tasks {
        offsets.extend(task.await.expect("publisher"));
    }
    offsets.sort_unstable();
    assert_eq!(offsets, (1..=total).collect::<Vec<_>>());
    for ws in [&mut one, &mut two] {
        let mut seen = 0;
        while seen < total {
            let frame = ws.next_of("publication").await;
            let offset = frame["offset"].as_u64().expect("offset");
            assert_eq!(offset, seen + 1, "out of order or repeated: {frame}");
            assert_eq!(frame["epoch"], epoch.as_str());
            seen = offset;
        }
    }
    for gateway in [stack.gateway.addr, second.addr] {
        assert!(
            metric(gateway, FROM_NATS).await >= 1.0,
            "publications came over NATS"
        );
    }

    // Resuming on the second gateway, from its window.
    let (mut resumed, ack) =
        subscriber(&format!("ws://{}/ws", second.addr), Some((150, &epoch))).await;
    assert_eq!(ack["recovered"], true, "{ack}");
    let mut seen = 150;
    while seen < total {
        let frame = resumed.next_of("publication").await;
        assert_eq!(frame["offset"], seen + 1);
        seen += 1;
    }
}

#[tokio::test]
async fn a_publication_nats_never_carried_arrives_by_the_position_check() {
    let stack = stack_on(&local_nats::url()).await;
    // A replica without NATS stands for one that died between its commit
    // and its publish: the publication is in the history only.
    let silent = start_board_service_with(stack.db.url(), "127.0.0.1:0".parse().unwrap(), |c| {
        c.nats_url = None;
    })
    .await;
    let (mut ws, _) = subscriber(&stack.ws_url(), None).await;
    let mut api = channels_api(stack.board_service.addr).await;
    let mut quiet = channels_api(silent.addr).await;

    assert_eq!(publish(&mut api, 1).await, 1);
    let mut seen = read_to(&mut ws, 0, 1).await;
    let catchups = metric(stack.gateway.addr, CATCHUPS).await;
    // The newest publication, with nothing after it to show the gap.
    assert_eq!(publish(&mut quiet, 2).await, 2);
    let started = Instant::now();
    seen = read_to(&mut ws, seen, 2).await;
    println!("found by the position check after {:?}", started.elapsed());
    assert!(metric(stack.gateway.addr, CATCHUPS).await > catchups);
    // One in the middle: the next one over NATS shows the gap.
    assert_eq!(publish(&mut quiet, 3).await, 3);
    assert_eq!(publish(&mut api, 4).await, 4);
    read_to(&mut ws, seen, 4).await;
}

#[tokio::test]
async fn a_nats_restart_during_publishing_loses_and_repeats_nothing() {
    // Always a private server: the test stops it.
    let nats = local_nats::LocalNats::start_throwaway().unwrap_or_else(|e| panic!("{e}"));
    let stack = stack_on(&nats.url()).await;
    let (mut ws, _) = subscriber(&stack.ws_url(), None).await;
    let mut api = channels_api(stack.board_service.addr).await;
    let mut n = 0;
    for _ in 0..10 {
        n += 1;
        assert_eq!(publish(&mut api, n).await, n);
    }
    let mut seen = read_to(&mut ws, 0, n).await;

    let stopped = tokio::task::spawn_blocking(move || nats.stop())
        .await
        .expect("stop nats-server");
    // While NATS is away the feed runs on WatchChannel.
    for _ in 0..15 {
        n += 1;
        publish(&mut api, n).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    seen = read_to(&mut ws, seen, n).await;

    let nats = tokio::task::spawn_blocking(move || stopped.start())
        .await
        .expect("join")
        .unwrap_or_else(|e| panic!("restart: {e}"));
    let from_nats = metric(stack.gateway.addr, FROM_NATS).await;
    let deadline = Instant::now() + Duration::from_secs(40);
    while metric(stack.gateway.addr, FROM_NATS).await <= from_nats {
        assert!(Instant::now() < deadline, "the feed went back to NATS");
        n += 1;
        publish(&mut api, n).await;
        seen = read_to(&mut ws, seen, n).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for _ in 0..5 {
        n += 1;
        publish(&mut api, n).await;
    }
    read_to(&mut ws, seen, n).await;
    drop(nats);
}
