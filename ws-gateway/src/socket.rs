//! One WebSocket connection. Client frames are read through tungstenite;
//! everything the gateway sends goes through the client's outbox, the one
//! writer of the socket (see `outbox`), which most of the time has already
//! written it before this task hears of it. This task writes only what
//! would have blocked, closes, and answers what it reads.

use protocol::time::now_ms;
use std::{
    io,
    net::SocketAddr,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, ready},
    time::Duration,
};

use bytes::Bytes;
use futures::StreamExt;
use hyper_util::{rt::TokioIo, server::conn::auto::upgrade};
use protocol::board_frames::ServerFrame;
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::TcpStream,
};
use tokio_tungstenite::{
    WebSocketStream,
    tungstenite::{
        self, Message,
        protocol::{Role, WebSocketConfig},
    },
};

use crate::{
    auth::Grant,
    client::{Client, Flush, Outgoing},
    error::{CloseReason, Error},
    framing,
    session::Session,
    state::Shared,
};

/// The read side of a WebSocket's TCP stream, for tungstenite. Its writes
/// go nowhere: tungstenite's own replies (pongs, the close echo) are
/// written by the outbox instead, in order with every other frame.
struct ReadSide(Arc<TcpStream>);

impl AsyncRead for ReadSide {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            ready!(self.0.poll_read_ready(cx))?;
            match self.0.try_read(buf.initialize_unfilled()) {
                Ok(n) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl AsyncWrite for ReadSide {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

type Socket = WebSocketStream<ReadSide>;

/// Bytes read from a socket at once; small, because tungstenite zero-fills
/// this much per connection and idle sockets should cost little.
const READ_BUFFER: usize = 256;
/// How long a closing socket waits for its close frame to leave and the
/// client's to arrive.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// The socket failed while writing.
struct Failed;

/// Writes what the outbox holds, waiting for the socket when it would
/// block; a close reason if one was asked for.
async fn write_out(
    socket: &Socket,
    client: &Client,
    session: Option<&Session>,
) -> Result<Option<CloseReason>, Failed> {
    loop {
        match client.flush() {
            Flush::Idle => return Ok(None),
            Flush::Drained => {
                if let Some(session) = session {
                    session.resync();
                }
            }
            Flush::Blocked => socket.get_ref().0.writable().await.map_err(|_| Failed)?,
            Flush::Close(reason) => return Ok(Some(reason)),
            Flush::Failed => return Err(Failed),
        }
    }
}

/// Sends a close frame after what says why, and waits (briefly) for the
/// client's.
async fn close(socket: &mut Socket, client: &Client, reason: CloseReason) {
    client.seal(framing::close_payload(reason.code(), reason.text()).into());
    let wrote = tokio::time::timeout(CLOSE_WAIT, write_out(socket, client, None)).await;
    if !matches!(wrote, Ok(Ok(_))) {
        return;
    }
    // Reading until the client's close also drains unread input, so the
    // kernel does not answer with a reset that destroys the close frame.
    let echoed = tokio::time::timeout(CLOSE_WAIT, async {
        while let Some(Ok(message)) = socket.next().await {
            if let Message::Close(_) = message {
                return true;
            }
        }
        false
    })
    .await;
    if let Ok(false) = echoed {
        // tungstenite reads no further after a framing or size error, yet
        // the client may still be sending the rest of that frame (a browser
        // cannot cut one short) and then its close: take it raw.
        drain(&socket.get_ref().0).await;
    }
}

/// How long a client must stay silent before a drained socket is closed:
/// by then it has sent the rest of its frame and its close.
const DRAIN_QUIET: Duration = Duration::from_secs(1);
/// The longest a closing socket is drained, however much it sends.
const DRAIN_MAX: Duration = Duration::from_secs(10);

/// Reads and discards what the client still sends until it closes its
/// side or falls quiet. Bounded by quiet time, not by a total that a slow
/// (loaded) sender could outlast: closing with its data unread would make
/// the kernel reset the connection, and the client's close would not be
/// clean.
async fn drain(stream: &TcpStream) {
    let deadline = tokio::time::Instant::now() + DRAIN_MAX;
    let mut scratch = [0u8; 16 * 1024];
    while tokio::time::Instant::now() < deadline {
        match tokio::time::timeout(DRAIN_QUIET, stream.readable()).await {
            Ok(Ok(())) => {}
            // Quiet (everything is in), or the socket failed.
            Err(_) | Ok(Err(_)) => return,
        }
        match stream.try_read(&mut scratch) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(_) => return,
        }
    }
}

/// What kind of connection a socket is: how its own frames are spelled,
/// and the agent it belongs to (seed 004's `/ws/agents`).
#[derive(Debug, Default)]
pub struct Profile {
    pub dialect: crate::frame::Dialect,
    pub agent: Option<crate::channels::Agent>,
}

/// Serves one upgraded connection: `verdict` is admission's answer.
pub async fn accept(
    on_upgrade: hyper::upgrade::OnUpgrade,
    shared: Arc<Shared>,
    addr: SocketAddr,
    verdict: Result<Option<Grant>, CloseReason>,
    profile: Profile,
    guest_name: Option<String>,
) {
    let Ok(upgraded) = on_upgrade.await else {
        return;
    };
    // The outbox writes the TCP stream itself, next to tungstenite reading it.
    let parts = match upgrade::downcast::<TokioIo<TcpStream>>(upgraded) {
        Ok(parts) => parts,
        Err(_) => {
            tracing::error!(%addr, "upgraded connection is not a TCP stream; closed");
            return;
        }
    };
    let stream = Arc::new(parts.io.into_inner());
    // What the client sent after its upgrade request, copied: the bytes
    // hyper hands over share its whole read buffer, kilobytes per socket.
    let early = parts.read_buf.to_vec();
    drop(parts.read_buf);
    let max = shared.config.max_frame_bytes;
    let config = WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(0)
        .max_message_size(Some(max))
        .max_frame_size(Some(max));
    let client = Arc::new(
        Client::new(
            shared.clients.next_id(),
            shared.config.client_queue,
            shared.metrics.clone(),
            Some(stream.clone()),
        )
        .with_dialect(profile.dialect),
    );
    // The socket is created here and only borrowed below, so this future
    // (which every open connection pays for) holds it exactly once.
    let mut socket =
        WebSocketStream::from_partially_read(ReadSide(stream), early, Role::Server, Some(config))
            .await;
    let access = match verdict {
        Ok(access) => access,
        Err(reason) => {
            Box::pin(close(&mut socket, &client, reason)).await;
            client.detach_socket();
            return;
        }
    };
    if access.is_none() {
        client.set_auth_deadline_ms(now_ms() + shared.config.auth_timeout_ms);
    }
    shared.clients.insert(client.clone());
    shared.metrics.connections_active.inc();
    shared.metrics.connections_total.inc();
    tracing::info!(client = client.id, %addr, "websocket connected");
    client.push_frame(&ServerFrame::Connected {
        client_id: shared.presence.client_key(client.id),
        heartbeat_ms: shared.config.heartbeat_ms,
    });
    let mut session = Session::new(client.clone(), shared.clone(), access);
    session.set_guest_name(guest_name);
    if let Some(mut agent) = profile.agent {
        agent.connected(&shared, &shared.presence.client_key(client.id));
        shared.metrics.agents_active.inc();
        session.agent = Some(agent);
    }
    let reason = serve(&mut socket, &mut session, &shared).await;
    if let Some(reason) = reason {
        Box::pin(close(&mut socket, &client, reason)).await;
    }
    if let Some(agent) = session.agent.take() {
        let why = reason.map_or("closed", |r| r.text());
        agent.disconnected(&shared, why);
        shared.metrics.agents_active.dec();
    }
    session.leave();
    client.detach_socket();
    shared.clients.remove(client.id);
    shared.metrics.connections_active.dec();
    tracing::info!(client = client.id, ?reason, "websocket closed");
}

/// Per-connection token bucket for client frames (Socket.IO events too).
pub(crate) struct RateLimit {
    pub(crate) rate: f64,
    tokens: f64,
    refilled: std::time::Instant,
    over: u32,
}

impl RateLimit {
    pub(crate) fn new(per_sec: u32) -> Self {
        let rate = f64::from(per_sec.max(1));
        Self {
            rate,
            tokens: rate * 2.0,
            refilled: std::time::Instant::now(),
            over: 0,
        }
    }

    /// `Ok` to accept, `Err(true)` to close, `Err(false)` to refuse this frame.
    pub(crate) fn take(&mut self) -> Result<(), bool> {
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

/// Reads, and writes what would have blocked, until the client leaves
/// (`None`) or must be closed.
async fn serve(socket: &mut Socket, session: &mut Session, shared: &Shared) -> Option<CloseReason> {
    let client = session.client.clone();
    let mut limit = RateLimit::new(shared.config.max_messages_per_sec);
    loop {
        tokio::select! {
            biased;
            () = client.woken() => {
                let written = tokio::time::timeout(shared.config.stuck_timeout(), write_out(socket, &client, Some(session)));
                match written.await {
                    Ok(Ok(None)) => {}
                    Ok(Ok(Some(reason))) => return Some(reason),
                    Ok(Err(Failed)) => return None,
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
                shared.metrics.frames_received.inc();
                let text = match message {
                    Message::Text(text) => text,
                    Message::Binary(_) => {
                        reject(shared, &client, Error::BinaryFrame);
                        continue;
                    }
                    Message::Close(frame) => {
                        // Echo the client's code, so it sees a clean close.
                        let echo = frame.map_or_else(Bytes::new, |f| {
                            framing::close_payload(f.code.into(), &f.reason).into()
                        });
                        client.seal(echo);
                        let _ = tokio::time::timeout(CLOSE_WAIT, write_out(socket, &client, None)).await;
                        return None;
                    }
                    Message::Ping(payload) => {
                        client.push(Outgoing::Pong(payload));
                        continue;
                    }
                    _ => continue,
                };
                match limit.take() {
                    // Boxed: handling may await gRPC calls whose futures are large,
                    // and an unboxed one would be paid for by every idle socket.
                    Ok(()) => Box::pin(session.handle_text(&text)).await,
                    Err(true) => return Some(CloseReason::MessageRate),
                    Err(false) => reject(shared, &client, Error::RateLimited(limit.rate)),
                }
            }
        }
    }
}

fn reject(shared: &Shared, client: &Client, error: Error) {
    shared.metrics.frame_errors.inc();
    client.push_frame(&ServerFrame::Error(error.frame(None, None)));
}
