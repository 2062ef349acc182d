//! The HTTP surface: `/ws/chat`, the HTTP fallback under `/api`, the AG-UI
//! endpoint `/agui` and `/health`.
//!
//! With auth on, everything but `/health` and `/metrics` needs a bearer token. Browsers
//! from origins off the allowlist get 403; allowed ones get CORS headers.

mod agui;
mod api;
mod auth;
mod error;
mod limits;
pub mod validate;
mod ws;

use std::sync::Arc;

use axum::{
    Router,
    extract::{DefaultBodyLimit, Request, State},
    http::{HeaderValue, Method, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use tokio_util::sync::CancellationToken;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::{config::origin_allowed, run::Runner, session::Sessions};

pub use auth::{Caller, Gate};
pub use error::ApiError;
pub use limits::Admission;
pub use validate::MAX_CONTENT_CHARS;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub sessions: Sessions,
    pub runner: Runner,
    pub store: crate::store::Store,
    /// Cancelled at shutdown: sockets close with 1001.
    pub stop: CancellationToken,
    pub socket_queue: usize,
    pub gate: Gate,
    pub admission: Admission,
    /// Browser origins allowed; empty allows any.
    pub allowed_origins: Arc<[String]>,
    /// The MCP server at `/mcp`.
    pub mcp: crate::mcp::McpHttp,
}

pub fn router(state: AppState) -> Router {
    let max_body = state.admission.limits().max_frame_bytes;
    let api = Router::new()
        .route("/ws/chat", get(ws::upgrade))
        .route("/api/chat", post(api::chat))
        .route("/agui", post(agui::run))
        .route("/api/sessions/{id}/messages", get(api::messages))
        .layer(DefaultBodyLimit::max(max_body))
        .layer(cors(&state.allowed_origins))
        .layer(middleware::from_fn_with_state(state.clone(), check_origin));
    Router::new()
        .merge(api)
        .merge(crate::mcp::router(&state))
        .route("/health", get(|| async { "ok" }))
        .route("/metrics", get(metrics))
        .with_state(state)
}

/// `GET /metrics`: the Prometheus text format. Open like `/health`: it
/// says how busy the bridge is, nothing of any session.
async fn metrics(State(state): State<AppState>) -> Response {
    let metrics = &crate::metrics::METRICS;
    metrics.sessions.set(state.sessions.len() as i64);
    metrics.sockets.set(state.admission.open_sockets() as i64);
    service_kit::exposition::metrics_response(metrics.render())
}

/// Browsers send `Origin`; one off the allowlist gets 403 before anything
/// else, the WebSocket upgrade included (browsers do not apply CORS to it).
async fn check_origin(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let origin = request
        .headers()
        .get(header::ORIGIN)
        .map(|o| o.to_str().unwrap_or("\u{fffd}"));
    if origin_allowed(&state.allowed_origins, origin) {
        next.run(request).await
    } else {
        ApiError::Forbidden(format!(
            "origin {} is not allowed (CHAT_ALLOWED_ORIGINS)",
            origin.unwrap_or_default()
        ))
        .into_response()
    }
}

fn cors(allowed: &Arc<[String]>) -> CorsLayer {
    let allowed = Arc::clone(allowed);
    CorsLayer::new()
        .allow_origin(AllowOrigin::predicate(
            move |origin: &HeaderValue, _request| {
                origin
                    .to_str()
                    .is_ok_and(|o| origin_allowed(&allowed, Some(o)))
            },
        ))
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
        .max_age(std::time::Duration::from_secs(600))
}
