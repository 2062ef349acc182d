//! Failed tool calls, told so that the model can fix its next call.
//!
//! board-service's messages already name the field and the rule; each kind
//! of refusal gets the next step added (re-read the version, pick another
//! lane, ...). Transport and internal failures show only a generic text.

use std::time::Duration;

use protocol::board_frames::ErrorCode;
use rmcp::model::{CallToolResult, ContentBlock};

/// A board-service call that failed, as `protocol::status` classifies it.
#[derive(Debug, Clone)]
pub struct BoardError {
    pub code: ErrorCode,
    pub message: String,
}

impl From<tonic::Status> for BoardError {
    fn from(status: tonic::Status) -> Self {
        let error = protocol::status::classify(&status);
        Self {
            code: error.code,
            message: error.message,
        }
    }
}

impl BoardError {
    pub fn timed_out(after: Duration) -> Self {
        Self {
            code: ErrorCode::Unavailable,
            message: format!("board-service did not answer within {after:?}"),
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self {
            code: ErrorCode::InvalidArgument,
            message: message.into(),
        }
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self {
            code: ErrorCode::Forbidden,
            message: message.into(),
        }
    }

    /// What the model reads: the refusal and what to do about it.
    /// `lanes` are the board's lane keys, when the call knows its board.
    pub fn explain(&self, lanes: Option<&[String]>) -> String {
        let message = self.message.trim_end_matches('.');
        let lower = message.to_lowercase();
        match self.code {
            ErrorCode::VersionConflict => format!(
                "{message}. The task changed since you read it: call get_board to read its \
                 current version, check that your change still makes sense, then retry with \
                 expected_version set to that version (or leave expected_version out)."
            ),
            ErrorCode::FailedPrecondition if lower.contains("wip limit") => format!(
                "{message}. The lane is full: move a task out of it first, raise its limit with \
                 update_lane (wip_limit, or clear_wip_limit), or choose another lane."
            ),
            ErrorCode::FailedPrecondition if lower.contains("not in the target lane") => format!(
                "{message}. before_task_id and after_task_id must name a task already in the \
                 lane you move to; call get_board to see the lane's tasks, or leave both out to \
                 move to the end of the lane."
            ),
            ErrorCode::NotFound if lower.contains("lane") => match lanes {
                Some(keys) if !keys.is_empty() => format!(
                    "{message}. This board's lanes are: {}. Pass one of these keys as lane \
                     (or create the lane first with create_lane).",
                    keys.join(", ")
                ),
                _ => format!(
                    "{message}. Call get_board to see the board's lane keys, or create the lane \
                     first with create_lane."
                ),
            },
            ErrorCode::NotFound if lower.contains("board") => {
                format!("{message}. Call list_boards to see the boards you may use.")
            }
            ErrorCode::NotFound if lower.contains("task") => format!(
                "{message}. It may have been deleted: call get_board to see the board's tasks \
                 and their ids."
            ),
            ErrorCode::AlreadyExists => format!("{message}. Choose another key or name."),
            ErrorCode::Forbidden => format!(
                "{message}. Your token does not allow this on that board: ask for write access, \
                 or only read."
            ),
            ErrorCode::Unauthorized => format!(
                "{message}. board-service did not accept the token: get a fresh token and \
                 reconnect."
            ),
            // The classifier's text speaks of request ids, which tools hide.
            ErrorCode::Unavailable => "board-service is unavailable right now: retry in a moment. \
                 A change may or may not have been made, so call get_board before retrying a \
                 write."
                .to_owned(),
            _ => message.to_owned(),
        }
    }

    /// This error as a tool result with `isError: true`.
    pub fn into_result(self, lanes: Option<&[String]>) -> CallToolResult {
        CallToolResult::error(vec![ContentBlock::text(self.explain(lanes))])
    }
}
