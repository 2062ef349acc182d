//! Prometheus metrics of agent-bridge, served at `/metrics` on its HTTP
//! port: sessions and sockets, runs by outcome, frames, tool calls by tool
//! and outcome, approvals, and histograms of the time the bridge adds.
//!
//! One registry per process: the counters are bumped deep in session and
//! run code, and a second bridge in one process (tests) only adds to them.

use std::sync::LazyLock;

use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{
        counter::Counter,
        family::Family,
        gauge::Gauge,
        histogram::{Histogram, exponential_buckets},
    },
    registry::Registry,
};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Status {
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Tool {
    tool: String,
    outcome: String,
}

/// Every metric agent-bridge exports.
pub struct Metrics {
    registry: Registry,
    pub sessions: Gauge,
    pub sockets: Gauge,
    runs_started: Counter,
    runs_ended: Family<Status, Counter>,
    pub frames: Counter,
    /// Frames for other bridges' tabs dropped because NATS fell behind.
    pub cluster_frames_dropped: Counter,
    tool_calls: Family<Tool, Counter>,
    approvals: Family<Status, Counter>,
    /// Stamping, encoding and handing one frame to every socket.
    pub publish_seconds: Histogram,
    /// From an upstream AG-UI event read to its frames published.
    pub relay_seconds: Histogram,
}

/// The process's metrics.
pub static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

impl Metrics {
    fn new() -> Self {
        let mut registry = Registry::with_prefix("boardwire_agent_bridge");
        // 1 µs to ~65 ms: what the bridge itself adds per frame is small.
        let latency = || Histogram::new(exponential_buckets(0.000_001, 2.0, 17));
        let metrics = Self {
            sessions: Gauge::default(),
            sockets: Gauge::default(),
            runs_started: Counter::default(),
            runs_ended: Family::default(),
            frames: Counter::default(),
            cluster_frames_dropped: Counter::default(),
            tool_calls: Family::default(),
            approvals: Family::default(),
            publish_seconds: latency(),
            relay_seconds: latency(),
            registry: Registry::default(),
        };
        registry.register(
            "sessions",
            "Chat sessions in memory",
            metrics.sessions.clone(),
        );
        registry.register("sockets", "Open chat WebSockets", metrics.sockets.clone());
        registry.register("runs_started", "Runs started", metrics.runs_started.clone());
        registry.register(
            "runs_ended",
            "Runs ended, by status (completed, failed, cancelled, interrupted)",
            metrics.runs_ended.clone(),
        );
        registry.register("frames", "Chat frames published", metrics.frames.clone());
        registry.register(
            "cluster_frames_dropped",
            "Chat frames for other bridges' tabs dropped because NATS fell behind",
            metrics.cluster_frames_dropped.clone(),
        );
        registry.register(
            "tool_calls",
            "Tool calls ended, by tool and outcome",
            metrics.tool_calls.clone(),
        );
        registry.register(
            "approvals",
            "Approval answers, by status (approved, rejected, timeout)",
            metrics.approvals.clone(),
        );
        registry.register(
            "frame_publish_seconds",
            "Time to stamp, encode and hand one frame to every socket of its session",
            metrics.publish_seconds.clone(),
        );
        registry.register(
            "relay_event_seconds",
            "Time from an upstream AG-UI event read to its chat frames published",
            metrics.relay_seconds.clone(),
        );
        Self {
            registry,
            ..metrics
        }
    }

    pub fn run_started(&self) {
        self.runs_started.inc();
    }

    pub fn run_ended(&self, status: &str) {
        self.runs_ended
            .get_or_create(&Status {
                status: status.to_owned(),
            })
            .inc();
    }

    pub fn tool_ended(&self, tool: &str, outcome: &str) {
        self.tool_calls
            .get_or_create(&Tool {
                tool: tool.to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    pub fn approval(&self, status: &str) {
        self.approvals
            .get_or_create(&Status {
                status: status.to_owned(),
            })
            .inc();
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut text, &self.registry);
        text
    }
}
