//! Cancel and approvals for a run another bridge drives: a core-NATS
//! request on the session's control subject, which only the bridge running
//! the session's run subscribes to while the run lasts.

use std::{sync::Arc, time::Duration};

use futures::StreamExt;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Cluster, control_subject};
use crate::session::{Decision, Session};

/// Longest wait for the running bridge's answer.
const ANSWER_WITHIN: Duration = Duration::from_secs(3);
/// Larger requests are not ours and are ignored.
const MAX_REQUEST: usize = 16 * 1024;

/// What one bridge asks the one that runs the run.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Request {
    /// Cancel the run in flight (only if it is `run_id`, when given).
    Cancel { run_id: Option<Uuid> },
    /// A person's answer to a tool call waiting for approval.
    Approval {
        tool_call_id: String,
        approved: bool,
        by: String,
        reason: Option<String>,
    },
}

#[derive(Debug, Serialize, Deserialize)]
struct Reply {
    /// Whether the run took it: cancelled, or the call was waiting.
    ok: bool,
}

impl Cluster {
    /// Asks the bridge that runs `session_id`'s run. `false` when no bridge
    /// runs one (nobody subscribes), it refused, or it did not answer in time.
    pub async fn ask(&self, session_id: &str, request: &Request) -> bool {
        let payload = match serde_json::to_vec(request) {
            Ok(payload) => payload,
            Err(_) => return false,
        };
        let asked = tokio::time::timeout(
            ANSWER_WITHIN,
            self.client()
                .request(control_subject(session_id), payload.into()),
        )
        .await;
        match asked {
            Ok(Ok(answer)) => serde_json::from_slice::<Reply>(&answer.payload).is_ok_and(|r| r.ok),
            Ok(Err(err)) => {
                if err.kind() != async_nats::RequestErrorKind::NoResponders {
                    tracing::warn!(session = %session_id, %err, "no answer from the bridge that runs the run");
                }
                false
            }
            Err(_) => false,
        }
    }

    /// Answers requests for `run_id` on `session` until the run ends. Returns
    /// once subscribed, so a request sent after the run's first frame is heard.
    pub async fn serve_run(&self, session: Arc<Session>, run_id: Uuid) {
        let client = self.client().clone();
        let mut requests = match client.subscribe(control_subject(session.id())).await {
            Ok(requests) => requests,
            Err(err) => {
                tracing::warn!(session = %session.id(), %err, "cannot take cancel and approvals from other bridges for this run");
                return;
            }
        };
        tokio::spawn(async move {
            let ended = session.run_ended(run_id);
            tokio::pin!(ended);
            loop {
                let request = tokio::select! {
                    () = &mut ended => break,
                    request = requests.next() => match request {
                        Some(request) => request,
                        None => break,
                    },
                };
                let Some(reply) = request.reply else { continue };
                let ok = request.payload.len() <= MAX_REQUEST
                    && serde_json::from_slice::<Request>(&request.payload)
                        .is_ok_and(|r| handle(&session, run_id, r));
                let answer = serde_json::to_vec(&Reply { ok }).unwrap_or_default();
                if let Err(err) = client.publish(reply, answer.into()).await {
                    tracing::warn!(%err, "cannot answer another bridge");
                }
            }
            let _ = requests.unsubscribe().await;
        });
    }
}

fn handle(session: &Session, run_id: Uuid, request: Request) -> bool {
    match request {
        Request::Cancel { run_id: wanted } => {
            wanted.is_none_or(|id| id == run_id) && session.cancel_run(Some(run_id)).is_some()
        }
        Request::Approval {
            tool_call_id,
            approved,
            by,
            reason,
        } => session.answer_approval(
            &tool_call_id,
            Decision {
                approved,
                by,
                reason,
            },
        ),
    }
}
