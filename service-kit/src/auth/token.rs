//! Verifying bearer tokens, and signing the service's own.

use std::{
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use jsonwebtoken::{
    Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, decode_header, encode,
    errors::ErrorKind,
};
use serde::Serialize;

use super::{
    AuthConfig,
    access::{Access, Claims},
    jwks::Jwks,
};

/// Why a token grants nothing. Each maps to one answer at every edge:
/// HTTP 401, gRPC UNAUTHENTICATED, WebSocket close 4001 (4002 when expired).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("a bearer token is required")]
    Missing,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet (nbf)")]
    NotYetValid,
    #[error("invalid token: {0}")]
    Invalid(String),
    /// The JWKS URL could not be read, so no RS/ES token can be checked now.
    #[error("the token's signing keys are unavailable: {0}")]
    KeysUnavailable(String),
}

/// How long a token this service signs for itself lives.
const SERVICE_TOKEN_TTL: Duration = Duration::from_secs(300);

/// Checks bearer tokens against the configured secret or JWKS. Cheap to clone.
#[derive(Clone)]
pub struct Authenticator {
    inner: Arc<Inner>,
}

struct Inner {
    secret: Option<(DecodingKey, EncodingKey)>,
    jwks: Option<Jwks>,
    validation: Validation,
    service_token: Option<String>,
    service_name: String,
}

#[derive(Serialize)]
struct ServiceClaims<'a> {
    sub: String,
    exp: u64,
    iat: u64,
    read: [&'a str; 1],
    write: [&'a str; 1],
    /// Services publish server events (agent presence, KPIs) on any channel.
    channels: serde_json::Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    aud: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    iss: Option<&'a str>,
}

impl Authenticator {
    /// `None` when auth is off. `service_name` names the tokens this service
    /// signs for itself (`sub: "service:<name>"`).
    pub fn from_config(config: &AuthConfig, service_name: &str) -> anyhow::Result<Option<Self>> {
        if !config.enabled() {
            return Ok(None);
        }
        let secret = config.secret().map(|s| {
            (
                DecodingKey::from_secret(s.as_bytes()),
                EncodingKey::from_secret(s.as_bytes()),
            )
        });
        let jwks = match config.jwks_url.as_deref().filter(|u| !u.trim().is_empty()) {
            Some(url) => Some(Jwks::new(url)?),
            None => None,
        };
        let service_token = config
            .service_token
            .clone()
            .filter(|t| !t.trim().is_empty());
        if secret.is_none() && service_token.is_none() {
            anyhow::bail!(
                "JWT_JWKS_URL is set without JWT_SECRET, so {service_name} cannot sign its own \
                 calls to board-service: set SERVICE_TOKEN to a token whose write claim is [\"*\"]"
            );
        }
        let audience = config.audience.as_deref().filter(|a| !a.is_empty());
        let issuer = config.issuer.as_deref().filter(|i| !i.is_empty());
        let mut validation = Validation::new(Algorithm::HS256);
        let mut required = vec!["exp"];
        validation.validate_nbf = true;
        validation.leeway = config.leeway_secs;
        match audience {
            Some(aud) => {
                validation.set_audience(&[aud]);
                required.push("aud");
            }
            None => validation.validate_aud = false,
        }
        if let Some(iss) = issuer {
            validation.set_issuer(&[iss]);
            required.push("iss");
        }
        validation.set_required_spec_claims(&required);
        Ok(Some(Self {
            inner: Arc::new(Inner {
                secret,
                jwks,
                validation,
                service_token,
                service_name: service_name.to_owned(),
            }),
        }))
    }

    /// The access `token` grants, or why it grants none.
    pub async fn verify(&self, token: &str) -> Result<Access, AuthError> {
        let header = decode_header(token).map_err(|e| AuthError::Invalid(e.to_string()))?;
        let mut validation = self.inner.validation.clone();
        validation.algorithms = vec![header.alg];
        let claims = match header.alg {
            Algorithm::HS256 => {
                let (key, _) =
                    self.inner.secret.as_ref().ok_or_else(|| {
                        AuthError::Invalid("HS256 tokens are not accepted".into())
                    })?;
                decode::<Claims>(token, key, &validation)
            }
            Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::ES256
            | Algorithm::ES384 => {
                let jwks = self.inner.jwks.as_ref().ok_or_else(|| {
                    AuthError::Invalid(format!("{:?} tokens need JWT_JWKS_URL", header.alg))
                })?;
                let key = jwks.key(header.kid.as_deref(), header.alg).await?;
                decode::<Claims>(token, &key, &validation)
            }
            other => {
                return Err(AuthError::Invalid(format!(
                    "algorithm {other:?} is not accepted"
                )));
            }
        };
        let claims = claims.map_err(|e| match e.kind() {
            ErrorKind::ExpiredSignature => AuthError::Expired,
            ErrorKind::ImmatureSignature => AuthError::NotYetValid,
            _ => AuthError::Invalid(e.to_string()),
        })?;
        Ok(Access::from_claims(claims.claims))
    }

    /// The token this service sends to board-service when no end user is
    /// behind a call: `SERVICE_TOKEN`, else one it signs with the secret.
    pub fn service_token(&self) -> String {
        if let Some(token) = &self.inner.service_token {
            return token.clone();
        }
        let Some((_, key)) = &self.inner.secret else {
            // from_config refuses this combination.
            return String::new();
        };
        self.sign(&format!("service:{}", self.inner.service_name), key)
    }

    fn sign(&self, sub: &str, key: &EncodingKey) -> String {
        let now = unix_now();
        let validation = &self.inner.validation;
        let claims = ServiceClaims {
            sub: sub.to_owned(),
            exp: now + SERVICE_TOKEN_TTL.as_secs(),
            iat: now,
            read: ["*"],
            write: ["*"],
            channels: serde_json::json!({"read": ["*"], "publish": ["*"]}),
            aud: validation
                .aud
                .as_ref()
                .and_then(|a| a.iter().next())
                .map(String::as_str),
            iss: validation
                .iss
                .as_ref()
                .and_then(|i| i.iter().next())
                .map(String::as_str),
        };
        encode(&Header::new(Algorithm::HS256), &claims, key).unwrap_or_default()
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::{EncodingKey, Header, encode};
    use serde_json::json;

    use super::*;

    fn sign(secret: &str, claims: serde_json::Value) -> String {
        encode(
            &Header::default(),
            &claims,
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap()
    }

    fn auth(config: AuthConfig) -> Authenticator {
        Authenticator::from_config(&config, "test")
            .unwrap()
            .unwrap()
    }

    #[tokio::test]
    async fn exp_nbf_aud_and_iss_are_checked() {
        let now = unix_now();
        let a = auth(AuthConfig::with_secret("s3cret"));
        let ok = sign("s3cret", json!({"exp": now + 60, "sub": "u", "read": "*"}));
        assert_eq!(a.verify(&ok).await.unwrap().owner_key(), "u");
        let expired = sign("s3cret", json!({"exp": now - 120}));
        assert_eq!(a.verify(&expired).await, Err(AuthError::Expired));
        let early = sign("s3cret", json!({"exp": now + 7200, "nbf": now + 3600}));
        assert_eq!(a.verify(&early).await, Err(AuthError::NotYetValid));
        // Inside the leeway, a little clock skew is forgiven.
        let skewed = sign("s3cret", json!({"exp": now + 60, "nbf": now + 5}));
        assert!(a.verify(&skewed).await.is_ok());
        let forged = sign("other", json!({"exp": now + 60}));
        assert!(matches!(
            a.verify(&forged).await,
            Err(AuthError::Invalid(_))
        ));
        assert!(matches!(
            a.verify("not.a.token").await,
            Err(AuthError::Invalid(_))
        ));

        let strict = auth(AuthConfig {
            audience: Some("boardwire".into()),
            issuer: Some("https://id.example".into()),
            ..AuthConfig::with_secret("s3cret")
        });
        assert!(strict.verify(&ok).await.is_err());
        let right = sign(
            "s3cret",
            json!({"exp": now + 60, "aud": "boardwire", "iss": "https://id.example"}),
        );
        assert!(strict.verify(&right).await.is_ok());
        let wrong_aud = sign(
            "s3cret",
            json!({"exp": now + 60, "aud": "other", "iss": "https://id.example"}),
        );
        assert!(strict.verify(&wrong_aud).await.is_err());
        // The service's own token passes its own checks and may write anything.
        let service = strict.verify(&strict.service_token()).await.unwrap();
        assert!(service.can_create_boards() && service.owner_key() == "service:test");
    }

    #[test]
    fn auth_is_off_without_secret_or_jwks() {
        assert!(
            Authenticator::from_config(&AuthConfig::default(), "t")
                .unwrap()
                .is_none()
        );
        let blank = AuthConfig {
            jwt_secret: Some(" ".into()),
            ..AuthConfig::default()
        };
        assert!(Authenticator::from_config(&blank, "t").unwrap().is_none());
        let legacy = AuthConfig {
            legacy_jwt_secret: Some("x".into()),
            ..AuthConfig::default()
        };
        assert!(legacy.enabled());
        let jwks_only = AuthConfig {
            jwks_url: Some("http://127.0.0.1:1/jwks".into()),
            ..AuthConfig::default()
        };
        assert!(Authenticator::from_config(&jwks_only, "t").is_err());
    }
}
