//! `GET /ws`: admission (origin, limits, token), then one task per socket
//! that reads client frames and writes the client's outbox.

use std::{net::SocketAddr, sync::Arc, sync::atomic::Ordering::Relaxed};

use axum::{
    body::Body,
    extract::{ConnectInfo, Query, Request, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

use crate::{auth::Access, client::CloseReason, socket, state::Shared};

#[derive(Debug, Deserialize)]
pub struct TokenQuery {
    token: Option<String>,
}

impl From<Option<String>> for TokenQuery {
    fn from(token: Option<String>) -> Self {
        Self { token }
    }
}

/// The token from `?token=` or `Authorization: Bearer`.
pub fn token<'a>(query: &'a TokenQuery, headers: &'a HeaderMap) -> Option<&'a str> {
    query.token.as_deref().or_else(|| {
        headers
            .get(header::AUTHORIZATION)?
            .to_str()
            .ok()?
            .strip_prefix("Bearer ")
    })
}

/// What admission decided about a new connection.
pub enum Admission {
    /// Answered before any upgrade (a browser from a foreign origin).
    Refuse(StatusCode, &'static str),
    /// Upgraded only to be closed with this reason, which browsers can read.
    Close(CloseReason),
    /// Welcome; `None` access until an `auth` frame when a token is required.
    Accept(Option<Access>),
}

/// Checks origin, connection limits and the token.
pub fn admit(
    shared: &Shared,
    addr: SocketAddr,
    headers: &HeaderMap,
    token: Option<&str>,
) -> Admission {
    let origin = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok());
    let admission = if !shared.config.origin_allowed(origin) {
        Admission::Refuse(StatusCode::FORBIDDEN, "origin not allowed")
    } else if shared.clients.len() >= shared.config.max_connections {
        Admission::Close(CloseReason::MaxConnections)
    } else if !shared.admit_ip(addr.ip()) {
        Admission::Close(CloseReason::IpConnectRate)
    } else {
        match (&shared.verifier, token) {
            (None, _) => Admission::Accept(Some(Access::open())),
            (Some(verifier), Some(token)) => match verifier.verify(token) {
                Ok(access) => Admission::Accept(Some(access)),
                Err(_) => Admission::Close(CloseReason::Unauthorized),
            },
            (Some(_), None) => Admission::Accept(None),
        }
    };
    if !matches!(admission, Admission::Accept(_)) {
        shared.metrics.connections_rejected.fetch_add(1, Relaxed);
    }
    admission
}

/// The WebSocket handshake, done here rather than by axum's extractor so the
/// connection owns the raw socket and can write shared frames straight to it.
pub async fn upgrade(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    Query(query): Query<TokenQuery>,
    mut request: Request,
) -> Response {
    let headers = request.headers();
    let key = match handshake_key(headers) {
        Ok(key) => key,
        Err(why) => return (StatusCode::BAD_REQUEST, why).into_response(),
    };
    let verdict = match admit(&shared, addr, headers, token(&query, headers)) {
        Admission::Refuse(status, why) => return (status, why).into_response(),
        Admission::Close(reason) => Err(reason),
        Admission::Accept(access) => Ok(access),
    };
    let on_upgrade = hyper::upgrade::on(&mut request);
    let task = socket::accept(on_upgrade, shared, addr, verdict);
    tokio::spawn(task);
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "upgrade")
        .header(header::UPGRADE, "websocket")
        .header(header::SEC_WEBSOCKET_ACCEPT, key)
        .body(Body::empty())
        .expect("static headers are valid")
}

/// Validates an RFC 6455 upgrade request; the `Sec-WebSocket-Accept` value.
fn handshake_key(headers: &HeaderMap) -> Result<String, &'static str> {
    let has = |name, value: &str| {
        headers.get_all(name).iter().any(|v| {
            v.to_str()
                .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(value)))
        })
    };
    if !has(header::UPGRADE, "websocket") || !has(header::CONNECTION, "upgrade") {
        return Err("expected a WebSocket upgrade");
    }
    if headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .is_none_or(|v| v != "13")
    {
        return Err("Sec-WebSocket-Version must be 13");
    }
    let key = headers
        .get(header::SEC_WEBSOCKET_KEY)
        .ok_or("Sec-WebSocket-Key is required")?;
    Ok(derive_accept_key(key.as_bytes()))
}
