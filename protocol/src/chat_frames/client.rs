//! Frames a chat client sends to agent-bridge.

use serde::{Deserialize, Serialize};

/// Every frame a chat client may send, tagged by `type`. Fields the bridge
/// does not use (such as the UI's `timestamp`) are ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientFrame {
    /// A user message that starts a run.
    Message { data: MessageData },
    /// Stops the run in flight (only that run when `runId` is given).
    Cancel {
        #[serde(rename = "runId", default, skip_serializing_if = "Option::is_none")]
        run_id: Option<String>,
        /// Some clients nest the run id under `data`; both are accepted.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        data: Option<CancelData>,
    },
    /// Heartbeat; answered with `pong` on the same socket only.
    Ping,
    /// Answers a tool call that awaits approval; any tab of the session may.
    Approval { data: ApprovalData },
}

impl ClientFrame {
    /// The run a `cancel` names, wherever the client put it.
    pub fn cancel_run_id(&self) -> Option<&str> {
        match self {
            Self::Cancel { run_id, data } => run_id
                .as_deref()
                .or_else(|| data.as_ref().and_then(|d| d.run_id.as_deref())),
            _ => None,
        }
    }
}

/// The body of a client `message`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageData {
    pub content: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// The client's id for this message, kept across its retries: a message
    /// sent again with the same id starts nothing new.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    /// The UI's view of the conversation. The bridge keeps its own history in
    /// PostgreSQL and uses that, so this is accepted and not trusted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_history: Option<Vec<HistoryEntry>>,
}

/// One entry of a client-side history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub role: String,
    #[serde(default)]
    pub content: String,
}

/// `approval.data`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApprovalData {
    #[serde(rename = "toolCallId")]
    pub tool_call_id: String,
    pub approved: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `cancel.data`, for clients that nest the run id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CancelData {
    #[serde(rename = "runId", default)]
    pub run_id: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_ui_message_frame_with_extra_fields() {
        let frame: ClientFrame = serde_json::from_str(
            r#"{"type":"message","data":{"content":"Create a P1 story","session_id":"s1",
                "message_history":[{"role":"user","content":"hi"}]},"timestamp":"2025-11-11T10:00:00Z"}"#,
        )
        .unwrap();
        let ClientFrame::Message { data } = frame else {
            panic!("not a message: {frame:?}");
        };
        assert_eq!(data.content, "Create a P1 story");
        assert_eq!(data.session_id.as_deref(), Some("s1"));
        assert_eq!(data.message_history.unwrap()[0].role, "user");
    }

    #[test]
    fn cancel_takes_the_run_id_at_top_level_or_under_data() {
        let top: ClientFrame = serde_json::from_str(r#"{"type":"cancel","runId":"r1"}"#).unwrap();
        let nested: ClientFrame =
            serde_json::from_str(r#"{"type":"cancel","data":{"runId":"r2"}}"#).unwrap();
        let bare: ClientFrame = serde_json::from_str(r#"{"type":"cancel"}"#).unwrap();
        assert_eq!(top.cancel_run_id(), Some("r1"));
        assert_eq!(nested.cancel_run_id(), Some("r2"));
        assert_eq!(bare.cancel_run_id(), None);
    }

    #[test]
    fn ping_and_unknown_types() {
        let ping: ClientFrame = serde_json::from_str(r#"{"type":"ping"}"#).unwrap();
        assert_eq!(ping, ClientFrame::Ping);
        assert!(serde_json::from_str::<ClientFrame>(r#"{"type":"shout"}"#).is_err());
    }
}
