//! A chat session in memory: its sequence numbers, the frames of its current
//! (or last) run for replay, the sockets that follow it and its run in flight.

mod registry;

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex, MutexGuard},
};

use axum::extract::ws::Utf8Bytes;
use protocol::chat_frames::ServerFrame;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub use registry::{Sessions, valid_session_id};

/// One session shared by all its sockets and its runs.
pub struct Session {
    id: String,
    board_id: String,
    replay_frames: usize,
    state: Mutex<State>,
}

struct State {
    seq: u64,
    /// Frames of the run in flight or the last run, oldest first.
    ring: VecDeque<(u64, Utf8Bytes)>,
    subscribers: Vec<(u64, mpsc::Sender<Utf8Bytes>)>,
    next_subscriber: u64,
    active: Option<(Uuid, CancellationToken)>,
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

/// Why a run could not start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Busy(pub Uuid);

impl Session {
    fn new(id: String, board_id: String, last_seq: u64, replay_frames: usize) -> Self {
        Self {
            id,
            board_id,
            replay_frames,
            state: Mutex::new(State {
                seq: last_seq,
                ring: VecDeque::new(),
                subscribers: Vec::new(),
                next_subscriber: 0,
                active: None,
            }),
        }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn board_id(&self) -> &str {
        &self.board_id
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
            (Some(after), _) => state
                .ring
                .iter()
                .filter(|(seq, _)| *seq > after)
                .map(|(_, frame)| frame.clone())
                .collect(),
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
            active_run: state.active.as_ref().map(|(run, _)| *run),
            guard: SubscriberGuard {
                session: Arc::clone(self),
                id,
            },
        }
    }

    /// Marks `run_id` as the run in flight and starts a fresh replay buffer.
    pub fn begin_run(&self, run_id: Uuid, cancel: CancellationToken) -> Result<(), Busy> {
        let mut state = self.lock();
        if let Some((active, _)) = &state.active {
            return Err(Busy(*active));
        }
        state.active = Some((run_id, cancel));
        state.ring.clear();
        Ok(())
    }

    /// Cancels the run in flight (only if it is `run_id`, when given).
    /// Returns the cancelled run.
    pub fn cancel_run(&self, run_id: Option<Uuid>) -> Option<Uuid> {
        let state = self.lock();
        let (active, token) = state.active.as_ref()?;
        if run_id.is_some_and(|id| id != *active) {
            return None;
        }
        token.cancel();
        Some(*active)
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
        if state
            .active
            .as_ref()
            .is_none_or(|(active, _)| *active != run_id)
        {
            return None;
        }
        Some(self.publish_locked(&mut state, frame, true))
    }

    fn publish_with(&self, frame: ServerFrame, terminal: bool) -> u64 {
        let mut state = self.lock();
        self.publish_locked(&mut state, frame, terminal)
    }

    fn publish_locked(&self, state: &mut State, mut frame: ServerFrame, terminal: bool) -> u64 {
        state.seq += 1;
        let seq = state.seq;
        frame.set_seq(seq);
        let text = Utf8Bytes::from(serde_json::to_string(&frame).expect("frames always serialise"));
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
        if terminal {
            state.active = None;
        }
        seq
    }
}

#[cfg(test)]
mod tests;
