//! Live channel publications for watchers on this replica: one reader per
//! watched channel, woken by the listener's pokes, reading new rows and
//! broadcasting them; and the `WatchChannel` stream built on it.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use protocol::v1::{ChannelPosition, ChannelPublication, ChannelUpdate, channel_update::Update};
use tokio::sync::{Notify, broadcast, broadcast::error::RecvError, mpsc};
use tokio_util::sync::CancellationToken;
use tonic::Status;

use super::store::{ChannelStore, Position};

/// Publications a slow watcher may fall behind by before it re-reads.
const FEED_CAPACITY: usize = 1024;
/// Rows read per query.
const READ_BATCH: i64 = 500;
/// Re-read this often without pokes (a notification lost while the
/// listener reconnected).
const RECHECK_EVERY: Duration = Duration::from_secs(2);
/// How often expired publications are deleted.
const SWEEP_EVERY: Duration = Duration::from_secs(10);

type Outbox = mpsc::Sender<Result<ChannelUpdate, Status>>;

struct Reader {
    publications: broadcast::Sender<Arc<ChannelPublication>>,
    poke: Arc<Notify>,
}

/// The channel readers of this process.
#[derive(Clone)]
pub struct ChannelHub {
    store: Arc<ChannelStore>,
    readers: Arc<Mutex<HashMap<String, Reader>>>,
    shutdown: CancellationToken,
}

impl ChannelHub {
    pub fn new(store: ChannelStore, shutdown: CancellationToken) -> Self {
        Self {
            store: Arc::new(store),
            readers: Arc::default(),
            shutdown,
        }
    }

    pub fn store(&self) -> &ChannelStore {
        &self.store
    }

    fn readers(&self) -> std::sync::MutexGuard<'_, HashMap<String, Reader>> {
        self.readers.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A publication was committed on `channel` (any replica).
    pub fn poke(&self, channel: &str) {
        if let Some(reader) = self.readers().get(channel) {
            reader.poke.notify_one();
        }
    }

    pub fn poke_all(&self) {
        for reader in self.readers().values() {
            reader.poke.notify_one();
        }
    }

    /// Deletes expired publications now and then, until shutdown.
    pub fn spawn_sweeper(&self) -> tokio::task::JoinHandle<()> {
        let hub = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = tokio::time::sleep(SWEEP_EVERY) => {}
                    () = hub.shutdown.cancelled() => return,
                }
                if let Err(err) = hub.store.sweep().await {
                    tracing::warn!(error = %err, "cannot sweep expired channel publications");
                }
            }
        })
    }

    /// Live publications of `channel` after `from` (an offset known to be
    /// committed), starting its reader if it has none.
    fn subscribe(
        &self,
        channel: &str,
        position: &Position,
    ) -> broadcast::Receiver<Arc<ChannelPublication>> {
        let mut readers = self.readers();
        if let Some(reader) = readers.get(channel) {
            return reader.publications.subscribe();
        }
        let (publications, receiver) = broadcast::channel(FEED_CAPACITY);
        let poke = Arc::new(Notify::new());
        readers.insert(
            channel.to_owned(),
            Reader {
                publications: publications.clone(),
                poke: poke.clone(),
            },
        );
        let hub = self.clone();
        let (channel, position) = (channel.to_owned(), position.clone());
        tokio::spawn(async move { hub.read_loop(channel, position, publications, poke).await });
        receiver
    }

    async fn read_loop(
        self,
        channel: String,
        position: Position,
        publications: broadcast::Sender<Arc<ChannelPublication>>,
        poke: Arc<Notify>,
    ) {
        let mut published = position.top;
        let mut failures = 0u32;
        loop {
            match self
                .store
                .read_after(&channel, &position.epoch, published, READ_BATCH)
                .await
            {
                Ok(batch) => {
                    failures = 0;
                    let full = batch.len() as i64 == READ_BATCH;
                    for publication in batch {
                        published = publication.offset;
                        let _ = publications.send(Arc::new(publication));
                    }
                    if full {
                        continue;
                    }
                }
                Err(err) => {
                    failures += 1;
                    tracing::warn!(%channel, error = %err, failures, "cannot read channel; retrying");
                    let backoff = Duration::from_millis(100 * u64::from(failures.min(20)));
                    tokio::select! {
                        () = tokio::time::sleep(backoff) => continue,
                        () = self.shutdown.cancelled() => break,
                    }
                }
            }
            if self.retire_if_unwatched(&channel) {
                return;
            }
            tokio::select! {
                () = poke.notified() => {}
                () = tokio::time::sleep(RECHECK_EVERY) => {
                    // An ephemeral channel emptied by a PostgreSQL crash
                    // restarts with a new epoch: end every watch of the old
                    // one (dropping the sender closes them), so watchers
                    // come back and are told `recovered: false`.
                    if let Ok(now) = self.store.position(&channel).await
                        && now.epoch != position.epoch
                    {
                        break;
                    }
                }
                () = self.shutdown.cancelled() => break,
            }
        }
        self.readers().remove(&channel);
    }

    fn retire_if_unwatched(&self, channel: &str) -> bool {
        let mut readers = self.readers();
        let unwatched = readers
            .get(channel)
            .is_some_and(|r| r.publications.receiver_count() == 0);
        if unwatched {
            readers.remove(channel);
        }
        unwatched
    }

    /// One `WatchChannel` stream: the position, what followed `since` when
    /// it can be replayed, then live publications in offset order.
    pub async fn watch(self, channel: String, since: Option<(u64, String)>, out: Outbox) {
        let position = match self.store.position(&channel).await {
            Ok(position) => position,
            Err(err) => {
                let _ = out.send(Err(err.into())).await;
                return;
            }
        };
        // Subscribe before reading: anything committed from here on is in
        // the read below or arrives on `live`.
        let mut live = self.subscribe(&channel, &position);
        let recovered = since
            .as_ref()
            .is_some_and(|(offset, epoch)| position.can_resume(*offset, epoch));
        let mut last = match since {
            Some((offset, _)) if recovered => offset,
            _ => position.top,
        };
        let head = ChannelPosition {
            epoch: position.epoch.clone(),
            offset: position.top,
            recovered,
        };
        if out.send(Ok(update(Update::Position(head)))).await.is_err() {
            return;
        }
        if !self
            .catch_up(&channel, &position.epoch, &mut last, &out)
            .await
        {
            return;
        }
        let replayed = ChannelPosition {
            epoch: position.epoch.clone(),
            offset: last,
            recovered,
        };
        if out
            .send(Ok(update(Update::Position(replayed))))
            .await
            .is_err()
        {
            return;
        }
        loop {
            let received = tokio::select! {
                received = live.recv() => received,
                () = out.closed() => return,
                () = self.shutdown.cancelled() => return,
            };
            match received {
                Ok(p) if p.offset <= last => {}
                Ok(p) if p.offset == last + 1 => {
                    last = p.offset;
                    if out
                        .send(Ok(update(Update::Publication((*p).clone()))))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
                // A skip (a TTL'd publication, or the reader started after
                // our read) or a lag: the table has the truth.
                Ok(_) | Err(RecvError::Lagged(_)) => {
                    if !self
                        .catch_up(&channel, &position.epoch, &mut last, &out)
                        .await
                    {
                        return;
                    }
                }
                Err(RecvError::Closed) => return,
            }
        }
    }

    /// Sends every stored publication after `last`; false when the watch ended.
    async fn catch_up(&self, channel: &str, epoch: &str, last: &mut u64, out: &Outbox) -> bool {
        loop {
            let batch = match self
                .store
                .read_after(channel, epoch, *last, READ_BATCH)
                .await
            {
                Ok(batch) => batch,
                Err(err) => {
                    let _ = out.send(Err(err.into())).await;
                    return false;
                }
            };
            let done = (batch.len() as i64) < READ_BATCH;
            for publication in batch {
                *last = publication.offset;
                if out
                    .send(Ok(update(Update::Publication(publication))))
                    .await
                    .is_err()
                {
                    return false;
                }
            }
            if done {
                return true;
            }
        }
    }
}

fn update(update: Update) -> ChannelUpdate {
    ChannelUpdate {
        update: Some(update),
    }
}
