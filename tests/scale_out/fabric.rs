//! Channels and presence for the scale test, both over NATS between the
//! gateways. A publisher alternates between the board-services (the other
//! one when its own is down); subscribers are spread over the gateways and
//! resume with `sinceOffset` and `epoch` on the next gateway when theirs
//! dies, and must see every offset once, in order. Presence, checked once
//! the faults are over: one watcher per live gateway, each seeing exactly
//! the others, so the killed gateway's members are gone.

use std::{
    collections::BTreeSet,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use futures::{SinkExt, StreamExt};
use protocol::v1::{PublishRequest, channel_service_client::ChannelServiceClient};
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio_tungstenite::{connect_async, tungstenite::Message};

/// The channel; `.` and `>` mean something in NATS subjects.
pub const CHANNEL: &str = "scale.jobs>progress";
/// A socket silent this long is taken for dead.
const SILENCE: Duration = Duration::from_secs(20);

/// Publishes about ten a second until `stop`, through `ports[first]` and
/// then alternately, skipping a board-service that does not answer. Then
/// one last publication through `last_port`: its offset is the channel's
/// head, since every earlier commit precedes it.
pub async fn publisher(ports: Vec<u16>, last_port: u16, stop: Arc<AtomicBool>) -> u64 {
    let mut at = 0;
    let mut published = 0u64;
    while !stop.load(Ordering::Relaxed) {
        at += 1;
        if publish(ports[at % ports.len()], published).await.is_some() {
            published += 1;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    loop {
        if let Some(offset) = publish(last_port, published).await {
            return offset;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn publish(port: u16, n: u64) -> Option<u64> {
    let attempt = async {
        let mut api = ChannelServiceClient::connect(format!("http://127.0.0.1:{port}"))
            .await
            .ok()?;
        let published = api
            .publish(PublishRequest {
                channel: CHANNEL.into(),
                event: "progress".into(),
                data_json: json!({"n": n}).to_string(),
                ttl_ms: 0,
            })
            .await
            .ok()?;
        Some(published.into_inner().offset)
    };
    tokio::time::timeout(Duration::from_secs(5), attempt)
        .await
        .ok()
        .flatten()
}

/// What a subscriber saw.
pub struct SubscriberEnd {
    pub last: u64,
    pub reconnects: usize,
    /// The first thing that broke the guarantees, if any.
    pub broken: Option<String>,
}

/// Follows [`CHANNEL`] from its head on `gateways[first]` until it has
/// seen the offset `target` names, moving to the next gateway (resuming
/// after the last offset it saw) whenever its socket dies.
pub async fn subscriber(
    gateways: Vec<u16>,
    first: usize,
    mut target: watch::Receiver<Option<u64>>,
) -> SubscriberEnd {
    let mut last = 0u64;
    let mut epoch: Option<String> = None;
    let mut reconnects = 0;
    let mut at = first;
    let end = |last, reconnects, broken| SubscriberEnd {
        last,
        reconnects,
        broken,
    };
    loop {
        if target.borrow().is_some_and(|t| last >= t) {
            return end(last, reconnects, None);
        }
        let url = format!("ws://127.0.0.1:{}/ws", gateways[at % gateways.len()]);
        let Ok((mut ws, _)) = connect_async(&url).await else {
            at += 1;
            reconnects += 1;
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let mut subscribe = json!({"type": "subscribe", "channel": CHANNEL, "id": "s"});
        if let Some(epoch) = &epoch {
            subscribe["sinceOffset"] = last.into();
            subscribe["epoch"] = epoch.as_str().into();
        }
        if ws.send(Message::text(subscribe.to_string())).await.is_err() {
            at += 1;
            reconnects += 1;
            continue;
        }
        loop {
            let message = tokio::select! {
                m = tokio::time::timeout(SILENCE, ws.next()) => m,
                _ = target.changed() => {
                    if target.borrow().is_some_and(|t| last >= t) { break; }
                    continue;
                }
            };
            let Ok(Some(Ok(Message::Text(text)))) = message else {
                if matches!(message, Ok(Some(Ok(_)))) {
                    continue;
                }
                break;
            };
            let frame: Value = serde_json::from_str(&text).unwrap_or_default();
            match frame["type"].as_str() {
                Some("ack") if frame["id"] == "s" => {
                    let position = &frame["result"];
                    if epoch.is_some() && position["recovered"] != true {
                        return end(last, reconnects, Some(format!("not recovered: {frame}")));
                    }
                    if epoch.is_none() {
                        // Fresh: what came before the head is history.
                        last = position["offset"].as_u64().unwrap_or_default();
                    }
                    epoch = position["epoch"].as_str().map(str::to_owned);
                }
                Some("publication") => {
                    let offset = frame["offset"].as_u64().unwrap_or_default();
                    if offset != last + 1 {
                        return end(
                            last,
                            reconnects,
                            Some(format!("offset {offset} after {last}")),
                        );
                    }
                    last = offset;
                    if target.borrow().is_some_and(|t| last >= t) {
                        break;
                    }
                }
                Some("error") => {
                    return end(last, reconnects, Some(format!("error frame {frame}")));
                }
                _ => {}
            }
        }
        if target.borrow().is_some_and(|t| last >= t) {
            return end(last, reconnects, None);
        }
        at += 1;
        reconnects += 1;
    }
}

/// One watcher per port on `board`: waits until each lists exactly the
/// watchers' own client ids. Err with what each saw last.
pub async fn presence_agrees(
    gateways: &[u16],
    board: &str,
    within: Duration,
) -> Result<(), String> {
    let mut watchers = Vec::new();
    for port in gateways {
        let url = format!("ws://127.0.0.1:{port}/ws?name=Watcher");
        let (mut ws, _) = connect_async(&url).await.map_err(|e| e.to_string())?;
        let mut id = None;
        while id.is_none() {
            let frame = next_json(&mut ws).await?;
            if frame["type"] == "connected" {
                id = frame["clientId"].as_str().map(str::to_owned);
            }
        }
        for frame in [
            json!({"type": "subscribe", "boardId": board}),
            json!({"type": "presence", "boardId": board, "id": "who"}),
        ] {
            ws.send(Message::text(frame.to_string()))
                .await
                .map_err(|e| e.to_string())?;
        }
        watchers.push((ws, id.unwrap_or_default(), BTreeSet::<String>::new()));
    }
    let everyone: BTreeSet<String> = watchers.iter().map(|(_, id, _)| id.clone()).collect();
    let deadline = Instant::now() + within;
    for (ws, _, seen) in &mut watchers {
        while *seen != everyone {
            if Instant::now() > deadline {
                return Err(format!("a watcher sees {seen:?}, not {everyone:?}"));
            }
            let frame = next_json(ws).await?;
            let keys = frame["entries"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|e| e["key"].as_str().map(str::to_owned));
            match frame["type"].as_str() {
                Some("presence") => *seen = keys.collect(),
                Some("presence.joined") => seen.extend(keys),
                Some("presence.left") => {
                    for key in keys {
                        seen.remove(&key);
                    }
                }
                _ => {}
            }
        }
    }
    Ok(())
}

async fn next_json(
    ws: &mut tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
) -> Result<Value, String> {
    loop {
        match tokio::time::timeout(SILENCE, ws.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => {
                return serde_json::from_str(&text).map_err(|e| e.to_string());
            }
            Ok(Some(Ok(_))) => continue,
            other => return Err(format!("socket ended: {other:?}")),
        }
    }
}
