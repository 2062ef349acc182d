//! `GET /ws/chat`: one socket following one session.
//!
//! The socket first gets `connected`, then the replay (frames after
//! `last_seq`, or the run in flight), then live frames. Its queue is bounded:
//! a socket that falls behind is closed with 1013 and resumes with `last_seq`.

use axum::{
    extract::{
        Query, State, WebSocketUpgrade,
        rejection::QueryRejection,
        ws::{CloseFrame, Message, Utf8Bytes, WebSocket, close_code},
    },
    response::Response,
};
use futures::{SinkExt, StreamExt, stream::SplitSink};
use protocol::chat_frames::{ClientFrame, ErrorData, RunStatus, ServerFrame, StatusData};
use serde::Deserialize;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{
    ApiError, AppState,
    api::{check_board_id, check_session_id, validate_content},
};
use crate::{run::StartError, session::Session};

/// The query of `/ws/chat`.
#[derive(Debug, Deserialize)]
pub struct ChatQuery {
    session_id: Option<String>,
    board_id: Option<String>,
    last_seq: Option<u64>,
}

/// Frames for this socket alone (pong, rejections) wait here.
const DIRECT_QUEUE: usize = 32;

pub async fn upgrade(
    ws: WebSocketUpgrade,
    State(state): State<AppState>,
    query: Result<Query<ChatQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|rejection| ApiError::BadRequest(rejection.body_text()))?;
    if let Some(id) = &query.session_id {
        check_session_id(id)?;
    }
    if let Some(board) = &query.board_id {
        check_board_id(board)?;
    }
    let session = state
        .sessions
        .open(query.session_id.as_deref(), query.board_id.as_deref())
        .await?;
    Ok(ws.on_upgrade(move |socket| serve(socket, state, session, query.last_seq)))
}

async fn serve(socket: WebSocket, state: AppState, session: Arc<Session>, last_seq: Option<u64>) {
    let conn = uuid::Uuid::now_v7();
    tracing::info!(session = %session.id(), %conn, ?last_seq, "chat socket open");
    let subscription = session.subscribe(last_seq, state.socket_queue);
    let connected = ServerFrame::Connected {
        seq: subscription.seq,
        session_id: session.id().to_owned(),
        board_id: session.board_id().to_owned(),
        run_id: subscription.active_run.map(|r| r.to_string()),
    };
    let (frames, replay, _unsubscribe) = subscription.into_parts();
    let (sink, stream) = socket.split();
    let (direct_tx, direct_rx) = mpsc::channel(DIRECT_QUEUE);
    let mut first = vec![encode(&connected)];
    first.extend(replay);
    let writer = write_loop(sink, first, frames, direct_rx, state.stop.clone());
    let reader = read_loop(stream, &state, &session, direct_tx);
    let reason = tokio::select! {
        reason = writer => reason,
        () = reader => "client closed",
    };
    tracing::info!(session = %session.id(), %conn, reason, "chat socket closed");
}

async fn write_loop(
    mut sink: SplitSink<WebSocket, Message>,
    first: Vec<Utf8Bytes>,
    mut frames: mpsc::Receiver<Utf8Bytes>,
    mut direct: mpsc::Receiver<Utf8Bytes>,
    stop: CancellationToken,
) -> &'static str {
    for text in first {
        if sink.send(Message::Text(text)).await.is_err() {
            return "send failed";
        }
    }
    loop {
        let (text, reason) = tokio::select! {
            biased;
            () = stop.cancelled() => {
                // Flush what is queued (the runs' cancelled frames) first.
                while let Ok(text) = frames.try_recv() {
                    if sink.send(Message::Text(text)).await.is_err() {
                        return "send failed";
                    }
                }
                (None, (close_code::AWAY, "server shutting down"))
            }
            Some(text) = direct.recv() => (Some(text), (0, "")),
            text = frames.recv() => match text {
                Some(text) => (Some(text), (0, "")),
                None => (None, (close_code::AGAIN, "too slow; reconnect with last_seq")),
            },
        };
        let Some(text) = text else {
            let (code, reason) = reason;
            let close = CloseFrame {
                code,
                reason: reason.into(),
            };
            let _ = sink.send(Message::Close(Some(close))).await;
            return reason;
        };
        if sink.send(Message::Text(text)).await.is_err() {
            return "send failed";
        }
    }
}

async fn read_loop(
    mut stream: futures::stream::SplitStream<WebSocket>,
    state: &AppState,
    session: &Arc<Session>,
    direct: mpsc::Sender<Utf8Bytes>,
) {
    while let Some(Ok(message)) = stream.next().await {
        let reply = match message {
            Message::Text(text) => handle(&text, state, session),
            Message::Binary(_) => Some(rejection(
                session,
                "invalid_frame",
                "frames must be JSON text",
            )),
            Message::Close(_) => return,
            Message::Ping(_) | Message::Pong(_) => None,
        };
        // A client that floods without reading loses replies, not memory.
        if let Some(reply) = reply {
            let _ = direct.try_send(encode(&reply));
        }
    }
}

/// Acts on one client frame; returns the reply for this socket alone.
fn handle(text: &str, state: &AppState, session: &Arc<Session>) -> Option<ServerFrame> {
    let frame: ClientFrame = match serde_json::from_str(text) {
        Ok(frame) => frame,
        Err(err) => {
            return Some(rejection(
                session,
                "invalid_frame",
                &format!("unreadable frame: {err}"),
            ));
        }
    };
    match frame {
        ClientFrame::Ping => Some(ServerFrame::Pong),
        ClientFrame::Message { data } => {
            let content = match validate_content(&data.content) {
                Ok(content) => content,
                Err(err) => return Some(rejection(session, "invalid_frame", &err.to_string())),
            };
            match state.runner.start(Arc::clone(session), content) {
                Ok(_) => None,
                Err(err @ StartError::Busy(_)) => {
                    Some(rejection(session, "run_in_progress", &err.to_string()))
                }
                Err(err @ StartError::ShuttingDown) => {
                    Some(rejection(session, "shutting_down", &err.to_string()))
                }
            }
        }
        ClientFrame::Cancel { .. } => {
            let wanted = frame.cancel_run_id().map(|id| id.parse().ok());
            // A run id that is not even a UUID matches no run.
            let cancelled = match wanted {
                Some(None) => None,
                Some(Some(id)) => session.cancel_run(Some(id)),
                None => session.cancel_run(None),
            };
            // The run itself publishes `status: cancelled` to every socket.
            cancelled.is_none().then(|| ServerFrame::Status {
                seq: session.seq(),
                run_id: None,
                data: StatusData {
                    status: RunStatus::Idle,
                    message: "No run to cancel".into(),
                    run_id: None,
                },
            })
        }
    }
}

/// An error for this socket only; it ends no run.
fn rejection(session: &Session, code: &str, message: &str) -> ServerFrame {
    ServerFrame::Error {
        seq: session.seq(),
        run_id: None,
        data: ErrorData {
            code: code.into(),
            message: message.into(),
        },
    }
}

fn encode(frame: &ServerFrame) -> Utf8Bytes {
    Utf8Bytes::from(serde_json::to_string(frame).expect("frames always serialise"))
}
