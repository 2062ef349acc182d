//! The `type` of a [`crate::v1::BoardEvent`]. Dotted names, as the WebSocket
//! frames carry them, so the gateway passes them through unchanged.

pub const TASK_CREATED: &str = "task.created";
pub const TASK_UPDATED: &str = "task.updated";
pub const TASK_MOVED: &str = "task.moved";
pub const TASK_DELETED: &str = "task.deleted";
pub const LANE_CREATED: &str = "lane.created";
pub const LANE_UPDATED: &str = "lane.updated";
pub const LANE_DELETED: &str = "lane.deleted";
pub const PROJECT_CREATED: &str = "project.created";
pub const PROJECT_UPDATED: &str = "project.updated";
pub const SPRINT_CREATED: &str = "sprint.created";
pub const SPRINT_STARTED: &str = "sprint.started";
pub const SPRINT_COMPLETED: &str = "sprint.completed";
/// Sent instead of a replay when the log no longer holds the requested events.
pub const BOARD_RESYNC: &str = "board.resync";
