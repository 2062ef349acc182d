//! The end of a run: its one terminal frame, its records, and the guard that
//! ends it if its task dies.

use std::sync::Arc;

use protocol::chat_frames::{ErrorData, FinalMessage, RunStatus, ServerFrame, StatusData};
use uuid::Uuid;

use super::{RunOutput, RunResult};
use crate::agent::output::AgentOutput;
use crate::{
    agent::{AgentError, Outcome},
    session::Session,
    store::Store,
};

/// Records the run's end and publishes its one terminal frame.
pub(super) async fn finish(
    store: &Store,
    session: &Session,
    run_id: Uuid,
    mut out: RunOutput,
    ended: Result<Outcome, ErrorData>,
) -> RunResult {
    if ended == Ok(Outcome::Cancelled) {
        out.close_unfinished("the run was cancelled", "cancelled")
            .await;
    }
    let message = FinalMessage {
        content: out.text().to_owned(),
        artifacts: out.artifacts(),
    };
    let (status, error) = match &ended {
        Ok(Outcome::Finished) => ("completed", None),
        Ok(Outcome::Cancelled) => ("cancelled", None),
        Err(error) => ("failed", Some(error.clone())),
    };
    // Persist before publishing, so whoever sees the terminal frame finds
    // the run in the history.
    if status == "completed" || !message.content.is_empty() {
        save(
            store
                .insert_message(
                    session.id(),
                    Some(run_id),
                    "assistant",
                    &message.content,
                    &message.artifacts,
                )
                .await,
        );
    }
    let error_pair = error
        .as_ref()
        .map(|e| (e.code.as_str(), e.message.as_str()));
    let transcript = out.take_transcript().finish();
    save(
        store
            .finish_run(run_id, status, error_pair, transcript.as_ref())
            .await,
    );
    let result = RunResult {
        run_id,
        status,
        message,
        tool_executions: out.tools().to_vec(),
        error,
    };
    // Counted before the terminal frame goes out, so whoever sees it sees
    // the count too.
    crate::metrics::METRICS.run_ended(status);
    // Its seq is recorded so a resend of the message can be answered with
    // this very frame, which tabs that saw it drop.
    if let Some(seq) = session.publish_terminal(run_id, result.terminal_frame(0)) {
        save(store.set_terminal_seq(run_id, seq).await);
    }
    tracing::info!(status, "run ended");
    result
}

impl RunResult {
    /// The run's one terminal frame: the answer, `status: cancelled`, or
    /// the error.
    pub fn terminal_frame(&self, seq: u64) -> ServerFrame {
        let run_key = Some(self.run_id.to_string());
        match (&self.error, self.status) {
            (Some(error), _) => ServerFrame::Error {
                seq,
                run_id: run_key,
                data: error.clone(),
            },
            (None, "cancelled") => ServerFrame::Status {
                seq,
                run_id: run_key.clone(),
                data: StatusData {
                    status: RunStatus::Cancelled,
                    message: "Run cancelled".into(),
                    run_id: run_key,
                },
            },
            (None, _) => ServerFrame::Message {
                seq,
                run_id: run_key,
                data: self.message.clone(),
            },
        }
    }
}

/// Ends the run with an `internal` error if its task stops without a
/// terminal frame (a panic), so the session does not stay busy forever.
pub(super) struct EndsRun {
    pub(super) session: Arc<Session>,
    pub(super) store: Store,
    pub(super) run_id: Uuid,
}

impl Drop for EndsRun {
    fn drop(&mut self) {
        let frame = ServerFrame::Error {
            seq: 0,
            run_id: Some(self.run_id.to_string()),
            data: ErrorData::new("internal", "internal error"),
        };
        // A no-op when the run already published its terminal frame.
        if self.session.publish_terminal(self.run_id, frame).is_some() {
            tracing::error!(run = %self.run_id, "run stopped without a terminal frame");
            crate::metrics::METRICS.run_ended("failed");
            let (store, run_id) = (self.store.clone(), self.run_id);
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(async move {
                    save(
                        store
                            .finish_run(
                                run_id,
                                "failed",
                                Some(("internal", "internal error")),
                                None,
                            )
                            .await,
                    );
                });
            }
        }
    }
}

fn save<T>(result: sqlx::Result<T>) {
    if let Err(err) = result {
        tracing::error!(error = %err, "cannot save chat state");
    }
}

/// What the client is told; internal details stay in the log.
pub(super) fn user_message(err: &AgentError) -> String {
    match err {
        AgentError::Unavailable(_) => "The agent backend is unavailable. Try again shortly.".into(),
        AgentError::Timeout(limit) => format!("The agent backend did not answer within {limit:?}."),
        AgentError::Protocol(_) => "The agent backend sent an invalid response.".into(),
        AgentError::Agent { message, .. } => message.clone(),
        AgentError::BoardUnavailable(_) => {
            "The board service is unavailable. Try again shortly.".into()
        }
    }
}
