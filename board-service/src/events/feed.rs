//! One broadcast feed per watched board, filled from the event log.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use protocol::v1::BoardEvent;
use sqlx::PgPool;
use tokio::sync::{Notify, broadcast};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::store::log;

/// Events a slow watcher may fall behind by before it re-reads from the log.
const FEED_CAPACITY: usize = 1024;
/// Rows read from the log per query.
const READ_BATCH: i64 = 500;
/// Re-check the log this often even without notifications (a safety net for
/// notifications lost while the listener reconnects).
const RECHECK_EVERY: Duration = Duration::from_secs(2);

struct BoardFeed {
    events: broadcast::Sender<Arc<BoardEvent>>,
    poke: Arc<Notify>,
    /// The newest version the feed has broadcast.
    published: Arc<AtomicU64>,
}

/// The live feeds of this process, keyed by board id.
#[derive(Clone)]
pub struct EventHub {
    pool: PgPool,
    feeds: Arc<Mutex<HashMap<Uuid, BoardFeed>>>,
    shutdown: CancellationToken,
}

impl EventHub {
    pub fn new(pool: PgPool, shutdown: CancellationToken) -> Self {
        Self {
            pool,
            feeds: Arc::default(),
            shutdown,
        }
    }

    pub fn shutdown_token(&self) -> &CancellationToken {
        &self.shutdown
    }

    /// Live events of `board_id` from now on, starting the board's feed if it
    /// has none. `from_version` is the board version the caller knows to be
    /// committed; the feed publishes what comes after it.
    pub fn subscribe(
        &self,
        board_id: Uuid,
        from_version: u64,
    ) -> broadcast::Receiver<Arc<BoardEvent>> {
        let mut feeds = self.feeds.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(feed) = feeds.get(&board_id) {
            return feed.events.subscribe();
        }
        let (events, receiver) = broadcast::channel(FEED_CAPACITY);
        let poke = Arc::new(Notify::new());
        let published = Arc::new(AtomicU64::new(from_version));
        feeds.insert(
            board_id,
            BoardFeed {
                events: events.clone(),
                poke: poke.clone(),
                published: published.clone(),
            },
        );
        tokio::spawn(self.clone().pump(board_id, published, events, poke));
        receiver
    }

    /// A commit happened on `board_id`: wake its feed, if it has one.
    pub fn poke(&self, board_id: Uuid) {
        let feeds = self.feeds.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(feed) = feeds.get(&board_id) {
            feed.poke.notify_one();
        }
    }

    /// `board_id` committed `version`: wake its feed unless it has already
    /// broadcast that far (a commit is announced both in-process and by
    /// notification, and the second must not cost a read).
    pub fn poke_past(&self, board_id: Uuid, version: u64) {
        let feeds = self.feeds.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(feed) = feeds.get(&board_id)
            && feed.published.load(Ordering::Acquire) < version
        {
            feed.poke.notify_one();
        }
    }

    /// Wake every feed (after the listener lost its connection).
    pub fn poke_all(&self) {
        let feeds = self.feeds.lock().unwrap_or_else(|e| e.into_inner());
        for feed in feeds.values() {
            feed.poke.notify_one();
        }
    }

    /// Number of boards with live watchers on this process.
    pub fn watched_boards(&self) -> usize {
        self.feeds.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Reads new events from the log and broadcasts them until the board has
    /// no watchers left.
    async fn pump(
        self,
        board_id: Uuid,
        published_at: Arc<AtomicU64>,
        events: broadcast::Sender<Arc<BoardEvent>>,
        poke: Arc<Notify>,
    ) {
        let mut published = published_at.load(Ordering::Acquire);
        let mut failures = 0u32;
        loop {
            match log::read_after(&self.pool, board_id, published, READ_BATCH).await {
                Ok(batch) => {
                    failures = 0;
                    let full = batch.len() as i64 == READ_BATCH;
                    for event in batch {
                        published = event.version;
                        // No receivers is fine: the retire check below handles it.
                        let _ = events.send(Arc::new(event));
                    }
                    published_at.store(published, Ordering::Release);
                    if full {
                        continue;
                    }
                }
                Err(err) => {
                    failures += 1;
                    tracing::warn!(%board_id, error = %err, failures, "cannot read board events; retrying");
                    let backoff = Duration::from_millis(100 * u64::from(failures.min(20)));
                    tokio::select! {
                        () = tokio::time::sleep(backoff) => continue,
                        () = self.shutdown.cancelled() => break,
                    }
                }
            }
            if self.retire_if_unwatched(board_id) {
                return;
            }
            tokio::select! {
                () = poke.notified() => {}
                () = tokio::time::sleep(RECHECK_EVERY) => {}
                () = self.shutdown.cancelled() => break,
            }
        }
        self.feeds
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&board_id);
    }

    /// Removes the feed when nobody listens. Done under the map lock, so a
    /// concurrent `subscribe` either finds this feed alive or starts a new one.
    fn retire_if_unwatched(&self, board_id: Uuid) -> bool {
        let mut feeds = self.feeds.lock().unwrap_or_else(|e| e.into_inner());
        let unwatched = feeds
            .get(&board_id)
            .is_some_and(|f| f.events.receiver_count() == 0);
        if unwatched {
            feeds.remove(&board_id);
        }
        unwatched
    }
}

impl EventHub {
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}
