//! A client's bounded outbox and the one writer of its WebSocket. Whoever
//! queues a frame (the board feed fanning out, the session answering, the
//! heartbeat) writes it straight to the socket while the socket takes it,
//! with one non-blocking `writev` under the outbox lock, so the common case
//! wakes no task. Only what would block stays queued, for the connection
//! task to write once the socket is writable. Every byte the gateway sends
//! on a WebSocket goes through here, in queue order: board frames, acks,
//! pings, pongs and the close frame.

use std::{collections::VecDeque, io::IoSlice, sync::Arc};

use axum::extract::ws::Utf8Bytes;
use bytes::Bytes;
use protocol::time::now_ms;
use tokio::{io::Interest, net::TcpStream};

use crate::{
    error::CloseReason,
    frame::Frame,
    framing::{self, Header},
    metrics::Metrics,
};

/// Entries written per `writev`.
const BATCH: usize = 64;

/// An entry of the outbox.
#[derive(Debug, Clone)]
pub enum Outgoing {
    /// A board frame, encoded once and shared by every subscriber.
    Board(Frame),
    /// A frame for this client only (ack, error, connected), with its
    /// `type` for SSE's `event:` line.
    Direct(&'static str, Utf8Bytes),
    /// A WebSocket ping from the heartbeat.
    Ping,
    /// The answer to a client's ping, with its payload.
    Pong(Bytes),
    /// A close frame's payload; the last entry a socket gets.
    Close(Bytes),
}

impl Outgoing {
    /// Its WebSocket opcode and payload.
    pub(crate) fn frame(&self) -> (u8, &[u8]) {
        match self {
            Self::Board(frame) => (framing::TEXT, frame.json.as_bytes()),
            Self::Direct(_, text) => (framing::TEXT, text.as_bytes()),
            Self::Ping => (framing::PING, &[]),
            Self::Pong(payload) => (framing::PONG, payload),
            Self::Close(payload) => (framing::CLOSE, payload),
        }
    }
}

#[derive(Default)]
pub struct Outbox {
    pub queue: VecDeque<Outgoing>,
    /// Bytes of the front entry already on the wire.
    written: usize,
    /// Boards whose frames were dropped: each gets a fresh `board.sync` once
    /// the outbox drains.
    pub lagging: bool,
    pub closing: Option<CloseReason>,
    /// The close frame is queued: nothing more is accepted.
    pub sealed: bool,
    /// The last write would have blocked: until the connection task has
    /// seen the socket writable again, frames only queue.
    pub blocked: bool,
    /// The socket failed; the connection task ends it.
    pub failed: bool,
    /// The WebSocket's stream; `None` for SSE and once the connection ends.
    pub socket: Option<Arc<TcpStream>>,
}

impl Outbox {
    pub fn new(socket: Option<Arc<TcpStream>>) -> Self {
        Self {
            socket,
            ..Self::default()
        }
    }

    /// Bytes of the front entry already on the wire.
    pub fn written(&self) -> usize {
        self.written
    }

    /// Whoever queues may write now: a WebSocket that is not blocked,
    /// failed or closing (closing drops board frames, so it is the task's).
    pub fn writable_now(&self) -> bool {
        self.socket.is_some() && !self.blocked && !self.failed && self.closing.is_none()
    }

    /// Queues `entry`, then writes what the socket takes now. With nothing
    /// ahead of it (the common case) the entry is written without being
    /// queued at all.
    pub fn push_and_write(&mut self, entry: Outgoing, metrics: &Metrics) {
        let Some(socket) = self.socket.as_deref().filter(|_| self.queue.is_empty()) else {
            self.queue.push_back(entry);
            return self.write(metrics);
        };
        let (opcode, payload) = entry.frame();
        let header = Header::new(opcode, payload.len());
        let len = header.as_bytes().len() + payload.len();
        match send(
            socket,
            &[IoSlice::new(header.as_bytes()), IoSlice::new(payload)],
        ) {
            Ok(wrote) if wrote == len => record(metrics, &entry, now_ms() as i64),
            Ok(0) => self.failed = true,
            Ok(wrote) => {
                self.written = wrote;
                self.queue.push_back(entry);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                self.blocked = true;
                self.queue.push_back(entry);
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {
                self.queue.push_back(entry);
                self.write(metrics);
            }
            Err(_) => self.failed = true,
        }
    }

    /// Writes queued entries until the queue is empty or the socket would
    /// block (`blocked`) or fails (`failed`).
    pub fn write(&mut self, metrics: &Metrics) {
        let Some(socket) = self.socket.as_deref() else {
            return;
        };
        let now = now_ms() as i64;
        while !self.queue.is_empty() && !self.blocked && !self.failed {
            let n = self.queue.len().min(BATCH);
            let mut headers = [Header::new(0, 0); BATCH];
            for (header, entry) in headers.iter_mut().zip(&self.queue) {
                let (opcode, payload) = entry.frame();
                *header = Header::new(opcode, payload.len());
            }
            let mut slices = [IoSlice::new(&[]); 2 * BATCH];
            let mut count = 0;
            for (header, entry) in headers.iter().zip(&self.queue).take(n) {
                slices[count] = IoSlice::new(header.as_bytes());
                let payload = entry.frame().1;
                slices[count + 1] = IoSlice::new(payload);
                count += if payload.is_empty() { 1 } else { 2 };
            }
            let mut pending = &mut slices[..count];
            IoSlice::advance_slices(&mut pending, self.written);
            match send(socket, pending) {
                Ok(0) => self.failed = true,
                Ok(wrote) => {
                    let mut done = self.written + wrote;
                    for header in &headers[..n] {
                        let len = header.as_bytes().len() + self.queue[0].frame().1.len();
                        if done < len {
                            break;
                        }
                        done -= len;
                        let entry = self.queue.pop_front().expect("counted above");
                        record(metrics, &entry, now);
                    }
                    self.written = done;
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => self.blocked = true,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => self.failed = true,
            }
        }
        if self.failed {
            self.queue.clear();
            self.written = 0;
        }
    }

    /// Drops board frames (the client resumes after a reconnect) but keeps
    /// what says why, then queues the close frame last. A partly written
    /// entry is finished first, so the stream stays well framed.
    pub fn seal(&mut self, close: Bytes) {
        let partial = usize::from(self.written > 0);
        let mut index = 0;
        self.queue.retain(|entry| {
            index += 1;
            index <= partial || !matches!(entry, Outgoing::Board(_) | Outgoing::Ping)
        });
        self.queue.push_back(Outgoing::Close(close));
        self.sealed = true;
    }
}

/// One non-blocking `sendmsg`. `writev` would do the same, but also takes
/// the file-position lock, which shows in profiles at one call per delivery.
fn send(socket: &TcpStream, slices: &[IoSlice<'_>]) -> std::io::Result<usize> {
    socket.try_io(Interest::WRITABLE, || {
        socket2::SockRef::from(socket).send_vectored(slices)
    })
}

/// Counts `entry` as sent at `now` (ms).
pub(crate) fn record(metrics: &Metrics, entry: &Outgoing, now: i64) {
    metrics.frames_sent.inc();
    if let Outgoing::Board(frame) = entry {
        metrics.record_sent(now.saturating_sub(frame.ts).max(0) as u64, 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::board_frames::ServerFrame;
    use tokio::io::AsyncReadExt;

    fn board(n: usize) -> Outgoing {
        let frame = ServerFrame::Connected {
            client_id: "x".repeat(n),
            heartbeat_ms: 0,
        };
        Outgoing::Board(Frame::encode(&Arc::from("b"), 1, &frame))
    }

    #[test]
    fn sealing_drops_board_frames_but_finishes_a_partly_written_one() {
        let mut outbox = Outbox::new(None);
        outbox.queue.extend([
            board(1),
            Outgoing::Direct("error", "e".into()),
            board(2),
            Outgoing::Ping,
        ]);
        outbox.written = 3;
        outbox.seal(Bytes::from_static(b"\x03\xe9"));
        let kinds: Vec<_> = outbox.queue.iter().map(|o| o.frame().0).collect();
        assert_eq!(kinds, [framing::TEXT, framing::TEXT, framing::CLOSE]);
        assert!(matches!(outbox.queue[0], Outgoing::Board(_)));
        assert!(outbox.sealed);
    }

    /// Frames larger than the socket buffers: writes stop part-way through
    /// one, and the reader still sees every frame whole and in order.
    #[tokio::test]
    async fn partial_writes_resume_where_they_stopped() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut peer = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let socket = Arc::new(listener.accept().await.unwrap().0);
        let metrics = Metrics::default();
        // Small kernel buffers, so writes block well before the end.
        socket2::SockRef::from(&*socket)
            .set_send_buffer_size(4096)
            .unwrap();
        socket2::SockRef::from(&peer)
            .set_recv_buffer_size(4096)
            .unwrap();
        let mut outbox = Outbox::new(Some(socket.clone()));
        let sizes = [100_000, 10, 200_000, 70_000, 1];
        for size in sizes {
            outbox.push_and_write(board(size), &metrics);
        }
        assert!(outbox.blocked, "the peer reads nothing yet");
        let reader = tokio::spawn(async move {
            let mut bytes = Vec::new();
            peer.read_to_end(&mut bytes).await.unwrap();
            bytes
        });
        while !outbox.queue.is_empty() {
            socket.writable().await.unwrap();
            outbox.blocked = false;
            outbox.write(&metrics);
        }
        drop(outbox);
        drop(socket);
        let bytes = reader.await.unwrap();
        let mut at = 0;
        for size in sizes {
            let (len, start) = match bytes[at + 1] {
                126 => (
                    usize::from(u16::from_be_bytes([bytes[at + 2], bytes[at + 3]])),
                    at + 4,
                ),
                127 => (
                    u64::from_be_bytes(bytes[at + 2..at + 10].try_into().unwrap()) as usize,
                    at + 10,
                ),
                n => (usize::from(n), at + 2),
            };
            assert_eq!(bytes[at], 0x81);
            let text = std::str::from_utf8(&bytes[start..start + len]).unwrap();
            assert_eq!(text.matches('x').count(), size);
            at = start + len;
        }
        assert_eq!(at, bytes.len());
    }
}
