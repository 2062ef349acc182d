//! HTTP errors as JSON: `{"error": {"code", "message"}}`.

use axum::{Json, http::StatusCode, response::IntoResponse};
use protocol::chat_frames::ErrorData;
use serde::Serialize;

/// Every error the HTTP API answers with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Busy(String),
    #[error("agent-bridge is shutting down")]
    ShuttingDown,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

#[derive(Serialize)]
struct Body {
    error: ErrorData,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> axum::response::Response {
        let (status, code) = match &self {
            Self::BadRequest(_) => (StatusCode::BAD_REQUEST, "invalid_request"),
            Self::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            Self::Busy(_) => (StatusCode::CONFLICT, "run_in_progress"),
            Self::ShuttingDown => (StatusCode::SERVICE_UNAVAILABLE, "shutting_down"),
            Self::Database(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        };
        let message = match &self {
            Self::Database(err) => {
                tracing::error!(error = %err, "database error");
                "internal error".to_owned()
            }
            other => other.to_string(),
        };
        let body = Body {
            error: ErrorData {
                code: code.into(),
                message,
            },
        };
        (status, Json(body)).into_response()
    }
}
