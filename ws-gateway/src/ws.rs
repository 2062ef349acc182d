//! `GET /ws`: admission (origin, limits, token), then one task per socket
//! that reads client frames and writes the client's outbox.

use std::{net::SocketAddr, sync::Arc};

use axum::{
    body::Body,
    extract::{ConnectInfo, Query, Request, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

use crate::{auth::Grant, error::CloseReason, socket, state::Shared};

#[derive(Debug, Deserialize)]
pub struct TokenQuery {
    token: Option<String>,
    /// With auth off, the name others see in presence (cleaned and
    /// bounded by `presence::display_name`).
    name: Option<String>,
}

impl From<Option<String>> for TokenQuery {
    fn from(token: Option<String>) -> Self {
        Self { token, name: None }
    }
}

/// The token from `Authorization: Bearer`, else `?token=` (browsers cannot
/// set headers on WebSocket or EventSource).
pub fn token<'a>(query: &'a TokenQuery, headers: &'a HeaderMap) -> Option<&'a str> {
    service_kit::auth::bearer_from_headers(headers, query.token.as_deref())
}

/// What admission decided about a new connection.
pub enum Admission {
    /// Answered before any upgrade (a browser from a foreign origin).
    Refuse(StatusCode, &'static str),
    /// Upgraded only to be closed with this reason, which browsers can read.
    Close(CloseReason),
    /// Welcome; `None` until an `auth` frame when a token is required.
    Accept(Option<Grant>),
}

/// Checks origin, connection limits and the token.
pub async fn admit(
    shared: &Shared,
    addr: SocketAddr,
    headers: &HeaderMap,
    token: Option<&str>,
) -> Admission {
    // An Origin that is not text is a browser's all the same: never "no Origin".
    let origin = headers
        .get(header::ORIGIN)
        .map(|o| o.to_str().unwrap_or("\u{fffd}"));
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    // The page the gateway serves itself is welcome whatever the allowlist says.
    let welcome =
        shared.config.origin_allowed(origin) || service_kit::http_server::same_origin(origin, host);
    let admission = if !welcome {
        Admission::Refuse(StatusCode::FORBIDDEN, "origin not allowed")
    } else if shared.clients.len() >= shared.config.max_connections {
        Admission::Close(CloseReason::MaxConnections)
    } else if !shared.admit_ip(addr.ip()) {
        Admission::Close(CloseReason::IpConnectRate)
    } else {
        match (&shared.auth, token) {
            (None, _) => Admission::Accept(Some(Grant::open())),
            (Some(_), Some(token)) => match crate::auth::verify(shared, token).await {
                Ok(grant) => Admission::Accept(Some(grant)),
                Err((reason, _)) => Admission::Close(reason),
            },
            (Some(_), None) => Admission::Accept(None),
        }
    };
    if !matches!(admission, Admission::Accept(_)) {
        shared.metrics.connections_rejected.inc();
    }
    admission
}

/// The WebSocket handshake, done here rather than by axum's extractor so the
/// connection owns the raw socket and can write shared frames straight to it.
pub async fn upgrade(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    Query(query): Query<TokenQuery>,
    request: Request,
) -> Response {
    upgrade_with(shared, addr, query, request, socket::Profile::default()).await
}

/// [`upgrade`] for a connection of `profile` (seed 004's agents use another).
pub async fn upgrade_with(
    shared: Arc<Shared>,
    addr: SocketAddr,
    query: TokenQuery,
    mut request: Request,
    profile: socket::Profile,
) -> Response {
    let headers = request.headers();
    let key = match handshake_key(request.method(), request.version(), headers) {
        Ok(key) => key,
        Err(refusal) => return refusal.into_response(),
    };
    let verdict = match admit(&shared, addr, headers, token(&query, headers)).await {
        Admission::Refuse(status, why) => return (status, why).into_response(),
        Admission::Close(reason) => Err(reason),
        Admission::Accept(grant) => Ok(grant),
    };
    let on_upgrade = hyper::upgrade::on(&mut request);
    let task = socket::accept(on_upgrade, shared, addr, verdict, profile, query.name);
    tokio::spawn(task);
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "upgrade")
        .header(header::UPGRADE, "websocket")
        .header(header::SEC_WEBSOCKET_ACCEPT, key)
        .body(Body::empty())
        .expect("static headers are valid")
}

/// Why an upgrade request was refused before any upgrade (RFC 6455 §4.2.1–2).
pub enum HandshakeRefusal {
    /// 400 with the reason.
    Bad(&'static str),
    /// 426, naming the one version this server speaks.
    WrongVersion,
}

impl IntoResponse for HandshakeRefusal {
    fn into_response(self) -> Response {
        match self {
            Self::Bad(why) => (StatusCode::BAD_REQUEST, why).into_response(),
            Self::WrongVersion => (
                StatusCode::UPGRADE_REQUIRED,
                [(header::SEC_WEBSOCKET_VERSION, "13")],
                "Sec-WebSocket-Version must be 13",
            )
                .into_response(),
        }
    }
}

/// Validates an RFC 6455 upgrade request; the `Sec-WebSocket-Accept` value.
fn handshake_key(
    method: &axum::http::Method,
    version: axum::http::Version,
    headers: &HeaderMap,
) -> Result<String, HandshakeRefusal> {
    use base64::Engine as _;
    let has = |name, value: &str| {
        headers.get_all(name).iter().any(|v| {
            v.to_str()
                .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(value)))
        })
    };
    if method != axum::http::Method::GET || version < axum::http::Version::HTTP_11 {
        return Err(HandshakeRefusal::Bad(
            "a WebSocket upgrade is a GET over HTTP/1.1",
        ));
    }
    if !has(header::UPGRADE, "websocket") || !has(header::CONNECTION, "upgrade") {
        return Err(HandshakeRefusal::Bad("expected a WebSocket upgrade"));
    }
    if headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .is_none_or(|v| v.as_bytes().trim_ascii() != b"13")
    {
        return Err(HandshakeRefusal::WrongVersion);
    }
    let key = headers
        .get(header::SEC_WEBSOCKET_KEY)
        .ok_or(HandshakeRefusal::Bad("Sec-WebSocket-Key is required"))?;
    // §4.2.1: the key is base64 of a 16-byte nonce.
    let nonce = base64::engine::general_purpose::STANDARD
        .decode(key.as_bytes().trim_ascii())
        .ok()
        .filter(|n| n.len() == 16);
    if nonce.is_none() {
        return Err(HandshakeRefusal::Bad(
            "Sec-WebSocket-Key must be base64 of 16 bytes",
        ));
    }
    Ok(derive_accept_key(key.as_bytes().trim_ascii()))
}
