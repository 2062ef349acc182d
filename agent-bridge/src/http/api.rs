//! The HTTP fallback for clients without WebSocket.

use std::sync::Arc;

use axum::{
    Json,
    extract::{
        Path, Query, State,
        rejection::{JsonRejection, QueryRejection},
    },
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use protocol::chat_frames::{Artifact, ToolExecution};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{ApiError, AppState, Caller, validate};
use crate::{
    run::{RunResult, StartError, Started, UserMessage},
    session::{OpenError, Session},
};

/// `POST /api/chat`.
#[derive(Debug, Deserialize)]
pub struct ChatRequest {
    pub content: String,
    #[serde(default)]
    pub session_id: Option<String>,
    #[serde(default)]
    pub board_id: Option<String>,
    /// The client's id for the message, kept across its retries.
    #[serde(default)]
    pub message_id: Option<String>,
}

/// `?token=` for clients that cannot set headers.
#[derive(Debug, Default, Deserialize)]
pub struct TokenQuery {
    pub token: Option<String>,
}

/// The session `id` (or a new one) for `caller`: its board must be readable
/// by the token, and an existing session must be the caller's own.
pub(super) async fn open_for(
    state: &AppState,
    caller: &Caller,
    id: Option<&str>,
    board: Option<&str>,
) -> Result<Arc<Session>, ApiError> {
    if let Some(board) = board {
        state.gate.check_board(caller, board).await?;
    }
    let session = state
        .sessions
        .open(id, board, caller.owner(), state.gate.enabled())
        .await
        .map_err(|err| match err {
            OpenError::NotYours => ApiError::Forbidden(err.to_string()),
            OpenError::Database(err) => ApiError::Database(err),
        })?;
    if board.is_none_or(|b| b != session.board_id()) {
        state.gate.check_board(caller, session.board_id()).await?;
    }
    Ok(session)
}

/// Maps a body rejection: too large is 413, the rest 400 naming the problem.
pub(super) fn body_error(rejection: JsonRejection) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::TooLarge("the request body is larger than CHAT_MAX_FRAME_BYTES".into())
    } else {
        ApiError::BadRequest(rejection.body_text())
    }
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
    headers: HeaderMap,
    query: Result<Query<TokenQuery>, QueryRejection>,
    request: Result<Json<ChatRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let token = query.as_ref().ok().and_then(|q| q.token.as_deref());
    let caller = state.gate.caller(&headers, token).await?;
    let Json(request) = request.map_err(body_error)?;
    let content = validate::content(&request.content)?;
    if let Some(id) = &request.session_id {
        validate::session_id(id)?;
    }
    if let Some(board) = &request.board_id {
        validate::board_id(board)?;
    }
    if let Some(id) = &request.message_id {
        validate::message_id(id)?;
    }
    let session = open_for(
        &state,
        &caller,
        request.session_id.as_deref(),
        request.board_id.as_deref(),
    )
    .await?;
    let message = UserMessage {
        content,
        token: caller.token.clone(),
        message_id: request.message_id.clone(),
        frontend_tools: Vec::new(),
    };
    let started = state
        .runner
        .start(session.clone(), message)
        .await
        .map_err(start_error)?;
    let run = match started {
        // The run ends with a result unless its task died (a bug); only a
        // bridge that is really stopping says so.
        Started::New { run_id, done } => done.await.map_err(|_| {
            if state.runner.is_stopping() {
                ApiError::ShuttingDown
            } else {
                tracing::error!(run = %run_id, "run ended without a result");
                ApiError::Internal
            }
        })?,
        // A resend of a message still being answered waits for that run.
        Started::InFlight(run_id) => state
            .runner
            .result_of(&session, run_id)
            .await
            .map_err(start_error)?,
        Started::Answered(result, _) => result,
    };
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

pub(super) fn start_error(err: StartError) -> ApiError {
    match err {
        StartError::Busy(_) => ApiError::Busy(err.to_string()),
        StartError::ShuttingDown => ApiError::ShuttingDown,
        StartError::Database(err) => err.into(),
    }
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
    headers: HeaderMap,
    query: Result<Query<TokenQuery>, QueryRejection>,
    Path(id): Path<String>,
) -> Result<Json<impl Serialize>, ApiError> {
    let token = query.as_ref().ok().and_then(|q| q.token.as_deref());
    let caller = state.gate.caller(&headers, token).await?;
    validate::session_id(&id)?;
    let session = state
        .store
        .find_session(&id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no session {id}")))?;
    if state.gate.enabled() && session.owner != caller.owner() {
        return Err(ApiError::Forbidden(
            "this session belongs to another user".into(),
        ));
    }
    state.gate.check_board(&caller, &session.board_id).await?;
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
