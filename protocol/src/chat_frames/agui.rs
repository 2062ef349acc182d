//! The AG-UI protocol as agent-bridge speaks it: the `RunAgentInput` it POSTs
//! and the events of the SSE stream it reads back (ag-ui-protocol 1.0).
//! Event types the bridge does not act on parse as [`Event::Other`].

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The body of a run request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunAgentInput {
    pub thread_id: String,
    pub run_id: String,
    #[serde(default)]
    pub state: Value,
    pub messages: Vec<Message>,
    #[serde(default)]
    pub tools: Vec<Value>,
    #[serde(default)]
    pub context: Vec<Value>,
    #[serde(default)]
    pub forwarded_props: Value,
    /// Answers to the interrupts that ended the previous run, when this
    /// run continues from them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resume: Vec<ResumeEntry>,
}

/// An answer to one interrupt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResumeEntry {
    pub interrupt_id: String,
    /// `resolved` (answered) or `cancelled` (abandoned).
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<Value>,
}

/// A message of the thread. Ids are the conversation's memory: a backend
/// such as LangGraph matches them against its checkpoint, so the same
/// message must carry the same id on every turn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Message {
    pub id: String,
    pub role: Role,
    /// Absent on an assistant message that only calls tools.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// The calls an assistant message makes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    /// On a `tool` message: the call it answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
    /// Fields this crate does not model (`name`, `error`, …), kept so a
    /// backend's own snapshot goes back to it unchanged.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, Value>,
}

impl Message {
    /// A plain text message.
    pub fn text(id: impl Into<String>, role: Role, content: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            role,
            content: Some(content.into()),
            tool_calls: Vec::new(),
            tool_call_id: None,
            extra: serde_json::Map::new(),
        }
    }

    /// The `tool` message holding a call's result.
    pub fn tool_result(
        id: impl Into<String>,
        tool_call_id: impl Into<String>,
        content: impl Into<String>,
    ) -> Self {
        Self {
            tool_call_id: Some(tool_call_id.into()),
            ..Self::text(id, Role::Tool, content)
        }
    }
}

/// One call in an assistant message's `toolCalls`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    pub id: String,
    /// Always `"function"`.
    #[serde(rename = "type")]
    pub kind: String,
    pub function: FunctionCall,
}

impl ToolCall {
    pub fn function(id: impl Into<String>, name: impl Into<String>, arguments: String) -> Self {
        Self {
            id: id.into(),
            kind: "function".into(),
            function: FunctionCall {
                name: name.into(),
                arguments,
            },
        }
    }
}

/// The function a [`ToolCall`] invokes; `arguments` is JSON text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunctionCall {
    pub name: String,
    pub arguments: String,
}

/// Who wrote a [`Message`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Assistant,
    System,
    Developer,
    Tool,
    Activity,
    Reasoning,
}

/// One event of a run's SSE stream, tagged by `type`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Event {
    #[serde(rename_all = "camelCase")]
    RunStarted { thread_id: String, run_id: String },
    #[serde(rename_all = "camelCase")]
    RunFinished {
        #[serde(default)]
        thread_id: String,
        #[serde(default)]
        run_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        outcome: Option<Outcome>,
    },
    /// Terminal: the run failed.
    RunError {
        message: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        code: Option<String>,
    },
    #[serde(rename_all = "camelCase")]
    TextMessageStart {
        message_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        role: Option<String>,
    },
    #[serde(rename_all = "camelCase")]
    TextMessageContent { message_id: String, delta: String },
    #[serde(rename_all = "camelCase")]
    TextMessageEnd { message_id: String },
    /// Shorthand for start/content/end; every field optional.
    #[serde(rename_all = "camelCase")]
    TextMessageChunk {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message_id: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        delta: Option<String>,
    },
    #[serde(rename_all = "camelCase")]
    ToolCallStart {
        tool_call_id: String,
        tool_call_name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        parent_message_id: Option<String>,
    },
    /// A fragment of the call's JSON arguments.
    #[serde(rename_all = "camelCase")]
    ToolCallArgs { tool_call_id: String, delta: String },
    #[serde(rename_all = "camelCase")]
    ToolCallEnd { tool_call_id: String },
    /// Shorthand for start/args; every field optional.
    #[serde(rename_all = "camelCase")]
    ToolCallChunk {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tool_call_id: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tool_call_name: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        delta: Option<String>,
    },
    /// The tool's return value as a string (usually JSON).
    #[serde(rename_all = "camelCase")]
    ToolCallResult {
        #[serde(default)]
        message_id: String,
        tool_call_id: String,
        content: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        role: Option<String>,
    },
    /// The agent's whole state (for Boardwire: the board it works on).
    StateSnapshot { snapshot: Value },
    /// The whole conversation as the backend holds it. Kept as JSON here:
    /// one message this crate cannot model must not fail the run.
    MessagesSnapshot { messages: Vec<Value> },
    /// Steps, state, reasoning, custom and raw events: nothing to relay.
    #[serde(other)]
    Other,
}

/// `RUN_FINISHED.outcome`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Outcome {
    Success,
    Interrupt {
        #[serde(default)]
        interrupts: Vec<Value>,
    },
    Cancelled,
}

impl Event {
    /// The event as one SSE frame (`data: <json>` and a blank line).
    pub fn to_sse(&self) -> String {
        let json = crate::json::encode(self);
        format!("data: {json}\n\n")
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn parses_events_as_pydantic_ai_sends_them() {
        let start: Event = serde_json::from_str(
            r#"{"type":"TOOL_CALL_START","timestamp":1,"toolCallId":"c1","toolCallName":"create_task","parentMessageId":"m0"}"#,
        )
        .unwrap();
        assert_eq!(
            start,
            Event::ToolCallStart {
                tool_call_id: "c1".into(),
                tool_call_name: "create_task".into(),
                parent_message_id: Some("m0".into()),
            }
        );
        let finished: Event = serde_json::from_str(
            r#"{"type":"RUN_FINISHED","threadId":"t","runId":"r","outcome":{"type":"success"}}"#,
        )
        .unwrap();
        assert!(matches!(
            finished,
            Event::RunFinished {
                outcome: Some(Outcome::Success),
                ..
            }
        ));
        let error: Event =
            serde_json::from_str(r#"{"type":"RUN_ERROR","message":"boom"}"#).unwrap();
        assert_eq!(
            error,
            Event::RunError {
                message: "boom".into(),
                code: None
            }
        );
    }

    #[test]
    fn unknown_event_types_are_other_but_malformed_known_ones_fail() {
        let reasoning: Event = serde_json::from_str(
            r#"{"type":"REASONING_ENCRYPTED_VALUE","subtype":"message","entityId":"e","encryptedValue":"{}"}"#,
        )
        .unwrap();
        assert_eq!(reasoning, Event::Other);
        assert!(serde_json::from_str::<Event>(r#"{"type":"TEXT_MESSAGE_CONTENT"}"#).is_err());
        assert!(serde_json::from_str::<Event>(r#"{"no":"type"}"#).is_err());
    }

    #[test]
    fn run_input_is_camel_case() {
        let input = RunAgentInput {
            thread_id: "t".into(),
            run_id: "r".into(),
            state: Value::Null,
            messages: vec![Message::text("m", Role::User, "hi")],
            tools: vec![],
            context: vec![],
            forwarded_props: Value::Null,
            resume: vec![],
        };
        assert_eq!(
            serde_json::to_value(&input).unwrap(),
            json!({"threadId":"t","runId":"r","state":null,
                   "messages":[{"id":"m","role":"user","content":"hi"}],
                   "tools":[],"context":[],"forwardedProps":null})
        );
    }

    #[test]
    fn tool_calls_and_results_round_trip_with_unknown_fields_kept() {
        let wire = json!([
            {"id":"a1","role":"assistant","toolCalls":[
                {"id":"c1","type":"function","function":{"name":"create_task","arguments":"{\"title\":\"x\"}"}}]},
            {"id":"t1","role":"tool","toolCallId":"c1","content":"{}","error":null},
        ]);
        let messages: Vec<Message> = serde_json::from_value(wire.clone()).unwrap();
        assert_eq!(messages[0].tool_calls[0].function.name, "create_task");
        assert_eq!(messages[0].content, None);
        assert_eq!(messages[1].tool_call_id.as_deref(), Some("c1"));
        assert_eq!(serde_json::to_value(&messages).unwrap(), wire);
        let snapshot: Event =
            serde_json::from_value(json!({"type":"MESSAGES_SNAPSHOT","messages":wire})).unwrap();
        assert!(matches!(snapshot, Event::MessagesSnapshot { messages } if messages.len() == 2));
    }

    #[test]
    fn encodes_one_sse_frame() {
        let event = Event::TextMessageContent {
            message_id: "m".into(),
            delta: "hi".into(),
        };
        assert_eq!(
            event.to_sse(),
            "data: {\"type\":\"TEXT_MESSAGE_CONTENT\",\"messageId\":\"m\",\"delta\":\"hi\"}\n\n"
        );
    }
}
