//! The `boardwire.v1.ChannelService` gRPC API.

use std::pin::Pin;

use futures::Stream;
use protocol::{
    channel_frames::check_name,
    v1::{
        ChannelPublication, ChannelUpdate, PublishRequest, WatchChannelRequest,
        channel_service_server::ChannelService,
    },
};
use service_kit::auth::Authenticator;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::{ChannelHub, announce::Announcer};
use crate::grpc::caller_access;

/// The largest publication payload, in bytes of JSON.
pub const MAX_DATA_BYTES: usize = 64 * 1024;
/// The longest event name.
const MAX_EVENT_BYTES: usize = protocol::channel_frames::EVENT_MAX;
/// Updates buffered per watcher between the reader and the network.
const WATCH_BUFFER: usize = 256;

pub struct ChannelApi {
    hub: ChannelHub,
    auth: Option<Authenticator>,
    /// With `NATS_URL`: tells the gateways of each committed publication.
    announcer: Option<Announcer>,
}

impl ChannelApi {
    pub fn new(hub: ChannelHub, auth: Option<Authenticator>, announcer: Option<Announcer>) -> Self {
        Self {
            hub,
            auth,
            announcer,
        }
    }
}

fn check_publish(request: &PublishRequest) -> Result<(), Status> {
    check_name(&request.channel).map_err(Status::invalid_argument)?;
    let event = &request.event;
    if event.trim().is_empty()
        || event.len() > MAX_EVENT_BYTES
        || event.chars().any(char::is_control)
    {
        return Err(Status::invalid_argument(format!(
            "event must be 1 to {MAX_EVENT_BYTES} bytes without control characters"
        )));
    }
    if request.data_json.len() > MAX_DATA_BYTES {
        return Err(Status::invalid_argument(format!(
            "data must be at most {MAX_DATA_BYTES} bytes of JSON"
        )));
    }
    serde_json::from_str::<&serde_json::value::RawValue>(&request.data_json)
        .map_err(|e| Status::invalid_argument(format!("data_json is not JSON: {e}")))?;
    Ok(())
}

#[tonic::async_trait]
impl ChannelService for ChannelApi {
    #[tracing::instrument(skip_all, fields(channel = %request.get_ref().channel))]
    async fn publish(
        &self,
        request: Request<PublishRequest>,
    ) -> Result<Response<ChannelPublication>, Status> {
        let access = caller_access(self.auth.as_ref(), &request).await?;
        let request = request.into_inner();
        check_publish(&request)?;
        if !access.can_publish(&request.channel) {
            return Err(Status::permission_denied(format!(
                "the token may not publish on {:?}",
                request.channel
            )));
        }
        let publication = self
            .hub
            .store()
            .publish(
                &request.channel,
                &request.event,
                &request.data_json,
                request.ttl_ms,
            )
            .await?;
        if let Some(announcer) = &self.announcer {
            announcer.announce(&publication);
        }
        Ok(Response::new(publication))
    }

    type WatchChannelStream =
        Pin<Box<dyn Stream<Item = Result<ChannelUpdate, Status>> + Send + 'static>>;

    #[tracing::instrument(skip_all, fields(channel = %request.get_ref().channel))]
    async fn watch_channel(
        &self,
        request: Request<WatchChannelRequest>,
    ) -> Result<Response<Self::WatchChannelStream>, Status> {
        let access = caller_access(self.auth.as_ref(), &request).await?;
        let request = request.into_inner();
        check_name(&request.channel).map_err(Status::invalid_argument)?;
        if !access.can_subscribe(&request.channel) {
            return Err(Status::permission_denied(format!(
                "the token may not subscribe to {:?}",
                request.channel
            )));
        }
        let since = request.since_offset.map(|offset| (offset, request.epoch));
        let (out, stream) = mpsc::channel(WATCH_BUFFER);
        tokio::spawn(self.hub.clone().watch(request.channel, since, out));
        Ok(Response::new(Box::pin(ReceiverStream::new(stream))))
    }
}
