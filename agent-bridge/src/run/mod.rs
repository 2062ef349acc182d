//! Runs: one user message driven through the backend to exactly one
//! terminal frame. A run belongs to its session, not to the socket that
//! started it, and stops early only when cancelled.

mod finish;
mod leases;
mod output;
mod resend;
mod settle;

use std::{sync::Arc, time::Duration};

use futures::FutureExt;

use protocol::chat_frames::{
    ErrorData, FinalMessage, RunStatus, ServerFrame, StatusData, ToolExecution,
};
use serde::Serialize;
use tokio::sync::oneshot;
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use uuid::Uuid;

pub use leases::{reap_interrupted, spawn_lease_keeper};
pub use output::RunOutput;

use self::finish::{EndsRun, finish, user_message};
use crate::{
    agent::{Backend, Outcome, RunRequest, conversation, output::AgentOutput},
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

/// A user message as a client sends it.
#[derive(Debug, Clone)]
pub struct UserMessage {
    pub content: String,
    /// The end user's bearer token: the built-in agent's board-service
    /// calls carry it, so board-service enforces its claims.
    pub token: Option<String>,
    /// The client's id for the message, the same on every resend of it.
    pub message_id: Option<String>,
    /// Tools the client's page declares (AG-UI `tools`), passed on to a
    /// relayed backend.
    pub frontend_tools: Vec<serde_json::Value>,
}

/// What sending a message did.
#[derive(Debug)]
pub enum Started {
    /// A new run; its result comes at its end (dropping the receiver does
    /// not stop the run).
    New {
        run_id: Uuid,
        done: oneshot::Receiver<RunResult>,
    },
    /// The message was sent before and its run is still in flight.
    InFlight(Uuid),
    /// The message was answered already: that run's result, as stored, and
    /// the seq its terminal frame was published at.
    Answered(RunResult, Option<u64>),
}

/// Why a run did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("run {0} is still in progress on this session; cancel it or wait for it to end")]
    Busy(Uuid),
    #[error("agent-bridge is shutting down")]
    ShuttingDown,
    #[error("cannot read the chat state: {0}")]
    Database(#[from] sqlx::Error),
}

/// Starts runs and keeps track of them for shutdown.
#[derive(Clone)]
pub struct Runner {
    store: Store,
    backend: Arc<Backend>,
    tracker: TaskTracker,
    stop: CancellationToken,
    /// This process, in `chat_runs.instance_id`.
    instance: Uuid,
    lease: Duration,
}

impl Runner {
    /// Runs are leased for `lease` at a time by this process.
    pub fn new(store: Store, backend: Arc<Backend>, lease: Duration) -> Self {
        Self {
            store,
            backend,
            tracker: TaskTracker::new(),
            stop: CancellationToken::new(),
            instance: Uuid::now_v7(),
            lease,
        }
    }

    /// This bridge process's id on the runs it drives.
    pub fn instance(&self) -> Uuid {
        self.instance
    }

    /// Whether shutdown has begun.
    pub fn is_stopping(&self) -> bool {
        self.stop.is_cancelled()
    }

    /// Answers `message` on `session`. A message the client names by
    /// `message_id` starts a run once: sent again, it is told the run in
    /// flight or the result it had, unless that run was cut short (see
    /// [`resend`]), when a new run answers the same stored message. For a
    /// new run, `status: processing` is published before this returns.
    pub async fn start(
        &self,
        session: Arc<Session>,
        message: UserMessage,
    ) -> Result<Started, StartError> {
        if self.stop.is_cancelled() {
            return Err(StartError::ShuttingDown);
        }
        let mut stored = None;
        if let Some(client_id) = &message.message_id {
            match resend::prior(&self.store, &session, client_id).await? {
                resend::Prior::New => {}
                resend::Prior::Retry(id) => stored = Some(id),
                resend::Prior::InFlight(run) => return Ok(Started::InFlight(run)),
                resend::Prior::Answered(result, seq) => return Ok(Started::Answered(result, seq)),
            }
        }
        let run_id = Uuid::now_v7();
        let cancel = self.stop.child_token();
        if let Some(run) = self
            .begin(&session, run_id, &cancel, message.message_id.as_deref())
            .await?
        {
            return Ok(Started::InFlight(run));
        }
        let message_row = stored.unwrap_or_else(Uuid::now_v7);
        let lease = (self.instance, self.lease);
        // With other bridges, PostgreSQL says who runs the session's run.
        let claimed = session.cluster().is_some();
        if let Some(cluster) = session.cluster() {
            let claim = self
                .store
                .claim_run(
                    run_id,
                    session.id(),
                    message_row,
                    self.backend.name(),
                    lease,
                )
                .await;
            match claim {
                Ok(None) => {}
                Ok(Some(holder)) => {
                    session.abandon_run(run_id);
                    return Err(StartError::Busy(holder));
                }
                Err(err) => {
                    session.abandon_run(run_id);
                    return Err(err.into());
                }
            }
            cluster.serve_run(Arc::clone(&session), run_id).await;
        }
        session.publish(ServerFrame::Status {
            seq: 0,
            run_id: Some(run_id.to_string()),
            data: StatusData {
                status: RunStatus::Processing,
                message: "Understanding your request...".into(),
                run_id: Some(run_id.to_string()),
            },
        });
        crate::metrics::METRICS.run_started();
        let (tx, rx) = oneshot::channel();
        let (store, backend) = (self.store.clone(), Arc::clone(&self.backend));
        let guard = EndsRun {
            session: Arc::clone(&session),
            store: store.clone(),
            run_id,
        };
        self.tracker.spawn(async move {
            let run = Run {
                store,
                backend,
                session,
                run_id,
                message,
                stored,
                message_row,
                claimed,
                cancel,
                lease,
            };
            let result = drive(run).await;
            drop(guard);
            let _ = tx.send(result);
        });
        Ok(Started::New { run_id, done: rx })
    }

    /// Marks `run_id` as `session`'s run in flight. A run another bridge was
    /// said to drive, and PostgreSQL says ended, is settled first: its
    /// terminal frame was lost on the way here. `Some(run)`: the same
    /// message is being answered by `run` here.
    async fn begin(
        &self,
        session: &Session,
        run_id: Uuid,
        cancel: &CancellationToken,
        message: Option<&str>,
    ) -> Result<Option<Uuid>, StartError> {
        let mut settled = false;
        loop {
            match session.begin_run(run_id, cancel.clone(), message) {
                Ok(()) => return Ok(None),
                Err(Busy {
                    run,
                    same_message: true,
                }) => return Ok(Some(run)),
                Err(Busy { run, .. }) if !settled && session.remote_run() == Some(run) => {
                    let ended = settle::settle_remote_run(&self.store, session, run).await?;
                    if !ended && session.remote_run() == Some(run) {
                        return Err(StartError::Busy(run));
                    }
                    settled = true;
                }
                Err(Busy { run, .. }) => return Err(StartError::Busy(run)),
            }
        }
    }

    /// The result of `run_id` on `session`, once it has ended on whichever
    /// bridge drives it (or been reaped as interrupted).
    pub async fn result_of(
        &self,
        session: &Session,
        run_id: Uuid,
    ) -> Result<RunResult, StartError> {
        loop {
            if let Some(run) = self.store.run(run_id).await?
                && run.status != "running"
            {
                return Ok(resend::stored_result(&self.store, &run).await?);
            }
            if self.stop.is_cancelled() {
                return Err(StartError::ShuttingDown);
            }
            // Woken at once when the run ends here; another bridge's run is
            // polled for twice a second.
            session.run_end_or(run_id, Duration::from_millis(500)).await;
        }
    }

    /// Refuses new runs, cancels those in flight and waits until each has
    /// published its terminal frame and been recorded.
    pub async fn shutdown(&self) {
        self.stop.cancel();
        self.tracker.close();
        self.tracker.wait().await;
    }
}

/// One run's inputs.
struct Run {
    store: Store,
    backend: Arc<Backend>,
    session: Arc<Session>,
    run_id: Uuid,
    message: UserMessage,
    /// The stored user message, when this run retries it.
    stored: Option<Uuid>,
    /// The user message's row id: `stored`, or the one it is stored under.
    message_row: Uuid,
    /// Recorded already, by [`Store::claim_run`].
    claimed: bool,
    cancel: CancellationToken,
    lease: (Uuid, Duration),
}

#[tracing::instrument(name = "run", skip_all, fields(session = %run.session.id(), run = %run.run_id))]
async fn drive(run: Run) -> RunResult {
    let Run {
        store,
        backend,
        session,
        run_id,
        message:
            UserMessage {
                content,
                token,
                message_id,
                frontend_tools,
            },
        stored,
        message_row,
        claimed,
        cancel,
        lease,
    } = run;
    tracing::info!(backend = backend.name(), "run started");
    let mut out = RunOutput::new(Arc::clone(&session), store.clone(), run_id);
    let prepared = async {
        let message = message_row;
        if !claimed {
            store
                .insert_run(run_id, session.id(), message, backend.name(), lease)
                .await?;
        }
        let message = match stored {
            Some(message) => message,
            None => {
                let id = store
                    .insert_user_message(
                        message,
                        session.id(),
                        run_id,
                        &content,
                        message_id.as_deref(),
                    )
                    .await?;
                if id != message {
                    store.set_run_message(run_id, id).await?;
                }
                id
            }
        };
        let rows = store
            .conversation_before(session.id(), message, HISTORY_LIMIT)
            .await?;
        Ok::<_, sqlx::Error>((message, conversation::from_rows(&rows)))
    };
    let ended = match prepared.await {
        Err(err) => {
            tracing::error!(error = %err, "cannot record the run");
            Err(ErrorData::new("internal", "internal error"))
        }
        Ok((stored_id, history)) => {
            let request = RunRequest {
                session_id: session.id().to_owned(),
                run_id,
                board_id: session.board_id().to_owned(),
                content,
                token,
                message_id,
                stored_id,
                history,
                frontend_tools,
            };
            // Losing the race drops the backend's future, which closes its
            // HTTP stream or stops the built-in agent where it is.
            // A panic in the backend (a bug, never input) fails this run
            // alone, with its one terminal frame.
            let running = std::panic::AssertUnwindSafe(backend.run(&request, &mut out));
            let outcome = tokio::select! {
                biased;
                () = cancel.cancelled() => Ok(Ok(Outcome::Cancelled)),
                outcome = running.catch_unwind() => outcome,
            };
            match outcome {
                Err(panic) => {
                    let what = panic
                        .downcast_ref::<&str>()
                        .map(|s| (*s).to_owned())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_default();
                    tracing::error!(panic = %what, "the agent panicked");
                    out.fail_unfinished_tools("internal error").await;
                    Err(ErrorData::new("internal", "internal error"))
                }
                Ok(Ok(outcome)) => Ok(outcome),
                Ok(Err(err)) => {
                    tracing::warn!(error = %err, "run failed");
                    out.fail_unfinished_tools(&err.to_string()).await;
                    Err(ErrorData::new(err.code().to_owned(), user_message(&err)))
                }
            }
        }
    };
    finish(&store, &session, run_id, out, ended).await
}

#[cfg(test)]
mod tests {
    use protocol::chat_frames::ServerFrame;
    use service_kit::test_database::TestDatabase;

    use super::*;
    use crate::session::Sessions;

    #[tokio::test]
    async fn a_panicking_agent_fails_its_run_with_one_error_frame_and_the_session_goes_on() {
        let db = TestDatabase::create().await;
        let pool = sqlx::PgPool::connect(db.url()).await.unwrap();
        crate::store::migrate(&pool).await.unwrap();
        let store = Store::new(pool.clone());
        let sessions = Sessions::new(store.clone(), "default".into(), 100);
        let runner = Runner::new(
            store.clone(),
            Arc::new(Backend::Panics),
            Duration::from_secs(15),
        );
        let session = sessions
            .open(Some("panics-1"), None, "", false)
            .await
            .unwrap();
        let (mut frames, _, _guard) = session.subscribe(None, 64).into_parts();
        // Twice: the first panic must not leave the session busy.
        for _ in 0..2 {
            let message = UserMessage {
                content: "boom".into(),
                token: None,
                message_id: None,
                frontend_tools: Vec::new(),
            };
            let Ok(Started::New { run_id, done }) =
                runner.start(Arc::clone(&session), message).await
            else {
                panic!("the session is free");
            };
            let result = done.await.expect("a result, even after a panic");
            assert_eq!(result.status, "failed");
            assert_eq!(
                result.error.as_ref().map(|e| e.code.as_str()),
                Some("internal")
            );
            let mut seen = Vec::new();
            loop {
                let text = frames.recv().await.expect("frames");
                let frame: ServerFrame = serde_json::from_str(&text).unwrap();
                let terminal = frame.is_terminal();
                seen.push(frame);
                if terminal {
                    break;
                }
            }
            assert!(
                matches!(seen.last(), Some(ServerFrame::Error { data, .. }) if data.code == "internal"),
                "{seen:?}"
            );
            assert!(frames.try_recv().is_err(), "a second terminal frame");
            let status: String = sqlx::query_scalar("SELECT status FROM chat_runs WHERE id = $1")
                .bind(run_id)
                .fetch_one(&pool)
                .await
                .unwrap();
            assert_eq!(status, "failed");
        }
        runner.shutdown().await;
    }
}
