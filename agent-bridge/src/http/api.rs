//! The HTTP fallback for clients without WebSocket.

use axum::{
    Json,
    extract::{Path, State, rejection::JsonRejection},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use protocol::chat_frames::{Artifact, ToolExecution};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{ApiError, AppState};
use crate::{
    run::{RunResult, StartError},
    session::valid_session_id,
};

/// `POST /api/chat`.
#[derive(Debug, Deserialize)]
pub struct ChatRequest {
    pub content: String,
    #[serde(default)]
    pub session_id: Option<String>,
    #[serde(default)]
    pub board_id: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ChatResponse {
    session_id: String,
    #[serde(flatten)]
    run: RunResult,
}

/// Runs the message to its end and answers with the whole run. Sockets on the
/// session see the run stream as usual. A backend that is down answers 503,
/// one that timed out 504, one that sent garbage 502.
#[tracing::instrument(skip_all)]
pub async fn chat(
    State(state): State<AppState>,
    request: Result<Json<ChatRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(request) = request.map_err(|rejection| ApiError::BadRequest(rejection.body_text()))?;
    let content = validate_content(&request.content)?;
    if let Some(id) = &request.session_id {
        check_session_id(id)?;
    }
    if let Some(board) = &request.board_id {
        check_board_id(board)?;
    }
    let session = state
        .sessions
        .open(request.session_id.as_deref(), request.board_id.as_deref())
        .await?;
    let (_, done) = state
        .runner
        .start(session.clone(), content)
        .map_err(|err| match err {
            StartError::Busy(_) => ApiError::Busy(err.to_string()),
            StartError::ShuttingDown => ApiError::ShuttingDown,
        })?;
    let run = done.await.map_err(|_| ApiError::ShuttingDown)?;
    let status = match run.error.as_ref().map(|e| e.code.as_str()) {
        None => StatusCode::OK,
        Some("agent_unavailable" | "board_service_unavailable") => StatusCode::SERVICE_UNAVAILABLE,
        Some("agent_timeout") => StatusCode::GATEWAY_TIMEOUT,
        Some("agent_protocol_error") => StatusCode::BAD_GATEWAY,
        Some("internal") => StatusCode::INTERNAL_SERVER_ERROR,
        // The agent ran and reported a failure (a tool raised): the request worked.
        Some(_) => StatusCode::OK,
    };
    let body = ChatResponse {
        session_id: session.id().to_owned(),
        run,
    };
    Ok((status, Json(body)).into_response())
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct HistoryResponse {
    session_id: String,
    board_id: String,
    messages: Vec<HistoryMessage>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct HistoryMessage {
    id: Uuid,
    run_id: Option<Uuid>,
    role: String,
    content: String,
    artifacts: Vec<Artifact>,
    /// The run's tool calls, on the assistant message of the run.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_executions: Vec<ToolExecution>,
    /// Milliseconds since the Unix epoch.
    created_at: i64,
}

/// `GET /api/sessions/{id}/messages`: the session's history, oldest first.
pub async fn messages(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<impl Serialize>, ApiError> {
    check_session_id(&id)?;
    let session = state
        .store
        .find_session(&id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no session {id}")))?;
    let mut tools = state.store.tool_executions(&id).await?;
    let messages = state
        .store
        .history(&id, 1000)
        .await?
        .into_iter()
        .map(|m| HistoryMessage {
            tool_executions: match (m.role.as_str(), m.run_id) {
                ("assistant", Some(run)) => tools.remove(&run).unwrap_or_default(),
                _ => Vec::new(),
            },
            id: m.id,
            run_id: m.run_id,
            role: m.role,
            content: m.content,
            artifacts: m.artifacts,
            created_at: m.created_at.timestamp_millis(),
        })
        .collect();
    Ok(Json(HistoryResponse {
        session_id: session.id,
        board_id: session.board_id,
        messages,
    }))
}

/// Longest user message accepted.
pub const MAX_CONTENT_CHARS: usize = 20_000;

pub fn validate_content(content: &str) -> Result<String, ApiError> {
    let trimmed = content.trim();
    if trimmed.is_empty() || trimmed.chars().count() > MAX_CONTENT_CHARS {
        return Err(ApiError::BadRequest(format!(
            "content must be 1–{MAX_CONTENT_CHARS} characters"
        )));
    }
    Ok(trimmed.to_owned())
}

/// Board ids or slugs are passed on to board-service, which checks them;
/// this only keeps nonsense out of the database.
pub fn check_board_id(board: &str) -> Result<(), ApiError> {
    if (1..=128).contains(&board.len()) && !board.chars().any(char::is_control) {
        Ok(())
    } else {
        Err(ApiError::BadRequest(
            "board_id must be 1–128 characters without control characters".into(),
        ))
    }
}

pub fn check_session_id(id: &str) -> Result<(), ApiError> {
    if valid_session_id(id) {
        Ok(())
    } else {
        Err(ApiError::BadRequest(
            "session_id must be 1–128 characters of letters, digits, '-', '_', '.' or ':'".into(),
        ))
    }
}
