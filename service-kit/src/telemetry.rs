//! The tracing set-up every Boardwire binary shares, and W3C trace-context
//! propagation across gRPC calls and board events.
//!
//! `RUST_LOG` filters (default `info`); `LOG_FORMAT=json` switches to one JSON
//! object per line. With `OTEL_EXPORTER_OTLP_ENDPOINT` set, spans are also
//! exported over OTLP/gRPC, with the service name and version as resource
//! attributes.

pub mod propagation;

use opentelemetry::{KeyValue, global, trace::TracerProvider as _};
use opentelemetry_sdk::{Resource, propagation::TraceContextPropagator, trace::SdkTracerProvider};
use tracing_subscriber::{EnvFilter, Layer, fmt, prelude::*};

/// Keeps the span exporter; [`Telemetry::shutdown`], or dropping it, flushes
/// what is still buffered. Hold it until the end of `main`: a guard dropped
/// at once loses the spans of the whole run.
#[derive(Default)]
#[must_use = "dropping the telemetry guard stops span export: keep it until main returns"]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Exports what is still buffered. Call last, after the services stopped.
    pub fn shutdown(mut self) {
        self.flush();
    }

    fn flush(&mut self) {
        if let Some(provider) = self.provider.take()
            && let Err(err) = provider.shutdown()
        {
            eprintln!("telemetry: flushing spans failed: {err}");
        }
    }
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        self.flush();
    }
}

/// Installs logging, and OTLP export when `OTEL_EXPORTER_OTLP_ENDPOINT` is
/// set. Safe to call more than once (tests do): later calls change nothing.
pub fn init(service_name: &'static str) -> Telemetry {
    let endpoint = std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT").unwrap_or_default();
    let provider = if endpoint.trim().is_empty() {
        None
    } else {
        match opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .build()
        {
            Ok(exporter) => Some(
                SdkTracerProvider::builder()
                    .with_batch_exporter(exporter)
                    .with_resource(resource(service_name))
                    .build(),
            ),
            Err(err) => {
                eprintln!("telemetry: OTLP exporter not started: {err}");
                None
            }
        }
    };
    init_with_provider(service_name, provider)
}

/// Like [`init`], exporting spans to `provider` (tests pass an in-memory one).
pub fn init_with_provider(
    service_name: &'static str,
    provider: Option<SdkTracerProvider>,
) -> Telemetry {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var("LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json"));
    let logs = if json {
        fmt::layer().json().with_current_span(false).boxed()
    } else {
        fmt::layer().compact().boxed()
    };
    let traces = provider.as_ref().map(|provider| {
        global::set_text_map_propagator(TraceContextPropagator::new());
        global::set_tracer_provider(provider.clone());
        tracing_opentelemetry::layer().with_tracer(provider.tracer(service_name))
    });
    let installed = tracing_subscriber::registry()
        .with(filter)
        .with(logs)
        .with(traces)
        .try_init();
    if installed.is_err() {
        return Telemetry::default();
    }
    tracing::debug!(
        service = service_name,
        otlp = provider.is_some(),
        "telemetry initialised"
    );
    Telemetry { provider }
}

/// `service.name` and `service.version` for exported spans.
pub fn resource(service_name: &'static str) -> Resource {
    Resource::builder()
        .with_service_name(service_name)
        .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
        .build()
}
