//! One Socket.IO connection's state beside its session: the callbacks
//! waiting for their command's answer, the rooms it joined (a board, or a
//! project's boards) and the versions it resumes from.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use protocol::socketio::AckPayload;
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
    /// Rooms joined as a project, by the name the client gave.
    projects: Mutex<HashMap<String, ProjectRoom>>,
    /// Board (id or room) → last `boardVersion` the client saw, from `auth`.
    pub resume: HashMap<String, u64>,
    pub rate: Mutex<RateLimit>,
    /// The connect's token, for the project look-ups made as the user.
    pub token: Option<Arc<str>>,
    /// Serialises the project rooms' refreshes, so they apply in order.
    pub refreshing: tokio::sync::Mutex<()>,
}

/// A room that is a project: its id, and the boards joined under it in
/// the project's order (oldest board first).
#[derive(Debug, Clone, Default)]
pub(super) struct ProjectRoom {
    pub project_id: String,
    pub boards: Vec<String>,
}

/// A request the session will answer.
#[derive(Default)]
pub(super) struct Waiting {
    /// The client's callback, if it gave one.
    pub ack: Option<AckSender>,
    /// For a join: the room the client named, which its events carry.
    pub room: Option<String>,
    /// Part of a project join, whose one callback answers all its boards.
    pub group: Option<Arc<Group>>,
    /// A join the gateway made itself: a refusal is not announced.
    pub quiet: bool,
}

/// A project join: one board subscription per board, one answer.
pub(super) struct Group {
    project_id: String,
    state: Mutex<GroupState>,
}

struct GroupState {
    ack: Option<AckSender>,
    left: usize,
    joined: Vec<String>,
    refusal: Option<AckPayload>,
}

impl Group {
    pub fn new(project_id: String, ack: AckSender, boards: usize) -> Arc<Self> {
        Arc::new(Self {
            project_id,
            state: Mutex::new(GroupState {
                ack: Some(ack),
                left: boards,
                joined: Vec::new(),
                refusal: None,
            }),
        })
    }

    /// One board's answer: its id when joined, else the refusal. The last
    /// answer sends the callback `{ok, projectId, boardIds}`, or the first
    /// refusal when no board could be joined.
    pub fn answered(&self, result: Result<String, AckPayload>) {
        let mut state = lock(&self.state);
        match result {
            Ok(board) => state.joined.push(board),
            Err(refusal) => {
                state.refusal.get_or_insert(refusal);
            }
        }
        state.left = state.left.saturating_sub(1);
        if state.left > 0 {
            return;
        }
        let Some(ack) = state.ack.take() else {
            return;
        };
        let payload = match state.refusal.take() {
            Some(refusal) if state.joined.is_empty() => refusal,
            _ => AckPayload::joined_project(&self.project_id, std::mem::take(&mut state.joined)),
        };
        let _ = ack.send(&payload);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl Conn {
    pub fn new(
        session: Session,
        resume: HashMap<String, u64>,
        rate: RateLimit,
        token: Option<Arc<str>>,
    ) -> Self {
        Self {
            client: session.client.clone(),
            session: tokio::sync::Mutex::new(session),
            pending: Mutex::default(),
            rooms: Mutex::default(),
            projects: Mutex::default(),
            resume,
            rate: Mutex::new(rate),
            token,
            refreshing: tokio::sync::Mutex::new(()),
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

impl Conn {
    /// Whether the client joined `room` as a board (by its id or slug).
    pub fn joined_as_board(&self, room: &str) -> bool {
        lock(&self.rooms).values().any(|r| r == room) && !lock(&self.projects).contains_key(room)
    }

    pub fn project(&self, room: &str) -> Option<ProjectRoom> {
        lock(&self.projects).get(room).cloned()
    }

    pub fn set_project(&self, room: &str, project: ProjectRoom) {
        lock(&self.projects).insert(room.to_owned(), project);
    }

    pub fn remove_project(&self, room: &str) -> Option<ProjectRoom> {
        let project = lock(&self.projects).remove(room)?;
        let mut rooms = lock(&self.rooms);
        for board in &project.boards {
            if rooms.get(board).is_some_and(|r| r == room) {
                rooms.remove(board);
            }
        }
        Some(project)
    }

    /// The rooms joined as project `project_id`.
    pub fn rooms_of_project(&self, project_id: &str) -> Vec<String> {
        lock(&self.projects)
            .iter()
            .filter(|(_, p)| p.project_id == project_id)
            .map(|(room, _)| room.clone())
            .collect()
    }
}
