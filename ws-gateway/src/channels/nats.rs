//! A channel feed over NATS (with `NATS_URL`): one core-NATS subscription
//! per channel instead of one upstream `WatchChannel`, so board-service
//! serves N gateways' channels at the cost of one publish per publication.
//!
//! Core NATS keeps nothing and does not order two board-service replicas'
//! publications against each other, so the feed trusts offsets, not
//! arrival: the next offset is published, an older one skipped, and a gap
//! (or another epoch) is filled from board-service's history first
//! (`catch_up`). A publication NATS never carried at all (its replica died
//! between commit and publish, or NATS was away) is found by the same
//! catch-up, run every [`POSITION_CHECK_EVERY`] and after every outage.
//! While NATS or the relay is away, the feed runs on `WatchChannel`.

use std::{sync::Arc, time::Duration};

use futures::StreamExt;
use prost::Message as _;
use protocol::v1::{ChannelPublication, WatchChannelRequest, channel_update::Update};
use service_kit::board_stream;

use super::{ChannelFeed, watch};
use crate::{hub::BoardStream, metrics::Metrics, upstream::Upstream};

/// How often a feed asks board-service whether it missed the newest
/// publications.
const POSITION_CHECK_EVERY: Duration = Duration::from_secs(10);
/// How often the NATS connection is looked at.
const STATE_CHECK: Duration = Duration::from_secs(1);
/// Longest a catch-up may take.
const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(10);

/// Feeds `feed` until it stops: from NATS while NATS is usable, else
/// from `WatchChannel`.
pub(super) async fn follow(
    nats: Arc<BoardStream>,
    upstream: Upstream,
    metrics: Arc<Metrics>,
    feed: Arc<ChannelFeed>,
) {
    let mut failures = 0u32;
    loop {
        if feed.stop.is_cancelled() {
            return;
        }
        if !nats.usable_soon().await {
            // Until NATS (and a relaying board-service) is back.
            tokio::select! {
                () = watch(upstream.clone(), feed.clone()) => return,
                () = until_usable(&nats) => {}
            }
            continue;
        }
        match follow_nats(&nats, &upstream, &metrics, &feed).await {
            Ok(()) => return,
            Err(err) => {
                failures += 1;
                tracing::warn!(channel = %feed.name, error = %format!("{err:#}"), "channel feed over NATS failed; starting again");
                let backoff = Duration::from_millis(100 * u64::from(failures.min(20)));
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    () = feed.stop.cancelled() => return,
                }
            }
        }
    }
}

async fn until_usable(nats: &BoardStream) {
    while !nats.usable() {
        tokio::time::sleep(STATE_CHECK).await;
    }
}

/// Follows the channel's subject until the feed stops (`Ok`) or NATS
/// stops being usable (`Err`).
async fn follow_nats(
    nats: &BoardStream,
    upstream: &Upstream,
    metrics: &Metrics,
    feed: &Arc<ChannelFeed>,
) -> anyhow::Result<()> {
    let client = nats.client();
    let mut messages = client
        .subscribe(board_stream::channel_subject(&feed.name))
        .await?;
    // The server has the subscription before the position is read, so
    // nothing committed after that read can pass it by.
    client.flush().await?;
    catch_up(upstream, feed).await?;
    let mut position_check = tokio::time::interval(POSITION_CHECK_EVERY);
    position_check.reset();
    let mut state_check = tokio::time::interval(STATE_CHECK);
    loop {
        tokio::select! {
            message = messages.next() => {
                let Some(message) = message else {
                    anyhow::bail!("the subscription ended");
                };
                let publication = match ChannelPublication::decode(message.payload.as_ref()) {
                    Ok(p) if p.channel == *feed.name => p,
                    // Left out, it is a gap, filled at the next one or check.
                    _ => {
                        tracing::warn!(channel = %feed.name, "undecodable publication on NATS; dropped");
                        continue;
                    }
                };
                metrics.channel_nats_publications.inc();
                if !feed.follows(&publication) {
                    metrics.channel_catchups.inc();
                    catch_up(upstream, feed).await?;
                }
                feed.publish(&publication);
            }
            _ = position_check.tick() => {
                let before = feed.resume_point();
                catch_up(upstream, feed).await?;
                if feed.resume_point() != before {
                    metrics.channel_catchups.inc();
                }
            }
            _ = state_check.tick() => {
                if !nats.usable() {
                    anyhow::bail!("NATS or the relay went away");
                }
            }
            () = feed.stop.cancelled() => return Ok(()),
        }
    }
}

/// Brings `feed` up to board-service's head: its first position, or what
/// followed its own from history, or (when history no longer reaches it,
/// or the epoch changed) a reset to the head.
async fn catch_up(upstream: &Upstream, feed: &ChannelFeed) -> anyhow::Result<()> {
    let since = feed.resume_point();
    let request = WatchChannelRequest {
        channel: feed.name.to_string(),
        since_offset: since.as_ref().map(|(offset, _)| *offset),
        epoch: since
            .as_ref()
            .map(|(_, e)| e.to_string())
            .unwrap_or_default(),
    };
    let read = async {
        let mut stream = upstream
            .channels()
            .watch_channel(request)
            .await?
            .into_inner();
        let mut head_seen = false;
        while let Some(update) = stream.message().await? {
            match update.update {
                Some(Update::Position(p)) if !head_seen => {
                    head_seen = true;
                    if since.is_none() || !p.recovered {
                        feed.set_position(&p.epoch, p.offset, p.recovered);
                        return Ok(());
                    }
                }
                // The end of the replay.
                Some(Update::Position(_)) => return Ok(()),
                Some(Update::Publication(p)) => feed.publish(&p),
                None => {}
            }
        }
        anyhow::bail!("the channel watch ended before its replay did")
    };
    tokio::time::timeout(CATCH_UP_TIMEOUT, read)
        .await
        .map_err(|_| anyhow::anyhow!("catching up took over {CATCH_UP_TIMEOUT:?}"))?
}
