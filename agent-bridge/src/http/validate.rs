//! Checks on what clients send: each error names the field and the rule.

use super::ApiError;
use crate::session::valid_session_id;

/// Longest user message accepted.
pub const MAX_CONTENT_CHARS: usize = 20_000;

/// Control characters other than tab and line breaks (NUL, ESC, DEL, C1 …).
fn has_forbidden_control(text: &str) -> bool {
    text.chars()
        .any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
}

/// The message text, trimmed.
pub fn content(content: &str) -> Result<String, ApiError> {
    let trimmed = content.trim();
    if trimmed.is_empty() || trimmed.chars().count() > MAX_CONTENT_CHARS {
        return Err(ApiError::BadRequest(format!(
            "content must be 1–{MAX_CONTENT_CHARS} characters"
        )));
    }
    if has_forbidden_control(trimmed) {
        return Err(ApiError::BadRequest(
            "content must not contain control characters (NUL and the like) other than tab and line breaks".into(),
        ));
    }
    Ok(trimmed.to_owned())
}

/// Board ids or slugs are passed on to board-service, which checks them;
/// this only keeps nonsense out of the database.
pub fn board_id(board: &str) -> Result<(), ApiError> {
    if (1..=128).contains(&board.chars().count()) && !board.chars().any(char::is_control) {
        Ok(())
    } else {
        Err(ApiError::BadRequest(
            "board_id must be 1–128 characters without control characters".into(),
        ))
    }
}

pub fn session_id(id: &str) -> Result<(), ApiError> {
    if valid_session_id(id) {
        Ok(())
    } else {
        Err(ApiError::BadRequest(
            "session_id must be 1–128 characters of letters, digits, '-', '_', '.' or ':'".into(),
        ))
    }
}

/// A client's message id: 1–128 characters, no control characters.
pub fn message_id(id: &str) -> Result<(), ApiError> {
    if (1..=128).contains(&id.chars().count()) && !id.chars().any(char::is_control) {
        Ok(())
    } else {
        Err(ApiError::BadRequest(
            "message_id must be 1–128 characters without control characters".into(),
        ))
    }
}

/// An approval names a tool call of the run, with an optional reason.
pub fn approval(tool_call_id: &str, reason: Option<&str>) -> Result<(), ApiError> {
    if !(1..=128).contains(&tool_call_id.chars().count())
        || tool_call_id.chars().any(char::is_control)
    {
        return Err(ApiError::BadRequest(
            "data.toolCallId must be 1–128 characters without control characters".into(),
        ));
    }
    if reason
        .is_some_and(|r| r.chars().count() > 1000 || r.chars().any(|c| c.is_control() && c != '\n'))
    {
        return Err(ApiError::BadRequest(
            "data.reason must be at most 1000 characters without control characters".into(),
        ));
    }
    Ok(())
}

/// A run id names a run: a UUID.
pub fn run_id(id: &str) -> Result<uuid::Uuid, ApiError> {
    id.parse()
        .map_err(|_| ApiError::BadRequest("runId must be a run's id (a UUID)".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_refused_by_field() {
        let err = content("hi\0there").unwrap_err().to_string();
        assert!(err.starts_with("content must not contain control"), "{err}");
        assert!(content("line one\nline\ttwo\r\n").is_ok());
        assert!(content("\u{1b}[31m").is_err() && content("\u{7f}").is_err());
        assert!(content("\u{85}").is_err(), "C1 controls too");
        assert!(
            message_id("m\0")
                .unwrap_err()
                .to_string()
                .starts_with("message_id")
        );
        assert!(
            session_id("s\0")
                .unwrap_err()
                .to_string()
                .starts_with("session_id")
        );
        assert!(
            board_id("b\0")
                .unwrap_err()
                .to_string()
                .starts_with("board_id")
        );
        assert!(run_id("r\0").unwrap_err().to_string().starts_with("runId"));
        assert!(message_id("").is_err() && message_id("m-1").is_ok());
    }
}
