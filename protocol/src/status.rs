//! The one mapping from a board-service gRPC status to what a client is told.
//!
//! Every edge (gateway frames, `/api/boards`, the chat's tools) classifies
//! board-service's answers here, so they agree. A transport failure
//! (`Unknown`, `Cancelled`, `DeadlineExceeded`, `Unavailable`) is
//! `Unavailable`: the change may or may not have committed, so the client
//! must retry with the same id, never conclude that it failed.

use tonic::{Code, Status};

use crate::board_frames::ErrorCode;

/// How a failed board-service call is reported to a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientError {
    pub code: ErrorCode,
    /// Safe to show: board-service's own message for input errors, a fixed
    /// text for transport and internal failures.
    pub message: String,
}

impl ClientError {
    /// The HTTP status for this error at an HTTP edge.
    pub fn http_status(&self) -> u16 {
        http_status(self.code)
    }

    /// Whether retrying the same request (same id) may succeed.
    pub fn retryable(&self) -> bool {
        self.code == ErrorCode::Unavailable
    }
}

/// Classifies `status`; internal causes are never passed through.
pub fn classify(status: &Status) -> ClientError {
    let pass = |code| ClientError {
        code,
        message: status.message().to_owned(),
    };
    match status.code() {
        Code::InvalidArgument | Code::OutOfRange => pass(ErrorCode::InvalidArgument),
        Code::NotFound => pass(ErrorCode::NotFound),
        Code::AlreadyExists => pass(ErrorCode::AlreadyExists),
        Code::Aborted => pass(ErrorCode::VersionConflict),
        Code::FailedPrecondition => pass(ErrorCode::FailedPrecondition),
        Code::Unauthenticated => pass(ErrorCode::Unauthorized),
        Code::PermissionDenied => pass(ErrorCode::Forbidden),
        Code::ResourceExhausted => pass(ErrorCode::InvalidArgument),
        Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled | Code::Unknown => {
            ClientError {
                code: ErrorCode::Unavailable,
                message: "board-service is unavailable, retry later with the same id".to_owned(),
            }
        }
        Code::Ok | Code::Internal | Code::Unimplemented | Code::DataLoss => ClientError {
            code: ErrorCode::Internal,
            message: "internal error".to_owned(),
        },
    }
}

/// The HTTP status for an error code at an HTTP edge.
pub fn http_status(code: ErrorCode) -> u16 {
    match code {
        ErrorCode::InvalidJson
        | ErrorCode::UnknownType
        | ErrorCode::InvalidFrame
        | ErrorCode::InvalidChannel
        | ErrorCode::UnsupportedFrame
        | ErrorCode::InvalidArgument => 400,
        ErrorCode::Unauthorized => 401,
        ErrorCode::Forbidden => 403,
        ErrorCode::NotFound | ErrorCode::NotSubscribed => 404,
        ErrorCode::VersionConflict | ErrorCode::AlreadyExists => 409,
        ErrorCode::FailedPrecondition => 422,
        ErrorCode::TooManySubscriptions | ErrorCode::RateLimited => 429,
        ErrorCode::Unavailable => 503,
        ErrorCode::Internal => 500,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transport_failures_are_retryable_and_hide_their_cause() {
        for code in [
            Code::Unknown,
            Code::Cancelled,
            Code::Unavailable,
            Code::DeadlineExceeded,
        ] {
            let e = classify(&Status::new(code, "transport error: h2 reset"));
            assert_eq!(e.code, ErrorCode::Unavailable);
            assert!(e.retryable() && !e.message.contains("h2"));
        }
        let internal = classify(&Status::internal("relation \"tasks\" does not exist"));
        assert_eq!(
            (internal.code, internal.message.as_str()),
            (ErrorCode::Internal, "internal error")
        );
        let denied = classify(&Status::permission_denied("no write on b1"));
        assert_eq!(
            (denied.code, denied.http_status()),
            (ErrorCode::Forbidden, 403)
        );
        assert_eq!(classify(&Status::unauthenticated("x")).http_status(), 401);
        assert_eq!(
            classify(&Status::aborted("stale")).code,
            ErrorCode::VersionConflict
        );
    }
}
