//! Boards watched by this process: one [`Feed`] and one upstream
//! `WatchBoard` per board, however many clients watch it, closed when the
//! last one leaves.

mod feed;
mod jetstream;
mod replay;
mod watch;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard},
};

use protocol::v1::BoardSnapshot;
use tokio_util::sync::CancellationToken;

use feed::Attach;
pub use feed::Feed;
pub use jetstream::BoardStream;

use crate::{client::Client, metrics::Metrics, upstream::Upstream};

struct Boards {
    /// By board id.
    feeds: HashMap<Arc<str>, Arc<Feed>>,
    /// Board id or slug → board id, for boards with a feed.
    aliases: HashMap<String, Arc<str>>,
}

/// All feeds of this process.
pub struct Hub {
    boards: Mutex<Boards>,
    upstream: Upstream,
    /// The board stream on JetStream, with `NATS_URL`.
    nats: Option<Arc<BoardStream>>,
    metrics: Arc<Metrics>,
    window: usize,
    stop: CancellationToken,
}

impl Hub {
    pub fn new(
        upstream: Upstream,
        nats: Option<Arc<BoardStream>>,
        metrics: Arc<Metrics>,
        window: usize,
        stop: CancellationToken,
    ) -> Self {
        Self {
            boards: Mutex::new(Boards {
                feeds: HashMap::new(),
                aliases: HashMap::new(),
            }),
            upstream,
            nats,
            metrics,
            window,
            stop,
        }
    }

    fn boards(&self) -> MutexGuard<'_, Boards> {
        self.boards.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The board stream's NATS connection, shared with channels.
    pub fn nats(&self) -> Option<&Arc<BoardStream>> {
        self.nats.as_ref()
    }

    pub fn upstream(&self) -> &Upstream {
        &self.upstream
    }

    /// The feed of a board named by id or slug, if this process watches it.
    pub fn find(&self, board_ref: &str) -> Option<Arc<Feed>> {
        let boards = self.boards();
        let id = boards.aliases.get(board_ref)?;
        boards.feeds.get(id).cloned()
    }

    /// Every feed with its subscriber count, for `/stats`.
    pub fn feeds(&self) -> Vec<Arc<Feed>> {
        self.boards().feeds.values().cloned().collect()
    }

    /// Subscribes `client` to the board whose snapshot is `snapshot`
    /// (fetched by the caller to resolve the name), starting its feed from
    /// that snapshot if this process has none yet.
    pub fn subscribe(
        self: &Arc<Self>,
        client: &Arc<Client>,
        snapshot: BoardSnapshot,
        since: Option<u64>,
    ) -> Arc<Feed> {
        let board = snapshot.board.clone().unwrap_or_default();
        loop {
            let mut boards = self.boards();
            let feed = match boards.feeds.get(board.id.as_str()) {
                Some(feed) => feed.clone(),
                None => {
                    let feed = Arc::new(Feed::new(
                        snapshot.clone(),
                        self.window,
                        self.metrics.clone(),
                        self.stop.child_token(),
                        self.upstream.clone(),
                    ));
                    boards.feeds.insert(feed.board_id.clone(), feed.clone());
                    boards
                        .aliases
                        .insert(board.id.clone(), feed.board_id.clone());
                    boards
                        .aliases
                        .insert(board.slug.clone(), feed.board_id.clone());
                    watch::spawn(
                        self.upstream.clone(),
                        self.nats.clone(),
                        self.metrics.clone(),
                        feed.clone(),
                    );
                    self.metrics.feed_opened();
                    feed
                }
            };
            drop(boards);
            if let Attach::Done = feed.attach(client, since) {
                return feed;
            }
            // The feed closed between the lookup and the attach: its entry is
            // gone or going; yield so its remover can finish, then retry.
            std::thread::yield_now();
        }
    }

    /// Subscribes `client` to a board this process already watches, if it
    /// does: no snapshot read needed.
    pub fn subscribe_existing(
        &self,
        client: &Arc<Client>,
        board_ref: &str,
        since: Option<u64>,
    ) -> Option<Arc<Feed>> {
        let feed = self.find(board_ref)?;
        match feed.attach(client, since) {
            Attach::Done => Some(feed),
            Attach::Closed => None,
        }
    }

    /// Takes `client` off `feed`, closing the feed when it was the last.
    pub fn unsubscribe(&self, feed: &Feed, client_id: u64) {
        if !feed.detach(client_id) {
            return;
        }
        let mut boards = self.boards();
        if feed.close_if_idle() && boards.feeds.remove(&feed.board_id).is_some() {
            boards.aliases.retain(|_, id| *id != feed.board_id);
            self.metrics.feed_closed();
        }
    }
}
