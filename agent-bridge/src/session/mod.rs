//! A chat session in memory: its sequence numbers, the frames of its current
//! (or last) run for replay, the sockets that follow it and its run in flight.

mod registry;

use std::{
    collections::VecDeque,
    sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
};

use axum::extract::ws::Utf8Bytes;
use protocol::chat_frames::{ErrorData, RunStatus, ServerFrame};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub use registry::{OpenError, Sessions, valid_session_id};

use crate::{
    cluster::Cluster,
    store::{LoadedSession, SEQ_BLOCK, Store},
};

/// One session shared by all its sockets and its runs.
pub struct Session {
    id: String,
    board_id: String,
    owner: String,
    replay_frames: usize,
    state: Mutex<State>,
    seqs: Option<SeqReservation>,
    /// Bumped whenever a run ends, for those waiting on one.
    ended: watch::Sender<u64>,
    /// With NATS: this load's place among the bridges (see [`crate::cluster`]).
    link: Option<Link>,
    /// `true` once the frames other bridges stored before this load are in.
    ready: watch::Receiver<bool>,
}

/// A session load's link to the other bridges.
struct Link {
    cluster: Cluster,
    /// Marks the frames this load publishes, so its follower skips them.
    origin: Uuid,
    /// Stops the follower when the load is dropped.
    stop: CancellationToken,
}

/// Seqs are reserved in PostgreSQL ahead of use, a block at a time, so a
/// bridge that dies never leaves a seq a tab saw to be handed out again.
struct SeqReservation {
    store: Store,
    /// Seqs up to here are persisted as possibly used.
    reserved: Arc<AtomicU64>,
    refilling: Arc<AtomicBool>,
}

struct State {
    /// The latest seq published (here or, with NATS, by another bridge).
    seq: u64,
    /// This load's own frames take seqs above this: every seq any bridge
    /// had reserved when it loaded.
    floor: u64,
    /// Frames of the run in flight or the last run, oldest first.
    ring: VecDeque<(u64, Utf8Bytes)>,
    /// Terminal frames of runs a dead bridge left, kept past later runs so
    /// a tab that reconnects with an older `last_seq` still learns of them.
    interrupted: VecDeque<(u64, Utf8Bytes)>,
    subscribers: Vec<(u64, mpsc::Sender<Utf8Bytes>)>,
    next_subscriber: u64,
    active: Option<ActiveRun>,
    /// The run in flight on another bridge, as its frames tell.
    remote_run: Option<Uuid>,
    /// The highest seq delivered here: a frame of another bridge at or
    /// below it (one this bridge settled for it) is not delivered twice.
    delivered: u64,
    /// Tool calls of the run in flight that wait for a person's answer.
    approvals: std::collections::HashMap<String, oneshot::Sender<Decision>>,
}

pub use crate::agent::output::Decision;

/// The run in flight.
struct ActiveRun {
    id: Uuid,
    cancel: CancellationToken,
    /// The client's `message_id` of the message it answers.
    message: Option<String>,
}

impl State {
    fn pin(&mut self, frame: (u64, Utf8Bytes)) {
        if self.interrupted.len() >= 16 {
            self.interrupted.pop_front();
        }
        self.interrupted.push_back(frame);
    }
}

/// What a new socket gets: its live feed, the frames to replay first, the
/// session's latest seq and the run in flight.
pub struct Subscription {
    pub frames: mpsc::Receiver<Utf8Bytes>,
    pub replay: Vec<Utf8Bytes>,
    pub seq: u64,
    pub active_run: Option<Uuid>,
    guard: SubscriberGuard,
}

impl Subscription {
    /// Splits off the part that unsubscribes when dropped.
    pub fn into_parts(self) -> (mpsc::Receiver<Utf8Bytes>, Vec<Utf8Bytes>, SubscriberGuard) {
        (self.frames, self.replay, self.guard)
    }
}

/// Removes the subscriber from its session when dropped.
pub struct SubscriberGuard {
    session: Arc<Session>,
    id: u64,
}

impl Drop for SubscriberGuard {
    fn drop(&mut self) {
        self.session
            .lock()
            .subscribers
            .retain(|(id, _)| *id != self.id);
    }
}

/// Why a run could not start: `run` is in flight, and `same_message` says
/// whether it answers the very message that was to start a new one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Busy {
    pub run: Uuid,
    pub same_message: bool,
}

impl Session {
    /// A session with no persistence of its seqs: for unit tests.
    fn new(id: String, board_id: String, last_seq: u64, replay_frames: usize) -> Self {
        Self {
            id,
            board_id,
            owner: String::new(),
            replay_frames,
            state: Mutex::new(State {
                seq: last_seq,
                floor: last_seq,
                ring: VecDeque::new(),
                interrupted: VecDeque::new(),
                subscribers: Vec::new(),
                next_subscriber: 0,
                active: None,
                remote_run: None,
                delivered: 0,
                approvals: Default::default(),
            }),
            seqs: None,
            ended: watch::Sender::new(0),
            link: None,
            ready: watch::channel(true).1,
        }
    }

    /// The session as loaded from PostgreSQL, its seqs reserved there. The
    /// terminal frames of its interrupted runs are ready for `last_seq` replay.
    /// With a cluster, the load is not ready until its follower has the
    /// stream's frames (`ready` is for the follower to send).
    fn loaded(
        loaded: LoadedSession,
        replay_frames: usize,
        store: Store,
        cluster: Option<(Cluster, watch::Receiver<bool>)>,
    ) -> Self {
        let mut session = Self::new(
            loaded.row.id,
            loaded.row.board_id,
            loaded.start_seq,
            replay_frames,
        );
        session.owner = loaded.row.owner;
        session.seqs = Some(SeqReservation {
            store,
            reserved: Arc::new(AtomicU64::new(loaded.reserved)),
            refilling: Arc::new(AtomicBool::new(false)),
        });
        if let Some((cluster, ready)) = cluster {
            session.link = Some(Link {
                cluster,
                origin: Uuid::now_v7(),
                stop: CancellationToken::new(),
            });
            session.ready = ready;
        }
        {
            let mut state = session.lock();
            for (run_id, message, seq) in loaded.interrupted {
                let frame = interrupted_frame(run_id, &message, seq);
                state.pin((seq, encode(&frame)));
            }
        }
        session
    }

    /// The frames other bridges stored are in, the highest at `seen` (0:
    /// none). Then that, not the reservation this load starts above, is the
    /// latest seq a new tab is told: another bridge's run in flight may
    /// still publish seqs below the reservation.
    pub(crate) fn caught_up_at(&self, seen: u64) {
        if seen == 0 {
            return;
        }
        let mut state = self.lock();
        // The ring's last frame is the latest any load here delivered, its
        // own included, so a late catch-up never lowers a seq handed out.
        let pinned = state.interrupted.iter().map(|(seq, _)| *seq).max();
        let ring = state.ring.back().map(|(seq, _)| *seq);
        state.seq = seen.max(pinned.unwrap_or(0)).max(ring.unwrap_or(0));
    }

    /// The other bridges, with NATS.
    pub fn cluster(&self) -> Option<&Cluster> {
        self.link.as_ref().map(|link| &link.cluster)
    }

    /// What the follower of this load needs: its origin and stop token.
    pub(crate) fn follower_link(&self) -> Option<(Uuid, CancellationToken)> {
        self.link
            .as_ref()
            .map(|link| (link.origin, link.stop.clone()))
    }

    /// Waits (at most `max`) until the frames other bridges stored before
    /// this load are in, so a first tab's replay has them.
    pub async fn caught_up(&self, max: std::time::Duration) {
        let mut ready = self.ready.clone();
        if tokio::time::timeout(max, ready.wait_for(|ready| *ready))
            .await
            .is_err()
        {
            tracing::warn!(session = %self.id, "the session's frames on NATS are late; serving without them");
        }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn board_id(&self) -> &str {
        &self.board_id
    }

    /// The `sub` that opened the session; `""` when opened with auth off.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// Publishes the terminal `error` frame of a run a dead process left
    /// behind, at `seq` (assigned in PostgreSQL above every reserved seq) or
    /// later. Returns the seq it got.
    pub fn publish_interrupted(&self, run_id: Uuid, message: &str, seq: u64) -> u64 {
        let mut state = self.lock();
        state.seq = state.seq.max(seq.saturating_sub(1));
        let frame = interrupted_frame(run_id, message, 0);
        let seq = self.publish_locked(&mut state, frame, false);
        if let Some(pinned) = state.ring.back().cloned() {
            state.pin(pinned);
        }
        if state.remote_run == Some(run_id) {
            state.remote_run = None;
            self.ended.send_modify(|n| *n += 1);
        }
        seq
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock leaves only plain data behind.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The latest sequence number handed out.
    pub fn seq(&self) -> u64 {
        self.lock().seq
    }

    /// Follows the session. With `last_seq`, replays the kept frames after
    /// it; without, replays the run in flight, if any. Registration and the
    /// replay snapshot happen under one lock, so nothing is missed or doubled.
    pub fn subscribe(self: &Arc<Self>, last_seq: Option<u64>, queue: usize) -> Subscription {
        let (tx, rx) = mpsc::channel(queue);
        let mut state = self.lock();
        let replay = match (last_seq, state.active.is_some()) {
            (Some(after), _) => {
                let oldest_kept = state.ring.front().map_or(u64::MAX, |(seq, _)| *seq);
                // Pinned frames older than the ring first, then the ring.
                let mut frames: Vec<_> = state
                    .interrupted
                    .iter()
                    .filter(|(seq, _)| *seq > after && *seq < oldest_kept)
                    .map(|(_, frame)| frame.clone())
                    .collect();
                frames.extend(
                    state
                        .ring
                        .iter()
                        .filter(|(seq, _)| *seq > after)
                        .map(|(_, frame)| frame.clone()),
                );
                frames
            }
            (None, true) => state.ring.iter().map(|(_, frame)| frame.clone()).collect(),
            (None, false) => Vec::new(),
        };
        let id = state.next_subscriber;
        state.next_subscriber += 1;
        state.subscribers.push((id, tx));
        Subscription {
            frames: rx,
            replay,
            seq: state.seq,
            active_run: state.active.as_ref().map(|run| run.id).or(state.remote_run),
            guard: SubscriberGuard {
                session: Arc::clone(self),
                id,
            },
        }
    }

    /// Marks `run_id` as the run in flight, answering the client's
    /// `message`, and starts a fresh replay buffer.
    pub fn begin_run(
        &self,
        run_id: Uuid,
        cancel: CancellationToken,
        message: Option<&str>,
    ) -> Result<(), Busy> {
        let mut state = self.lock();
        if let Some(active) = &state.active {
            return Err(Busy {
                run: active.id,
                same_message: message.is_some() && active.message.as_deref() == message,
            });
        }
        if let Some(run) = state.remote_run {
            return Err(Busy {
                run,
                same_message: false,
            });
        }
        state.active = Some(ActiveRun {
            id: run_id,
            cancel,
            message: message.map(str::to_owned),
        });
        state.ring.clear();
        Ok(())
    }

    /// Takes back `run_id`'s [`Self::begin_run`] before it published
    /// anything: another bridge holds the session's run.
    pub fn abandon_run(&self, run_id: Uuid) {
        let mut state = self.lock();
        if state.active.as_ref().is_some_and(|run| run.id == run_id) {
            state.active = None;
            self.ended.send_modify(|n| *n += 1);
        }
    }

    /// The run in flight on another bridge, as its frames tell.
    pub fn remote_run(&self) -> Option<Uuid> {
        self.lock().remote_run
    }

    /// Forgets the other bridge's run `run_id`: PostgreSQL has no record of it.
    pub fn forget_remote_run(&self, run_id: Uuid) {
        let mut state = self.lock();
        if state.remote_run == Some(run_id) {
            state.remote_run = None;
            self.ended.send_modify(|n| *n += 1);
        }
    }

    /// Ends the other bridge's run `run_id`, which PostgreSQL says ended,
    /// with its terminal `frame` at `seq`: that bridge died before its frame
    /// reached NATS, or NATS lost it. Published again for the other bridges'
    /// tabs (JetStream drops a copy of a frame it has by its message id) and
    /// delivered here, unless a frame at `seq` or later got here first.
    /// Whether the run was still waited for.
    pub fn settle_remote_run(&self, run_id: Uuid, seq: u64, mut frame: ServerFrame) -> bool {
        let mut state = self.lock();
        if state.remote_run != Some(run_id) {
            return false;
        }
        state.remote_run = None;
        if seq > state.delivered {
            state.seq = state.seq.max(seq);
            self.reserve_ahead(seq);
            frame.set_seq(seq);
            let text = encode(&frame);
            if let Some(link) = &self.link {
                link.cluster
                    .publish(&self.id, link.origin, seq, &text, true);
            }
            self.deliver_locked(&mut state, seq, text.clone());
            if matches!(&frame, ServerFrame::Error { data, .. } if data.code == "interrupted") {
                state.pin((seq, text));
            }
        }
        self.ended.send_modify(|n| *n += 1);
        true
    }

    /// A frame another bridge published at `seq`: into the replay ring and
    /// out to this bridge's sockets, with the run it starts or ends noted.
    pub fn accept_remote(&self, seq: u64, text: Utf8Bytes, frame: &ServerFrame) {
        let run = frame.run_id().and_then(|id| id.parse::<Uuid>().ok());
        let mut state = self.lock();
        if seq <= state.delivered {
            return;
        }
        if let ServerFrame::Status { data, .. } = frame
            && data.status == RunStatus::Processing
            && run.is_some()
        {
            state.ring.clear();
            state.remote_run = run;
        }
        state.seq = state.seq.max(seq);
        self.deliver_locked(&mut state, seq, text.clone());
        if frame.is_terminal() {
            if let ServerFrame::Error { data, .. } = frame
                && data.code == "interrupted"
            {
                state.pin((seq, text));
            }
            if state.remote_run == run {
                state.remote_run = None;
            }
            self.ended.send_modify(|n| *n += 1);
        }
    }

    /// Resolves once `run_id` is no longer in flight here.
    pub async fn run_ended(&self, run_id: Uuid) {
        let mut ended = self.ended.subscribe();
        while self.is_running(run_id) {
            if ended.changed().await.is_err() {
                return;
            }
        }
    }

    /// Registers a tool call of the run in flight as awaiting approval.
    pub fn await_approval(&self, tool_call_id: &str) -> oneshot::Receiver<Decision> {
        let (tx, rx) = oneshot::channel();
        self.lock().approvals.insert(tool_call_id.to_owned(), tx);
        rx
    }

    /// Answers a waiting tool call; `false` when none waits under that id
    /// (answered already, timed out, or never asked).
    pub fn answer_approval(&self, tool_call_id: &str, decision: Decision) -> bool {
        let waiting = self.lock().approvals.remove(tool_call_id);
        waiting.is_some_and(|tx| tx.send(decision).is_ok())
    }

    /// [`Self::answer_approval`] here, or else on the bridge that runs the
    /// session's run (with NATS).
    pub async fn answer_approval_anywhere(&self, tool_call_id: &str, decision: Decision) -> bool {
        if self.answer_approval(tool_call_id, decision.clone()) {
            return true;
        }
        let Some(cluster) = self.cluster() else {
            return false;
        };
        let request = crate::cluster::control::Request::Approval {
            tool_call_id: tool_call_id.to_owned(),
            approved: decision.approved,
            by: decision.by,
            reason: decision.reason,
        };
        cluster.ask(&self.id, &request).await
    }

    /// [`Self::cancel_run`] here, or else on the bridge that runs the
    /// session's run (with NATS). Whether a run was cancelled.
    pub async fn cancel_run_anywhere(&self, run_id: Option<Uuid>) -> bool {
        if self.cancel_run(run_id).is_some() {
            return true;
        }
        let Some(cluster) = self.cluster() else {
            return false;
        };
        let request = crate::cluster::control::Request::Cancel { run_id };
        cluster.ask(&self.id, &request).await
    }

    pub fn forget_approval(&self, tool_call_id: &str) {
        self.lock().approvals.remove(tool_call_id);
    }

    /// Whether `run_id` is in flight on this session.
    pub fn is_running(&self, run_id: Uuid) -> bool {
        self.lock()
            .active
            .as_ref()
            .is_some_and(|run| run.id == run_id)
    }

    /// Waits until `run_id` ends on this session, or `max` passes. A run
    /// not in flight here (another bridge drives it, or it just ended) waits
    /// the whole `max`: the caller polls its record between waits.
    pub async fn run_end_or(&self, run_id: Uuid, max: std::time::Duration) {
        let mut ended = self.ended.subscribe();
        if !self.is_running(run_id) {
            tokio::time::sleep(max).await;
            return;
        }
        let _ = tokio::time::timeout(max, ended.changed()).await;
    }

    /// Cancels the run in flight (only if it is `run_id`, when given).
    /// Returns the cancelled run.
    pub fn cancel_run(&self, run_id: Option<Uuid>) -> Option<Uuid> {
        let state = self.lock();
        let active = state.active.as_ref()?;
        if run_id.is_some_and(|id| id != active.id) {
            return None;
        }
        active.cancel.cancel();
        Some(active.id)
    }

    /// Stamps the next seq on `frame` and sends it to every socket.
    pub fn publish(&self, frame: ServerFrame) -> u64 {
        self.publish_with(frame, false)
    }

    /// Publishes `run_id`'s terminal frame and ends the run, atomically, so
    /// the next message is accepted only after every socket has it. Returns
    /// `None` (publishing nothing) when the run has already ended: a run gets
    /// exactly one terminal frame.
    pub fn publish_terminal(&self, run_id: Uuid, frame: ServerFrame) -> Option<u64> {
        let mut state = self.lock();
        if state.active.as_ref().is_none_or(|run| run.id != run_id) {
            return None;
        }
        Some(self.publish_locked(&mut state, frame, true))
    }

    fn publish_with(&self, frame: ServerFrame, terminal: bool) -> u64 {
        let mut state = self.lock();
        self.publish_locked(&mut state, frame, terminal)
    }

    fn publish_locked(&self, state: &mut State, mut frame: ServerFrame, terminal: bool) -> u64 {
        let started = std::time::Instant::now();
        state.seq = state.seq.max(state.floor) + 1;
        let seq = state.seq;
        self.reserve_ahead(seq);
        frame.set_seq(seq);
        let text = encode(&frame);
        if let Some(link) = &self.link {
            link.cluster
                .publish(&self.id, link.origin, seq, &text, frame.is_terminal());
        }
        self.deliver_locked(state, seq, text);
        if terminal {
            state.active = None;
            // A cancelled run leaves no question open.
            state.approvals.clear();
            self.ended.send_modify(|n| *n += 1);
        }
        let metrics = &crate::metrics::METRICS;
        metrics.frames.inc();
        metrics
            .publish_seconds
            .observe(started.elapsed().as_secs_f64());
        seq
    }

    /// Keeps `text` for replay and queues it on every socket.
    fn deliver_locked(&self, state: &mut State, seq: u64, text: Utf8Bytes) {
        state.delivered = state.delivered.max(seq);
        if state.ring.len() >= self.replay_frames {
            state.ring.pop_front();
        }
        state.ring.push_back((seq, text.clone()));
        state.subscribers.retain(|(id, tx)| match tx.try_send(text.clone()) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                // Dropping the sender ends the socket's feed after what it
                // has queued; it closes and the client resumes with last_seq.
                tracing::warn!(session = %self.id, subscriber = id, "chat socket too slow, closing it");
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        });
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if let Some(link) = &self.link {
            link.stop.cancel();
        }
    }
}

impl Session {
    /// Persists the next block of seqs once half of this one is used, so
    /// the write lands long before the block runs out.
    fn reserve_ahead(&self, seq: u64) {
        let Some(seqs) = &self.seqs else { return };
        let reserved = seqs.reserved.load(Ordering::Acquire);
        if seq > reserved {
            tracing::warn!(session = %self.id, seq, reserved, "seq handed out before its reservation landed");
        }
        if reserved.saturating_sub(seq) >= SEQ_BLOCK / 2
            || seqs.refilling.swap(true, Ordering::AcqRel)
        {
            return;
        }
        let target = reserved.max(seq) + SEQ_BLOCK;
        let (store, id) = (seqs.store.clone(), self.id.clone());
        let (reserved, refilling) = (Arc::clone(&seqs.reserved), Arc::clone(&seqs.refilling));
        tokio::spawn(async move {
            match store.save_last_seq(&id, target).await {
                Ok(()) => {
                    reserved.fetch_max(target, Ordering::AcqRel);
                }
                Err(err) => tracing::error!(session = %id, error = %err, "cannot reserve seqs"),
            }
            refilling.store(false, Ordering::Release);
        });
    }
}

/// The terminal frame of a run whose bridge died while it was in flight.
pub fn interrupted_frame(run_id: Uuid, message: &str, seq: u64) -> ServerFrame {
    ServerFrame::Error {
        seq,
        run_id: Some(run_id.to_string()),
        data: ErrorData::new("interrupted", message),
    }
}

fn encode(frame: &ServerFrame) -> Utf8Bytes {
    Utf8Bytes::from(protocol::json::encode(frame))
}

#[cfg(test)]
mod tests;
