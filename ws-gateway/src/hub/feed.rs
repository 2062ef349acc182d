//! One board's live feed in this process: its model of the board (kept from
//! a snapshot plus every event after it), a window of recent encoded frames
//! for resuming clients, and the subscribers it fans out to.

use protocol::time::now_ms;
use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex, MutexGuard},
};

use protocol::{
    board_frames::ServerFrame,
    event_type,
    v1::{Board, BoardEvent, BoardSnapshot, Task},
};

use crate::frame::Frame;
use crate::{client::Client, metrics::Metrics, upstream::Upstream};

/// A client watching the board.
pub(super) struct Subscriber {
    pub(super) client: Arc<Client>,
    /// The last version this client was given.
    pub(super) last: u64,
    /// Its frames were dropped for lagging: it gets a `board.sync` on drain.
    pub(super) dropped: bool,
    /// While its missed frames are read from board-service's log: the
    /// replay's id and the live frames held back until it finishes.
    pub(super) replay: Option<(u64, Vec<Frame>)>,
}

pub(super) struct State {
    pub(super) board: Board,
    pub(super) tasks: HashMap<String, Task>,
    pub(super) version: u64,
    /// Consecutive frames ending at `version`.
    pub(super) recent: VecDeque<Frame>,
    /// `board.sync` at `version`, encoded on first use.
    pub(super) sync: Option<Frame>,
    pub(super) subscribers: Vec<Subscriber>,
    pub(super) closed: bool,
}

/// A board's feed; see the module docs.
pub struct Feed {
    pub board_id: Arc<str>,
    pub slug: String,
    window: usize,
    metrics: Arc<Metrics>,
    state: Mutex<State>,
    /// Ends the upstream watch when the feed closes or the gateway stops.
    pub stop: tokio_util::sync::CancellationToken,
    upstream: Upstream,
    replays: std::sync::atomic::AtomicU64,
}

/// Whether a subscribe could be placed.
pub enum Attach {
    Done,
    /// The feed is closing; look it up again.
    Closed,
}

impl Feed {
    /// A feed holding `snapshot`, with no subscriber yet.
    pub fn new(
        snapshot: BoardSnapshot,
        window: usize,
        metrics: Arc<Metrics>,
        stop: tokio_util::sync::CancellationToken,
        upstream: Upstream,
    ) -> Self {
        let mut state = State {
            board: Board::default(),
            tasks: HashMap::new(),
            version: 0,
            recent: VecDeque::new(),
            sync: None,
            subscribers: Vec::new(),
            closed: false,
        };
        state.load(snapshot);
        Self {
            stop,
            upstream,
            replays: Default::default(),
            board_id: state.board.id.as_str().into(),
            slug: state.board.slug.clone(),
            window,
            metrics,
            state: Mutex::new(state),
        }
    }

    pub(super) fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The version the feed has reached.
    pub fn version(&self) -> u64 {
        self.state().version
    }

    pub fn subscriber_count(&self) -> usize {
        self.state().subscribers.len()
    }

    pub fn holds_task(&self, task_id: &str) -> bool {
        self.state().tasks.contains_key(task_id)
    }

    /// Adds `client` (or restarts it, if already there): without `since` it
    /// gets `board.sync`, with it exactly the frames after `since` when the
    /// window holds them, else `board.sync`. Frames and the sync are queued
    /// under the feed lock, so nothing published meanwhile slips between.
    pub fn attach(self: &Arc<Self>, client: &Arc<Client>, since: Option<u64>) -> Attach {
        let mut state = self.state();
        if state.closed {
            return Attach::Closed;
        }
        state.subscribers.retain(|s| s.client.id != client.id);
        let mut sub = Subscriber {
            client: client.clone(),
            last: 0,
            dropped: false,
            replay: None,
        };
        self.catch_up(&mut state, &mut sub, since);
        state.subscribers.push(sub);
        Attach::Done
    }

    /// Removes `client`; returns whether the feed has no subscribers left.
    pub fn detach(&self, client_id: u64) -> bool {
        let mut state = self.state();
        state.subscribers.retain(|s| s.client.id != client_id);
        state.subscribers.is_empty()
    }

    /// Marks the feed closed if nobody subscribes; returns whether it did.
    pub fn close_if_idle(&self) -> bool {
        let mut state = self.state();
        if state.subscribers.is_empty() {
            state.closed = true;
            self.stop.cancel();
        }
        state.closed
    }

    /// Gives a client that lagged and drained a fresh `board.sync`.
    pub fn resync(self: &Arc<Self>, client_id: u64) {
        let mut state = self.state();
        let Some(index) = state
            .subscribers
            .iter()
            .position(|s| s.client.id == client_id && s.dropped)
        else {
            return;
        };
        let mut sub = state.subscribers.swap_remove(index);
        sub.dropped = false;
        self.catch_up(&mut state, &mut sub, None);
        state.subscribers.push(sub);
    }

    /// Queues what a subscriber that has `since` (or nothing) needs to
    /// reach `state.version`.
    pub(super) fn catch_up(
        self: &Arc<Self>,
        state: &mut State,
        sub: &mut Subscriber,
        since: Option<u64>,
    ) {
        let version = state.version;
        let replay = since.filter(|&since| {
            since == version
                || (since < version && state.recent.front().is_some_and(|f| f.version <= since + 1))
        });
        if let (None, Some(since)) = (replay, since.filter(|&s| s < version)) {
            // Older than the window: read the gap from board-service's log
            // while live frames wait in `replay`.
            let id = self
                .replays
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            sub.replay = Some((id, Vec::new()));
            sub.last = since;
            super::replay::spawn(
                self.clone(),
                self.upstream.clone(),
                sub.client.clone(),
                id,
                since,
                version,
            );
            return;
        }
        let queued = match replay {
            Some(since) => state
                .recent
                .iter()
                .filter(|f| f.version > since)
                .try_for_each(|f| sub.client.push_board(f)),
            None => {
                let sync = self.sync_frame(state);
                sub.client.push_board(&sync)
            }
        };
        sub.last = version;
        if queued.is_err() {
            sub.client.drop_board(&self.board_id);
            sub.dropped = true;
            self.metrics.client_dropped();
        }
    }

    fn sync_frame(&self, state: &mut State) -> Frame {
        if let Some(sync) = &state.sync {
            return sync.clone();
        }
        let frame = ServerFrame::board_sync(
            &state.board,
            state.tasks.values(),
            state.version,
            now_ms() as i64,
        );
        let sync = Frame::encode(&self.board_id, state.version, &frame);
        state.sync = Some(sync.clone());
        sync
    }

    /// Replaces the model with `snapshot` (first start, or after the log
    /// lost events this feed needed) and gives every subscriber `board.sync`.
    pub fn reset(self: &Arc<Self>, snapshot: BoardSnapshot) {
        let mut state = self.state();
        let version = snapshot.version;
        state.load(snapshot);
        let mut subscribers = std::mem::take(&mut state.subscribers);
        for sub in &mut subscribers {
            if sub.replay.take().is_some() {
                // The replay's frames may no longer line up: start over.
                sub.client.drop_board(&self.board_id);
            }
            if !sub.dropped && sub.last < version {
                self.catch_up(&mut state, sub, None);
            }
        }
        state.subscribers = subscribers;
    }

    /// Applies the next events and sends their frames to every subscriber,
    /// each event inside the span `span` makes for it. Several events (a
    /// backlog) are queued first and then written with one `writev` per
    /// client. Returns `false` when an event does not follow the feed's
    /// version (the caller then re-reads a snapshot).
    pub fn publish(
        &self,
        events: &[BoardEvent],
        span: impl Fn(&BoardEvent) -> tracing::Span,
    ) -> bool {
        let mut state = self.state();
        let corked = events.len() > 1;
        let mut followed = true;
        for event in events {
            let _span = span(event).entered();
            if !self.publish_one(&mut state, event, corked) {
                followed = false;
                break;
            }
        }
        if corked {
            for sub in &state.subscribers {
                sub.client.uncork();
            }
        }
        followed
    }

    fn publish_one(&self, state: &mut State, event: &BoardEvent, corked: bool) -> bool {
        if event.version <= state.version {
            return true;
        }
        if event.version != state.version + 1 {
            return false;
        }
        apply(state, event);
        state.version = event.version;
        state.sync = None;
        let Some(frame) = ServerFrame::from_event(event) else {
            tracing::warn!(board = %self.board_id, kind = %event.r#type, "event type without a frame");
            // The window must stay gap-free: resumers before this get a sync.
            state.recent.clear();
            return true;
        };
        let frame = Frame::encode(&self.board_id, event.version, &frame);
        if state.recent.len() >= self.window {
            state.recent.pop_front();
        }
        state.recent.push_back(frame.clone());
        let mut delivered = 0;
        for sub in &mut state.subscribers {
            if sub.dropped || sub.last >= frame.version {
                continue;
            }
            if let Some((_, held)) = &mut sub.replay {
                if held.len() < self.window {
                    held.push(frame.clone());
                } else {
                    // Too much to hold: the replay ends in a board.sync.
                    sub.client.drop_board(&self.board_id);
                    sub.dropped = true;
                    sub.replay = None;
                }
                continue;
            }
            let queued = if corked {
                sub.client.queue_board(&frame)
            } else {
                sub.client.push_board(&frame)
            };
            if queued.is_ok() {
                sub.last = frame.version;
                delivered += 1;
            } else {
                sub.client.drop_board(&self.board_id);
                sub.dropped = true;
                self.metrics.client_dropped();
            }
        }
        self.metrics.frames_published(delivered);
        true
    }
}

impl State {
    /// Replaces the model with `snapshot`; the window starts empty.
    fn load(&mut self, snapshot: BoardSnapshot) {
        let mut board = snapshot.board.unwrap_or_default();
        board.version = snapshot.version;
        self.board = board;
        self.tasks = snapshot
            .tasks
            .into_iter()
            .map(|t| (t.id.clone(), t))
            .collect();
        self.version = snapshot.version;
        self.recent.clear();
        self.sync = None;
    }
}

/// Folds an event into the model; events carry whole entities, so this
/// only replaces.
fn apply(state: &mut State, event: &BoardEvent) {
    let board = &mut state.board;
    board.version = event.version;
    match event.r#type.as_str() {
        event_type::TASK_DELETED => {
            if let Some(task) = &event.task {
                state.tasks.remove(&task.id);
            }
        }
        event_type::PROJECT_CREATED | event_type::PROJECT_UPDATED => {
            // The event is on this board's stream because the board joined
            // or left the project: its board ids say which.
            if let Some(project) = &event.project {
                if project.board_ids.contains(&board.id) {
                    board.project_id = project.id.clone();
                } else if board.project_id == project.id {
                    board.project_id.clear();
                }
            }
        }
        event_type::LANE_CREATED | event_type::LANE_UPDATED | event_type::LANE_DELETED => {
            board.lanes = event.lanes.clone();
            for task in &event.moved_tasks {
                state.tasks.insert(task.id.clone(), task.clone());
            }
        }
        _ => {
            if let Some(task) = &event.task {
                state.tasks.insert(task.id.clone(), task.clone());
            }
        }
    }
}
