//! HTTP errors as JSON: `{"error": {"code", "message"}}`.

use axum::{Json, http::StatusCode, response::IntoResponse};
use protocol::chat_frames::ErrorData;
use serde::Serialize;

/// Every error the HTTP API answers with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    /// No token, or one that grants nothing (401).
    #[error("{0}")]
    Unauthorized(String),
    /// The token has expired (401, code `token_expired`).
    #[error("the token has expired")]
    Expired,
    /// A valid token that may not do this (403).
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Busy(String),
    /// An answer to an approval nobody waits for (409, `unknown_approval`).
    #[error("{0}")]
    NotPending(String),
    #[error("{0}")]
    TooLarge(String),
    #[error("{0}")]
    RateLimited(String),
    /// Something this bridge needs is down (503).
    #[error("{0}")]
    Unavailable(String),
    #[error("agent-bridge is shutting down")]
    ShuttingDown,
    /// A bug, logged where it happened; the client sees `internal error`.
    #[error("internal error")]
    Internal,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl ApiError {
    /// The status and `error.code` clients see.
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Self::BadRequest(_) => (StatusCode::BAD_REQUEST, "invalid_request"),
            Self::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            Self::Expired => (StatusCode::UNAUTHORIZED, "token_expired"),
            Self::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            Self::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            Self::Busy(_) => (StatusCode::CONFLICT, "run_in_progress"),
            Self::NotPending(_) => (StatusCode::CONFLICT, "unknown_approval"),
            Self::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
            Self::RateLimited(_) => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            Self::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            Self::ShuttingDown => (StatusCode::SERVICE_UNAVAILABLE, "shutting_down"),
            Self::Internal | Self::Database(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }

    /// The WebSocket close code for a refusal found before the socket serves.
    pub fn close_code(&self) -> u16 {
        match self {
            Self::Unauthorized(_) => 4001,
            Self::Expired => 4002,
            Self::Forbidden(_) => 4003,
            Self::BadRequest(_) | Self::NotFound(_) | Self::NotPending(_) => 4000,
            Self::RateLimited(_) | Self::Unavailable(_) | Self::Busy(_) => 1013,
            Self::ShuttingDown => 1001,
            Self::TooLarge(_) => 1009,
            Self::Internal | Self::Database(_) => 1011,
        }
    }
}

#[derive(Serialize)]
struct Body {
    error: ErrorData,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> axum::response::Response {
        let (status, code) = self.status_and_code();
        let message = match &self {
            Self::Database(err) => {
                tracing::error!(error = %err, "database error");
                "internal error".to_owned()
            }
            other => other.to_string(),
        };
        let body = Body {
            error: ErrorData::new(code, message),
        };
        (status, Json(body)).into_response()
    }
}
