//! The eight tools: their definitions (schemas, descriptions, hints) and
//! how each call becomes board-service requests.

use std::sync::{Arc, LazyLock};

use protocol::{
    board_frames::{self as frames, Command, TaskChanges},
    v1::{CreateLaneRequest, UpdateLaneRequest},
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
        write::<args::CreateTask>(
            "create_task",
            "Create a task on a board, at the end of a lane (the board's first lane when no \
             lane is given). Returns the new task with its id and version.",
            false,
        ),
        write::<args::UpdateTask>(
            "update_task",
            "Change a task's fields (title, description, priority, kind, assignee, labels, \
             estimate); fields left out stay as they are. To change its lane use move_task.",
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
