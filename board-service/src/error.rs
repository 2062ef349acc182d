//! The one error type of board-service, mapped once onto gRPC status codes.

use tonic::Status;

/// Everything a board-service call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request breaks a rule; the message names the field and the rule.
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    AlreadyExists(String),
    /// `expected_version` no longer matches: re-read and retry.
    #[error("{0}")]
    StaleVersion(String),
    /// The board's state refuses the change (a full WIP lane, a non-empty lane).
    #[error("{0}")]
    FailedPrecondition(String),
    /// A `request_id` reused for a different request (the IETF
    /// Idempotency-Key draft's 422).
    #[error("{0}")]
    IdempotencyConflict(String),
    /// No valid bearer token, with auth on.
    #[error("{0}")]
    Unauthenticated(String),
    /// The token does not grant this.
    #[error("{0}")]
    PermissionDenied(String),
    #[error("database unavailable")]
    Unavailable(#[source] sqlx::Error),
    #[error("database error")]
    Database(#[source] sqlx::Error),
    #[error("{0}")]
    Internal(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<sqlx::Error> for Error {
    fn from(err: sqlx::Error) -> Self {
        match err {
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
                Error::Unavailable(err)
            }
            sqlx::Error::Database(ref db) if db.code().is_some_and(|c| is_unavailable_code(&c)) => {
                Error::Unavailable(err)
            }
            sqlx::Error::Database(ref db) => match db.code().as_deref().and_then(refusal) {
                Some(kind) => kind(db.message().to_owned()),
                None => Error::Database(err),
            },
            err => Error::Database(err),
        }
    }
}

impl From<Error> for Status {
    fn from(err: Error) -> Self {
        match err {
            Error::InvalidArgument(msg) => Status::invalid_argument(msg),
            Error::NotFound(msg) => Status::not_found(msg),
            Error::AlreadyExists(msg) => Status::already_exists(msg),
            Error::StaleVersion(msg) => Status::aborted(msg),
            Error::FailedPrecondition(msg) | Error::IdempotencyConflict(msg) => {
                Status::failed_precondition(msg)
            }
            Error::Unauthenticated(msg) => Status::unauthenticated(msg),
            Error::PermissionDenied(msg) => Status::permission_denied(msg),
            Error::Unavailable(source) => {
                tracing::warn!(error = %source, "database unavailable");
                Status::unavailable("database unavailable, retry later")
            }
            Error::Database(source) => {
                tracing::error!(error = ?source, "database error");
                Status::internal("internal error")
            }
            Error::Internal(msg) => {
                tracing::error!(error = %msg, "internal error");
                Status::internal("internal error")
            }
        }
    }
}

/// The error kind of a SQLSTATE that board-service's own SQL functions
/// raise to refuse a request (see the migration that writes tasks in one
/// round trip); their message is meant for the caller.
fn refusal(code: &str) -> Option<fn(String) -> Error> {
    Some(match code {
        "BWINV" => Error::InvalidArgument,
        "BWNTF" => Error::NotFound,
        "BWSTL" => Error::StaleVersion,
        "BWPRE" => Error::FailedPrecondition,
        "BWIDM" => Error::IdempotencyConflict,
        "BWPRM" => Error::PermissionDenied,
        _ => return None,
    })
}

/// SQLSTATEs that mean "the database is not there right now": connection
/// exceptions (08), shutdowns (57P01-57P03) and a dropped database (3D000).
fn is_unavailable_code(code: &str) -> bool {
    code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03" | "3D000")
}

/// The constraint a unique violation hit, if `err` is one.
pub fn unique_violation(err: &sqlx::Error) -> Option<String> {
    let db = err.as_database_error()?;
    (db.code().as_deref() == Some("23505")).then(|| db.constraint().unwrap_or_default().to_owned())
}
