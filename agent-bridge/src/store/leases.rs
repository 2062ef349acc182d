//! Run leases: a bridge vouches for the runs it drives by renewing their
//! lease; a run whose lease ran out belongs to a dead process and is marked
//! interrupted by whichever bridge notices first.

use std::time::Duration;

use sqlx::Row;
use uuid::Uuid;

use super::Store;

/// What a reaped run's tabs are told.
pub const INTERRUPTED_MESSAGE: &str = "The run was interrupted: agent-bridge stopped while it was in progress. Send the message again to retry.";

/// A run marked interrupted, with the seq of its terminal frame.
#[derive(Debug, Clone)]
pub struct Interrupted {
    pub run_id: Uuid,
    pub session_id: String,
    pub message: String,
    pub seq: u64,
}

impl Store {
    /// Extends the lease of every run `instance` still drives.
    pub async fn renew_leases(&self, instance: Uuid, lease: Duration) -> sqlx::Result<u64> {
        let done = sqlx::query(
            "UPDATE chat_runs SET lease_until = now() + make_interval(secs => $2)
             WHERE instance_id = $1 AND status = 'running'",
        )
        .bind(instance)
        .bind(lease.as_secs_f64())
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected())
    }

    /// Marks runs whose lease ran out (or that have none: older builds)
    /// `failed` with `error_code = 'interrupted'`, and gives each the next
    /// seq of its session, above every seq any bridge reserved. One
    /// transaction, with `SKIP LOCKED`: bridges reaping at once share out the
    /// runs and never mark one twice.
    pub async fn reap_interrupted(&self) -> sqlx::Result<Vec<Interrupted>> {
        let mut tx = self.pool().begin().await?;
        let dead = sqlx::query(
            "SELECT id, session_id FROM chat_runs
             WHERE status = 'running' AND (lease_until IS NULL OR lease_until < now())
             ORDER BY started_at LIMIT 100 FOR UPDATE SKIP LOCKED",
        )
        .fetch_all(&mut *tx)
        .await?;
        let mut reaped = Vec::with_capacity(dead.len());
        for row in dead {
            let run_id: Uuid = row.get(0);
            let session_id: String = row.get(1);
            let seq: i64 = sqlx::query_scalar(
                "UPDATE chat_sessions SET last_seq = last_seq + 1, updated_at = now()
                 WHERE id = $1 RETURNING last_seq",
            )
            .bind(&session_id)
            .fetch_one(&mut *tx)
            .await?;
            sqlx::query(
                "UPDATE chat_runs SET status = 'failed', error_code = 'interrupted',
                    error_message = $2, finished_at = now(), terminal_seq = $3
                 WHERE id = $1",
            )
            .bind(run_id)
            .bind(INTERRUPTED_MESSAGE)
            .bind(seq)
            .execute(&mut *tx)
            .await?;
            reaped.push(Interrupted {
                run_id,
                session_id,
                message: INTERRUPTED_MESSAGE.to_owned(),
                seq: seq.max(0) as u64,
            });
        }
        tx.commit().await?;
        Ok(reaped)
    }
}
