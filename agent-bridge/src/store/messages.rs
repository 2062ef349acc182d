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

impl Store {
    /// Records a new run, leased by `instance` for `lease`.
    pub async fn insert_run(
        &self,
        run_id: Uuid,
        session_id: &str,
        backend: &str,
        instance: Uuid,
        lease: std::time::Duration,
    ) -> sqlx::Result<()> {
        sqlx::query(
            "INSERT INTO chat_runs (id, session_id, backend, status, instance_id, lease_until)
             VALUES ($1, $2, $3, 'running', $4, now() + make_interval(secs => $5))",
        )
        .bind(run_id)
        .bind(session_id)
        .bind(backend)
        .bind(instance)
        .bind(lease.as_secs_f64())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// `status` is `completed`, `failed` or `cancelled`.
    pub async fn finish_run(
        &self,
        run_id: Uuid,
        status: &str,
        error: Option<(&str, &str)>,
    ) -> sqlx::Result<()> {
        sqlx::query(
            "UPDATE chat_runs SET status = $2, error_code = $3, error_message = $4, finished_at = now()
             WHERE id = $1",
        )
        .bind(run_id)
        .bind(status)
        .bind(error.map(|e| e.0))
        .bind(error.map(|e| e.1))
        .execute(self.pool())
        .await?;
        Ok(())
    }

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
