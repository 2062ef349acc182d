//! Everything the gateway refuses, said once: [`Error`] for a refused frame
//! or request (an `error` frame on a socket, `{code, message}` JSON over
//! HTTP), [`CloseReason`] for a refused connection (a close code on a
//! socket, an HTTP status before an SSE stream starts).

use axum::{
    Json,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use protocol::board_frames::{ErrorCode, ErrorFrame};
use serde::Serialize;

/// A frame or request the gateway refuses; the connection stays open.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No valid token, or one that expired; the text says which.
    #[error("{0}")]
    Unauthorized(String),
    #[error("the token does not grant {} board {board:?}", if *.write { "writing" } else { "reading" })]
    Forbidden { board: String, write: bool },
    #[error("the token does not grant {} channel {channel:?}", if *.publish { "publishing on" } else { "subscribing to" })]
    ChannelForbidden { channel: String, publish: bool },
    #[error("the token does not grant creating boards")]
    CannotCreateBoards,
    /// A field breaks a rule; the text names the field and the rule.
    #[error("{0}")]
    InvalidArgument(String),
    /// A frame protocol's decoder refused (bad JSON, unknown type, missing field).
    #[error("{message}")]
    BadFrame { code: ErrorCode, message: String },
    #[error("binary frames are not supported; send JSON text")]
    BinaryFrame,
    #[error("at most {0} boards per connection")]
    TooManySubscriptions(usize),
    #[error("not subscribed to board {0:?}")]
    NotSubscribed(String),
    #[error("not subscribed to channel {0:?}")]
    NotSubscribedChannel(String),
    #[error("more than {0} frames per second; frame ignored")]
    RateLimited(f64),
    /// board-service did not answer within the call timeout.
    #[error("board-service did not answer in time")]
    Timeout,
    /// board-service refused or failed the call; classified by `protocol::status`.
    #[error("board-service: {}", .0.message())]
    Upstream(tonic::Status),
}

impl From<tonic::Status> for Error {
    fn from(status: tonic::Status) -> Self {
        Self::Upstream(status)
    }
}

impl Error {
    /// The code and message a client sees. Internal causes are logged here,
    /// once, and shown only as a generic error.
    pub fn client_error(&self) -> (ErrorCode, String) {
        let code = match self {
            Self::Unauthorized(_) => ErrorCode::Unauthorized,
            Self::Forbidden { .. } | Self::ChannelForbidden { .. } | Self::CannotCreateBoards => {
                ErrorCode::Forbidden
            }
            Self::InvalidArgument(_) => ErrorCode::InvalidArgument,
            Self::BadFrame { code, .. } => *code,
            Self::BinaryFrame => ErrorCode::UnsupportedFrame,
            Self::TooManySubscriptions(_) => ErrorCode::TooManySubscriptions,
            Self::NotSubscribed(_) | Self::NotSubscribedChannel(_) => ErrorCode::NotSubscribed,
            Self::RateLimited(_) => ErrorCode::RateLimited,
            Self::Timeout => return classified(&tonic::Status::deadline_exceeded("timeout")),
            Self::Upstream(status) => return classified(status),
        };
        (code, self.to_string())
    }

    /// The `error` frame answering the client frame `id` about `board_id`.
    pub fn frame(&self, id: Option<String>, board_id: Option<String>) -> ErrorFrame {
        let (code, message) = self.client_error();
        ErrorFrame {
            code,
            message,
            id,
            board_id,
        }
    }
}

fn classified(status: &tonic::Status) -> (ErrorCode, String) {
    let error = protocol::status::classify(status);
    if error.code == ErrorCode::Internal {
        tracing::error!(%status, "board-service call failed");
    }
    (error.code, error.message)
}

#[derive(Serialize)]
struct ApiError {
    code: ErrorCode,
    message: String,
}

/// `{code, message}` with the HTTP status the code maps to.
impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let (code, message) = self.client_error();
        let status = StatusCode::from_u16(protocol::status::http_status(code))
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, Json(ApiError { code, message })).into_response()
    }
}

/// Why the gateway ends (or refuses) a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    Shutdown,
    /// The client broke RFC 6455 framing (an unmasked frame, a bad opcode …).
    ProtocolError,
    /// A text frame that is not UTF-8.
    InvalidPayload,
    TooBig,
    MaxConnections,
    Unauthorized,
    TokenExpired,
    HeartbeatTimeout,
    SlowConsumer,
    MessageRate,
    IpConnectRate,
}

impl CloseReason {
    /// The WebSocket close code.
    pub fn code(self) -> u16 {
        match self {
            Self::Shutdown => 1001,
            Self::ProtocolError => 1002,
            Self::InvalidPayload => 1007,
            Self::TooBig => 1009,
            Self::MaxConnections => 1013,
            Self::Unauthorized => 4001,
            Self::TokenExpired => 4002,
            Self::HeartbeatTimeout => 4008,
            Self::SlowConsumer => 4009,
            Self::MessageRate => 4029,
            Self::IpConnectRate => 4030,
        }
    }

    /// The HTTP status that refuses a connection for this reason before it
    /// is upgraded or streamed (SSE).
    pub fn http_status(self) -> StatusCode {
        match self {
            Self::Unauthorized | Self::TokenExpired => StatusCode::UNAUTHORIZED,
            Self::MaxConnections | Self::Shutdown => StatusCode::SERVICE_UNAVAILABLE,
            Self::IpConnectRate | Self::MessageRate => StatusCode::TOO_MANY_REQUESTS,
            Self::TooBig => StatusCode::PAYLOAD_TOO_LARGE,
            Self::ProtocolError | Self::InvalidPayload => StatusCode::BAD_REQUEST,
            Self::HeartbeatTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::SlowConsumer => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    pub fn text(self) -> &'static str {
        match self {
            Self::Shutdown => "gateway shutting down",
            Self::ProtocolError => "WebSocket protocol error",
            Self::InvalidPayload => "text frame is not valid UTF-8",
            Self::TooBig => "frame larger than the limit",
            Self::MaxConnections => "connection limit reached, retry later",
            Self::Unauthorized => "a valid token is required",
            Self::TokenExpired => "token expired",
            Self::HeartbeatTimeout => "no message within the heartbeat timeout",
            Self::SlowConsumer => "client stopped reading",
            Self::MessageRate => "message rate limit exceeded",
            Self::IpConnectRate => "connection rate limit for this address exceeded",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_map_to_their_codes_and_hide_internal_causes() {
        let write = Error::Forbidden {
            board: "b1".into(),
            write: true,
        };
        assert_eq!(write.client_error().0, ErrorCode::Forbidden);
        assert!(write.to_string().contains("writing board \"b1\""));
        assert_eq!(
            Error::RateLimited(50.0).client_error().0,
            ErrorCode::RateLimited
        );
        let internal = Error::from(tonic::Status::internal("relation tasks is missing"));
        let (code, message) = internal.client_error();
        assert_eq!(code, ErrorCode::Internal);
        assert!(!message.contains("relation"), "{message}");
        let frame = Error::NotSubscribed("b2".into()).frame(Some("c1".into()), None);
        assert_eq!(
            (frame.code, frame.id.as_deref()),
            (ErrorCode::NotSubscribed, Some("c1"))
        );
    }

    #[test]
    fn refused_connections_get_an_http_status_before_the_upgrade() {
        assert_eq!(CloseReason::TokenExpired.http_status(), 401);
        assert_eq!(CloseReason::MaxConnections.http_status(), 503);
        assert_eq!(CloseReason::IpConnectRate.http_status(), 429);
    }
}
