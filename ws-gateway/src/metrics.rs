//! Counters behind `/stats` and `/metrics`, as plain atomics: updating them
//! costs the fan-out path one relaxed add.

use std::{
    fmt::Write,
    sync::atomic::{AtomicU64, Ordering::Relaxed},
};

/// Upper bounds (ms) of the commit-to-send latency buckets.
const LATENCY_BUCKETS_MS: [u64; 12] = [1, 2, 5, 10, 20, 50, 100, 250, 500, 1000, 2500, 5000];

/// Gateway-wide counters.
#[derive(Default)]
pub struct Metrics {
    pub connections_active: AtomicU64,
    pub connections_total: AtomicU64,
    pub connections_rejected: AtomicU64,
    pub frames_sent: AtomicU64,
    pub frames_received: AtomicU64,
    pub frame_errors: AtomicU64,
    /// Board frames put into client outboxes.
    pub frames_queued: AtomicU64,
    pub clients_dropped: AtomicU64,
    pub upstream_reconnects: AtomicU64,
    pub feeds_active: AtomicU64,
    latency_buckets: [AtomicU64; LATENCY_BUCKETS_MS.len() + 1],
    latency_sum_ms: AtomicU64,
}

/// Point-in-time values computed when scraped.
pub struct Gauges {
    pub queued_frames: usize,
    pub max_queue: usize,
    pub boards: usize,
}

impl Metrics {
    pub fn client_dropped(&self) {
        self.clients_dropped.fetch_add(1, Relaxed);
    }

    pub fn frames_published(&self, delivered: u64) {
        self.frames_queued.fetch_add(delivered, Relaxed);
    }

    pub fn upstream_reconnect(&self) {
        self.upstream_reconnects.fetch_add(1, Relaxed);
    }

    pub fn feed_opened(&self) {
        self.feeds_active.fetch_add(1, Relaxed);
    }

    pub fn feed_closed(&self) {
        self.feeds_active.fetch_sub(1, Relaxed);
    }

    /// Records `count` board frames written whose commit was `latency_ms` ago.
    pub fn record_sent(&self, latency_ms: u64, count: u64) {
        let bucket = LATENCY_BUCKETS_MS
            .iter()
            .position(|&le| latency_ms <= le)
            .unwrap_or(LATENCY_BUCKETS_MS.len());
        self.latency_buckets[bucket].fetch_add(count, Relaxed);
        // The count is the sum of the buckets: one fewer shared atomic per frame.
        if latency_ms > 0 {
            self.latency_sum_ms.fetch_add(latency_ms * count, Relaxed);
        }
    }

    /// The Prometheus text exposition.
    pub fn render(&self, gauges: &Gauges) -> String {
        let mut out = String::with_capacity(4096);
        let mut metric = |name: &str, kind: &str, help: &str, value: u64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        };
        let get = |c: &AtomicU64| c.load(Relaxed);
        metric(
            "ws_gateway_connections_active",
            "gauge",
            "Open WebSocket and SSE connections.",
            get(&self.connections_active),
        );
        metric(
            "ws_gateway_connections_total",
            "counter",
            "Connections accepted.",
            get(&self.connections_total),
        );
        metric(
            "ws_gateway_connections_rejected_total",
            "counter",
            "Connections refused by origin, auth or a limit.",
            get(&self.connections_rejected),
        );
        metric(
            "ws_gateway_frames_sent_total",
            "counter",
            "Frames written to clients.",
            get(&self.frames_sent),
        );
        metric(
            "ws_gateway_frames_received_total",
            "counter",
            "Frames received from clients.",
            get(&self.frames_received),
        );
        metric(
            "ws_gateway_frame_errors_total",
            "counter",
            "Client frames answered with an error frame.",
            get(&self.frame_errors),
        );
        metric(
            "ws_gateway_frames_queued_total",
            "counter",
            "Board frames queued to subscribers.",
            get(&self.frames_queued),
        );
        metric(
            "ws_gateway_clients_dropped_total",
            "counter",
            "Times a lagging client's queue was dropped for a fresh board.sync.",
            get(&self.clients_dropped),
        );
        metric(
            "ws_gateway_upstream_reconnects_total",
            "counter",
            "WatchBoard streams re-opened after a failure.",
            get(&self.upstream_reconnects),
        );
        metric(
            "ws_gateway_boards_active",
            "gauge",
            "Boards with an upstream watch.",
            gauges.boards as u64,
        );
        metric(
            "ws_gateway_client_queue_frames",
            "gauge",
            "Frames waiting in all client queues.",
            gauges.queued_frames as u64,
        );
        metric(
            "ws_gateway_client_queue_max",
            "gauge",
            "Deepest client queue.",
            gauges.max_queue as u64,
        );

        let name = "ws_gateway_commit_to_send_ms";
        let _ = writeln!(
            out,
            "# HELP {name} Board commit to frame written, in ms.\n# TYPE {name} histogram"
        );
        let mut cumulative = 0;
        for (i, bucket) in self.latency_buckets.iter().enumerate() {
            cumulative += get(bucket);
            let le = LATENCY_BUCKETS_MS
                .get(i)
                .map_or("+Inf".to_owned(), |v| v.to_string());
            let _ = writeln!(out, "{name}_bucket{{le=\"{le}\"}} {cumulative}");
        }
        let _ = writeln!(
            out,
            "{name}_sum {}\n{name}_count {cumulative}",
            get(&self.latency_sum_ms),
        );
        out
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
            boards: 0,
        });
        assert!(text.contains("ws_gateway_commit_to_send_ms_bucket{le=\"2\"} 0"));
        assert!(text.contains("ws_gateway_commit_to_send_ms_bucket{le=\"5\"} 2"));
        assert!(text.contains("ws_gateway_commit_to_send_ms_bucket{le=\"+Inf\"} 3"));
        assert!(text.contains("ws_gateway_commit_to_send_ms_count 3"));
    }
}
