//! The one upstream `WatchBoard` of a feed: reconnects with backoff and
//! resumes from the last version the feed saw; re-reads a snapshot only
//! when board-service says the log no longer has what the feed needs.

use std::{sync::Arc, time::Duration};

use futures::FutureExt;
use protocol::{
    event_type,
    v1::{BoardEvent, WatchBoardRequest},
};

use super::Feed;
use crate::{metrics::Metrics, upstream::Upstream};

const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// Events published together at most.
const BATCH: usize = 64;

pub fn spawn(upstream: Upstream, metrics: Arc<Metrics>, feed: Arc<Feed>) {
    tokio::spawn(async move {
        let stop = feed.stop.clone();
        tokio::select! {
            () = run(&upstream, &metrics, &feed) => {}
            () = stop.cancelled() => {}
        }
        tracing::debug!(board = %feed.board_id, "board feed closed");
    });
}

/// Why a watch ended.
enum Ended {
    /// Connection lost or stream ended: resume from the feed's version.
    Dropped,
    /// The feed needs a fresh snapshot.
    Resync,
}

async fn run(upstream: &Upstream, metrics: &Metrics, feed: &Arc<Feed>) {
    let mut backoff = BACKOFF_MIN;
    let mut need_snapshot = false;
    loop {
        if need_snapshot {
            match upstream
                .client()
                .get_board(protocol::v1::GetBoardRequest {
                    board_id: feed.board_id.to_string(),
                })
                .await
            {
                Ok(snapshot) => {
                    feed.reset(snapshot.into_inner());
                    need_snapshot = false;
                }
                Err(status) => {
                    tracing::warn!(board = %feed.board_id, %status, "cannot read board snapshot");
                    sleep_backoff(&mut backoff).await;
                    continue;
                }
            }
        }
        let after = feed.version();
        match watch(upstream, feed, after, &mut backoff).await {
            Ended::Resync => need_snapshot = true,
            Ended::Dropped => {
                metrics.upstream_reconnect();
                sleep_backoff(&mut backoff).await;
            }
        }
    }
}

async fn watch(upstream: &Upstream, feed: &Feed, after: u64, backoff: &mut Duration) -> Ended {
    let request = WatchBoardRequest {
        board_id: feed.board_id.to_string(),
        after_version: after,
    };
    let mut stream = match upstream.client().watch_board(request).await {
        Ok(response) => response.into_inner(),
        Err(status) => {
            tracing::warn!(board = %feed.board_id, %status, "cannot watch board");
            return Ended::Dropped;
        }
    };
    upstream.set_serving(true);
    let mut carried = None;
    loop {
        let next = match carried.take() {
            Some(next) => next,
            None => stream.message().await,
        };
        match next {
            Ok(Some(event)) => {
                *backoff = BACKOFF_MIN;
                if event.r#type == event_type::BOARD_RESYNC {
                    tracing::info!(board = %feed.board_id, "board log moved past this feed; re-reading snapshot");
                    return Ended::Resync;
                }
                // Events already here go out together: behind a backlog,
                // one write per client carries several frames.
                let mut events = vec![event];
                while events.len() < BATCH {
                    match stream.message().now_or_never() {
                        Some(Ok(Some(event))) if event.r#type != event_type::BOARD_RESYNC => {
                            events.push(event);
                        }
                        Some(other) => {
                            carried = Some(other);
                            break;
                        }
                        None => break,
                    }
                }
                if !feed.publish(&events, |event| deliver_span(feed, event)) {
                    tracing::warn!(board = %feed.board_id, "gap in board events; re-reading snapshot");
                    return Ended::Resync;
                }
            }
            Ok(None) => {
                tracing::info!(board = %feed.board_id, "board watch ended; reconnecting");
                return Ended::Dropped;
            }
            Err(status) => {
                tracing::warn!(board = %feed.board_id, %status, "board watch failed; reconnecting");
                if status.code() == tonic::Code::NotFound {
                    return Ended::Resync;
                }
                return Ended::Dropped;
            }
        }
    }
}

/// The frames of an event join the trace of the change behind it.
fn deliver_span(feed: &Feed, event: &BoardEvent) -> tracing::Span {
    let span = tracing::info_span!("deliver", board = %feed.board_id, version = event.version, kind = %event.r#type);
    service_kit::telemetry::propagation::set_parent_from_map(&span, &event.trace_context);
    span
}

async fn sleep_backoff(backoff: &mut Duration) {
    // Jitter spreads the reconnects of many boards after a restart.
    let jitter = Duration::from_millis(
        u64::from(std::process::id() ^ protocol::time::now_ms() as u32) % 100,
    );
    tokio::time::sleep(*backoff + jitter).await;
    *backoff = (*backoff * 2).min(BACKOFF_MAX);
}
