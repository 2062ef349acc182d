//! One channel's live feed in this process: the epoch and newest offset,
//! a window of recent encoded publications for resuming clients, and the
//! subscribers it fans out to. One upstream `WatchChannel` fills it, or
//! with NATS the channel's subject (`nats`).

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex, MutexGuard},
};

use protocol::{
    board_frames::ServerFrame,
    channel_frames::{ChannelPosition, Publication},
    v1::ChannelPublication,
};
use serde_json::value::RawValue;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::{client::Client, frame::Frame};

/// The key a channel's frames carry in place of a board id, so a lagging
/// client's queued frames of one channel can be dropped together. The `#`
/// keeps it apart from board ids (UUIDs).
pub fn stream_key(channel: &str) -> Arc<str> {
    format!("#channel:{channel}").into()
}

struct State {
    /// `None` until the upstream watch reports the channel's position.
    epoch: Option<Arc<str>>,
    /// `recent` holds every publication after `base` up to `top` (offsets
    /// may skip only those whose own TTL passed before they were read).
    base: u64,
    top: u64,
    recent: VecDeque<Frame>,
    subscribers: Vec<Arc<Client>>,
    /// Clients whose frames were dropped for lagging: the last offset each
    /// was sure to get, in the epoch it got it in. They resume once drained.
    lagged: HashMap<u64, (u64, Arc<str>)>,
    closed: bool,
}

/// A channel's feed; see the module docs.
pub struct ChannelFeed {
    pub name: Arc<str>,
    pub key: Arc<str>,
    window: usize,
    state: Mutex<State>,
    /// Woken when the position is first known.
    pub(super) ready: Notify,
    /// Ends the upstream watch when the feed closes or the gateway stops.
    pub stop: CancellationToken,
}

/// What [`ChannelFeed::attach`] did.
pub enum Attach {
    /// Subscribed (the ack went out).
    Done,
    /// The position is not known yet: wait for `ready`.
    NotReady,
    /// The window does not reach back to `since`: replay from history.
    NeedHistory,
    /// The feed is closing; look it up again.
    Closed,
}

impl ChannelFeed {
    pub fn new(name: &str, window: usize, stop: CancellationToken) -> Self {
        Self {
            name: name.into(),
            key: stream_key(name),
            window: window.max(1),
            state: Mutex::new(State {
                epoch: None,
                base: 0,
                top: 0,
                recent: VecDeque::new(),
                subscribers: Vec::new(),
                lagged: HashMap::new(),
                closed: false,
            }),
            ready: Notify::new(),
            stop,
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn subscriber_count(&self) -> usize {
        self.state().subscribers.len()
    }

    pub fn is_ready(&self) -> bool {
        self.state().epoch.is_some()
    }

    /// Where the feed stands, for the upstream watch to resume from.
    pub(super) fn resume_point(&self) -> Option<(u64, Arc<str>)> {
        let state = self.state();
        state.epoch.clone().map(|epoch| (state.top, epoch))
    }

    fn position(state: &State, recovered: bool) -> ChannelPosition {
        ChannelPosition {
            channel: String::new(),
            epoch: state.epoch.as_deref().unwrap_or_default().to_owned(),
            offset: state.top,
            recovered,
        }
    }

    /// Subscribes `client`: fresh, or after `since` in `epoch` from the
    /// window. `ack` runs under the feed's lock, so the ack precedes every
    /// publication the client gets.
    pub fn attach(
        &self,
        client: &Arc<Client>,
        since: Option<(u64, &str)>,
        ack: &(dyn Fn(ChannelPosition) + Sync),
    ) -> Attach {
        let mut state = self.state();
        if state.closed {
            return Attach::Closed;
        }
        let Some(epoch) = state.epoch.clone() else {
            return Attach::NotReady;
        };
        let resumable = since.filter(|(offset, e)| *e == &*epoch && *offset <= state.top);
        let mut position = Self::position(&state, resumable.is_some());
        position.channel = self.name.to_string();
        match resumable {
            Some((offset, _)) if offset < state.base => return Attach::NeedHistory,
            Some((offset, _)) => {
                ack(position.clone());
                for frame in state.recent.iter().filter(|f| f.version > offset) {
                    if client.push_board(frame).is_err() {
                        // Cannot even take the replay: resume after draining.
                        let last = client
                            .drop_board(&self.key)
                            .map_or(frame.version - 1, |l| l - 1);
                        state.lagged.insert(client.id, (last, epoch));
                        return Attach::Done;
                    }
                }
            }
            None => ack(position.clone()),
        }
        self.add(&mut state, client);
        Attach::Done
    }

    /// Subscribes `client` after `since`, with `history` (what
    /// board-service replayed after it, up to offset `replayed`) filling
    /// what the window no longer holds. False when the two do not meet
    /// (the window moved on meanwhile, or the epoch changed): try again.
    pub fn attach_with_history(
        &self,
        client: &Arc<Client>,
        epoch: &str,
        history: &[Frame],
        replayed: u64,
        ack: &(dyn Fn(ChannelPosition) + Sync),
    ) -> bool {
        let mut state = self.state();
        if state.closed || state.epoch.as_deref() != Some(epoch) || state.base > replayed {
            return false;
        }
        let mut position = Self::position(&state, true);
        position.channel = self.name.to_string();
        ack(position);
        let top = state.top;
        let tail = state.recent.iter().filter(|f| f.version > replayed);
        // History beyond the feed's top arrives live once attached.
        let frames = history.iter().filter(|f| f.version <= top).chain(tail);
        for frame in frames {
            if client.push_board(frame).is_err() {
                let last = client
                    .drop_board(&self.key)
                    .map_or(frame.version - 1, |l| l - 1);
                state.lagged.insert(client.id, (last, epoch.into()));
                return true;
            }
        }
        self.add(&mut state, client);
        true
    }

    fn add(&self, state: &mut State, client: &Arc<Client>) {
        if !state.subscribers.iter().any(|c| c.id == client.id) {
            state.subscribers.push(client.clone());
        }
    }

    /// Takes `client` off; true when nobody is left.
    pub fn detach(&self, client_id: u64) -> bool {
        let mut state = self.state();
        state.subscribers.retain(|c| c.id != client_id);
        state.lagged.remove(&client_id);
        state.subscribers.is_empty() && state.lagged.is_empty()
    }

    /// Marks the feed closed when nobody watches; true if it did.
    pub fn close_if_idle(&self) -> bool {
        let mut state = self.state();
        if state.subscribers.is_empty() && state.lagged.is_empty() && !state.closed {
            state.closed = true;
            self.stop.cancel();
        }
        state.closed
    }

    /// Where a client dropped for lagging must resume, taking it off the
    /// lagged list.
    pub fn take_lagged(&self, client_id: u64) -> Option<(u64, Arc<str>)> {
        self.state().lagged.remove(&client_id)
    }

    /// The upstream watch reported its head. The first report makes the
    /// feed ready; a later one that is not `recovered` means the channel's
    /// history was lost: every subscriber is told, and the feed restarts.
    pub(super) fn set_position(&self, epoch: &str, offset: u64, recovered: bool) {
        let mut state = self.state();
        if state.epoch.is_some() && recovered {
            return;
        }
        let reset = state.epoch.is_some();
        state.epoch = Some(epoch.into());
        state.base = offset;
        state.top = offset;
        state.recent.clear();
        if reset {
            let mut position = Self::position(&state, false);
            position.channel = self.name.to_string();
            let frame = ServerFrame::ChannelReset(position);
            for client in &state.subscribers {
                client.push_frame(&frame);
            }
        }
        drop(state);
        self.ready.notify_waiters();
    }

    /// Encodes a publication the way every subscriber gets it.
    pub fn encode(&self, publication: &ChannelPublication) -> Frame {
        let data = RawValue::from_string(publication.data_json.clone())
            .unwrap_or_else(|_| RawValue::from_string("null".into()).expect("null is JSON"));
        let frame = ServerFrame::Publication(Publication {
            channel: publication.channel.clone(),
            event: publication.event.clone(),
            data,
            offset: publication.offset,
            epoch: publication.epoch.clone(),
            timestamp: publication.ts,
        });
        Frame::encode(&self.key, publication.offset, &frame)
    }

    /// Whether `publication` can go straight out: in the feed's epoch, and
    /// the next offset or an old one. Anything else is a gap (or a new
    /// epoch) to fill from history first.
    pub(super) fn follows(&self, publication: &ChannelPublication) -> bool {
        let state = self.state();
        state.epoch.as_deref() == Some(&publication.epoch) && publication.offset <= state.top + 1
    }

    /// Fans a new publication out; older or repeated offsets are ignored.
    pub(super) fn publish(&self, publication: &ChannelPublication) {
        let frame = self.encode(publication);
        let mut state = self.state();
        if frame.version <= state.top || state.epoch.as_deref() != Some(&publication.epoch) {
            return;
        }
        state.top = frame.version;
        state.recent.push_back(frame.clone());
        while state.recent.len() > self.window {
            if let Some(old) = state.recent.pop_front() {
                state.base = old.version;
            }
        }
        let epoch = state.epoch.clone().unwrap_or_default();
        let mut lagged = Vec::new();
        state.subscribers.retain(|client| {
            if client.push_board(&frame).is_ok() {
                return true;
            }
            let last = client
                .drop_board(&self.key)
                .map_or(frame.version - 1, |l| l - 1);
            lagged.push((client.id, (last, epoch.clone())));
            false
        });
        state.lagged.extend(lagged);
    }
}
