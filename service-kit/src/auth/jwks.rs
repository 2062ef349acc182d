//! Signing keys read from a JWKS URL, cached, and read again when a token
//! names a key the cache lacks (the issuer rotated its keys).

use std::time::{Duration, Instant};

use jsonwebtoken::{Algorithm, DecodingKey, jwk::JwkSet};
use tokio::sync::RwLock;

use super::AuthError;

/// Keys are read again after this long even when every kid is known.
const MAX_AGE: Duration = Duration::from_secs(600);
/// An unknown kid reads the URL again at most this often, so forged kids
/// cannot make the service hammer the issuer.
const MIN_REFRESH: Duration = Duration::from_secs(10);

pub(super) struct Jwks {
    url: String,
    http: reqwest::Client,
    /// Read on every token; written only when the keys are fetched.
    cache: RwLock<Option<(JwkSet, Instant)>>,
}

impl Jwks {
    pub fn new(url: &str) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()?;
        Ok(Self {
            url: url.to_owned(),
            http,
            cache: RwLock::new(None),
        })
    }

    /// The key `kid` names (or the only key, when the token names none).
    pub async fn key(&self, kid: Option<&str>, alg: Algorithm) -> Result<DecodingKey, AuthError> {
        let fresh = |at: &Instant, within: Duration| at.elapsed() < within;
        if let Some((set, at)) = self.cache.read().await.as_ref()
            && fresh(at, MAX_AGE)
            && let Some(key) = pick(set, kid, alg)?
        {
            return Ok(key);
        }
        // One fetch at a time; a token that waited here may find the keys
        // it needs already fetched.
        let mut cache = self.cache.write().await;
        if let Some((set, at)) = cache.as_ref()
            && fresh(at, MAX_AGE)
            && let Some(key) = pick(set, kid, alg)?
        {
            return Ok(key);
        }
        if cache.as_ref().is_some_and(|(_, at)| fresh(at, MIN_REFRESH)) {
            return Err(AuthError::Invalid("the token's key id is unknown".into()));
        }
        let set = self.fetch().await?;
        let key = pick(&set, kid, alg)?;
        *cache = Some((set, Instant::now()));
        key.ok_or_else(|| AuthError::Invalid("the token's key id is unknown".into()))
    }

    async fn fetch(&self) -> Result<JwkSet, AuthError> {
        let unavailable =
            |e: reqwest::Error| AuthError::KeysUnavailable(e.without_url().to_string());
        self.http
            .get(&self.url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(unavailable)?
            .json::<JwkSet>()
            .await
            .map_err(unavailable)
    }
}

fn pick(set: &JwkSet, kid: Option<&str>, alg: Algorithm) -> Result<Option<DecodingKey>, AuthError> {
    let jwk = match kid {
        Some(kid) => set.find(kid),
        None if set.keys.len() == 1 => set.keys.first(),
        None => return Err(AuthError::Invalid("the token names no key id (kid)".into())),
    };
    let Some(jwk) = jwk else { return Ok(None) };
    if let Some(key_alg) = jwk.common.key_algorithm
        && key_alg.to_string() != format!("{alg:?}")
    {
        return Err(AuthError::Invalid(format!(
            "the key is for {key_alg}, not {alg:?}"
        )));
    }
    DecodingKey::from_jwk(jwk)
        .map(Some)
        .map_err(|e| AuthError::Invalid(format!("unusable key in the JWKS: {e}")))
}
