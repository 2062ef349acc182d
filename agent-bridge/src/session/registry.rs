use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use super::Session;
use crate::store::Store;

/// The sessions this bridge has in memory, loaded from PostgreSQL on first use.
#[derive(Clone)]
pub struct Sessions {
    inner: Arc<Mutex<HashMap<String, Arc<Session>>>>,
    store: Store,
    default_board: String,
    replay_frames: usize,
}

impl Sessions {
    pub fn new(store: Store, default_board: String, replay_frames: usize) -> Self {
        Self {
            inner: Arc::default(),
            store,
            default_board,
            replay_frames,
        }
    }

    /// The session `id` (created when new), or a new session when `id` is
    /// `None`. A `board` given for an existing session in memory is ignored
    /// until the bridge reloads it; sessions rarely change boards.
    pub async fn open(&self, id: Option<&str>, board: Option<&str>) -> sqlx::Result<Arc<Session>> {
        let id = match id {
            Some(id) => id.to_owned(),
            None => uuid::Uuid::now_v7().to_string(),
        };
        if let Some(session) = self.cached(&id) {
            return Ok(session);
        }
        let row = self
            .store
            .ensure_session(&id, board, &self.default_board)
            .await?;
        let session = Arc::new(Session::new(
            row.id,
            row.board_id,
            row.last_seq,
            self.replay_frames,
        ));
        let mut map = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        // Two sockets may load the same session at once; the first one in wins.
        Ok(Arc::clone(map.entry(id).or_insert(session)))
    }

    fn cached(&self, id: &str) -> Option<Arc<Session>> {
        let map = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        map.get(id).cloned()
    }
}

/// Whether `id` is acceptable as a client-chosen session id.
pub fn valid_session_id(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}
