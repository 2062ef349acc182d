use sqlx::Row;
use uuid::Uuid;

use super::Store;

/// A session as stored.
#[derive(Debug, Clone)]
pub struct SessionRow {
    pub id: String,
    pub board_id: String,
    /// The `sub` that opened it; `""` when opened with auth off.
    pub owner: String,
    /// Sequence numbers up to this one may have been handed out already.
    pub last_seq: u64,
}

/// A session loaded for use: its row, and the seqs reserved for this bridge.
#[derive(Debug, Clone)]
pub struct LoadedSession {
    pub row: SessionRow,
    /// The next seq handed out is `start_seq + 1`.
    pub start_seq: u64,
    /// Seqs up to here are reserved in PostgreSQL for this load.
    pub reserved: u64,
    /// Terminal frames written for runs whose process died, oldest first:
    /// (run id, message, seq).
    pub interrupted: Vec<(Uuid, String, u64)>,
}

/// Seqs reserved per load or refill: a restarted bridge continues above them.
pub const SEQ_BLOCK: u64 = 1000;

impl Store {
    /// Creates the session if it is new, for `owner`, on `board` or else
    /// `default_board`; an existing session moves to `board` when one is
    /// given. Either way reserves [`SEQ_BLOCK`] seqs above every seq handed
    /// out before. `None` when `enforce_owner` and another owner has it.
    pub async fn load_session(
        &self,
        id: &str,
        board: Option<&str>,
        default_board: &str,
        owner: &str,
        enforce_owner: bool,
    ) -> sqlx::Result<Option<LoadedSession>> {
        let row = sqlx::query(
            "INSERT INTO chat_sessions (id, board_id, owner, last_seq) VALUES ($1, COALESCE($2, $3), $4, $5)
             ON CONFLICT (id) DO UPDATE
                SET board_id = COALESCE($2, chat_sessions.board_id),
                    last_seq = chat_sessions.last_seq + $5,
                    updated_at = now()
                WHERE NOT $6 OR chat_sessions.owner = $4
             RETURNING id, board_id, owner, last_seq",
        )
        .bind(id)
        .bind(board)
        .bind(default_board)
        .bind(owner)
        .bind(SEQ_BLOCK as i64)
        .bind(enforce_owner)
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let row = session_from_row(&row);
        let interrupted = sqlx::query(
            "SELECT id, COALESCE(error_message, ''), terminal_seq FROM chat_runs
             WHERE session_id = $1 AND error_code = 'interrupted' AND terminal_seq IS NOT NULL
             ORDER BY terminal_seq DESC LIMIT 16",
        )
        .bind(id)
        .fetch_all(self.pool())
        .await?
        .iter()
        .rev()
        .map(|r| {
            (
                r.get::<Uuid, _>(0),
                r.get::<String, _>(1),
                r.get::<i64, _>(2).max(0) as u64,
            )
        })
        .collect();
        Ok(Some(LoadedSession {
            start_seq: row.last_seq.saturating_sub(SEQ_BLOCK),
            reserved: row.last_seq,
            row,
            interrupted,
        }))
    }

    pub async fn find_session(&self, id: &str) -> sqlx::Result<Option<SessionRow>> {
        let row =
            sqlx::query("SELECT id, board_id, owner, last_seq FROM chat_sessions WHERE id = $1")
                .bind(id)
                .fetch_optional(self.pool())
                .await?;
        Ok(row.as_ref().map(session_from_row))
    }

    /// Records that seqs up to `seq` may be handed out, so a restarted
    /// bridge continues above them.
    pub async fn save_last_seq(&self, id: &str, seq: u64) -> sqlx::Result<()> {
        sqlx::query(
            "UPDATE chat_sessions SET last_seq = GREATEST(last_seq, $2), updated_at = now()
             WHERE id = $1",
        )
        .bind(id)
        .bind(seq as i64)
        .execute(self.pool())
        .await?;
        Ok(())
    }
}

fn session_from_row(row: &sqlx::postgres::PgRow) -> SessionRow {
    SessionRow {
        id: row.get("id"),
        board_id: row.get("board_id"),
        owner: row.get("owner"),
        last_seq: row.get::<i64, _>("last_seq").max(0) as u64,
    }
}
