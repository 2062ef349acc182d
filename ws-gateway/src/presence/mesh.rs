//! Presence over NATS (with `NATS_URL`): the gateways tell one another
//! their members on core NATS, and each sums every gateway's in its own
//! table ([`Peers`]). board-service and PostgreSQL are not in the path.
//!
//! - Every gateway publishes its batches of joins and leaves on
//!   [`BATCHES`], numbered in a header, and an empty batch every third of
//!   its lease as a heartbeat. A gateway not heard from within its lease
//!   is dropped, so the members of one killed with SIGKILL leave; one that
//!   stops cleanly publishes a release and they leave at once.
//! - A gateway that misses a batch (a gap in the numbers, or one it has
//!   never heard) asks for that gateway's whole state on [`RESYNC`]; a new
//!   or reconnected gateway asks everyone (`*`). The answer is a `reset`
//!   batch on [`BATCHES`], so every gateway converges on it.
//! - Core NATS keeps nothing: a NATS restart costs a resync, not members.
//!
//! Anyone who may publish on these subjects can claim presence, so NATS
//! must be an internal fabric with its own credentials (SCALING.md).

use std::{
    collections::{BTreeSet, HashMap},
    sync::{Arc, Mutex, MutexGuard, Weak},
    time::{Duration, Instant},
};

use async_nats::{HeaderMap, connection::State as Connection};
use futures::StreamExt;
use prost::Message as _;
use protocol::v1::{PresenceUpdate, UpdatePresenceRequest};
use tokio::sync::watch;

use super::{Presence, peers::Peers, watch::ScopeWatch};

/// Every gateway's batches (protobuf `UpdatePresenceRequest`).
pub const BATCHES: &str = "boardwire.presence.batches";
/// Requests for a gateway's whole state: its id, or `*` for every one.
pub const RESYNC: &str = "boardwire.presence.resync";
const SUBJECTS: &str = "boardwire.presence.>";
const SEQ_HEADER: &str = "Boardwire-Seq";
const EVERYONE: &str = "*";
/// How long a gateway listens after asking everyone before it answers
/// "who is here": long enough for the others' next batch (150 ms apart
/// by default) and a round trip.
const DISCOVERY: Duration = Duration::from_secs(1);
/// Entries per published batch at most: a big gateway's whole state goes
/// in several, well under NATS's 1 MB message limit.
const CHUNK: usize = 1_000;
/// How often leases are checked and the connection looked at.
const SWEEP_EVERY: Duration = Duration::from_millis(500);
/// Longest wait for NATS to take the release at shutdown.
const RELEASE_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Default)]
struct State {
    peers: Peers,
    /// The scopes watched here, fed from the table.
    watches: HashMap<String, Weak<ScopeWatch>>,
    /// This gateway's last batch number.
    seq: u64,
}

/// This gateway's side of the presence mesh.
pub struct Mesh {
    client: async_nats::Client,
    state: Mutex<State>,
    /// True once this gateway has heard the others after connecting.
    ready: watch::Sender<bool>,
}

impl Mesh {
    pub fn new(client: async_nats::Client) -> Arc<Self> {
        Arc::new(Self {
            client,
            state: Mutex::default(),
            ready: watch::channel(false).0,
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Feeds `watch` from the table: its whole list once this gateway has
    /// heard the others, then every change, until [`Mesh::detach`].
    pub async fn attach(&self, watch: &Arc<ScopeWatch>) {
        let mut ready = self.ready.subscribe();
        let _ = ready.wait_for(|r| *r).await;
        // Fed only from here on: its first update is what makes it ready.
        let mut state = self.state();
        state
            .watches
            .insert(watch.scope.clone(), Arc::downgrade(watch));
        watch.apply(full_list(&state.peers, &watch.scope));
    }

    pub fn detach(&self, watch: &Arc<ScopeWatch>) {
        let mut state = self.state();
        let current = state
            .watches
            .get(&watch.scope)
            .is_some_and(|w| w.as_ptr() == Arc::as_ptr(watch));
        if current {
            state.watches.remove(&watch.scope);
        }
    }

    /// Applies a batch (this gateway's own, or one heard) and pushes the
    /// changed lists; true when its sender must be asked for everything.
    fn apply(&self, batch: UpdatePresenceRequest, seq: u64) -> bool {
        let mut state = self.state();
        let applied = state.peers.apply(batch, seq, Instant::now());
        push(&state, &applied.touched);
        applied.ask_for_state
    }

    /// Drops the gateways whose lease ran out; while this one is cut off
    /// (`connected` false), counts every lease again instead, since
    /// nothing heard proves nothing while it cannot hear.
    fn sweep(&self, connected: bool, me: &str) {
        let mut state = self.state();
        if connected {
            let expired = state.peers.expire(Instant::now(), me);
            push(&state, &expired);
        } else {
            state.peers.renew_all(Instant::now());
        }
    }

    fn next_seq(&self) -> u64 {
        let mut state = self.state();
        state.seq += 1;
        state.seq
    }

    async fn publish(&self, subject: &'static str, headers: HeaderMap, payload: Vec<u8>) {
        if let Err(err) = self
            .client
            .publish_with_headers(subject, headers, payload.into())
            .await
        {
            // Only when the client is closing; the others resync from the
            // gap once it is back.
            tracing::warn!(%err, subject, "cannot publish presence");
        }
    }

    /// Applies `batch` here and tells every gateway.
    async fn send(&self, batch: UpdatePresenceRequest) {
        let seq = self.next_seq();
        let payload = batch.encode_to_vec();
        self.apply(batch, seq);
        let mut headers = HeaderMap::new();
        headers.insert(SEQ_HEADER, seq.to_string().as_str());
        self.publish(BATCHES, headers, payload).await;
    }

    async fn ask_for_state(&self, gateway: &str) {
        self.publish(RESYNC, HeaderMap::new(), gateway.as_bytes().to_vec())
            .await;
    }
}

/// The `full` update that makes a watch hold `scope`'s members now.
fn full_list(peers: &Peers, scope: &str) -> PresenceUpdate {
    let entries = peers.members(scope);
    PresenceUpdate {
        scope: scope.to_owned(),
        full: true,
        count: u32::try_from(entries.len()).unwrap_or(u32::MAX),
        entries,
        ..Default::default()
    }
}

/// Sends each watch among `touched` its list again; the watch diffs it
/// against what its clients were told.
fn push(state: &State, touched: &BTreeSet<String>) {
    for scope in touched {
        if let Some(watch) = state.watches.get(scope).and_then(Weak::upgrade) {
            watch.apply(full_list(&state.peers, scope));
        }
    }
}

/// Publishes this gateway's batches until it stops, then its release:
/// the NATS-mode counterpart of `lease::run`.
pub async fn publish_batches(presence: Arc<Presence>, mesh: Arc<Mesh>) {
    while presence.next_batch_due().await {
        let (changes, reset) = presence.local().take_batch();
        // Even an empty batch goes out: it is the heartbeat.
        let mut chunks = changes.chunks(CHUNK).peekable();
        let mut first = true;
        loop {
            let chunk = chunks.next().unwrap_or_default();
            mesh.send(UpdatePresenceRequest {
                gateway_id: presence.instance.to_string(),
                lease_ms: presence.lease_ms,
                changes: chunk.to_vec(),
                // Later chunks of a reset are upserts on top of the first.
                reset: reset && first,
                release: false,
            })
            .await;
            first = false;
            if chunks.peek().is_none() {
                break;
            }
        }
    }
    let release = mesh.send(UpdatePresenceRequest {
        gateway_id: presence.instance.to_string(),
        lease_ms: presence.lease_ms,
        release: true,
        ..Default::default()
    });
    let released = tokio::time::timeout(RELEASE_TIMEOUT, async {
        release.await;
        mesh.client.flush().await
    })
    .await;
    if !matches!(released, Ok(Ok(()))) {
        tracing::info!("could not publish the presence release; the lease runs out on its own");
    }
}

/// Hears the other gateways until this one stops: applies their batches,
/// answers requests for this gateway's state, and drops silent gateways.
pub async fn listen(presence: Arc<Presence>, mesh: Arc<Mesh>) {
    let stop = presence.stop.clone();
    let mut subscription = loop {
        // With `retry_on_initial_connect` this waits for NATS to answer.
        match mesh.client.subscribe(SUBJECTS).await {
            Ok(subscription) => break subscription,
            Err(err) => {
                tracing::warn!(%err, "cannot subscribe to presence; retrying");
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                    () = stop.cancelled() => return,
                }
            }
        }
    };
    let me = presence.instance.to_string();
    let mut sweep = tokio::time::interval(SWEEP_EVERY);
    let mut connected = false;
    let mut discovered_at: Option<tokio::time::Instant> = None;
    loop {
        tokio::select! {
            message = subscription.next() => {
                let Some(message) = message else { break };
                if message.subject.as_str() == RESYNC {
                    let wanted = String::from_utf8_lossy(&message.payload);
                    if wanted == EVERYONE || wanted == me {
                        presence.local().reset = true;
                        presence.changed.notify_one();
                    }
                    continue;
                }
                let seq = message
                    .headers
                    .as_ref()
                    .and_then(|h| h.get(SEQ_HEADER))
                    .and_then(|v| v.as_str().parse::<u64>().ok());
                let (Some(seq), Ok(batch)) = (seq, UpdatePresenceRequest::decode(message.payload.as_ref())) else {
                    tracing::warn!(bytes = message.payload.len(), "undecodable presence batch; dropped");
                    continue;
                };
                if batch.gateway_id == me {
                    continue;
                }
                let sender = batch.gateway_id.clone();
                if mesh.apply(batch, seq) {
                    tracing::debug!(gateway = %sender, "missed presence batches; asking for the whole state");
                    mesh.ask_for_state(&sender).await;
                }
            }
            _ = sweep.tick() => {
                let now_connected = mesh.client.connection_state() == Connection::Connected;
                mesh.sweep(now_connected, &me);
                if now_connected && !connected {
                    // Connected, or back after an outage: whatever was
                    // missed either way, everyone says everything again.
                    mesh.ask_for_state(EVERYONE).await;
                    presence.local().reset = true;
                    presence.changed.notify_one();
                    discovered_at.get_or_insert_with(tokio::time::Instant::now);
                }
                connected = now_connected;
                if discovered_at.is_some_and(|at| at.elapsed() >= DISCOVERY) {
                    mesh.ready.send_if_modified(|ready| !std::mem::replace(ready, true));
                }
            }
            () = stop.cancelled() => break,
        }
    }
}
