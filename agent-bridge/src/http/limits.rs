//! Connection limits: open sockets, and new sockets per client IP per minute.

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use super::ApiError;
use crate::config::Limits;

/// Shared by every socket.
#[derive(Clone)]
pub struct Admission {
    limits: Limits,
    open: Arc<AtomicUsize>,
    recent: Arc<Mutex<HashMap<IpAddr, (Instant, u32)>>>,
}

/// Holds one open-socket slot until dropped.
pub struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

const WINDOW: Duration = Duration::from_secs(60);

impl Admission {
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            open: Arc::default(),
            recent: Arc::default(),
        }
    }

    /// Chat sockets open now.
    pub fn open_sockets(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// A slot for a new socket from `ip`, or why not.
    pub fn admit(&self, ip: IpAddr) -> Result<Slot, ApiError> {
        {
            let now = Instant::now();
            let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
            if recent.len() > 4096 {
                recent.retain(|_, (since, _)| now.duration_since(*since) < WINDOW);
            }
            let (since, count) = recent.entry(ip).or_insert((now, 0));
            if now.duration_since(*since) >= WINDOW {
                *since = now;
                *count = 0;
            }
            if *count >= self.limits.max_connects_per_ip_per_min {
                return Err(ApiError::RateLimited(format!(
                    "more than {} chat connections from this address in a minute; wait and retry",
                    self.limits.max_connects_per_ip_per_min
                )));
            }
            *count += 1;
        }
        let open = self.open.fetch_add(1, Ordering::AcqRel);
        let slot = Slot(Arc::clone(&self.open));
        if open >= self.limits.max_connections {
            return Err(ApiError::Unavailable(format!(
                "agent-bridge has {} chat connections open, its limit; retry later",
                self.limits.max_connections
            )));
        }
        Ok(slot)
    }
}

/// Frames per second with bursts of twice that: a token bucket.
pub struct RateLimit {
    per_sec: f64,
    tokens: f64,
    last: Instant,
}

impl RateLimit {
    pub fn new(per_sec: u32) -> Self {
        let per_sec = f64::from(per_sec.max(1));
        Self {
            per_sec,
            tokens: per_sec * 2.0,
            last: Instant::now(),
        }
    }

    /// Whether one more frame may pass now.
    pub fn allow(&mut self) -> bool {
        let now = Instant::now();
        let refill = now.duration_since(self.last).as_secs_f64() * self.per_sec;
        self.tokens = (self.tokens + refill).min(self.per_sec * 2.0);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}
