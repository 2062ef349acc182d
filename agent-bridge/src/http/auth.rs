//! Who is calling, and whether they may use a session and its board.

use axum::http::HeaderMap;
use service_kit::auth::{Access, AuthError, Authenticator, bearer_from_headers};

use super::ApiError;
use crate::agent::builtin::tools::{BoardTools, ToolError};

/// A verified caller: its grants and the token to act on its behalf with.
#[derive(Debug, Clone)]
pub struct Caller {
    pub access: Access,
    /// Forwarded to board-service on the built-in agent's calls.
    pub token: Option<String>,
}

impl Caller {
    /// The key its chat sessions are filed under.
    pub fn owner(&self) -> &str {
        self.access.owner_key()
    }
}

/// Checks tokens (when auth is on) and board access.
#[derive(Clone)]
pub struct Gate {
    /// `None` with auth off: everything is open.
    auth: Option<Authenticator>,
    /// board-service, asked when a token names a board by its other name.
    boards: BoardTools,
}

impl Gate {
    pub fn new(auth: Option<Authenticator>, boards: BoardTools) -> Self {
        Self { auth, boards }
    }

    /// board-service, for reads on a caller's behalf.
    pub fn boards(&self) -> &BoardTools {
        &self.boards
    }

    /// Whether tokens are required (and sessions have owners).
    pub fn enabled(&self) -> bool {
        self.auth.is_some()
    }

    /// The caller of a request: `Authorization: Bearer …`, else `?token=`.
    pub async fn caller(
        &self,
        headers: &HeaderMap,
        query_token: Option<&str>,
    ) -> Result<Caller, ApiError> {
        let Some(auth) = &self.auth else {
            return Ok(Caller {
                access: Access::open(),
                token: None,
            });
        };
        let token = bearer_from_headers(headers, query_token)
            .ok_or_else(|| ApiError::Unauthorized(AuthError::Missing.to_string()))?;
        let access = auth.verify(token).await.map_err(|err| match err {
            AuthError::Expired => ApiError::Expired,
            AuthError::KeysUnavailable(_) => ApiError::Unavailable(err.to_string()),
            other => ApiError::Unauthorized(other.to_string()),
        })?;
        // Sessions belong to a subject: a token naming nobody could reach
        // every other such token's sessions.
        if access.subject.is_none() {
            return Err(ApiError::Unauthorized(
                "the token must name its user (sub) to use the chat".into(),
            ));
        }
        Ok(Caller {
            access,
            token: Some(token.to_owned()),
        })
    }

    /// Refuses a board the caller may not read. The token may name the board
    /// by id or by slug: when the name given matches no grant, board-service
    /// (asked with the caller's own token) resolves it and checks too.
    pub async fn check_board(&self, caller: &Caller, board: &str) -> Result<(), ApiError> {
        if self.auth.is_none() || caller.access.can_read(board, board) {
            return Ok(());
        }
        let forbidden = || ApiError::Forbidden(format!("this token may not read board {board}"));
        match self
            .boards
            .with_bearer(caller.token.as_deref())
            .board_names(board)
            .await
        {
            Ok((id, slug)) if caller.access.can_read(&id, &slug) => Ok(()),
            Ok(_) | Err(ToolError::Refused(_)) => Err(forbidden()),
            Err(ToolError::Unavailable(reason)) => Err(ApiError::Unavailable(format!(
                "cannot check access to board {board}: {reason}"
            ))),
        }
    }
}
