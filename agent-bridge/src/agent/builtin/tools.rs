//! The built-in agent's tools: board-service calls over gRPC.

use std::time::Duration;

use protocol::board_frames::ErrorCode;
use protocol::v1::{
    CompleteSprintRequest, CompleteSprintResponse, CreateTaskRequest, DeleteTaskRequest,
    GetBoardRequest, ListSprintsRequest, MoveTaskRequest, Priority, Sprint, SprintState,
    StartSprintRequest, Task, TaskKind, UpdateTaskRequest,
};
use serde_json::{Value, json};

use crate::board_channel::BoardChannel;

/// Why a tool call failed.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    /// board-service is down or too slow: the run cannot go on.
    #[error("board-service is unavailable: {0}")]
    Unavailable(String),
    /// The request was refused (no such task or lane, WIP limit, ...).
    #[error("{0}")]
    Refused(String),
}

impl From<tonic::Status> for ToolError {
    /// Through the one shared classifier, so the chat and the board agree:
    /// a transport failure may have committed and is never a refusal.
    fn from(status: tonic::Status) -> Self {
        let error = protocol::status::classify(&status);
        match error.code {
            ErrorCode::Unavailable => Self::Unavailable(error.message),
            ErrorCode::Forbidden => Self::Refused(
                "your access does not allow that on this board (ask for write access)".into(),
            ),
            ErrorCode::Unauthorized => Self::Refused(
                "the board service did not accept your sign-in; sign in again and retry".into(),
            ),
            _ => Self::Refused(error.message),
        }
    }
}

/// The built-in agent's board-service calls, for one caller.
#[derive(Clone)]
pub struct BoardTools {
    channel: BoardChannel,
}

impl BoardTools {
    /// Connects lazily, so the bridge starts while board-service is down.
    pub fn new(url: &str, timeout: Duration) -> anyhow::Result<Self> {
        Ok(Self {
            channel: BoardChannel::new(url, timeout)?,
        })
    }

    /// These tools acting for the user whose token this is.
    pub fn with_bearer(&self, token: Option<&str>) -> Self {
        Self {
            channel: self.channel.with_bearer(token),
        }
    }

    fn request<T>(&self, message: T) -> tonic::Request<T> {
        self.channel.request(message)
    }

    async fn call<T>(
        &self,
        call: impl std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    ) -> Result<T, ToolError> {
        self.channel
            .call(call, |after| {
                ToolError::Unavailable(format!("no answer within {after:?}"))
            })
            .await
    }

    pub async fn create_task(
        &self,
        board: &str,
        lane: &str,
        title: &str,
        priority: Priority,
        kind: TaskKind,
        request_id: String,
    ) -> Result<Task, ToolError> {
        let mut client = self.channel.client();
        self.call(client.create_task(self.request(CreateTaskRequest {
            board_id: board.into(),
            lane_id: lane.into(),
            title: title.into(),
            priority: priority.into(),
            kind: kind.into(),
            request_id,
            ..Default::default()
        })))
        .await
    }

    /// The board's tasks, in lane then position order.
    pub async fn tasks(&self, board: &str) -> Result<Vec<Task>, ToolError> {
        let mut client = self.channel.client();
        let snapshot = self
            .call(client.get_board(self.request(GetBoardRequest {
                board_id: board.into(),
            })))
            .await?;
        Ok(snapshot.tasks)
    }

    /// The board as a client shows it: `{boardId, version, board}`, where
    /// `board` is what a `board.sync` frame carries.
    pub async fn snapshot_json(&self, board: &str) -> Result<Value, ToolError> {
        let mut client = self.channel.client();
        let snapshot = self
            .call(client.get_board(self.request(GetBoardRequest {
                board_id: board.into(),
            })))
            .await?;
        let info = snapshot.board.unwrap_or_default();
        let data = protocol::board_frames::BoardSyncData::from_parts(&info, &snapshot.tasks);
        Ok(json!({"boardId": info.id, "version": snapshot.version, "board": data}))
    }

    /// The board's id and slug, if the caller may read it.
    pub async fn board_names(&self, board: &str) -> Result<(String, String), ToolError> {
        let mut client = self.channel.client();
        let snapshot = self
            .call(client.get_board(self.request(GetBoardRequest {
                board_id: board.into(),
            })))
            .await?;
        let board = snapshot.board.unwrap_or_default();
        Ok((board.id, board.slug))
    }

    /// The task whose title is `title` (ignoring case), or the only one that
    /// contains it.
    pub async fn find_task(&self, board: &str, title: &str) -> Result<Task, ToolError> {
        let tasks = self.tasks(board).await?;
        let wanted = title.to_lowercase();
        if let Some(task) = tasks.iter().find(|t| t.title.to_lowercase() == wanted) {
            return Ok(task.clone());
        }
        let mut partial = tasks
            .into_iter()
            .filter(|t| t.title.to_lowercase().contains(&wanted));
        match (partial.next(), partial.next()) {
            (Some(task), None) => Ok(task),
            (Some(_), Some(_)) => Err(ToolError::Refused(format!(
                "more than one task matches \"{title}\"; use its full title"
            ))),
            (None, _) => Err(ToolError::Refused(format!("no task is titled \"{title}\""))),
        }
    }

    pub async fn move_task(
        &self,
        task_id: &str,
        lane: &str,
        request_id: String,
    ) -> Result<Task, ToolError> {
        let mut client = self.channel.client();
        self.call(client.move_task(self.request(MoveTaskRequest {
            task_id: task_id.into(),
            to_lane_id: lane.into(),
            request_id,
            ..Default::default()
        })))
        .await
    }

    pub async fn delete_task(&self, task_id: &str, request_id: String) -> Result<(), ToolError> {
        let mut client = self.channel.client();
        self.call(client.delete_task(self.request(DeleteTaskRequest {
            task_id: task_id.into(),
            request_id,
            ..Default::default()
        })))
        .await
        .map(drop)
    }
}

impl BoardTools {
    /// The board's sprints, by start time.
    pub async fn sprints(&self, board: &str) -> Result<Vec<Sprint>, ToolError> {
        let mut client = self.channel.client();
        let listed = self
            .call(client.list_sprints(self.request(ListSprintsRequest {
                board_id: board.into(),
            })))
            .await?;
        Ok(listed.sprints)
    }

    /// The board's active sprint.
    pub async fn active_sprint(&self, board: &str) -> Result<Sprint, ToolError> {
        let sprints = self.sprints(board).await?;
        sprints
            .into_iter()
            .find(|s| s.state() == SprintState::Active)
            .ok_or_else(|| ToolError::Refused("no sprint is active on this board".into()))
    }

    /// The sprint new work goes in: the active one, else the earliest planned.
    pub async fn current_sprint(&self, board: &str) -> Result<Sprint, ToolError> {
        let sprints = self.sprints(board).await?;
        let pick = |state| sprints.iter().find(|s| s.state() == state).cloned();
        pick(SprintState::Active)
            .or_else(|| pick(SprintState::Planned))
            .ok_or_else(|| {
                ToolError::Refused(
                    "the board has no active or planned sprint; plan one first".into(),
                )
            })
    }

    pub async fn start_sprint(
        &self,
        sprint_id: &str,
        request_id: String,
    ) -> Result<Sprint, ToolError> {
        let mut client = self.channel.client();
        self.call(client.start_sprint(self.request(StartSprintRequest {
            sprint_id: sprint_id.into(),
            request_id,
            ..Default::default()
        })))
        .await
    }

    /// Completes the sprint; its unfinished tasks go back to the backlog.
    pub async fn complete_sprint(
        &self,
        sprint_id: &str,
        request_id: String,
    ) -> Result<CompleteSprintResponse, ToolError> {
        let mut client = self.channel.client();
        self.call(client.complete_sprint(self.request(CompleteSprintRequest {
            sprint_id: sprint_id.into(),
            request_id,
            ..Default::default()
        })))
        .await
    }

    pub async fn plan_task(
        &self,
        task_id: &str,
        sprint_id: &str,
        request_id: String,
    ) -> Result<Task, ToolError> {
        let mut client = self.channel.client();
        self.call(client.update_task(self.request(UpdateTaskRequest {
            task_id: task_id.into(),
            sprint_id: Some(sprint_id.into()),
            request_id,
            ..Default::default()
        })))
        .await
    }

    /// The task whose title holds every one of `words` (ignoring case): the
    /// one whose title is exactly them, else the only one.
    pub async fn find_task_by_words(&self, board: &str, words: &str) -> Result<Task, ToolError> {
        let tasks = self.tasks(board).await?;
        let wanted = words.to_lowercase();
        if let Some(task) = tasks.iter().find(|t| t.title.to_lowercase() == wanted) {
            return Ok(task.clone());
        }
        let words: Vec<&str> = wanted.split_whitespace().collect();
        let mut matching = tasks.into_iter().filter(|t| {
            let title = t.title.to_lowercase();
            words.iter().all(|w| title.contains(w))
        });
        match (matching.next(), matching.next()) {
            (Some(task), None) => Ok(task),
            (Some(a), Some(b)) => Err(ToolError::Refused(format!(
                "more than one task matches \"{words}\" (\"{}\", \"{}\", ...); use more of its title",
                a.title,
                b.title,
                words = words.join(" ")
            ))),
            (None, _) => Err(ToolError::Refused(format!(
                "no task title holds \"{}\"",
                words.join(" ")
            ))),
        }
    }
}

/// A sprint as tools return it: the frames' sprint shape, with its board.
pub fn sprint_json(sprint: &Sprint) -> Value {
    let mut value =
        serde_json::to_value(protocol::board_frames::SprintData::from(sprint)).unwrap_or_default();
    value["boardId"] = json!(sprint.board_id);
    value
}

/// A task as tools return it: the frames' task shape, with its board.
pub fn task_json(task: &Task) -> Value {
    let mut value =
        serde_json::to_value(protocol::board_frames::TaskData::from(task)).unwrap_or_default();
    value["boardId"] = json!(task.board_id);
    value
}

/// A priority's name, as frames spell it.
pub fn priority_label(priority: Priority) -> &'static str {
    protocol::board_frames::Priority::from_proto(priority as i32).as_str()
}

/// A kind's name, as frames spell it.
pub fn kind_label(kind: TaskKind) -> &'static str {
    protocol::board_frames::TaskKind::from_proto(kind as i32).as_str()
}

/// "in_progress" → "in progress", for replies.
pub fn lane_words(key: &str) -> String {
    key.replace('_', " ")
}
