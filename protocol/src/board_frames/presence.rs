//! Presence frames: who is on a board (or a channel) right now.
//!
//! `presence` is the whole list (the answer to a `presence` query when it
//! carries `id`); `presence.joined` carries entries that are new or whose
//! name or connection count changed (upsert them by `key`), and
//! `presence.left` entries that are gone. Above the gateway's member limit
//! only `presence` frames are sent, with `count` and no `entries`.

use serde::{Deserialize, Serialize};

/// One person: a token's `sub` (or a connection id with auth off), a
/// display name and how many connections they have open, over every gateway.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PresenceEntry {
    pub key: String,
    pub name: String,
    pub connections: u32,
}

/// What a presence frame is about: a board or a channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PresenceTarget {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub board_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
}

/// `presence`: the members, or only their `count` above the member limit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PresenceList {
    #[serde(flatten)]
    pub target: PresenceTarget,
    /// The query's `id`; absent on frames the gateway pushes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Absent when there are more members than the gateway lists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entries: Option<Vec<PresenceEntry>>,
    pub count: u64,
}

/// `presence.joined` / `presence.left`: the entries that changed, with the
/// member count after the change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PresenceChange {
    #[serde(flatten)]
    pub target: PresenceTarget,
    pub entries: Vec<PresenceEntry>,
    pub count: u64,
}
