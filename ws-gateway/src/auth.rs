//! HS256 tokens naming the boards a client may read and write.
//!
//! Claims: `exp` (required, seconds), optional `sub`, and `read` / `write`:
//! lists of board ids or slugs, `"*"` for every board. Write implies read.

use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode};
use serde::Deserialize;

/// What a connection may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    read: Vec<String>,
    write: Vec<String>,
    /// Expiry in ms since the epoch; 0 for never (auth disabled).
    pub expires_ms: u64,
    pub subject: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Claims {
    exp: u64,
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    read: Vec<String>,
    #[serde(default)]
    write: Vec<String>,
}

impl Access {
    /// Everything, for a gateway without a secret.
    pub fn open() -> Self {
        Self {
            read: vec!["*".into()],
            write: vec!["*".into()],
            expires_ms: 0,
            subject: None,
        }
    }

    fn grants(list: &[String], board_id: &str, slug: &str) -> bool {
        list.iter().any(|b| b == "*" || b == board_id || b == slug)
    }

    pub fn can_read(&self, board_id: &str, slug: &str) -> bool {
        Self::grants(&self.read, board_id, slug) || self.can_write(board_id, slug)
    }

    pub fn can_write(&self, board_id: &str, slug: &str) -> bool {
        Self::grants(&self.write, board_id, slug)
    }

    /// Whether writes are limited to named boards, so a task command must be
    /// checked against the board that holds the task.
    pub fn write_is_scoped(&self) -> bool {
        !self.write.iter().any(|b| b == "*")
    }
}

/// Checks tokens against the configured secret.
#[derive(Clone)]
pub struct Verifier {
    key: DecodingKey,
    validation: Validation,
}

impl Verifier {
    pub fn new(secret: &str) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_required_spec_claims(&["exp"]);
        validation.leeway = 0;
        Self {
            key: DecodingKey::from_secret(secret.as_bytes()),
            validation,
        }
    }

    /// The access a token grants, or why it grants none.
    pub fn verify(&self, token: &str) -> Result<Access, String> {
        let data = decode::<Claims>(token, &self.key, &self.validation)
            .map_err(|e| format!("invalid token: {e}"))?;
        let claims = data.claims;
        Ok(Access {
            read: claims.read,
            write: claims.write,
            expires_ms: claims.exp.saturating_mul(1000),
            subject: claims.sub,
        })
    }
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::{EncodingKey, Header, encode};
    use serde_json::json;

    use super::*;

    fn token(secret: &str, claims: serde_json::Value) -> String {
        encode(
            &Header::default(),
            &claims,
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap()
    }

    #[test]
    fn tokens_grant_named_boards_only() {
        let verifier = Verifier::new("s3cret");
        let exp = crate::time::now_ms() / 1000 + 60;
        let access = verifier
            .verify(&token(
                "s3cret",
                json!({"exp": exp, "read": ["demo"], "write": ["b2"]}),
            ))
            .unwrap();
        assert!(access.can_read("b1", "demo"));
        assert!(!access.can_write("b1", "demo"));
        assert!(access.can_read("b2", "other"));
        assert!(!access.can_read("b3", "x"));
        assert!(access.write_is_scoped());
    }

    #[test]
    fn wrong_secret_and_expired_tokens_are_refused() {
        let verifier = Verifier::new("s3cret");
        let exp = crate::time::now_ms() / 1000 + 60;
        assert!(
            verifier
                .verify(&token("other", json!({"exp": exp})))
                .is_err()
        );
        assert!(
            verifier
                .verify(&token("s3cret", json!({"exp": 1})))
                .is_err()
        );
        assert!(verifier.verify("not.a.token").is_err());
    }
}
