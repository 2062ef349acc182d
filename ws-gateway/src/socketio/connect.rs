//! Admission of a Socket.IO connection, as for `/ws` and `/events`: origin,
//! connection limits, the per-IP connect rate and the token, read from the
//! `auth` payload (`{token}`) or, as elsewhere, `Authorization` / `?token=`.
//! A refusal is a `connect_error` whose message says why.

use std::{net::SocketAddr, sync::Arc};

use axum::extract::ConnectInfo;
use protocol::socketio::ConnectAuth;
use socketioxide::extract::{SocketRef, TryData};

use crate::{
    auth::Grant,
    client::Client,
    session::Session,
    socket::RateLimit,
    state::Shared,
    ws::{Admission, TokenQuery, admit as admit_connection},
};

use super::{conn::Conn, events, pump};

/// Why a connect is refused, as the client's `connect_error` message.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(super) struct Refused(String);

/// The grant admission found, kept until the connect handler runs.
#[derive(Clone)]
struct Admitted(Grant);

type Auth = TryData<ConnectAuth>;

pub(super) async fn admit(
    shared: Arc<Shared>,
    socket: SocketRef,
    TryData(auth): Auth,
) -> Result<(), Refused> {
    let auth = auth.map_err(|e| {
        Refused(format!(
            "auth must be {{token?, versions?: {{boardId: n}}}}: {e}"
        ))
    })?;
    let parts = socket.req_parts();
    let addr = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(SocketAddr::from(([0, 0, 0, 0], 0)), |c| c.0);
    let query = TokenQuery::from(query_token(parts.uri.query()));
    let token = auth
        .token
        .as_deref()
        .or_else(|| crate::ws::token(&query, &parts.headers));
    // The limits first, with no token; then the token, for its own message.
    let grant = match admit_connection(&shared, addr, &parts.headers, None).await {
        Admission::Refuse(_, why) => return Err(Refused(why.into())),
        Admission::Close(reason) => return Err(Refused(reason.text().into())),
        Admission::Accept(Some(grant)) => grant,
        Admission::Accept(None) => {
            let refuse = |message: String| {
                shared.metrics.connections_rejected.inc();
                Refused(message)
            };
            let Some(token) = token else {
                return Err(refuse(
                    "a valid token is required: connect with auth: {token}".into(),
                ));
            };
            crate::auth::verify(&shared, token)
                .await
                .map_err(|(_, message)| refuse(format!("unauthorized: {message}")))?
        }
    };
    socket.extensions.insert(Admitted(grant));
    Ok(())
}

fn query_token(query: Option<&str>) -> Option<String> {
    query?
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, _)| *key == "token")
        .map(|(_, value)| value.to_owned())
}

/// A connected socket: registers its client, starts its pump and its events.
pub(super) async fn connected(shared: Arc<Shared>, socket: SocketRef, TryData(auth): Auth) {
    let Some(Admitted(grant)) = socket.extensions.remove::<Admitted>() else {
        // Admission always runs first; refuse rather than run unchecked.
        let _ = socket.disconnect();
        return;
    };
    let resume = auth.map(|a| a.versions).unwrap_or_default();
    let client = Arc::new(Client::new(
        shared.clients.next_id(),
        shared.config.client_queue,
        shared.metrics.clone(),
        None,
    ));
    shared.clients.insert(client.clone());
    shared.metrics.connections_active.inc();
    shared.metrics.connections_total.inc();
    tracing::info!(client = client.id, sid = %socket.id, "socket.io connected");
    let token = grant.token.as_deref().map(Arc::from);
    let session = Session::new(client, shared.clone(), Some(grant));
    let rate = RateLimit::new(shared.config.max_messages_per_sec);
    let conn = Arc::new(Conn::new(session, resume, rate, token));
    events::register(&socket, &shared, &conn);
    tokio::spawn(pump::run(shared, socket, conn));
}
