//! Tells every replica that boards committed, after the commit.
//!
//! A transaction that has issued `NOTIFY` takes a database-wide lock at
//! commit and keeps it until its commit record is flushed, so writers that
//! notify commit one at a time and lose group commit: with fsync on that
//! halved board writes (`cargo bench -p board-service --bench notify_lock`).
//! Board writes therefore commit without `NOTIFY`. Their boards come here,
//! and one task per process sends what has gathered as one `pg_notify`
//! batch, in a transaction of its own with `synchronous_commit` off, so the
//! lock is held for an instant and never across a flush.
//!
//! The notification is only a hint, as it always was: the log is the truth.
//! A batch lost to a crash between a commit and its send delays watchers on
//! other replicas until their feed's periodic re-check, and loses nothing.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, OnceLock, Weak},
    time::Duration,
};

use sqlx::PgPool;
use tokio::sync::Notify;
use uuid::Uuid;

use super::EventHub;
use crate::store::log::NOTIFY_CHANNEL;

/// How often the sending task, idle, checks whether its process still runs.
const IDLE_CHECK: Duration = Duration::from_secs(1);
/// The most notifications in one statement; more wait for the next one.
const MAX_BATCH: usize = 4096;

/// Boards that committed, waiting for their notification. Cheap to clone.
#[derive(Clone)]
pub struct Announcer {
    inner: Arc<Inner>,
}

struct Inner {
    pool: PgPool,
    /// Each board's newest committed version not yet announced.
    pending: Mutex<HashMap<Uuid, u64>>,
    wake: Notify,
    sender: OnceLock<()>,
    /// This process's feeds, poked at once instead of through PostgreSQL.
    local: OnceLock<EventHub>,
}

impl Announcer {
    pub fn new(pool: PgPool) -> Self {
        Self {
            inner: Arc::new(Inner {
                pool,
                pending: Mutex::default(),
                wake: Notify::new(),
                sender: OnceLock::new(),
                local: OnceLock::new(),
            }),
        }
    }

    /// Pokes `hub`'s feeds directly when this process commits, so its own
    /// watchers do not wait for the notification's round trip.
    pub fn serve_locally(&self, hub: EventHub) {
        let _ = self.inner.local.set(hub);
    }

    /// `boards` (board, version) have committed: announce them.
    pub fn committed(&self, boards: &[(Uuid, u64)]) {
        if boards.is_empty() {
            return;
        }
        if let Some(hub) = self.inner.local.get() {
            for &(board_id, version) in boards {
                hub.poke_past(board_id, version);
            }
        }
        {
            let mut pending = self.inner.pending.lock().unwrap_or_else(|e| e.into_inner());
            for &(board_id, version) in boards {
                let at = pending.entry(board_id).or_default();
                *at = (*at).max(version);
            }
        }
        self.inner.sender.get_or_init(|| {
            tokio::spawn(send_batches(Arc::downgrade(&self.inner)));
        });
        self.inner.wake.notify_one();
    }
}

/// Sends what is pending whenever woken, until the announcer is dropped or
/// its pool closed. A failed batch is merged back and sent again.
async fn send_batches(announcer: Weak<Inner>) {
    let mut failures = 0u32;
    loop {
        let Some(inner) = announcer.upgrade() else {
            return;
        };
        if inner.pool.is_closed() {
            return;
        }
        let _ = tokio::time::timeout(IDLE_CHECK, inner.wake.notified()).await;
        let batch: Vec<(Uuid, u64)> = {
            let mut pending = inner.pending.lock().unwrap_or_else(|e| e.into_inner());
            let keys: Vec<Uuid> = pending.keys().take(MAX_BATCH).copied().collect();
            keys.into_iter()
                .filter_map(|k| pending.remove_entry(&k))
                .collect()
        };
        if batch.is_empty() {
            continue;
        }
        match send(&inner.pool, &batch).await {
            Ok(()) => {
                failures = 0;
                if !inner
                    .pending
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .is_empty()
                {
                    inner.wake.notify_one();
                }
            }
            Err(err) => {
                failures += 1;
                tracing::warn!(error = %err, failures, boards = batch.len(), "cannot announce board commits; retrying");
                {
                    let mut pending = inner.pending.lock().unwrap_or_else(|e| e.into_inner());
                    for (board_id, version) in batch {
                        let at = pending.entry(board_id).or_default();
                        *at = (*at).max(version);
                    }
                }
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
async fn send(pool: &PgPool, batch: &[(Uuid, u64)]) -> sqlx::Result<()> {
    let payloads: Vec<String> = batch
        .iter()
        .map(|(board_id, version)| format!("{board_id}:{version}"))
        .collect();
    sqlx::query(
        "SELECT pg_notify($1, p)
         FROM (SELECT set_config('synchronous_commit', 'off', true)) AS unflushed,
              unnest($2::text[]) AS p",
    )
    .bind(NOTIFY_CHANNEL)
    .bind(payloads)
    .execute(pool)
    .await?;
    Ok(())
}
