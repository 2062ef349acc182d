//! Moves a socket's outbox to Socket.IO: board frames become seed 000's
//! events (in order, each with its `boardVersion`), `ack` / `error` frames
//! answer the callbacks waiting for them.

use std::{sync::Arc, time::Duration};

use protocol::{
    board_frames::{AckResult, ServerFrame},
    socketio::{AckPayload, Epics, events_from_frame, outgoing},
};
use serde::Serialize;
use socketioxide::extract::SocketRef;

use super::{conn::Conn, projects};
use crate::{
    client::{Outgoing, Taken},
    state::Shared,
};

/// How long an emit waits for room in a full socket buffer between tries.
const RETRY: Duration = Duration::from_millis(10);

pub(super) async fn run(shared: Arc<Shared>, socket: SocketRef, conn: Arc<Conn>) {
    let client = conn.client.clone();
    let mut batch = Vec::new();
    let mut epics = Epics::default();
    let reason = 'serve: loop {
        match client.take(&mut batch, 64) {
            Taken::Close(reason) => break reason,
            Taken::Drained => conn.session.lock().await.resync(),
            Taken::More => {}
        }
        if batch.is_empty() {
            client.woken().await;
            continue;
        }
        for outgoing in batch.drain(..) {
            if !deliver(&shared, &socket, &conn, &mut epics, outgoing).await {
                break 'serve crate::error::CloseReason::SlowConsumer;
            }
        }
    };
    if socket.connected() {
        notify(&socket, "closing", reason.text());
        let _ = socket.clone().disconnect();
    }
    conn.session.lock().await.leave();
    client.detach_socket();
    shared.clients.remove(client.id);
    shared.metrics.connections_active.dec();
    tracing::info!(client = client.id, sid = %socket.id, ?reason, "socket.io closed");
}

/// Sends one outbox entry; `false` when the socket stopped taking events.
async fn deliver(
    shared: &Arc<Shared>,
    socket: &SocketRef,
    conn: &Arc<Conn>,
    epics: &mut Epics,
    outgoing: Outgoing,
) -> bool {
    match outgoing {
        Outgoing::Board(frame) => {
            let Ok(parsed) = serde_json::from_str::<ServerFrame>(&frame.json) else {
                tracing::error!(kind = frame.kind, "a board frame did not decode");
                return true;
            };
            let room = conn.room_of(&frame.board_id);
            for event in events_from_frame(&parsed, &room, epics) {
                if !emit(shared, socket, event.name, &event.payload).await {
                    return false;
                }
                shared.metrics.frames_sent.inc();
            }
            // A board joined or left a project this socket joined.
            if let ServerFrame::ProjectUpdated(change) = &parsed {
                for room in conn.rooms_of_project(&change.data.id) {
                    tokio::spawn(projects::refresh(shared.clone(), conn.clone(), room));
                }
            }
            true
        }
        Outgoing::Direct(_, text) => {
            if let Ok(frame) = serde_json::from_str::<ServerFrame>(&text) {
                answer(socket, conn, &frame);
            }
            true
        }
        Outgoing::Ping | Outgoing::Pong(_) | Outgoing::Close(_) => true,
    }
}

/// Answers the callback an `ack` or `error` frame is for; a refusal is
/// also sent as a `notification`, so a client without callbacks hears it.
fn answer(socket: &SocketRef, conn: &Conn, frame: &ServerFrame) {
    let Some(payload) = AckPayload::from_frame(frame) else {
        return;
    };
    let id = match frame {
        ServerFrame::Ack(ack) => Some(ack.id.as_str()),
        ServerFrame::Error(error) => error.id.as_deref(),
        _ => None,
    };
    let waiting = id.and_then(|id| conn.answered(id));
    let mut joined = None;
    if let (ServerFrame::Ack(ack), Some(waiting)) = (frame, &waiting)
        && let (Some(AckResult::Subscribed { board_id, .. }), Some(room)) =
            (&ack.result, &waiting.room)
    {
        conn.join(board_id, room);
        joined = Some(board_id.clone());
    }
    let quiet = waiting.as_ref().is_some_and(|w| w.quiet);
    if let Some(error) = &payload.error
        && !quiet
    {
        notify(
            socket,
            "error",
            &format!("{:?}: {}", error.code, error.message),
        );
    }
    let Some(waiting) = waiting else {
        return;
    };
    if let Some(group) = &waiting.group {
        group.answered(joined.ok_or_else(|| payload.clone()));
    } else if let Some(ack) = waiting.ack {
        let _ = ack.send(&payload);
    }
}

#[derive(Serialize)]
struct Notification<'a> {
    level: &'a str,
    message: &'a str,
}

fn notify(socket: &SocketRef, level: &str, message: &str) {
    let _ = socket.emit(outgoing::NOTIFICATION, &Notification { level, message });
}

/// Emits, waiting while the socket's buffer is full, at most the stuck
/// timeout: a client that takes nothing that long is disconnected, and
/// resumes from its last `boardVersion` when it comes back.
async fn emit(
    shared: &Shared,
    socket: &SocketRef,
    name: &str,
    payload: &serde_json::Value,
) -> bool {
    use socketioxide::{SendError, SocketError};
    let deadline = tokio::time::Instant::now() + shared.config.stuck_timeout();
    loop {
        match socket.emit(name, payload) {
            Ok(()) => return true,
            Err(SendError::Socket(SocketError::InternalChannelFull))
                if tokio::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(RETRY).await;
            }
            Err(_) => return false,
        }
    }
}
