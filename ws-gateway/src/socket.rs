//! One WebSocket connection. Client frames are read through tungstenite;
//! everything the gateway sends goes through the client's outbox, the one
//! writer of the socket (see `outbox`), which most of the time has already
//! written it before this task hears of it. This task writes only what
//! would have blocked, closes, and answers what it reads.
//!
//! Over TLS (`TLS_CERT_FILE`) the outbox cannot write the TCP stream: the
//! bytes must go through rustls. There every frame queues, and this task
//! writes them, a batch at a time, through the TLS stream's write half
//! ([`TlsWire`]); the slow-client limits are the same.

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
    io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf, WriteHalf},
    net::TcpStream,
};
use tokio_rustls::server::TlsStream;
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

/// The read side of a WebSocket's TCP stream, shared with the outbox that
/// writes it.
struct TcpReader(Arc<TcpStream>);

impl AsyncRead for TcpReader {
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

/// A stream as tungstenite sees it: read through `R`, its writes going
/// nowhere. tungstenite's own replies (pongs, the close echo) are written by
/// the [`Wire`] instead, in order with every other frame.
struct ReadOnly<R>(R);

impl<R: AsyncRead + Unpin> AsyncRead for ReadOnly<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<R: Unpin> AsyncWrite for ReadOnly<R> {
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

type Socket<R> = WebSocketStream<R>;

/// How the connection task writes what its client's outbox holds.
trait Wire: Send {
    /// Writes what the outbox holds; a close reason if one was asked for.
    fn write_out<'a>(
        &'a mut self,
        client: &'a Client,
        session: Option<&'a Session>,
    ) -> impl Future<Output = Result<Option<CloseReason>, Failed>> + Send + 'a;

    /// Reads and discards what the client still sends (see [`drain`]):
    /// until it falls `quiet`, and with `until_close`, until its close frame.
    fn drain(&mut self, quiet: Duration, until_close: bool)
    -> impl Future<Output = ()> + Send + '_;
}

/// Plain TCP: the outbox writes the stream itself; this waits for it to be
/// writable when a write would have blocked.
struct TcpWire(Arc<TcpStream>);

impl Wire for TcpWire {
    fn write_out<'a>(
        &'a mut self,
        client: &'a Client,
        session: Option<&'a Session>,
    ) -> impl Future<Output = Result<Option<CloseReason>, Failed>> + Send + 'a {
        write_out(&self.0, client, session)
    }

    fn drain(
        &mut self,
        quiet: Duration,
        until_close: bool,
    ) -> impl Future<Output = ()> + Send + '_ {
        drain(&self.0, quiet, until_close)
    }
}

/// TLS: frames queue in the outbox and are written here through rustls.
struct TlsWire {
    writer: WriteHalf<TlsStream<TcpStream>>,
    batch: Vec<Outgoing>,
    bytes: Vec<u8>,
}

/// Entries encrypted and written together over TLS.
const TLS_BATCH: usize = 64;

impl Wire for TlsWire {
    async fn write_out(
        &mut self,
        client: &Client,
        session: Option<&Session>,
    ) -> Result<Option<CloseReason>, Failed> {
        loop {
            let flush = client.take_frames(&mut self.batch, TLS_BATCH);
            let wrote = !self.batch.is_empty();
            if wrote {
                self.bytes.clear();
                for entry in &self.batch {
                    let (opcode, payload) = entry.frame();
                    self.bytes
                        .extend_from_slice(framing::Header::new(opcode, payload.len()).as_bytes());
                    self.bytes.extend_from_slice(payload);
                }
                self.writer
                    .write_all(&self.bytes)
                    .await
                    .map_err(|_| Failed)?;
                self.writer.flush().await.map_err(|_| Failed)?;
                let now = now_ms() as i64;
                for entry in self.batch.drain(..) {
                    client.record_written(&entry, now);
                }
                // Keep idle sockets small after a burst.
                if self.bytes.capacity() > 64 * 1024 {
                    self.bytes = Vec::new();
                }
            }
            match flush {
                Flush::Close(reason) => return Ok(Some(reason)),
                Flush::Failed => return Err(Failed),
                Flush::Drained => {
                    if let Some(session) = session {
                        session.resync();
                    }
                }
                // More may have been queued meanwhile.
                Flush::Idle | Flush::Blocked if wrote => {}
                Flush::Idle | Flush::Blocked => return Ok(None),
            }
        }
    }

    fn drain(&mut self, _: Duration, _: bool) -> impl Future<Output = ()> + Send + '_ {
        // The read half is tungstenite's; a TLS client cut off mid-frame
        // may see a reset instead of the close frame.
        std::future::ready(())
    }
}

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
    stream: &TcpStream,
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
            Flush::Blocked => stream.writable().await.map_err(|_| Failed)?,
            Flush::Close(reason) => return Ok(Some(reason)),
            Flush::Failed => return Err(Failed),
        }
    }
}

/// Sends a close frame after what says why, and waits (briefly) for the
/// client's.
async fn close<R: AsyncRead + AsyncWrite + Unpin>(
    socket: &mut Socket<R>,
    wire: &mut impl Wire,
    client: &Client,
    reason: CloseReason,
) {
    if matches!(
        reason,
        CloseReason::TooBig | CloseReason::ProtocolError | CloseReason::InvalidPayload
    ) {
        // tungstenite stopped reading mid-message. A browser told to close
        // now gives up the rest of its message and then reports the close
        // unclean, so the close waits until the client has sent it all.
        wire.drain(SETTLE_QUIET, false).await;
    }
    client.seal(framing::close_payload(reason.code(), reason.text()).into());
    let wrote = tokio::time::timeout(CLOSE_WAIT, wire.write_out(client, None)).await;
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
        wire.drain(DRAIN_QUIET, true).await;
    }
}

/// Silence that ends the reading of a refused message before the close.
const SETTLE_QUIET: Duration = Duration::from_millis(250);

/// How long a client must stay silent before a drained socket is closed,
/// when nothing it sent looks like its close frame. A client that does
/// send one ends the drain at once: a browser that waits longer than 2 s
/// for the server to close after its close reports the close unclean.
const DRAIN_QUIET: Duration = Duration::from_secs(3);
/// The longest a closing socket is drained, however much it sends.
const DRAIN_MAX: Duration = Duration::from_secs(10);
/// The longest client close frame: 2 header bytes, a 4-byte mask and up to
/// 125 bytes of payload.
const MAX_CLOSE_FRAME: usize = 2 + 4 + 125;

/// Reads and discards what the client still sends until it has sent its
/// close frame, closes its side, or falls quiet. Closing with its data
/// unread would make the kernel reset the connection, and the client's
/// close would not be clean; waiting too long after its close frame makes a
/// browser give up on the connection. tungstenite stopped reading at the
/// framing error, so frame boundaries are not known here: the client's
/// close is recognised as the bytes it sent last.
async fn drain(stream: &TcpStream, quiet: Duration, until_close: bool) {
    let deadline = tokio::time::Instant::now() + DRAIN_MAX;
    let mut scratch = [0u8; 16 * 1024];
    let mut tail: Vec<u8> = Vec::with_capacity(2 * MAX_CLOSE_FRAME);
    while tokio::time::Instant::now() < deadline {
        match tokio::time::timeout(quiet, stream.readable()).await {
            Ok(Ok(())) => {}
            // Quiet (everything is in), or the socket failed.
            Err(_) | Ok(Err(_)) => return,
        }
        match stream.try_read(&mut scratch) {
            Ok(0) => return,
            Ok(n) => {
                tail.extend_from_slice(&scratch[..n]);
                if tail.len() > MAX_CLOSE_FRAME {
                    tail.drain(..tail.len() - MAX_CLOSE_FRAME);
                }
                if until_close && ends_with_close_frame(&tail) {
                    return;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(_) => return,
        }
    }
}

/// Whether `bytes` end with a whole masked close frame from a client: the
/// header, then a payload whose unmasked status code is a valid one. Masked
/// payload bytes look random, so the code check keeps the odds that the
/// middle of a frame passes for a close low.
fn ends_with_close_frame(bytes: &[u8]) -> bool {
    (2..=125usize).any(|len| {
        let frame = 2 + 4 + len;
        bytes.len() >= frame && {
            let start = bytes.len() - frame;
            let (mask, payload) = (&bytes[start + 2..start + 6], &bytes[start + 6..]);
            let code = u16::from_be_bytes([payload[0] ^ mask[0], payload[1] ^ mask[1]]);
            bytes[start] == 0x80 | framing::CLOSE
                && bytes[start + 1] == 0x80 | len as u8
                && (1000..=4999).contains(&code)
        }
    })
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
    // Plain TCP: the outbox writes the stream itself, next to tungstenite
    // reading it.
    let upgraded = match upgrade::downcast::<TokioIo<TcpStream>>(upgraded) {
        Ok(parts) => {
            let stream = Arc::new(parts.io.into_inner());
            // What the client sent after its upgrade request, copied: the
            // bytes hyper hands over share its whole read buffer, kilobytes
            // per socket.
            let early = parts.read_buf.to_vec();
            drop(parts.read_buf);
            let client = new_client(&shared, &profile, Some(stream.clone()));
            let wire = TcpWire(stream.clone());
            let args = (shared, addr, verdict, profile, guest_name);
            return run(ReadOnly(TcpReader(stream)), early, wire, client, args).await;
        }
        Err(upgraded) => upgraded,
    };
    match upgrade::downcast::<TokioIo<TlsStream<TcpStream>>>(upgraded) {
        Ok(parts) => {
            let early = parts.read_buf.to_vec();
            drop(parts.read_buf);
            let (read, writer) = tokio::io::split(parts.io.into_inner());
            let client = new_client(&shared, &profile, None);
            let wire = TlsWire {
                writer,
                batch: Vec::new(),
                bytes: Vec::new(),
            };
            let args = (shared, addr, verdict, profile, guest_name);
            Box::pin(run(ReadOnly(read), early, wire, client, args)).await;
        }
        Err(_) => tracing::error!(%addr, "upgraded connection is neither TCP nor TLS; closed"),
    }
}

fn new_client(shared: &Shared, profile: &Profile, stream: Option<Arc<TcpStream>>) -> Arc<Client> {
    let writes_itself = stream.is_none();
    let client = Client::new(
        shared.clients.next_id(),
        shared.config.client_queue,
        shared.metrics.clone(),
        stream,
    )
    .with_dialect(profile.dialect);
    Arc::new(if writes_itself {
        client.writing_itself()
    } else {
        client
    })
}

type AcceptArgs = (
    Arc<Shared>,
    SocketAddr,
    Result<Option<Grant>, CloseReason>,
    Profile,
    Option<String>,
);

/// Serves the WebSocket read from `reader` and written by `wire`.
async fn run<R, W>(
    reader: R,
    early: Vec<u8>,
    mut wire: W,
    client: Arc<Client>,
    (shared, addr, verdict, profile, guest_name): AcceptArgs,
) where
    R: AsyncRead + AsyncWrite + Unpin + Send,
    W: Wire,
{
    let max = shared.config.max_frame_bytes;
    let config = WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(0)
        .max_message_size(Some(max))
        .max_frame_size(Some(max));
    // The socket is created here and only borrowed below, so this future
    // (which every open connection pays for) holds it exactly once.
    let mut socket =
        WebSocketStream::from_partially_read(reader, early, Role::Server, Some(config)).await;
    let access = match verdict {
        Ok(access) => access,
        Err(reason) => {
            Box::pin(close(&mut socket, &mut wire, &client, reason)).await;
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
    let reason = serve(&mut socket, &mut wire, &mut session, &shared).await;
    if let Some(reason) = reason {
        Box::pin(close(&mut socket, &mut wire, &client, reason)).await;
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
async fn serve<R: AsyncRead + AsyncWrite + Unpin>(
    socket: &mut Socket<R>,
    wire: &mut impl Wire,
    session: &mut Session,
    shared: &Shared,
) -> Option<CloseReason> {
    let client = session.client.clone();
    let mut limit = RateLimit::new(shared.config.max_messages_per_sec);
    loop {
        tokio::select! {
            biased;
            () = client.woken() => {
                let written = tokio::time::timeout(shared.config.stuck_timeout(), wire.write_out(&client, Some(session)));
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
                        let _ = tokio::time::timeout(CLOSE_WAIT, wire.write_out(&client, None)).await;
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

#[cfg(test)]
mod drain_tests {
    use super::ends_with_close_frame;

    #[test]
    fn a_client_close_frame_is_recognised_only_at_the_end() {
        // FIN + close, masked, 2-byte payload (code 1009), mask, payload.
        let close = [0x88, 0x82, 1, 2, 3, 4, 0x03 ^ 1, 0xF1 ^ 2];
        let bad_code = [0x88, 0x82, 1, 2, 3, 4, 1, 2];
        assert!(!ends_with_close_frame(&bad_code), "code 0 is no close code");
        let mut stream = vec![0x55; 300];
        stream.extend_from_slice(&close);
        assert!(ends_with_close_frame(&stream));
        assert!(ends_with_close_frame(&close));
        stream.push(0);
        assert!(!ends_with_close_frame(&stream), "more came after it");
        assert!(!ends_with_close_frame(&[0x55; 200]));
        assert!(!ends_with_close_frame(&close[..5]), "not whole yet");
    }
}
