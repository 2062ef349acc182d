//! One `WatchPresence` stream: the whole list, then diffs.

use std::collections::BTreeMap;

use protocol::v1::{PresenceEntry, PresenceUpdate};
use tokio::sync::mpsc;
use tonic::Status;

use super::{PresenceHub, feed::Members};

type Outbox = mpsc::Sender<Result<PresenceUpdate, Status>>;

/// Streams `scope`'s members into `out` until the client leaves or the
/// service shuts down.
pub async fn run(hub: PresenceHub, scope: String, out: Outbox) {
    let shutdown = hub.shutdown_token().clone();
    let mut members = hub.subscribe(&scope);
    let mut sent: Option<Members> = None;
    loop {
        let now = members.borrow_and_update().clone();
        if let Some(now) = now {
            let update = match &sent {
                None => Some(full(&scope, &now)),
                Some(before) => diff(&scope, before, &now),
            };
            if let Some(update) = update
                && out.send(Ok(update)).await.is_err()
            {
                return;
            }
            sent = Some(now);
        }
        tokio::select! {
            changed = members.changed() => if changed.is_err() { return },
            () = out.closed() => return,
            () = shutdown.cancelled() => return,
        }
    }
}

fn count(members: &BTreeMap<String, PresenceEntry>) -> u32 {
    u32::try_from(members.len()).unwrap_or(u32::MAX)
}

fn full(scope: &str, members: &Members) -> PresenceUpdate {
    PresenceUpdate {
        scope: scope.to_owned(),
        full: true,
        entries: members.values().cloned().collect(),
        count: count(members),
        ..Default::default()
    }
}

/// What changed from `before` to `now`; `None` when nothing did.
pub fn diff(scope: &str, before: &Members, now: &Members) -> Option<PresenceUpdate> {
    let mut update = PresenceUpdate {
        scope: scope.to_owned(),
        count: count(now),
        ..Default::default()
    };
    for (key, entry) in now.iter() {
        match before.get(key) {
            None => update.joined.push(entry.clone()),
            Some(old) if old != entry => update.updated.push(entry.clone()),
            Some(_) => {}
        }
    }
    for (key, entry) in before.iter() {
        if !now.contains_key(key) {
            update.left.push(PresenceEntry {
                connections: 0,
                ..entry.clone()
            });
        }
    }
    let empty = update.joined.is_empty() && update.updated.is_empty() && update.left.is_empty();
    (!empty).then_some(update)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn members(list: &[(&str, u32)]) -> Members {
        Arc::new(
            list.iter()
                .map(|(key, connections)| {
                    let entry = PresenceEntry {
                        key: (*key).into(),
                        name: key.to_uppercase(),
                        connections: *connections,
                    };
                    ((*key).to_owned(), entry)
                })
                .collect(),
        )
    }

    #[test]
    fn diff_names_joined_updated_and_left_keys() {
        let before = members(&[("ann", 1), ("bob", 2)]);
        let now = members(&[("bob", 3), ("cy", 1)]);
        let update = diff("board:x", &before, &now).expect("a change");
        let keys = |list: &[PresenceEntry]| list.iter().map(|e| e.key.clone()).collect::<Vec<_>>();
        assert_eq!(keys(&update.joined), ["cy"]);
        assert_eq!(keys(&update.updated), ["bob"]);
        assert_eq!(keys(&update.left), ["ann"]);
        assert_eq!(update.left[0].connections, 0);
        assert_eq!(update.count, 2);
        assert!(diff("board:x", &now, &now).is_none());
    }
}
