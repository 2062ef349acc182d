//! The gateway's side of the shared auth model (`service_kit::auth`): a
//! token checked once at the door, kept with the connection so every
//! command reaches board-service as the end user.

pub use service_kit::auth::Access;
use service_kit::auth::AuthError;

use crate::{error::CloseReason, state::Shared};

/// What a verified token grants, with the token itself to forward.
#[derive(Debug, Clone)]
pub struct Grant {
    pub access: Access,
    /// `None` with auth off: board-service then needs none either.
    pub token: Option<String>,
}

impl Grant {
    /// Everything, with auth off.
    pub fn open() -> Self {
        Self {
            access: Access::open(),
            token: None,
        }
    }
}

/// Checks `token`; the close reason when it grants nothing (4002 for an
/// expired token, 4001 for every other failure).
pub async fn verify(shared: &Shared, token: &str) -> Result<Grant, (CloseReason, String)> {
    let Some(auth) = &shared.auth else {
        return Ok(Grant::open());
    };
    match auth.verify(token).await {
        Ok(access) => Ok(Grant {
            access,
            token: Some(token.to_owned()),
        }),
        Err(AuthError::Expired) => Err((CloseReason::TokenExpired, AuthError::Expired.to_string())),
        Err(err) => Err((CloseReason::Unauthorized, err.to_string())),
    }
}
