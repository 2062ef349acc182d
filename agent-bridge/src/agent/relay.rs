//! Maps AG-UI events onto chat frames.
//!
//! Text deltas become `token`s (an empty `done: true` token closes each text
//! message). `TOOL_CALL_START` → `started`; `TOOL_CALL_END` → `running` with
//! the joined JSON args as input. A `TOOL_CALL_RESULT` is held until the next
//! event that matters: `RUN_ERROR` makes it `failed` (that is how AG-UI
//! servers report a tool that raised), anything else `completed`.
//! Every event is also written into the run's transcript, which the next
//! turn sends back to the backend.

use std::collections::HashMap;

use protocol::chat_frames::agui::{Event, Outcome as AgUiOutcome, Role};
use serde_json::Value;

use super::{AgentError, Outcome};
use crate::agent::output::AgentOutput;

/// Per-run mapping state.
#[derive(Default)]
pub struct Relay {
    /// Joined argument text per open tool call.
    args: HashMap<String, String>,
    /// Results not yet known to be success or failure: (toolCallId, content).
    pending: Vec<(String, String)>,
    /// Whether the open text message streamed anything.
    text_open: bool,
}

/// How one upstream run's stream ended.
pub enum Step {
    Ended(Result<Outcome, AgentError>),
    /// `RUN_FINISHED` with an `interrupt` outcome: the backend waits for
    /// these answers before it goes on.
    Interrupted(Vec<Value>),
}

impl Relay {
    /// Applies one event; returns the stream's end when the event ends it.
    pub async fn apply(&mut self, event: Event, out: &mut impl AgentOutput) -> Option<Step> {
        record(&event, out);
        match event {
            Event::Other
            | Event::RunStarted { .. }
            | Event::MessagesSnapshot { .. }
            | Event::StateSnapshot { .. } => {
                return None;
            }
            Event::RunError { message, code } => {
                for (id, content) in std::mem::take(&mut self.pending) {
                    out.tool_failed(&id, message.clone(), Some(parse(content)))
                        .await;
                }
                self.fail_open_tools(out, &message).await;
                let code = code.unwrap_or_else(|| "agent_error".into());
                return Some(Step::Ended(Err(AgentError::Agent { code, message })));
            }
            _ => {}
        }
        self.complete_pending(out).await;
        match event {
            Event::TextMessageStart { .. } => self.text_open = false,
            Event::TextMessageContent { delta, .. } => {
                self.text_open = true;
                out.token(&delta, false);
            }
            Event::TextMessageChunk {
                delta: Some(delta), ..
            } if !delta.is_empty() => {
                out.token(&delta, false);
            }
            Event::TextMessageEnd { .. } if self.text_open => {
                self.text_open = false;
                out.token("", true);
            }
            Event::ToolCallStart {
                tool_call_id,
                tool_call_name,
                ..
            } => {
                self.args.insert(tool_call_id.clone(), String::new());
                out.tool_started(&tool_call_id, &tool_call_name, Value::Null)
                    .await;
            }
            Event::ToolCallChunk {
                tool_call_id: Some(id),
                tool_call_name,
                delta,
            } => {
                if !self.args.contains_key(&id) {
                    self.args.insert(id.clone(), String::new());
                    let name = tool_call_name.as_deref().unwrap_or("unknown");
                    out.tool_started(&id, name, Value::Null).await;
                }
                if let Some(delta) = delta {
                    self.args.entry(id).or_default().push_str(&delta);
                }
            }
            Event::ToolCallArgs {
                tool_call_id,
                delta,
            } => {
                self.args.entry(tool_call_id).or_default().push_str(&delta);
            }
            Event::ToolCallEnd { tool_call_id } => {
                let args = self.args.remove(&tool_call_id).unwrap_or_default();
                out.tool_running(&tool_call_id, Some(parse(args))).await;
            }
            Event::ToolCallResult {
                tool_call_id,
                content,
                ..
            } => {
                // A chunked call has no END; its args are complete by now.
                if let Some(args) = self.args.remove(&tool_call_id) {
                    out.tool_running(&tool_call_id, Some(parse(args))).await;
                }
                self.pending.push((tool_call_id, content));
            }
            Event::RunFinished { outcome, .. } => {
                // Tool calls an interrupt names stay open: they await approval.
                if let Some(AgUiOutcome::Interrupt { interrupts }) = &outcome
                    && !interrupts.is_empty()
                {
                    self.args.clear();
                    return Some(Step::Interrupted(interrupts.clone()));
                }
                self.fail_open_tools(out, "the run finished without a result")
                    .await;
                reply_from_snapshot(out);
                return Some(Step::Ended(Ok(match outcome {
                    Some(AgUiOutcome::Cancelled) => Outcome::Cancelled,
                    _ => Outcome::Finished,
                })));
            }
            _ => {}
        }
        None
    }

    async fn complete_pending(&mut self, out: &mut impl AgentOutput) {
        for (id, content) in std::mem::take(&mut self.pending) {
            out.tool_completed(&id, parse(content)).await;
        }
    }

    /// Fails tool calls that never got a result.
    pub async fn fail_open_tools(&mut self, out: &mut impl AgentOutput, reason: &str) {
        self.args.clear();
        out.fail_unfinished_tools(reason).await;
    }
}

/// A backend whose model does not stream (a LangGraph node that returns its
/// message) sends its reply only in `MESSAGES_SNAPSHOT`. When the run
/// streamed no text and the snapshot ends with an assistant message, that
/// message is the reply.
fn reply_from_snapshot(out: &mut impl AgentOutput) {
    if !out.text().is_empty() {
        return;
    }
    let (messages, whole) = out.transcript().so_far();
    let reply = messages
        .last()
        .filter(|m| whole && m.role == Role::Assistant)
        .and_then(|m| m.content.clone())
        .filter(|c| !c.is_empty());
    if let Some(reply) = reply {
        out.token(&reply, true);
    }
}

/// Writes the event into the run's transcript.
fn record(event: &Event, out: &mut impl AgentOutput) {
    let transcript = out.transcript();
    match event {
        Event::TextMessageStart { message_id, .. } => transcript.text_start(message_id),
        Event::TextMessageContent { message_id, delta } => {
            transcript.text(Some(message_id), delta);
        }
        Event::TextMessageChunk { message_id, delta } => {
            transcript.text(message_id.as_deref(), delta.as_deref().unwrap_or(""));
        }
        Event::ToolCallStart {
            tool_call_id,
            tool_call_name,
            parent_message_id,
        } => transcript.tool_call(tool_call_id, tool_call_name, parent_message_id.as_deref()),
        Event::ToolCallChunk {
            tool_call_id: Some(id),
            tool_call_name,
            delta,
        } => {
            transcript.tool_call(id, tool_call_name.as_deref().unwrap_or("unknown"), None);
            transcript.tool_args(id, delta.as_deref().unwrap_or(""));
        }
        Event::ToolCallArgs {
            tool_call_id,
            delta,
        } => transcript.tool_args(tool_call_id, delta),
        Event::ToolCallResult {
            message_id,
            tool_call_id,
            content,
            ..
        } => transcript.tool_result(message_id, tool_call_id, content),
        Event::MessagesSnapshot { messages } => transcript.snapshot(messages.clone()),
        _ => {}
    }
}

/// Tool args and results are JSON text by convention; keep them as a string
/// when they are not.
fn parse(text: String) -> Value {
    if text.is_empty() {
        return Value::Object(Default::default());
    }
    serde_json::from_str(&text).unwrap_or(Value::String(text))
}
