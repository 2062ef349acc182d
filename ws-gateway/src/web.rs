//! The browser UI (`web/` at the repo root), embedded in the binary so
//! `cargo run` and the container serve it with no build step, and the small
//! board-list API its home page uses. Only the files the page loads are
//! embedded: not its tests or node_modules.

use std::{net::SocketAddr, sync::Arc};

use axum::{
    Json, Router,
    extract::{ConnectInfo, Path, Query, Request, State, rejection::QueryRejection},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use include_dir::{Dir, include_dir};
use protocol::v1::{CreateBoardRequest, ListBoardsRequest};
use serde::{Deserialize, Serialize};

use crate::{
    auth::{Access, Grant},
    error::Error,
    state::Shared,
    upstream::as_user,
    ws::TokenQuery,
};

static APP: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/../web/app");
static LIB: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/../web/lib");
static INDEX: &str = include_str!("../../web/index.html");
static STYLES: &str = include_str!("../../web/styles.css");

/// `/`: the page for a browser, the board WebSocket for a client that asks
/// to upgrade (seed 003's client connects to `ws://host:4002` at the root).
async fn root(
    state: State<Arc<Shared>>,
    peer: ConnectInfo<SocketAddr>,
    query: Result<Query<TokenQuery>, QueryRejection>,
    request: Request,
) -> Response {
    let upgrade = request
        .headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    if !upgrade {
        return asset("index.html", INDEX.as_bytes()).into_response();
    }
    match query {
        Ok(query) => crate::ws::upgrade(state, peer, query, request).await,
        Err(rejection) => rejection.into_response(),
    }
}

/// Routes serving the UI at `/` and `/api/boards`. Every gateway serves
/// them, alone or inside the all-in-one binary.
pub(crate) fn router() -> Router<Arc<Shared>> {
    Router::new()
        .route("/", get(root))
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
        .route("/api/boards/{board}/sprints", get(list_sprints))
        .route(
            "/api/boards/{board}/sprints/{sprint}/{action}",
            axum::routing::post(sprint_action),
        )
}

/// `GET /api/boards/{board}/sprints`: the board's sprints, as the caller
/// (for the page's sprint picker).
async fn list_sprints(
    State(shared): State<Arc<Shared>>,
    Path(board): Path<String>,
    Query(query): Query<TokenQuery>,
    headers: HeaderMap,
) -> Response {
    let grant = match caller(&shared, &headers, &query).await {
        Ok(grant) => grant,
        Err(refusal) => return refusal,
    };
    let mut api = shared.hub.upstream().client();
    let request = as_user(
        grant.token.as_deref(),
        protocol::v1::ListSprintsRequest { board_id: board },
    );
    match api.list_sprints(request).await {
        Ok(list) => {
            let sprints: Vec<protocol::board_frames::SprintData> =
                list.get_ref().sprints.iter().map(Into::into).collect();
            Json(serde_json::json!({ "sprints": sprints })).into_response()
        }
        Err(status) => Error::from(status).into_response(),
    }
}

/// `POST /api/boards/{board}/sprints/{sprint}/start|complete`: starts or
/// completes a sprint as the caller; board-service checks the write (and
/// that the sprint is on a board the caller may change). The change
/// reaches every page as `sprint.started` / `sprint.completed`.
async fn sprint_action(
    State(shared): State<Arc<Shared>>,
    Path((_board, sprint, action)): Path<(String, String, String)>,
    Query(query): Query<TokenQuery>,
    headers: HeaderMap,
) -> Response {
    let grant = match caller(&shared, &headers, &query).await {
        Ok(grant) => grant,
        Err(refusal) => return refusal,
    };
    let mut api = shared.hub.upstream().client();
    let token = grant.token.as_deref();
    let request_id = uuid::Uuid::new_v4().to_string();
    let answer = match action.as_str() {
        "start" => api
            .start_sprint(as_user(
                token,
                protocol::v1::StartSprintRequest {
                    sprint_id: sprint,
                    expected_version: None,
                    request_id,
                },
            ))
            .await
            .map(|r| protocol::board_frames::SprintData::from(r.get_ref())),
        "complete" => api
            .complete_sprint(as_user(
                token,
                protocol::v1::CompleteSprintRequest {
                    sprint_id: sprint,
                    request_id,
                    ..Default::default()
                },
            ))
            .await
            .map(|r| {
                protocol::board_frames::SprintData::from(
                    &r.get_ref().sprint.clone().unwrap_or_default(),
                )
            }),
        other => {
            let message = format!("unknown sprint action {other:?}; use start or complete");
            return Error::InvalidArgument(message).into_response();
        }
    };
    match answer {
        Ok(sprint) => Json(sprint).into_response(),
        Err(status) => Error::from(status).into_response(),
    }
}

/// The caller of an HTTP request, or the 401 that answers it.
pub(crate) async fn caller(
    shared: &Shared,
    headers: &HeaderMap,
    query: &TokenQuery,
) -> Result<Grant, Response> {
    if shared.auth.is_none() {
        return Ok(Grant::open());
    }
    let Some(token) = crate::ws::token(query, headers) else {
        return Err(Error::Unauthorized("a bearer token is required".into()).into_response());
    };
    crate::auth::verify(shared, token)
        .await
        .map_err(|(_, message)| Error::Unauthorized(message).into_response())
}

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

fn summary(board: protocol::v1::Board) -> BoardSummary {
    BoardSummary {
        id: board.id,
        slug: board.slug,
        name: board.name,
        version: board.version,
    }
}

async fn list_boards(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<TokenQuery>,
    headers: HeaderMap,
) -> Response {
    let grant = match caller(&shared, &headers, &query).await {
        Ok(grant) => grant,
        Err(refusal) => return refusal,
    };
    let mut api = shared.hub.upstream().client();
    let request = as_user(grant.token.as_deref(), ListBoardsRequest {});
    match api.list_boards(request).await {
        Ok(list) => Json(BoardList {
            boards: list
                .into_inner()
                .boards
                .into_iter()
                // board-service filters too; this holds even if it did not.
                .filter(|b| grant.access.can_read(&b.id, &b.slug))
                .map(summary)
                .collect(),
        })
        .into_response(),
        Err(status) => Error::from(status).into_response(),
    }
}

async fn create_board(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<TokenQuery>,
    headers: HeaderMap,
    body: Result<Json<NewBoard>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let grant = match caller(&shared, &headers, &query).await {
        Ok(grant) => grant,
        Err(refusal) => return refusal,
    };
    if !Access::can_create_boards(&grant.access) {
        return Error::CannotCreateBoards.into_response();
    }
    let new = match body {
        Ok(Json(new)) => new,
        // axum's text names the failing field (`name: invalid type: …`).
        Err(rejection) => {
            return Error::InvalidArgument(format!(
                "body must be JSON {{\"name\": \"…\", \"slug\"?: \"…\"}}: {}",
                rejection.body_text()
            ))
            .into_response();
        }
    };
    for (field, value) in [("name", Some(&new.name)), ("slug", new.slug.as_ref())] {
        if let Some(c) = value.and_then(|v| v.chars().find(|c| c.is_control())) {
            return Error::InvalidArgument(format!(
                "{field} must not contain control characters (found U+{:04X})",
                c as u32
            ))
            .into_response();
        }
    }
    let request = CreateBoardRequest {
        name: new.name,
        slug: new.slug,
        ..Default::default()
    };
    let mut api = shared.hub.upstream().client();
    match api
        .create_board(as_user(grant.token.as_deref(), request))
        .await
    {
        Ok(board) => (StatusCode::CREATED, Json(summary(board.into_inner()))).into_response(),
        Err(status) => Error::from(status).into_response(),
    }
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
