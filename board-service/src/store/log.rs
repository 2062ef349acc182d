//! The board event log (`board_events`).

use chrono::Utc;
use prost::Message;
use protocol::v1::BoardEvent;
use sqlx::PgExecutor;
use uuid::Uuid;

use super::{BoardRow, Tx, rows::timestamp};
use crate::error::{Error, Result};

/// The NOTIFY channel: payload `<board_id>:<version>`, sent after commit
/// by [`crate::events::Announcer`].
pub const NOTIFY_CHANNEL: &str = "board_events";

/// Bumps the board's version by one and appends `event` at that version, in
/// one round trip; the commit announces it. Returns the new version.
pub async fn append(tx: &mut Tx, board: &BoardRow, mut event: BoardEvent) -> Result<u64> {
    let version = board.version + 1;
    event.board_id = board.id.to_string();
    event.version = version as u64;
    event.occurred_at = Some(timestamp(Utc::now()));
    // Consumers continue the trace of the call that made the change.
    event.trace_context = service_kit::telemetry::propagation::current_context_map();
    sqlx::query(
        "WITH bump AS (UPDATE boards SET version = $2 WHERE id = $1)
         INSERT INTO board_events (board_id, version, event) VALUES ($1, $2, $3)",
    )
    .bind(board.id)
    .bind(version)
    .bind(event.encode_to_vec())
    .execute(&mut **tx)
    .await?;
    tx.record_append(board.id, version as u64);
    Ok(version as u64)
}

/// Up to `limit` events of `board_id` after `after`, in version order.
pub async fn read_after(
    db: impl PgExecutor<'_>,
    board_id: Uuid,
    after: u64,
    limit: i64,
) -> Result<Vec<BoardEvent>> {
    let rows: Vec<(Vec<u8>,)> = sqlx::query_as(
        "SELECT event FROM board_events WHERE board_id = $1 AND version > $2
         ORDER BY version LIMIT $3",
    )
    .bind(board_id)
    .bind(after as i64)
    .bind(limit)
    .fetch_all(db)
    .await?;
    rows.into_iter()
        .map(|(bytes,)| {
            BoardEvent::decode(bytes.as_slice())
                .map_err(|e| Error::Internal(format!("corrupt event in board_events: {e}")))
        })
        .collect()
}

/// The board's current version and the oldest version its log still holds.
pub async fn bounds(db: impl PgExecutor<'_>, board_id: Uuid) -> Result<Option<(u64, Option<u64>)>> {
    let row: Option<(i64, Option<i64>)> = sqlx::query_as(
        "SELECT b.version, (SELECT min(version) FROM board_events WHERE board_id = b.id)
         FROM boards b WHERE b.id = $1",
    )
    .bind(board_id)
    .fetch_optional(db)
    .await?;
    Ok(row.map(|(current, oldest)| (current as u64, oldest.map(|v| v as u64))))
}

/// Deletes events older than the newest `keep` of each board. With
/// `keep_unrelayed` (the NATS relay is on), events not yet relayed to NATS
/// (past `board_relay.relayed_version`, or all of a board never relayed) are
/// kept too, so a long NATS outage cannot make the relay skip any. Returns
/// how many were deleted.
pub async fn trim(db: impl PgExecutor<'_>, keep: u64, keep_unrelayed: bool) -> Result<u64> {
    let done = sqlx::query(
        "DELETE FROM board_events e USING boards b
         WHERE e.board_id = b.id AND e.version <= b.version - $1
           AND (NOT $2 OR e.version <= COALESCE(
                (SELECT r.relayed_version FROM board_relay r WHERE r.board_id = b.id), 0))",
    )
    .bind(keep as i64)
    .bind(keep_unrelayed)
    .execute(db)
    .await?;
    Ok(done.rows_affected())
}
