//! Frames the gateway sends.

use serde::{Deserialize, Serialize};

/// A frame from the gateway to a client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum ServerFrame {
    /// First frame on every connection.
    #[serde(rename = "connected", rename_all = "camelCase")]
    Connected {
        client_id: String,
        heartbeat_ms: u64,
    },
    /// The whole board at `version`; replaces whatever the client held.
    #[serde(rename = "board.sync")]
    BoardSync(Change<BoardSyncData>),
    #[serde(rename = "task.created")]
    TaskCreated(Change<TaskData>),
    #[serde(rename = "task.updated")]
    TaskUpdated(Change<TaskUpdatedData>),
    #[serde(rename = "task.moved")]
    TaskMoved(Change<TaskMovedData>),
    #[serde(rename = "task.deleted")]
    TaskDeleted(Change<TaskDeletedData>),
    #[serde(rename = "lane.created")]
    LaneCreated(Change<LaneData>),
    #[serde(rename = "lane.updated")]
    LaneUpdated(Change<LaneData>),
    #[serde(rename = "lane.deleted")]
    LaneDeleted(Change<LaneDeletedData>),
    #[serde(rename = "project.created")]
    ProjectCreated(Change<ProjectData>),
    /// The project was renamed, or a board joined or left it.
    #[serde(rename = "project.updated")]
    ProjectUpdated(Change<ProjectData>),
    #[serde(rename = "sprint.created")]
    SprintCreated(Change<SprintData>),
    #[serde(rename = "sprint.started")]
    SprintStarted(Change<SprintData>),
    /// The sprint completed; a `task.updated` (`changes.sprintId`) follows
    /// for each unfinished task it moved.
    #[serde(rename = "sprint.completed")]
    SprintCompleted(Change<SprintData>),
    /// A channel delivery.
    #[serde(rename = "publication")]
    Publication(crate::channel_frames::Publication),
    /// The channel lost history this subscription had not received (its
    /// epoch changed): what follows starts afresh at `offset`.
    #[serde(rename = "channel.reset")]
    ChannelReset(crate::channel_frames::ChannelPosition),
    /// The answer to a command or a `subscribe` that carried an `id`.
    #[serde(rename = "ack")]
    Ack(Ack),
    #[serde(rename = "error")]
    Error(ErrorFrame),
    #[serde(rename = "pong")]
    Pong { ts: i64 },
    /// Who is on a board: the whole list, or only a count (`presence.rs`).
    #[serde(rename = "presence")]
    Presence(super::PresenceList),
    #[serde(rename = "presence.joined")]
    PresenceJoined(super::PresenceChange),
    #[serde(rename = "presence.left")]
    PresenceLeft(super::PresenceChange),
}

impl ServerFrame {
    /// The frame's `type` as it goes on the wire (SSE uses it as `event:`);
    /// a test holds it to the serde tag above.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Connected { .. } => "connected",
            Self::BoardSync(_) => "board.sync",
            Self::TaskCreated(_) => "task.created",
            Self::TaskUpdated(_) => "task.updated",
            Self::TaskMoved(_) => "task.moved",
            Self::TaskDeleted(_) => "task.deleted",
            Self::LaneCreated(_) => "lane.created",
            Self::LaneUpdated(_) => "lane.updated",
            Self::LaneDeleted(_) => "lane.deleted",
            Self::ProjectCreated(_) => "project.created",
            Self::ProjectUpdated(_) => "project.updated",
            Self::SprintCreated(_) => "sprint.created",
            Self::SprintStarted(_) => "sprint.started",
            Self::SprintCompleted(_) => "sprint.completed",
            Self::Publication(_) => "publication",
            Self::ChannelReset(_) => "channel.reset",
            Self::Ack(_) => "ack",
            Self::Error(_) => "error",
            Self::Pong { .. } => "pong",
            Self::Presence(_) => "presence",
            Self::PresenceJoined(_) => "presence.joined",
            Self::PresenceLeft(_) => "presence.left",
        }
    }

    /// When a board change was committed, in ms; `None` for other frames.
    pub fn committed_ms(&self) -> Option<i64> {
        match self {
            Self::BoardSync(c) => Some(c.ts),
            Self::TaskCreated(c) => Some(c.ts),
            Self::TaskUpdated(c) => Some(c.ts),
            Self::TaskMoved(c) => Some(c.ts),
            Self::TaskDeleted(c) => Some(c.ts),
            Self::LaneCreated(c) => Some(c.ts),
            Self::LaneUpdated(c) => Some(c.ts),
            Self::LaneDeleted(c) => Some(c.ts),
            Self::ProjectCreated(c) => Some(c.ts),
            Self::ProjectUpdated(c) => Some(c.ts),
            Self::SprintCreated(c) => Some(c.ts),
            Self::SprintStarted(c) => Some(c.ts),
            Self::SprintCompleted(c) => Some(c.ts),
            Self::Publication(p) => Some(p.timestamp),
            Self::Connected { .. }
            | Self::ChannelReset(_)
            | Self::Ack(_)
            | Self::Error(_)
            | Self::Pong { .. } => None,
            Self::Presence(_) | Self::PresenceJoined(_) | Self::PresenceLeft(_) => None,
        }
    }

    /// The frame as JSON text.
    pub fn to_json(&self) -> String {
        crate::json::encode(self)
    }
}

/// The envelope of every frame about a board.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Change<T> {
    pub board_id: String,
    /// The board version after this change.
    pub version: u64,
    /// When the change was committed, in ms since the Unix epoch.
    pub ts: i64,
    /// The `id` of the command that made the change, if one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command_id: Option<String>,
    pub data: T,
}

/// `board.sync` data: tasks grouped by lane key, in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BoardSyncData {
    pub lanes: LaneTasks,
    /// Lane keys in display order.
    pub lane_order: Vec<String>,
    pub board: BoardInfo,
}

/// Each lane's tasks, keyed by lane key, with the keys in the board's lane
/// order: seed 003's clients render lanes by iterating this object.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LaneTasks(pub Vec<(String, Vec<TaskData>)>);

impl LaneTasks {
    /// The tasks of lane `key`.
    pub fn get(&self, key: &str) -> Option<&Vec<TaskData>> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, tasks)| tasks)
    }
}

impl Serialize for LaneTasks {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (key, tasks) in &self.0 {
            map.serialize_entry(key, tasks)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for LaneTasks {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct InOrder;
        impl<'de> serde::de::Visitor<'de> for InOrder {
            type Value = LaneTasks;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object of lane keys to task lists")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<LaneTasks, A::Error> {
                let mut lanes = Vec::new();
                while let Some(entry) = map.next_entry()? {
                    lanes.push(entry);
                }
                Ok(LaneTasks(lanes))
            }
        }
        deserializer.deserialize_map(InOrder)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BoardInfo {
    pub id: String,
    pub slug: String,
    pub name: String,
    /// Lanes in display order.
    pub lanes: Vec<LaneFrame>,
    pub created_at: i64,
    /// The project the board belongs to, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_id: Option<String>,
}

/// A project as frames carry it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProjectData {
    pub id: String,
    pub slug: String,
    pub name: String,
    pub description: String,
    /// The project's own version.
    pub version: u64,
    /// Its boards' ids, oldest first.
    pub board_ids: Vec<String>,
    pub created_at: i64,
    pub updated_at: i64,
    /// In `project.updated`: what changed (`name`, `description`, `boardIds`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changed: Vec<String>,
}

/// A sprint as frames carry it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SprintData {
    pub id: String,
    pub name: String,
    pub goal: String,
    pub state: SprintState,
    /// In ms since the Unix epoch.
    pub starts_at: i64,
    pub ends_at: i64,
    /// The sprint's own version.
    pub version: u64,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SprintState {
    Planned,
    Active,
    Completed,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LaneFrame {
    pub id: String,
    pub key: String,
    pub name: String,
    pub position: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wip_limit: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    Low,
    Medium,
    High,
    Critical,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskKind {
    Task,
    Story,
    Bug,
    Epic,
}

/// A task as frames carry it; `lane` is the lane key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskData {
    pub id: String,
    pub lane: String,
    pub lane_id: String,
    pub title: String,
    pub description: String,
    pub priority: Priority,
    pub kind: TaskKind,
    pub estimated_hours: f64,
    pub assignee: String,
    pub labels: Vec<String>,
    /// Free text beside the lane (seed 003's `status`); "" when unset.
    #[serde(default)]
    pub status: String,
    /// The epic this task belongs to; `null` for none.
    #[serde(default)]
    pub parent_id: Option<String>,
    /// The sprint this task is planned in; `null` for none (the backlog).
    #[serde(default)]
    pub sprint_id: Option<String>,
    /// Epics only: how many of their tasks are done, of how many.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<Progress>,
    /// Order key inside the lane; sort by plain string comparison.
    pub position: String,
    /// The task's own version, for `expectedVersion`.
    pub version: u64,
    pub created_at: i64,
    pub updated_at: i64,
}

/// The editable fields of a task; in `task.updated` only those that changed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TaskChanges {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<Priority>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<TaskKind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimated_hours: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignee: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<Vec<String>>,
    /// Free text, not the lane; "" clears it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// An epic's id; `null` takes the task out of its epic.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "nullable")]
    pub parent_id: Option<Option<String>>,
    /// A planned or active sprint's id; `null` puts the task back in the
    /// backlog.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "nullable")]
    pub sprint_id: Option<Option<String>>,
    /// Server to client only: an epic's new progress. Derived from its
    /// tasks, so a `task.update` that sets it is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<Progress>,
}

/// An epic's progress: `done` of its `total` tasks are in the `done` lane.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    pub done: u32,
    pub total: u32,
}

/// A field that is absent (`None`), `null` (`Some(None)`) or a value.
pub(crate) mod nullable {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer, T: Serialize>(
        value: &Option<Option<T>>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(inner) => inner.serialize(serializer),
            None => serializer.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
        deserializer: D,
    ) -> Result<Option<Option<T>>, D::Error> {
        Option::<T>::deserialize(deserializer).map(Some)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskUpdatedData {
    pub id: String,
    pub changes: TaskChanges,
    pub task_version: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskMovedData {
    pub id: String,
    /// Lane keys.
    pub from_lane: String,
    pub to_lane: String,
    pub from_lane_id: String,
    pub to_lane_id: String,
    pub position: String,
    pub task_version: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskDeletedData {
    pub id: String,
    /// The key of the lane it was in.
    pub lane: String,
}

/// `lane.created` / `lane.updated`: the lane, and every lane in order after the change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LaneData {
    pub lane: LaneFrame,
    pub lanes: Vec<LaneFrame>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LaneDeletedData {
    pub lane: LaneFrame,
    pub lanes: Vec<LaneFrame>,
    /// Tasks moved out of the deleted lane, in their new state.
    pub moved_tasks: Vec<TaskData>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Ack {
    /// The `id` of the command or subscribe.
    pub id: String,
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<AckResult>,
}

/// What a successful command or subscribe produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AckResult {
    /// `task.create`, `task.update`, `task.move`: the task after the change.
    Task(Box<TaskData>),
    /// `task.delete`.
    #[serde(rename_all = "camelCase")]
    Deleted {
        task_id: String,
        board_version: u64,
    },
    /// `subscribe` and `unsubscribe`.
    #[serde(rename_all = "camelCase")]
    Subscribed {
        board_id: String,
        slug: String,
    },
    /// Before `Published`: untagged, the wider shape must be tried first.
    ChannelSubscribed(crate::channel_frames::ChannelPosition),
    Published(crate::channel_frames::Published),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorFrame {
    pub code: ErrorCode,
    /// Names the field and the rule, or the limit.
    pub message: String,
    /// The `id` of the frame that failed, if it had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub board_id: Option<String>,
}

/// Why a frame failed; the connection stays open for all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Not JSON at all.
    InvalidJson,
    /// JSON with a `type` the gateway does not know.
    UnknownType,
    /// A missing field or a field of the wrong type.
    InvalidFrame,
    /// A channel name breaks the naming rules (seed 004's `INVALID_CHANNEL`).
    InvalidChannel,
    /// Binary frames are not part of the protocol.
    UnsupportedFrame,
    /// No valid token and the gateway requires one.
    Unauthorized,
    /// The token does not grant this board.
    Forbidden,
    NotFound,
    InvalidArgument,
    /// `expectedVersion` no longer matches.
    VersionConflict,
    /// The board refuses the change (WIP limit, anchor not in lane, ...).
    FailedPrecondition,
    AlreadyExists,
    NotSubscribed,
    TooManySubscriptions,
    /// Over the per-connection message rate; the frame was ignored.
    RateLimited,
    /// board-service is unreachable; retry.
    Unavailable,
    Internal,
}
