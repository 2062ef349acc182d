//! One watch per scope this gateway's clients watch: the scope's members
//! summed over every gateway (by board-service through one upstream
//! `WatchPresence`, or with NATS by this gateway's own table, `mesh`),
//! and the clients that get `presence.joined` / `presence.left` pushes.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use axum::extract::ws::Utf8Bytes;
use protocol::{
    board_frames::{PresenceChange, PresenceEntry, PresenceList, PresenceTarget, ServerFrame},
    v1::{self, WatchPresenceRequest},
};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::mesh::Mesh;
use crate::{
    client::{Client, Outgoing},
    upstream::Upstream,
};

/// Where a watch's members come from.
#[derive(Clone)]
pub enum Source {
    /// board-service's `WatchPresence` (without NATS).
    BoardService(Upstream),
    /// This gateway's table of every gateway's batches (with NATS).
    Mesh(Arc<Mesh>),
}

const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

#[derive(Default)]
struct State {
    /// `None` until board-service sent the whole list.
    members: Option<BTreeMap<String, PresenceEntry>>,
    watchers: HashMap<u64, Arc<Client>>,
    /// Callers between finding this watch and adding themselves (or
    /// reading it): the watch must not close under them.
    pending: usize,
}

/// The members of one scope, and who gets pushes about them.
pub struct ScopeWatch {
    pub scope: String,
    target: PresenceTarget,
    max_members: usize,
    state: Mutex<State>,
    ready: watch::Sender<bool>,
    pub stop: CancellationToken,
}

impl ScopeWatch {
    /// Starts watching `scope` upstream.
    pub fn spawn(
        scope: String,
        target: PresenceTarget,
        max_members: usize,
        source: Source,
        stop: CancellationToken,
    ) -> Arc<Self> {
        let watch = Arc::new(Self {
            scope,
            target,
            max_members,
            state: Mutex::default(),
            ready: watch::channel(false).0,
            stop,
        });
        let running = watch.clone();
        tokio::spawn(async move {
            let stop = running.stop.clone();
            match source {
                Source::BoardService(upstream) => tokio::select! {
                    () = running.run(&upstream) => {}
                    () = stop.cancelled() => {}
                },
                Source::Mesh(mesh) => {
                    tokio::select! {
                        () = mesh.attach(&running) => stop.cancelled().await,
                        () = stop.cancelled() => {}
                    }
                    mesh.detach(&running);
                }
            }
            tracing::debug!(scope = %running.scope, "presence watch closed");
        });
        watch
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits until the whole list has arrived once.
    pub async fn ready(&self) {
        let mut ready = self.ready.subscribe();
        let _ = ready.wait_for(|r| *r).await;
    }

    /// The members now (entries omitted above the limit), as a `presence`
    /// frame answering `id`.
    pub fn list(&self, id: Option<String>) -> ServerFrame {
        list_frame(&self.state(), &self.target, self.max_members, id)
    }

    /// Adds `client` to the pushes and queues its `presence` answer, in
    /// one step, so no push can overtake or be missing from the answer.
    pub fn add_watcher(&self, client: &Arc<Client>, id: Option<String>) {
        let mut state = self.state();
        let frame = list_frame(&state, &self.target, self.max_members, id);
        client.push_frame(&frame);
        state.watchers.insert(client.id, client.clone());
    }

    /// A caller is about to use this watch (see `State::pending`).
    pub fn hold(&self) {
        self.state().pending += 1;
    }

    pub fn unhold(&self) {
        let mut state = self.state();
        state.pending = state.pending.saturating_sub(1);
    }

    /// Takes `client` off the pushes; true when nobody watches any more.
    pub fn remove_watcher(&self, client_id: u64) -> bool {
        let mut state = self.state();
        state.watchers.remove(&client_id);
        state.watchers.is_empty()
    }

    pub fn is_watched(&self) -> bool {
        let state = self.state();
        !state.watchers.is_empty() || state.pending > 0
    }

    async fn run(&self, upstream: &Upstream) {
        let mut backoff = BACKOFF_MIN;
        loop {
            let request = WatchPresenceRequest {
                scope: self.scope.clone(),
            };
            match upstream.presence().watch_presence(request).await {
                Ok(response) => {
                    let mut stream = response.into_inner();
                    loop {
                        match stream.message().await {
                            Ok(Some(update)) => {
                                backoff = BACKOFF_MIN;
                                self.apply(update);
                            }
                            Ok(None) => break,
                            Err(status) => {
                                tracing::warn!(scope = %self.scope, %status, "presence watch failed; reconnecting");
                                break;
                            }
                        }
                    }
                }
                Err(status) => {
                    tracing::warn!(scope = %self.scope, %status, "cannot watch presence");
                }
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
    }

    /// Applies one update and pushes what changed.
    pub(super) fn apply(&self, update: v1::PresenceUpdate) {
        let mut state = self.state();
        let before = state.members.as_ref().map(BTreeMap::len);
        let members = state.members.get_or_insert_with(BTreeMap::new);
        let mut upserts = Vec::new();
        let mut lefts = Vec::new();
        if update.full {
            let now: BTreeMap<String, PresenceEntry> = update
                .entries
                .into_iter()
                .map(|e| (e.key.clone(), entry(e)))
                .collect();
            upserts.extend(
                now.values()
                    .filter(|e| members.get(&e.key) != Some(e))
                    .cloned(),
            );
            lefts.extend(
                members
                    .values()
                    .filter(|e| !now.contains_key(&e.key))
                    .map(gone),
            );
            *members = now;
        } else {
            for e in update.joined.into_iter().chain(update.updated) {
                let e = entry(e);
                members.insert(e.key.clone(), e.clone());
                upserts.push(e);
            }
            for e in update.left {
                if let Some(old) = members.remove(&e.key) {
                    lefts.push(gone(&old));
                }
            }
        }
        let count = members.len();
        let frames = match before {
            // The first list: nobody was told anything yet.
            None => Vec::new(),
            Some(before) if before > self.max_members || count > self.max_members => {
                if before == count && count > self.max_members {
                    Vec::new()
                } else {
                    vec![list_frame(&state, &self.target, self.max_members, None)]
                }
            }
            Some(_) => {
                let change = |entries| PresenceChange {
                    target: self.target.clone(),
                    entries,
                    count: count as u64,
                };
                let mut frames = Vec::new();
                if !upserts.is_empty() {
                    frames.push(ServerFrame::PresenceJoined(change(upserts)));
                }
                if !lefts.is_empty() {
                    frames.push(ServerFrame::PresenceLeft(change(lefts)));
                }
                frames
            }
        };
        for frame in frames {
            // Encoded once, shared by every watcher.
            let json: Utf8Bytes = frame.to_json().into();
            for client in state.watchers.values() {
                let _ = client.push_unless_full(Outgoing::Direct(frame.kind(), json.clone()));
            }
        }
        drop(state);
        self.ready.send_replace(true);
    }
}

fn entry(e: v1::PresenceEntry) -> PresenceEntry {
    PresenceEntry {
        key: e.key,
        name: e.name,
        connections: e.connections,
    }
}

fn gone(e: &PresenceEntry) -> PresenceEntry {
    PresenceEntry {
        connections: 0,
        ..e.clone()
    }
}

fn list_frame(
    state: &State,
    target: &PresenceTarget,
    max_members: usize,
    id: Option<String>,
) -> ServerFrame {
    let members = state.members.as_ref();
    let count = members.map_or(0, BTreeMap::len);
    let entries = (count <= max_members).then(|| {
        members
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    });
    ServerFrame::Presence(PresenceList {
        target: target.clone(),
        id,
        entries,
        count: count as u64,
    })
}
