//! One auth model for every Boardwire service.
//!
//! A bearer token is a JWT, signed with a shared HS256 secret (`JWT_SECRET`,
//! or its old name `WS_JWT_SECRET`) or with RS256/ES256 keys published at a
//! JWKS URL (`JWT_JWKS_URL`: Auth0, Keycloak, Supabase …). Its claims:
//!
//! - `exp` (required) and `nbf` (optional), checked with a small leeway;
//!   `aud` and `iss` when `JWT_AUDIENCE` / `JWT_ISSUER` are set;
//! - `sub`: who the caller is; chat sessions and idempotency keys belong to it;
//! - `read` / `write`: board ids or slugs, `"*"` for every board. Write implies read;
//! - `create_boards: true`, or `"*"` in `write`, allows creating boards.
//!
//! With no secret and no JWKS URL, auth is off and every caller gets
//! [`Access::open`]. Services talk to board-service with the end user's token
//! when they act for one, and with [`Authenticator::service_token`] otherwise.

mod access;
mod jwks;
mod token;

pub use access::Access;
pub use token::{AuthError, Authenticator};

use http::HeaderMap;
use tonic::metadata::{MetadataMap, MetadataValue};

/// The auth settings every service reads; flatten them into its config.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct AuthConfig {
    /// HS256 secret for bearer tokens; unset (with no JWKS URL) turns auth off.
    #[arg(long = "jwt-secret", env = "JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// The old name of JWT_SECRET, still read.
    #[arg(
        long = "ws-jwt-secret",
        env = "WS_JWT_SECRET",
        hide_env_values = true,
        hide = true
    )]
    pub legacy_jwt_secret: Option<String>,
    /// JWKS URL whose RS256/ES256 keys sign bearer tokens.
    #[arg(long = "jwt-jwks-url", env = "JWT_JWKS_URL")]
    pub jwks_url: Option<String>,
    /// Required `aud` claim, when set.
    #[arg(long = "jwt-audience", env = "JWT_AUDIENCE")]
    pub audience: Option<String>,
    /// Required `iss` claim, when set.
    #[arg(long = "jwt-issuer", env = "JWT_ISSUER")]
    pub issuer: Option<String>,
    /// Clock skew allowed on `exp` and `nbf`, seconds.
    #[arg(
        long = "jwt-leeway-secs",
        env = "JWT_LEEWAY_SECS",
        default_value_t = 30
    )]
    pub leeway_secs: u64,
    /// Token this service sends to board-service when it acts for no end
    /// user (the gateway's shared board feeds). Needed with JWT_JWKS_URL;
    /// with JWT_SECRET the service signs its own.
    #[arg(long = "service-token", env = "SERVICE_TOKEN", hide_env_values = true)]
    pub service_token: Option<String>,
}

impl AuthConfig {
    /// The HS256 secret, from either name; blank counts as unset.
    pub fn secret(&self) -> Option<&str> {
        self.jwt_secret
            .as_deref()
            .or(self.legacy_jwt_secret.as_deref())
            .filter(|s| !s.trim().is_empty())
    }

    /// Whether tokens are required.
    pub fn enabled(&self) -> bool {
        self.secret().is_some()
            || self
                .jwks_url
                .as_deref()
                .is_some_and(|u| !u.trim().is_empty())
    }

    /// Settings that sign and check tokens with `secret`: for tests.
    pub fn with_secret(secret: &str) -> Self {
        Self {
            jwt_secret: Some(secret.to_owned()),
            leeway_secs: 30,
            ..Self::default()
        }
    }
}

/// The bearer token of an HTTP request: `Authorization: Bearer …`, else the
/// `?token=` a browser passes where it cannot set headers.
pub fn bearer_from_headers<'a>(
    headers: &'a HeaderMap,
    query_token: Option<&'a str>,
) -> Option<&'a str> {
    headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(strip_bearer)
        .or(query_token)
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// The bearer token in gRPC metadata.
pub fn bearer_from_metadata(metadata: &MetadataMap) -> Option<&str> {
    metadata
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(strip_bearer)
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// Puts `token` into gRPC metadata as `authorization: Bearer …`. A token that
/// is not a valid header value is left out, so board-service refuses the call.
pub fn insert_bearer(metadata: &mut MetadataMap, token: &str) {
    if let Ok(value) = MetadataValue::try_from(format!("Bearer {token}")) {
        metadata.insert("authorization", value);
    }
}

fn strip_bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_is_read_from_header_before_query() {
        let mut headers = HeaderMap::new();
        assert_eq!(bearer_from_headers(&headers, Some("q")), Some("q"));
        headers.insert(http::header::AUTHORIZATION, "bearer abc".parse().unwrap());
        assert_eq!(bearer_from_headers(&headers, Some("q")), Some("abc"));
        headers.insert(http::header::AUTHORIZATION, "Basic abc".parse().unwrap());
        assert_eq!(bearer_from_headers(&headers, None), None);
        assert_eq!(bearer_from_headers(&HeaderMap::new(), Some(" ")), None);
    }

    #[test]
    fn metadata_round_trips_the_token() {
        let mut metadata = MetadataMap::new();
        insert_bearer(&mut metadata, "t0k");
        assert_eq!(bearer_from_metadata(&metadata), Some("t0k"));
        insert_bearer(&mut MetadataMap::new(), "bad\ntoken");
    }
}
