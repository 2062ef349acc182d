//! Board feeds from JetStream (with `NATS_URL`): one ordered consumer per
//! board on `boardwire.boards.<id>` instead of one WatchBoard per board, so
//! board-service serves N gateways at the cost of one relay.
//!
//! The consumer starts at the subject's last message, not at a version:
//! JetStream has no index by board version. What the feed lacks before that
//! message (its snapshot was older) is a gap, and gaps are filled from
//! board-service's log, which stays the source of truth for anything older
//! than the stream keeps. Events the feed already has are skipped, so the
//! relay lagging behind the snapshot, a re-delivery after a consumer reset,
//! or a switch between the two sources loses and repeats nothing.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use async_nats::jetstream::{
    self,
    consumer::{DeliverPolicy, pull::OrderedConfig},
};
use futures::{FutureExt, StreamExt};
use prost::Message as _;
use protocol::v1::BoardEvent;
use service_kit::board_stream;
use tokio::sync::OnceCell;

use super::{
    Feed,
    watch::{Ended, watch},
};
use crate::{metrics::Metrics, upstream::Upstream};

/// Events published together at most.
const BATCH: usize = 64;
/// How long NATS may stay disconnected (or the relay silent) before feeds
/// fall back to WatchBoard.
const OUTAGE_GRACE: Duration = Duration::from_secs(3);
const STATE_CHECK: Duration = Duration::from_secs(1);

/// This gateway's connection to the board stream.
pub struct BoardStream {
    client: async_nats::Client,
    context: jetstream::Context,
    /// Opened (created if board-service has not yet) on first use.
    stream: OnceCell<jetstream::stream::Stream>,
    /// When the relay's last heartbeat arrived, in ms after `started`
    /// (0: none yet).
    last_beat: Arc<AtomicU64>,
    started: Instant,
}

impl BoardStream {
    /// Connects in the background: the gateway starts while NATS is down,
    /// its feeds on WatchBoard until NATS answers.
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        let (client, context) = board_stream::connect_in_background(url, "ws-gateway").await?;
        let started = Instant::now();
        let last_beat = Arc::new(AtomicU64::new(0));
        let mut beats = client
            .subscribe(board_stream::RELAY_HEARTBEAT)
            .await
            .map_err(|e| anyhow::anyhow!("subscribe to the relay heartbeat: {e}"))?;
        let heard = last_beat.clone();
        tokio::spawn(async move {
            while beats.next().await.is_some() {
                let ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
                heard.store(ms.max(1), Ordering::Relaxed);
            }
        });
        Ok(Self {
            client,
            context,
            stream: OnceCell::new(),
            last_beat,
            started,
        })
    }

    /// The NATS connection, shared with presence.
    pub fn client(&self) -> &async_nats::Client {
        &self.client
    }

    /// Connected, and a relay is feeding the stream.
    pub(crate) fn usable(&self) -> bool {
        let connected = self.client.connection_state() == async_nats::connection::State::Connected;
        let beat = self.last_beat.load(Ordering::Relaxed);
        let now = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let stale =
            u64::try_from(board_stream::RELAY_HEARTBEAT_STALE.as_millis()).unwrap_or(u64::MAX);
        connected && beat != 0 && now.saturating_sub(beat) < stale
    }

    /// [`Self::usable`], waiting for a first heartbeat while this gateway
    /// is younger than the staleness limit (it may simply not have heard
    /// one yet).
    pub(crate) async fn usable_soon(&self) -> bool {
        while !self.usable() && self.started.elapsed() < board_stream::RELAY_HEARTBEAT_STALE {
            if self.last_beat.load(Ordering::Relaxed) != 0 {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.usable()
    }

    async fn stream(&self) -> anyhow::Result<&jetstream::stream::Stream> {
        self.stream
            .get_or_try_init(|| board_stream::ensure(&self.context))
            .await
    }
}

/// Follows the feed's board on JetStream until it ends; `Unavailable` when
/// JetStream cannot serve it now.
pub(super) async fn follow(
    nats: &BoardStream,
    upstream: &Upstream,
    metrics: &Metrics,
    feed: &Arc<Feed>,
    backoff: &mut Duration,
) -> Ended {
    if !nats.usable_soon().await {
        return Ended::Unavailable;
    }
    let stream = match nats.stream().await {
        Ok(stream) => stream,
        Err(err) => {
            tracing::warn!(board = %feed.board_id, error = %format!("{err:#}"), "cannot open the board stream");
            return Ended::Unavailable;
        }
    };
    let consumer = stream
        .create_consumer(OrderedConfig {
            filter_subject: board_stream::subject(&feed.board_id),
            deliver_policy: DeliverPolicy::LastPerSubject,
            ..Default::default()
        })
        .await;
    let mut messages = match consumer {
        Ok(consumer) => match consumer.messages().await {
            Ok(messages) => messages,
            Err(err) => {
                tracing::warn!(board = %feed.board_id, %err, "cannot read the board stream");
                return Ended::Unavailable;
            }
        },
        Err(err) => {
            tracing::warn!(board = %feed.board_id, %err, "cannot create a board stream consumer");
            return Ended::Unavailable;
        }
    };
    let mut state_check = tokio::time::interval(STATE_CHECK);
    let mut down_since: Option<tokio::time::Instant> = None;
    loop {
        let first = tokio::select! {
            next = messages.next() => next,
            _ = state_check.tick() => {
                // The ordered consumer retries for ever while NATS is away,
                // and a stream nobody relays to stays quiet for ever; the
                // feed must not wait that long.
                if nats.usable() {
                    down_since = None;
                } else if down_since.get_or_insert_with(tokio::time::Instant::now).elapsed() >= OUTAGE_GRACE {
                    return Ended::Unavailable;
                }
                continue;
            }
        };
        // Messages already here go out together, as in `watch`.
        let mut batch = Vec::new();
        let mut ended = None;
        let mut next = Some(first);
        while let Some(item) = next.take() {
            match item {
                Some(Ok(message)) => match BoardEvent::decode(message.payload.as_ref()) {
                    Ok(event) => batch.push(event),
                    // Left out, it is a gap, filled from the log below.
                    Err(err) => tracing::error!(board = %feed.board_id, %err,
                        subject = %message.subject, "undecodable board event on the stream"),
                },
                Some(Err(err)) => {
                    tracing::warn!(board = %feed.board_id, %err, "board stream failed");
                    ended = Some(Ended::Unavailable);
                }
                None => ended = Some(Ended::Unavailable),
            }
            if ended.is_none() && batch.len() < BATCH {
                next = messages.next().now_or_never();
            }
        }
        metrics.jetstream_events.inc_by(batch.len() as u64);
        if let Err(ended) = publish(upstream, metrics, feed, batch, backoff).await {
            return ended;
        }
        if let Some(ended) = ended {
            return ended;
        }
    }
}

/// Publishes `events` in order, filling each gap before them from
/// board-service's log first.
async fn publish(
    upstream: &Upstream,
    metrics: &Metrics,
    feed: &Arc<Feed>,
    events: Vec<BoardEvent>,
    backoff: &mut Duration,
) -> Result<(), Ended> {
    let mut run: Vec<BoardEvent> = Vec::with_capacity(events.len());
    for event in events {
        let next = run.last().map_or_else(|| feed.version(), |e| e.version) + 1;
        if event.version < next {
            continue;
        }
        if event.version > next {
            publish_run(feed, &run)?;
            run.clear();
            metrics.jetstream_catchups.inc();
            match watch(
                upstream,
                feed,
                feed.version(),
                backoff,
                Some(event.version - 1),
            )
            .await
            {
                Ended::CaughtUp => {}
                other => return Err(other),
            }
            if event.version <= feed.version() {
                continue;
            }
        }
        run.push(event);
    }
    publish_run(feed, &run)
}

fn publish_run(feed: &Arc<Feed>, run: &[BoardEvent]) -> Result<(), Ended> {
    if run.is_empty() || feed.publish(run, |event| super::watch::deliver_span(feed, event)) {
        Ok(())
    } else {
        Err(Ended::Resync)
    }
}
