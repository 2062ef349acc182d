//! A message sent again: the client names each message with a
//! `message_id`, and a resend finds the run that answered it instead of
//! starting another. Only a run that was cut short before it could finish
//! ([`ErrorData::CUT_SHORT`]) is run again, for the same stored message; its tool calls carry request
//! ids derived from the message, so board-service writes nothing twice.

use protocol::chat_frames::{ErrorData, FinalMessage};
use uuid::Uuid;

use super::RunResult;
use crate::{
    session::Session,
    store::{RunRecord, Store},
};

/// What is known of a client message before it starts a run.
pub(super) enum Prior {
    /// Never seen.
    New,
    /// Stored, and its last run was cut short: run it again.
    Retry(Uuid),
    InFlight(Uuid),
    /// Answered: the result and its terminal frame's seq.
    Answered(RunResult, Option<u64>),
}

pub(super) async fn prior(
    store: &Store,
    session: &Session,
    client_id: &str,
) -> sqlx::Result<Prior> {
    let Some(message) = store.find_message(session.id(), client_id).await? else {
        return Ok(Prior::New);
    };
    let Some(run) = message.run else {
        return Ok(Prior::Retry(message.id));
    };
    Ok(match run.status.as_str() {
        // On this bridge, or leased by another; a dead bridge's run is
        // reaped within a lease, and its tabs are told.
        "running" => Prior::InFlight(run.id),
        "failed"
            if ErrorData::CUT_SHORT.contains(&run.error_code.as_deref().unwrap_or("internal")) =>
        {
            Prior::Retry(message.id)
        }
        _ => Prior::Answered(stored_result(store, &run).await?, run.terminal_seq),
    })
}

/// A finished run's result, as stored.
pub(super) async fn stored_result(store: &Store, run: &RunRecord) -> sqlx::Result<RunResult> {
    let (content, artifacts) = store.run_reply(run.id).await?;
    let tool_executions = store.run_tool_executions(run.id).await?;
    let (status, error) = match run.status.as_str() {
        "completed" => ("completed", None),
        "cancelled" => ("cancelled", None),
        _ => (
            "failed",
            Some(ErrorData::new(
                run.error_code.clone().unwrap_or_else(|| "internal".into()),
                run.error_message.clone().unwrap_or_default(),
            )),
        ),
    };
    Ok(RunResult {
        run_id: run.id,
        status,
        message: FinalMessage { content, artifacts },
        tool_executions,
        error,
    })
}
