//! The gRPC connection to board-service, shared by every feed and command.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use protocol::{
    board_frames::{ErrorCode, ErrorFrame},
    v1::board_service_client::BoardServiceClient,
};
use tonic::{Code, Status, transport::Channel};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

/// A lazily connected channel: tonic reconnects it on its own.
#[derive(Clone)]
pub struct Upstream {
    channel: Channel,
    serving: Arc<AtomicBool>,
}

impl Upstream {
    pub fn connect_lazy(url: &str) -> anyhow::Result<Self> {
        let channel = Channel::from_shared(url.to_owned())?
            .connect_timeout(Duration::from_secs(2))
            .http2_keep_alive_interval(Duration::from_secs(10))
            .keep_alive_timeout(Duration::from_secs(5))
            .connect_lazy();
        Ok(Self {
            channel,
            serving: Arc::new(AtomicBool::new(false)),
        })
    }

    pub fn client(&self) -> BoardServiceClient<Channel> {
        BoardServiceClient::new(self.channel.clone()).max_decoding_message_size(64 << 20)
    }

    pub fn set_serving(&self, serving: bool) {
        self.serving.store(serving, Ordering::Relaxed);
    }

    /// Asks board-service's health service; remembers the answer.
    pub async fn check(&self) -> bool {
        let mut health = HealthClient::new(self.channel.clone());
        let asked = tokio::time::timeout(
            Duration::from_secs(2),
            health.check(HealthCheckRequest {
                service: String::new(),
            }),
        )
        .await;
        let serving =
            matches!(asked, Ok(Ok(r)) if r.get_ref().status == ServingStatus::Serving as i32);
        self.set_serving(serving);
        serving
    }
}

/// The error frame for a failed board-service call. Internal causes are
/// logged, and shown to the client only as a generic error.
pub fn error_frame(status: &Status, id: Option<String>, board_id: Option<String>) -> ErrorFrame {
    let (code, message) = match status.code() {
        Code::InvalidArgument => (ErrorCode::InvalidArgument, status.message().to_owned()),
        Code::NotFound => (ErrorCode::NotFound, status.message().to_owned()),
        Code::AlreadyExists => (ErrorCode::AlreadyExists, status.message().to_owned()),
        Code::Aborted => (ErrorCode::VersionConflict, status.message().to_owned()),
        Code::FailedPrecondition => (ErrorCode::FailedPrecondition, status.message().to_owned()),
        Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled => (
            ErrorCode::Unavailable,
            "board-service is unavailable, retry later".to_owned(),
        ),
        _ => {
            tracing::error!(%status, "board-service call failed");
            (ErrorCode::Internal, "internal error".to_owned())
        }
    };
    ErrorFrame {
        code,
        message,
        id,
        board_id,
    }
}

/// `message` as a gRPC request carrying the current span's W3C trace
/// context, so board-service's spans join the command's trace.
pub fn traced<T>(message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    service_kit::telemetry::propagation::inject_metadata(request.metadata_mut());
    request
}
