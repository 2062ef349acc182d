//! The browser UI (`web/` at the repo root), embedded in the binary so
//! `cargo run` and the container serve it with no build step, and the small
//! board-list API its home page uses. Only the files the page loads are
//! embedded: not its tests or node_modules.

use axum::{
    Json, Router,
    extract::{Path, State},
    http::{StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use include_dir::{Dir, include_dir};
use protocol::v1::{
    CreateBoardRequest, ListBoardsRequest, board_service_client::BoardServiceClient,
};
use serde::{Deserialize, Serialize};
use tonic::transport::Channel;

static APP: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/../web/app");
static LIB: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/../web/lib");
static INDEX: &str = include_str!("../../web/index.html");
static STYLES: &str = include_str!("../../web/styles.css");

/// Routes serving the UI at `/` and `/api/boards`; merge them beside the
/// gateway's own. `board_service_url` is board-service's gRPC URL.
pub fn router(board_service_url: &str) -> anyhow::Result<Router> {
    let channel = Channel::from_shared(board_service_url.to_owned())?.connect_lazy();
    let boards = BoardServiceClient::new(channel);
    Ok(Router::new()
        .route("/", get(|| async { asset("index.html", INDEX.as_bytes()) }))
        .route(
            "/index.html",
            get(|| async { asset("index.html", INDEX.as_bytes()) }),
        )
        .route(
            "/styles.css",
            get(|| async { asset("styles.css", STYLES.as_bytes()) }),
        )
        .route(
            "/app/{*path}",
            get(|Path(path): Path<String>| async move { from_dir(&APP, &path) }),
        )
        .route(
            "/lib/{*path}",
            get(|Path(path): Path<String>| async move { from_dir(&LIB, &path) }),
        )
        .route("/api/boards", get(list_boards).post(create_board))
        .with_state(boards))
}

type Boards = State<BoardServiceClient<Channel>>;

#[derive(Serialize)]
struct BoardSummary {
    id: String,
    slug: String,
    name: String,
    version: u64,
}

#[derive(Serialize)]
struct BoardList {
    boards: Vec<BoardSummary>,
}

#[derive(Deserialize)]
struct NewBoard {
    name: String,
    #[serde(default)]
    slug: Option<String>,
}

#[derive(Serialize)]
struct ApiError {
    code: &'static str,
    message: String,
}

fn summary(board: protocol::v1::Board) -> BoardSummary {
    BoardSummary {
        id: board.id,
        slug: board.slug,
        name: board.name,
        version: board.version,
    }
}

async fn list_boards(State(mut boards): Boards) -> Response {
    match boards.list_boards(ListBoardsRequest {}).await {
        Ok(list) => Json(BoardList {
            boards: list.into_inner().boards.into_iter().map(summary).collect(),
        })
        .into_response(),
        Err(status) => api_error(&status),
    }
}

async fn create_board(
    State(mut boards): Boards,
    body: Result<Json<NewBoard>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Ok(Json(new)) = body else {
        let error = ApiError {
            code: "invalid_argument",
            message: "body must be JSON {\"name\": \"…\", \"slug\"?: \"…\"}".into(),
        };
        return (StatusCode::BAD_REQUEST, Json(error)).into_response();
    };
    let request = CreateBoardRequest {
        name: new.name,
        slug: new.slug,
        ..Default::default()
    };
    match boards.create_board(request).await {
        Ok(board) => (StatusCode::CREATED, Json(summary(board.into_inner()))).into_response(),
        Err(status) => api_error(&status),
    }
}

/// board-service's refusal as JSON; internal causes stay in the log.
fn api_error(status: &tonic::Status) -> Response {
    use tonic::Code;
    let (http, code, message) = match status.code() {
        Code::InvalidArgument => (
            StatusCode::BAD_REQUEST,
            "invalid_argument",
            status.message().to_owned(),
        ),
        Code::AlreadyExists => (
            StatusCode::CONFLICT,
            "already_exists",
            status.message().to_owned(),
        ),
        Code::NotFound => (
            StatusCode::NOT_FOUND,
            "not_found",
            status.message().to_owned(),
        ),
        Code::Unavailable | Code::DeadlineExceeded => (
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "board-service is unavailable, retry later".to_owned(),
        ),
        _ => {
            tracing::error!(%status, "board-service call failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "internal error".to_owned(),
            )
        }
    };
    (http, Json(ApiError { code, message })).into_response()
}

fn from_dir(dir: &'static Dir<'static>, path: &str) -> Response {
    match dir.get_file(path) {
        Some(file) => asset(path, file.contents()),
        None => (StatusCode::NOT_FOUND, "not found").into_response(),
    }
}

fn asset(path: &str, body: &'static [u8]) -> Response {
    let content_type = match path.rsplit('.').next() {
        Some("html") => "text/html; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("json") => "application/json",
        _ => "application/octet-stream",
    };
    // No build step means no hashed names: let browsers revalidate.
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}
