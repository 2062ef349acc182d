//! `GET /ws/agents?agent_id=&session_id=`: seed 004's agent socket. The
//! same connection as `/ws` (every frame works, boards included), with
//! seed 004's spelling of its own frames (see `frame::Dialect`), and agent
//! presence on `global`: `agent.connected` when it opens,
//! `agent.heartbeat` as it pings, `agent.disconnected` when it closes or
//! falls silent past `WS_CLIENT_TIMEOUT_MS`. The gateway's KPIs go to
//! `metrics` as `metric.update`, every `WS_METRICS_CHANNEL_MS`.

use std::{sync::Arc, time::Duration};

use protocol::{
    channel_frames::seed004::{
        AGENT_CONNECTED, AGENT_DISCONNECTED, AGENT_HEARTBEAT, GLOBAL, METRIC_UPDATE, METRICS,
    },
    time::now_ms,
    v1::PublishRequest,
};
use serde::Deserialize;

use crate::state::Shared;

/// The longest agent or session id.
const ID_MAX: usize = 128;
/// Heartbeats are published at most this often per agent, however often it pings.
const HEARTBEAT_EVERY_MS: u64 = 10_000;

/// Who an agent socket belongs to.
#[derive(Debug, Clone)]
pub struct Agent {
    pub agent_id: String,
    pub session_id: Option<String>,
    pub client_id: String,
    last_heartbeat_ms: u64,
}

#[derive(Debug, Deserialize)]
pub struct AgentQuery {
    agent_id: Option<String>,
    session_id: Option<String>,
    token: Option<String>,
}

fn valid_id(id: Option<String>) -> Result<Option<String>, &'static str> {
    match id.filter(|s| !s.is_empty()) {
        Some(id) if id.len() > ID_MAX || id.chars().any(|c| c.is_control()) => {
            Err("agent_id and session_id must be at most 128 bytes without control characters")
        }
        id => Ok(id),
    }
}

pub async fn upgrade(
    axum::extract::State(shared): axum::extract::State<Arc<Shared>>,
    axum::extract::ConnectInfo(addr): axum::extract::ConnectInfo<std::net::SocketAddr>,
    axum::extract::Query(query): axum::extract::Query<AgentQuery>,
    request: axum::extract::Request,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let (agent_id, session_id) = match (valid_id(query.agent_id), valid_id(query.session_id)) {
        (Ok(a), Ok(s)) => (a, s),
        (Err(why), _) | (_, Err(why)) => {
            return (axum::http::StatusCode::BAD_REQUEST, why).into_response();
        }
    };
    let agent = agent_id.map(|agent_id| Agent {
        agent_id,
        session_id,
        client_id: String::new(),
        last_heartbeat_ms: 0,
    });
    let profile = crate::socket::Profile {
        dialect: crate::frame::Dialect::Seed004,
        agent,
    };
    let query = crate::ws::TokenQuery::from(query.token);
    crate::ws::upgrade_with(shared, addr, query, request, profile).await
}

impl Agent {
    fn data(&self) -> serde_json::Value {
        serde_json::json!({
            "agent_id": self.agent_id,
            "session_id": self.session_id,
            "client_id": self.client_id,
            "timestamp": now_ms(),
        })
    }

    pub fn connected(&mut self, shared: &Arc<Shared>, client_id: &str) {
        self.client_id = client_id.to_owned();
        publish(shared, GLOBAL, AGENT_CONNECTED, self.data());
    }

    /// A ping from the agent: a heartbeat, at most every ten seconds.
    pub fn beat(&mut self, shared: &Arc<Shared>) {
        let now = now_ms();
        if now.saturating_sub(self.last_heartbeat_ms) >= HEARTBEAT_EVERY_MS {
            self.last_heartbeat_ms = now;
            publish(shared, GLOBAL, AGENT_HEARTBEAT, self.data());
        }
    }

    pub fn disconnected(&self, shared: &Arc<Shared>, reason: &str) {
        let mut data = self.data();
        data["reason"] = reason.into();
        publish(shared, GLOBAL, AGENT_DISCONNECTED, data);
    }
}

/// Publishes a server event as the gateway (its service token), in the
/// background; a failure is logged, as nobody waits for it.
pub fn publish(shared: &Arc<Shared>, channel: &str, event: &str, data: serde_json::Value) {
    let request = PublishRequest {
        channel: channel.to_owned(),
        event: event.to_owned(),
        data_json: protocol::json::encode(&data),
        ttl_ms: 0,
    };
    let mut api = shared.channels.upstream().channels();
    tokio::spawn(async move {
        let call = api.publish(crate::upstream::traced(request));
        match tokio::time::timeout(Duration::from_secs(10), call).await {
            Ok(Ok(_)) => {}
            Ok(Err(status)) => tracing::warn!(%status, "cannot publish a server event"),
            Err(_) => tracing::warn!("board-service did not take a server event in time"),
        }
    });
}

/// Publishes the gateway's KPIs on `metrics` every `every` until shutdown.
pub fn spawn_kpis(shared: Arc<Shared>, every: Duration) -> Option<tokio::task::JoinHandle<()>> {
    if every.is_zero() {
        return None;
    }
    Some(tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = shared.stop.cancelled() => return,
            }
            let m = &shared.metrics;
            let data = serde_json::json!({
                "gateway_port": shared.port,
                "connected_clients": shared.clients.len(),
                "active_agents": m.agents_active.get(),
                "watched_boards": shared.hub.feeds().len(),
                "active_channels": shared.channels.stats().len(),
                "frames_sent": m.frames_sent.get(),
                "frames_received": m.frames_received.get(),
                "timestamp": now_ms(),
            });
            publish(&shared, METRICS, METRIC_UPDATE, data);
        }
    }))
}
