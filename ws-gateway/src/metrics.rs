//! Counters behind `/stats` and `/metrics`, registered with
//! `prometheus-client`, which writes the exposition text. Each update on
//! the fan-out path is still one relaxed atomic add.

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering::Relaxed},
    },
};

use prometheus_client::{
    encoding::{EncodeMetric, MetricEncoder, NoLabelSet, text::encode},
    metrics::{MetricType, TypedMetric, counter::Counter, exemplar::Exemplar, gauge::Gauge},
    registry::Registry,
};

/// Upper bounds (ms) of the commit-to-send latency buckets.
const LATENCY_BUCKETS_MS: [u64; 12] = [1, 2, 5, 10, 20, 50, 100, 250, 500, 1000, 2500, 5000];

/// Gateway-wide counters. Clones of each are in `registry`.
pub struct Metrics {
    pub connections_active: Gauge,
    pub connections_total: Counter,
    pub connections_rejected: Counter,
    pub frames_sent: Counter,
    pub frames_received: Counter,
    pub frame_errors: Counter,
    /// Board frames put into client outboxes.
    pub frames_queued: Counter,
    pub clients_dropped: Counter,
    pub upstream_reconnects: Counter,
    /// Board events taken from JetStream (with `NATS_URL`).
    pub jetstream_events: Counter,
    /// Gaps in a JetStream feed filled from board-service's log.
    pub jetstream_catchups: Counter,
    /// Times a feed fell back to WatchBoard because JetStream was down.
    pub jetstream_fallbacks: Counter,
    /// Channel publications taken from NATS (with `NATS_URL`).
    pub channel_nats_publications: Counter,
    /// Times a channel feed on NATS read board-service's history (a gap,
    /// another epoch, a position check that found more).
    pub channel_catchups: Counter,
    pub feeds_active: Gauge,
    /// Open seed 004 agent sockets that named an agent.
    pub agents_active: Gauge,
    latency: Latency,
    /// Set from the live clients at each scrape.
    queued_frames: Gauge,
    max_queue: Gauge,
    registry: Registry,
}

/// Point-in-time values computed when scraped.
pub struct Gauges {
    pub queued_frames: usize,
    pub max_queue: usize,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("ws_gateway");
        let metrics = Self {
            connections_active: Gauge::default(),
            connections_total: Counter::default(),
            connections_rejected: Counter::default(),
            frames_sent: Counter::default(),
            frames_received: Counter::default(),
            frame_errors: Counter::default(),
            frames_queued: Counter::default(),
            clients_dropped: Counter::default(),
            upstream_reconnects: Counter::default(),
            jetstream_events: Counter::default(),
            jetstream_catchups: Counter::default(),
            jetstream_fallbacks: Counter::default(),
            channel_nats_publications: Counter::default(),
            channel_catchups: Counter::default(),
            feeds_active: Gauge::default(),
            agents_active: Gauge::default(),
            latency: Default::default(),
            queued_frames: Gauge::default(),
            max_queue: Gauge::default(),
            registry: Registry::default(),
        };
        let m = &metrics;
        let gauges = [
            (
                "connections_active",
                "Open WebSocket and SSE connections",
                &m.connections_active,
            ),
            (
                "boards_active",
                "Boards with an upstream watch",
                &m.feeds_active,
            ),
            (
                "client_queue_frames",
                "Frames waiting in all client queues",
                &m.queued_frames,
            ),
            ("client_queue_max", "Deepest client queue", &m.max_queue),
            (
                "agents_active",
                "Open /ws/agents sockets that named an agent",
                &m.agents_active,
            ),
        ];
        for (name, help, gauge) in gauges {
            registry.register(name, help, gauge.clone());
        }
        // prometheus-client adds `_total` to each counter's name.
        let counters = [
            ("connections", "Connections accepted", &m.connections_total),
            (
                "connections_rejected",
                "Connections refused by origin, auth or a limit",
                &m.connections_rejected,
            ),
            ("frames_sent", "Frames written to clients", &m.frames_sent),
            (
                "frames_received",
                "Frames received from clients",
                &m.frames_received,
            ),
            (
                "frame_errors",
                "Client frames answered with an error frame",
                &m.frame_errors,
            ),
            (
                "frames_queued",
                "Board frames queued to subscribers",
                &m.frames_queued,
            ),
            (
                "clients_dropped",
                "Times a lagging client's queue was dropped for a fresh board.sync",
                &m.clients_dropped,
            ),
            (
                "upstream_reconnects",
                "WatchBoard streams re-opened after a failure",
                &m.upstream_reconnects,
            ),
            (
                "jetstream_events",
                "Board events taken from JetStream",
                &m.jetstream_events,
            ),
            (
                "jetstream_catchups",
                "Gaps in a JetStream feed filled from board-service's log",
                &m.jetstream_catchups,
            ),
            (
                "jetstream_fallbacks",
                "Feeds that fell back to WatchBoard while JetStream was down",
                &m.jetstream_fallbacks,
            ),
            (
                "channel_nats_publications",
                "Channel publications taken from NATS",
                &m.channel_nats_publications,
            ),
            (
                "channel_catchups",
                "Channel feeds on NATS that read what they missed from history",
                &m.channel_catchups,
            ),
        ];
        for (name, help, counter) in counters {
            registry.register(name, help, counter.clone());
        }
        registry.register(
            "commit_to_send_ms",
            "Board commit to frame written, in ms",
            m.latency.clone(),
        );
        Self {
            registry,
            ..metrics
        }
    }
}

impl Metrics {
    pub fn client_dropped(&self) {
        self.clients_dropped.inc();
    }

    pub fn frames_published(&self, delivered: u64) {
        self.frames_queued.inc_by(delivered);
    }

    pub fn upstream_reconnect(&self) {
        self.upstream_reconnects.inc();
    }

    pub fn feed_opened(&self) {
        self.feeds_active.inc();
    }

    pub fn feed_closed(&self) {
        self.feeds_active.dec();
    }

    /// Records `count` board frames written whose commit was `latency_ms` ago.
    pub fn record_sent(&self, latency_ms: u64, count: u64) {
        self.latency.record(latency_ms, count);
    }

    /// The exposition text (OpenMetrics, which Prometheus reads as text).
    pub fn render(&self, gauges: &Gauges) -> String {
        let as_gauge = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        self.queued_frames.set(as_gauge(gauges.queued_frames));
        self.max_queue.set(as_gauge(gauges.max_queue));
        let mut out = String::with_capacity(4096);
        let _ = encode(&mut out, &self.registry);
        out
    }
}

/// A histogram written with one relaxed add per batch of frames: the
/// crate's own `Histogram` takes a lock per observation and has no
/// "observe n times", and this one sits on the fan-out path.
/// Clones share the counts, like the crate's metrics.
#[derive(Debug, Default, Clone)]
struct Latency(Arc<LatencyCounts>);

#[derive(Debug, Default)]
struct LatencyCounts {
    buckets: [AtomicU64; LATENCY_BUCKETS_MS.len() + 1],
    sum_ms: AtomicU64,
}

impl Latency {
    fn record(&self, latency_ms: u64, count: u64) {
        let bucket = LATENCY_BUCKETS_MS
            .iter()
            .position(|&le| latency_ms <= le)
            .unwrap_or(LATENCY_BUCKETS_MS.len());
        self.0.buckets[bucket].fetch_add(count, Relaxed);
        // The count is the sum of the buckets: one fewer shared atomic per frame.
        if latency_ms > 0 {
            self.0.sum_ms.fetch_add(latency_ms * count, Relaxed);
        }
    }
}

impl TypedMetric for Latency {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for Latency {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let bounds = LATENCY_BUCKETS_MS.iter().map(|&le| le as f64);
        let buckets: Vec<(f64, u64)> = bounds
            .chain([f64::MAX])
            .zip(self.0.buckets.iter().map(|b| b.load(Relaxed)))
            .collect();
        let count = buckets.iter().map(|(_, n)| n).sum();
        let sum = self.0.sum_ms.load(Relaxed) as f64;
        encoder.encode_histogram::<NoLabelSet>(
            sum,
            count,
            &buckets,
            None::<&HashMap<usize, Exemplar<NoLabelSet, f64>>>,
        )
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let metrics = Metrics::default();
        metrics.record_sent(3, 2);
        metrics.record_sent(9_000, 1);
        let text = metrics.render(&Gauges {
            queued_frames: 0,
            max_queue: 0,
        });
        let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned())))
            .expect("valid exposition text");
        let prometheus_parse::Value::Histogram(buckets) = &scrape
            .samples
            .iter()
            .find(|s| s.metric == "ws_gateway_commit_to_send_ms")
            .expect("the latency histogram")
            .value
        else {
            panic!("not a histogram:\n{text}");
        };
        let at = |le: f64| buckets.iter().find(|b| b.less_than == le).map(|b| b.count);
        assert_eq!(at(2.0), Some(0.0), "{text}");
        assert_eq!(at(5.0), Some(2.0), "{text}");
        assert_eq!(at(f64::INFINITY), Some(3.0), "{text}");
    }
}
