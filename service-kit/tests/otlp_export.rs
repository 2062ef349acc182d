//! With OTEL_EXPORTER_OTLP_ENDPOINT set, spans leave the process over real
//! OTLP/gRPC, tagged with the service's name and version. The collector here
//! is a minimal OTLP trace receiver on loopback.

use std::sync::{Arc, Mutex};

use opentelemetry_proto::tonic::{
    collector::trace::v1::{
        ExportTraceServiceRequest, ExportTraceServiceResponse,
        trace_service_server::{TraceService, TraceServiceServer},
    },
    common::v1::any_value::Value,
};
use tonic::{Request, Response, Status};

#[derive(Clone, Default)]
struct Collector {
    received: Arc<Mutex<Vec<ExportTraceServiceRequest>>>,
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        self.received
            .lock()
            .expect("lock")
            .push(request.into_inner());
        Ok(Response::new(ExportTraceServiceResponse::default()))
    }
}

#[test]
#[allow(unsafe_code)]
fn spans_are_exported_over_otlp_with_the_service_name() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let collector = Collector::default();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = tonic::transport::Server::builder()
        .add_service(TraceServiceServer::new(collector.clone()))
        .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener));
    runtime.spawn(server);

    // SAFETY: set before telemetry starts and read only by it; this test
    // binary has no other test that could read the environment concurrently.
    unsafe { std::env::set_var("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{addr}")) };
    runtime.block_on(async {
        let telemetry = service_kit::telemetry::init("otlp-test-service");
        tracing::info_span!("exported_work").in_scope(|| tracing::info!("inside"));
        tokio::task::spawn_blocking(move || telemetry.shutdown())
            .await
            .expect("flush");
    });

    let received = collector.received.lock().expect("lock");
    let resource_spans: Vec<_> = received
        .iter()
        .flat_map(|r| r.resource_spans.iter())
        .collect();
    let names: Vec<_> = resource_spans
        .iter()
        .flat_map(|rs| {
            rs.scope_spans
                .iter()
                .flat_map(|ss| ss.spans.iter().map(|s| s.name.clone()))
        })
        .collect();
    assert!(
        names.contains(&"exported_work".to_string()),
        "exported spans: {names:?}"
    );
    let service_names: Vec<_> = resource_spans
        .iter()
        .filter_map(|rs| rs.resource.as_ref())
        .flat_map(|r| r.attributes.iter())
        .filter(|kv| kv.key == "service.name")
        .filter_map(
            |kv| match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                Some(Value::StringValue(s)) => Some(s.clone()),
                _ => None,
            },
        )
        .collect();
    assert_eq!(service_names, ["otlp-test-service"]);
}
