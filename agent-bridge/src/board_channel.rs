//! A board-service gRPC client acting for one caller, shared by the built-in
//! agent's tools and the MCP server: a lazy channel (the bridge starts while
//! board-service is down), the trace-context interceptor, the caller's bearer
//! token on every request, and a deadline per call.

use std::{sync::Arc, time::Duration};

use protocol::v1::board_service_client::BoardServiceClient;
use tonic::{service::interceptor::InterceptedService, transport::Channel};

/// Adds the calling span's W3C trace context to every call, so board-service's
/// spans join the run's trace.
type TracedChannel = InterceptedService<
    Channel,
    fn(tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status>,
>;

/// The board-service client of one caller. Cheap to clone.
#[derive(Clone)]
pub struct BoardChannel {
    client: BoardServiceClient<TracedChannel>,
    timeout: Duration,
    /// The end user's bearer token, sent on every call; `None` with auth off.
    bearer: Option<Arc<str>>,
}

impl BoardChannel {
    /// Connects lazily. `timeout` bounds each call (not a watch stream's life).
    pub fn new(url: &str, timeout: Duration) -> anyhow::Result<Self> {
        let channel = Channel::from_shared(url.to_owned())?
            .connect_timeout(timeout)
            .connect_lazy();
        Ok(Self {
            client: BoardServiceClient::with_interceptor(
                channel,
                service_kit::telemetry::propagation::grpc_client_interceptor as fn(_) -> _,
            ),
            timeout,
            bearer: None,
        })
    }

    /// This client acting for the user whose token this is.
    pub fn with_bearer(&self, token: Option<&str>) -> Self {
        Self {
            bearer: token.map(Arc::from),
            ..self.clone()
        }
    }

    /// A client to make one call with.
    pub fn client(&self) -> BoardServiceClient<TracedChannel> {
        self.client.clone()
    }

    /// `message` as a request that carries the caller's token.
    pub fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        if let Some(token) = &self.bearer {
            service_kit::auth::insert_bearer(request.metadata_mut(), token);
        }
        request
    }

    /// Awaits `call` within the deadline; a refusal becomes `E` through its
    /// `From<tonic::Status>`, a deadline passed through `timed_out`.
    pub async fn call<T, E: From<tonic::Status>>(
        &self,
        call: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>,
        timed_out: impl FnOnce(Duration) -> E,
    ) -> Result<T, E> {
        match tokio::time::timeout(self.timeout, call).await {
            Ok(result) => Ok(result?.into_inner()),
            Err(_) => Err(timed_out(self.timeout)),
        }
    }
}
