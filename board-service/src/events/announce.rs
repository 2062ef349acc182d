//! Tells every replica what committed, after the commit: board versions
//! and channel publications.
//!
//! A transaction that has issued `NOTIFY` takes a database-wide lock at
//! commit and keeps it until its commit record is flushed, so writers that
//! notify commit one at a time and lose group commit: with fsync on that
//! cost board writes 59–63 % (`cargo bench -p board-service --bench
//! notify_lock`). Writers therefore commit without `NOTIFY`. What they
//! committed comes here, and one task per process sends what has gathered
//! as one `pg_notify` batch, in a transaction of its own with
//! `synchronous_commit` off, so the lock is held for an instant and never
//! across a flush.
//!
//! The committing process pokes its own feeds at once, and its listener
//! skips the notifications its own announcer sent. A notification is only
//! a hint, as it always was: the log is the truth. A batch lost to a crash
//! between a commit and its send delays watchers on other replicas until
//! their feed's periodic re-check, and loses nothing.

use std::{
    collections::{HashMap, HashSet},
    sync::{
        Arc, Mutex, OnceLock, Weak,
        atomic::{AtomicU32, Ordering},
    },
    time::Duration,
};

use sqlx::{Connection, PgConnection, PgPool};
use tokio::sync::Notify;
use uuid::Uuid;

use super::EventHub;
use crate::channels::ChannelHub;

/// How often the sending task, idle, checks whether its store still exists.
const IDLE_CHECK: Duration = Duration::from_secs(1);
/// The most notifications in one statement; more wait for the next one.
const MAX_BATCH: usize = 4096;
/// A send (with its connect) that takes longer is abandoned and retried on
/// a new connection.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// What committed and waits for its notification. Cheap to clone.
#[derive(Clone)]
pub struct Announcer {
    inner: Arc<Inner>,
}

/// What committed and is not announced yet; also one batch of it.
#[derive(Default)]
struct Pending {
    /// Each board's newest committed version.
    boards: HashMap<Uuid, u64>,
    /// Channels with new publications.
    channels: HashSet<String>,
}

impl Pending {
    fn is_empty(&self) -> bool {
        self.boards.is_empty() && self.channels.is_empty()
    }

    fn add_board(&mut self, board_id: Uuid, version: u64) {
        let at = self.boards.entry(board_id).or_default();
        *at = (*at).max(version);
    }

    /// Up to [`MAX_BATCH`] of what is pending, taken out; all of it when it
    /// fits, which is the usual case.
    fn take_batch(&mut self) -> Pending {
        if self.boards.len() + self.channels.len() <= MAX_BATCH {
            return std::mem::take(self);
        }
        let mut batch = Pending::default();
        let boards: Vec<Uuid> = self.boards.keys().take(MAX_BATCH).copied().collect();
        for id in boards {
            if let Some(version) = self.boards.remove(&id) {
                batch.boards.insert(id, version);
            }
        }
        let room = MAX_BATCH - batch.boards.len();
        let channels: Vec<String> = self.channels.iter().take(room).cloned().collect();
        for channel in channels {
            self.channels.remove(&channel);
            batch.channels.insert(channel);
        }
        batch
    }

    /// Puts a batch that could not be sent back.
    fn restore(&mut self, batch: Pending) {
        for (board_id, version) in batch.boards {
            self.add_board(board_id, version);
        }
        self.channels.extend(batch.channels);
    }

    /// The batch as (NOTIFY channel, payload) columns.
    fn notifications(&self) -> (Vec<&'static str>, Vec<String>) {
        self.boards
            .iter()
            .map(|(id, version)| (crate::store::log::NOTIFY_CHANNEL, format!("{id}:{version}")))
            .chain(
                self.channels
                    .iter()
                    .map(|channel| (crate::channels::NOTIFY_CHANNEL, channel.clone())),
            )
            .unzip()
    }
}

struct Inner {
    pool: PgPool,
    pending: Mutex<Pending>,
    wake: Notify,
    /// The sending task; started again if the runtime it ran on has gone.
    sender: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// The backend pid of the sending connection (0 before it connects).
    sender_pid: AtomicU32,
    /// This process's feeds, poked at once instead of through PostgreSQL.
    boards: OnceLock<EventHub>,
    channels: OnceLock<ChannelHub>,
}

impl Inner {
    fn pending(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Announcer {
    pub fn new(pool: PgPool) -> Self {
        Self {
            inner: Arc::new(Inner {
                pool,
                pending: Mutex::default(),
                wake: Notify::new(),
                sender: Mutex::default(),
                sender_pid: AtomicU32::new(0),
                boards: OnceLock::new(),
                channels: OnceLock::new(),
            }),
        }
    }

    /// Pokes this process's feeds directly when it commits, so its own
    /// watchers do not wait for the notification's round trip.
    pub fn serve_locally(&self, boards: EventHub, channels: ChannelHub) {
        let _ = self.inner.boards.set(boards);
        let _ = self.inner.channels.set(channels);
    }

    /// Whether a notification from backend `pid` came from this announcer
    /// (and so was delivered in-process already).
    pub fn sent_here(&self, pid: u32) -> bool {
        pid != 0 && self.inner.sender_pid.load(Ordering::Acquire) == pid
    }

    /// `boards` (board, version) have committed.
    pub fn committed(&self, boards: &[(Uuid, u64)]) {
        if boards.is_empty() {
            return;
        }
        if let Some(hub) = self.inner.boards.get() {
            for &(board_id, version) in boards {
                hub.poke_past(board_id, version);
            }
        }
        let mut pending = self.inner.pending();
        for &(board_id, version) in boards {
            pending.add_board(board_id, version);
        }
        drop(pending);
        self.wake_sender();
    }

    /// A publication on `channel` has committed.
    pub fn published(&self, channel: &str) {
        if let Some(hub) = self.inner.channels.get() {
            hub.poke(channel);
        }
        let mut pending = self.inner.pending();
        if !pending.channels.contains(channel) {
            pending.channels.insert(channel.to_owned());
        }
        drop(pending);
        self.wake_sender();
    }

    fn wake_sender(&self) {
        let mut sender = self.inner.sender.lock().unwrap_or_else(|e| e.into_inner());
        if sender.as_ref().is_none_or(|task| task.is_finished())
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            *sender = Some(runtime.spawn(send_batches(Arc::downgrade(&self.inner))));
        }
        drop(sender);
        self.inner.wake.notify_one();
    }
}

/// Sends what is pending whenever woken, on a connection of its own (so
/// the listener can tell its notifications by pid), until the announcer is
/// dropped or its pool closed. A failed batch is put back and sent again.
async fn send_batches(announcer: Weak<Inner>) {
    let mut connection: Option<PgConnection> = None;
    let mut failures = 0u32;
    loop {
        let Some(inner) = announcer.upgrade() else {
            return;
        };
        let stopped = inner.pool.is_closed();
        if !stopped {
            let _ = tokio::time::timeout(IDLE_CHECK, inner.wake.notified()).await;
        }
        let batch = inner.pending().take_batch();
        if batch.is_empty() {
            if stopped {
                return;
            }
            continue;
        }
        let sent = tokio::time::timeout(SEND_TIMEOUT, send(&inner, &mut connection, &batch))
            .await
            .unwrap_or_else(|_| {
                Err(sqlx::Error::Io(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("no answer within {SEND_TIMEOUT:?}"),
                )))
            });
        if stopped {
            // What committed last still reaches the other replicas, once.
            return;
        }
        match sent {
            Ok(()) => {
                failures = 0;
                if !inner.pending().is_empty() {
                    inner.wake.notify_one();
                }
            }
            Err(err) => {
                failures += 1;
                connection = None;
                tracing::warn!(error = %err, failures, "cannot announce commits; retrying");
                inner.pending().restore(batch);
                drop(inner);
                tokio::time::sleep(Duration::from_millis(100 * u64::from(failures.min(20)))).await;
                if let Some(inner) = announcer.upgrade() {
                    inner.wake.notify_one();
                }
            }
        }
    }
}

/// One statement, one implicit transaction: `set_config(…, true)` holds for
/// that transaction only, so its commit does not wait for the WAL flush.
async fn send(
    inner: &Inner,
    connection: &mut Option<PgConnection>,
    batch: &Pending,
) -> sqlx::Result<()> {
    let connection = match connection {
        Some(connection) => connection,
        None => {
            let mut fresh = PgConnection::connect_with(&inner.pool.connect_options()).await?;
            let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
                .fetch_one(&mut fresh)
                .await?;
            inner.sender_pid.store(pid as u32, Ordering::Release);
            connection.insert(fresh)
        }
    };
    let (channels, payloads) = batch.notifications();
    sqlx::query(
        "SELECT pg_notify(n.channel, n.payload)
         FROM (SELECT set_config('synchronous_commit', 'off', true)) AS unflushed,
              unnest($1::text[], $2::text[]) AS n(channel, payload)",
    )
    .bind(channels)
    .bind(payloads)
    .execute(&mut *connection)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_hold_at_most_max_batch_and_a_failed_one_goes_back_keeping_the_newest_version() {
        let mut pending = Pending::default();
        let boards: Vec<Uuid> = (0..MAX_BATCH + 10).map(|_| Uuid::now_v7()).collect();
        for (i, id) in boards.iter().enumerate() {
            pending.add_board(*id, i as u64 + 1);
        }
        pending.channels.insert("jobs".into());
        let batch = pending.take_batch();
        assert_eq!(batch.boards.len() + batch.channels.len(), MAX_BATCH);
        assert_eq!(
            batch.boards.len()
                + batch.channels.len()
                + pending.boards.len()
                + pending.channels.len(),
            boards.len() + 1
        );
        // A newer commit of a board in the failed batch arrives meanwhile.
        let (&raced, &sent_version) = batch.boards.iter().next().expect("a board");
        pending.add_board(raced, sent_version + 5);
        pending.restore(batch);
        assert_eq!(pending.boards.len(), boards.len());
        assert_eq!(pending.boards[&raced], sent_version + 5);
        assert!(pending.channels.contains("jobs"));
        let mut payloads = Vec::new();
        while !pending.is_empty() {
            let (channels, batch) = pending.take_batch().notifications();
            assert_eq!(channels.len(), batch.len());
            payloads.extend(batch);
        }
        assert_eq!(payloads.len(), boards.len() + 1);
        assert!(payloads.contains(&format!("{raced}:{}", sent_version + 5)));
    }
}
