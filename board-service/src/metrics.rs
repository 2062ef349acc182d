//! Prometheus metrics of board-service, served on their own small HTTP port
//! (`BOARD_SERVICE_METRICS_ADDR`): RPC counts by method and status code,
//! RPC latency histograms, open watch streams, and events streamed.

use std::{
    sync::Arc,
    task::{Context, Poll},
    time::Instant,
};

use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Call {
    method: String,
    code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Method {
    method: String,
}

/// Every metric board-service exports. Cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Registry,
    calls: Family<Call, Counter>,
    latency: Family<Method, Histogram>,
    watchers: Gauge,
    events: Counter,
    relayed: Counter,
    relay_leader: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("boardwire_board_service");
        let calls = Family::<Call, Counter>::default();
        // 100 µs to ~6.5 s: a move takes about a millisecond on a quiet server.
        let latency = Family::<Method, Histogram>::new_with_constructor(|| {
            Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
                0.0001, 2.0, 17,
            ))
        });
        let (watchers, events) = (Gauge::default(), Counter::default());
        registry.register(
            "rpc_calls",
            "gRPC calls by method and status code",
            calls.clone(),
        );
        registry.register(
            "rpc_duration_seconds",
            "Time from a gRPC request to its response headers",
            latency.clone(),
        );
        registry.register("watchers", "Open WatchBoard streams", watchers.clone());
        registry.register(
            "events_streamed",
            "Board events sent to watchers",
            events.clone(),
        );
        let (relayed, relay_leader) = (Counter::default(), Gauge::default());
        registry.register(
            "relayed_events",
            "Board events published to NATS JetStream and acknowledged",
            relayed.clone(),
        );
        registry.register(
            "relay_leader",
            "1 while this replica holds the relay lock and relays to NATS",
            relay_leader.clone(),
        );
        Self {
            inner: Arc::new(Inner {
                registry,
                calls,
                latency,
                watchers,
                events,
                relayed,
                relay_leader,
            }),
        }
    }
}

impl Metrics {
    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = encode(&mut out, &self.inner.registry);
        out
    }

    /// Holds the watcher gauge up until dropped.
    pub fn watcher(&self) -> WatcherGuard {
        self.inner.watchers.inc();
        WatcherGuard(self.clone())
    }

    pub fn event_streamed(&self) {
        self.inner.events.inc();
    }

    /// `n` more events acknowledged by JetStream.
    pub fn events_relayed(&self, n: u64) {
        self.inner.relayed.inc_by(n);
    }

    /// Whether this replica is the relayer now.
    pub fn set_relay_leader(&self, leader: bool) {
        self.inner.relay_leader.set(i64::from(leader));
    }

    fn observe(&self, method: &str, code: &str, started: Instant) {
        let method = method.rsplit('/').next().unwrap_or(method).to_owned();
        self.inner
            .calls
            .get_or_create(&Call {
                method: method.clone(),
                code: code.to_owned(),
            })
            .inc();
        self.inner
            .latency
            .get_or_create(&Method { method })
            .observe(started.elapsed().as_secs_f64());
    }
}

/// Decrements the watcher gauge when the watch stream ends.
pub struct WatcherGuard(Metrics);

impl Drop for WatcherGuard {
    fn drop(&mut self) {
        self.0.inner.watchers.dec();
    }
}

/// A tower layer that counts and times every gRPC call.
#[derive(Clone)]
pub struct MetricsLayer(pub Metrics);

impl<S> tower::Layer<S> for MetricsLayer {
    type Service = MetricsService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        MetricsService {
            inner,
            metrics: self.0.clone(),
        }
    }
}

#[derive(Clone)]
pub struct MetricsService<S> {
    inner: S,
    metrics: Metrics,
}

impl<S, B, R> tower::Service<http::Request<B>> for MetricsService<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = futures::future::BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let method = request.uri().path().to_owned();
        let metrics = self.metrics.clone();
        let started = Instant::now();
        let call = self.inner.call(request);
        Box::pin(async move {
            let response = call.await;
            // An error answer carries its code in the headers (trailers-only);
            // a success carries none there.
            let code = match &response {
                Ok(r) => r
                    .headers()
                    .get("grpc-status")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("0")
                    .to_owned(),
                Err(_) => "transport".to_owned(),
            };
            metrics.observe(&method, &code, started);
            response
        })
    }
}
