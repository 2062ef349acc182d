//! One WebSocket connection: reads client frames through tungstenite and
//! writes the outbox straight to the socket. Board frames are shared,
//! already-encoded bytes: each write is a `writev` of small headers and
//! those shared payloads, so no connection copies or keeps a frame.

use protocol::time::now_ms;
use std::{
    io::IoSlice, net::SocketAddr, sync::Arc, sync::atomic::Ordering::Relaxed, time::Duration,
};

use futures::{SinkExt, StreamExt};
use hyper_util::rt::TokioIo;
use protocol::board_frames::{ErrorCode, ErrorFrame, ServerFrame};
use tokio::io::AsyncWriteExt;
use tokio_tungstenite::{
    WebSocketStream,
    tungstenite::{
        self, Message,
        protocol::{CloseFrame, Role, WebSocketConfig},
    },
};

use crate::{
    auth::Grant,
    client::{Client, CloseReason, Outgoing, Taken},
    session::Session,
    state::Shared,
};

pub type Socket = WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>;

/// Bytes read from a socket at once; small, because tungstenite zero-fills
/// this much per connection and idle sockets should cost little.
const READ_BUFFER: usize = 256;
/// How long a closing socket waits for the client's close frame.
const CLOSE_WAIT: Duration = Duration::from_secs(2);
/// Outbox entries written per `writev`.
const BATCH: usize = 64;

/// Sends a close frame and waits (briefly) for the client's.
pub async fn close(mut socket: Socket, reason: CloseReason) {
    let frame = CloseFrame {
        code: reason.code().into(),
        reason: reason.text().into(),
    };
    let _ = tokio::time::timeout(CLOSE_WAIT, async {
        socket.send(Message::Close(Some(frame))).await?;
        // Reading until the client's close also drains unread input, so the
        // kernel does not answer with a reset that destroys the close frame.
        while let Some(Ok(message)) = socket.next().await {
            if let Message::Close(_) = message {
                break;
            }
        }
        Ok::<_, tungstenite::Error>(())
    })
    .await;
}

/// Serves one upgraded connection: `verdict` is admission's answer.
pub async fn accept(
    on_upgrade: hyper::upgrade::OnUpgrade,
    shared: Arc<Shared>,
    addr: SocketAddr,
    verdict: Result<Option<Grant>, CloseReason>,
) {
    let Ok(upgraded) = on_upgrade.await else {
        return;
    };
    let max = shared.config.max_frame_bytes;
    let config = WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(0)
        .max_message_size(Some(max))
        .max_frame_size(Some(max));
    // The socket is created here and only borrowed below, so this future
    // (which every open connection pays for) holds it exactly once.
    let mut socket =
        WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(config)).await;
    let access = match verdict {
        Ok(access) => access,
        Err(reason) => return Box::pin(close(socket, reason)).await,
    };
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
    tracing::info!(client = client.id, %addr, "websocket connected");
    client.push_frame(&ServerFrame::Connected {
        client_id: client.id.to_string(),
        heartbeat_ms: shared.config.heartbeat_ms,
    });
    let mut session = Session::new(client.clone(), shared.clone(), access);
    let reason = serve(&mut socket, &mut session, &shared).await;
    if let Some(reason) = reason {
        Box::pin(close(socket, reason)).await;
    }
    session.leave();
    shared.clients.remove(client.id);
    shared.metrics.connections_active.fetch_sub(1, Relaxed);
    tracing::info!(client = client.id, ?reason, "websocket closed");
}

/// Per-connection token bucket for client frames.
struct RateLimit {
    rate: f64,
    tokens: f64,
    refilled: std::time::Instant,
    over: u32,
}

impl RateLimit {
    fn new(per_sec: u32) -> Self {
        let rate = f64::from(per_sec.max(1));
        Self {
            rate,
            tokens: rate * 2.0,
            refilled: std::time::Instant::now(),
            over: 0,
        }
    }

    /// `Ok` to accept, `Err(true)` to close, `Err(false)` to refuse this frame.
    fn take(&mut self) -> Result<(), bool> {
        let now = std::time::Instant::now();
        let burst = self.rate * 2.0;
        self.tokens =
            (self.tokens + now.duration_since(self.refilled).as_secs_f64() * self.rate).min(burst);
        self.refilled = now;
        if self.tokens < 1.0 {
            self.over += 1;
            return Err(f64::from(self.over) > burst);
        }
        self.tokens -= 1.0;
        self.over = 0;
        Ok(())
    }
}

/// Reads and writes until the client leaves (`None`) or must be closed.
async fn serve(socket: &mut Socket, session: &mut Session, shared: &Shared) -> Option<CloseReason> {
    let client = session.client.clone();
    let mut limit = RateLimit::new(shared.config.max_messages_per_sec);
    let mut control = false;
    loop {
        tokio::select! {
            biased;
            () = client.woken() => {
                let written = tokio::time::timeout(shared.config.stuck_timeout(), drain(socket, session, shared, &mut control));
                match written.await {
                    Ok(Ok(None)) => {}
                    Ok(Ok(Some(reason))) => return Some(reason),
                    Ok(Err(_)) => return None,
                    Err(_) => return Some(CloseReason::SlowConsumer),
                }
            }
            message = socket.next() => {
                let message = match message {
                    None => return None,
                    Some(Ok(message)) => message,
                    Some(Err(tungstenite::Error::Capacity(_))) => return Some(CloseReason::TooBig),
                    // Say why before closing (RFC 6455 §7.4.1), not a bare TCP drop.
                    Some(Err(tungstenite::Error::Protocol(_))) => return Some(CloseReason::ProtocolError),
                    Some(Err(tungstenite::Error::Utf8(_))) => return Some(CloseReason::InvalidPayload),
                    Some(Err(_)) => return None,
                };
                client.touch();
                shared.metrics.frames_received.fetch_add(1, Relaxed);
                let text = match message {
                    Message::Text(text) => text,
                    Message::Binary(_) => {
                        reject(shared, &client, ErrorCode::UnsupportedFrame, "binary frames are not supported; send JSON text".into());
                        continue;
                    }
                    Message::Close(_) => {
                        // tungstenite has queued the echo of the client's close;
                        // send it, so the browser sees a clean close with its code.
                        let _ = tokio::time::timeout(CLOSE_WAIT, socket.flush()).await;
                        return None;
                    }
                    Message::Ping(_) => {
                        // tungstenite answers with a pong it writes itself.
                        control = true;
                        continue;
                    }
                    _ => continue,
                };
                match limit.take() {
                    // Boxed: handling may await gRPC calls whose futures are large,
                    // and an unboxed one would be paid for by every idle socket.
                    Ok(()) => Box::pin(session.handle_text(&text)).await,
                    Err(true) => return Some(CloseReason::MessageRate),
                    Err(false) => {
                        let message = format!("more than {} frames per second; frame ignored", limit.rate);
                        reject(shared, &client, ErrorCode::RateLimited, message);
                    }
                }
            }
        }
    }
}

fn reject(shared: &Shared, client: &Client, code: ErrorCode, message: String) {
    shared.metrics.frame_errors.fetch_add(1, Relaxed);
    client.push_frame(&ServerFrame::Error(ErrorFrame {
        code,
        message,
        id: None,
        board_id: None,
    }));
}

/// Writes the outbox until it is empty; a close reason if one was asked for.
async fn drain(
    socket: &mut Socket,
    session: &Session,
    shared: &Shared,
    control: &mut bool,
) -> Result<Option<CloseReason>, std::io::Error> {
    let mut batch = Vec::new();
    loop {
        match session.client.take(&mut batch, BATCH) {
            Taken::Close(reason) => return Ok(Some(reason)),
            Taken::Drained => session.resync(),
            Taken::More => {}
        }
        if batch.is_empty() {
            return Ok(None);
        }
        write(socket, &mut batch, shared, control).await?;
    }
}

/// An unmasked server frame header: FIN + opcode, then the payload length.
fn frame_header(opcode: u8, len: usize) -> ([u8; 10], usize) {
    let mut header = [0u8; 10];
    header[0] = 0x80 | opcode;
    let size = if len < 126 {
        header[1] = len as u8;
        2
    } else if len <= usize::from(u16::MAX) {
        header[1] = 126;
        header[2..4].copy_from_slice(&(len as u16).to_be_bytes());
        4
    } else {
        header[1] = 127;
        header[2..10].copy_from_slice(&(len as u64).to_be_bytes());
        10
    };
    (header, size)
}

async fn write(
    socket: &mut Socket,
    batch: &mut Vec<Outgoing>,
    shared: &Shared,
    control: &mut bool,
) -> Result<(), std::io::Error> {
    // A pong tungstenite queued itself goes first, so our frames never
    // interleave with a partly written one of its own.
    if std::mem::take(control) {
        socket.flush().await.map_err(std::io::Error::other)?;
    }
    let now = now_ms() as i64;
    let mut headers = Vec::with_capacity(batch.len());
    for outgoing in batch.iter() {
        let (opcode, len) = match outgoing {
            Outgoing::Board(frame) => {
                shared
                    .metrics
                    .record_sent(now.saturating_sub(frame.ts).max(0) as u64, 1);
                (0x1, frame.json.len())
            }
            Outgoing::Direct(_, text) => (0x1, text.len()),
            Outgoing::Ping => (0x9, 0),
        };
        headers.push(frame_header(opcode, len));
    }
    let mut slices = Vec::with_capacity(batch.len() * 2);
    for (outgoing, (header, size)) in batch.iter().zip(&headers) {
        slices.push(IoSlice::new(&header[..*size]));
        let payload: &[u8] = match outgoing {
            Outgoing::Board(frame) => frame.json.as_bytes(),
            Outgoing::Direct(_, text) => text.as_bytes(),
            Outgoing::Ping => &[],
        };
        if !payload.is_empty() {
            slices.push(IoSlice::new(payload));
        }
    }
    let io = socket.get_mut();
    let mut remaining: &mut [IoSlice<'_>] = &mut slices;
    while !remaining.is_empty() {
        let n = io.write_vectored(remaining).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        IoSlice::advance_slices(&mut remaining, n);
    }
    shared
        .metrics
        .frames_sent
        .fetch_add(batch.len() as u64, Relaxed);
    batch.clear();
    Ok(())
}
