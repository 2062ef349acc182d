//! The board-service calls the MCP tools make, with the caller's token.
//!
//! The built-in agent's tools need a few calls; the MCP server needs the
//! rest of the API (lanes, updates, anchors, versions and the watch stream).
//! Both go through one [`BoardChannel`]; failures are classified by
//! `protocol::status`.

use std::time::Duration;

use protocol::v1::{
    Board, BoardEvent, BoardSnapshot, CompleteSprintRequest, CompleteSprintResponse,
    CreateLaneRequest, CreateSprintRequest, CreateTaskRequest, DeleteTaskRequest, GetBoardRequest,
    Lane, ListBoardsRequest, ListSprintsRequest, MoveTaskRequest, Sprint, StartSprintRequest, Task,
    UpdateLaneRequest, UpdateTaskRequest, WatchBoardRequest,
};
use tonic::Streaming;

use super::error::BoardError;
use crate::board_channel::BoardChannel;

/// A board-service client acting for one caller.
#[derive(Clone)]
pub struct BoardClient {
    channel: BoardChannel,
}

impl BoardClient {
    /// Connects lazily, so the server starts while board-service is down.
    pub fn new(url: &str, timeout: Duration) -> anyhow::Result<Self> {
        Ok(Self {
            channel: BoardChannel::new(url, timeout)?,
        })
    }

    /// This client acting for the user whose token this is.
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
        call: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    ) -> Result<T, BoardError> {
        self.channel.call(call, BoardError::timed_out).await
    }

    pub async fn list_boards(&self) -> Result<Vec<Board>, BoardError> {
        let mut client = self.channel.client();
        let boards = self
            .call(client.list_boards(self.request(ListBoardsRequest {})))
            .await?;
        Ok(boards.boards)
    }

    pub async fn get_board(&self, board: &str) -> Result<BoardSnapshot, BoardError> {
        let mut client = self.channel.client();
        self.call(client.get_board(self.request(GetBoardRequest {
            board_id: board.into(),
        })))
        .await
    }

    pub async fn create_task(&self, request: CreateTaskRequest) -> Result<Task, BoardError> {
        let mut client = self.channel.client();
        self.call(client.create_task(self.request(request))).await
    }

    pub async fn update_task(&self, request: UpdateTaskRequest) -> Result<Task, BoardError> {
        let mut client = self.channel.client();
        self.call(client.update_task(self.request(request))).await
    }

    pub async fn move_task(&self, request: MoveTaskRequest) -> Result<Task, BoardError> {
        let mut client = self.channel.client();
        self.call(client.move_task(self.request(request))).await
    }

    /// The board version after the delete.
    pub async fn delete_task(&self, request: DeleteTaskRequest) -> Result<u64, BoardError> {
        let mut client = self.channel.client();
        let deleted = self.call(client.delete_task(self.request(request))).await?;
        Ok(deleted.board_version)
    }

    pub async fn create_lane(&self, request: CreateLaneRequest) -> Result<Lane, BoardError> {
        let mut client = self.channel.client();
        self.call(client.create_lane(self.request(request))).await
    }

    pub async fn update_lane(&self, request: UpdateLaneRequest) -> Result<Lane, BoardError> {
        let mut client = self.channel.client();
        self.call(client.update_lane(self.request(request))).await
    }

    /// The board's sprints, by start time.
    pub async fn list_sprints(&self, board: &str) -> Result<Vec<Sprint>, BoardError> {
        let mut client = self.channel.client();
        let listed = self
            .call(client.list_sprints(self.request(ListSprintsRequest {
                board_id: board.into(),
            })))
            .await?;
        Ok(listed.sprints)
    }

    pub async fn create_sprint(&self, request: CreateSprintRequest) -> Result<Sprint, BoardError> {
        let mut client = self.channel.client();
        self.call(client.create_sprint(self.request(request))).await
    }

    pub async fn start_sprint(&self, request: StartSprintRequest) -> Result<Sprint, BoardError> {
        let mut client = self.channel.client();
        self.call(client.start_sprint(self.request(request))).await
    }

    pub async fn complete_sprint(
        &self,
        request: CompleteSprintRequest,
    ) -> Result<CompleteSprintResponse, BoardError> {
        let mut client = self.channel.client();
        self.call(client.complete_sprint(self.request(request)))
            .await
    }

    /// The board's events after `after_version`, in order, without end; only
    /// opening the stream has a deadline.
    pub async fn watch(
        &self,
        board: &str,
        after_version: u64,
    ) -> Result<Streaming<BoardEvent>, BoardError> {
        let mut client = self.channel.client();
        self.call(client.watch_board(self.request(WatchBoardRequest {
            board_id: board.into(),
            after_version,
        })))
        .await
    }
}
