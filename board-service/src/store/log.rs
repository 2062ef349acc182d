//! The board event log (`board_events`).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use prost::Message;
use protocol::v1::BoardEvent;
use sqlx::PgExecutor;
use uuid::Uuid;

use super::{BoardRow, TaskRow, Tx, rows::timestamp};
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
    let rows: Vec<LoggedEvent> = sqlx::query_as(&format!(
        "SELECT {LOGGED_COLUMNS} FROM board_events WHERE board_id = $1 AND version > $2
         ORDER BY version LIMIT $3"
    ))
    .bind(board_id)
    .bind(after as i64)
    .bind(limit)
    .fetch_all(db)
    .await?;
    rows.into_iter().map(|row| row.decode(board_id)).collect()
}

/// The columns of a [`LoggedEvent`].
pub const LOGGED_COLUMNS: &str = "version, event, change::text AS change";

/// A row of `board_events` in either of its forms: `event`, a BoardEvent
/// encoded here, or `change`, the JSON the database's own task writes
/// append (`boardwire_finish_task_write`).
#[derive(sqlx::FromRow)]
pub struct LoggedEvent {
    pub version: i64,
    event: Option<Vec<u8>>,
    change: Option<String>,
}

impl LoggedEvent {
    /// The event encoded, as NATS carries it.
    pub fn encoded(self, board_id: Uuid) -> Result<Vec<u8>> {
        match self.event {
            Some(bytes) => Ok(bytes),
            None => Ok(self.decode(board_id)?.encode_to_vec()),
        }
    }

    pub fn decode(self, board_id: Uuid) -> Result<BoardEvent> {
        let corrupt = |e: &dyn std::fmt::Display| {
            Error::Internal(format!(
                "corrupt event {board_id}:{} in board_events: {e}",
                self.version
            ))
        };
        match (&self.event, &self.change) {
            (Some(bytes), _) => BoardEvent::decode(bytes.as_slice()).map_err(|e| corrupt(&e)),
            (None, Some(json)) => {
                let change: Change = serde_json::from_str(json).map_err(|e| corrupt(&e))?;
                Ok(change.into_event(board_id, self.version as u64))
            }
            (None, None) => Err(corrupt(&"neither form is set")),
        }
    }
}

/// An event as `board_events.change` holds it; its board and version are
/// the row's. Field names are BoardEvent's.
#[derive(serde::Deserialize)]
struct Change {
    r#type: String,
    #[serde(default)]
    request_id: String,
    task: Option<TaskRow>,
    #[serde(default)]
    from_lane_id: String,
    #[serde(default)]
    from_lane_key: String,
    #[serde(default)]
    to_lane_id: String,
    #[serde(default)]
    to_lane_key: String,
    #[serde(default)]
    changed_fields: Vec<String>,
    occurred_at: DateTime<Utc>,
    #[serde(default)]
    trace_context: HashMap<String, String>,
}

impl Change {
    fn into_event(self, board_id: Uuid, version: u64) -> BoardEvent {
        BoardEvent {
            board_id: board_id.to_string(),
            version,
            r#type: self.r#type,
            occurred_at: Some(timestamp(self.occurred_at)),
            request_id: self.request_id,
            task: self.task.as_ref().map(TaskRow::to_proto),
            from_lane_id: self.from_lane_id,
            to_lane_id: self.to_lane_id,
            from_lane_key: self.from_lane_key,
            to_lane_key: self.to_lane_key,
            changed_fields: self.changed_fields,
            trace_context: self.trace_context,
            ..Default::default()
        }
    }
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
