use sqlx::Row;

use super::Store;

/// A session as stored.
#[derive(Debug, Clone)]
pub struct SessionRow {
    pub id: String,
    pub board_id: String,
    pub last_seq: u64,
}

impl Store {
    /// Creates the session if it is new, on `board` or else `default_board`;
    /// an existing session moves to `board` when one is given.
    pub async fn ensure_session(
        &self,
        id: &str,
        board: Option<&str>,
        default_board: &str,
    ) -> sqlx::Result<SessionRow> {
        let row = sqlx::query(
            "INSERT INTO chat_sessions (id, board_id) VALUES ($1, COALESCE($2, $3))
             ON CONFLICT (id) DO UPDATE
                SET board_id = COALESCE($2, chat_sessions.board_id), updated_at = now()
             RETURNING id, board_id, last_seq",
        )
        .bind(id)
        .bind(board)
        .bind(default_board)
        .fetch_one(self.pool())
        .await?;
        Ok(session_from_row(&row))
    }

    pub async fn find_session(&self, id: &str) -> sqlx::Result<Option<SessionRow>> {
        let row = sqlx::query("SELECT id, board_id, last_seq FROM chat_sessions WHERE id = $1")
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        Ok(row.as_ref().map(session_from_row))
    }

    /// Records the last sequence number handed out, so a restarted bridge
    /// continues after it.
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
        last_seq: row.get::<i64, _>("last_seq").max(0) as u64,
    }
}
