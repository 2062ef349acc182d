//! One aggregate per watched scope on this replica, re-read from
//! PostgreSQL when poked (coalesced) and published through a `watch`
//! channel: each stream diffs what it last sent against the newest value.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex},
    time::Duration,
};

use protocol::v1::PresenceEntry;
use sqlx::PgPool;
use tokio::{
    sync::{Notify, watch},
    time::Instant,
};
use tokio_util::sync::CancellationToken;

use super::store;

/// A scope's members by key.
pub type Members = Arc<BTreeMap<String, PresenceEntry>>;

/// Re-reads of one scope are at least this far apart: a burst of joins is
/// one read and one diff.
const COALESCE: Duration = Duration::from_millis(200);
/// Re-read this often even without notifications (lost while the listener
/// reconnects, or a lease that ran out before the sweeper saw it).
const RECHECK_EVERY: Duration = Duration::from_secs(2);

struct ScopeFeed {
    members: watch::Sender<Option<Members>>,
    poke: Arc<Notify>,
}

/// The presence feeds of this process, keyed by scope.
#[derive(Clone)]
pub struct PresenceHub {
    pool: PgPool,
    feeds: Arc<Mutex<HashMap<String, ScopeFeed>>>,
    shutdown: CancellationToken,
}

impl PresenceHub {
    pub fn new(pool: PgPool, shutdown: CancellationToken) -> Self {
        Self {
            pool,
            feeds: Arc::default(),
            shutdown,
        }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub fn shutdown_token(&self) -> &CancellationToken {
        &self.shutdown
    }

    /// The members of `scope`, `None` until the first read; starts the
    /// scope's feed if it has none.
    pub fn subscribe(&self, scope: &str) -> watch::Receiver<Option<Members>> {
        let mut feeds = self.feeds.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(feed) = feeds.get(scope) {
            return feed.members.subscribe();
        }
        let (members, receiver) = watch::channel(None);
        let poke = Arc::new(Notify::new());
        feeds.insert(
            scope.to_owned(),
            ScopeFeed {
                members: members.clone(),
                poke: poke.clone(),
            },
        );
        tokio::spawn(self.clone().pump(scope.to_owned(), members, poke));
        receiver
    }

    /// `scope` changed: wake its feed, if it has one.
    pub fn poke(&self, scope: &str) {
        let feeds = self.feeds.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(feed) = feeds.get(scope) {
            feed.poke.notify_one();
        }
    }

    pub fn poke_all(&self) {
        let feeds = self.feeds.lock().unwrap_or_else(|e| e.into_inner());
        for feed in feeds.values() {
            feed.poke.notify_one();
        }
    }

    async fn pump(self, scope: String, members: watch::Sender<Option<Members>>, poke: Arc<Notify>) {
        let mut failures = 0u32;
        loop {
            let read_at = Instant::now();
            match store::aggregate(&self.pool, &scope).await {
                Ok(now) => {
                    failures = 0;
                    members.send_if_modified(|held| {
                        if held.as_deref() == Some(&now) {
                            return false;
                        }
                        *held = Some(Arc::new(now));
                        true
                    });
                }
                Err(err) => {
                    failures += 1;
                    tracing::warn!(%scope, error = %err, failures, "cannot read presence; retrying");
                }
            }
            if self.retire_if_unwatched(&scope, &members) {
                return;
            }
            let wait = if failures > 0 {
                Duration::from_millis(100 * u64::from(failures.min(20)))
            } else {
                RECHECK_EVERY
            };
            tokio::select! {
                () = poke.notified() => {}
                () = tokio::time::sleep(wait) => {}
                () = members.closed() => {}
                () = self.shutdown.cancelled() => break,
            }
            tokio::select! {
                () = tokio::time::sleep_until(read_at + COALESCE) => {}
                () = self.shutdown.cancelled() => break,
            }
        }
        self.feeds
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&scope);
    }

    /// Removes the feed when nobody watches, under the map lock, so a
    /// concurrent `subscribe` either finds it alive or starts a new one.
    fn retire_if_unwatched(&self, scope: &str, members: &watch::Sender<Option<Members>>) -> bool {
        let mut feeds = self.feeds.lock().unwrap_or_else(|e| e.into_inner());
        let unwatched = members.receiver_count() == 0;
        if unwatched {
            feeds.remove(scope);
        }
        unwatched
    }
}
