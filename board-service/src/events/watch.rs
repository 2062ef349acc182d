//! One `WatchBoard` stream: the log after the client's version, then live
//! events, in version order with no gap and no duplicate.

use protocol::{event_type, v1::BoardEvent};
use sqlx::PgPool;
use tokio::sync::{broadcast::error::RecvError, mpsc};
use tonic::Status;
use uuid::Uuid;

use super::EventHub;
use crate::store::log;

type Outbox = mpsc::Sender<Result<BoardEvent, Status>>;

/// Rows read from the log per query while catching up.
const CATCH_UP_BATCH: i64 = 500;
/// Failed log reads retried mid-stream before the stream ends with
/// `UNAVAILABLE`: a database that drops its connections (a restart, a
/// failover, `pg_terminate_backend`) leaves dead ones in the pool, and the
/// first read on one fails although the next succeeds.
const READ_RETRIES: u32 = 5;

/// Why a watch stream ended early.
enum End {
    /// The client went away or the service is shutting down.
    Gone,
    /// The stream was ended with a final message (resync or error).
    Closed,
}

/// Streams `board_id`'s events after `after` into `out` until the client
/// leaves or the service shuts down.
pub async fn run(pool: PgPool, hub: EventHub, board_id: Uuid, after: u64, out: Outbox) {
    let shutdown = hub.shutdown_token().clone();
    let bounds = match log::bounds(&pool, board_id).await {
        Ok(Some(bounds)) => bounds,
        Ok(None) => {
            let _ = out
                .send(Err(Status::not_found(format!(
                    "board {board_id} not found"
                ))))
                .await;
            return;
        }
        Err(err) => {
            let _ = out.send(Err(err.into())).await;
            return;
        }
    };
    let (current, oldest) = bounds;
    // Subscribe before reading the log: anything committed from here on is
    // either in the log read below or arrives on `live`.
    let mut live = hub.subscribe(board_id, current);
    let replayable =
        after == current || (after < current && oldest.is_some_and(|o| after + 1 >= o));
    if !replayable {
        let _ = out.send(Ok(resync(board_id, current))).await;
        return;
    }

    let mut last = after;
    if catch_up(&pool, board_id, &mut last, &out).await.is_err() {
        return;
    }
    loop {
        let received = tokio::select! {
            received = live.recv() => received,
            () = out.closed() => return,
            () = shutdown.cancelled() => return,
        };
        match received {
            Ok(event) if event.version <= last => {}
            Ok(event) if event.version == last + 1 => {
                if out.send(Ok((*event).clone())).await.is_err() {
                    return;
                }
                last = event.version;
            }
            // A gap (the feed started after our catch-up) or we fell behind
            // the feed's buffer: the log has everything.
            Ok(_) | Err(RecvError::Lagged(_)) => {
                if catch_up(&pool, board_id, &mut last, &out).await.is_err() {
                    return;
                }
            }
            Err(RecvError::Closed) => return,
        }
    }
}

/// Sends every logged event after `last`, advancing it.
async fn catch_up(pool: &PgPool, board_id: Uuid, last: &mut u64, out: &Outbox) -> Result<(), End> {
    loop {
        let batch = match read_after(pool, board_id, *last, out).await {
            Ok(batch) => batch,
            Err(err) => {
                let _ = out.send(Err(Status::from(err))).await;
                return Err(End::Closed);
            }
        };
        let done = (batch.len() as i64) < CATCH_UP_BATCH;
        for event in batch {
            if event.version != *last + 1 {
                // Trimmed away while we were behind: the client must resync.
                let current = log::bounds(pool, board_id)
                    .await
                    .ok()
                    .flatten()
                    .map_or(event.version, |(v, _)| v);
                let _ = out.send(Ok(resync(board_id, current))).await;
                return Err(End::Closed);
            }
            *last = event.version;
            if out.send(Ok(event)).await.is_err() {
                return Err(End::Gone);
            }
        }
        if done {
            return Ok(());
        }
    }
}

fn resync(board_id: Uuid, current: u64) -> BoardEvent {
    BoardEvent {
        board_id: board_id.to_string(),
        version: current,
        r#type: event_type::BOARD_RESYNC.into(),
        ..Default::default()
    }
}

/// [`log::read_after`], retried [`READ_RETRIES`] times with a growing pause
/// while the client is still there.
async fn read_after(
    pool: &PgPool,
    board_id: Uuid,
    last: u64,
    out: &Outbox,
) -> crate::error::Result<Vec<BoardEvent>> {
    let mut failures = 0;
    loop {
        match log::read_after(pool, board_id, last, CATCH_UP_BATCH).await {
            Ok(batch) => return Ok(batch),
            Err(err) if failures < READ_RETRIES && !out.is_closed() => {
                failures += 1;
                tracing::warn!(%board_id, error = %err, failures, "cannot read board events for a watcher; retrying");
                tokio::time::sleep(std::time::Duration::from_millis(100 * u64::from(failures)))
                    .await;
            }
            Err(err) => return Err(err),
        }
    }
}
