//! One connected client (WebSocket or SSE): its bounded outbox, written
//! by whoever queues (see `outbox`), and the signals its connection task
//! waits on.

use std::{
    collections::{HashMap, VecDeque},
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
};

use protocol::{board_frames::ServerFrame, time::now_ms};
use tokio::{net::TcpStream, sync::Notify};

pub use crate::outbox::Outgoing;
use crate::{
    error::CloseReason,
    frame::{Dialect, Frame},
    metrics::Metrics,
    outbox::Outbox,
};

/// The outbox was full; the caller drops this board's frames for the client.
#[derive(Debug)]
pub struct Full;

/// A connected client, shared by its connection task, the board feeds it
/// watches and the heartbeat.
pub struct Client {
    pub id: u64,
    limit: usize,
    outbox: Mutex<Outbox>,
    metrics: Arc<Metrics>,
    wake: Notify,
    last_seen_ms: AtomicU64,
    /// Token expiry in ms since the epoch; 0 for none.
    expires_ms: AtomicU64,
    /// When an unauthenticated connection must have sent `auth`; 0 for none.
    auth_deadline_ms: AtomicU64,
    /// SSE clients cannot answer pings; only WebSockets time out.
    pub sse: bool,
    /// How this client's own frames are spelled.
    pub dialect: Dialect,
}

impl Client {
    /// A WebSocket client writing to `socket`, or (`None`) an SSE client
    /// whose stream takes frames from the outbox.
    pub fn new(
        id: u64,
        limit: usize,
        metrics: Arc<Metrics>,
        socket: Option<Arc<TcpStream>>,
    ) -> Self {
        Self {
            sse: socket.is_none(),
            auth_deadline_ms: AtomicU64::new(0),
            id,
            limit,
            outbox: Mutex::new(Outbox::new(socket)),
            metrics,
            wake: Notify::new(),
            last_seen_ms: AtomicU64::new(now_ms()),
            expires_ms: AtomicU64::new(0),
            dialect: Dialect::Boardwire,
        }
    }

    /// A WebSocket client whose connection task writes every frame itself
    /// (over TLS, where the outbox cannot write the TCP stream): its frames
    /// queue as an SSE client's do, but it answers pings.
    pub fn writing_itself(mut self) -> Self {
        self.sse = false;
        self
    }

    /// The same client, speaking `dialect`.
    pub fn with_dialect(mut self, dialect: Dialect) -> Self {
        self.dialect = dialect;
        self
    }

    fn outbox(&self) -> std::sync::MutexGuard<'_, Outbox> {
        self.outbox.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `entry` and writes what the socket takes now; wakes the
    /// connection task for the rest, or when there is something only it
    /// can do.
    fn send(&self, mut outbox: std::sync::MutexGuard<'_, Outbox>, entry: Outgoing) {
        if !outbox.writable_now() {
            outbox.queue.push_back(entry);
        } else {
            outbox.push_and_write(entry, &self.metrics);
            if outbox.queue.is_empty() && !outbox.failed && !outbox.lagging {
                return;
            }
        }
        drop(outbox);
        self.wake.notify_one();
    }

    /// Queues (and if possible writes) a board frame unless the outbox is
    /// at its limit.
    pub fn push_board(&self, frame: &Frame) -> Result<(), Full> {
        let outbox = self.outbox();
        if outbox.sealed || outbox.failed {
            return Ok(());
        }
        if outbox.queue.len() >= self.limit {
            return Err(Full);
        }
        self.send(outbox, Outgoing::Board(frame.clone()));
        Ok(())
    }

    /// Queues a board frame, to be written by [`Client::uncork`], unless the
    /// outbox is at its limit.
    pub fn queue_board(&self, frame: &Frame) -> Result<(), Full> {
        let mut outbox = self.outbox();
        if outbox.sealed || outbox.failed {
            return Ok(());
        }
        if outbox.queue.len() >= self.limit {
            return Err(Full);
        }
        outbox.queue.push_back(Outgoing::Board(frame.clone()));
        if !outbox.writable_now() {
            drop(outbox);
            self.wake.notify_one();
        }
        Ok(())
    }

    /// Writes what [`Client::queue_board`] queued, as far as the socket takes it.
    pub fn uncork(&self) {
        let mut outbox = self.outbox();
        if outbox.queue.is_empty() || !outbox.writable_now() {
            return;
        }
        outbox.write(&self.metrics);
        if outbox.queue.is_empty() && !outbox.failed && !outbox.lagging {
            return;
        }
        drop(outbox);
        self.wake.notify_one();
    }

    /// Drops every queued frame of `board_id` (a board, or a channel's
    /// stream key) and flags the client for a fresh start once it drains.
    /// Returns the lowest version (offset) dropped, if any was.
    pub fn drop_board(&self, board_id: &str) -> Option<u64> {
        let mut outbox = self.outbox();
        // A partly written frame stays: the stream must stay well framed.
        let partial = usize::from(outbox.written() > 0);
        let mut index = 0;
        let mut lowest: Option<u64> = None;
        outbox.queue.retain(|o| {
            index += 1;
            let drop =
                index > partial && matches!(o, Outgoing::Board(f) if &*f.board_id == board_id);
            if let (true, Outgoing::Board(f)) = (drop, o) {
                lowest = Some(lowest.map_or(f.version, |l| l.min(f.version)));
            }
            !drop
        });
        outbox.lagging = true;
        drop(outbox);
        self.wake.notify_one();
        lowest
    }

    /// Queues a frame for this client only; never refused, as these are
    /// answers to the client's own (rate-limited) frames.
    pub fn push_frame(&self, frame: &ServerFrame) {
        self.push(Outgoing::Direct(
            frame.kind(),
            self.dialect.encode(frame).into(),
        ));
    }

    /// Queues a frame the gateway pushes on its own (presence), unless the
    /// outbox is at its limit: then the client is flagged as lagging, so
    /// it gets the whole state again once it drains.
    pub fn push_unless_full(&self, outgoing: Outgoing) -> Result<(), Full> {
        let mut outbox = self.outbox();
        if outbox.sealed || outbox.failed {
            return Ok(());
        }
        if outbox.queue.len() >= self.limit {
            outbox.lagging = true;
            drop(outbox);
            self.wake.notify_one();
            return Err(Full);
        }
        self.send(outbox, outgoing);
        Ok(())
    }

    pub fn push(&self, outgoing: Outgoing) {
        let outbox = self.outbox();
        if outbox.sealed || outbox.failed {
            return;
        }
        self.send(outbox, outgoing);
    }

    /// Asks the connection task to close with `reason`.
    pub fn close(&self, reason: CloseReason) {
        self.outbox().closing.get_or_insert(reason);
        self.wake.notify_one();
    }

    /// Queues the close frame after what is queued (board frames dropped);
    /// nothing is accepted after it.
    pub fn seal(&self, close: bytes::Bytes) {
        let mut outbox = self.outbox();
        if !outbox.sealed {
            outbox.seal(close);
        }
    }

    /// Forgets the socket, so the connection closes once its task ends
    /// even while a feed or replay still holds this client.
    pub fn detach_socket(&self) {
        let mut outbox = self.outbox();
        outbox.socket = None;
        outbox.sealed = true;
        outbox.queue.clear();
    }

    /// Waits until there is something to send or a close to do.
    pub async fn woken(&self) {
        self.wake.notified().await;
    }

    /// The connection task's turn: writes what the socket takes and says
    /// what is left to do.
    pub fn flush(&self) -> Flush {
        let mut outbox = self.outbox();
        if let Some(reason) = outbox.closing.filter(|_| !outbox.sealed) {
            return Flush::Close(reason);
        }
        outbox.blocked = false;
        outbox.write(&self.metrics);
        if outbox.failed {
            return Flush::Failed;
        }
        if outbox.blocked {
            return Flush::Blocked;
        }
        // Keep idle clients small after a burst.
        if outbox.queue.capacity() > 64 {
            outbox.queue = VecDeque::new();
        }
        if std::mem::take(&mut outbox.lagging) {
            return Flush::Drained;
        }
        Flush::Idle
    }

    /// For a client [`Self::writing_itself`]: what [`Self::flush`] does,
    /// but moving up to `max` queued entries into `batch` for the caller to
    /// write. `Idle` or `Drained` with an empty batch: all is written.
    pub fn take_frames(&self, batch: &mut Vec<Outgoing>, max: usize) -> Flush {
        let mut outbox = self.outbox();
        if let Some(reason) = outbox.closing.filter(|_| !outbox.sealed) {
            return Flush::Close(reason);
        }
        if outbox.failed {
            return Flush::Failed;
        }
        let n = outbox.queue.len().min(max);
        batch.extend(outbox.queue.drain(..n));
        if !outbox.queue.is_empty() || !batch.is_empty() {
            return Flush::Idle;
        }
        if outbox.queue.capacity() > 64 {
            outbox.queue = VecDeque::new();
        }
        if std::mem::take(&mut outbox.lagging) {
            return Flush::Drained;
        }
        Flush::Idle
    }

    /// Counts `entry`, taken by [`Self::take_frames`], as written at `now` (ms).
    pub fn record_written(&self, entry: &Outgoing, now: i64) {
        crate::outbox::record(&self.metrics, entry, now);
    }

    /// For SSE: moves up to `max` queued entries into `batch`. Returns the
    /// close reason once the queue is empty and a close was asked for, and
    /// whether the client was lagging and has now drained.
    pub fn take(&self, batch: &mut Vec<Outgoing>, max: usize) -> Taken {
        let mut outbox = self.outbox();
        if let Some(reason) = outbox.closing {
            // Closing skips board frames (the client resumes after a
            // reconnect) but still says why: errors and acks go first.
            let direct: Vec<_> = outbox
                .queue
                .drain(..)
                .filter(|o| matches!(o, Outgoing::Direct(..)))
                .collect();
            if direct.is_empty() {
                return Taken::Close(reason);
            }
            batch.extend(direct);
            return Taken::More;
        }
        let n = outbox.queue.len().min(max);
        batch.extend(outbox.queue.drain(..n));
        if outbox.queue.is_empty() {
            if outbox.queue.capacity() > 64 {
                outbox.queue = VecDeque::new();
            }
            if std::mem::take(&mut outbox.lagging) {
                return Taken::Drained;
            }
        }
        Taken::More
    }

    pub fn queued(&self) -> usize {
        self.outbox().queue.len()
    }

    pub fn touch(&self) {
        self.last_seen_ms.store(now_ms(), Ordering::Relaxed);
    }

    pub fn last_seen_ms(&self) -> u64 {
        self.last_seen_ms.load(Ordering::Relaxed)
    }

    pub fn set_expiry_ms(&self, ms: u64) {
        self.expires_ms.store(ms, Ordering::Relaxed);
    }

    pub fn set_auth_deadline_ms(&self, ms: u64) {
        self.auth_deadline_ms.store(ms, Ordering::Relaxed);
    }

    pub fn auth_deadline_ms(&self) -> u64 {
        self.auth_deadline_ms.load(Ordering::Relaxed)
    }

    pub fn expiry_ms(&self) -> u64 {
        self.expires_ms.load(Ordering::Relaxed)
    }
}

/// What [`Client::flush`] left to do.
#[derive(Debug, PartialEq, Eq)]
pub enum Flush {
    /// Everything is written.
    Idle,
    /// The socket would block: wait until it is writable, then flush again.
    Blocked,
    /// The client had lagged and its outbox is now empty: resync its boards.
    Drained,
    /// A close was asked for: seal the outbox, then flush it.
    Close(CloseReason),
    Failed,
}

/// What [`Client::take`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Taken {
    More,
    /// The client had lagged and its outbox is now empty: resync its boards.
    Drained,
    Close(CloseReason),
}

/// Every connected client, for the heartbeat, stats and shutdown.
#[derive(Default)]
pub struct Registry {
    clients: Mutex<HashMap<u64, Arc<Client>>>,
    next_id: AtomicU64,
    /// Woken whenever a client leaves, so shutdown can wait for the last.
    pub left: Notify,
}

impl Registry {
    pub fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed) + 1
    }

    pub fn insert(&self, client: Arc<Client>) {
        self.lock().insert(client.id, client);
    }

    pub fn remove(&self, id: u64) {
        self.lock().remove(&id);
        self.left.notify_waiters();
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A copy of the client list, so callers never hold the lock while working.
    pub fn all(&self) -> Vec<Arc<Client>> {
        self.lock().values().cloned().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Client>>> {
        self.clients.lock().unwrap_or_else(|e| e.into_inner())
    }
}
