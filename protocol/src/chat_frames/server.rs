//! Frames agent-bridge sends to chat clients.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Every frame agent-bridge sends, tagged by `type`.
///
/// `seq` is the session's sequence number: frames of runs take the next number
/// and reach every socket of the session in the same order. Frames meant for
/// one socket only (`connected`, a rejected request) carry the session's
/// latest number without taking a new one. `runId` names the run a frame
/// belongs to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    /// First frame on every socket.
    Connected {
        seq: u64,
        #[serde(rename = "sessionId")]
        session_id: String,
        #[serde(rename = "boardId")]
        board_id: String,
        /// The run in flight when the socket connected, if any.
        #[serde(rename = "runId", default, skip_serializing_if = "Option::is_none")]
        run_id: Option<String>,
    },
    Status {
        seq: u64,
        #[serde(rename = "runId", default, skip_serializing_if = "Option::is_none")]
        run_id: Option<String>,
        data: StatusData,
    },
    /// A piece of streamed assistant text.
    Token {
        seq: u64,
        #[serde(rename = "runId", default, skip_serializing_if = "Option::is_none")]
        run_id: Option<String>,
        data: TokenData,
    },
    ToolExecution {
        seq: u64,
        #[serde(rename = "runId", default, skip_serializing_if = "Option::is_none")]
        run_id: Option<String>,
        data: ToolExecution,
    },
    /// The assistant's whole reply, once at the end of a run.
    Message {
        seq: u64,
        #[serde(rename = "runId", default, skip_serializing_if = "Option::is_none")]
        run_id: Option<String>,
        data: FinalMessage,
    },
    Error {
        seq: u64,
        #[serde(rename = "runId", default, skip_serializing_if = "Option::is_none")]
        run_id: Option<String>,
        data: ErrorData,
    },
    Pong,
}

impl ServerFrame {
    /// The frame's sequence number; `None` for `pong`.
    pub fn seq(&self) -> Option<u64> {
        match self {
            Self::Connected { seq, .. }
            | Self::Status { seq, .. }
            | Self::Token { seq, .. }
            | Self::ToolExecution { seq, .. }
            | Self::Message { seq, .. }
            | Self::Error { seq, .. } => Some(*seq),
            Self::Pong => None,
        }
    }

    /// Stamps the sequence number; `pong` has none.
    pub fn set_seq(&mut self, value: u64) {
        match self {
            Self::Connected { seq, .. }
            | Self::Status { seq, .. }
            | Self::Token { seq, .. }
            | Self::ToolExecution { seq, .. }
            | Self::Message { seq, .. }
            | Self::Error { seq, .. } => *seq = value,
            Self::Pong => {}
        }
    }

    /// The run this frame belongs to.
    pub fn run_id(&self) -> Option<&str> {
        match self {
            Self::Connected { run_id, .. }
            | Self::Status { run_id, .. }
            | Self::Token { run_id, .. }
            | Self::ToolExecution { run_id, .. }
            | Self::Message { run_id, .. }
            | Self::Error { run_id, .. } => run_id.as_deref(),
            Self::Pong => None,
        }
    }

    /// Whether this frame ends a run: `message`, a run's `error`, or
    /// `status: cancelled`. A run has exactly one.
    pub fn is_terminal(&self) -> bool {
        match self {
            Self::Message { .. } => true,
            Self::Error { run_id, .. } => run_id.is_some(),
            Self::Status { data, .. } => data.status == RunStatus::Cancelled,
            _ => false,
        }
    }
}

/// `status.data`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusData {
    pub status: RunStatus,
    pub message: String,
    #[serde(rename = "runId", default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
}

/// The state a `status` frame reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Processing,
    Idle,
    Cancelled,
}

/// `token.data`. The last piece of an assistant text has `done: true`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenData {
    pub token: String,
    pub done: bool,
}

/// `tool_execution.data`: the whole state of one tool call each time it changes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolExecution {
    /// Stable across the call's frames (the AG-UI `toolCallId`).
    pub id: String,
    pub tool: String,
    pub status: ToolStatus,
    pub input: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// 0.0–1.0 when the tool reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<f32>,
    /// Milliseconds since the Unix epoch.
    pub start_time: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<i64>,
    /// Set on a call that needs a person's yes before it runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<Box<Approval>>,
}

/// A tool call's approval: what it will do, and once answered, the answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Approval {
    /// What the call will do, in words, for the person asked.
    pub description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved: Option<bool>,
    /// Who answered (the token's `sub`), or `timeout`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Milliseconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_at: Option<i64>,
}

/// Where a tool call is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolStatus {
    Started,
    /// Paused until a tab of the session approves or rejects it.
    AwaitingApproval,
    Running,
    Completed,
    Failed,
}

impl ToolStatus {
    /// The name stored in the database and shown in logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Started => "started",
            Self::AwaitingApproval => "awaiting_approval",
            Self::Running => "running",
            Self::Completed => "completed",
            Self::Failed => "failed",
        }
    }
}

/// `message.data`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FinalMessage {
    pub content: String,
    pub artifacts: Vec<Artifact>,
}

/// Something a run produced besides text, for the UI's result cards.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Artifact {
    /// The output of a tool call that completed.
    ToolResult {
        tool: String,
        #[serde(rename = "toolCallId")]
        tool_call_id: String,
        output: Value,
    },
}

/// `error.data`. `code` is machine-readable: `agent_unavailable`,
/// `agent_timeout`, `agent_protocol_error`, `agent_error`, `run_in_progress`,
/// `invalid_frame`, ...
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorData {
    pub code: String,
    pub message: String,
    /// The run was cut short before it could finish: sending the message
    /// again, with the same `message_id`, retries it without doing any of
    /// its work twice. Absent (false) for every other error.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub retryable: bool,
}

impl ErrorData {
    /// Codes of runs that did not get to finish: the bridge died
    /// (`interrupted`), the agent backend or board-service could not be
    /// reached or timed out, or a bug stopped the run. Any other end (an
    /// answer, a cancel, an agent that reported an error itself) is the
    /// message's result.
    pub const CUT_SHORT: &[&str] = &[
        "interrupted",
        "agent_unavailable",
        "agent_timeout",
        "board_service_unavailable",
        "internal",
    ];

    /// An error, `retryable` when `code` is one of [`Self::CUT_SHORT`].
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        let code = code.into();
        Self {
            retryable: Self::CUT_SHORT.contains(&code.as_str()),
            code,
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn to_value(frame: &ServerFrame) -> Value {
        serde_json::to_value(frame).unwrap()
    }

    #[test]
    fn frames_have_the_ui_shapes() {
        let status = ServerFrame::Status {
            seq: 3,
            run_id: Some("r1".into()),
            data: StatusData {
                status: RunStatus::Processing,
                message: "Understanding your request...".into(),
                run_id: Some("r1".into()),
            },
        };
        assert_eq!(
            to_value(&status),
            json!({"type":"status","seq":3,"runId":"r1",
                   "data":{"status":"processing","message":"Understanding your request...","runId":"r1"}})
        );
        let token = ServerFrame::Token {
            seq: 4,
            run_id: None,
            data: TokenData {
                token: "Create".into(),
                done: false,
            },
        };
        assert_eq!(
            to_value(&token),
            json!({"type":"token","seq":4,"data":{"token":"Create","done":false}})
        );
        assert_eq!(to_value(&ServerFrame::Pong), json!({"type":"pong"}));
        let connected = ServerFrame::Connected {
            seq: 0,
            session_id: "s".into(),
            board_id: "b".into(),
            run_id: None,
        };
        assert_eq!(
            to_value(&connected),
            json!({"type":"connected","seq":0,"sessionId":"s","boardId":"b"})
        );
    }

    #[test]
    fn tool_execution_uses_camel_case_and_omits_missing_fields() {
        let frame = ServerFrame::ToolExecution {
            seq: 5,
            run_id: Some("r".into()),
            data: ToolExecution {
                id: "call-1".into(),
                tool: "create_task".into(),
                status: ToolStatus::Completed,
                input: json!({"title":"Login"}),
                output: Some(json!({"id":"t1"})),
                error: None,
                progress: None,
                start_time: 10,
                end_time: Some(12),
                approval: None,
            },
        };
        let value = to_value(&frame);
        assert_eq!(
            value["data"],
            json!({"id":"call-1","tool":"create_task","status":"completed","input":{"title":"Login"},
                   "output":{"id":"t1"},"startTime":10,"endTime":12})
        );
        let back: ServerFrame = serde_json::from_value(value).unwrap();
        assert_eq!(back, frame);
    }

    #[test]
    fn terminal_frames_are_message_run_error_and_cancelled() {
        let message = ServerFrame::Message {
            seq: 1,
            run_id: Some("r".into()),
            data: FinalMessage {
                content: "done".into(),
                artifacts: vec![Artifact::ToolResult {
                    tool: "t".into(),
                    tool_call_id: "c".into(),
                    output: json!(1),
                }],
            },
        };
        assert!(message.is_terminal());
        assert_eq!(
            to_value(&message)["data"]["artifacts"][0],
            json!({"type":"tool_result","tool":"t","toolCallId":"c","output":1})
        );
        let error = |run_id: Option<&str>| ServerFrame::Error {
            seq: 1,
            run_id: run_id.map(Into::into),
            data: ErrorData::new("x", "y"),
        };
        assert!(error(Some("r")).is_terminal());
        assert_eq!(
            to_value(&error(None))["data"],
            json!({"code":"x","message":"y"}),
            "retryable appears only when true"
        );
        assert_eq!(
            to_value(&ServerFrame::Error {
                seq: 2,
                run_id: Some("r".into()),
                data: ErrorData::new("interrupted", "z")
            })["data"]["retryable"],
            json!(true)
        );
        assert!(!error(None).is_terminal(), "a rejected request ends no run");
        let cancelled = ServerFrame::Status {
            seq: 1,
            run_id: Some("r".into()),
            data: StatusData {
                status: RunStatus::Cancelled,
                message: String::new(),
                run_id: None,
            },
        };
        assert!(cancelled.is_terminal());
    }
}
