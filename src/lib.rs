//! The whole Boardwire stack in one process: board-service, ws-gateway
//! (with the web UI) and agent-bridge, wired to each other on loopback.
//! Used by the `boardwire` binary and by the cross-service tests.

use std::{future::Future, net::SocketAddr};

use anyhow::Context;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Settings of the three services, each read as the service reads it alone.
pub struct StackConfig {
    pub board: board_service::Config,
    pub gateway: ws_gateway::Config,
    pub bridge: agent_bridge::Config,
}

impl StackConfig {
    /// Every service on `127.0.0.1:0` over `database_url`: for tests.
    pub fn for_tests(database_url: &str) -> Self {
        let mut board = board_service::Config::new(database_url);
        board.listen_addr = SocketAddr::from(([127, 0, 0, 1], 0));
        board.default_board = Some("default".into());
        let gateway = ws_gateway::Config::new("http://127.0.0.1:0");
        let mut bridge = agent_bridge::Config::new(database_url);
        bridge.listen_addr = SocketAddr::from(([127, 0, 0, 1], 0));
        Self {
            board,
            gateway,
            bridge,
        }
    }
}

/// Bound, running services; [`Stack::run_until_stopped`] serves them.
pub struct Stack {
    pub board_addr: SocketAddr,
    pub gateway_addr: SocketAddr,
    pub bridge_addr: SocketAddr,
    board: board_service::App,
    gateway: ws_gateway::App,
    bridge: agent_bridge::App,
}

impl Stack {
    /// Builds board-service first (it migrates the database and creates the
    /// default board), then points the gateway and the bridge at it.
    pub async fn build(mut config: StackConfig) -> anyhow::Result<Self> {
        let board = board_service::App::build(config.board)
            .await
            .context("start board-service")?;
        let board_addr = board.local_addr();
        let board_url = format!("http://{}", loopback(board_addr));
        config.gateway.board_service_url = board_url.clone();
        config.bridge.board_service_url = board_url.clone();
        let gateway = ws_gateway::App::build(config.gateway)
            .await
            .context("start ws-gateway")?;
        let bridge = agent_bridge::App::build(config.bridge)
            .await
            .context("start agent-bridge")?;
        Ok(Self {
            board_addr,
            gateway_addr: gateway.local_addr(),
            bridge_addr: bridge.local_addr(),
            board,
            gateway,
            bridge,
        })
    }

    /// Serves until `shutdown` resolves, then stops every service: sockets
    /// closed with 1001, runs cancelled, watch streams ended.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let stop = CancellationToken::new();
        let mut services = JoinSet::new();
        services.spawn(
            self.gateway
                .run_until_stopped(stop.clone().cancelled_owned()),
        );
        services.spawn(
            self.bridge
                .run_until_stopped(stop.clone().cancelled_owned()),
        );
        services.spawn(self.board.run_until_stopped(stop.clone().cancelled_owned()));
        let mut result = Ok(());
        tokio::select! {
            () = shutdown => {}
            // A service that ends on its own takes the others down with it.
            Some(ended) = services.join_next() => result = flatten(ended),
        }
        stop.cancel();
        while let Some(ended) = services.join_next().await {
            if result.is_ok() {
                result = flatten(ended);
            }
        }
        result
    }
}

fn flatten(ended: Result<anyhow::Result<()>, tokio::task::JoinError>) -> anyhow::Result<()> {
    ended.context("service task panicked")?
}

/// `0.0.0.0:p` is where a service listens, not where to call it.
fn loopback(addr: SocketAddr) -> SocketAddr {
    if addr.ip().is_unspecified() {
        SocketAddr::from(([127, 0, 0, 1], addr.port()))
    } else {
        addr
    }
}
