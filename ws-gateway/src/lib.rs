//! ws-gateway: live Kanban boards over WebSocket and SSE.
//!
//! One upstream `WatchBoard` per board feeds every client watching it; each
//! frame is encoded once and shared. Clients get frames in version order
//! with no gap and no duplicate, resume with `sinceVersion`, and send task
//! commands that the gateway runs against board-service over gRPC.
//!
//! [`App::build`] binds; [`App::run_until_stopped`] serves until the
//! shutdown future resolves, then closes every socket with 1001.

mod auth;
mod channels;
mod client;
mod config;
mod error;
mod frame;
mod framing;
mod heartbeat;
mod http;
mod hub;
mod metrics;
mod outbox;
mod presence;
mod session;
mod socket;
mod socketio;
mod sse;
mod state;
mod upstream;
mod web;
mod ws;

use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use anyhow::Context;
use axum::{Router, routing::get};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use crate::config::Config;
use crate::{error::CloseReason, hub::Hub, metrics::Metrics, state::Shared, upstream::Upstream};

/// How long shutdown waits for sockets to take their close frame.
const DRAIN: Duration = Duration::from_secs(5);

/// A bound gateway, ready to serve.
pub struct App {
    listener: TcpListener,
    /// `SOCKETIO_ADDR`'s listener, when set.
    socketio_listener: Option<TcpListener>,
    /// With `TLS_CERT_FILE` and `TLS_KEY_FILE`: both listeners speak TLS.
    tls: Option<service_kit::tls::TlsAcceptor>,
    shared: Arc<Shared>,
}

impl App {
    /// Binds the listener and prepares the board-service channel (connected
    /// lazily, so the gateway starts even while board-service is down).
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(config.listen_addr)
            .await
            .with_context(|| format!("bind ws-gateway on {}", config.listen_addr))?;
        let port = listener.local_addr()?.port();
        let tls = config.tls.acceptor()?;
        let socketio_listener = match config.socketio_addr {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("bind SOCKETIO_ADDR {addr}"))?,
            ),
            None => None,
        };
        let auth = service_kit::auth::Authenticator::from_config(&config.auth, "ws-gateway")
            .context("configure bearer-token auth")?;
        let upstream = Upstream::connect_lazy(&config.board_service_url, auth.clone())
            .with_context(|| format!("invalid BOARD_SERVICE_URL {:?}", config.board_service_url))?;
        let metrics = Arc::new(Metrics::default());
        let stop = CancellationToken::new();
        let nats = match config.nats_url.as_deref().map(str::trim) {
            Some(url) if !url.is_empty() => Some(Arc::new(hub::BoardStream::connect(url).await?)),
            _ => None,
        };
        let presence = presence::Presence::start(
            &config,
            upstream.clone(),
            nats.as_ref().map(|n| n.client().clone()),
            stop.child_token(),
        );
        let hub = Arc::new(Hub::new(
            upstream,
            nats,
            metrics.clone(),
            config.replay_window,
            stop.child_token(),
        ));
        let shared = Arc::new(Shared::new(
            config, hub, presence, metrics, auth, port, stop,
        ));
        Ok(Self {
            listener,
            socketio_listener,
            tls,
            shared,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or(self.shared.config.listen_addr)
    }

    /// Where `SOCKETIO_ADDR` is bound, when it is set.
    pub fn socketio_addr(&self) -> Option<SocketAddr> {
        self.socketio_listener.as_ref()?.local_addr().ok()
    }

    /// Every route, the web UI and `/api/boards` included: the standalone
    /// binary and the all-in-one one serve the same paths.
    fn router(&self) -> Router {
        Router::new()
            .route("/ws", get(ws::upgrade))
            .route("/events", get(sse::events))
            .route("/ws/agents", get(channels::agents_upgrade))
            .route("/api/events", get(channels::http::events))
            .route("/api/publish", axum::routing::post(channels::http::publish))
            .route("/health", get(http::health))
            .route("/stats", get(http::stats))
            .route("/metrics", get(http::metrics))
            .merge(web::router())
            .with_state(self.shared.clone())
            .layer(socketio::layer(&self.shared))
    }

    /// Serves until `shutdown` resolves, then closes every WebSocket with
    /// 1001, ends SSE streams and upstream watches, and waits for sockets to
    /// drain (at most a few seconds).
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let shared = self.shared.clone();
        let addr = self.local_addr();
        if shared.auth.is_none() {
            tracing::warn!("JWT_SECRET is not set: every client may read and write every board");
        }
        if shared.config.allowed_origins.is_empty() {
            tracing::warn!("WS_ALLOWED_ORIGINS is not set: browsers from any origin may connect");
        }
        tracing::info!(%addr, upstream = %shared.config.board_service_url, "ws-gateway listening");
        let heartbeat = heartbeat::spawn(shared.clone());
        let kpis = channels::spawn_kpis(
            shared.clone(),
            Duration::from_millis(shared.config.metrics_channel_ms),
        );
        let router = self.router();
        let signal = {
            let shared = shared.clone();
            async move {
                shutdown.await;
                close_all(&shared);
            }
        };
        let limits = service_kit::http_server::ServeLimits {
            header_timeout: Duration::from_millis(shared.config.header_timeout_ms),
            max_pending: shared.config.max_pending_connections,
        };
        let socketio = self.socketio_listener.map(|listener| {
            let router = Router::new().layer(socketio::layer(&shared));
            let stop = shared.stop.clone().cancelled_owned();
            tokio::spawn(service_kit::http_server::serve(
                listener,
                router,
                limits,
                self.tls.clone(),
                stop,
            ))
        });
        let served =
            service_kit::http_server::serve(self.listener, router, limits, self.tls, signal).await;
        close_all(&shared);
        let drained = tokio::time::timeout(DRAIN, async {
            while !shared.clients.is_empty() {
                tokio::select! {
                    () = shared.clients.left.notified() => {}
                    () = tokio::time::sleep(Duration::from_millis(50)) => {}
                }
            }
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                left = shared.clients.len(),
                "sockets still open after the drain period"
            );
        }
        let _ = heartbeat.await;
        if let Some(kpis) = kpis {
            let _ = kpis.await;
        }
        shared.presence.released().await;
        if let Some(socketio) = socketio
            && let Ok(Err(e)) = socketio.await
        {
            tracing::error!(error = %e, "the SOCKETIO_ADDR server failed");
        }
        tracing::info!("ws-gateway stopped");
        served.context("ws-gateway server failed")
    }
}

fn close_all(shared: &Shared) {
    shared.stop.cancel();
    for client in shared.clients.all() {
        client.close(CloseReason::Shutdown);
    }
}
