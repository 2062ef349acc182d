//! The gRPC connection to board-service, shared by every feed and command.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use protocol::v1::{
    board_service_client::BoardServiceClient, channel_service_client::ChannelServiceClient,
    presence_service_client::PresenceServiceClient,
};
use service_kit::auth::{Authenticator, insert_bearer};
use tonic::{
    Status,
    service::{Interceptor, interceptor::InterceptedService},
    transport::Channel,
};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

/// A board-service client whose calls carry the gateway's service token
/// unless they already carry an end user's.
pub type Api = BoardServiceClient<InterceptedService<Channel, ServiceAuth>>;

/// A channel client of board-service, with the same token rule.
pub type Channels = ChannelServiceClient<InterceptedService<Channel, ServiceAuth>>;
/// A presence client; its calls carry the service token.
pub type PresenceApi = PresenceServiceClient<InterceptedService<Channel, ServiceAuth>>;

/// Adds the service token to calls that carry no `authorization` yet: the
/// shared board feeds and their catch-up reads act for no single user.
#[derive(Clone)]
pub struct ServiceAuth(Option<Authenticator>);

impl Interceptor for ServiceAuth {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, Status> {
        if let Some(auth) = &self.0
            && !request.metadata().contains_key("authorization")
        {
            insert_bearer(request.metadata_mut(), &auth.service_token());
        }
        Ok(request)
    }
}

/// A lazily connected channel: tonic reconnects it on its own.
#[derive(Clone)]
pub struct Upstream {
    channel: Channel,
    auth: ServiceAuth,
    serving: Arc<AtomicBool>,
}

impl Upstream {
    pub fn connect_lazy(url: &str, auth: Option<Authenticator>) -> anyhow::Result<Self> {
        let channel = Channel::from_shared(url.to_owned())?
            .connect_timeout(Duration::from_secs(2))
            .http2_keep_alive_interval(Duration::from_secs(10))
            .keep_alive_timeout(Duration::from_secs(5))
            .connect_lazy();
        Ok(Self {
            channel,
            auth: ServiceAuth(auth),
            serving: Arc::new(AtomicBool::new(false)),
        })
    }

    pub fn client(&self) -> Api {
        BoardServiceClient::with_interceptor(self.channel.clone(), self.auth.clone())
            .max_decoding_message_size(64 << 20)
    }

    pub fn channels(&self) -> Channels {
        ChannelServiceClient::with_interceptor(self.channel.clone(), self.auth.clone())
    }

    /// A presence client, carrying the service token like [`Upstream::client`].
    pub fn presence(&self) -> PresenceApi {
        PresenceServiceClient::with_interceptor(self.channel.clone(), self.auth.clone())
            .max_decoding_message_size(64 << 20)
    }

    pub fn set_serving(&self, serving: bool) {
        self.serving.store(serving, Ordering::Relaxed);
    }

    /// Asks board-service's health service; remembers the answer.
    pub async fn check(&self) -> bool {
        let mut health = HealthClient::with_interceptor(self.channel.clone(), self.auth.clone());
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

/// `message` as a gRPC request carrying the current span's W3C trace
/// context, so board-service's spans join the command's trace.
pub fn traced<T>(message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    service_kit::telemetry::propagation::inject_metadata(request.metadata_mut());
    request
}

/// [`traced`], made as the end user whose `token` it is (none with auth off).
pub fn as_user<T>(token: Option<&str>, message: T) -> tonic::Request<T> {
    let mut request = traced(message);
    if let Some(token) = token {
        insert_bearer(request.metadata_mut(), token);
    }
    request
}
