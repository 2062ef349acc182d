//! Channels over plain HTTP, for backends and for seed 001's browsers:
//! - `POST /api/publish` takes `{channel, event, data}` or seed 001's
//!   `{channel, message}` (event `message`) and answers
//!   `{channel, offset, epoch}`;
//! - `GET /api/events?channels=a,b` streams default (`message`) SSE events
//!   whose data is `{channel, message}`, so `EventSource.onmessage` works.
//!   Each `id:` holds every channel's `epoch:offset` (in the order of
//!   `channels`), so the browser's `Last-Event-ID` resumes all of them.

use std::{collections::HashMap, net::SocketAddr, sync::Arc};

use axum::{
    Json,
    body::Bytes,
    extract::{ConnectInfo, Query, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response, sse::Event},
};
use protocol::{
    board_frames::ClientFrame,
    channel_frames::{ChannelPosition, Seed001Event, SubscribeChannel, check_name},
    v1::PublishRequest,
};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::{
    client::Outgoing,
    error::Error,
    sse::{Connection, admit_stream, keep_alive, stream},
    state::Shared,
    upstream::as_user,
    ws::TokenQuery,
};

/// `POST /api/publish`'s body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PublishBody {
    channel: String,
    #[serde(default)]
    event: Option<String>,
    #[serde(default)]
    data: Option<serde_json::Value>,
    /// Seed 001's name for `data`.
    #[serde(default)]
    message: Option<serde_json::Value>,
    /// Seconds the publication stays in history.
    #[serde(default)]
    ttl: Option<u64>,
}

fn bad_request(message: impl Into<String>) -> Response {
    Error::InvalidArgument(message.into()).into_response()
}

pub async fn publish(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<TokenQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let grant = match crate::web::caller(&shared, &headers, &query).await {
        Ok(grant) => grant,
        Err(refusal) => return refusal,
    };
    let body: PublishBody = match serde_json::from_slice(&body) {
        Ok(body) => body,
        Err(e) => return bad_request(format!("body is not a publish request: {e}")),
    };
    if let Err(why) = check_name(&body.channel) {
        return bad_request(why);
    }
    let data = match (body.data, body.message) {
        (Some(_), Some(_)) => return bad_request("give data or message, not both"),
        (data, message) => data.or(message).unwrap_or(serde_json::Value::Null),
    };
    let event = body.event.unwrap_or_else(|| "message".to_owned());
    if !grant.access.can_publish(&body.channel) {
        return Error::ChannelForbidden {
            channel: body.channel,
            publish: true,
        }
        .into_response();
    }
    let request = PublishRequest {
        channel: body.channel,
        event,
        data_json: protocol::json::encode(&data),
        ttl_ms: protocol::channel_frames::ttl_ms(body.ttl, &data),
    };
    let mut api = shared.channels.upstream().channels();
    let call = api.publish(as_user(grant.token.as_deref(), request));
    match tokio::time::timeout(crate::session::CALL_TIMEOUT, call).await {
        Ok(Ok(p)) => {
            let p = p.into_inner();
            Json(serde_json::json!({
                "channel": p.channel,
                "offset": p.offset,
                "epoch": p.epoch,
            }))
            .into_response()
        }
        Ok(Err(status)) => Error::Upstream(status).into_response(),
        Err(_) => Error::Timeout.into_response(),
    }
}

#[derive(Debug, Deserialize)]
pub struct EventsQuery {
    channels: String,
    token: Option<String>,
}

/// Where each channel of a stream stands, written into every `id:`.
struct Positions {
    order: Vec<String>,
    at: HashMap<String, (String, u64)>,
}

impl Positions {
    /// Parses a `Last-Event-ID` written by [`Positions::id`] for the same
    /// channels; anything else resumes nothing.
    fn parse(order: Vec<String>, last_event_id: Option<&str>) -> Self {
        let mut at = HashMap::new();
        if let Some(id) = last_event_id {
            let parts: Vec<&str> = id.split(',').collect();
            if parts.len() == order.len() {
                for (channel, part) in order.iter().zip(parts) {
                    if let Some((epoch, offset)) = part.split_once(':')
                        && let Ok(offset) = offset.parse()
                        && !epoch.is_empty()
                    {
                        at.insert(channel.clone(), (epoch.to_owned(), offset));
                    }
                }
            }
        }
        Self { order, at }
    }

    fn id(&self) -> String {
        self.order
            .iter()
            .map(|c| match self.at.get(c) {
                Some((epoch, offset)) => format!("{epoch}:{offset}"),
                None => ":".to_owned(),
            })
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// The fields of a publication frame this stream re-spells.
#[derive(Deserialize)]
struct PublicationView<'a> {
    channel: String,
    #[serde(borrow)]
    data: &'a RawValue,
    offset: u64,
    epoch: String,
}

pub async fn events(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    Query(query): Query<EventsQuery>,
    headers: HeaderMap,
) -> Response {
    let channels: Vec<String> = query
        .channels
        .split(',')
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(str::to_owned)
        .collect();
    if channels.is_empty() {
        return bad_request("name at least one channel: ?channels=a,b");
    }
    if channels.len() > shared.config.max_subscriptions {
        return Error::TooManySubscriptions(shared.config.max_subscriptions).into_response();
    }
    if let Some(why) = channels.iter().find_map(|c| check_name(c).err()) {
        return bad_request(why);
    }
    let grant = match admit_stream(&shared, addr, &headers, query.token).await {
        Ok(grant) => grant,
        Err(refusal) => return refusal,
    };
    if let Some(channel) = channels.iter().find(|c| !grant.access.can_subscribe(c)) {
        let error = Error::ChannelForbidden {
            channel: channel.clone(),
            publish: false,
        };
        return (StatusCode::FORBIDDEN, error.to_string()).into_response();
    }
    let last_event_id = headers.get("last-event-id").and_then(|v| v.to_str().ok());
    let mut positions = Positions::parse(channels.clone(), last_event_id);
    let mut connection = Connection::open(shared, grant, addr);
    for channel in channels {
        let since = positions.at.get(&channel).cloned();
        let frame = ClientFrame::SubscribeChannel(SubscribeChannel {
            channel,
            since_offset: since.as_ref().map(|(_, offset)| *offset),
            epoch: since.map(|(epoch, _)| epoch),
            id: None,
            timestamp: None,
        });
        connection.session().handle(frame).await;
    }
    let to_event = move |outgoing: Outgoing| match outgoing {
        Outgoing::Board(frame) => {
            let publication: PublicationView = serde_json::from_str(&frame.json).ok()?;
            let data = protocol::json::encode(&Seed001Event {
                channel: &publication.channel,
                message: publication.data,
            });
            positions
                .at
                .insert(publication.channel, (publication.epoch, publication.offset));
            Some(Event::default().id(positions.id()).data(data))
        }
        Outgoing::Direct("channel.reset", text) => {
            if let Ok(reset) = serde_json::from_str::<ChannelPosition>(&text) {
                positions
                    .at
                    .insert(reset.channel.clone(), (reset.epoch, reset.offset));
            }
            Some(Event::default().event("channel.reset").data(&*text))
        }
        // Not `error`: that name would reach EventSource's onerror.
        Outgoing::Direct("error", text) => {
            Some(Event::default().event("boardwire.error").data(&*text))
        }
        Outgoing::Direct(..) | Outgoing::Ping | Outgoing::Pong(_) | Outgoing::Close(_) => None,
    };
    axum::response::sse::Sse::new(stream(connection, to_event))
        .keep_alive(keep_alive())
        .into_response()
}
