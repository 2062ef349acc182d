//! Seed 000's client events, each turned into the session's frame (so the
//! same checks, grants and board-service calls apply) and answered through
//! its acknowledgement callback by the pump.

use std::sync::Arc;

use protocol::{
    board_frames::{ClientFrame, ErrorCode},
    socketio::{AckPayload, JoinPayload, PayloadError, TaskPayload, incoming},
    v1::GetBoardRequest,
};
use serde_json::Value;
use socketioxide::extract::{AckSender, SocketRef, TryData};

use super::{
    conn::{Conn, Waiting},
    projects,
};
use crate::state::Shared;

type Payload = TryData<Value>;

/// What a write event asks for, as a command frame.
type ToFrame = fn(&TaskPayload, String) -> Result<ClientFrame, PayloadError>;

pub(super) fn register(socket: &SocketRef, shared: &Arc<Shared>, conn: &Arc<Conn>) {
    let writes: [(&'static str, ToFrame); 4] = [
        (incoming::TASK_CREATE, |p, id| {
            p.to_create(id).map(ClientFrame::TaskCreate)
        }),
        (incoming::TASK_UPDATE, |p, id| {
            p.to_edit(id).map(ClientFrame::TaskUpdate)
        }),
        (incoming::EPIC_UPDATE, |p, id| {
            p.to_edit(id).map(ClientFrame::TaskUpdate)
        }),
        (incoming::TASK_DELETE, |p, id| {
            p.to_delete(id).map(ClientFrame::TaskDelete)
        }),
    ];
    for (event, to_frame) in writes {
        let (conn, shared) = (conn.clone(), shared.clone());
        socket.on(
            event,
            async move |socket: SocketRef, TryData(data): Payload, ack: AckSender| {
                if let Some(ack) = admit(&socket, &conn, ack) {
                    write(&shared, &conn, data, ack, to_frame).await;
                }
            },
        );
    }
    for leave in [false, true] {
        let (conn, shared) = (conn.clone(), shared.clone());
        let event = if leave {
            incoming::LEAVE_PROJECT
        } else {
            incoming::JOIN_PROJECT
        };
        socket.on(
            event,
            async move |socket: SocketRef, TryData(data): Payload, ack: AckSender| {
                if let Some(ack) = admit(&socket, &conn, ack) {
                    join(&shared, &conn, data, ack, leave).await;
                }
            },
        );
    }
    let conn = conn.clone();
    socket.on_disconnect(async move || {
        // The pump sees the close, leaves the boards and unregisters.
        conn.client.close(crate::error::CloseReason::Shutdown);
    });
}

/// The per-connection message rate, as on `/ws`: over it an event is
/// refused; far over it the socket is disconnected.
fn admit(socket: &SocketRef, conn: &Conn, ack: AckSender) -> Option<AckSender> {
    conn.client.touch();
    let verdict = conn.rate.lock().unwrap_or_else(|e| e.into_inner()).take();
    let rate = conn.rate.lock().unwrap_or_else(|e| e.into_inner()).rate;
    match verdict {
        Ok(()) => Some(ack),
        Err(close) => {
            let message = format!("more than {rate} events per second; event ignored");
            let _ = ack.send(&AckPayload::refused(ErrorCode::RateLimited, message));
            if close {
                conn.client.close(crate::error::CloseReason::MessageRate);
                let _ = socket.clone().disconnect();
            }
            None
        }
    }
}

fn request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

async fn write(
    shared: &Shared,
    conn: &Conn,
    data: Result<Value, impl std::fmt::Display>,
    ack: AckSender,
    to_frame: ToFrame,
) {
    let payload = data
        .map_err(|e| PayloadError(format!("the payload must be a JSON object: {e}")))
        .and_then(TaskPayload::parse);
    let mut payload = match payload {
        Ok(payload) => payload,
        Err(PayloadError(message)) => {
            let _ = ack.send(&AckPayload::refused(ErrorCode::InvalidFrame, message));
            return;
        }
    };
    if let Err(refusal) = projects::route(shared, conn, &mut payload).await {
        let _ = ack.send(&refusal);
        return;
    }
    let frame = to_frame(&payload, request_id())
        .and_then(|frame| frame.check().map(|()| frame).map_err(PayloadError));
    let frame = match frame {
        Ok(frame) => frame,
        Err(PayloadError(message)) => {
            let _ = ack.send(&AckPayload::refused(ErrorCode::InvalidFrame, message));
            return;
        }
    };
    let Some(id) = command_id(&frame) else {
        return;
    };
    conn.wait_for(
        &id,
        Waiting {
            ack: Some(ack),
            ..Waiting::default()
        },
    );
    conn.session.lock().await.handle(frame).await;
}

fn command_id(frame: &ClientFrame) -> Option<String> {
    match frame {
        ClientFrame::TaskCreate(c) => Some(c.id.clone()),
        ClientFrame::TaskUpdate(c) => Some(c.id.clone()),
        ClientFrame::TaskMove(c) => Some(c.id.clone()),
        ClientFrame::TaskDelete(c) => Some(c.id.clone()),
        _ => None,
    }
}

/// `join:project` subscribes the socket to the project's boards, or to
/// the board when the room names no project (a board's id or slug),
/// resuming from the version the join or the connect's `auth` names;
/// `leave:project` unsubscribes.
async fn join(
    shared: &Shared,
    conn: &Conn,
    data: Result<Value, impl std::fmt::Display>,
    ack: AckSender,
    leave: bool,
) {
    let payload = data
        .map_err(|e| e.to_string())
        .and_then(|v| serde_json::from_value::<JoinPayload>(v).map_err(|e| e.to_string()));
    let payload = match payload {
        Ok(payload) => payload,
        Err(why) => {
            let message = format!(
                "expected a project (or board) id or slug, or {{projectId, sinceVersion?, \
                 versions?}}: {why}"
            );
            let _ = ack.send(&AckPayload::refused(ErrorCode::InvalidFrame, message));
            return;
        }
    };
    let room = payload.room().to_owned();
    if leave && let Some(left) = projects::leave(conn, &room).await {
        let _ = ack.send(&left);
        return;
    }
    if !leave {
        match projects::find(shared, conn, &room).await {
            Ok(Some(view)) => return projects::join(conn, &room, view, &payload, ack).await,
            Ok(None) => {}
            Err(refusal) => {
                let _ = ack.send(&refusal);
                return;
            }
        }
    }
    let id = request_id();
    let frame = if leave {
        ClientFrame::Unsubscribe {
            board_id: room.clone(),
            id: Some(id.clone()),
        }
    } else {
        let since = match payload.since_version() {
            Some(since) => Some(since),
            None => resume_version(shared, conn, &room).await,
        };
        ClientFrame::Subscribe {
            board_id: room.clone(),
            since_version: since,
            id: Some(id.clone()),
        }
    };
    let waiting = Waiting {
        ack: Some(ack),
        room: (!leave).then_some(room),
        ..Waiting::default()
    };
    conn.wait_for(&id, waiting);
    conn.session.lock().await.handle(frame).await;
}

/// The version `auth.versions` gives for a room: under the name joined, or
/// under the board's id.
async fn resume_version(shared: &Shared, conn: &Conn, room: &str) -> Option<u64> {
    if conn.resume.is_empty() {
        return None;
    }
    if let Some(version) = conn.resume.get(room) {
        return Some(*version);
    }
    let board_id = match shared.hub.find(room) {
        Some(feed) => feed.board_id.to_string(),
        None => {
            let mut api = shared.hub.upstream().client();
            let request = GetBoardRequest {
                board_id: room.to_owned(),
            };
            api.get_board(request).await.ok()?.into_inner().board?.id
        }
    };
    conn.resume.get(&board_id).copied()
}
