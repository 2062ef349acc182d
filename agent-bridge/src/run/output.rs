//! Where a backend reports a run's progress: each call publishes a frame to
//! the session and records tool calls in PostgreSQL.

use std::sync::Arc;

use std::time::Duration;

use protocol::time::now_ms;

use protocol::chat_frames::{
    Approval, Artifact, ServerFrame, TokenData, ToolExecution, ToolStatus,
};
use serde_json::Value;
use uuid::Uuid;

use crate::{
    agent::{
        output::{AgentOutput, Decision},
        transcript::TranscriptBuilder,
    },
    session::Session,
    store::Store,
};

/// The sink of one run.
pub struct RunOutput {
    session: Arc<Session>,
    store: Store,
    run_id: Uuid,
    run_key: String,
    text: String,
    tools: Vec<ToolExecution>,
    transcript: TranscriptBuilder,
}

impl RunOutput {
    pub(crate) fn new(session: Arc<Session>, store: Store, run_id: Uuid) -> Self {
        Self {
            session,
            store,
            run_id,
            run_key: run_id.to_string(),
            text: String::new(),
            tools: Vec::new(),
            transcript: TranscriptBuilder::default(),
        }
    }

    pub(crate) fn take_transcript(&mut self) -> TranscriptBuilder {
        std::mem::take(&mut self.transcript)
    }

    pub(crate) async fn close_unfinished(&mut self, reason: &str, outcome: &str) {
        let open: Vec<String> = self
            .tools
            .iter()
            .filter(|t| {
                matches!(
                    t.status,
                    ToolStatus::Started | ToolStatus::AwaitingApproval | ToolStatus::Running
                )
            })
            .map(|t| t.id.clone())
            .collect();
        for id in open {
            let call = self.call(&id, "unknown");
            call.status = ToolStatus::Failed;
            call.error = Some(reason.to_owned());
            call.end_time = Some(now_ms() as i64);
            self.emit(&id, Some(outcome)).await;
        }
    }

    fn call(&mut self, id: &str, tool: &str) -> &mut ToolExecution {
        let at = match self.tools.iter().position(|t| t.id == id) {
            Some(at) => at,
            None => {
                self.tools.push(ToolExecution {
                    id: id.to_owned(),
                    tool: tool.to_owned(),
                    status: ToolStatus::Started,
                    input: Value::Null,
                    output: None,
                    error: None,
                    progress: None,
                    start_time: now_ms() as i64,
                    end_time: None,
                    approval: None,
                });
                self.tools.len() - 1
            }
        };
        &mut self.tools[at]
    }

    /// Publishes the call's state, then saves it (and audits it when it
    /// ended). A database hiccup is logged, not allowed to stop the run.
    async fn emit(&mut self, id: &str, audit: Option<&str>) {
        let Some(call) = self.tools.iter().find(|t| t.id == id).cloned() else {
            return;
        };
        self.session.publish(ServerFrame::ToolExecution {
            seq: 0,
            run_id: Some(self.run_key.clone()),
            data: call.clone(),
        });
        let session_id = self.session.id();
        if let Err(err) = self.store.upsert_tool(self.run_id, session_id, &call).await {
            tracing::warn!(error = %err, tool = %call.tool, "cannot save tool execution");
        }
        if let Some(outcome) = audit {
            crate::metrics::METRICS.tool_ended(&call.tool, outcome);
        }
        if let Some(outcome) = audit
            && let Err(err) = self
                .store
                .audit_tool(self.run_id, session_id, &call, outcome)
                .await
        {
            tracing::warn!(error = %err, tool = %call.tool, "cannot write tool audit record");
        }
    }

    pub fn tools(&self) -> &[ToolExecution] {
        &self.tools
    }

    /// Outputs of the calls that completed.
    pub fn artifacts(&self) -> Vec<Artifact> {
        self.tools
            .iter()
            .filter(|t| t.status == ToolStatus::Completed)
            .map(|t| Artifact::ToolResult {
                tool: t.tool.clone(),
                tool_call_id: t.id.clone(),
                output: t.output.clone().unwrap_or(Value::Null),
            })
            .collect()
    }
}

impl AgentOutput for RunOutput {
    /// The AG-UI conversation this run adds, kept here so a run cut short
    /// still stores what it got to.
    fn transcript(&mut self) -> &mut TranscriptBuilder {
        &mut self.transcript
    }

    /// Streams a piece of assistant text.
    fn token(&mut self, token: &str, done: bool) {
        self.text.push_str(token);
        self.session.publish(ServerFrame::Token {
            seq: 0,
            run_id: Some(self.run_key.clone()),
            data: TokenData {
                token: token.to_owned(),
                done,
            },
        });
    }

    async fn tool_started(&mut self, id: &str, tool: &str, input: Value) {
        let call = self.call(id, tool);
        call.status = ToolStatus::Started;
        call.input = input;
        self.emit(id, None).await;
    }

    /// The call is executing; `input` replaces the input when it is final now.
    async fn tool_running(&mut self, id: &str, input: Option<Value>) {
        let call = self.call(id, "unknown");
        call.status = ToolStatus::Running;
        if let Some(input) = input {
            call.input = input;
        }
        self.emit(id, None).await;
    }

    async fn tool_completed(&mut self, id: &str, output: Value) {
        let call = self.call(id, "unknown");
        call.status = ToolStatus::Completed;
        call.output = Some(output);
        call.end_time = Some(now_ms() as i64);
        self.emit(id, Some("completed")).await;
    }

    async fn tool_failed(&mut self, id: &str, error: String, output: Option<Value>) {
        let call = self.call(id, "unknown");
        call.status = ToolStatus::Failed;
        call.error = Some(error);
        call.output = output;
        call.end_time = Some(now_ms() as i64);
        self.emit(id, Some("failed")).await;
    }

    /// Pauses the call until a tab of the session answers, or `timeout`
    /// passes (a rejection). Every tab sees the call `awaiting_approval` with
    /// `description`, and the answer on the call's next frame.
    async fn await_approval(
        &mut self,
        id: &str,
        tool: &str,
        description: String,
        timeout: Duration,
    ) -> Decision {
        let answer = self.session.await_approval(id);
        let call = self.call(id, tool);
        call.status = ToolStatus::AwaitingApproval;
        call.approval = Some(Box::new(Approval {
            description,
            approved: None,
            decided_by: None,
            reason: None,
            decided_at: None,
        }));
        self.emit(id, None).await;
        let decision = match tokio::time::timeout(timeout, answer).await {
            Ok(Ok(decision)) => decision,
            // Timed out, or the session forgot it: either way, not a yes.
            _ => Decision {
                approved: false,
                by: "timeout".into(),
                reason: Some(format!("no answer within {} s", timeout.as_secs())),
            },
        };
        self.session.forget_approval(id);
        crate::metrics::METRICS.approval(match (decision.approved, decision.by.as_str()) {
            (true, _) => "approved",
            (false, "timeout") => "timeout",
            (false, _) => "rejected",
        });
        if let Some(approval) = &mut self.call(id, "unknown").approval {
            approval.approved = Some(decision.approved);
            approval.decided_by = Some(decision.by.clone());
            approval.reason = decision.reason.clone();
            approval.decided_at = Some(now_ms() as i64);
        }
        decision
    }

    /// Fails every call without a result (the run ended or was cancelled).
    async fn fail_unfinished_tools(&mut self, reason: &str) {
        self.close_unfinished(reason, "failed").await;
    }

    /// The assistant text streamed so far.
    fn text(&self) -> &str {
        &self.text
    }
}
