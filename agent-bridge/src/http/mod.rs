//! The HTTP surface: `/ws/chat`, the HTTP fallback under `/api` and `/health`.

mod api;
mod error;
mod ws;

use axum::{
    Router,
    routing::{get, post},
};
use tokio_util::sync::CancellationToken;

use crate::{run::Runner, session::Sessions};

pub use error::ApiError;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub sessions: Sessions,
    pub runner: Runner,
    pub store: crate::store::Store,
    /// Cancelled at shutdown: sockets close with 1001.
    pub stop: CancellationToken,
    pub socket_queue: usize,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/ws/chat", get(ws::upgrade))
        .route("/api/chat", post(api::chat))
        .route("/api/sessions/{id}/messages", get(api::messages))
        .route("/health", get(|| async { "ok" }))
        .with_state(state)
}
