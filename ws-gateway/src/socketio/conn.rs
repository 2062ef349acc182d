//! One Socket.IO connection's state beside its session: the callbacks
//! waiting for their command's answer, the rooms it joined and the
//! versions it resumes from.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use socketioxide::extract::AckSender;

use crate::{client::Client, session::Session, socket::RateLimit};

pub(super) struct Conn {
    pub client: Arc<Client>,
    /// Commands are spawned by the session; joins wait for the snapshot.
    pub session: tokio::sync::Mutex<Session>,
    /// What waits for a command's or join's answer, by its id; answered
    /// from the session's `ack` / `error` frames.
    pending: Mutex<HashMap<String, Waiting>>,
    /// The room (`projectId`) each board was joined as, by board id.
    rooms: Mutex<HashMap<String, String>>,
    /// Board (id or room) → last `boardVersion` the client saw, from `auth`.
    pub resume: HashMap<String, u64>,
    pub rate: Mutex<RateLimit>,
}

/// A request the session will answer.
pub(super) struct Waiting {
    /// The client's callback, if it gave one.
    pub ack: Option<AckSender>,
    /// For a join: the room the client named, which its events carry.
    pub room: Option<String>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl Conn {
    pub fn new(session: Session, resume: HashMap<String, u64>, rate: RateLimit) -> Self {
        Self {
            client: session.client.clone(),
            session: tokio::sync::Mutex::new(session),
            pending: Mutex::default(),
            rooms: Mutex::default(),
            resume,
            rate: Mutex::new(rate),
        }
    }

    pub fn wait_for(&self, id: &str, waiting: Waiting) {
        lock(&self.pending).insert(id.to_owned(), waiting);
    }

    /// Takes what waits for `id`.
    pub fn answered(&self, id: &str) -> Option<Waiting> {
        lock(&self.pending).remove(id)
    }

    pub fn join(&self, board_id: &str, room: &str) {
        lock(&self.rooms).insert(board_id.to_owned(), room.to_owned());
    }

    /// The room a board's events are sent as: as joined, else its id.
    pub fn room_of(&self, board_id: &str) -> String {
        lock(&self.rooms)
            .get(board_id)
            .cloned()
            .unwrap_or_else(|| board_id.to_owned())
    }
}
