//! The arguments of each tool: serde for the call, schemars for the JSON
//! schema clients show the model. Names are snake_case (INTERFACES.md).

use protocol::board_frames::{Priority, TaskKind};
use schemars::JsonSchema;
use serde::Deserialize;

/// A task's priority.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PriorityArg {
    Low,
    Medium,
    High,
    Critical,
}

impl From<PriorityArg> for Priority {
    fn from(p: PriorityArg) -> Self {
        match p {
            PriorityArg::Low => Self::Low,
            PriorityArg::Medium => Self::Medium,
            PriorityArg::High => Self::High,
            PriorityArg::Critical => Self::Critical,
        }
    }
}

/// What sort of work a task is.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum KindArg {
    Task,
    Story,
    Bug,
    Epic,
}

impl From<KindArg> for TaskKind {
    fn from(k: KindArg) -> Self {
        match k {
            KindArg::Task => Self::Task,
            KindArg::Story => Self::Story,
            KindArg::Bug => Self::Bug,
            KindArg::Epic => Self::Epic,
        }
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListBoards {}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GetBoard {
    /// The board's slug (e.g. "default") or id, as list_boards shows it.
    pub board_id: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTask {
    /// The board's slug or id.
    pub board_id: String,
    /// Title, 1-500 characters.
    pub title: String,
    /// Key of the lane to put the task in (e.g. "backlog", "todo", "in_progress",
    /// "done"); get_board lists them. Defaults to the board's first lane.
    #[serde(default)]
    pub lane: Option<String>,
    /// The lane's id, instead of its key.
    #[serde(default)]
    pub lane_id: Option<String>,
    /// Longer text: acceptance criteria, context, links.
    #[serde(default)]
    pub description: Option<String>,
    /// Defaults to medium. P0 is critical, P1 high, P2 medium, P3 low.
    #[serde(default)]
    pub priority: Option<PriorityArg>,
    /// Defaults to task.
    #[serde(default)]
    pub kind: Option<KindArg>,
    /// Who works on it (free text, e.g. a name or handle).
    #[serde(default)]
    pub assignee: Option<String>,
    /// Labels, replacing none.
    #[serde(default)]
    pub labels: Option<Vec<String>>,
    /// Estimate in hours; 0 or absent means none.
    #[serde(default)]
    pub estimated_hours: Option<f64>,
    /// The id of an epic on the same board that the task belongs to.
    #[serde(default)]
    pub parent_id: Option<String>,
    /// The id of a planned or active sprint on the same board (list_sprints
    /// shows them); absent puts the task in the backlog.
    #[serde(default)]
    pub sprint_id: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateTask {
    /// The task's id (get_board shows it).
    pub task_id: String,
    /// The task's version as you last read it; the update is refused if the
    /// task changed since. Leave out to update whatever its state.
    #[serde(default)]
    pub expected_version: Option<u64>,
    /// New title, 1-500 characters.
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub priority: Option<PriorityArg>,
    #[serde(default)]
    pub kind: Option<KindArg>,
    /// Empty string unassigns.
    #[serde(default)]
    pub assignee: Option<String>,
    /// Replaces all labels.
    #[serde(default)]
    pub labels: Option<Vec<String>>,
    #[serde(default)]
    pub estimated_hours: Option<f64>,
    /// An epic on the same board; empty string takes the task out of its epic.
    #[serde(default)]
    pub parent_id: Option<String>,
    /// A planned or active sprint on the same board; empty string puts the
    /// task back in the backlog.
    #[serde(default)]
    pub sprint_id: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MoveTask {
    /// The task's id.
    pub task_id: String,
    /// Key of the lane to move to (e.g. "in_progress"). Give this or lane_id.
    #[serde(default)]
    pub lane: Option<String>,
    /// The target lane's id, instead of its key.
    #[serde(default)]
    pub lane_id: Option<String>,
    /// Place the task right before this task (which must be in the target lane).
    #[serde(default)]
    pub before_task_id: Option<String>,
    /// Place the task right after this task (which must be in the target lane).
    /// With neither, the task goes to the end of the lane.
    #[serde(default)]
    pub after_task_id: Option<String>,
    /// The task's version as you last read it; refused if it changed since.
    #[serde(default)]
    pub expected_version: Option<u64>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeleteTask {
    /// The task's id.
    pub task_id: String,
    /// The task's version as you last read it; refused if it changed since.
    #[serde(default)]
    pub expected_version: Option<u64>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateLane {
    /// The board's slug or id.
    pub board_id: String,
    /// Machine name, unique on the board: lowercase letters, digits and '_'
    /// (e.g. "review").
    pub key: String,
    /// Display name; defaults to the key in words ("in_review" -> "In review").
    #[serde(default)]
    pub name: Option<String>,
    /// Most tasks the lane may hold; absent means no limit.
    #[serde(default)]
    pub wip_limit: Option<u32>,
    /// Zero-based index among the board's lanes; absent appends at the end.
    #[serde(default)]
    pub position: Option<u32>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateLane {
    /// The lane's id. Or give board_id and lane.
    #[serde(default)]
    pub lane_id: Option<String>,
    /// The board's slug or id, with lane.
    #[serde(default)]
    pub board_id: Option<String>,
    /// The lane's key, with board_id.
    #[serde(default)]
    pub lane: Option<String>,
    /// New display name.
    #[serde(default)]
    pub name: Option<String>,
    /// New WIP limit (most tasks the lane may hold).
    #[serde(default)]
    pub wip_limit: Option<u32>,
    /// true removes the WIP limit.
    #[serde(default)]
    pub clear_wip_limit: bool,
    /// New zero-based index among the board's lanes.
    #[serde(default)]
    pub position: Option<u32>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListSprints {
    /// The board's slug or id.
    pub board_id: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSprint {
    /// The board's slug or id.
    pub board_id: String,
    /// Name, 1-200 characters (e.g. "Sprint 14").
    pub name: String,
    /// What the sprint is meant to achieve.
    #[serde(default)]
    pub goal: Option<String>,
    /// When it starts: an RFC 3339 time ("2026-12-01T09:00:00Z") or a date
    /// ("2026-12-01", midnight UTC).
    pub starts_at: String,
    /// When it ends, after starts_at; same formats.
    pub ends_at: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StartSprint {
    /// The id of a planned sprint (list_sprints shows it).
    pub sprint_id: String,
    /// The sprint's version as you last read it; refused if it changed since.
    #[serde(default)]
    pub expected_version: Option<u64>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CompleteSprint {
    /// The id of the board's active sprint.
    pub sprint_id: String,
    /// A planned sprint of the same board that takes the unfinished tasks
    /// (those not in the done lane); absent sends them to the backlog.
    #[serde(default)]
    pub move_to_sprint_id: Option<String>,
    /// The sprint's version as you last read it; refused if it changed since.
    #[serde(default)]
    pub expected_version: Option<u64>,
}
