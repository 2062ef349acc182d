//! board-service: boards, lanes and tasks in PostgreSQL, served over gRPC,
//! with every change published as an ordered, resumable event stream.
//!
//! [`App::build`] connects, migrates and binds; [`App::run_until_stopped`]
//! serves until the shutdown future resolves. Tests run it on port 0.

pub mod channels;
pub mod cli;
pub mod error;
pub mod events;
pub mod grpc;
pub mod metrics;
pub mod presence;
pub mod rank;
pub mod relay;
pub mod store;
pub mod validate;

use std::{future::Future, net::SocketAddr, time::Duration};

use anyhow::Context;
use protocol::v1::{
    board_service_server::BoardServiceServer, channel_service_server::ChannelServiceServer,
    presence_service_server::PresenceServiceServer,
};
use sqlx::{PgPool, postgres::PgPoolOptions};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::transport::{Server, server::TcpIncoming};

use crate::{events::EventHub, grpc::BoardApi, store::Store};

/// The migrations under `migrations/` at the workspace root.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

/// Everything board-service needs to start.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where gRPC listens; port 0 picks a free one.
    pub listen_addr: SocketAddr,
    pub database_url: String,
    pub db_max_connections: u32,
    /// Events kept in the log per board; older ones are trimmed, and a
    /// watcher resuming from before them gets `board.resync`.
    pub event_retention: u64,
    pub trim_interval: Duration,
    /// Slug of a board to create at start-up if missing (named "Default
    /// board"), so clients written for `boardId: "default"` work out of the box.
    pub default_board: Option<String>,
    /// Bearer-token checks; off (everything open) when no secret or JWKS is set.
    pub auth: service_kit::auth::AuthConfig,
    /// Largest gRPC request accepted; larger gets RESOURCE_EXHAUSTED.
    pub max_message_bytes: usize,
    /// Where `/metrics` is served over HTTP; `None` serves none.
    pub metrics_addr: Option<SocketAddr>,
    /// Time a new connection has to send the HTTP/2 preface.
    pub handshake_timeout: Duration,
    /// Connections at most that have not sent it yet.
    pub max_pending_handshakes: usize,
    /// How much history each channel keeps (`CHANNEL_HISTORY`).
    pub channel_history: channels::Policy,
    /// NATS server to relay committed events to (`NATS_URL`); `None`: no relay.
    pub nats_url: Option<String>,
}

/// How often each board's log is trimmed to [`Config::event_retention`].
pub const TRIM_INTERVAL: Duration = Duration::from_secs(60);

/// The port `/metrics` is served on by default, beside the gRPC port.
pub const DEFAULT_METRICS_PORT: u16 = 9464;

/// The default [`Config::max_message_bytes`]: the largest valid request (a
/// 20,000-character description, 32 labels) is well under 200 KB.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 1 << 20;

impl Config {
    /// [`cli::Args`]' defaults (each written once, in its `#[arg]`) over
    /// `database_url`, made quiet for tests and embedders: gRPC on
    /// `127.0.0.1:0`, no metrics port, no default board. Like the binary,
    /// it reads the environment.
    pub fn new(database_url: impl Into<String>) -> Self {
        let database_url = Some(database_url.into());
        let parsed = <cli::Args as clap::Parser>::try_parse_from(["board-service"])
            .map_err(anyhow::Error::from)
            .and_then(|args| args.into_config(database_url));
        // Only a malformed environment variable can fail this; the binary
        // reports that one itself at start-up.
        let mut config = parsed.unwrap_or_else(|e| panic!("board-service settings: {e:#}"));
        config.listen_addr = SocketAddr::from(([127, 0, 0, 1], 0));
        config.metrics_addr = None;
        config.default_board = None;
        config
    }
}

/// A bound, migrated board-service, ready to serve.
pub struct App {
    listener: TcpListener,
    metrics_listener: Option<TcpListener>,
    store: Store,
    config: Config,
}

impl App {
    /// Connects to PostgreSQL, runs the migrations and binds the listener.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(config.db_max_connections)
            .acquire_timeout(Duration::from_secs(5))
            .connect(&config.database_url)
            .await
            .context("connect to PostgreSQL")?;
        MIGRATOR
            .run(&pool)
            .await
            .context("run database migrations")?;
        let store = Store::new(pool);
        if let Some(slug) = &config.default_board {
            store
                .ensure_board(slug, "Default board")
                .await
                .with_context(|| format!("create the {slug:?} board"))?;
        }
        let listener = TcpListener::bind(config.listen_addr)
            .await
            .with_context(|| format!("bind gRPC listener on {}", config.listen_addr))?;
        let metrics_listener = match config.metrics_addr {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("bind the metrics listener on {addr}"))?,
            ),
            None => None,
        };
        Ok(Self {
            listener,
            metrics_listener,
            store,
            config,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or(self.config.listen_addr)
    }

    /// Where `/metrics` is served, when it is.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener
            .as_ref()
            .and_then(|l| l.local_addr().ok())
    }

    pub fn pool(&self) -> &PgPool {
        self.store.pool()
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Serves gRPC (with health and reflection) until `shutdown` resolves,
    /// then ends every watch stream and drains in-flight calls.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let stop = CancellationToken::new();
        let hub = EventHub::new(self.store.pool().clone(), stop.clone());
        let announcer = self.store.announcer().clone();
        let channel_hub = channels::ChannelHub::new(
            channels::ChannelStore::new(
                self.store.pool().clone(),
                self.config.channel_history.clone(),
                announcer.clone(),
            ),
            stop.clone(),
        );
        announcer.serve_locally(hub.clone(), channel_hub.clone());
        let listener_task = events::spawn_listener(hub.clone(), channel_hub.clone(), announcer);
        let sweep_task = channel_hub.spawn_sweeper();
        let trim_task = spawn_log_trimmer(self.store.clone(), self.config.clone(), stop.clone());
        let presence = presence::PresenceHub::new(self.store.pool().clone(), stop.clone());
        let presence_tasks = [
            presence::spawn_listener(presence.clone()),
            presence::spawn_sweeper(presence.clone()),
        ];

        let (health, health_service) = tonic_health::server::health_reporter();
        health.set_serving::<BoardServiceServer<BoardApi>>().await;
        health
            .set_serving::<PresenceServiceServer<presence::PresenceApi>>()
            .await;
        let reflection = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(protocol::FILE_DESCRIPTOR_SET)
            .build_v1()
            .context("build gRPC reflection")?;

        let addr = self.local_addr();
        tracing::info!(%addr, "board-service listening");
        let signal = {
            let stop = stop.clone();
            async move {
                shutdown.await;
                // Watch streams never end on their own; end them so the
                // server can drain.
                stop.cancel();
            }
        };
        let auth =
            service_kit::auth::Authenticator::from_config(&self.config.auth, "board-service")
                .context("configure bearer-token auth")?;
        if auth.is_none() {
            tracing::warn!(%addr, "JWT_SECRET is not set: any caller may read and write every board");
        }
        let metrics = metrics::Metrics::default();
        let relay_task = self.config.nats_url.clone().map(|url| {
            relay::spawn(
                self.store.pool().clone(),
                url,
                metrics.clone(),
                stop.clone(),
            )
        });
        let metrics_task = self
            .metrics_listener
            .map(|listener| spawn_metrics_server(listener, metrics.clone(), stop.clone()));
        let channel_announcer = match self.config.nats_url.as_deref() {
            Some(url) => Some(channels::Announcer::spawn(
                service_kit::board_stream::connect_in_background(url, "board-service channels")
                    .await?
                    .0,
            )),
            None => None,
        };
        let channel_api = ChannelServiceServer::new(channels::ChannelApi::new(
            channel_hub,
            auth.clone(),
            channel_announcer,
        ))
        .max_decoding_message_size(self.config.max_message_bytes);
        let presence_api = PresenceServiceServer::new(presence::PresenceApi::new(
            self.store.clone(),
            presence,
            auth.clone(),
        ))
        .max_decoding_message_size(self.config.max_message_bytes);
        let api = BoardServiceServer::new(BoardApi::new(
            self.store.clone(),
            hub,
            auth,
            metrics.clone(),
        ))
        .max_decoding_message_size(self.config.max_message_bytes);
        let served = Server::builder()
            .trace_fn(request_span)
            .timeout(CALL_TIMEOUT)
            // A peer that stops answering pings is dropped, and one
            // connection cannot open streams without bound.
            .http2_keepalive_interval(Some(Duration::from_secs(30)))
            .http2_keepalive_timeout(Some(Duration::from_secs(10)))
            .max_concurrent_streams(Some(1024))
            .layer(metrics::MetricsLayer(metrics))
            .layer(tower::util::MapResponseLayer::new(
                oversized_is_resource_exhausted as fn(_) -> _,
            ))
            .add_service(health_service)
            .add_service(reflection)
            .add_service(api)
            .add_service(channel_api)
            .add_service(presence_api)
            .serve_with_incoming_shutdown(incoming(self.listener, &self.config), signal)
            .await;
        stop.cancel();
        let _ = listener_task.await;
        let _ = sweep_task.await;
        let _ = trim_task.await;
        for task in presence_tasks {
            let _ = task.await;
        }
        if let Some(task) = relay_task {
            let _ = task.await;
        }
        if let Some(task) = metrics_task {
            let _ = task.await;
        }
        self.store.pool().close().await;
        tracing::info!("board-service stopped");
        served.context("gRPC server failed")
    }
}

/// Accepted connections, each under the handshake deadline; past
/// `max_pending_handshakes` still in theirs, new ones are dropped.
fn incoming(
    listener: TcpListener,
    config: &Config,
) -> impl futures::Stream<
    Item = std::io::Result<service_kit::handshake_deadline::Guarded<tokio::net::TcpStream>>,
> + use<> {
    use futures::StreamExt;
    let limit = service_kit::handshake_deadline::HandshakeLimit::new(
        config.handshake_timeout,
        config.max_pending_handshakes,
        service_kit::handshake_deadline::HTTP2_PREFACE_LEN,
    );
    // Events are small and latency matters: no Nagle delay.
    TcpIncoming::from(listener)
        .with_nodelay(Some(true))
        .filter_map(move |accepted| {
            let guarded = match accepted {
                Ok(tcp) => limit.guard(tcp).map(Ok),
                Err(err) => Some(Err(err)),
            };
            if guarded.is_none() {
                tracing::debug!("too many gRPC connections still in their handshake; dropped one");
            }
            std::future::ready(guarded)
        })
}

/// Longest a unary call may take; watch streams are not bound by it.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// tonic answers a request over the size limit with OUT_OF_RANGE; gRPC's
/// status code rules say RESOURCE_EXHAUSTED. board-service itself never
/// returns OUT_OF_RANGE, so every one is that case.
fn oversized_is_resource_exhausted<B>(mut response: http::Response<B>) -> http::Response<B> {
    let out_of_range = http::HeaderValue::from_static("11");
    if response.headers().get("grpc-status") == Some(&out_of_range) {
        response
            .headers_mut()
            .insert("grpc-status", http::HeaderValue::from_static("8"));
    }
    response
}

/// The span of one gRPC call, continuing the caller's trace when it sent one.
fn request_span(request: &http::Request<()>) -> tracing::Span {
    let span = tracing::info_span!("grpc", otel.name = %request.uri().path(), rpc.system = "grpc");
    service_kit::telemetry::propagation::set_parent_from_headers(&span, request.headers());
    span
}

/// Serves `GET /metrics` until `stop`.
fn spawn_metrics_server(
    listener: TcpListener,
    metrics: metrics::Metrics,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let router = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let body = metrics.render();
            async move { service_kit::exposition::metrics_response(body) }
        }),
    );
    tokio::spawn(async move {
        let limits = service_kit::http_server::ServeLimits::default();
        if let Err(err) =
            service_kit::http_server::serve(listener, router, limits, None, stop.cancelled_owned())
                .await
        {
            tracing::warn!(%err, "metrics server failed");
        }
    })
}

fn spawn_log_trimmer(
    store: Store,
    config: Config,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                () = tokio::time::sleep(config.trim_interval) => {}
                () = stop.cancelled() => return,
            }
            let keep_unrelayed = config.nats_url.is_some();
            match store::log::trim(store.pool(), config.event_retention, keep_unrelayed).await {
                Ok(0) => {}
                Ok(n) => tracing::debug!(trimmed = n, "trimmed board event log"),
                Err(err) => tracing::warn!(error = %err, "cannot trim board event log"),
            }
            if let Err(err) = store::idempotency::trim(store.pool()).await {
                tracing::warn!(error = %err, "cannot trim idempotency records");
            }
        }
    })
}
