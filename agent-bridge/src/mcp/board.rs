//! The board-service calls the MCP tools make, with the caller's token.
//!
//! The built-in agent's [`BoardTools`] has the calls it needs; the MCP
//! server needs the rest of the API (lanes, updates, anchors, versions and
//! the watch stream), built the same way: a lazy channel, the trace-context
//! interceptor, a deadline per call, and every failure classified by `protocol::status`.
//!
//! [`BoardTools`]: crate::agent::builtin::tools::BoardTools

use std::{sync::Arc, time::Duration};

use protocol::v1::{
    Board, BoardEvent, BoardSnapshot, CreateLaneRequest, CreateTaskRequest, DeleteTaskRequest,
    GetBoardRequest, Lane, ListBoardsRequest, MoveTaskRequest, Task, UpdateLaneRequest,
    UpdateTaskRequest, WatchBoardRequest, board_service_client::BoardServiceClient,
};
use tonic::{Streaming, service::interceptor::InterceptedService, transport::Channel};

use super::error::BoardError;

type TracedChannel = InterceptedService<
    Channel,
    fn(tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status>,
>;

/// A board-service client acting for one caller.
#[derive(Clone)]
pub struct BoardClient {
    client: BoardServiceClient<TracedChannel>,
    timeout: Duration,
    bearer: Option<Arc<str>>,
}

impl BoardClient {
    /// Connects lazily, so the server starts while board-service is down.
    pub fn new(url: &str, timeout: Duration) -> anyhow::Result<Self> {
        let channel = Channel::from_shared(url.to_owned())?
            .connect_timeout(timeout)
            .connect_lazy();
        Ok(Self {
            client: BoardServiceClient::with_interceptor(
                channel,
                service_kit::telemetry::propagation::grpc_client_interceptor as fn(_) -> _,
            ),
            timeout,
            bearer: None,
        })
    }

    /// This client acting for the user whose token this is.
    pub fn with_bearer(&self, token: Option<&str>) -> Self {
        Self {
            bearer: token.map(Arc::from),
            ..self.clone()
        }
    }

    fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        if let Some(token) = &self.bearer {
            service_kit::auth::insert_bearer(request.metadata_mut(), token);
        }
        request
    }

    async fn call<T>(
        &self,
        call: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    ) -> Result<T, BoardError> {
        match tokio::time::timeout(self.timeout, call).await {
            Ok(result) => Ok(result?.into_inner()),
            Err(_) => Err(BoardError::timed_out(self.timeout)),
        }
    }

    pub async fn list_boards(&self) -> Result<Vec<Board>, BoardError> {
        let mut client = self.client.clone();
        let boards = self
            .call(client.list_boards(self.request(ListBoardsRequest {})))
            .await?;
        Ok(boards.boards)
    }

    pub async fn get_board(&self, board: &str) -> Result<BoardSnapshot, BoardError> {
        let mut client = self.client.clone();
        self.call(client.get_board(self.request(GetBoardRequest {
            board_id: board.into(),
        })))
        .await
    }

    pub async fn create_task(&self, request: CreateTaskRequest) -> Result<Task, BoardError> {
        let mut client = self.client.clone();
        self.call(client.create_task(self.request(request))).await
    }

    pub async fn update_task(&self, request: UpdateTaskRequest) -> Result<Task, BoardError> {
        let mut client = self.client.clone();
        self.call(client.update_task(self.request(request))).await
    }

    pub async fn move_task(&self, request: MoveTaskRequest) -> Result<Task, BoardError> {
        let mut client = self.client.clone();
        self.call(client.move_task(self.request(request))).await
    }

    /// The board version after the delete.
    pub async fn delete_task(&self, request: DeleteTaskRequest) -> Result<u64, BoardError> {
        let mut client = self.client.clone();
        let deleted = self.call(client.delete_task(self.request(request))).await?;
        Ok(deleted.board_version)
    }

    pub async fn create_lane(&self, request: CreateLaneRequest) -> Result<Lane, BoardError> {
        let mut client = self.client.clone();
        self.call(client.create_lane(self.request(request))).await
    }

    pub async fn update_lane(&self, request: UpdateLaneRequest) -> Result<Lane, BoardError> {
        let mut client = self.client.clone();
        self.call(client.update_lane(self.request(request))).await
    }

    /// The board's events after `after_version`, in order, without end; only
    /// opening the stream has a deadline.
    pub async fn watch(
        &self,
        board: &str,
        after_version: u64,
    ) -> Result<Streaming<BoardEvent>, BoardError> {
        let mut client = self.client.clone();
        self.call(client.watch_board(self.request(WatchBoardRequest {
            board_id: board.into(),
            after_version,
        })))
        .await
    }
}
