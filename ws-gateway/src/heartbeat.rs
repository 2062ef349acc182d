//! One task for every connection's timers: pings, silent clients, token
//! expiry and auth deadlines. Sockets carry no timer of their own, which
//! keeps an idle connection small.

use protocol::time::now_ms;
use std::{sync::Arc, time::Duration};

use crate::{client::Outgoing, error::CloseReason, state::Shared};

const TICK: Duration = Duration::from_millis(500);

pub fn spawn(shared: Arc<Shared>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_ping = now_ms();
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = shared.stop.cancelled() => return,
            }
            let now = now_ms();
            let ping = now.saturating_sub(last_ping) >= shared.config.heartbeat_ms;
            if ping {
                last_ping = now;
                shared.prune_ips();
            }
            for client in shared.clients.all() {
                let expiry = client.expiry_ms();
                let deadline = client.auth_deadline_ms();
                if deadline != 0 && now > deadline {
                    client.close(CloseReason::Unauthorized);
                } else if expiry != 0 && now > expiry {
                    client.close(CloseReason::TokenExpired);
                } else if client.sse {
                    continue;
                } else if now.saturating_sub(client.last_seen_ms())
                    > shared.config.client_timeout_ms
                {
                    client.close(CloseReason::HeartbeatTimeout);
                } else if ping {
                    client.push(Outgoing::Ping);
                }
            }
        }
    })
}
