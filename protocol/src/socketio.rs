//! Seed 000's Socket.IO vocabulary: event names, the flat payloads clients
//! send and receive, and their conversion from and to the board frames, so
//! the gateway spells no event by hand.
//!
//! A room is a project, joined by id or slug with `join:project`: all its
//! boards, each event saying which (`boardId`). A board with no project is
//! joined the same way by its own id or slug. Every server event carries
//! `boardVersion`; a client that reconnects with the last one it saw per
//! board gets exactly the events after it, or `board:sync`.

use serde::{Deserialize, Serialize, de::IgnoredAny};

use crate::board_frames::{
    BoardSyncData, Change, Command, CreateTask, DeleteTask, EditChanges, EditTask, ErrorCode,
    LaneData, LaneDeletedData, Priority, ServerFrame, TaskChanges, TaskData, TaskKind,
};

/// Client → server event names.
pub mod incoming {
    pub const JOIN_PROJECT: &str = "join:project";
    pub const LEAVE_PROJECT: &str = "leave:project";
    pub const TASK_CREATE: &str = "task:create";
    pub const TASK_UPDATE: &str = "task:update";
    pub const TASK_DELETE: &str = "task:delete";
    pub const EPIC_UPDATE: &str = "epic:update";
}

/// Server → client event names.
pub mod outgoing {
    pub const TASK_CREATED: &str = "task:created";
    pub const TASK_UPDATED: &str = "task:updated";
    pub const TASK_DELETED: &str = "task:deleted";
    pub const TASK_STATUS_CHANGED: &str = "task:status_changed";
    pub const EPIC_CREATED: &str = "epic:created";
    pub const EPIC_UPDATED: &str = "epic:updated";
    pub const EPIC_DELETED: &str = "epic:deleted";
    pub const LANE_CREATED: &str = "lane:created";
    pub const LANE_UPDATED: &str = "lane:updated";
    pub const LANE_DELETED: &str = "lane:deleted";
    pub const PROJECT_CREATED: &str = "project:created";
    pub const PROJECT_UPDATED: &str = "project:updated";
    pub const SPRINT_CREATED: &str = "sprint:created";
    pub const SPRINT_STARTED: &str = "sprint:started";
    /// Followed by a `task:updated` (`changes.sprintId`) for each
    /// unfinished task the completion moved.
    pub const SPRINT_COMPLETED: &str = "sprint:completed";
    /// The whole board: replaces what the client holds (first join, or a
    /// resume the log can no longer serve).
    pub const BOARD_SYNC: &str = "board:sync";
    /// A refusal that answers no acknowledgement (a join without a callback).
    pub const NOTIFICATION: &str = "notification";
}

/// Where an event happened: the room (`projectId`, as the client joined it)
/// and the board with its version after the change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope {
    pub project_id: String,
    pub board_id: String,
    pub board_version: u64,
    /// The `requestId` of the write that made the change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command_id: Option<String>,
}

/// One Socket.IO event: its name and flat JSON payload.
#[derive(Debug, Clone, PartialEq)]
pub struct SioEvent {
    pub name: &'static str,
    pub payload: serde_json::Value,
}

#[derive(Serialize)]
struct Flat<'a, T: Serialize> {
    #[serde(flatten)]
    envelope: &'a Envelope,
    #[serde(flatten)]
    data: T,
}

fn flat<T: Serialize>(name: &'static str, envelope: &Envelope, data: T) -> SioEvent {
    let payload = serde_json::to_value(Flat { envelope, data })
        .unwrap_or_else(|_| serde_json::Value::Object(Default::default()));
    SioEvent { name, payload }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Updated<'a> {
    id: &'a str,
    #[serde(flatten)]
    changes: &'a TaskChanges,
    task_version: u64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Moved<'a> {
    id: &'a str,
    lane: &'a str,
    lane_id: &'a str,
    position: &'a str,
    task_version: u64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct StatusChanged<'a> {
    id: &'a str,
    from_lane: &'a str,
    lane: &'a str,
    task_version: u64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct StatusTextChanged<'a> {
    id: &'a str,
    status: &'a str,
    task_version: u64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Deleted<'a> {
    id: &'a str,
    lane: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Sync<'a> {
    #[serde(flatten)]
    data: &'a BoardSyncData,
}

/// Which tasks are epics, as far as a connection has seen: seed 000 names
/// their events `epic:*`. Fed by every frame in order.
#[derive(Debug, Default)]
pub struct Epics(std::collections::HashSet<String>);

impl Epics {
    fn note(&mut self, task: &TaskData) {
        if task.kind == TaskKind::Epic {
            self.0.insert(task.id.clone());
        } else {
            self.0.remove(&task.id);
        }
    }

    fn is_epic(&self, id: &str) -> bool {
        self.0.contains(id)
    }
}

/// The Socket.IO events for one board frame, in order; empty for frames
/// that are not about a board (`ack`, `error`, `pong`, `connected`).
/// `project_id` is the room the client joined the board as.
pub fn events_from_frame(
    frame: &ServerFrame,
    project_id: &str,
    epics: &mut Epics,
) -> Vec<SioEvent> {
    use outgoing::*;
    let envelope = |board_id: &str, version: u64, command_id: &Option<String>| Envelope {
        project_id: project_id.to_owned(),
        board_id: board_id.to_owned(),
        board_version: version,
        command_id: command_id.clone(),
    };
    match frame {
        ServerFrame::BoardSync(c) => {
            epics.0.clear();
            c.data
                .lanes
                .0
                .iter()
                .flat_map(|(_, t)| t)
                .for_each(|t| epics.note(t));
            let e = envelope(&c.board_id, c.version, &c.command_id);
            vec![flat(BOARD_SYNC, &e, Sync { data: &c.data })]
        }
        ServerFrame::TaskCreated(c) => {
            epics.note(&c.data);
            let name = if epics.is_epic(&c.data.id) {
                EPIC_CREATED
            } else {
                TASK_CREATED
            };
            vec![flat(
                name,
                &envelope(&c.board_id, c.version, &c.command_id),
                &c.data,
            )]
        }
        ServerFrame::TaskUpdated(c) => {
            let d = &c.data;
            match d.changes.kind {
                Some(TaskKind::Epic) => {
                    epics.0.insert(d.id.clone());
                }
                Some(_) => {
                    epics.0.remove(&d.id);
                }
                None => {}
            }
            let name = if epics.is_epic(&d.id) {
                EPIC_UPDATED
            } else {
                TASK_UPDATED
            };
            let updated = Updated {
                id: &d.id,
                changes: &d.changes,
                task_version: d.task_version,
            };
            let e = envelope(&c.board_id, c.version, &c.command_id);
            let mut events = vec![flat(name, &e, updated)];
            // Seed 000 fires it for a lane change and for a status change.
            if let Some(status) = &d.changes.status {
                let changed = StatusTextChanged {
                    id: &d.id,
                    status,
                    task_version: d.task_version,
                };
                events.push(flat(TASK_STATUS_CHANGED, &e, changed));
            }
            events
        }
        ServerFrame::TaskMoved(c) => {
            let d = &c.data;
            let e = envelope(&c.board_id, c.version, &c.command_id);
            let name = if epics.is_epic(&d.id) {
                EPIC_UPDATED
            } else {
                TASK_UPDATED
            };
            let moved = Moved {
                id: &d.id,
                lane: &d.to_lane,
                lane_id: &d.to_lane_id,
                position: &d.position,
                task_version: d.task_version,
            };
            let mut events = vec![flat(name, &e, moved)];
            if d.from_lane != d.to_lane {
                let changed = StatusChanged {
                    id: &d.id,
                    from_lane: &d.from_lane,
                    lane: &d.to_lane,
                    task_version: d.task_version,
                };
                events.push(flat(TASK_STATUS_CHANGED, &e, changed));
            }
            events
        }
        ServerFrame::TaskDeleted(c) => {
            let d = &c.data;
            let name = if epics.0.remove(&d.id) {
                EPIC_DELETED
            } else {
                TASK_DELETED
            };
            let deleted = Deleted {
                id: &d.id,
                lane: &d.lane,
            };
            vec![flat(
                name,
                &envelope(&c.board_id, c.version, &c.command_id),
                deleted,
            )]
        }
        ServerFrame::LaneCreated(c) => vec![lane(
            LANE_CREATED,
            &envelope(&c.board_id, c.version, &c.command_id),
            &c.data,
        )],
        ServerFrame::LaneUpdated(c) => vec![lane(
            LANE_UPDATED,
            &envelope(&c.board_id, c.version, &c.command_id),
            &c.data,
        )],
        ServerFrame::LaneDeleted(c) => {
            let e = envelope(&c.board_id, c.version, &c.command_id);
            let data: &LaneDeletedData = &c.data;
            data.moved_tasks.iter().for_each(|t| epics.note(t));
            vec![flat(LANE_DELETED, &e, data)]
        }
        ServerFrame::ProjectCreated(c) => vec![as_is(
            PROJECT_CREATED,
            &envelope(&c.board_id, c.version, &c.command_id),
            c,
        )],
        ServerFrame::ProjectUpdated(c) => vec![as_is(
            PROJECT_UPDATED,
            &envelope(&c.board_id, c.version, &c.command_id),
            c,
        )],
        ServerFrame::SprintCreated(c) => vec![as_is(
            SPRINT_CREATED,
            &envelope(&c.board_id, c.version, &c.command_id),
            c,
        )],
        ServerFrame::SprintStarted(c) => vec![as_is(
            SPRINT_STARTED,
            &envelope(&c.board_id, c.version, &c.command_id),
            c,
        )],
        ServerFrame::SprintCompleted(c) => vec![as_is(
            SPRINT_COMPLETED,
            &envelope(&c.board_id, c.version, &c.command_id),
            c,
        )],
        // Channels are not part of seed 000's vocabulary.
        ServerFrame::Publication(_)
        | ServerFrame::ChannelReset(_)
        | ServerFrame::Connected { .. }
        | ServerFrame::Ack(_)
        | ServerFrame::Error(_)
        | ServerFrame::Pong { .. }
        | ServerFrame::Presence(_)
        | ServerFrame::PresenceJoined(_)
        | ServerFrame::PresenceLeft(_) => Vec::new(),
    }
}

/// An event whose payload is the frame's data as it is.
fn as_is<T: Serialize>(name: &'static str, envelope: &Envelope, change: &Change<T>) -> SioEvent {
    flat(name, envelope, &change.data)
}

fn lane(name: &'static str, envelope: &Envelope, data: &LaneData) -> SioEvent {
    flat(name, envelope, data)
}

/// `join:project` / `leave:project`: seed 000 sends the id alone; an object
/// may add the last `boardVersion` seen, to resume: `sinceVersion` for a
/// board, `versions: {boardId: n}` for a project's boards.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum JoinPayload {
    Id(String),
    #[serde(rename_all = "camelCase")]
    Object {
        project_id: String,
        #[serde(default)]
        since_version: Option<u64>,
        #[serde(default)]
        versions: std::collections::HashMap<String, u64>,
    },
}

impl JoinPayload {
    /// The project's (or board's) id or slug.
    pub fn room(&self) -> &str {
        match self {
            Self::Id(id) | Self::Object { project_id: id, .. } => id,
        }
    }

    pub fn since_version(&self) -> Option<u64> {
        match self {
            Self::Id(_) => None,
            Self::Object { since_version, .. } => *since_version,
        }
    }

    /// The last version seen of `board`, as the join's `versions` give it.
    pub fn version_of(&self, board: &str) -> Option<u64> {
        match self {
            Self::Id(_) => None,
            Self::Object { versions, .. } => versions.get(board).copied(),
        }
    }
}

/// The `auth` payload of a connect: `{token?, versions?: {boardIdOrSlug: n}}`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectAuth {
    #[serde(default)]
    pub token: Option<String>,
    /// The last `boardVersion` seen per board, keyed by id or by the room
    /// joined; a later `join:project` resumes from it.
    #[serde(default)]
    pub versions: std::collections::HashMap<String, u64>,
}

/// A flat task write (`task:create`, `task:update`, `epic:update`,
/// `task:delete`): seed 000's `{projectId, boardId?, id | taskId, …task
/// fields}`. Fields a client echoes back from an event (`boardVersion`,
/// `createdAt`, …) are accepted and ignored; any other unknown field is
/// refused, so nothing a client asks for is silently dropped.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
// The echoed fields are only there to be accepted.
#[allow(dead_code)]
pub struct TaskPayload {
    #[serde(default)]
    pub project_id: Option<String>,
    #[serde(default)]
    pub board_id: Option<String>,
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub task_id: Option<String>,
    /// Idempotency key; the gateway makes one when absent.
    #[serde(default)]
    pub request_id: Option<String>,
    /// The task's version the client last saw.
    #[serde(default)]
    pub expected_version: Option<u64>,
    #[serde(default)]
    pub title: Option<String>,
    /// Lane key: where a created task goes, or where an update moves it.
    #[serde(default)]
    pub lane: Option<String>,
    #[serde(default)]
    pub lane_id: Option<String>,
    /// With `lane` on an update: place next to this task.
    #[serde(default)]
    pub before: Option<String>,
    #[serde(default)]
    pub after: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub priority: Option<Priority>,
    #[serde(default)]
    pub kind: Option<TaskKind>,
    #[serde(default)]
    pub estimated_hours: Option<f64>,
    #[serde(default)]
    pub assignee: Option<String>,
    #[serde(default)]
    pub labels: Option<Vec<String>>,
    /// Free text beside the lane; "" clears it.
    #[serde(default)]
    pub status: Option<String>,
    /// The epic the task belongs to; `null` takes it out.
    #[serde(default, with = "crate::board_frames::nullable")]
    pub parent_id: Option<Option<String>>,
    /// The sprint the task is planned in; `null` puts it back in the backlog.
    #[serde(default, with = "crate::board_frames::nullable")]
    pub sprint_id: Option<Option<String>>,
    #[serde(default)]
    board_version: Option<IgnoredAny>,
    #[serde(default)]
    progress: Option<IgnoredAny>,
    #[serde(default)]
    task_version: Option<IgnoredAny>,
    #[serde(default)]
    version: Option<IgnoredAny>,
    #[serde(default)]
    command_id: Option<IgnoredAny>,
    #[serde(default)]
    position: Option<IgnoredAny>,
    #[serde(default)]
    created_at: Option<IgnoredAny>,
    #[serde(default)]
    updated_at: Option<IgnoredAny>,
}

/// Why a payload cannot become a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayloadError(pub String);

impl TaskPayload {
    /// Parses an event's payload, naming the field that does not decode.
    pub fn parse(value: serde_json::Value) -> Result<Self, PayloadError> {
        serde_path_to_error::deserialize(value).map_err(|e| {
            let path = e.path().to_string();
            PayloadError(if path == "." {
                e.into_inner().to_string()
            } else {
                format!("{path}: {}", e.into_inner())
            })
        })
    }

    /// The board: `boardId`, else the room (`projectId`).
    fn board(&self) -> Result<String, PayloadError> {
        self.board_id
            .clone()
            .or_else(|| self.project_id.clone())
            .ok_or_else(|| PayloadError("boardId or projectId is required".into()))
    }

    fn task(&self) -> Result<String, PayloadError> {
        match (&self.id, &self.task_id) {
            (Some(_), Some(_)) => Err(PayloadError("id and taskId are exclusive: give one".into())),
            (Some(id), None) | (None, Some(id)) => Ok(id.clone()),
            (None, None) => Err(PayloadError("id (or taskId) is required".into())),
        }
    }

    fn command<T>(&self, request_id: String, data: T) -> Result<Command<T>, PayloadError> {
        Ok(Command {
            id: self.request_id.clone().unwrap_or(request_id),
            board_id: self.board()?,
            data,
            expected_version: self.expected_version,
        })
    }

    /// `task:create`; `request_id` is used when the payload has no `requestId`.
    pub fn to_create(&self, request_id: String) -> Result<Command<CreateTask>, PayloadError> {
        let title = self
            .title
            .clone()
            .ok_or_else(|| PayloadError("title is required".into()))?;
        if self.id.is_some() || self.task_id.is_some() {
            return Err(PayloadError("a new task has no id: leave id out".into()));
        }
        self.command(
            request_id,
            CreateTask {
                title,
                lane: self.lane.clone(),
                lane_id: self.lane_id.clone(),
                description: self.description.clone(),
                priority: self.priority,
                kind: self.kind,
                estimated_hours: self.estimated_hours,
                assignee: self.assignee.clone(),
                labels: self.labels.clone(),
                status: self.status.clone(),
                parent_id: self.parent_id.clone().flatten(),
                sprint_id: self.sprint_id.clone().flatten(),
            },
        )
    }

    /// `task:update` / `epic:update`: field changes, and a move when `lane`
    /// (or `laneId`) is given.
    pub fn to_edit(&self, request_id: String) -> Result<Command<EditTask>, PayloadError> {
        let changes = EditChanges {
            lane: self.lane.clone(),
            lane_id: self.lane_id.clone(),
            fields: TaskChanges {
                title: self.title.clone(),
                description: self.description.clone(),
                priority: self.priority,
                kind: self.kind,
                estimated_hours: self.estimated_hours,
                assignee: self.assignee.clone(),
                labels: self.labels.clone(),
                status: self.status.clone(),
                parent_id: self.parent_id.clone(),
                sprint_id: self.sprint_id.clone(),
                progress: None,
            },
        };
        let data = EditTask {
            id: self.task()?,
            changes,
            before: self.before.clone(),
            after: self.after.clone(),
        };
        self.command(request_id, data)
    }

    pub fn to_delete(&self, request_id: String) -> Result<Command<DeleteTask>, PayloadError> {
        self.command(request_id, DeleteTask { id: self.task()? })
    }
}

/// A write's acknowledgement: `{ok: true, task, version}` (`version` is the
/// task's, for `expectedVersion`), `{ok: true, id, boardVersion}` for a
/// delete, `{ok: true, boardId, slug}` for a board's join, `{ok: true,
/// projectId, boardIds}` for a project's, or `{ok: false, error}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AckPayload {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<Box<TaskData>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub board_version: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub board_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slug: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_id: Option<String>,
    /// A project's boards the join (or leave) concerned, oldest first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub board_ids: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<AckError>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AckError {
    pub code: ErrorCode,
    pub message: String,
}

impl AckPayload {
    fn ok() -> Self {
        Self {
            ok: true,
            task: None,
            version: None,
            id: None,
            board_version: None,
            board_id: None,
            slug: None,
            project_id: None,
            board_ids: None,
            error: None,
        }
    }

    /// A project joined (or left): its id and the boards concerned.
    pub fn joined_project(project_id: &str, board_ids: Vec<String>) -> Self {
        Self {
            project_id: Some(project_id.to_owned()),
            board_ids: Some(board_ids),
            ..Self::ok()
        }
    }

    pub fn refused(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            ok: false,
            error: Some(AckError {
                code,
                message: message.into(),
            }),
            ..Self::ok()
        }
    }

    /// The acknowledgement an `ack` or `error` frame stands for; `None` for
    /// other frames.
    pub fn from_frame(frame: &ServerFrame) -> Option<Self> {
        use crate::board_frames::AckResult;
        let empty = Self::ok();
        match frame {
            ServerFrame::Ack(ack) => Some(match &ack.result {
                Some(AckResult::Task(task)) => Self {
                    version: Some(task.version),
                    task: Some(task.clone()),
                    ..empty
                },
                Some(AckResult::Deleted {
                    task_id,
                    board_version,
                }) => Self {
                    id: Some(task_id.clone()),
                    board_version: Some(*board_version),
                    ..empty
                },
                Some(AckResult::Subscribed { board_id, slug }) => Self {
                    board_id: Some(board_id.clone()),
                    slug: Some(slug.clone()),
                    ..empty
                },
                Some(AckResult::ChannelSubscribed(_) | AckResult::Published(_)) | None => empty,
            }),
            ServerFrame::Error(error) => Some(Self::refused(error.code, error.message.clone())),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests;
