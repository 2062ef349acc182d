//! What keeps a feed current: board-service's `WatchBoard`, or with
//! `NATS_URL` the board stream on JetStream ([`super::jetstream`]), with
//! WatchBoard for its gaps and while NATS is down. Either way it reconnects
//! with backoff and resumes from the last version the feed saw, and
//! re-reads a snapshot only when board-service says the log no longer has
//! what the feed needs.

use std::{sync::Arc, time::Duration};

use futures::FutureExt;
use protocol::{
    event_type,
    v1::{BoardEvent, WatchBoardRequest},
};

use super::{Feed, jetstream::BoardStream};
use crate::{metrics::Metrics, upstream::Upstream};

const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// Events published together at most.
const BATCH: usize = 64;

/// While JetStream is down, how long a feed stays on WatchBoard before it
/// tries JetStream again.
const FALLBACK_PERIOD: Duration = Duration::from_secs(10);

pub fn spawn(
    upstream: Upstream,
    nats: Option<Arc<BoardStream>>,
    metrics: Arc<Metrics>,
    feed: Arc<Feed>,
) {
    tokio::spawn(async move {
        let stop = feed.stop.clone();
        tokio::select! {
            () = run(&upstream, nats.as_deref(), &metrics, &feed) => {}
            () = stop.cancelled() => {}
        }
        tracing::debug!(board = %feed.board_id, "board feed closed");
    });
}

/// Why a watch ended.
pub(super) enum Ended {
    /// Connection lost or stream ended: resume from the feed's version.
    Dropped,
    /// The feed needs a fresh snapshot.
    Resync,
    /// The feed reached the version it was to catch up to.
    CaughtUp,
    /// JetStream cannot serve the feed now: WatchBoard until it can.
    Unavailable,
}

async fn run(upstream: &Upstream, nats: Option<&BoardStream>, metrics: &Metrics, feed: &Arc<Feed>) {
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
        let ended = match nats {
            Some(nats) => {
                match super::jetstream::follow(nats, upstream, metrics, feed, &mut backoff).await {
                    Ended::Unavailable => {
                        metrics.jetstream_fallbacks.inc();
                        let fallback = watch(upstream, feed, feed.version(), &mut backoff, None);
                        tokio::time::timeout(FALLBACK_PERIOD, fallback)
                            .await
                            .unwrap_or(Ended::CaughtUp)
                    }
                    ended => ended,
                }
            }
            None => watch(upstream, feed, feed.version(), &mut backoff, None).await,
        };
        match ended {
            Ended::Resync => need_snapshot = true,
            Ended::Dropped | Ended::Unavailable => {
                metrics.upstream_reconnect();
                sleep_backoff(&mut backoff).await;
            }
            Ended::CaughtUp => {}
        }
    }
}

/// Streams the board's events after `after` into the feed, until the
/// stream ends or, with `until`, the feed has reached that version.
pub(super) async fn watch(
    upstream: &Upstream,
    feed: &Feed,
    after: u64,
    backoff: &mut Duration,
    until: Option<u64>,
) -> Ended {
    if until.is_some_and(|until| feed.version() >= until) {
        return Ended::CaughtUp;
    }
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
                if until.is_some_and(|until| feed.version() >= until) {
                    return Ended::CaughtUp;
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
pub(super) fn deliver_span(feed: &Feed, event: &BoardEvent) -> tracing::Span {
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
