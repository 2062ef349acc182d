//! Runs another bridge drove to its end but whose terminal frame never
//! reached this bridge: that bridge died between recording the end in
//! PostgreSQL and publishing the frame, or NATS lost it. PostgreSQL holds
//! the result, so the frame is rebuilt from it and this bridge's tabs (and,
//! through NATS, every other bridge's) get it once.

use std::time::Duration;

use uuid::Uuid;

use super::resend::stored_result;
use crate::{
    session::{Session, Sessions},
    store::Store,
};

/// How long a run must have been over before a bridge that did not drive it
/// numbers its terminal frame: a live bridge publishes and records its own
/// within milliseconds, and two numbers for one frame would show it twice.
const GRACE: Duration = Duration::from_secs(2);

/// Ends `session`'s wait for remote run `run_id` if PostgreSQL says the run
/// ended. Whether this ended the wait (false: still running, or its own
/// frame got here first).
pub async fn settle_remote_run(
    store: &Store,
    session: &Session,
    run_id: Uuid,
) -> sqlx::Result<bool> {
    let Some(record) = store.run(run_id).await? else {
        // Never recorded, so nothing else will ever end it.
        session.forget_remote_run(run_id);
        return Ok(true);
    };
    if record.status == "running" {
        return Ok(false);
    }
    let Some(seq) = store.settle_terminal_seq(run_id, GRACE).await? else {
        return Ok(false);
    };
    let frame = stored_result(store, &record).await?.terminal_frame(0);
    Ok(session.settle_remote_run(run_id, seq, frame))
}

/// [`settle_remote_run`] for every session in memory that waits for a remote
/// run, with one query for all of them.
pub async fn settle_remote_runs(store: &Store, sessions: &Sessions) -> sqlx::Result<usize> {
    let waiting = sessions.waiting_for_remote_runs();
    if waiting.is_empty() {
        return Ok(0);
    }
    let ids: Vec<Uuid> = waiting.iter().map(|(_, run)| *run).collect();
    let ended = store.ended_runs(&ids).await?;
    let mut settled = 0;
    for (session, run) in waiting.iter().filter(|(_, run)| ended.contains(run)) {
        if settle_remote_run(store, session, *run).await? {
            tracing::warn!(session = %session.id(), run = %run, "a run another bridge ended had no terminal frame here; sent it from PostgreSQL");
            settled += 1;
        }
    }
    Ok(settled)
}
