//! This gateway's members: which clients hold each (scope, key), and what
//! changed since the last batch went to board-service.

use std::collections::{BTreeSet, HashMap, HashSet};

use protocol::v1::{PresenceChange, PresenceEntry};

struct LocalMember {
    name: String,
    clients: HashSet<u64>,
}

#[derive(Default)]
pub struct Local {
    scopes: HashMap<String, HashMap<String, LocalMember>>,
    /// (scope, key) whose count or name changed since the last batch.
    dirty: BTreeSet<(String, String)>,
    /// The next batch sends everything, replacing what board-service holds
    /// (at start, after a failed call, after the lease ran out).
    pub reset: bool,
}

impl Local {
    /// Adds `client` to `key` in `scope`; true when that changed anything.
    pub fn join(&mut self, scope: &str, key: &str, name: &str, client: u64) -> bool {
        let members = self.scopes.entry(scope.to_owned()).or_default();
        let member = members
            .entry(key.to_owned())
            .or_insert_with(|| LocalMember {
                name: name.to_owned(),
                clients: HashSet::new(),
            });
        let renamed = member.name != name;
        if renamed {
            member.name = name.to_owned();
        }
        let changed = member.clients.insert(client) || renamed;
        if changed {
            self.dirty.insert((scope.to_owned(), key.to_owned()));
        }
        changed
    }

    /// Takes `client` off `key` in `scope`; true when that changed anything.
    pub fn leave(&mut self, scope: &str, key: &str, client: u64) -> bool {
        let Some(members) = self.scopes.get_mut(scope) else {
            return false;
        };
        let Some(member) = members.get_mut(key) else {
            return false;
        };
        if !member.clients.remove(&client) {
            return false;
        }
        if member.clients.is_empty() {
            members.remove(key);
            if members.is_empty() {
                self.scopes.remove(scope);
            }
        }
        self.dirty.insert((scope.to_owned(), key.to_owned()));
        true
    }

    pub fn is_empty(&self) -> bool {
        self.scopes.is_empty()
    }

    pub fn has_changes(&self) -> bool {
        self.reset || !self.dirty.is_empty()
    }

    /// The next batch: every member with `reset`, else the dirty ones
    /// (0 connections for those gone). Returns whether it is a reset.
    pub fn take_batch(&mut self) -> (Vec<PresenceChange>, bool) {
        let reset = std::mem::take(&mut self.reset);
        let dirty = std::mem::take(&mut self.dirty);
        if reset {
            let all = self
                .scopes
                .iter()
                .flat_map(|(scope, members)| {
                    members
                        .iter()
                        .map(move |(key, member)| change(scope, key, member))
                })
                .collect();
            return (all, true);
        }
        let changes = dirty
            .into_iter()
            .map(
                |(scope, key)| match self.scopes.get(&scope).and_then(|m| m.get(&key)) {
                    Some(member) => change(&scope, &key, member),
                    None => PresenceChange {
                        scope,
                        entry: Some(PresenceEntry {
                            key,
                            name: String::new(),
                            connections: 0,
                        }),
                    },
                },
            )
            .collect();
        (changes, false)
    }
}

fn change(scope: &str, key: &str, member: &LocalMember) -> PresenceChange {
    PresenceChange {
        scope: scope.to_owned(),
        entry: Some(PresenceEntry {
            key: key.to_owned(),
            name: member.name.clone(),
            connections: u32::try_from(member.clients.len()).unwrap_or(u32::MAX),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_clients_of_one_key_are_one_entry_and_the_last_leave_sends_zero() {
        let mut local = Local::default();
        for client in 1..=3 {
            local.join("board:b", "ann", "Ann", client);
        }
        let (changes, reset) = local.take_batch();
        assert!(!reset);
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].entry.as_ref().unwrap().connections, 3);
        for client in 1..=3 {
            local.leave("board:b", "ann", client);
        }
        assert!(local.is_empty());
        let (changes, _) = local.take_batch();
        assert_eq!(changes[0].entry.as_ref().unwrap().connections, 0);
        assert!(!local.has_changes());
        assert!(
            !local.leave("board:b", "ann", 1),
            "leaving twice changes nothing"
        );
    }
}
