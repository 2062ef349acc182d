//! Runs: one user message driven through the backend to exactly one
//! terminal frame. A run belongs to its session, not to the socket that
//! started it, and stops early only when cancelled.

mod finish;
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

use self::finish::{EndsRun, finish, user_message};
use crate::{
    agent::{Backend, Outcome, RunRequest},
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
