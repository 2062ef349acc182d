//! The tools: their definitions (schemas, descriptions, hints) and
//! how each call becomes board-service requests.

use std::sync::{Arc, LazyLock};

use protocol::{
    board_frames::{self as frames, Command, TaskChanges},
    time::timestamp_from_ms,
    v1::{
        CompleteSprintRequest, CreateLaneRequest, CreateSprintRequest, Sprint, StartSprintRequest,
        UpdateLaneRequest,
    },
};
use rmcp::{
    handler::server::common::schema_for_type,
    model::{CallToolResult, JsonObject, Tool, ToolAnnotations},
};
use schemars::JsonSchema;
use serde::{Serialize, de::DeserializeOwned};

use super::{
    args,
    board::BoardClient,
    error::BoardError,
    view::{BoardSummary, SnapshotView, lane_keys, task_view},
};

/// Whether a tool changes the board; read-only tokens see none of these.
pub fn is_write(name: &str) -> bool {
    TOOLS
        .iter()
        .any(|tool| tool.name == name && tool.annotations.as_ref().is_some_and(writes))
}

fn writes(annotations: &ToolAnnotations) -> bool {
    annotations.read_only_hint == Some(false)
}

/// Every tool, read-only ones first.
pub static TOOLS: LazyLock<Vec<Tool>> = LazyLock::new(|| {
    vec![
        read::<args::ListBoards>(
            "list_boards",
            "List the boards you may read: id, slug, name, current version, lanes \
             (key, name, WIP limit) and the board's resource URI. Start here to find a board_id.",
        ),
        read::<args::GetBoard>(
            "get_board",
            "Read one board: its lanes in order and every task in each lane (id, title, \
             description, priority, kind, assignee, labels, version). Call it before changing \
             tasks, to learn task ids, lane keys and the versions to pass as expected_version.",
        ),
        read::<args::ListSprints>(
            "list_sprints",
            "List a board's sprints by start time: id, name, goal, state (planned, active or \
             completed), start and end (ms since the epoch) and version. At most one is active.",
        ),
        write::<args::CreateTask>(
            "create_task",
            "Create a task on a board, at the end of a lane (the board's first lane when no \
             lane is given), optionally in an epic (parent_id) and a sprint (sprint_id). Returns \
             the new task with its id and version.",
            false,
        ),
        write::<args::UpdateTask>(
            "update_task",
            "Change a task's fields (title, description, priority, kind, assignee, labels, \
             estimate, epic, sprint); fields left out stay as they are. To change its lane use \
             move_task.",
            false,
        ),
        write::<args::MoveTask>(
            "move_task",
            "Move a task to another lane (or reorder it in its lane): to the end, or right \
             before/after another task of that lane. Refused when the target lane is at its WIP \
             limit.",
            false,
        ),
        write::<args::DeleteTask>(
            "delete_task",
            "Delete a task for good. Pass expected_version so that a task someone changed \
             meanwhile is not deleted.",
            true,
        ),
        write::<args::CreateLane>(
            "create_lane",
            "Add a lane (a column) to a board, with an optional WIP limit and position.",
            false,
        ),
        write::<args::UpdateLane>(
            "update_lane",
            "Rename a lane, set or clear its WIP limit, or move it to another position.",
            false,
        ),
        write::<args::CreateSprint>(
            "create_sprint",
            "Plan a sprint on a board: a name, an optional goal, and its start and end. It \
             starts in the planned state; put tasks in it with update_task's sprint_id.",
            false,
        ),
        write::<args::StartSprint>(
            "start_sprint",
            "Start a planned sprint. Refused while the board has another active sprint.",
            false,
        ),
        write::<args::CompleteSprint>(
            "complete_sprint",
            "Complete the board's active sprint. Its tasks not in the done lane go back to the \
             backlog, or into the planned sprint move_to_sprint_id.",
            false,
        ),
    ]
});

fn read<T: JsonSchema + 'static>(name: &'static str, description: &'static str) -> Tool {
    Tool::new(name, description, schema::<T>())
        .with_annotations(ToolAnnotations::new().read_only(true).open_world(false))
}

fn write<T: JsonSchema + 'static>(
    name: &'static str,
    description: &'static str,
    destructive: bool,
) -> Tool {
    Tool::new(name, description, schema::<T>()).with_annotations(
        ToolAnnotations::new()
            .read_only(false)
            .destructive(destructive)
            .open_world(false),
    )
}

fn schema<T: JsonSchema + 'static>() -> Arc<JsonObject> {
    schema_for_type::<T>()
}

/// Runs tool `name` with `arguments` against board-service as `board`'s
/// caller. Every failure is a tool result with `isError`, never a protocol
/// error, so the model reads what to fix.
pub async fn call(board: &BoardClient, name: &str, arguments: JsonObject) -> CallToolResult {
    let outcome = match name {
        "list_boards" => run(arguments, |_: args::ListBoards| list_boards(board)).await,
        "get_board" => run(arguments, |a: args::GetBoard| get_board(board, a)).await,
        "create_task" => run(arguments, |a: args::CreateTask| create_task(board, a)).await,
        "update_task" => run(arguments, |a: args::UpdateTask| update_task(board, a)).await,
        "move_task" => run(arguments, |a: args::MoveTask| move_task(board, a)).await,
        "delete_task" => run(arguments, |a: args::DeleteTask| delete_task(board, a)).await,
        "create_lane" => run(arguments, |a: args::CreateLane| create_lane(board, a)).await,
        "update_lane" => run(arguments, |a: args::UpdateLane| update_lane(board, a)).await,
        "list_sprints" => run(arguments, |a: args::ListSprints| list_sprints(board, a)).await,
        "create_sprint" => run(arguments, |a: args::CreateSprint| create_sprint(board, a)).await,
        "start_sprint" => run(arguments, |a: args::StartSprint| start_sprint(board, a)).await,
        "complete_sprint" => {
            run(arguments, |a: args::CompleteSprint| {
                complete_sprint(board, a)
            })
            .await
        }
        other => Err(Failure::plain(BoardError::invalid(format!(
            "there is no tool named {other:?}; call tools/list"
        )))),
    };
    match outcome {
        Ok(value) => CallToolResult::structured(value),
        Err(failure) => failure.error.into_result(failure.lanes.as_deref()),
    }
}

/// A refusal, with the board's lane keys when they help fix it.
struct Failure {
    error: BoardError,
    lanes: Option<Vec<String>>,
}

impl Failure {
    fn plain(error: BoardError) -> Self {
        Self { error, lanes: None }
    }
}

impl From<BoardError> for Failure {
    fn from(error: BoardError) -> Self {
        Self::plain(error)
    }
}

type Outcome = Result<serde_json::Value, Failure>;

/// Decodes `arguments` as `A`, naming the field that does not fit, and runs `f`.
async fn run<A, F, Fut>(arguments: JsonObject, f: F) -> Outcome
where
    A: DeserializeOwned,
    F: FnOnce(A) -> Fut,
    Fut: Future<Output = Outcome>,
{
    let value = serde_json::Value::Object(arguments);
    let args = serde_path_to_error::deserialize::<_, A>(value).map_err(|err| {
        let path = err.path().to_string();
        let why = err.into_inner();
        BoardError::invalid(if path == "." {
            format!("invalid arguments: {why}")
        } else {
            format!("invalid argument {path}: {why}")
        })
    })?;
    f(args).await
}

fn json(value: &impl Serialize) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or_default()
}

fn request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// `error`, with the board's lane keys when it is about a lane.
async fn with_lanes(board: &BoardClient, board_id: &str, error: BoardError) -> Failure {
    let about_lanes = error.message.to_lowercase().contains("lane");
    let lanes = if about_lanes {
        board.get_board(board_id).await.ok().map(|s| lane_keys(&s))
    } else {
        None
    };
    Failure { error, lanes }
}

async fn list_boards(board: &BoardClient) -> Outcome {
    let boards = board.list_boards().await?;
    let boards: Vec<BoardSummary> = boards.iter().map(BoardSummary::from).collect();
    Ok(serde_json::json!({ "boards": json(&boards) }))
}

async fn get_board(board: &BoardClient, a: args::GetBoard) -> Outcome {
    let snapshot = board.get_board(&a.board_id).await?;
    Ok(json(&SnapshotView::from(&snapshot)))
}

async fn create_task(board: &BoardClient, a: args::CreateTask) -> Outcome {
    let mut lane = a.lane.clone();
    if lane.is_none() && a.lane_id.is_none() {
        let snapshot = board.get_board(&a.board_id).await?;
        lane = lane_keys(&snapshot).into_iter().next();
    }
    let command = Command {
        id: request_id(),
        board_id: a.board_id.clone(),
        expected_version: None,
        data: frames::CreateTask {
            title: a.title,
            lane,
            lane_id: a.lane_id,
            description: a.description,
            priority: a.priority.map(Into::into),
            kind: a.kind.map(Into::into),
            estimated_hours: a.estimated_hours,
            assignee: a.assignee,
            labels: a.labels,
            status: None,
            parent_id: a.parent_id,
            sprint_id: a.sprint_id,
        },
    };
    match board.create_task(command.to_request()).await {
        Ok(task) => Ok(json(&task_view(&task))),
        Err(error) => Err(with_lanes(board, &a.board_id, error).await),
    }
}

async fn update_task(board: &BoardClient, a: args::UpdateTask) -> Outcome {
    let command = Command {
        id: request_id(),
        board_id: String::new(),
        expected_version: a.expected_version,
        data: frames::UpdateTask {
            id: a.task_id,
            changes: TaskChanges {
                title: a.title,
                description: a.description,
                priority: a.priority.map(Into::into),
                kind: a.kind.map(Into::into),
                estimated_hours: a.estimated_hours,
                assignee: a.assignee,
                labels: a.labels,
                parent_id: a.parent_id.map(Some),
                sprint_id: a.sprint_id.map(Some),
                ..TaskChanges::default()
            },
        },
    };
    let task = board.update_task(command.to_request()).await?;
    Ok(json(&task_view(&task)))
}

async fn move_task(board: &BoardClient, a: args::MoveTask) -> Outcome {
    if a.lane.is_none() && a.lane_id.is_none() {
        return Err(BoardError::invalid(
            "lane is required: the key of the lane to move the task to (or give lane_id)",
        )
        .into());
    }
    if a.before_task_id.is_some() && a.after_task_id.is_some() {
        return Err(BoardError::invalid(
            "before_task_id and after_task_id are exclusive: give one neighbour, or neither",
        )
        .into());
    }
    let command = Command {
        id: request_id(),
        board_id: String::new(),
        expected_version: a.expected_version,
        data: frames::MoveTask {
            id: a.task_id,
            to_lane: a.lane,
            to_lane_id: a.lane_id,
            before: a.before_task_id,
            after: a.after_task_id,
        },
    };
    match board.move_task(command.to_request()).await {
        Ok(task) => Ok(json(&task_view(&task))),
        Err(error) => {
            // The task's board is known only from the task: ask for its lanes
            // through the board that holds it, when the task exists.
            let lanes = match error.message.to_lowercase().contains("lane") {
                true => lanes_of_task(board, &command.data.id).await,
                false => None,
            };
            Err(Failure { error, lanes })
        }
    }
}

/// The lane keys of the board that holds `task_id`, found among the
/// caller's boards.
async fn lanes_of_task(board: &BoardClient, task_id: &str) -> Option<Vec<String>> {
    for summary in board.list_boards().await.ok()? {
        let snapshot = board.get_board(&summary.id).await.ok()?;
        if snapshot.tasks.iter().any(|t| t.id == task_id) {
            return Some(lane_keys(&snapshot));
        }
    }
    None
}

async fn delete_task(board: &BoardClient, a: args::DeleteTask) -> Outcome {
    let command = Command {
        id: request_id(),
        board_id: String::new(),
        expected_version: a.expected_version,
        data: frames::DeleteTask {
            id: a.task_id.clone(),
        },
    };
    let board_version = board.delete_task(command.to_request()).await?;
    Ok(serde_json::json!({ "deleted": a.task_id, "boardVersion": board_version }))
}

async fn create_lane(board: &BoardClient, a: args::CreateLane) -> Outcome {
    let request = CreateLaneRequest {
        board_id: a.board_id,
        key: a.key,
        name: a.name.unwrap_or_default(),
        wip_limit: a.wip_limit,
        position: a.position,
        request_id: request_id(),
    };
    let lane = board.create_lane(request).await?;
    Ok(json(&frames::lane_frame(&lane)))
}

async fn update_lane(board: &BoardClient, a: args::UpdateLane) -> Outcome {
    let lane_id = match (&a.lane_id, &a.board_id, &a.lane) {
        (Some(id), _, _) => id.clone(),
        (None, Some(board_id), Some(key)) => {
            let snapshot = board.get_board(board_id).await?;
            let lanes = snapshot.board.map(|b| b.lanes).unwrap_or_default();
            match lanes.iter().find(|l| &l.key == key) {
                Some(lane) => lane.id.clone(),
                None => {
                    return Err(Failure {
                        error: BoardError {
                            code: frames::ErrorCode::NotFound,
                            message: format!("lane {key:?} not found on board {board_id}"),
                        },
                        lanes: Some(lanes.into_iter().map(|l| l.key).collect()),
                    });
                }
            }
        }
        _ => {
            return Err(BoardError::invalid(
                "name the lane: give lane_id, or board_id and lane (its key)",
            )
            .into());
        }
    };
    let request = UpdateLaneRequest {
        lane_id,
        name: a.name,
        wip_limit: a.wip_limit,
        clear_wip_limit: a.clear_wip_limit,
        position: a.position,
        request_id: request_id(),
    };
    let lane = board.update_lane(request).await?;
    Ok(json(&frames::lane_frame(&lane)))
}

/// A sprint as tools return it: the frames' sprint shape, with its board.
fn sprint_view(sprint: &Sprint) -> serde_json::Value {
    let mut value = json(&frames::SprintData::from(sprint));
    value["boardId"] = serde_json::json!(sprint.board_id);
    value
}

async fn list_sprints(board: &BoardClient, a: args::ListSprints) -> Outcome {
    let sprints = board.list_sprints(&a.board_id).await?;
    let sprints: Vec<_> = sprints.iter().map(sprint_view).collect();
    Ok(serde_json::json!({ "sprints": sprints }))
}

/// An RFC 3339 time, or a date (midnight UTC), in ms since the epoch.
fn instant_ms(field: &str, value: &str) -> Result<i64, BoardError> {
    let value = value.trim();
    let ms = chrono::DateTime::parse_from_rfc3339(value)
        .map(|at| at.timestamp_millis())
        .or_else(|_| {
            chrono::NaiveDate::parse_from_str(value, "%Y-%m-%d").map(|day| {
                day.and_time(chrono::NaiveTime::MIN)
                    .and_utc()
                    .timestamp_millis()
            })
        })
        .map_err(|_| {
            BoardError::invalid(format!(
                "{field} must be an RFC 3339 time (\"2026-12-01T09:00:00Z\") or a date \
                 (\"2026-12-01\"), not {value:?}"
            ))
        })?;
    Ok(ms)
}

async fn create_sprint(board: &BoardClient, a: args::CreateSprint) -> Outcome {
    let request = CreateSprintRequest {
        board_id: a.board_id,
        name: a.name,
        goal: a.goal.unwrap_or_default(),
        starts_at: Some(timestamp_from_ms(instant_ms("starts_at", &a.starts_at)?)),
        ends_at: Some(timestamp_from_ms(instant_ms("ends_at", &a.ends_at)?)),
        request_id: request_id(),
    };
    let sprint = board.create_sprint(request).await?;
    Ok(sprint_view(&sprint))
}

async fn start_sprint(board: &BoardClient, a: args::StartSprint) -> Outcome {
    let request = StartSprintRequest {
        sprint_id: a.sprint_id,
        expected_version: a.expected_version,
        request_id: request_id(),
    };
    let sprint = board.start_sprint(request).await?;
    Ok(sprint_view(&sprint))
}

async fn complete_sprint(board: &BoardClient, a: args::CompleteSprint) -> Outcome {
    let request = CompleteSprintRequest {
        sprint_id: a.sprint_id,
        move_to_sprint_id: a.move_to_sprint_id.unwrap_or_default(),
        expected_version: a.expected_version,
        request_id: request_id(),
    };
    let completed = board.complete_sprint(request).await?;
    let moved: Vec<_> = completed.moved_tasks.iter().map(task_view).collect();
    Ok(serde_json::json!({
        "sprint": completed.sprint.as_ref().map(sprint_view),
        "movedTasks": json(&moved),
        "boardVersion": completed.board_version,
    }))
}
