//! `/health`, `/stats` and `/metrics`.

use std::sync::Arc;

use axum::{
    Json,
    extract::{Query, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use serde::Serialize;

use crate::{metrics::Gauges, state::Shared, ws::TokenQuery};

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Health {
    status: &'static str,
    websocket: WebsocketHealth,
    board_service: &'static str,
}

#[derive(Serialize)]
struct WebsocketHealth {
    running: bool,
    connections: usize,
    port: u16,
}

/// 200 while board-service answers its health check, else 503.
pub async fn health(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    let serving = shared.hub.upstream().check().await;
    let body = Health {
        status: if serving { "ok" } else { "degraded" },
        websocket: WebsocketHealth {
            running: !shared.stop.is_cancelled(),
            connections: shared.clients.len(),
            port: shared.port,
        },
        board_service: if serving { "serving" } else { "unavailable" },
    };
    let code = if serving {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(body))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Stats {
    clients: usize,
    boards: Vec<BoardStats>,
    frames_in: u64,
    frames_out: u64,
    frames_queued: u64,
    /// Clients with frames waiting past a quarter of their queue limit.
    lagging_clients: usize,
    /// Times a lagging client's queue was dropped for a fresh board.sync.
    dropped_clients: u64,
    upstream_reconnects: u64,
    /// Channels watched here, as seed 004's health reports them.
    active_channels: usize,
    /// Subscribers per channel the token may read.
    channel_stats: std::collections::BTreeMap<String, usize>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct BoardStats {
    board_id: String,
    slug: String,
    subscribers: usize,
    version: u64,
}

/// With auth on, a valid token is required, and only the boards it may
/// read are named.
pub async fn stats(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<TokenQuery>,
    headers: HeaderMap,
) -> Response {
    let grant = match crate::web::caller(&shared, &headers, &query).await {
        Ok(grant) => grant,
        Err(refusal) => return refusal,
    };
    let clients = shared.clients.all();
    let lagging_at = (shared.config.client_queue / 4).max(1);
    let metrics = &shared.metrics;
    let channels = shared.channels.stats();
    Json(Stats {
        clients: clients.len(),
        boards: shared
            .hub
            .feeds()
            .iter()
            .filter(|f| grant.access.can_read(&f.board_id, &f.slug))
            .map(|f| BoardStats {
                board_id: f.board_id.to_string(),
                slug: f.slug.clone(),
                subscribers: f.subscriber_count(),
                version: f.version(),
            })
            .collect(),
        frames_in: metrics.frames_received.get(),
        frames_out: metrics.frames_sent.get(),
        frames_queued: metrics.frames_queued.get(),
        lagging_clients: clients.iter().filter(|c| c.queued() >= lagging_at).count(),
        dropped_clients: metrics.clients_dropped.get(),
        upstream_reconnects: metrics.upstream_reconnects.get(),
        active_channels: channels.len(),
        channel_stats: channels
            .into_iter()
            .filter(|(name, _)| grant.access.can_subscribe(name))
            .map(|(name, n)| (name.to_string(), n))
            .collect(),
    })
    .into_response()
}

pub async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    let queues: Vec<usize> = shared.clients.all().iter().map(|c| c.queued()).collect();
    let gauges = Gauges {
        queued_frames: queues.iter().sum(),
        max_queue: queues.iter().copied().max().unwrap_or(0),
    };
    service_kit::exposition::metrics_response(shared.metrics.render(&gauges))
}
