//! What every handler shares.

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::{Arc, Mutex},
};

use tokio_util::sync::CancellationToken;

use crate::{
    channels::ChannelHub, client::Registry, config::Config, hub::Hub, metrics::Metrics,
    presence::Presence,
};
use protocol::time::now_ms;

/// State shared by handlers, the heartbeat and shutdown.
pub struct Shared {
    pub config: Config,
    pub hub: Arc<Hub>,
    pub channels: Arc<ChannelHub>,
    pub presence: Arc<Presence>,
    pub metrics: Arc<Metrics>,
    pub clients: Registry,
    /// `None` with auth off.
    pub auth: Option<service_kit::auth::Authenticator>,
    pub port: u16,
    pub stop: CancellationToken,
    connects: Mutex<HashMap<IpAddr, (u64, u32)>>,
}

impl Shared {
    pub fn new(
        config: Config,
        hub: Arc<Hub>,
        presence: Arc<Presence>,
        metrics: Arc<Metrics>,
        auth: Option<service_kit::auth::Authenticator>,
        port: u16,
        stop: CancellationToken,
    ) -> Self {
        // Channels share the boards' board-service and NATS connections.
        let channels = Arc::new(ChannelHub::new(
            hub.upstream().clone(),
            hub.nats().cloned(),
            metrics.clone(),
            stop.child_token(),
        ));
        Self {
            config,
            hub,
            channels,
            presence,
            metrics,
            clients: Registry::default(),
            auth,
            port,
            stop,
            connects: Mutex::default(),
        }
    }

    /// Counts a connection attempt from `ip`; false past the per-minute limit.
    pub fn admit_ip(&self, ip: IpAddr) -> bool {
        let minute = now_ms() / 60_000;
        let mut connects = self.connects.lock().unwrap_or_else(|e| e.into_inner());
        let entry = connects.entry(ip).or_insert((minute, 0));
        if entry.0 != minute {
            *entry = (minute, 0);
        }
        entry.1 += 1;
        entry.1 <= self.config.max_connects_per_ip_per_min
    }

    /// Forgets addresses whose window has passed (called by the heartbeat).
    pub fn prune_ips(&self) {
        let minute = now_ms() / 60_000;
        let mut connects = self.connects.lock().unwrap_or_else(|e| e.into_inner());
        connects.retain(|_, (m, _)| *m == minute);
    }
}
