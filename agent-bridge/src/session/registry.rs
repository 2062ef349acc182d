use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard},
    time::{Duration, Instant},
};

use uuid::Uuid;

use super::Session;
use crate::{cluster::Cluster, store::Store};

/// Longest wait, on a session's first load, for the frames other bridges
/// stored on NATS.
const CATCH_UP: Duration = Duration::from_secs(3);

/// The sessions this bridge has in memory, loaded from PostgreSQL on first
/// use and dropped again after being idle (no socket, no run) for a while.
#[derive(Clone)]
pub struct Sessions {
    inner: Arc<Mutex<HashMap<String, Entry>>>,
    store: Store,
    default_board: String,
    replay_frames: usize,
    cluster: Option<Cluster>,
}

struct Entry {
    session: Arc<Session>,
    idle_since: Option<Instant>,
}

impl Sessions {
    /// An empty registry; sessions get `default_board` when they name none.
    pub fn new(store: Store, default_board: String, replay_frames: usize) -> Self {
        Self {
            inner: Arc::default(),
            store,
            default_board,
            replay_frames,
            cluster: None,
        }
    }

    /// Sessions shared with the other bridges through `cluster`.
    pub fn with_cluster(mut self, cluster: Option<Cluster>) -> Self {
        self.cluster = cluster;
        self
    }

    /// The other bridges, with NATS.
    pub fn cluster(&self) -> Option<&Cluster> {
        self.cluster.as_ref()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Entry>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The session `id` (created for `owner` when new), or a new session
    /// when `id` is `None`. With `enforce_owner`, a session another owner
    /// opened is refused. A `board` given for an existing session in memory
    /// is ignored until the bridge reloads it; sessions rarely change boards.
    pub async fn open(
        &self,
        id: Option<&str>,
        board: Option<&str>,
        owner: &str,
        enforce_owner: bool,
    ) -> Result<Arc<Session>, OpenError> {
        let id = match id {
            Some(id) => id.to_owned(),
            None => uuid::Uuid::now_v7().to_string(),
        };
        let known = self.lock().get(&id).map(|entry| Arc::clone(&entry.session));
        if let Some(session) = known {
            if enforce_owner && session.owner() != owner {
                return Err(OpenError::NotYours);
            }
            session.caught_up(CATCH_UP).await;
            return Ok(session);
        }
        let loaded = self
            .store
            .load_session(&id, board, &self.default_board, owner, enforce_owner)
            .await?
            .ok_or(OpenError::NotYours)?;
        let (ready_tx, ready_rx) = tokio::sync::watch::channel(false);
        let session = Arc::new(Session::loaded(
            loaded,
            self.replay_frames,
            self.store.clone(),
            self.cluster.clone().map(|cluster| (cluster, ready_rx)),
        ));
        // Two sockets may load the same session at once; the first one in wins.
        let (session, won) = {
            let mut map = self.lock();
            let entry = map.entry(id.clone()).or_insert(Entry {
                session: Arc::clone(&session),
                idle_since: None,
            });
            let won = Arc::ptr_eq(&entry.session, &session);
            (Arc::clone(&entry.session), won)
        };
        if won
            && let (Some(cluster), Some((origin, stop))) = (&self.cluster, session.follower_link())
        {
            tokio::spawn(crate::cluster::follow(
                cluster.clone(),
                Arc::downgrade(&session),
                id,
                origin,
                {
                    let session = Arc::downgrade(&session);
                    move |seen| {
                        if let Some(session) = session.upgrade() {
                            session.caught_up_at(seen);
                        }
                        let _ = ready_tx.send(true);
                    }
                },
                stop,
            ));
        }
        session.caught_up(CATCH_UP).await;
        Ok(session)
    }

    /// The session `id` if this bridge has it in memory.
    pub fn in_memory(&self, id: &str) -> Option<Arc<Session>> {
        self.lock().get(id).map(|e| Arc::clone(&e.session))
    }

    /// Forgets sessions nobody has used for `idle_for`. Sockets, runs and
    /// HTTP requests each hold the session, so only the registry holding it
    /// means idle. Its sequence number is in PostgreSQL; only the replay of
    /// its last run is lost.
    pub fn sweep(&self, idle_for: Duration) -> usize {
        let now = Instant::now();
        let mut map = self.lock();
        let before = map.len();
        map.retain(|_, entry| {
            if Arc::strong_count(&entry.session) > 1 {
                entry.idle_since = None;
                return true;
            }
            now.duration_since(*entry.idle_since.get_or_insert(now)) < idle_for
        });
        before - map.len()
    }

    /// The sessions in memory that wait for a run on another bridge, with it.
    pub fn waiting_for_remote_runs(&self) -> Vec<(Arc<Session>, Uuid)> {
        self.lock()
            .values()
            .filter_map(|entry| Some((Arc::clone(&entry.session), entry.session.remote_run()?)))
            .collect()
    }

    /// Sessions in memory.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no session is in memory.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }
}

/// Why a session could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("this session belongs to another user")]
    NotYours,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Whether `id` is acceptable as a client-chosen session id.
pub fn valid_session_id(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

#[cfg(test)]
mod tests {
    use sqlx::postgres::PgPoolOptions;

    use super::*;

    #[tokio::test]
    async fn sweeps_only_sessions_nobody_holds_once_idle_long_enough() {
        let pool = PgPoolOptions::new()
            .connect_lazy("postgres://unused@127.0.0.1/unused")
            .unwrap();
        let sessions = Sessions::new(Store::new(pool), "default".into(), 10);
        let held = Arc::new(Session::new("held".into(), "b".into(), 0, 10));
        for session in [
            Arc::clone(&held),
            Arc::new(Session::new("idle".into(), "b".into(), 0, 10)),
        ] {
            let entry = Entry {
                session,
                idle_since: None,
            };
            sessions.lock().insert(entry.session.id().to_owned(), entry);
        }
        assert_eq!(
            sessions.sweep(Duration::from_secs(60)),
            0,
            "idle, but not for long"
        );
        assert_eq!(sessions.sweep(Duration::ZERO), 1);
        assert_eq!(sessions.len(), 1);
        drop(held);
        assert_eq!(sessions.sweep(Duration::ZERO), 1);
        assert!(sessions.is_empty());
        assert!(valid_session_id("session-1731369600.0:a_b"));
        assert!(
            !valid_session_id("")
                && !valid_session_id("a b")
                && !valid_session_id(&"x".repeat(129))
        );
    }
}
