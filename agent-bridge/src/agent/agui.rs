//! The AG-UI client: POSTs `RunAgentInput`, reads the SSE reply and hands
//! each event to [`Relay`], which turns it into chat frames. A run the
//! backend ends with an `interrupt` outcome is asked of the session's tabs
//! as approvals, and continued upstream with their answers in `resume`.

use std::time::Duration;

use futures::StreamExt;
use protocol::chat_frames::agui::{Event, Message, ResumeEntry, Role, RunAgentInput};
use reqwest::header::{ACCEPT, CONTENT_TYPE};

use super::{
    AgentError, Outcome, RunRequest,
    relay::{Relay, Step},
    sse::SseDecoder,
};
use crate::agent::output::AgentOutput;

/// Talks to one AG-UI endpoint.
pub struct AgUiClient {
    http: reqwest::Client,
    url: String,
    timeout: Duration,
    /// How long the tabs have to answer a backend's interrupt.
    approval_timeout: Duration,
}

/// Interrupts answered in one run at most, so a backend that keeps asking
/// cannot hold a run forever.
const MAX_RESUMES: usize = 20;

impl AgUiClient {
    /// `timeout` bounds the wait for the response and for each next chunk,
    /// so a slow backend fails the run rather than hanging it.
    pub fn new(url: String, timeout: Duration) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .connect_timeout(timeout)
            .build()?;
        Ok(Self {
            http,
            url,
            timeout,
            approval_timeout: Duration::from_secs(600),
        })
    }

    /// How long the tabs have to answer a backend's interrupt.
    pub fn with_approval_timeout(mut self, timeout: Duration) -> Self {
        self.approval_timeout = timeout;
        self
    }

    pub async fn run(
        &self,
        request: &RunRequest,
        out: &mut impl AgentOutput,
    ) -> Result<Outcome, AgentError> {
        let first = run_input(request);
        let mut input = first.clone();
        for round in 1..=MAX_RESUMES {
            let interrupts = match self.stream(&input, out).await? {
                Step::Ended(end) => return end,
                Step::Interrupted(interrupts) => interrupts,
            };
            let resume = self.ask(interrupts, out).await?;
            // The same thread, continued: what the run said so far, then the answers.
            let (said, whole) = out.transcript().so_far();
            input = RunAgentInput {
                run_id: format!("{}-resume-{round}", first.run_id),
                messages: if whole {
                    said
                } else {
                    first.messages.iter().cloned().chain(said).collect()
                },
                resume,
                ..first.clone()
            };
        }
        out.fail_unfinished_tools("the agent kept asking for approvals")
            .await;
        Err(AgentError::Protocol(format!(
            "more than {MAX_RESUMES} interrupts in one run"
        )))
    }

    /// Asks the tabs each interrupt as an approval of its tool call.
    async fn ask(
        &self,
        interrupts: Vec<serde_json::Value>,
        out: &mut impl AgentOutput,
    ) -> Result<Vec<ResumeEntry>, AgentError> {
        let mut resume = Vec::with_capacity(interrupts.len());
        for interrupt in interrupts {
            let text = |key: &str| interrupt.get(key).and_then(|v| v.as_str());
            let id = text("id")
                .ok_or_else(|| AgentError::Protocol("an interrupt without an id".into()))?;
            let call = text("toolCallId").unwrap_or(id);
            let reason = text("reason").unwrap_or("approval");
            let what = text("message").unwrap_or(reason).to_owned();
            let decision = out
                .await_approval(call, reason, what, self.approval_timeout)
                .await;
            if decision.approved {
                out.tool_running(call, None).await;
            } else {
                let why = decision.reason.clone().unwrap_or_else(|| "rejected".into());
                out.tool_failed(call, format!("{} rejected it: {why}", decision.by), None)
                    .await;
            }
            resume.push(ResumeEntry {
                interrupt_id: id.to_owned(),
                status: "resolved".into(),
                payload: Some(serde_json::json!({
                    "approved": decision.approved,
                    "reason": decision.reason,
                    "decidedBy": decision.by,
                })),
            });
        }
        Ok(resume)
    }

    /// One upstream run's SSE stream, to its end or its interrupt.
    async fn stream(
        &self,
        input: &RunAgentInput,
        out: &mut impl AgentOutput,
    ) -> Result<Step, AgentError> {
        let mut post = self
            .http
            .post(&self.url)
            .header(ACCEPT, "text/event-stream")
            .json(input);
        // The agent backend may continue the run's trace (W3C traceparent).
        for (name, value) in service_kit::telemetry::propagation::current_context_map() {
            post = post.header(name, value);
        }
        let send = post.send();
        let response = tokio::time::timeout(self.timeout, send)
            .await
            .map_err(|_| AgentError::Timeout(self.timeout))?
            .map_err(|e| AgentError::Unavailable(error_chain(&e)))?;
        let status = response.status();
        if status.is_server_error() {
            return Err(AgentError::Unavailable(format!(
                "it answered HTTP {status}"
            )));
        }
        if !status.is_success() {
            return Err(AgentError::Protocol(format!("it answered HTTP {status}")));
        }
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !content_type.starts_with("text/event-stream") {
            return Err(AgentError::Protocol(format!(
                "expected text/event-stream, got {content_type:?}"
            )));
        }

        let mut body = response.bytes_stream();
        let mut decoder = SseDecoder::default();
        let mut relay = Relay::default();
        let mut events = Vec::new();
        loop {
            let chunk = tokio::time::timeout(self.timeout, body.next())
                .await
                .map_err(|_| AgentError::Timeout(self.timeout))?;
            let chunk = match chunk {
                Some(Ok(chunk)) => chunk,
                Some(Err(e)) => return Err(AgentError::Unavailable(error_chain(&e))),
                None => {
                    relay
                        .fail_open_tools(out, "the run ended without a result")
                        .await;
                    return Err(AgentError::Protocol(
                        "the stream ended without RUN_FINISHED or RUN_ERROR".into(),
                    ));
                }
            };
            decoder
                .push(&chunk, &mut events)
                .map_err(|e| AgentError::Protocol(e.to_string()))?;
            for data in events.drain(..) {
                let read = std::time::Instant::now();
                let event: Event = serde_json::from_str(&data).map_err(|e| {
                    AgentError::Protocol(format!("invalid event ({e}): {}", preview(&data)))
                })?;
                let end = relay.apply(event, out).await;
                crate::metrics::METRICS
                    .relay_seconds
                    .observe(read.elapsed().as_secs_f64());
                if let Some(end) = end {
                    return Ok(end);
                }
            }
        }
    }
}

/// The whole conversation under stable ids, then the new message (under
/// its client's id, as [`conversation`](super::conversation) sends it on
/// later turns).
fn run_input(request: &RunRequest) -> RunAgentInput {
    let mut messages = request.history.clone();
    let id = request
        .message_id
        .clone()
        .unwrap_or_else(|| request.stored_id.to_string());
    messages.push(Message::text(id, Role::User, &request.content));
    RunAgentInput {
        thread_id: request.session_id.clone(),
        run_id: request.run_id.to_string(),
        state: serde_json::Value::Null,
        messages,
        tools: request.frontend_tools.clone(),
        context: Vec::new(),
        forwarded_props: serde_json::Value::Null,
        resume: Vec::new(),
    }
}

fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn preview(data: &str) -> String {
    data.chars().take(120).collect()
}
