//! ES256 tokens checked against keys served from a real JWKS URL, as an
//! Auth0, Keycloak or Supabase user would configure. The key pair in
//! `fixtures/` exists for this test only.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{SystemTime, UNIX_EPOCH},
};

use axum::{Router, routing::get};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;
use service_kit::auth::{AuthConfig, AuthError, Authenticator};

const PRIVATE_KEY: &str = include_str!("fixtures/es256-test-key.pem");
const JWKS: &str = include_str!("fixtures/es256-test-jwks.json");

fn sign(kid: Option<&str>, claims: serde_json::Value) -> String {
    let mut header = Header::new(Algorithm::ES256);
    header.kid = kid.map(str::to_owned);
    let key = EncodingKey::from_ec_pem(PRIVATE_KEY.as_bytes()).unwrap();
    jsonwebtoken::encode(&header, &claims, &key).unwrap()
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[tokio::test]
async fn es256_tokens_are_verified_against_the_jwks_url() {
    let fetches = Arc::new(AtomicUsize::new(0));
    let counter = fetches.clone();
    let router = Router::new().route(
        "/.well-known/jwks.json",
        get(move || {
            counter.fetch_add(1, Ordering::Relaxed);
            async { ([("content-type", "application/json")], JWKS) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });

    let config = AuthConfig {
        jwks_url: Some(format!("http://{addr}/.well-known/jwks.json")),
        issuer: Some("https://id.example".into()),
        service_token: Some("unused-here".into()),
        leeway_secs: 30,
        ..AuthConfig::default()
    };
    let auth = Authenticator::from_config(&config, "test")
        .unwrap()
        .unwrap();
    let claims =
        json!({"exp": now() + 60, "iss": "https://id.example", "sub": "alice", "read": ["demo"]});
    let access = auth
        .verify(&sign(Some("test-key-1"), claims.clone()))
        .await
        .unwrap();
    assert_eq!(access.owner_key(), "alice");
    assert!(access.can_read("x", "demo") && !access.can_write("x", "demo"));
    // The single key also serves a token that names no kid.
    auth.verify(&sign(None, claims.clone())).await.unwrap();
    assert_eq!(fetches.load(Ordering::Relaxed), 1, "keys are cached");

    // Unknown kids, a wrong issuer, expiry and HS256 (no secret set) fail.
    let unknown = auth
        .verify(&sign(Some("rotated-away"), claims.clone()))
        .await;
    assert!(matches!(unknown, Err(AuthError::Invalid(_))));
    let wrong_iss = json!({"exp": now() + 60, "iss": "https://evil.example"});
    assert!(
        auth.verify(&sign(Some("test-key-1"), wrong_iss))
            .await
            .is_err()
    );
    let expired = json!({"exp": now() - 600, "iss": "https://id.example"});
    assert_eq!(
        auth.verify(&sign(Some("test-key-1"), expired)).await,
        Err(AuthError::Expired)
    );
    let hs = jsonwebtoken::encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(b"guess"),
    )
    .unwrap();
    assert!(auth.verify(&hs).await.is_err());
    // Forged kids cannot make the service hammer the issuer: one read per 10 s.
    assert_eq!(
        fetches.load(Ordering::Relaxed),
        1,
        "unknown kids re-read the keys at most every 10 s"
    );
}

#[tokio::test]
async fn an_unreachable_jwks_url_is_reported_as_unavailable() {
    let config = AuthConfig {
        jwks_url: Some("http://127.0.0.1:9/jwks.json".into()),
        service_token: Some("t".into()),
        ..AuthConfig::default()
    };
    let auth = Authenticator::from_config(&config, "test")
        .unwrap()
        .unwrap();
    let token = sign(Some("test-key-1"), json!({"exp": now() + 60}));
    assert!(matches!(
        auth.verify(&token).await,
        Err(AuthError::KeysUnavailable(_))
    ));
}
