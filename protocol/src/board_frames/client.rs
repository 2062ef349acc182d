//! Frames clients send, and how a text frame is parsed into one.

use serde::{Deserialize, Serialize};

use super::server::{ErrorCode, Priority, TaskChanges, TaskKind};
use crate::channel_frames::{Publish, SubscribeChannel, UnsubscribeChannel};

/// A frame from a client to the gateway.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum ClientFrame {
    /// Start receiving a board (id or slug). Without `sinceVersion` the first
    /// frame is `board.sync`; with it, exactly the frames after that version.
    #[serde(rename = "subscribe", rename_all = "camelCase")]
    Subscribe {
        board_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        since_version: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
    },
    #[serde(rename = "unsubscribe", rename_all = "camelCase")]
    Unsubscribe {
        board_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
    },
    #[serde(rename = "ping")]
    Ping {},
    /// Authenticates a connection opened without a token. Seed 004's
    /// agents send `{type: "auth", agent_id, session_id}` with no token:
    /// accepted as is while auth is off.
    #[serde(rename = "auth")]
    Auth {
        #[serde(default)]
        token: String,
    },
    #[serde(rename = "task.create")]
    TaskCreate(Command<CreateTask>),
    /// Field changes, a move (`changes.lane`), or both.
    #[serde(rename = "task.update")]
    TaskUpdate(Command<EditTask>),
    #[serde(rename = "task.move")]
    TaskMove(Command<MoveTask>),
    #[serde(rename = "task.delete")]
    TaskDelete(Command<DeleteTask>),
    /// `subscribe` naming a `channel` instead of a `boardId` (the parser
    /// tells them apart; `channel.subscribe` is accepted as well).
    #[serde(rename = "channel.subscribe")]
    SubscribeChannel(SubscribeChannel),
    #[serde(rename = "channel.unsubscribe")]
    UnsubscribeChannel(UnsubscribeChannel),
    #[serde(rename = "publish")]
    Publish(Publish),
    /// Who is on a subscribed board (`boardId`) or channel (`channel`):
    /// answered by `presence`, then `presence.joined` / `presence.left`
    /// while subscribed.
    #[serde(rename = "presence", rename_all = "camelCase")]
    Presence {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        board_id: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        channel: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
    },
}

/// A change request, answered by `ack` or `error` with the same `id`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Command<T> {
    /// Request id, also the idempotency key: use a fresh UUID per command.
    pub id: String,
    pub board_id: String,
    pub data: T,
    /// The task's version as the client last saw it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_version: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateTask {
    pub title: String,
    /// Lane key; or give `laneId`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lane: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lane_id: Option<String>,
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
    /// Free text beside the lane (seed 003's `status`); not the lane key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// An epic on the same board; `null` or absent for none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<String>,
    /// A planned or active sprint on the same board; `null` or absent for
    /// none (the backlog).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sprint_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateTask {
    pub id: String,
    pub changes: TaskChanges,
}

/// The data of a `task.update` frame. `changes.lane` (or `changes.laneId`)
/// moves the task, as seed 003's clients expect: to the end of that lane,
/// or next to `before` / `after`. The other changes update its fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EditTask {
    pub id: String,
    pub changes: EditChanges,
    /// With `changes.lane`: place right before this task id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<String>,
    /// With `changes.lane`: place right after this task id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
}

/// `task.update`'s `changes`: a target lane beside the task's editable
/// fields, which keep [`TaskChanges`]' rules (an unknown field is refused).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EditChanges {
    /// Lane key to move the task to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lane: Option<String>,
    /// Lane id to move the task to; instead of `lane`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lane_id: Option<String>,
    #[serde(flatten)]
    pub fields: TaskChanges,
}

impl<'de> Deserialize<'de> for EditChanges {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let mut map = serde_json::Map::<String, serde_json::Value>::deserialize(deserializer)?;
        let mut lane_field = |name: &str| match map.remove(name) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(serde_json::Value::String(lane)) => Ok(Some(lane)),
            Some(other) => Err(D::Error::custom(format!(
                "{name}: invalid type: {other}, expected a string"
            ))),
        };
        let lane = lane_field("lane")?;
        let lane_id = lane_field("laneId")?;
        // Through path_to_error, so a mistyped field is named (`title: …`).
        let fields = serde_path_to_error::deserialize(serde_json::Value::Object(map))
            .map_err(|e| D::Error::custom(format!("{}: {}", e.path(), e.inner())))?;
        Ok(Self {
            lane,
            lane_id,
            fields,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MoveTask {
    pub id: String,
    /// Lane key; or give `toLaneId`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_lane: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_lane_id: Option<String>,
    /// Place right before this task id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<String>,
    /// Place right after this task id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeleteTask {
    pub id: String,
}

/// Why a text frame is not a [`ClientFrame`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameError {
    pub code: ErrorCode,
    pub message: String,
    /// The frame's `id`, when it had a readable one.
    pub id: Option<String>,
}

const KNOWN_TYPES: [&str; 12] = [
    "subscribe",
    "unsubscribe",
    "ping",
    "auth",
    "task.create",
    "task.update",
    "task.move",
    "task.delete",
    "publish",
    "channel.subscribe",
    "channel.unsubscribe",
    "presence",
];

impl ClientFrame {
    /// Parses a text frame, telling bad JSON, an unknown `type` and a
    /// missing or mistyped field apart.
    pub fn parse(text: &str) -> Result<Self, FrameError> {
        let mut value: serde_json::Value = serde_json::from_str(text).map_err(|e| FrameError {
            code: ErrorCode::InvalidJson,
            message: format!("frame is not valid JSON: {e}"),
            id: None,
        })?;
        // `subscribe` / `unsubscribe` name a board or a channel.
        if value.get("channel").is_some()
            && let Some(kind @ ("subscribe" | "unsubscribe")) =
                value.get("type").and_then(|v| v.as_str())
        {
            value["type"] = format!("channel.{kind}").into();
        }
        let id = value.get("id").and_then(|v| v.as_str()).map(str::to_owned);
        let fail = |code, message: String| FrameError {
            code,
            message,
            id: id.clone(),
        };
        let Some(kind) = value.get("type").and_then(|v| v.as_str()) else {
            return Err(fail(
                ErrorCode::InvalidFrame,
                "type is required and must be a string".into(),
            ));
        };
        if !KNOWN_TYPES.contains(&kind) {
            return Err(fail(
                ErrorCode::UnknownType,
                format!(
                    "unknown type {kind:?}; expected one of {}",
                    KNOWN_TYPES.join(", ")
                ),
            ));
        }
        let kind = kind.to_owned();
        let frame: Self = match serde_json::from_value(value.clone()) {
            Ok(frame) => frame,
            Err(e) => {
                // A tagged enum loses the path; find the field that failed.
                let message = match failed_field(&kind, &value) {
                    Some((field, why)) => format!("invalid {kind} frame: {field}: {why}"),
                    None => format!("invalid {kind} frame: {e}"),
                };
                return Err(fail(ErrorCode::InvalidFrame, message));
            }
        };
        frame.check().map_err(|message| {
            let code = match frame.channel() {
                Some(channel) if crate::channel_frames::check_name(channel).is_err() => {
                    ErrorCode::InvalidChannel
                }
                _ => ErrorCode::InvalidFrame,
            };
            fail(code, message)
        })?;
        Ok(frame)
    }

    /// The channel a channel frame names.
    pub fn channel(&self) -> Option<&str> {
        match self {
            Self::SubscribeChannel(c) => Some(&c.channel),
            Self::UnsubscribeChannel(c) => Some(&c.channel),
            Self::Publish(p) => Some(&p.channel),
            _ => None,
        }
    }

    /// Rules serde cannot say: ids are non-empty, single-line and bounded;
    /// a move names at most one neighbour. [`ClientFrame::parse`] applies
    /// them; a frame built another way (from a Socket.IO event) calls this.
    pub fn check(&self) -> Result<(), String> {
        let command_id = match self {
            Self::TaskCreate(c) => Some(&c.id),
            Self::TaskUpdate(c) => Some(&c.id),
            Self::TaskMove(c) => Some(&c.id),
            Self::TaskDelete(c) => Some(&c.id),
            Self::Subscribe { id, .. }
            | Self::Unsubscribe { id, .. }
            | Self::Presence { id, .. } => id.as_ref(),
            Self::SubscribeChannel(c) => c.id.as_ref(),
            Self::UnsubscribeChannel(c) => c.id.as_ref(),
            Self::Publish(p) => p.id.as_ref(),
            Self::Ping {} | Self::Auth { .. } => None,
        };
        if let Some(id) = command_id {
            check_id("id", id)?;
        }
        match self {
            Self::TaskMove(c) if c.data.before.is_some() && c.data.after.is_some() => {
                Err("data.before and data.after are exclusive: give one neighbour".into())
            }
            Self::TaskUpdate(c) => check_edit(c),
            Self::TaskMove(c) => check_id("data.id", &c.data.id),
            Self::TaskDelete(c) => check_id("data.id", &c.data.id),
            Self::SubscribeChannel(c) => {
                crate::channel_frames::check_name(&c.channel)?;
                match (&c.since_offset, &c.epoch) {
                    (Some(_), None) => Err("sinceOffset needs the epoch it was seen in".into()),
                    (_, Some(epoch)) => check_id("epoch", epoch),
                    _ => Ok(()),
                }
            }
            Self::UnsubscribeChannel(c) => crate::channel_frames::check_name(&c.channel),
            Self::Publish(p) => {
                crate::channel_frames::check_name(&p.channel)?;
                check_id("event", &p.event)?;
                if p.event.len() > crate::channel_frames::EVENT_MAX {
                    let max = crate::channel_frames::EVENT_MAX;
                    return Err(format!("event must be at most {max} bytes"));
                }
                Ok(())
            }
            Self::Presence {
                board_id, channel, ..
            } if board_id.is_some() == channel.is_some() => {
                Err("presence takes one of boardId and channel".into())
            }
            _ => Ok(()),
        }
    }
}

/// The field of a `kind` frame that does not decode, and why, so the error
/// can name it (`data.title: invalid type: integer, expected a string`).
fn failed_field(kind: &str, value: &serde_json::Value) -> Option<(String, String)> {
    fn path_of<T: serde::de::DeserializeOwned>(
        value: &serde_json::Value,
    ) -> Option<(String, String)> {
        let err = serde_path_to_error::deserialize::<_, T>(value.clone()).err()?;
        Some((err.path().to_string(), err.into_inner().to_string()))
    }
    match kind {
        "task.create" => path_of::<Command<CreateTask>>(value),
        "task.update" => path_of::<Command<EditTask>>(value),
        "task.move" => path_of::<Command<MoveTask>>(value),
        "task.delete" => path_of::<Command<DeleteTask>>(value),
        "channel.subscribe" => path_of::<SubscribeChannel>(value),
        "channel.unsubscribe" => path_of::<UnsubscribeChannel>(value),
        "publish" => path_of::<Publish>(value),
        _ => {
            #[derive(Deserialize)]
            #[serde(rename_all = "camelCase")]
            #[allow(dead_code)]
            struct Control {
                board_id: Option<String>,
                since_version: Option<u64>,
                id: Option<String>,
                token: Option<String>,
                channel: Option<String>,
            }
            path_of::<Control>(value)
        }
    }
}

/// A `task.update` names its task, at most one neighbour and only with a
/// lane, and leaves room in `id` for the move's derived id.
fn check_edit(c: &Command<EditTask>) -> Result<(), String> {
    check_id("data.id", &c.data.id)?;
    let changes = &c.data.changes;
    if changes.fields.progress.is_some() {
        return Err(
            "data.changes.progress is derived from the epic's tasks and cannot be set".into(),
        );
    }
    let moves = changes.lane.is_some() || changes.lane_id.is_some();
    if changes.lane.is_some() && changes.lane_id.is_some() {
        return Err("data.changes.lane and data.changes.laneId are exclusive: give one".into());
    }
    if c.data.before.is_some() && c.data.after.is_some() {
        return Err("data.before and data.after are exclusive: give one neighbour".into());
    }
    if !moves && (c.data.before.is_some() || c.data.after.is_some()) {
        return Err("data.before and data.after place a move: give data.changes.lane too".into());
    }
    if moves && c.update().is_some() && c.id.len() > ID_MAX - MOVE_SUFFIX.len() {
        return Err(format!(
            "id must be at most {} bytes when changes moves the task and edits fields",
            ID_MAX - MOVE_SUFFIX.len()
        ));
    }
    Ok(())
}

/// Appended to a `task.update`'s id for the move it makes beside a field
/// update: each board-service call needs its own idempotency key.
pub(super) const MOVE_SUFFIX: &str = ":move";

/// The longest `id` a frame may carry (board-service's request_id limit).
pub const ID_MAX: usize = 200;

fn check_id(field: &str, id: &str) -> Result<(), String> {
    if id.trim().is_empty() {
        return Err(format!("{field} must not be empty"));
    }
    if id.len() > ID_MAX {
        return Err(format!("{field} must be at most {ID_MAX} bytes"));
    }
    if id.chars().any(char::is_control) {
        return Err(format!("{field} must not contain control characters"));
    }
    Ok(())
}
