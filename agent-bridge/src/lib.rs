//! agent-bridge: the PM chat backend. Browsers talk to it over `/ws/chat` (or
//! the HTTP fallback); it relays each message to an AG-UI agent over HTTP, or
//! to the built-in PM agent that works the board through board-service, and
//! streams text and tool progress back to every tab of the session.
//!
//! [`App::build`] connects, migrates and binds; [`App::run_until_stopped`]
//! serves until the shutdown future resolves. Tests run it on port 0.

pub mod agent;
pub mod board_channel;
pub mod cluster;
pub mod config;
pub mod http;
pub mod mcp;
pub mod metrics;
pub mod run;
pub mod session;
pub mod store;

use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use anyhow::Context;
use sqlx::postgres::PgPoolOptions;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use config::{Config, ConfigArgs};

use crate::{
    agent::{
        Backend,
        agui::AgUiClient,
        builtin::{PmAgent, tools::BoardTools},
    },
    http::{Admission, AppState, Gate},
    run::Runner,
    session::Sessions,
    store::Store,
};

/// A bound, migrated agent-bridge, ready to serve.
pub struct App {
    listener: TcpListener,
    /// With `TLS_CERT_FILE` and `TLS_KEY_FILE`: the listener speaks TLS.
    tls: Option<service_kit::tls::TlsAcceptor>,
    state: AppState,
    session_idle: Duration,
    limits: config::Limits,
}

impl App {
    /// Connects to PostgreSQL, runs the migrations, picks the agent backend
    /// and binds the listener.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(config.db_max_connections)
            .acquire_timeout(Duration::from_secs(5))
            .connect(&config.database_url)
            .await
            .context("connect to PostgreSQL")?;
        store::migrate(&pool)
            .await
            .context("run database migrations")?;
        let auth = service_kit::auth::Authenticator::from_config(&config.auth, "agent-bridge")
            .context("read the auth settings")?;
        let stop = CancellationToken::new();
        let mcp = mcp::McpHttp::new(
            &config.board_service_url,
            config.agent_timeout,
            auth.is_some(),
            stop.child_token(),
        )
        .context("build the MCP endpoint")?;
        if auth.is_none() {
            tracing::warn!(
                "auth is off (no JWT_SECRET or JWT_JWKS_URL): every chat session is open to anyone who can reach agent-bridge"
            );
        }
        let tools = BoardTools::new(&config.board_service_url, config.agent_timeout)
            .with_context(|| format!("invalid BOARD_SERVICE_URL {}", config.board_service_url))?;
        let backend = match &config.agent_url {
            Some(url) => Backend::AgUi(
                AgUiClient::new(url.clone(), config.agent_timeout)
                    .context("build the AG-UI client")?
                    .with_approval_timeout(config.approvals.timeout),
            ),
            None => Backend::BuiltIn(
                PmAgent::new(tools.clone(), config.builtin_token_delay)
                    .with_approvals(config.approvals),
            ),
        };
        let tls = config.tls.acceptor()?;
        let listener = TcpListener::bind(config.listen_addr)
            .await
            .with_context(|| format!("bind HTTP listener on {}", config.listen_addr))?;
        let store = Store::new(pool);
        tracing::info!(backend = backend.name(), "agent backend chosen");
        let cluster = match &config.nats_url {
            Some(url) => Some(cluster::Cluster::connect(url).await?),
            None => None,
        };
        let sessions = Sessions::new(
            store.clone(),
            config.default_board.clone(),
            config.replay_frames,
        )
        .with_cluster(cluster);
        // Runs a dead bridge left `running` get their terminal frame now
        // (once their lease is out); the lease keeper catches the rest.
        let reaped = run::reap_interrupted(&store, &sessions)
            .await
            .context("mark interrupted runs")?;
        if reaped > 0 {
            tracing::warn!(reaped, "marked runs of a stopped bridge interrupted");
        }
        let state = AppState {
            sessions,
            runner: Runner::new(store.clone(), Arc::new(backend), config.run_lease),
            store,
            stop,
            socket_queue: config.socket_queue,
            gate: Gate::new(auth, tools),
            admission: Admission::new(config.limits),
            allowed_origins: config.allowed_origins.clone().into(),
            mcp,
        };
        Ok(Self {
            listener,
            tls,
            state,
            session_idle: config.session_idle,
            limits: config.limits,
        })
    }

    /// The bound address (the real port when configured with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Serves until `shutdown` resolves; then cancels every run (each ends
    /// with `status: cancelled`), closes sockets with 1001 and waits for the
    /// runs to be recorded.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let Self {
            listener,
            tls,
            state,
            session_idle,
            limits,
        } = self;
        let addr = listener.local_addr().context("read the bound address")?;
        tracing::info!(%addr, "agent-bridge listening");
        let stop = state.stop.clone();
        let runner = state.runner.clone();
        let store = state.store.clone();
        let signal = {
            let runner = runner.clone();
            async move {
                shutdown.await;
                // Runs first, so every socket still gets their `cancelled`
                // frames; then the sockets close with 1001.
                runner.shutdown().await;
                stop.cancel();
            }
        };
        let sweeper = spawn_sweeper(state.sessions.clone(), session_idle, state.stop.clone());
        let leases =
            run::spawn_lease_keeper(runner.clone(), state.sessions.clone(), state.stop.clone());
        let serve_limits = service_kit::http_server::ServeLimits {
            header_timeout: limits.header_timeout,
            max_pending: limits.max_pending_connections,
        };
        let served = service_kit::http_server::serve(
            listener,
            http::router(state),
            serve_limits,
            tls,
            signal,
        )
        .await;
        runner.shutdown().await;
        let _ = sweeper.await;
        let _ = leases.await;
        store.pool().close().await;
        tracing::info!("agent-bridge stopped");
        served.context("HTTP server failed")
    }
}

/// Drops idle sessions from memory now and then, until `stop`.
fn spawn_sweeper(
    sessions: Sessions,
    idle_for: Duration,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let every = (idle_for / 4).clamp(Duration::from_secs(1), Duration::from_secs(60));
    tokio::spawn(async move {
        loop {
            tokio::select! {
                () = tokio::time::sleep(every) => {}
                () = stop.cancelled() => return,
            }
            let dropped = sessions.sweep(idle_for);
            if dropped > 0 {
                tracing::debug!(dropped, in_memory = sessions.len(), "dropped idle sessions");
            }
        }
    })
}
