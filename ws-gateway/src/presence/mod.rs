//! Who is on a board (or, for the channels code, a channel), correct over
//! every gateway.
//!
//! Members are counted here per (scope, key) and sent out in batches
//! under this gateway's lease. Without NATS they go to board-service
//! (`lease`), which sums every gateway's rows in PostgreSQL and streams
//! the result, one upstream `WatchPresence` per watched scope. With NATS
//! the gateways send them to one another (`mesh`) and each sums them
//! itself (`peers`). Either way one `watch` per scope fans the result out
//! to the clients that asked. A gateway that dies stops renewing: its
//! members leave when its lease runs out. A scope is `board:<board id>` or
//! `channel:<name>`.

mod lease;
mod local;
mod mesh;
mod peers;
mod watch;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use protocol::board_frames::{PresenceEntry, PresenceTarget, ServerFrame};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::{client::Client, config::Config, upstream::Upstream};
use local::Local;
use mesh::Mesh;
use watch::{ScopeWatch, Source};

/// Longest display name, in characters (board-service's limit too).
pub const MAX_NAME_CHARS: usize = 64;
/// The name of a member who gave none.
pub const ANONYMOUS: &str = "anonymous";
/// Longest wait for board-service's first list of a scope.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// Who a connection is, for presence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// A token's `sub`; with auth off, the connection's `clientId`.
    pub key: String,
    pub name: String,
}

impl Member {
    /// `key` with `name` made fit to show: control characters dropped,
    /// trimmed, at most [`MAX_NAME_CHARS`] characters; "anonymous" if
    /// nothing is left.
    pub fn new(key: impl Into<String>, name: Option<&str>) -> Self {
        Self {
            key: key.into(),
            name: display_name(name),
        }
    }
}

/// See [`Member::new`].
pub fn display_name(name: Option<&str>) -> String {
    let cleaned: String = name
        .unwrap_or_default()
        .chars()
        .filter(|c| !c.is_control())
        .collect();
    let name: String = cleaned.trim().chars().take(MAX_NAME_CHARS).collect();
    let name = name.trim_end();
    if name.is_empty() {
        ANONYMOUS.to_owned()
    } else {
        name.to_owned()
    }
}

/// The presence scope of a board.
pub fn board_scope(board_id: &str) -> String {
    format!("board:{board_id}")
}

/// The presence scope of a channel.
pub fn channel_scope(channel: &str) -> String {
    format!("channel:{channel}")
}

/// What a scope holds right now.
// Read by the channels code (`presence` on channels); boards use `watch`.
#[allow(dead_code)]
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// `None` above the member limit.
    pub entries: Option<Vec<PresenceEntry>>,
    pub count: u64,
}

/// Presence didn't answer.
#[derive(Debug)]
pub struct NotReady;

/// This gateway's presence: what it counts and what it watches.
pub struct Presence {
    /// Random per process: this gateway's lease, and the prefix of its
    /// client ids, so they are unique across gateways.
    pub instance: Arc<str>,
    lease_ms: u32,
    batch: Duration,
    max_members: usize,
    upstream: Upstream,
    /// With NATS: the other gateways, instead of board-service.
    mesh: Option<Arc<Mesh>>,
    local: Mutex<Local>,
    changed: Notify,
    scopes: Mutex<HashMap<String, Arc<ScopeWatch>>>,
    stop: CancellationToken,
    lease_task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Presence {
    /// Starts the lease task; it releases the lease when `stop` fires.
    /// With `nats`, presence goes over it rather than through
    /// board-service.
    pub fn start(
        config: &Config,
        upstream: Upstream,
        nats: Option<async_nats::Client>,
        stop: CancellationToken,
    ) -> Arc<Self> {
        let uuid = uuid::Uuid::new_v4().simple().to_string();
        let presence = Arc::new(Self {
            instance: Arc::from(&uuid[..12]),
            lease_ms: config.presence_lease_ms.clamp(1_000, 300_000),
            batch: Duration::from_millis(config.presence_batch_ms.clamp(10, 5_000)),
            max_members: config.presence_max_members,
            upstream,
            mesh: nats.map(Mesh::new),
            local: Mutex::default(),
            changed: Notify::new(),
            scopes: Mutex::default(),
            stop,
            lease_task: Mutex::default(),
        });
        let task = match &presence.mesh {
            Some(mesh) => {
                tokio::spawn(mesh::listen(presence.clone(), mesh.clone()));
                tokio::spawn(mesh::publish_batches(presence.clone(), mesh.clone()))
            }
            None => tokio::spawn(lease::run(presence.clone())),
        };
        *presence
            .lease_task
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(task);
        presence
    }

    /// Waits (a few seconds at most) for the lease task to release the
    /// lease after the gateway's stop signal.
    pub async fn released(&self) {
        let task = self
            .lease_task
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(task) = task {
            let _ = tokio::time::timeout(Duration::from_secs(3), task).await;
        }
    }

    /// Waits until the next batch is due: a change (plus a moment for the
    /// joins and leaves that follow it) or a renewal. False once the
    /// gateway stops.
    async fn next_batch_due(&self) -> bool {
        let renew_every = Duration::from_millis(u64::from(self.lease_ms / 3).max(100));
        tokio::select! {
            () = self.changed.notified() => {}
            () = tokio::time::sleep(renew_every) => {}
            () = self.stop.cancelled() => return false,
        }
        tokio::select! {
            () = tokio::time::sleep(self.batch) => true,
            () = self.stop.cancelled() => false,
        }
    }

    fn local(&self) -> MutexGuard<'_, Local> {
        self.local.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn scopes(&self) -> MutexGuard<'_, HashMap<String, Arc<ScopeWatch>>> {
        self.scopes.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The `clientId` of connection `id`: unique across gateways.
    pub fn client_key(&self, id: u64) -> String {
        format!("{}-{id}", self.instance)
    }

    /// `member` is present on `scope` through connection `client_id`
    /// (idempotent). Every gateway sees it within a batch or so.
    pub fn join(&self, scope: &str, member: &Member, client_id: u64) {
        if self
            .local()
            .join(scope, &member.key, &member.name, client_id)
        {
            self.changed.notify_one();
        }
    }

    /// Connection `client_id` of `key` left `scope` (idempotent); the key
    /// leaves when its last connection on every gateway has.
    pub fn leave(&self, scope: &str, key: &str, client_id: u64) {
        if self.local().leave(scope, key, client_id) {
            self.changed.notify_one();
        }
    }

    /// `scope`'s members over every gateway, as board-service last said.
    #[allow(dead_code)]
    pub async fn snapshot(
        &self,
        scope: &str,
        target: PresenceTarget,
    ) -> Result<Snapshot, NotReady> {
        let watch = self.scope_watch(scope, target);
        let ready = tokio::time::timeout(READY_TIMEOUT, watch.ready()).await;
        let frame = watch.list(None);
        watch.unhold();
        self.retire_if_idle(&watch);
        ready.map_err(|_| NotReady)?;
        match frame {
            ServerFrame::Presence(list) => Ok(Snapshot {
                entries: list.entries,
                count: list.count,
            }),
            _ => Err(NotReady),
        }
    }

    /// Queues `scope`'s `presence` frame (answering `id`) for `client`, then
    /// `presence.joined` / `presence.left` as members come and go, until
    /// [`Presence::unwatch`]. Frames name `target`.
    pub async fn watch(
        &self,
        scope: &str,
        target: PresenceTarget,
        client: &Arc<Client>,
        id: Option<String>,
    ) -> Result<(), NotReady> {
        let watch = self.scope_watch(scope, target);
        let ready = tokio::time::timeout(READY_TIMEOUT, watch.ready()).await;
        if ready.is_ok() {
            watch.add_watcher(client, id);
        }
        watch.unhold();
        self.retire_if_idle(&watch);
        ready.map_err(|_| NotReady)
    }

    /// Ends `client_id`'s pushes about `scope`.
    pub fn unwatch(&self, scope: &str, client_id: u64) {
        let watch = self.scopes().get(scope).cloned();
        if let Some(watch) = watch
            && watch.remove_watcher(client_id)
        {
            self.retire_if_idle(&watch);
        }
    }

    /// Queues `scope`'s whole list again for a client that watches it (one
    /// that lagged and drained).
    pub fn resend(&self, scope: &str, client: &Client) {
        let watch = self.scopes().get(scope).cloned();
        if let Some(watch) = watch {
            client.push_frame(&watch.list(None));
        }
    }

    /// The watch of `scope`, started if needed, held for the caller (who
    /// must `unhold` it).
    fn scope_watch(&self, scope: &str, target: PresenceTarget) -> Arc<ScopeWatch> {
        let mut scopes = self.scopes();
        let watch = scopes
            .entry(scope.to_owned())
            .or_insert_with(|| {
                ScopeWatch::spawn(
                    scope.to_owned(),
                    target,
                    self.max_members,
                    match &self.mesh {
                        Some(mesh) => Source::Mesh(mesh.clone()),
                        None => Source::BoardService(self.upstream.clone()),
                    },
                    self.stop.child_token(),
                )
            })
            .clone();
        watch.hold();
        watch
    }

    /// Closes `watch` upstream when no client watches it, under the map
    /// lock, so a concurrent watcher either finds it alive or makes anew.
    fn retire_if_idle(&self, watch: &Arc<ScopeWatch>) {
        let mut scopes = self.scopes();
        let current = scopes
            .get(&watch.scope)
            .is_some_and(|w| Arc::ptr_eq(w, watch));
        if current && !watch.is_watched() {
            scopes.remove(&watch.scope);
            watch.stop.cancel();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_cleaned_and_bounded() {
        assert_eq!(display_name(None), "anonymous");
        assert_eq!(display_name(Some("  \u{7}  ")), "anonymous");
        assert_eq!(display_name(Some(" Ann\u{1b}[2J Lee ")), "Ann[2J Lee");
        assert_eq!(display_name(Some(&"é".repeat(100))).chars().count(), 64);
    }
}
