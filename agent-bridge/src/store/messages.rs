use chrono::{DateTime, Utc};
use protocol::chat_frames::Artifact;
use sqlx::{Row, types::Json};
use uuid::Uuid;

use super::Store;

/// One message of a session's history.
#[derive(Debug, Clone)]
pub struct StoredMessage {
    pub id: Uuid,
    pub run_id: Option<Uuid>,
    pub role: String,
    pub content: String,
    pub artifacts: Vec<Artifact>,
    pub created_at: DateTime<Utc>,
}

/// One message of the conversation a run continues.
#[derive(Debug, Clone)]
pub struct ConversationRow {
    pub id: Uuid,
    /// The client's `message_id` of a user message.
    pub client_id: Option<String>,
    pub role: String,
    pub content: String,
    /// On an assistant message: the AG-UI messages its run recorded.
    pub agui_messages: Option<serde_json::Value>,
    /// Whether those are the backend's whole conversation.
    pub agui_snapshot: bool,
}

impl Store {
    pub async fn insert_message(
        &self,
        session_id: &str,
        run_id: Option<Uuid>,
        role: &str,
        content: &str,
        artifacts: &[Artifact],
    ) -> sqlx::Result<Uuid> {
        let id = Uuid::now_v7();
        sqlx::query(
            "INSERT INTO chat_messages (id, session_id, run_id, role, content, artifacts)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(id)
        .bind(session_id)
        .bind(run_id)
        .bind(role)
        .bind(content)
        .bind(Json(artifacts))
        .execute(self.pool())
        .await?;
        Ok(id)
    }

    /// Records the user message `id` of run `run_id`; `client_id` is the
    /// client's `message_id`. Returns the id the message is stored under:
    /// `id`, or that of the same client message stored first (by another
    /// bridge, at the same moment).
    pub async fn insert_user_message(
        &self,
        id: Uuid,
        session_id: &str,
        run_id: Uuid,
        content: &str,
        client_id: Option<&str>,
    ) -> sqlx::Result<Uuid> {
        let stored: Option<Uuid> = sqlx::query_scalar(
            "INSERT INTO chat_messages (id, session_id, run_id, role, content, client_id)
             VALUES ($1, $2, $3, 'user', $4, $5)
             ON CONFLICT (session_id, client_id) WHERE client_id IS NOT NULL DO NOTHING
             RETURNING id",
        )
        .bind(id)
        .bind(session_id)
        .bind(run_id)
        .bind(content)
        .bind(client_id)
        .fetch_optional(self.pool())
        .await?;
        match stored {
            Some(id) => Ok(id),
            None => {
                sqlx::query_scalar(
                    "SELECT id FROM chat_messages WHERE session_id = $1 AND client_id = $2",
                )
                .bind(session_id)
                .bind(client_id)
                .fetch_one(self.pool())
                .await
            }
        }
    }

    /// The last `limit` messages before message `before` (all, when it is
    /// not stored), oldest first, each assistant message with the AG-UI
    /// messages its run recorded.
    pub async fn conversation_before(
        &self,
        session_id: &str,
        before: Uuid,
        limit: i64,
    ) -> sqlx::Result<Vec<ConversationRow>> {
        let rows = sqlx::query(
            "SELECT * FROM (
                SELECT m.position, m.id, m.client_id, m.role, m.content, r.agui_messages,
                       COALESCE(r.agui_snapshot, false) AS agui_snapshot
                FROM chat_messages m
                LEFT JOIN chat_runs r ON r.id = m.run_id AND m.role = 'assistant'
                WHERE m.session_id = $1 AND m.position < COALESCE(
                    (SELECT position FROM chat_messages WHERE id = $2), 9223372036854775807)
                ORDER BY m.position DESC LIMIT $3
             ) last ORDER BY position",
        )
        .bind(session_id)
        .bind(before)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(ConversationRow {
                    id: row.try_get("id")?,
                    client_id: row.try_get("client_id")?,
                    role: row.try_get("role")?,
                    content: row.try_get("content")?,
                    agui_messages: row
                        .try_get::<Option<Json<serde_json::Value>>, _>("agui_messages")?
                        .map(|j| j.0),
                    agui_snapshot: row.try_get("agui_snapshot")?,
                })
            })
            .collect()
    }

    /// The session's last `limit` messages, oldest first.
    pub async fn history(&self, session_id: &str, limit: i64) -> sqlx::Result<Vec<StoredMessage>> {
        let rows = sqlx::query(
            "SELECT * FROM (
                SELECT position, id, run_id, role, content, artifacts, created_at
                FROM chat_messages WHERE session_id = $1 ORDER BY position DESC LIMIT $2
             ) last ORDER BY position",
        )
        .bind(session_id)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(StoredMessage {
                    id: row.try_get("id")?,
                    run_id: row.try_get("run_id")?,
                    role: row.try_get("role")?,
                    content: row.try_get("content")?,
                    artifacts: row.try_get::<Json<Vec<Artifact>>, _>("artifacts")?.0,
                    created_at: row.try_get("created_at")?,
                })
            })
            .collect()
    }
}
