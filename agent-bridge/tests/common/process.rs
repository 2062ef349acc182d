//! The agent-bridge binary as a process of its own, for tests that kill it
//! with SIGKILL: a real crash, which an in-process bridge cannot have.

use std::{
    net::SocketAddr,
    process::{Child, Command, Stdio},
    time::Duration,
};

use super::{PATIENCE, Stack};

/// A bridge process, killed (SIGKILL) when dropped, so a failing test
/// leaves none behind.
pub struct BridgeProcess(Child);

impl BridgeProcess {
    /// The binary on `addr`, over the stack's database and board-service
    /// (and its NATS, when it has one), with 1 s run leases and slow tokens
    /// so runs last.
    pub fn spawn(stack: &Stack, addr: SocketAddr) -> Self {
        Self::spawn_with_nats(stack, addr, stack.options.nats_url.as_deref())
    }

    /// [`Self::spawn`], reaching NATS at `nats_url` (a relay the test can cut).
    pub fn spawn_with_nats(stack: &Stack, addr: SocketAddr, nats_url: Option<&str>) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_agent-bridge"));
        command
            .env("DATABASE_URL", stack.db.url())
            .env("BOARD_SERVICE_URL", format!("http://{}", stack.board_addr))
            .env("AGENT_BRIDGE_ADDR", addr.to_string())
            .env("BUILTIN_TOKEN_DELAY_MS", "150")
            .env("CHAT_RUN_LEASE_MS", "1000")
            .env("RUST_LOG", "warn")
            .env_remove("JWT_SECRET")
            .env_remove("WS_JWT_SECRET")
            .env_remove("JWT_JWKS_URL")
            .env_remove("NATS_URL")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(nats) = nats_url {
            command.env("NATS_URL", nats);
        }
        Self(command.spawn().expect("start the agent-bridge binary"))
    }

    pub fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for BridgeProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Waits until the bridge on `addr` answers `/health`.
pub async fn wait_healthy(addr: SocketAddr) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while tokio::time::Instant::now() < deadline {
        if let Ok(r) = reqwest::get(format!("http://{addr}/health")).await
            && r.status().is_success()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("agent-bridge on {addr} never became healthy");
}
