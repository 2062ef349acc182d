//! Test helpers shared by every crate's tests (feature `test-support`).

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;

/// Seconds since the Unix epoch, for `exp` and `nbf` claims.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// An HS256 token over `claims`, signed with `secret`.
pub fn sign_token(secret: &str, claims: &Value) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap_or_default()
}

/// A token for `sub` that reads `read` and writes `write`, valid ten minutes.
pub fn board_token(secret: &str, sub: &str, read: &[&str], write: &[&str]) -> String {
    sign_token(
        secret,
        &serde_json::json!({"exp": unix_now() + 600, "sub": sub, "read": read, "write": write}),
    )
}
