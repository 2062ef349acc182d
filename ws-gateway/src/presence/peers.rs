//! Presence over NATS, the table: what each gateway (this one included)
//! holds, as its numbered batches said. It is the NATS-mode counterpart of
//! board-service's `presence` table, kept in every gateway instead of in
//! PostgreSQL.
//!
//! A batch's entries are absolute (a key's name and connection count on
//! that gateway, 0 for gone), so applying one is right whatever came
//! before; a missed batch only leaves some keys stale. That is why a gap
//! in a gateway's numbers is applied all the same and answered with a
//! request for that gateway's whole state (a `reset` batch), and why
//! nothing here waits for order.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    time::{Duration, Instant},
};

use protocol::v1::{PresenceEntry, UpdatePresenceRequest};

use super::display_name;

/// Longest scope and key, in bytes (board-service's limit too).
pub const MAX_SCOPE_BYTES: usize = 300;
/// Longest gateway id, in bytes (board-service's limit too).
pub const MAX_GATEWAY_ID_BYTES: usize = 64;
/// Gateways one table follows at most: past it, batches of new ones are
/// dropped (a NATS account shared with something that floods the subject
/// must not grow this without bound).
pub const MAX_PEERS: usize = 4_096;
/// Members one gateway may hold in the table at most.
pub const MAX_MEMBERS_PER_PEER: usize = 1_000_000;
const LEASE_MS: std::ops::RangeInclusive<u32> = 1_000..=300_000;

#[derive(Debug, Clone, PartialEq, Eq)]
struct Held {
    name: String,
    connections: u32,
}

struct Peer {
    /// The number of the last batch applied.
    seq: u64,
    heard: Instant,
    lease: Duration,
    members: usize,
    scopes: HashMap<String, BTreeMap<String, Held>>,
    /// When this gateway's whole state was last asked for, while a gap
    /// is open (`None`: in step).
    asked: Option<Instant>,
}

/// What applying a batch did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Applied {
    /// Scopes whose members may have changed.
    pub touched: BTreeSet<String>,
    /// Some of the sender's batches were missed: ask it for everything.
    pub ask_for_state: bool,
}

/// Every gateway's members, by gateway id.
#[derive(Default)]
pub struct Peers {
    peers: HashMap<String, Peer>,
}

/// How long a gateway waits between two requests for another's state.
const ASK_AGAIN_AFTER: Duration = Duration::from_secs(1);

impl Peers {
    /// Applies `batch`, number `seq` of its gateway, heard at `now`.
    /// Batches that break a limit are dropped whole, with a warning.
    pub fn apply(&mut self, batch: UpdatePresenceRequest, seq: u64, now: Instant) -> Applied {
        let gateway = batch.gateway_id;
        if gateway.is_empty()
            || gateway.len() > MAX_GATEWAY_ID_BYTES
            || gateway.chars().any(char::is_control)
        {
            tracing::warn!(gateway = %gateway.escape_debug(), "presence batch with a bad gateway id; dropped");
            return Applied::default();
        }
        let mut applied = Applied::default();
        if batch.release {
            if let Some(peer) = self.peers.remove(&gateway) {
                applied.touched.extend(peer.scopes.into_keys());
            }
            return applied;
        }
        if !self.peers.contains_key(&gateway) && self.peers.len() >= MAX_PEERS {
            tracing::warn!(%gateway, "presence from more than {MAX_PEERS} gateways; dropped");
            return applied;
        }
        let lease = Duration::from_millis(u64::from(
            batch.lease_ms.clamp(*LEASE_MS.start(), *LEASE_MS.end()),
        ));
        let peer = self.peers.entry(gateway.clone()).or_insert_with(|| Peer {
            seq: 0,
            heard: now,
            lease,
            members: 0,
            scopes: HashMap::new(),
            // New to us: unless this is its whole state, ask for it.
            asked: None,
        });
        let new = peer.seq == 0;
        if !new && seq <= peer.seq {
            // Gateway ids are random per process, so a lower number is a
            // stray copy, never a restart.
            return applied;
        }
        let in_step = if batch.reset {
            peer.asked = None;
            true
        } else {
            !new && seq == peer.seq + 1
        };
        peer.seq = seq;
        peer.heard = now;
        peer.lease = lease;
        if batch.reset {
            applied
                .touched
                .extend(peer.scopes.drain().map(|(scope, _)| scope));
            peer.members = 0;
        }
        for change in batch.changes {
            let Some(entry) = change.entry else { continue };
            if change.scope.is_empty()
                || change.scope.len() > MAX_SCOPE_BYTES
                || entry.key.is_empty()
                || entry.key.len() > MAX_SCOPE_BYTES
            {
                continue;
            }
            let scope = peer.scopes.entry(change.scope.clone()).or_default();
            if entry.connections == 0 {
                if scope.remove(&entry.key).is_some() {
                    peer.members -= 1;
                }
                if scope.is_empty() {
                    peer.scopes.remove(&change.scope);
                }
            } else {
                let held = Held {
                    name: display_name(Some(&entry.name)),
                    connections: entry.connections,
                };
                if !scope.contains_key(&entry.key) {
                    if peer.members >= MAX_MEMBERS_PER_PEER {
                        continue;
                    }
                    peer.members += 1;
                }
                scope.insert(entry.key, held);
            }
            applied.touched.insert(change.scope);
        }
        if !in_step
            && peer
                .asked
                .is_none_or(|at| now.duration_since(at) >= ASK_AGAIN_AFTER)
        {
            peer.asked = Some(now);
            applied.ask_for_state = true;
        }
        applied
    }

    /// Drops the gateways not heard from within their lease, except
    /// `keep` (this one); returns the scopes they were on.
    pub fn expire(&mut self, now: Instant, keep: &str) -> BTreeSet<String> {
        let mut touched = BTreeSet::new();
        self.peers.retain(|gateway, peer| {
            let alive = gateway == keep || now.duration_since(peer.heard) < peer.lease;
            if !alive {
                tracing::info!(%gateway, "a gateway's presence lease ran out");
                touched.extend(peer.scopes.keys().cloned());
            }
            alive
        });
        touched
    }

    /// Counts every lease from `now`: while this gateway could not hear,
    /// silence proves nothing.
    pub fn renew_all(&mut self, now: Instant) {
        for peer in self.peers.values_mut() {
            peer.heard = now;
        }
    }

    /// `scope`'s members summed over every gateway, by key: connections
    /// added, the greatest name (as board-service sums them).
    pub fn members(&self, scope: &str) -> Vec<PresenceEntry> {
        let mut summed: BTreeMap<&str, PresenceEntry> = BTreeMap::new();
        for held in self.peers.values().filter_map(|p| p.scopes.get(scope)) {
            for (key, member) in held {
                let entry = summed.entry(key).or_insert_with(|| PresenceEntry {
                    key: key.clone(),
                    name: String::new(),
                    connections: 0,
                });
                entry.connections = entry.connections.saturating_add(member.connections);
                if member.name > entry.name {
                    entry.name.clone_from(&member.name);
                }
            }
        }
        summed.into_values().collect()
    }
}

#[cfg(test)]
mod tests {
    use protocol::v1::PresenceChange;

    use super::*;

    fn batch(
        gateway: &str,
        reset: bool,
        changes: &[(&str, &str, &str, u32)],
    ) -> UpdatePresenceRequest {
        UpdatePresenceRequest {
            gateway_id: gateway.into(),
            lease_ms: 2_000,
            changes: changes
                .iter()
                .map(|&(scope, key, name, connections)| PresenceChange {
                    scope: scope.into(),
                    entry: Some(PresenceEntry {
                        key: key.into(),
                        name: name.into(),
                        connections,
                    }),
                })
                .collect(),
            reset,
            release: false,
        }
    }

    fn counts(peers: &Peers, scope: &str) -> Vec<(String, String, u32)> {
        peers
            .members(scope)
            .into_iter()
            .map(|e| (e.key, e.name, e.connections))
            .collect()
    }

    #[test]
    fn members_are_summed_over_gateways_and_leave_with_zero() {
        let now = Instant::now();
        let mut peers = Peers::default();
        let first = peers.apply(batch("a", true, &[("board:1", "ann", "Ann", 2)]), 1, now);
        assert!(!first.ask_for_state, "a reset is the whole state");
        peers.apply(
            batch(
                "b",
                true,
                &[("board:1", "ann", "Ann", 1), ("board:1", "bob", "Bob", 1)],
            ),
            1,
            now,
        );
        assert_eq!(
            counts(&peers, "board:1"),
            [
                ("ann".into(), "Ann".into(), 3),
                ("bob".into(), "Bob".into(), 1)
            ]
        );
        let left = peers.apply(batch("b", false, &[("board:1", "bob", "", 0)]), 2, now);
        assert!(!left.ask_for_state);
        assert_eq!(left.touched, BTreeSet::from(["board:1".to_owned()]));
        assert_eq!(counts(&peers, "board:1"), [("ann".into(), "Ann".into(), 3)]);
    }

    #[test]
    fn a_gap_or_an_unknown_gateway_asks_for_its_state_once_a_second() {
        let now = Instant::now();
        let mut peers = Peers::default();
        let unknown = peers.apply(batch("a", false, &[("board:1", "ann", "Ann", 1)]), 7, now);
        assert!(unknown.ask_for_state);
        assert_eq!(counts(&peers, "board:1").len(), 1, "applied all the same");
        let next = peers.apply(batch("a", false, &[]), 9, now);
        assert!(!next.ask_for_state, "asked less than a second ago");
        let later = peers.apply(batch("a", false, &[]), 11, now + ASK_AGAIN_AFTER);
        assert!(later.ask_for_state);
        let reset = peers.apply(batch("a", true, &[("board:2", "ann", "Ann", 1)]), 12, now);
        assert!(!reset.ask_for_state);
        assert!(counts(&peers, "board:1").is_empty(), "a reset replaces");
        assert_eq!(
            reset.touched,
            BTreeSet::from(["board:1".to_owned(), "board:2".to_owned()])
        );
        assert!(!peers.apply(batch("a", false, &[]), 13, now).ask_for_state);
        assert_eq!(
            peers.apply(batch("a", false, &[("board:2", "x", "X", 1)]), 13, now),
            Applied::default(),
            "a repeat is ignored"
        );
    }

    #[test]
    fn silent_gateways_expire_unless_renewed_and_a_release_leaves_at_once() {
        let now = Instant::now();
        let mut peers = Peers::default();
        peers.apply(batch("me", true, &[("board:1", "me", "Me", 1)]), 1, now);
        peers.apply(batch("a", true, &[("board:1", "ann", "Ann", 1)]), 1, now);
        peers.apply(batch("b", true, &[("board:2", "bob", "Bob", 1)]), 1, now);
        let late = now + Duration::from_millis(2_500);
        peers.renew_all(now + Duration::from_millis(1_000));
        assert!(
            peers.expire(late, "me").is_empty(),
            "renewed at 1 s, lease 2 s"
        );
        let expired = peers.expire(late + Duration::from_secs(1), "me");
        assert_eq!(
            expired,
            BTreeSet::from(["board:1".to_owned(), "board:2".to_owned()])
        );
        assert_eq!(
            counts(&peers, "board:1"),
            [("me".into(), "Me".into(), 1)],
            "this gateway never expires"
        );
        let mut release = batch("me", false, &[]);
        release.release = true;
        peers.apply(release, 2, now);
        assert!(counts(&peers, "board:1").is_empty());
        assert!(peers.peers.is_empty());
    }

    #[test]
    fn hostile_batches_are_bounded() {
        let now = Instant::now();
        let mut peers = Peers::default();
        let long = "k".repeat(MAX_SCOPE_BYTES + 1);
        let applied = peers.apply(
            batch(
                "a",
                true,
                &[
                    ("board:1", &long, "Long", 1),
                    ("", "x", "X", 1),
                    ("board:1", "eve", "Eve\u{1b}[2J", 1),
                ],
            ),
            1,
            now,
        );
        assert_eq!(applied.touched.len(), 1);
        assert_eq!(
            counts(&peers, "board:1"),
            [("eve".into(), "Eve[2J".into(), 1)]
        );
        for bad in ["", "\u{7}", &"g".repeat(MAX_GATEWAY_ID_BYTES + 1)] {
            assert_eq!(
                peers.apply(batch(bad, true, &[("board:1", "x", "X", 1)]), 1, now),
                Applied::default()
            );
        }
        assert_eq!(peers.peers.len(), 1);
    }
}
