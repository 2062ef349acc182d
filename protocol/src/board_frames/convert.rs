//! gRPC messages → frames, and command frames → gRPC requests. The only
//! place either mapping is written.

use crate::{
    event_type,
    time::timestamp_ms,
    v1::{
        self, Board, BoardEvent, CreateTaskRequest, DeleteTaskRequest, Labels, Lane,
        MoveTaskRequest, Project, Sprint, Task, UpdateTaskRequest, move_task_request::Anchor,
    },
};

use super::{
    client::{Command, CreateTask, DeleteTask, EditTask, MOVE_SUFFIX, MoveTask, UpdateTask},
    server::*,
};

/// A lane as frames carry it.
pub fn lane_frame(lane: &Lane) -> LaneFrame {
    LaneFrame {
        id: lane.id.clone(),
        key: lane.key.clone(),
        name: lane.name.clone(),
        position: lane.position,
        wip_limit: lane.wip_limit,
    }
}

impl Priority {
    /// The name frames carry (the serde name).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
            Self::Critical => "critical",
        }
    }

    /// Unspecified (never stored) reads as medium, board-service's default.
    pub fn from_proto(value: i32) -> Self {
        match v1::Priority::try_from(value).unwrap_or(v1::Priority::Medium) {
            v1::Priority::Low => Self::Low,
            v1::Priority::High => Self::High,
            v1::Priority::Critical => Self::Critical,
            v1::Priority::Medium | v1::Priority::Unspecified => Self::Medium,
        }
    }

    pub fn to_proto(self) -> v1::Priority {
        match self {
            Self::Low => v1::Priority::Low,
            Self::Medium => v1::Priority::Medium,
            Self::High => v1::Priority::High,
            Self::Critical => v1::Priority::Critical,
        }
    }
}

impl TaskKind {
    /// The name frames carry (the serde name).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Task => "task",
            Self::Story => "story",
            Self::Bug => "bug",
            Self::Epic => "epic",
        }
    }

    pub fn from_proto(value: i32) -> Self {
        match v1::TaskKind::try_from(value).unwrap_or(v1::TaskKind::Task) {
            v1::TaskKind::Story => Self::Story,
            v1::TaskKind::Bug => Self::Bug,
            v1::TaskKind::Epic => Self::Epic,
            v1::TaskKind::Task | v1::TaskKind::Unspecified => Self::Task,
        }
    }

    pub fn to_proto(self) -> v1::TaskKind {
        match self {
            Self::Task => v1::TaskKind::Task,
            Self::Story => v1::TaskKind::Story,
            Self::Bug => v1::TaskKind::Bug,
            Self::Epic => v1::TaskKind::Epic,
        }
    }
}

impl From<&Task> for TaskData {
    fn from(task: &Task) -> Self {
        Self {
            id: task.id.clone(),
            lane: task.lane_key.clone(),
            lane_id: task.lane_id.clone(),
            title: task.title.clone(),
            description: task.description.clone(),
            priority: Priority::from_proto(task.priority),
            kind: TaskKind::from_proto(task.kind),
            estimated_hours: task.estimated_hours,
            assignee: task.assignee.clone(),
            labels: task.labels.clone(),
            status: task.status.clone(),
            parent_id: non_empty(&task.parent_id),
            sprint_id: non_empty(&task.sprint_id),
            progress: task.progress.as_ref().map(Progress::from),
            position: task.position.clone(),
            version: task.version,
            created_at: timestamp_ms(task.created_at.as_ref()),
            updated_at: timestamp_ms(task.updated_at.as_ref()),
        }
    }
}

impl From<&v1::Progress> for Progress {
    fn from(progress: &v1::Progress) -> Self {
        Self {
            done: progress.done,
            total: progress.total,
        }
    }
}

/// `None` for an empty id.
fn non_empty(id: &str) -> Option<String> {
    (!id.is_empty()).then(|| id.to_owned())
}

impl TaskChanges {
    /// The values of `fields` (proto field names) as they are in `task`.
    pub fn from_fields(task: &Task, fields: &[String]) -> Self {
        let mut changes = Self::default();
        for field in fields {
            match field.as_str() {
                "title" => changes.title = Some(task.title.clone()),
                "description" => changes.description = Some(task.description.clone()),
                "priority" => changes.priority = Some(Priority::from_proto(task.priority)),
                "kind" => changes.kind = Some(TaskKind::from_proto(task.kind)),
                "estimated_hours" => changes.estimated_hours = Some(task.estimated_hours),
                "assignee" => changes.assignee = Some(task.assignee.clone()),
                "labels" => changes.labels = Some(task.labels.clone()),
                "status" => changes.status = Some(task.status.clone()),
                "parent_id" => changes.parent_id = Some(non_empty(&task.parent_id)),
                "sprint_id" => changes.sprint_id = Some(non_empty(&task.sprint_id)),
                "progress" => changes.progress = task.progress.as_ref().map(Progress::from),
                _ => {}
            }
        }
        changes
    }
}

impl SprintState {
    /// Unspecified (never sent by board-service) reads as planned.
    pub fn from_proto(value: i32) -> Self {
        match v1::SprintState::try_from(value).unwrap_or_default() {
            v1::SprintState::Active => Self::Active,
            v1::SprintState::Completed => Self::Completed,
            v1::SprintState::Planned | v1::SprintState::Unspecified => Self::Planned,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Planned => "planned",
            Self::Active => "active",
            Self::Completed => "completed",
        }
    }
}

impl From<&Sprint> for SprintData {
    fn from(sprint: &Sprint) -> Self {
        Self {
            id: sprint.id.clone(),
            name: sprint.name.clone(),
            goal: sprint.goal.clone(),
            state: SprintState::from_proto(sprint.state),
            starts_at: timestamp_ms(sprint.starts_at.as_ref()),
            ends_at: timestamp_ms(sprint.ends_at.as_ref()),
            version: sprint.version,
            created_at: timestamp_ms(sprint.created_at.as_ref()),
            updated_at: timestamp_ms(sprint.updated_at.as_ref()),
        }
    }
}

impl ProjectData {
    /// `changed` holds proto field names; frames carry them in camelCase.
    pub fn from_event(project: &Project, changed: &[String]) -> Self {
        Self {
            id: project.id.clone(),
            slug: project.slug.clone(),
            name: project.name.clone(),
            description: project.description.clone(),
            version: project.version,
            board_ids: project.board_ids.clone(),
            created_at: timestamp_ms(project.created_at.as_ref()),
            updated_at: timestamp_ms(project.updated_at.as_ref()),
            changed: changed.iter().map(|f| camel_case(f)).collect(),
        }
    }
}

/// `board_ids` → `boardIds`.
fn camel_case(field: &str) -> String {
    let mut out = String::with_capacity(field.len());
    let mut upper = false;
    for c in field.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

impl BoardSyncData {
    /// Groups `tasks` by lane key, each lane sorted by order key.
    pub fn from_parts<'a>(board: &Board, tasks: impl IntoIterator<Item = &'a Task>) -> Self {
        // In the board's lane order; a task's lane the board does not list
        // (never, with a consistent snapshot) goes last rather than missing.
        let mut lanes: Vec<(String, Vec<TaskData>)> = board
            .lanes
            .iter()
            .map(|lane| (lane.key.clone(), Vec::new()))
            .collect();
        for task in tasks {
            match lanes.iter_mut().find(|(key, _)| *key == task.lane_key) {
                Some((_, list)) => list.push(TaskData::from(task)),
                None => lanes.push((task.lane_key.clone(), vec![TaskData::from(task)])),
            }
        }
        for (_, tasks) in &mut lanes {
            tasks.sort_by(|a, b| a.position.as_bytes().cmp(b.position.as_bytes()));
        }
        let lanes = LaneTasks(lanes);
        Self {
            lanes,
            lane_order: board.lanes.iter().map(|l| l.key.clone()).collect(),
            board: BoardInfo {
                id: board.id.clone(),
                slug: board.slug.clone(),
                name: board.name.clone(),
                lanes: board.lanes.iter().map(lane_frame).collect(),
                created_at: timestamp_ms(board.created_at.as_ref()),
                project_id: (!board.project_id.is_empty()).then(|| board.project_id.clone()),
            },
        }
    }
}

impl ServerFrame {
    /// `board.sync` for `board` with `tasks` at `version`.
    pub fn board_sync<'a>(
        board: &Board,
        tasks: impl IntoIterator<Item = &'a Task>,
        version: u64,
        ts: i64,
    ) -> Self {
        Self::BoardSync(Change {
            board_id: board.id.clone(),
            version,
            ts,
            command_id: None,
            data: BoardSyncData::from_parts(board, tasks),
        })
    }

    /// The frame for a board-service event; `None` for `board.resync`
    /// (the gateway answers it with a snapshot) and types it does not know.
    pub fn from_event(event: &BoardEvent) -> Option<Self> {
        let lanes = || event.lanes.iter().map(lane_frame).collect::<Vec<_>>();
        let frame = match event.r#type.as_str() {
            event_type::TASK_CREATED => {
                Self::TaskCreated(change(event, TaskData::from(event.task.as_ref()?)))
            }
            event_type::TASK_UPDATED => {
                let task = event.task.as_ref()?;
                Self::TaskUpdated(change(
                    event,
                    TaskUpdatedData {
                        id: task.id.clone(),
                        changes: TaskChanges::from_fields(task, &event.changed_fields),
                        task_version: task.version,
                    },
                ))
            }
            event_type::TASK_MOVED => {
                let task = event.task.as_ref()?;
                Self::TaskMoved(change(
                    event,
                    TaskMovedData {
                        id: task.id.clone(),
                        from_lane: event.from_lane_key.clone(),
                        to_lane: event.to_lane_key.clone(),
                        from_lane_id: event.from_lane_id.clone(),
                        to_lane_id: event.to_lane_id.clone(),
                        position: task.position.clone(),
                        task_version: task.version,
                    },
                ))
            }
            event_type::TASK_DELETED => {
                let task = event.task.as_ref()?;
                Self::TaskDeleted(change(
                    event,
                    TaskDeletedData {
                        id: task.id.clone(),
                        lane: task.lane_key.clone(),
                    },
                ))
            }
            event_type::LANE_CREATED => Self::LaneCreated(change(
                event,
                LaneData {
                    lane: lane_frame(event.lane.as_ref()?),
                    lanes: lanes(),
                },
            )),
            event_type::LANE_UPDATED => Self::LaneUpdated(change(
                event,
                LaneData {
                    lane: lane_frame(event.lane.as_ref()?),
                    lanes: lanes(),
                },
            )),
            event_type::LANE_DELETED => Self::LaneDeleted(change(
                event,
                LaneDeletedData {
                    lane: lane_frame(event.lane.as_ref()?),
                    lanes: lanes(),
                    moved_tasks: event.moved_tasks.iter().map(TaskData::from).collect(),
                },
            )),
            event_type::PROJECT_CREATED => Self::ProjectCreated(change(
                event,
                ProjectData::from_event(event.project.as_ref()?, &event.changed_fields),
            )),
            event_type::PROJECT_UPDATED => Self::ProjectUpdated(change(
                event,
                ProjectData::from_event(event.project.as_ref()?, &event.changed_fields),
            )),
            event_type::SPRINT_CREATED => {
                Self::SprintCreated(change(event, SprintData::from(event.sprint.as_ref()?)))
            }
            event_type::SPRINT_STARTED => {
                Self::SprintStarted(change(event, SprintData::from(event.sprint.as_ref()?)))
            }
            event_type::SPRINT_COMPLETED => {
                Self::SprintCompleted(change(event, SprintData::from(event.sprint.as_ref()?)))
            }
            _ => return None,
        };
        Some(frame)
    }
}

/// The envelope of `event` around `data`.
fn change<T>(event: &BoardEvent, data: T) -> Change<T> {
    Change {
        board_id: event.board_id.clone(),
        version: event.version,
        ts: timestamp_ms(event.occurred_at.as_ref()),
        command_id: (!event.request_id.is_empty()).then(|| event.request_id.clone()),
        data,
    }
}

impl AckResult {
    pub fn task(task: &Task) -> Self {
        Self::Task(Box::new(TaskData::from(task)))
    }
}

impl Command<CreateTask> {
    pub fn to_request(&self) -> CreateTaskRequest {
        let data = &self.data;
        CreateTaskRequest {
            board_id: self.board_id.clone(),
            lane_id: data
                .lane_id
                .clone()
                .or_else(|| data.lane.clone())
                .unwrap_or_default(),
            title: data.title.clone(),
            description: data.description.clone().unwrap_or_default(),
            priority: data.priority.map_or(0, |p| p.to_proto() as i32),
            kind: data.kind.map_or(0, |k| k.to_proto() as i32),
            estimated_hours: data.estimated_hours.unwrap_or_default(),
            assignee: data.assignee.clone().unwrap_or_default(),
            labels: data.labels.clone().unwrap_or_default(),
            request_id: self.id.clone(),
            status: data.status.clone().unwrap_or_default(),
            parent_id: data.parent_id.clone().unwrap_or_default(),
            sprint_id: data.sprint_id.clone().unwrap_or_default(),
        }
    }
}

impl Command<UpdateTask> {
    pub fn to_request(&self) -> UpdateTaskRequest {
        let changes = &self.data.changes;
        UpdateTaskRequest {
            task_id: self.data.id.clone(),
            title: changes.title.clone(),
            description: changes.description.clone(),
            priority: changes.priority.map(|p| p.to_proto() as i32),
            kind: changes.kind.map(|k| k.to_proto() as i32),
            estimated_hours: changes.estimated_hours,
            assignee: changes.assignee.clone(),
            labels: changes.labels.clone().map(|values| Labels { values }),
            expected_version: self.expected_version,
            request_id: self.id.clone(),
            status: changes.status.clone(),
            parent_id: changes
                .parent_id
                .clone()
                .map(|parent| parent.unwrap_or_default()),
            sprint_id: changes
                .sprint_id
                .clone()
                .map(|sprint| sprint.unwrap_or_default()),
        }
    }
}

impl Command<EditTask> {
    /// The field update this `task.update` asks for: `None` when it only
    /// moves the task. A frame with no changes at all is still an update,
    /// as before moves were part of it.
    pub fn update(&self) -> Option<Command<UpdateTask>> {
        let changes = &self.data.changes;
        let moves = changes.lane.is_some() || changes.lane_id.is_some();
        if moves && changes.fields == TaskChanges::default() {
            return None;
        }
        Some(Command {
            id: self.id.clone(),
            board_id: self.board_id.clone(),
            data: UpdateTask {
                id: self.data.id.clone(),
                changes: changes.fields.clone(),
            },
            expected_version: self.expected_version,
        })
    }

    /// The move `changes.lane` asks for, run after [`Self::update`] when
    /// both are present: then it carries its own idempotency key, and
    /// `expected_version` is the task's version after the update.
    pub fn lane_move(&self, expected_version: Option<u64>) -> Option<Command<MoveTask>> {
        let changes = &self.data.changes;
        if changes.lane.is_none() && changes.lane_id.is_none() {
            return None;
        }
        let id = match self.update() {
            Some(_) => format!("{}{MOVE_SUFFIX}", self.id),
            None => self.id.clone(),
        };
        Some(Command {
            id,
            board_id: self.board_id.clone(),
            data: MoveTask {
                id: self.data.id.clone(),
                to_lane: changes.lane.clone(),
                to_lane_id: changes.lane_id.clone(),
                before: self.data.before.clone(),
                after: self.data.after.clone(),
            },
            expected_version,
        })
    }
}

impl Command<MoveTask> {
    pub fn to_request(&self) -> MoveTaskRequest {
        let data = &self.data;
        let anchor = match (&data.before, &data.after) {
            (Some(before), _) => Some(Anchor::BeforeTaskId(before.clone())),
            (None, Some(after)) => Some(Anchor::AfterTaskId(after.clone())),
            (None, None) => None,
        };
        MoveTaskRequest {
            task_id: data.id.clone(),
            to_lane_id: data
                .to_lane_id
                .clone()
                .or_else(|| data.to_lane.clone())
                .unwrap_or_default(),
            anchor,
            expected_version: self.expected_version,
            request_id: self.id.clone(),
        }
    }
}

impl Command<DeleteTask> {
    pub fn to_request(&self) -> DeleteTaskRequest {
        DeleteTaskRequest {
            task_id: self.data.id.clone(),
            expected_version: self.expected_version,
            request_id: self.id.clone(),
        }
    }
}
