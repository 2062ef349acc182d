//! Channels watched by this process: one [`ChannelFeed`] and one upstream
//! `WatchChannel` (with NATS, one subscription: `nats`) per channel,
//! however many clients subscribe, closed when the last one leaves.
//! board-service holds the history (see its `channels` module); this side
//! fans out and resumes.

mod agents;
mod feed;
pub mod http;
mod nats;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use protocol::{
    channel_frames::ChannelPosition,
    v1::{WatchChannelRequest, channel_update::Update},
};
use tokio_util::sync::CancellationToken;

pub use agents::{Agent, spawn_kpis, upgrade as agents_upgrade};
use feed::Attach;
pub use feed::ChannelFeed;

use crate::{client::Client, error::Error, hub::BoardStream, metrics::Metrics, upstream::Upstream};

/// How long a subscribe waits for board-service to report the channel.
const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// Publications kept per channel in this process for resuming clients;
/// older ones are replayed from board-service's history.
const WINDOW: usize = 256;

/// All channel feeds of this process.
pub struct ChannelHub {
    feeds: Mutex<HashMap<Arc<str>, Arc<ChannelFeed>>>,
    upstream: Upstream,
    nats: Option<Arc<BoardStream>>,
    metrics: Arc<Metrics>,
    stop: CancellationToken,
}

impl ChannelHub {
    pub fn new(
        upstream: Upstream,
        nats: Option<Arc<BoardStream>>,
        metrics: Arc<Metrics>,
        stop: CancellationToken,
    ) -> Self {
        Self {
            feeds: Mutex::default(),
            upstream,
            nats,
            metrics,
            stop,
        }
    }

    fn feeds(&self) -> MutexGuard<'_, HashMap<Arc<str>, Arc<ChannelFeed>>> {
        self.feeds.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn upstream(&self) -> &Upstream {
        &self.upstream
    }

    /// Channels with a feed here and their subscriber counts, for `/stats`.
    pub fn stats(&self) -> Vec<(Arc<str>, usize)> {
        self.feeds()
            .values()
            .map(|f| (f.name.clone(), f.subscriber_count()))
            .collect()
    }

    fn feed(&self, channel: &str) -> Arc<ChannelFeed> {
        let mut feeds = self.feeds();
        if let Some(feed) = feeds.get(channel) {
            return feed.clone();
        }
        let feed = Arc::new(ChannelFeed::new(channel, WINDOW, self.stop.child_token()));
        feeds.insert(feed.name.clone(), feed.clone());
        match &self.nats {
            Some(nats) => tokio::spawn(nats::follow(
                nats.clone(),
                self.upstream.clone(),
                self.metrics.clone(),
                feed.clone(),
            )),
            None => tokio::spawn(watch(self.upstream.clone(), feed.clone())),
        };
        feed
    }

    /// Subscribes `client` to `channel`, fresh or after `since` in its
    /// epoch; `ack` is called once with the position, before any
    /// publication reaches the client.
    pub async fn subscribe(
        &self,
        client: &Arc<Client>,
        channel: &str,
        since: Option<(u64, &str)>,
        ack: &(dyn Fn(ChannelPosition) + Sync),
    ) -> Result<Arc<ChannelFeed>, Error> {
        for _ in 0..8 {
            let feed = self.feed(channel);
            if !feed.is_ready() {
                let ready = feed.ready.notified();
                if !feed.is_ready() {
                    tokio::time::timeout(READY_TIMEOUT, ready)
                        .await
                        .map_err(|_| Error::Timeout)?;
                }
            }
            match feed.attach(client, since, ack) {
                Attach::Done => return Ok(feed),
                Attach::NotReady => continue,
                Attach::Closed => {
                    self.forget(&feed);
                    continue;
                }
                Attach::NeedHistory => {
                    let (offset, epoch) = since.unwrap_or_default();
                    if self.replay(&feed, client, offset, epoch, ack).await? {
                        return Ok(feed);
                    }
                    // Not recoverable after all: start afresh.
                    if let Attach::Done = feed.attach(client, None, ack) {
                        return Ok(feed);
                    }
                }
            }
        }
        Err(Error::Timeout)
    }

    /// Replays what followed `since` from board-service's history, then
    /// attaches. False when the history no longer reaches back that far.
    async fn replay(
        &self,
        feed: &Arc<ChannelFeed>,
        client: &Arc<Client>,
        since: u64,
        epoch: &str,
        ack: &(dyn Fn(ChannelPosition) + Sync),
    ) -> Result<bool, Error> {
        for _ in 0..3 {
            let Some((frames, replayed)) = self.read_history(feed, since, epoch).await? else {
                return Ok(false);
            };
            if feed.attach_with_history(client, epoch, &frames, replayed, ack) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The publications after `since` that board-service still holds, and
    /// the offset its replay ended at; `None` when it cannot replay.
    async fn read_history(
        &self,
        feed: &ChannelFeed,
        since: u64,
        epoch: &str,
    ) -> Result<Option<(Vec<crate::frame::Frame>, u64)>, Error> {
        let request = WatchChannelRequest {
            channel: feed.name.to_string(),
            since_offset: Some(since),
            epoch: epoch.to_owned(),
        };
        let read = async {
            let mut stream = self
                .upstream
                .channels()
                .watch_channel(request)
                .await
                .map_err(Error::Upstream)?
                .into_inner();
            let mut frames = Vec::new();
            let mut head_seen = false;
            while let Some(update) = stream.message().await.map_err(Error::Upstream)? {
                match update.update {
                    Some(Update::Position(p)) if !head_seen => {
                        if !p.recovered {
                            return Ok(None);
                        }
                        head_seen = true;
                    }
                    Some(Update::Position(p)) => return Ok(Some((frames, p.offset))),
                    Some(Update::Publication(p)) => frames.push(feed.encode(&p)),
                    None => {}
                }
            }
            Ok(None)
        };
        tokio::time::timeout(READY_TIMEOUT, read)
            .await
            .map_err(|_| Error::Timeout)?
    }

    /// Takes `client` off `feed`, closing the feed when it was the last.
    pub fn unsubscribe(&self, feed: &Arc<ChannelFeed>, client_id: u64) {
        if feed.detach(client_id) && feed.close_if_idle() {
            self.forget(feed);
        }
    }

    fn forget(&self, feed: &Arc<ChannelFeed>) {
        let mut feeds = self.feeds();
        if feeds.get(&feed.name).is_some_and(|f| Arc::ptr_eq(f, feed)) {
            feeds.remove(&feed.name);
        }
    }
}

/// The feed's one upstream `WatchChannel`, resumed from the feed's own
/// position whenever it breaks (board-service restarts, network).
async fn watch(upstream: Upstream, feed: Arc<ChannelFeed>) {
    let mut failures = 0u32;
    loop {
        let since = feed.resume_point();
        let request = WatchChannelRequest {
            channel: feed.name.to_string(),
            since_offset: since.as_ref().map(|(offset, _)| *offset),
            epoch: since.map(|(_, e)| e.to_string()).unwrap_or_default(),
        };
        let mut api = upstream.channels();
        let opened = tokio::select! {
            opened = api.watch_channel(request) => opened,
            () = feed.stop.cancelled() => return,
        };
        match opened {
            Ok(stream) => {
                let mut stream = stream.into_inner();
                let mut head_seen = false;
                loop {
                    let next = tokio::select! {
                        next = stream.message() => next,
                        () = feed.stop.cancelled() => return,
                    };
                    match next {
                        Ok(Some(update)) => match update.update {
                            Some(Update::Position(p)) if !head_seen => {
                                head_seen = true;
                                failures = 0;
                                feed.set_position(&p.epoch, p.offset, p.recovered);
                            }
                            Some(Update::Publication(p)) => feed.publish(&p),
                            Some(Update::Position(_)) | None => {}
                        },
                        Ok(None) => break,
                        Err(status) => {
                            tracing::warn!(channel = %feed.name, %status, "channel watch failed; resuming");
                            break;
                        }
                    }
                }
            }
            Err(status) => {
                tracing::warn!(channel = %feed.name, %status, "cannot watch channel; retrying");
            }
        }
        failures += 1;
        let backoff = Duration::from_millis(100 * u64::from(failures.min(20)));
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            () = feed.stop.cancelled() => return,
        }
    }
}
