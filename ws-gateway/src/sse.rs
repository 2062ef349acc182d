//! `GET /events?boardId=…`: the same frames as Server-Sent Events, one board
//! per stream. `event:` is the frame type, `id:` the board version, and
//! `Last-Event-ID` (or `sinceVersion`) resumes.

use std::{convert::Infallible, net::SocketAddr, sync::Arc, time::Duration};

use axum::{
    extract::{ConnectInfo, Query, State},
    http::HeaderMap,
    response::{
        IntoResponse, Response,
        sse::{Event, KeepAlive, Sse},
    },
};
use futures::Stream;
use protocol::board_frames::ClientFrame;
use serde::Deserialize;

use crate::{
    client::{Client, Outgoing, Taken},
    error::CloseReason,
    session::Session,
    state::Shared,
    ws::{Admission, TokenQuery, admit, token},
};

const KEEP_ALIVE: Duration = Duration::from_secs(15);

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventsQuery {
    board_id: String,
    since_version: Option<u64>,
    token: Option<String>,
    /// With auth off, the name others see in presence.
    name: Option<String>,
}

/// Takes the client off the registry when the browser goes away.
pub(crate) struct Connection {
    session: Session,
    shared: Arc<Shared>,
    batch: Vec<Outgoing>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.session.leave();
        self.shared.clients.remove(self.session.client.id);
        self.shared.metrics.connections_active.dec();
        tracing::info!(client = self.session.client.id, "event stream closed");
    }
}

pub async fn events(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    Query(query): Query<EventsQuery>,
    headers: HeaderMap,
) -> Response {
    let grant = match admit_stream(&shared, addr, &headers, query.token.clone()).await {
        Ok(grant) => grant,
        Err(refusal) => return refusal,
    };
    let since = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok()?.parse().ok())
        .or(query.since_version);
    let mut connection = Connection::open(shared, grant, addr);
    connection.session.set_guest_name(query.name);
    connection
        .session
        .handle(ClientFrame::Subscribe {
            board_id: query.board_id,
            since_version: since,
            id: None,
        })
        .await;
    Sse::new(stream(connection, to_event))
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
        .into_response()
}

impl Connection {
    /// An SSE client with `grant`, in the registry until the stream drops.
    pub(crate) fn open(shared: Arc<Shared>, grant: crate::auth::Grant, addr: SocketAddr) -> Self {
        let client = Arc::new(Client::new(
            shared.clients.next_id(),
            shared.config.client_queue,
            shared.metrics.clone(),
            None,
        ));
        shared.clients.insert(client.clone());
        shared.metrics.connections_active.inc();
        shared.metrics.connections_total.inc();
        tracing::info!(client = client.id, %addr, "event stream opened");
        let session = Session::new(client, shared.clone(), Some(grant));
        Self {
            session,
            shared,
            batch: Vec::new(),
        }
    }

    pub(crate) fn session(&mut self) -> &mut Session {
        &mut self.session
    }
}

/// Admits an SSE request (origin, limits, the token that must come with
/// it, as SSE cannot send an auth frame); the refusal otherwise.
pub(crate) async fn admit_stream(
    shared: &Shared,
    addr: SocketAddr,
    headers: &HeaderMap,
    token_query: Option<String>,
) -> Result<crate::auth::Grant, Response> {
    let token_query = TokenQuery::from(token_query);
    match admit(shared, addr, headers, token(&token_query, headers)).await {
        Admission::Refuse(status, why) => Err((status, why).into_response()),
        Admission::Close(reason) => Err((reason.http_status(), reason.text()).into_response()),
        Admission::Accept(None) => {
            let reason = CloseReason::Unauthorized;
            Err((reason.http_status(), reason.text()).into_response())
        }
        Admission::Accept(Some(grant)) => Ok(grant),
    }
}

/// Keep-alive comments at this interval, for every SSE stream.
pub(crate) fn keep_alive() -> KeepAlive {
    KeepAlive::new().interval(KEEP_ALIVE)
}

/// The connection's outbox as SSE events, each entry mapped by `to_event`.
pub(crate) fn stream<F>(
    connection: Connection,
    to_event: F,
) -> impl Stream<Item = Result<Event, Infallible>>
where
    F: FnMut(Outgoing) -> Option<Event> + Send + 'static,
{
    futures::stream::unfold((connection, to_event), |(mut c, mut to_event)| async move {
        loop {
            if let Some(outgoing) = c.batch.pop() {
                let Some(event) = to_event(outgoing) else {
                    continue;
                };
                c.shared.metrics.frames_sent.inc();
                return Some((Ok(event), (c, to_event)));
            }
            let client = c.session.client.clone();
            match client.take(&mut c.batch, 64) {
                Taken::Close(_) => return None,
                Taken::Drained => c.session.resync(),
                Taken::More => {}
            }
            if c.batch.is_empty() {
                client.woken().await;
            } else {
                // `pop` takes from the back.
                c.batch.reverse();
            }
        }
    })
}

fn to_event(outgoing: Outgoing) -> Option<Event> {
    match outgoing {
        Outgoing::Board(frame) => Some(
            Event::default()
                .event(frame.kind)
                .id(frame.version.to_string())
                .data(&*frame.json),
        ),
        Outgoing::Direct(kind, text) => Some(Event::default().event(kind).data(&*text)),
        Outgoing::Ping | Outgoing::Pong(_) | Outgoing::Close(_) => None,
    }
}
