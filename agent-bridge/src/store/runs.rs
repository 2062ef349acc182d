//! Runs as stored: started, leased, finished, and found again by the client
//! message they answer.

use protocol::chat_frames::Artifact;
use sqlx::{Row, types::Json};
use uuid::Uuid;

use super::Store;

/// A run's row, as far as a resent message needs it.
#[derive(Debug, Clone)]
pub struct RunRecord {
    pub id: Uuid,
    /// `running`, `completed`, `failed` or `cancelled`.
    pub status: String,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    /// The seq its terminal frame was published at, once known.
    pub terminal_seq: Option<u64>,
}

/// A client message already stored, and the latest run that answered it.
#[derive(Debug, Clone)]
pub struct PriorMessage {
    pub id: Uuid,
    pub run: Option<RunRecord>,
}

/// What a run added to the AG-UI conversation, saved with its end.
#[derive(Debug, Clone, PartialEq)]
pub struct Transcript {
    pub messages: serde_json::Value,
    /// `messages` is the backend's whole conversation (MESSAGES_SNAPSHOT).
    pub snapshot: bool,
}

impl Store {
    /// Records a new run answering user message `message_id`, leased by
    /// `instance` for `lease`.
    pub async fn insert_run(
        &self,
        run_id: Uuid,
        session_id: &str,
        message_id: Uuid,
        backend: &str,
        lease: (Uuid, std::time::Duration),
    ) -> sqlx::Result<()> {
        insert_run(self.pool(), run_id, session_id, message_id, backend, lease).await
    }

    /// Records `run_id` as the session's one run in flight, unless one is
    /// already `running` (on any bridge, or left by a dead one until it is
    /// reaped): then returns that run and records nothing. The session's row
    /// is locked meanwhile, so bridges claiming at once take turns.
    pub async fn claim_run(
        &self,
        run_id: Uuid,
        session_id: &str,
        message_id: Uuid,
        backend: &str,
        lease: (Uuid, std::time::Duration),
    ) -> sqlx::Result<Option<Uuid>> {
        let mut tx = self.pool().begin().await?;
        sqlx::query("SELECT 1 FROM chat_sessions WHERE id = $1 FOR UPDATE")
            .bind(session_id)
            .execute(&mut *tx)
            .await?;
        let holder: Option<Uuid> = sqlx::query_scalar(
            "SELECT id FROM chat_runs WHERE session_id = $1 AND status = 'running' LIMIT 1",
        )
        .bind(session_id)
        .fetch_optional(&mut *tx)
        .await?;
        if holder.is_some() {
            return Ok(holder);
        }
        insert_run(&mut *tx, run_id, session_id, message_id, backend, lease).await?;
        tx.commit().await?;
        Ok(None)
    }

    /// Points the run at the user message it answers, when another bridge
    /// stored the same client message first.
    pub async fn set_run_message(&self, run_id: Uuid, message_id: Uuid) -> sqlx::Result<()> {
        sqlx::query("UPDATE chat_runs SET message_id = $2 WHERE id = $1")
            .bind(run_id)
            .bind(message_id)
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
        transcript: Option<&Transcript>,
    ) -> sqlx::Result<()> {
        sqlx::query(
            "UPDATE chat_runs SET status = $2, error_code = $3, error_message = $4,
                agui_messages = $5, agui_snapshot = $6, finished_at = now()
             WHERE id = $1",
        )
        .bind(run_id)
        .bind(status)
        .bind(error.map(|e| e.0))
        .bind(error.map(|e| e.1))
        .bind(transcript.map(|t| Json(&t.messages)))
        .bind(transcript.is_some_and(|t| t.snapshot))
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Records the seq the run's terminal frame was published at.
    pub async fn set_terminal_seq(&self, run_id: Uuid, seq: u64) -> sqlx::Result<()> {
        sqlx::query("UPDATE chat_runs SET terminal_seq = $2 WHERE id = $1")
            .bind(run_id)
            .bind(seq as i64)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// The seq of ended run `run_id`'s terminal frame: the one recorded, or
    /// else, once the run has been over for `grace` (its bridge would have
    /// recorded it by then), the session's next seq above every seq any
    /// bridge reserved, recorded now. For a run whose bridge died between
    /// ending it and publishing its frame; bridges settling it at once all
    /// get one seq (the row lock makes the second find it set). `None`: no
    /// such ended run, or it ended too recently.
    pub async fn settle_terminal_seq(
        &self,
        run_id: Uuid,
        grace: std::time::Duration,
    ) -> sqlx::Result<Option<u64>> {
        let claimed: Option<i64> = sqlx::query_scalar(
            "WITH run AS (
                 SELECT id, session_id FROM chat_runs
                 WHERE id = $1 AND status <> 'running' AND terminal_seq IS NULL
                     AND finished_at < now() - make_interval(secs => $2)
                 FOR UPDATE
             ), bumped AS (
                 UPDATE chat_sessions s SET last_seq = s.last_seq + 1, updated_at = now()
                 FROM run WHERE s.id = run.session_id RETURNING s.last_seq
             )
             UPDATE chat_runs r SET terminal_seq = bumped.last_seq
             FROM bumped WHERE r.id = $1 RETURNING r.terminal_seq",
        )
        .bind(run_id)
        .bind(grace.as_secs_f64())
        .fetch_optional(self.pool())
        .await?;
        match claimed {
            Some(seq) => Ok(Some(seq.max(0) as u64)),
            None => Ok(self
                .run(run_id)
                .await?
                .filter(|run| run.status != "running")
                .and_then(|run| run.terminal_seq)),
        }
    }

    /// The runs among `ids` that have ended.
    pub async fn ended_runs(&self, ids: &[Uuid]) -> sqlx::Result<Vec<Uuid>> {
        sqlx::query_scalar("SELECT id FROM chat_runs WHERE id = ANY($1) AND status <> 'running'")
            .bind(ids)
            .fetch_all(self.pool())
            .await
    }

    /// The stored message the client sent as `client_id` on the session,
    /// with its latest run.
    pub async fn find_message(
        &self,
        session_id: &str,
        client_id: &str,
    ) -> sqlx::Result<Option<PriorMessage>> {
        let row = sqlx::query(
            "SELECT m.id AS message_id, r.id, r.status, r.error_code, r.error_message, r.terminal_seq
             FROM chat_messages m
             LEFT JOIN LATERAL (
                SELECT * FROM chat_runs WHERE message_id = m.id
                ORDER BY started_at DESC, id DESC LIMIT 1
             ) r ON true
             WHERE m.session_id = $1 AND m.client_id = $2",
        )
        .bind(session_id)
        .bind(client_id)
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else { return Ok(None) };
        let run = match row.try_get::<Option<Uuid>, _>("id")? {
            None => None,
            Some(_) => Some(record(&row)?),
        };
        Ok(Some(PriorMessage {
            id: row.try_get("message_id")?,
            run,
        }))
    }

    pub async fn run(&self, run_id: Uuid) -> sqlx::Result<Option<RunRecord>> {
        let row = sqlx::query(
            "SELECT id, status, error_code, error_message, terminal_seq FROM chat_runs WHERE id = $1",
        )
        .bind(run_id)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(record).transpose()
    }

    /// The run's final assistant message: (content, artifacts).
    pub async fn run_reply(&self, run_id: Uuid) -> sqlx::Result<(String, Vec<Artifact>)> {
        let row = sqlx::query(
            "SELECT content, artifacts FROM chat_messages
             WHERE run_id = $1 AND role = 'assistant' ORDER BY position DESC LIMIT 1",
        )
        .bind(run_id)
        .fetch_optional(self.pool())
        .await?;
        match row {
            None => Ok(Default::default()),
            Some(row) => Ok((
                row.try_get("content")?,
                row.try_get::<Json<Vec<Artifact>>, _>("artifacts")?.0,
            )),
        }
    }
}

fn record(row: &sqlx::postgres::PgRow) -> sqlx::Result<RunRecord> {
    Ok(RunRecord {
        id: row.try_get("id")?,
        status: row.try_get("status")?,
        error_code: row.try_get("error_code")?,
        error_message: row.try_get("error_message")?,
        terminal_seq: row
            .try_get::<Option<i64>, _>("terminal_seq")?
            .map(|s| s.max(0) as u64),
    })
}

async fn insert_run<'e>(
    executor: impl sqlx::PgExecutor<'e>,
    run_id: Uuid,
    session_id: &str,
    message_id: Uuid,
    backend: &str,
    (instance, lease): (Uuid, std::time::Duration),
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO chat_runs (id, session_id, message_id, backend, status, instance_id, lease_until)
         VALUES ($1, $2, $3, $4, 'running', $5, now() + make_interval(secs => $6))",
    )
    .bind(run_id)
    .bind(session_id)
    .bind(message_id)
    .bind(backend)
    .bind(instance)
    .bind(lease.as_secs_f64())
    .execute(executor)
    .await?;
    Ok(())
}
