//! `/mcp`: the streamable HTTP transport, behind the bridge's own checks.
//! A browser's Origin must be on the allowlist (and gets CORS headers);
//! with auth on every request needs a bearer token, and the verified caller
//! rides along in the request's extensions to the tool handlers.

use std::{sync::Arc, time::Duration};

use axum::{
    Router,
    extract::{Request, State},
    http::{HeaderName, HeaderValue, Method, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
};
use rmcp::transport::{
    StreamableHttpServerConfig, StreamableHttpService,
    streamable_http_server::session::local::LocalSessionManager,
};
use tokio_util::sync::CancellationToken;
use tower_http::cors::{AllowOrigin, CorsLayer};

use super::{BoardClient, BoardwireMcp};
use crate::{
    config::origin_allowed,
    http::{ApiError, AppState},
};

/// The `/mcp` service, built once at start-up.
#[derive(Clone)]
pub struct McpHttp {
    service: StreamableHttpService<BoardwireMcp, LocalSessionManager>,
}

impl McpHttp {
    /// Sessions end when `stop` is cancelled (shutdown). With auth off only
    /// loopback `Host` names are served, against DNS rebinding; with auth
    /// on the token is the check, so any host is.
    pub fn new(
        board_service_url: &str,
        timeout: Duration,
        auth_on: bool,
        stop: CancellationToken,
    ) -> anyhow::Result<Self> {
        let board = BoardClient::new(board_service_url, timeout)?;
        let mut config = StreamableHttpServerConfig::default()
            .with_cancellation_token(stop)
            .with_sse_keep_alive(Some(Duration::from_secs(15)));
        if auth_on {
            config = config.disable_allowed_hosts();
        }
        let service = StreamableHttpService::new(
            move || Ok(BoardwireMcp::for_http(board.clone())),
            Arc::new(LocalSessionManager::default()),
            config,
        );
        Ok(Self { service })
    }
}

/// `/mcp`, to merge into the bridge's router.
pub fn router<S: Clone + Send + Sync + 'static>(state: &AppState) -> Router<S> {
    Router::new()
        .route_service("/mcp", state.mcp.service.clone())
        .layer(middleware::from_fn_with_state(state.clone(), admit))
        .layer(cors(&state.allowed_origins))
}

/// Browser MCP clients (the MCP Inspector, web agents) from allowed
/// origins may call `/mcp` and read its session header.
fn cors(allowed: &Arc<[String]>) -> CorsLayer {
    let allowed = Arc::clone(allowed);
    let mcp_headers = [
        HeaderName::from_static("mcp-session-id"),
        HeaderName::from_static("mcp-protocol-version"),
        HeaderName::from_static("last-event-id"),
    ];
    CorsLayer::new()
        .allow_origin(AllowOrigin::predicate(move |origin: &HeaderValue, _| {
            origin
                .to_str()
                .is_ok_and(|o| origin_allowed(&allowed, Some(o)))
        }))
        .allow_methods([Method::GET, Method::POST, Method::DELETE])
        .allow_headers(
            [header::AUTHORIZATION, header::CONTENT_TYPE, header::ACCEPT]
                .into_iter()
                .chain(mcp_headers.clone())
                .collect::<Vec<_>>(),
        )
        .expose_headers(mcp_headers)
        .max_age(Duration::from_secs(600))
}

/// Refuses foreign browser origins (403) and, with auth on, requests
/// without a valid token (401 with `WWW-Authenticate: Bearer`).
async fn admit(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let origin = request
        .headers()
        .get(header::ORIGIN)
        .map(|o| o.to_str().unwrap_or("\u{fffd}"));
    if !origin_allowed(&state.allowed_origins, origin) {
        return ApiError::Forbidden(format!(
            "origin {} is not allowed (CHAT_ALLOWED_ORIGINS)",
            origin.unwrap_or_default()
        ))
        .into_response();
    }
    match state.gate.caller(request.headers(), None).await {
        Ok(caller) => {
            request.extensions_mut().insert(caller);
            next.run(request).await
        }
        Err(error) => {
            let mut response = error.into_response();
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"boardwire\""),
            );
            response
        }
    }
}
