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
struct Connection {
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
    let token_query = TokenQuery::from(query.token.clone());
    let grant = match admit(&shared, addr, &headers, token(&token_query, &headers)).await {
        Admission::Refuse(status, why) => return (status, why).into_response(),
        Admission::Close(reason) => return (reason.http_status(), reason.text()).into_response(),
        // SSE cannot send an auth frame: the token must come with the request.
        Admission::Accept(None) => {
            let reason = CloseReason::Unauthorized;
            return (reason.http_status(), reason.text()).into_response();
        }
        Admission::Accept(Some(grant)) => grant,
    };
    let since = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok()?.parse().ok())
        .or(query.since_version);
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
    let mut session = Session::new(client, shared.clone(), Some(grant));
    session.set_guest_name(query.name);
    session
        .handle(ClientFrame::Subscribe {
            board_id: query.board_id,
            since_version: since,
            id: None,
        })
        .await;
    let connection = Connection {
        session,
        shared,
        batch: Vec::new(),
    };
    Sse::new(stream(connection))
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
        .into_response()
}

fn stream(connection: Connection) -> impl Stream<Item = Result<Event, Infallible>> {
    futures::stream::unfold(connection, |mut c| async move {
        loop {
            if let Some(outgoing) = c.batch.pop() {
                let Some(event) = to_event(outgoing) else {
                    continue;
                };
                c.shared.metrics.frames_sent.inc();
                return Some((Ok(event), c));
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
