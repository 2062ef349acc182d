//! What a relayed run adds to the AG-UI conversation, written down as the
//! events arrive: the assistant's messages under the backend's own ids, its
//! tool calls, their results, and the backend's last `MESSAGES_SNAPSHOT`.
//! The next turn sends it back, so the backend sees the whole conversation
//! under the ids it knows.

use protocol::chat_frames::agui::{Message, Role, ToolCall};
use serde_json::Value;

use crate::store::Transcript;

/// The conversation of one run, built event by event.
#[derive(Debug, Default)]
pub struct TranscriptBuilder {
    messages: Vec<Message>,
    snapshot: Option<Vec<Value>>,
    /// The assistant message text goes to when an event names none.
    current: Option<String>,
}

impl TranscriptBuilder {
    /// `TEXT_MESSAGE_START`: later text without an id goes to `id`.
    pub fn text_start(&mut self, id: &str) {
        self.assistant(Some(id));
        self.current = Some(id.to_owned());
    }

    /// A piece of assistant text, for message `id` or the current one.
    pub fn text(&mut self, id: Option<&str>, delta: &str) {
        let message = self.assistant(id.or(self.current.clone().as_deref()));
        message.content.get_or_insert_default().push_str(delta);
    }

    /// A tool call of assistant message `parent`, or of the current one.
    pub fn tool_call(&mut self, call_id: &str, name: &str, parent: Option<&str>) {
        if self.call(call_id).is_some() {
            return;
        }
        let message = self.assistant(parent.or(self.current.clone().as_deref()));
        message
            .tool_calls
            .push(ToolCall::function(call_id, name, String::new()));
    }

    /// A fragment of a call's JSON arguments.
    pub fn tool_args(&mut self, call_id: &str, delta: &str) {
        if let Some(call) = self.call(call_id) {
            call.function.arguments.push_str(delta);
        }
    }

    /// `TOOL_CALL_RESULT`: the `tool` message answering `call_id`.
    pub fn tool_result(&mut self, message_id: &str, call_id: &str, content: &str) {
        let id = if message_id.is_empty() {
            format!("result-{call_id}")
        } else {
            message_id.to_owned()
        };
        self.messages
            .push(Message::tool_result(id, call_id, content));
        // Text after a result belongs to a new assistant message.
        self.current = None;
    }

    /// `MESSAGES_SNAPSHOT`: the backend's whole conversation.
    pub fn snapshot(&mut self, messages: Vec<Value>) {
        self.snapshot = Some(messages);
    }

    /// The conversation this run added so far, for a resumed upstream run:
    /// the last snapshot (the whole conversation) if any, else the messages.
    pub fn so_far(&self) -> (Vec<Message>, bool) {
        match &self.snapshot {
            Some(snapshot) => (
                snapshot
                    .iter()
                    .filter_map(|m| serde_json::from_value(m.clone()).ok())
                    .collect(),
                true,
            ),
            None => (self.messages.clone(), false),
        }
    }

    /// What to store with the run: the last snapshot if any, otherwise the
    /// messages seen, without calls that got no result (a backend refuses a
    /// call left unanswered) and without messages left empty. `None` when
    /// the run added nothing.
    pub fn finish(self) -> Option<Transcript> {
        if let Some(messages) = self.snapshot {
            return Some(Transcript {
                messages: Value::Array(messages),
                snapshot: true,
            });
        }
        let answered: Vec<String> = self
            .messages
            .iter()
            .filter_map(|m| m.tool_call_id.clone())
            .collect();
        let mut messages = self.messages;
        for message in &mut messages {
            message.tool_calls.retain(|c| answered.contains(&c.id));
        }
        // A result whose call the backend never announced stays: it still
        // tells the backend what happened.
        messages.retain(|m| {
            m.role != Role::Assistant
                || !m.tool_calls.is_empty()
                || m.content.as_deref().is_some_and(|c| !c.is_empty())
        });
        if messages.is_empty() {
            return None;
        }
        Some(Transcript {
            messages: serde_json::to_value(&messages).unwrap_or(Value::Null),
            snapshot: false,
        })
    }

    /// The assistant message `id`, created if new; with no id, the last
    /// assistant message since the last tool result, or a new one.
    fn assistant(&mut self, id: Option<&str>) -> &mut Message {
        let found = match id {
            Some(id) => self
                .messages
                .iter()
                .rposition(|m| m.role == Role::Assistant && m.id == id),
            None => self
                .messages
                .last()
                .filter(|m| m.role == Role::Assistant)
                .map(|_| self.messages.len() - 1),
        };
        let index = match found {
            Some(index) => index,
            None => {
                let id = id.map_or_else(|| uuid::Uuid::now_v7().to_string(), str::to_owned);
                let mut message = Message::text(id, Role::Assistant, "");
                message.content = None;
                self.messages.push(message);
                self.messages.len() - 1
            }
        };
        &mut self.messages[index]
    }

    fn call(&mut self, call_id: &str) -> Option<&mut ToolCall> {
        self.messages
            .iter_mut()
            .flat_map(|m| m.tool_calls.iter_mut())
            .find(|c| c.id == call_id)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn keeps_calls_results_and_text_under_the_backends_ids() {
        let mut t = TranscriptBuilder::default();
        t.tool_call("c1", "create_task", Some("a1"));
        t.tool_args("c1", "{\"title\":");
        t.tool_args("c1", "\"x\"}");
        t.tool_call("c2", "never_answered", Some("a1"));
        t.tool_result("r1", "c1", "{\"id\":\"t1\"}");
        t.text_start("a2");
        t.text(Some("a2"), "Created ");
        t.text(None, "it.");
        let stored = t.finish().unwrap();
        assert!(!stored.snapshot);
        assert_eq!(
            stored.messages,
            json!([
                {"id":"a1","role":"assistant","toolCalls":[{"id":"c1","type":"function",
                    "function":{"name":"create_task","arguments":"{\"title\":\"x\"}"}}]},
                {"id":"r1","role":"tool","content":"{\"id\":\"t1\"}","toolCallId":"c1"},
                {"id":"a2","role":"assistant","content":"Created it."},
            ])
        );
    }

    #[test]
    fn a_snapshot_wins_and_an_empty_run_stores_nothing() {
        let mut t = TranscriptBuilder::default();
        t.text(Some("a1"), "hi");
        t.snapshot(vec![json!({"id":"u1","role":"user","content":"x"})]);
        let stored = t.finish().unwrap();
        assert!(stored.snapshot);
        assert_eq!(
            stored.messages,
            json!([{"id":"u1","role":"user","content":"x"}])
        );
        let mut t = TranscriptBuilder::default();
        t.tool_call("c1", "cut_short", None);
        assert_eq!(t.finish(), None);
    }
}
