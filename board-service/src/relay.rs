//! The NATS relay (on when `NATS_URL` is set): committed events in the
//! `board_events` outbox are published to the JetStream stream
//! [`board_stream::STREAM`], on subject `boardwire.boards.<board_id>`, with the protobuf
//! bytes exactly as stored and `Nats-Msg-Id: <board_id>:<version>`, so
//! JetStream drops re-sends within its duplicate window.
//!
//! - One relayer at a time across replicas: the one holding the session
//!   advisory lock [`LOCK_KEY`] on a connection of its own. The others try
//!   again every second; a relayer whose lock connection fails stops.
//! - Per board, in version order: a batch is sent back to back, and
//!   `board_relay.relayed_version` advances only over the acknowledged
//!   prefix. A restart re-sends at most the unrecorded
//!   tail, which JetStream de-duplicates.
//! - Woken by the `board_events` NOTIFY, and every second regardless.
//! - NATS down or restarting: the pass fails, and is retried with backoff
//!   from the recorded position; nothing is skipped.

use std::time::{Duration, Instant};

use async_nats::jetstream::{self, message::PublishMessage};
use service_kit::board_stream;
use sqlx::{Connection, PgConnection, PgPool, postgres::PgListener};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::{
    metrics::Metrics,
    store::log::{LOGGED_COLUMNS, LoggedEvent, NOTIFY_CHANNEL},
};

/// The `pg_advisory_lock` key the relayer holds ("bwrelay").
pub const LOCK_KEY: i64 = 0x0062_7772_656c_6179;

/// How often standbys try the lock and the relayer re-checks for events.
const RECHECK: Duration = Duration::from_secs(1);
/// Events read from the log per query.
const BATCH: i64 = 256;
/// Longest wait for one JetStream acknowledgement.
const ACK_TIMEOUT: Duration = service_kit::board_stream::REQUEST_TIMEOUT;
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Relays until `stop`.
pub fn spawn(
    pool: PgPool,
    nats_url: String,
    metrics: Metrics,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let relay = Relay {
            pool,
            nats_url,
            metrics,
            stop,
        };
        relay.run().await;
    })
}

struct Relay {
    pool: PgPool,
    nats_url: String,
    metrics: Metrics,
    stop: CancellationToken,
}

impl Relay {
    async fn run(&self) {
        loop {
            let Some(lock) = self.acquire_lock().await else {
                return;
            };
            tracing::info!("holding the relay lock: relaying board events to NATS");
            self.metrics.set_relay_leader(true);
            let outcome = self.lead(lock).await;
            self.metrics.set_relay_leader(false);
            if self.stop.is_cancelled() {
                return;
            }
            if let Err(err) = outcome {
                tracing::warn!(error = %format!("{err:#}"), "stopped relaying to NATS");
            }
            if !self.pause(RECHECK).await {
                return;
            }
        }
    }

    /// Sleeps unless stopped first; false when stopped.
    async fn pause(&self, period: Duration) -> bool {
        tokio::select! {
            () = self.stop.cancelled() => false,
            () = tokio::time::sleep(period) => true,
        }
    }

    /// A connection holding the relay lock, or `None` once stopped.
    async fn acquire_lock(&self) -> Option<PgConnection> {
        let mut conn: Option<PgConnection> = None;
        loop {
            if self.stop.is_cancelled() {
                return None;
            }
            if conn.is_none() {
                match PgConnection::connect_with(&self.pool.connect_options()).await {
                    Ok(c) => conn = Some(c),
                    Err(err) => tracing::warn!(%err, "relay: cannot connect for the lock"),
                }
            }
            if let Some(c) = conn.as_mut() {
                let locked = sqlx::query_scalar::<_, bool>("SELECT pg_try_advisory_lock($1)")
                    .bind(LOCK_KEY)
                    .fetch_one(&mut *c)
                    .await;
                match locked {
                    Ok(true) => return conn,
                    Ok(false) => {}
                    Err(err) => {
                        tracing::warn!(%err, "relay: lock query failed");
                        conn = None;
                    }
                }
            }
            if !self.pause(RECHECK).await {
                return None;
            }
        }
    }

    /// Relays while `lock` is alive; returns `Ok` when stopped.
    async fn lead(&self, mut lock: PgConnection) -> anyhow::Result<()> {
        let mut listener: Option<PgListener> = None;
        let mut nats: Option<jetstream::Context> = None;
        let mut stream_ready = false;
        let mut backoff = Duration::from_millis(100);
        let mut last_beat: Option<Instant> = None;
        loop {
            if self.stop.is_cancelled() {
                return Ok(());
            }
            tokio::time::timeout(ACK_TIMEOUT, sqlx::query("SELECT 1").execute(&mut lock))
                .await
                .map_err(|_| anyhow::anyhow!("the lock connection does not answer"))?
                .map_err(|e| anyhow::anyhow!("the lock connection failed: {e}"))?;
            if listener.is_none() {
                listener = self.listen().await;
            }
            if let Err(err) = self.pass(&mut nats, &mut stream_ready).await {
                tracing::warn!(error = %format!("{err:#}"), retry_in = ?backoff,
                    "relay pass failed; retrying from the recorded position");
                stream_ready = false;
                if !self.pause(backoff).await {
                    return Ok(());
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
            backoff = Duration::from_millis(100);
            if last_beat.is_none_or(|at| at.elapsed() >= board_stream::RELAY_HEARTBEAT_EVERY) {
                match self.jetstream(&mut nats, &mut stream_ready).await {
                    Ok(js) => {
                        // Core NATS, unacknowledged: a lost beat only
                        // costs gateways a fallback to WatchBoard.
                        let _ = js
                            .client()
                            .publish(board_stream::RELAY_HEARTBEAT, Default::default())
                            .await;
                        last_beat = Some(Instant::now());
                    }
                    Err(err) => {
                        tracing::debug!(error = %format!("{err:#}"), "no NATS for the relay heartbeat")
                    }
                }
            }
            let notified = async {
                match listener.as_mut() {
                    Some(l) => l.recv().await.is_ok(),
                    None => std::future::pending().await,
                }
            };
            let listener_ok = tokio::select! {
                () = self.stop.cancelled() => return Ok(()),
                () = tokio::time::sleep(RECHECK) => true,
                ok = notified => ok,
            };
            if !listener_ok {
                listener = None;
            }
        }
    }

    async fn listen(&self) -> Option<PgListener> {
        let mut listener = PgListener::connect_with(&self.pool).await.ok()?;
        listener.listen(NOTIFY_CHANNEL).await.ok()?;
        Some(listener)
    }

    /// Connects to NATS (once; the client reconnects by itself) and makes
    /// sure the stream exists with our settings.
    async fn jetstream<'a>(
        &self,
        nats: &'a mut Option<jetstream::Context>,
        stream_ready: &mut bool,
    ) -> anyhow::Result<&'a jetstream::Context> {
        if nats.is_none() {
            *nats = Some(board_stream::connect(&self.nats_url, "board-service relay").await?);
        }
        let Some(context) = nats.as_ref() else {
            anyhow::bail!("no NATS connection");
        };
        if !*stream_ready {
            board_stream::ensure(context).await?;
            *stream_ready = true;
        }
        Ok(context)
    }

    /// Publishes every board's unrelayed events.
    async fn pass(
        &self,
        nats: &mut Option<jetstream::Context>,
        stream_ready: &mut bool,
    ) -> anyhow::Result<()> {
        let pending: Vec<(Uuid, i64)> = sqlx::query_as(
            "SELECT b.id, COALESCE(r.relayed_version, 0) FROM boards b
             LEFT JOIN board_relay r ON r.board_id = b.id
             WHERE b.version > COALESCE(r.relayed_version, 0)
             ORDER BY b.id",
        )
        .fetch_all(&self.pool)
        .await?;
        if pending.is_empty() {
            return Ok(());
        }
        let js = self.jetstream(nats, stream_ready).await?;
        for (board_id, relayed) in pending {
            self.relay_board(js, board_id, relayed).await?;
            if self.stop.is_cancelled() {
                return Ok(());
            }
        }
        Ok(())
    }

    /// Publishes `board_id`'s events after `relayed`, in order, recording
    /// progress after each batch (and before returning an error).
    async fn relay_board(
        &self,
        js: &jetstream::Context,
        board_id: Uuid,
        mut relayed: i64,
    ) -> anyhow::Result<()> {
        loop {
            let rows: Vec<LoggedEvent> = sqlx::query_as(&format!(
                "SELECT {LOGGED_COLUMNS} FROM board_events WHERE board_id = $1 AND version > $2
                 ORDER BY version LIMIT $3"
            ))
            .bind(board_id)
            .bind(relayed)
            .bind(BATCH)
            .fetch_all(&self.pool)
            .await?;
            let Some(first) = rows.first().map(|row| row.version) else {
                return Ok(());
            };
            if first != relayed + 1 {
                // Only when the log was trimmed past what was relayed.
                tracing::error!(%board_id, relayed, first,
                    "events were trimmed from the log before they were relayed to NATS");
            }
            let full = rows.len() as i64 == BATCH;
            let mut acked = relayed;
            // Sent back to back and acknowledged in order: one round trip
            // per batch, not per event. A failure stops `acked` at the
            // last event before it; anything after it that did get stored
            // is de-duplicated when the retry re-sends it.
            let published = async {
                let mut pending = Vec::with_capacity(rows.len());
                for row in rows {
                    if self.stop.is_cancelled() {
                        break;
                    }
                    let version = row.version;
                    let event = row.encoded(board_id)?;
                    pending.push((version, send(js, board_id, version, event).await?));
                }
                for (version, ack) in pending {
                    confirm(board_id, version, ack).await?;
                    acked = version;
                }
                anyhow::Ok(())
            }
            .await;
            if acked > relayed {
                record(&self.pool, board_id, acked).await?;
                self.metrics.events_relayed((acked - relayed) as u64);
                relayed = acked;
            }
            published?;
            if !full || self.stop.is_cancelled() {
                return Ok(());
            }
        }
    }
}

/// Sends one event; its acknowledgement is awaited by [`confirm`].
async fn send(
    js: &jetstream::Context,
    board_id: Uuid,
    version: i64,
    event: Vec<u8>,
) -> anyhow::Result<jetstream::context::PublishAckFuture> {
    let id = board_stream::message_id(board_id, version as u64);
    js.send_publish(
        board_stream::subject(board_id),
        PublishMessage::build()
            .payload(event.into())
            .message_id(&id),
    )
    .await
    .map_err(|e| anyhow::anyhow!("publish {id}: {e}"))
}

/// Waits for JetStream's acknowledgement of one sent event.
async fn confirm(
    board_id: Uuid,
    version: i64,
    ack: jetstream::context::PublishAckFuture,
) -> anyhow::Result<()> {
    let id = board_stream::message_id(board_id, version as u64);
    tokio::time::timeout(ACK_TIMEOUT, ack)
        .await
        .map_err(|_| anyhow::anyhow!("no acknowledgement for {id} within {ACK_TIMEOUT:?}"))?
        .map_err(|e| anyhow::anyhow!("acknowledgement for {id}: {e}"))?;
    Ok(())
}

/// Advances the board's relayed version (never backwards).
async fn record(pool: &PgPool, board_id: Uuid, version: i64) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO board_relay (board_id, relayed_version) VALUES ($1, $2)
         ON CONFLICT (board_id) DO UPDATE
         SET relayed_version = GREATEST(board_relay.relayed_version, EXCLUDED.relayed_version)",
    )
    .bind(board_id)
    .bind(version)
    .execute(pool)
    .await?;
    Ok(())
}
