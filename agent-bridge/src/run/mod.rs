//! Runs: one user message driven through the backend to exactly one
//! terminal frame. A run belongs to its session, not to the socket that
//! started it, and stops early only when cancelled.

mod output;

use std::sync::Arc;

use protocol::chat_frames::{
    ErrorData, FinalMessage, RunStatus, ServerFrame, StatusData, ToolExecution,
};
use serde::Serialize;
use tokio::sync::oneshot;
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use uuid::Uuid;

pub use output::{RunOutput, now_ms};

use crate::{
    agent::{AgentError, Backend, Outcome, RunRequest},
    session::{Busy, Session},
    store::Store,
};

/// Messages of the history sent to the backend with each run.
const HISTORY_LIMIT: i64 = 100;

/// How a run ended, as the HTTP fallback returns it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunResult {
    pub run_id: Uuid,
    /// `completed`, `failed` or `cancelled`.
    pub status: &'static str,
    pub message: FinalMessage,
    pub tool_executions: Vec<ToolExecution>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorData>,
}

/// Why a run did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("run {0} is still in progress on this session; cancel it or wait for it to end")]
    Busy(Uuid),
    #[error("agent-bridge is shutting down")]
    ShuttingDown,
}

/// Starts runs and keeps track of them for shutdown.
#[derive(Clone)]
pub struct Runner {
    store: Store,
    backend: Arc<Backend>,
    tracker: TaskTracker,
    stop: CancellationToken,
}

impl Runner {
    pub fn new(store: Store, backend: Arc<Backend>) -> Self {
        Self {
            store,
            backend,
            tracker: TaskTracker::new(),
            stop: CancellationToken::new(),
        }
    }

    /// Starts a run of `content` on `session`; `status: processing` is
    /// published before this returns. The receiver gets the result at the end
    /// (dropping it does not stop the run).
    pub fn start(
        &self,
        session: Arc<Session>,
        content: String,
    ) -> Result<(Uuid, oneshot::Receiver<RunResult>), StartError> {
        if self.stop.is_cancelled() {
            return Err(StartError::ShuttingDown);
        }
        let run_id = Uuid::now_v7();
        let cancel = self.stop.child_token();
        session
            .begin_run(run_id, cancel.clone())
            .map_err(|Busy(active)| StartError::Busy(active))?;
        session.publish(ServerFrame::Status {
            seq: 0,
            run_id: Some(run_id.to_string()),
            data: StatusData {
                status: RunStatus::Processing,
                message: "Understanding your request...".into(),
                run_id: Some(run_id.to_string()),
            },
        });
        let (tx, rx) = oneshot::channel();
        let (store, backend) = (self.store.clone(), Arc::clone(&self.backend));
        let guard = EndsRun {
            session: Arc::clone(&session),
            run_id,
        };
        self.tracker.spawn(async move {
            let result = drive(store, backend, session, run_id, content, cancel).await;
            drop(guard);
            let _ = tx.send(result);
        });
        Ok((run_id, rx))
    }

    /// Refuses new runs, cancels those in flight and waits until each has
    /// published its terminal frame and been recorded.
    pub async fn shutdown(&self) {
        self.stop.cancel();
        self.tracker.close();
        self.tracker.wait().await;
    }
}

#[tracing::instrument(name = "run", skip_all, fields(session = %session.id(), run = %run_id))]
async fn drive(
    store: Store,
    backend: Arc<Backend>,
    session: Arc<Session>,
    run_id: Uuid,
    content: String,
    cancel: CancellationToken,
) -> RunResult {
    tracing::info!(backend = backend.name(), "run started");
    let mut out = RunOutput::new(Arc::clone(&session), store.clone(), run_id);
    let prepared = async {
        store
            .insert_run(run_id, session.id(), backend.name())
            .await?;
        let history = store.history(session.id(), HISTORY_LIMIT).await?;
        store
            .insert_message(session.id(), Some(run_id), "user", &content, &[])
            .await?;
        Ok::<_, sqlx::Error>(history)
    };
    let ended = match prepared.await {
        Err(err) => {
            tracing::error!(error = %err, "cannot record the run");
            Err(ErrorData {
                code: "internal".into(),
                message: "internal error".into(),
            })
        }
        Ok(history) => {
            let request = RunRequest {
                session_id: session.id().to_owned(),
                run_id,
                board_id: session.board_id().to_owned(),
                content,
                history: history
                    .into_iter()
                    .map(|m| (m.id, m.role, m.content))
                    .collect(),
            };
            // Losing the race drops the backend's future, which closes its
            // HTTP stream or stops the built-in agent where it is.
            let outcome = tokio::select! {
                biased;
                () = cancel.cancelled() => Ok(Outcome::Cancelled),
                outcome = backend.run(&request, &mut out) => outcome,
            };
            match outcome {
                Ok(outcome) => Ok(outcome),
                Err(err) => {
                    tracing::warn!(error = %err, "run failed");
                    out.fail_unfinished_tools(&err.to_string()).await;
                    Err(ErrorData {
                        code: err.code().to_owned(),
                        message: user_message(&err),
                    })
                }
            }
        }
    };
    finish(&store, &session, run_id, out, ended).await
}

/// Records the run's end and publishes its one terminal frame.
async fn finish(
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
    save(store.finish_run(run_id, status, error_pair).await);
    let run_key = Some(run_id.to_string());
    let terminal = match ended {
        Ok(Outcome::Finished) => ServerFrame::Message {
            seq: 0,
            run_id: run_key,
            data: message.clone(),
        },
        Ok(Outcome::Cancelled) => ServerFrame::Status {
            seq: 0,
            run_id: run_key.clone(),
            data: StatusData {
                status: RunStatus::Cancelled,
                message: "Run cancelled".into(),
                run_id: run_key,
            },
        },
        Err(error) => ServerFrame::Error {
            seq: 0,
            run_id: run_key,
            data: error,
        },
    };
    if let Some(seq) = session.publish_terminal(run_id, terminal) {
        save(store.save_last_seq(session.id(), seq).await);
    }
    tracing::info!(status, "run ended");
    RunResult {
        run_id,
        status,
        message,
        tool_executions: out.tools().to_vec(),
        error,
    }
}

/// Ends the run with an `internal` error if its task stops without a
/// terminal frame (a panic), so the session does not stay busy forever.
struct EndsRun {
    session: Arc<Session>,
    run_id: Uuid,
}

impl Drop for EndsRun {
    fn drop(&mut self) {
        let frame = ServerFrame::Error {
            seq: 0,
            run_id: Some(self.run_id.to_string()),
            data: ErrorData {
                code: "internal".into(),
                message: "internal error".into(),
            },
        };
        // A no-op when the run already published its terminal frame.
        if self.session.publish_terminal(self.run_id, frame).is_some() {
            tracing::error!(run = %self.run_id, "run stopped without a terminal frame");
        }
    }
}

fn save<T>(result: sqlx::Result<T>) {
    if let Err(err) = result {
        tracing::error!(error = %err, "cannot save chat state");
    }
}

/// What the client is told; internal details stay in the log.
fn user_message(err: &AgentError) -> String {
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
