//! `GET /ws`: admission (origin, limits, token), then one task per socket
//! that reads client frames and writes the client's outbox.

use std::{net::SocketAddr, sync::Arc, sync::atomic::Ordering::Relaxed};

use axum::{
    extract::{
        ConnectInfo, Query, State, WebSocketUpgrade,
        ws::{CloseFrame, Message, WebSocket},
    },
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};
use futures::SinkExt;
use protocol::board_frames::{ErrorCode, ErrorFrame, ServerFrame};
use serde::Deserialize;
use tokio_tungstenite::tungstenite;

use crate::{
    auth::Access,
    client::{Client, CloseReason, Outgoing, Taken},
    session::Session,
    state::Shared,
    time::now_ms,
};

/// Bytes read from a socket at once; small, because tungstenite zero-fills
/// this much per connection and idle sockets should cost little.
const READ_BUFFER: usize = 512;
/// Queued bytes written to the socket in one go.
const WRITE_BUFFER: usize = 8 * 1024;
/// How long a closing socket waits for the client's close frame.
const CLOSE_WAIT: std::time::Duration = std::time::Duration::from_secs(2);
/// Outbox entries moved per write batch.
const BATCH: usize = 64;

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

pub async fn upgrade(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    Query(query): Query<TokenQuery>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let verdict = match admit(&shared, addr, &headers, token(&query, &headers)) {
        Admission::Refuse(status, why) => return (status, why).into_response(),
        Admission::Close(reason) => Err(reason),
        Admission::Accept(access) => Ok(access),
    };
    let max = shared.config.max_frame_bytes;
    ws.read_buffer_size(READ_BUFFER)
        .write_buffer_size(WRITE_BUFFER)
        .max_message_size(max)
        .max_frame_size(max)
        .on_upgrade(move |socket| async move {
            match verdict {
                Ok(access) => run(socket, shared, addr, access).await,
                Err(reason) => {
                    let _ = tokio::time::timeout(CLOSE_WAIT, close(socket, reason)).await;
                }
            }
        })
}

async fn close(mut socket: WebSocket, reason: CloseReason) -> Result<(), axum::Error> {
    let frame = CloseFrame {
        code: reason.code(),
        reason: reason.text().into(),
    };
    socket.send(Message::Close(Some(frame))).await?;
    // Finish the closing handshake: reading until the client's close also
    // drains unread input, so the kernel does not answer with a reset that
    // could destroy the close frame in flight.
    while let Some(Ok(message)) = socket.recv().await {
        if let Message::Close(_) = message {
            break;
        }
    }
    Ok(())
}

async fn run(mut socket: WebSocket, shared: Arc<Shared>, addr: SocketAddr, access: Option<Access>) {
    let client = Arc::new(Client::new(
        shared.clients.next_id(),
        shared.config.client_queue,
        false,
    ));
    if access.is_none() {
        client.set_auth_deadline_ms(now_ms() + shared.config.auth_timeout_ms);
    }
    shared.clients.insert(client.clone());
    shared.metrics.connections_active.fetch_add(1, Relaxed);
    shared.metrics.connections_total.fetch_add(1, Relaxed);
    tracing::debug!(client = client.id, %addr, "websocket connected");
    client.push_frame(&ServerFrame::Connected {
        client_id: client.id.to_string(),
        heartbeat_ms: shared.config.heartbeat_ms,
    });
    let mut session = Session::new(client.clone(), shared.clone(), access);
    let reason = serve(&mut socket, &mut session, &shared).await;
    if let Some(reason) = reason {
        let _ = tokio::time::timeout(CLOSE_WAIT, close(socket, reason)).await;
    }
    session.leave();
    shared.clients.remove(client.id);
    shared.metrics.connections_active.fetch_sub(1, Relaxed);
    tracing::debug!(client = client.id, ?reason, "websocket closed");
}

/// Reads and writes until the client leaves (`None`) or must be closed.
async fn serve(
    socket: &mut WebSocket,
    session: &mut Session,
    shared: &Shared,
) -> Option<CloseReason> {
    let client = session.client.clone();
    let mut batch = Vec::new();
    let rate = f64::from(shared.config.max_messages_per_sec.max(1));
    let burst = rate * 2.0;
    let (mut tokens, mut refilled) = (burst, std::time::Instant::now());
    let mut over_limit = 0u32;
    loop {
        tokio::select! {
            biased;
            () = client.woken() => loop {
                match client.take(&mut batch, BATCH) {
                    Taken::Close(reason) => return Some(reason),
                    Taken::Drained => session.resync(),
                    Taken::More => {}
                }
                if batch.is_empty() {
                    // Give back a burst's buffer so idle clients stay small.
                    batch = Vec::new();
                    break;
                }
                let written = tokio::time::timeout(shared.config.stuck_timeout(), write(socket, &mut batch, shared));
                match written.await {
                    Ok(Ok(())) => {}
                    Ok(Err(_)) => return None,
                    Err(_) => return Some(CloseReason::SlowConsumer),
                }
            },
            message = socket.recv() => {
                let message = match message {
                    None => return None,
                    Some(Ok(message)) => message,
                    Some(Err(err)) => return too_big(err).then_some(CloseReason::TooBig),
                };
                client.touch();
                shared.metrics.frames_received.fetch_add(1, Relaxed);
                let text = match message {
                    Message::Text(text) => text,
                    Message::Binary(_) => {
                        client.push_frame(&error(ErrorCode::UnsupportedFrame, "binary frames are not supported; send JSON text"));
                        continue;
                    }
                    Message::Close(_) => return None,
                    Message::Ping(_) | Message::Pong(_) => continue,
                };
                let now = std::time::Instant::now();
                tokens = (tokens + now.duration_since(refilled).as_secs_f64() * rate).min(burst);
                refilled = now;
                if tokens < 1.0 {
                    over_limit += 1;
                    if f64::from(over_limit) > burst {
                        return Some(CloseReason::MessageRate);
                    }
                    shared.metrics.frame_errors.fetch_add(1, Relaxed);
                    let message = format!("more than {rate} frames per second; frame ignored");
                    client.push_frame(&error(ErrorCode::RateLimited, message));
                    continue;
                }
                tokens -= 1.0;
                over_limit = 0;
                session.handle_text(&text).await;
            }
        }
    }
}

fn error(code: ErrorCode, message: impl Into<String>) -> ServerFrame {
    ServerFrame::Error(ErrorFrame {
        code,
        message: message.into(),
        id: None,
        board_id: None,
    })
}

/// Whether a read failed on the frame size limit.
fn too_big(err: axum::Error) -> bool {
    let err = err.into_inner();
    matches!(
        err.downcast_ref::<tungstenite::Error>(),
        Some(tungstenite::Error::Capacity(_))
    )
}

async fn write(
    socket: &mut WebSocket,
    batch: &mut Vec<Outgoing>,
    shared: &Shared,
) -> Result<(), axum::Error> {
    let now = now_ms() as i64;
    let count = batch.len() as u64;
    for outgoing in batch.drain(..) {
        let message = match outgoing {
            Outgoing::Board(frame) => {
                shared
                    .metrics
                    .record_sent(now.saturating_sub(frame.ts).max(0) as u64, 1);
                Message::Text(frame.json)
            }
            Outgoing::Direct(text) => Message::Text(text),
            Outgoing::Ping => Message::Ping(bytes::Bytes::new()),
        };
        socket.feed(message).await?;
    }
    socket.flush().await?;
    shared.metrics.frames_sent.fetch_add(count, Relaxed);
    Ok(())
}
