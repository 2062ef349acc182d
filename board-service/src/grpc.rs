//! The `boardwire.v1.BoardService` gRPC API over [`Store`] and [`EventHub`].

use std::pin::Pin;

use futures::{Stream, StreamExt};
use protocol::v1::{
    Board, BoardEvent, BoardSnapshot, CompleteSprintRequest, CompleteSprintResponse,
    CreateBoardRequest, CreateLaneRequest, CreateProjectRequest, CreateSprintRequest,
    CreateTaskRequest, DeleteLaneRequest, DeleteLaneResponse, DeleteTaskRequest,
    DeleteTaskResponse, GetBoardRequest, GetProjectRequest, Lane, ListBoardsRequest,
    ListBoardsResponse, ListProjectsRequest, ListProjectsResponse, ListSprintsRequest,
    ListSprintsResponse, MoveTaskRequest, Project, ProjectView, SetBoardProjectRequest, Sprint,
    StartSprintRequest, Task, UpdateLaneRequest, UpdateProjectRequest, UpdateTaskRequest,
    WatchBoardRequest, board_service_server::BoardService,
};
use service_kit::auth::{Access, AuthError, Authenticator, bearer_from_metadata};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use crate::{
    error::Error,
    events::EventHub,
    metrics::Metrics,
    store::{Store, check_read},
};

/// Events buffered per watcher between the log reader and the network.
const WATCH_BUFFER: usize = 256;

/// The gRPC face of board-service.
pub struct BoardApi {
    store: Store,
    hub: EventHub,
    /// `None` with auth off: every caller may do everything.
    auth: Option<Authenticator>,
    metrics: Metrics,
}

impl BoardApi {
    pub fn new(store: Store, hub: EventHub, auth: Option<Authenticator>, metrics: Metrics) -> Self {
        Self {
            store,
            hub,
            auth,
            metrics,
        }
    }

    /// What the caller's bearer token grants. Every RPC asks first.
    async fn access<T>(&self, request: &Request<T>) -> Result<Access, Status> {
        access(self.auth.as_ref(), request).await
    }
}

/// What the bearer token of `request` grants; everything with auth off.
pub(crate) async fn access<T>(
    auth: Option<&Authenticator>,
    request: &Request<T>,
) -> Result<Access, Status> {
    let Some(auth) = auth else {
        return Ok(Access::open());
    };
    let token = bearer_from_metadata(request.metadata()).ok_or(AuthError::Missing);
    match token {
        Ok(token) => auth.verify(token).await,
        Err(missing) => Err(missing),
    }
    .map_err(|e| match e {
        AuthError::KeysUnavailable(_) => Status::unavailable(e.to_string()),
        e => Error::Unauthenticated(e.to_string()).into(),
    })
}

type Reply<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl BoardService for BoardApi {
    #[tracing::instrument(skip_all, fields(name = %request.get_ref().name))]
    async fn create_board(&self, request: Request<CreateBoardRequest>) -> Reply<Board> {
        Ok(Response::new(
            self.store
                .create_board(&self.access(&request).await?, request.into_inner())
                .await?,
        ))
    }

    #[tracing::instrument(skip_all, fields(board = %request.get_ref().board_id))]
    async fn get_board(&self, request: Request<GetBoardRequest>) -> Reply<BoardSnapshot> {
        let access = self.access(&request).await?;
        let snapshot = self
            .store
            .board_snapshot(&request.get_ref().board_id)
            .await?;
        let board = snapshot.board.as_ref();
        check_read(
            &access,
            board.map_or("", |b| b.id.as_str()),
            board.map_or("", |b| b.slug.as_str()),
        )?;
        Ok(Response::new(snapshot))
    }

    #[tracing::instrument(skip_all)]
    async fn list_boards(&self, request: Request<ListBoardsRequest>) -> Reply<ListBoardsResponse> {
        let access = self.access(&request).await?;
        let mut boards = self.store.list_boards().await?;
        boards.retain(|b| access.can_read(&b.id, &b.slug));
        Ok(Response::new(ListBoardsResponse { boards }))
    }

    #[tracing::instrument(skip_all, fields(board = %request.get_ref().board_id))]
    async fn create_lane(&self, request: Request<CreateLaneRequest>) -> Reply<Lane> {
        Ok(Response::new(
            self.store
                .create_lane(&self.access(&request).await?, request.into_inner())
                .await?,
        ))
    }

    #[tracing::instrument(skip_all, fields(lane = %request.get_ref().lane_id))]
    async fn update_lane(&self, request: Request<UpdateLaneRequest>) -> Reply<Lane> {
        Ok(Response::new(
            self.store
                .update_lane(&self.access(&request).await?, request.into_inner())
                .await?,
        ))
    }

    #[tracing::instrument(skip_all, fields(lane = %request.get_ref().lane_id))]
    async fn delete_lane(&self, request: Request<DeleteLaneRequest>) -> Reply<DeleteLaneResponse> {
        Ok(Response::new(
            self.store
                .delete_lane(&self.access(&request).await?, request.into_inner())
                .await?,
        ))
    }

    #[tracing::instrument(skip_all, fields(board = %request.get_ref().board_id))]
    async fn create_task(&self, request: Request<CreateTaskRequest>) -> Reply<Task> {
        Ok(Response::new(
            self.store
                .create_task(&self.access(&request).await?, request.into_inner())
                .await?,
        ))
    }

    #[tracing::instrument(skip_all, fields(task = %request.get_ref().task_id))]
    async fn update_task(&self, request: Request<UpdateTaskRequest>) -> Reply<Task> {
        Ok(Response::new(
            self.store
                .update_task(&self.access(&request).await?, request.into_inner())
                .await?,
        ))
    }

    #[tracing::instrument(skip_all, fields(task = %request.get_ref().task_id))]
    async fn move_task(&self, request: Request<MoveTaskRequest>) -> Reply<Task> {
        Ok(Response::new(
            self.store
                .move_task(&self.access(&request).await?, request.into_inner())
                .await?,
        ))
    }

    #[tracing::instrument(skip_all, fields(task = %request.get_ref().task_id))]
    async fn delete_task(&self, request: Request<DeleteTaskRequest>) -> Reply<DeleteTaskResponse> {
        Ok(Response::new(
            self.store
                .delete_task(&self.access(&request).await?, request.into_inner())
                .await?,
        ))
    }

    #[tracing::instrument(skip_all, fields(name = %request.get_ref().name))]
    async fn create_project(&self, request: Request<CreateProjectRequest>) -> Reply<Project> {
        Ok(Response::new(
            self.store
                .create_project(&self.access(&request).await?, request.into_inner())
                .await?,
        ))
    }

    #[tracing::instrument(skip_all, fields(project = %request.get_ref().project_id))]
    async fn update_project(&self, request: Request<UpdateProjectRequest>) -> Reply<Project> {
        Ok(Response::new(
            self.store
                .update_project(&self.access(&request).await?, request.into_inner())
                .await?,
        ))
    }

    #[tracing::instrument(skip_all)]
    async fn list_projects(
        &self,
        request: Request<ListProjectsRequest>,
    ) -> Reply<ListProjectsResponse> {
        let projects = self
            .store
            .list_projects(&self.access(&request).await?, request.into_inner())
            .await?;
        Ok(Response::new(ListProjectsResponse { projects }))
    }

    #[tracing::instrument(skip_all, fields(project = %request.get_ref().project_id))]
    async fn get_project(&self, request: Request<GetProjectRequest>) -> Reply<ProjectView> {
        let access = self.access(&request).await?;
        Ok(Response::new(
            self.store
                .get_project(&access, &request.get_ref().project_id)
                .await?,
        ))
    }

    #[tracing::instrument(skip_all, fields(board = %request.get_ref().board_id))]
    async fn set_board_project(&self, request: Request<SetBoardProjectRequest>) -> Reply<Project> {
        Ok(Response::new(
            self.store
                .set_board_project(&self.access(&request).await?, request.into_inner())
                .await?,
        ))
    }

    #[tracing::instrument(skip_all, fields(board = %request.get_ref().board_id))]
    async fn create_sprint(&self, request: Request<CreateSprintRequest>) -> Reply<Sprint> {
        Ok(Response::new(
            self.store
                .create_sprint(&self.access(&request).await?, request.into_inner())
                .await?,
        ))
    }

    #[tracing::instrument(skip_all, fields(sprint = %request.get_ref().sprint_id))]
    async fn start_sprint(&self, request: Request<StartSprintRequest>) -> Reply<Sprint> {
        Ok(Response::new(
            self.store
                .start_sprint(&self.access(&request).await?, request.into_inner())
                .await?,
        ))
    }

    #[tracing::instrument(skip_all, fields(sprint = %request.get_ref().sprint_id))]
    async fn complete_sprint(
        &self,
        request: Request<CompleteSprintRequest>,
    ) -> Reply<CompleteSprintResponse> {
        Ok(Response::new(
            self.store
                .complete_sprint(&self.access(&request).await?, request.into_inner())
                .await?,
        ))
    }

    #[tracing::instrument(skip_all, fields(board = %request.get_ref().board_id))]
    async fn list_sprints(
        &self,
        request: Request<ListSprintsRequest>,
    ) -> Reply<ListSprintsResponse> {
        let access = self.access(&request).await?;
        let sprints = self
            .store
            .list_sprints(&access, &request.get_ref().board_id)
            .await?;
        Ok(Response::new(ListSprintsResponse { sprints }))
    }

    type WatchBoardStream = Pin<Box<dyn Stream<Item = Result<BoardEvent, Status>> + Send>>;

    #[tracing::instrument(skip_all, fields(board = %request.get_ref().board_id, after = request.get_ref().after_version))]
    async fn watch_board(
        &self,
        request: Request<WatchBoardRequest>,
    ) -> Reply<Self::WatchBoardStream> {
        let access = self.access(&request).await?;
        let WatchBoardRequest {
            board_id,
            after_version,
        } = request.into_inner();
        let board = self.store.resolve_board(&board_id).await?;
        check_read(&access, &board.id.to_string(), &board.slug)?;
        let (tx, rx) = mpsc::channel(WATCH_BUFFER);
        let (pool, hub) = (self.store.pool().clone(), self.hub.clone());
        let watching = self.metrics.watcher();
        tokio::spawn(async move {
            crate::events::watch::run(pool, hub, board.id, after_version, tx).await;
            drop(watching);
        });
        let metrics = self.metrics.clone();
        let stream = ReceiverStream::new(rx).inspect(move |item| {
            if item.is_ok() {
                metrics.event_streamed();
            }
        });
        Ok(Response::new(Box::pin(stream)))
    }
}
