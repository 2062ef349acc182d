//! `GET /ws/chat`: one socket following one session.
//!
//! The socket first gets `connected`, then the replay (frames after
//! `last_seq`, or the run in flight), then live frames. Its queue is bounded:
//! a socket that falls behind is closed with 1013 and resumes with `last_seq`.
//! With auth on, a socket without a valid token closes with 4001 (4002 when
//! the token expired, also when it expires while open), and one for another
//! user's session or an unreadable board with 4003.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use axum::{
    extract::{
        ConnectInfo, Query, State, WebSocketUpgrade,
        rejection::QueryRejection,
        ws::{CloseFrame, Message, Utf8Bytes, WebSocket, close_code},
    },
    http::HeaderMap,
    response::{IntoResponse, Response},
};
use futures::{SinkExt, StreamExt, stream::SplitSink};
use protocol::chat_frames::{
    ApprovalData, ClientFrame, ErrorData, MessageData, RunStatus, ServerFrame, StatusData,
};
use serde::Deserialize;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{
    ApiError, AppState, Caller,
    api::open_for,
    limits::{RateLimit, Slot},
    validate,
};
use crate::{
    run::{StartError, Started, UserMessage},
    session::{Decision, Session},
};

/// The query of `/ws/chat`.
#[derive(Debug, Deserialize)]
pub struct ChatQuery {
    session_id: Option<String>,
    board_id: Option<String>,
    last_seq: Option<u64>,
    /// For browsers, which cannot set `Authorization` on a WebSocket.
    token: Option<String>,
}

/// Frames for this socket alone (pong, rejections) wait here.
const DIRECT_QUEUE: usize = 32;

/// What the writer sends besides the session's frames.
enum Direct {
    Frame(Utf8Bytes),
    Close(u16, String),
}

pub async fn upgrade(
    ws: WebSocketUpgrade,
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    query: Result<Query<ChatQuery>, QueryRejection>,
) -> Response {
    let slot = match state.admission.admit(peer.ip()) {
        Ok(slot) => slot,
        Err(err) => return err.into_response(),
    };
    let Query(query) = match query {
        Ok(query) => query,
        Err(rejection) => return ApiError::BadRequest(rejection.body_text()).into_response(),
    };
    if let Err(err) = check_query(&query) {
        return err.into_response();
    }
    // tungstenite refuses frames past twice the cap; between the cap and
    // that, the reader closes with 1009 itself, with a clear reason.
    let cap = state.admission.limits().max_frame_bytes;
    let ws = ws.max_message_size(cap * 2).max_frame_size(cap * 2);
    let opened = async {
        let caller = state.gate.caller(&headers, query.token.as_deref()).await?;
        let session = open_for(
            &state,
            &caller,
            query.session_id.as_deref(),
            query.board_id.as_deref(),
        )
        .await?;
        Ok::<_, ApiError>((caller, session))
    };
    match opened.await {
        Ok((caller, session)) => {
            ws.on_upgrade(move |socket| serve(socket, state, session, caller, query.last_seq, slot))
        }
        // Browsers cannot read an HTTP status on a failed upgrade, so
        // refusals of who is asking are close codes.
        Err(err) => ws.on_upgrade(move |socket| refuse(socket, err, slot)),
    }
}

fn check_query(query: &ChatQuery) -> Result<(), ApiError> {
    if let Some(id) = &query.session_id {
        validate::session_id(id)?;
    }
    if let Some(board) = &query.board_id {
        validate::board_id(board)?;
    }
    Ok(())
}

async fn refuse(mut socket: WebSocket, err: ApiError, _slot: Slot) {
    let code = err.close_code();
    let reason = match &err {
        ApiError::Database(_) | ApiError::Internal => "internal error".to_owned(),
        other => other.to_string(),
    };
    tracing::info!(code, %reason, "chat socket refused");
    let _ = socket
        .send(Message::Close(Some(CloseFrame {
            code,
            reason: close_reason(&reason),
        })))
        .await;
}

/// A close reason fits in 123 bytes; cut on a character boundary.
fn close_reason(reason: &str) -> Utf8Bytes {
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    Utf8Bytes::from(&reason[..end])
}

async fn serve(
    socket: WebSocket,
    state: AppState,
    session: Arc<Session>,
    caller: Caller,
    last_seq: Option<u64>,
    _slot: Slot,
) {
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
    let limits = *state.admission.limits();
    let writer = write_loop(
        sink,
        first,
        frames,
        direct_rx,
        state.stop.clone(),
        limits.heartbeat,
    );
    tokio::pin!(writer);
    let reader = read_loop(stream, &state, &session, &caller, direct_tx.clone());
    let expiry = expires_in(&caller);
    let closing = tokio::select! {
        reason = &mut writer => {
            tracing::info!(session = %session.id(), %conn, reason, "chat socket closed");
            return;
        }
        closing = reader => closing,
        () = sleep_or_forever(expiry) => Some((4002, "the token has expired".to_owned())),
    };
    let reason = match closing {
        None => "client closed".to_owned(),
        Some((code, reason)) => {
            let _ = direct_tx.send(Direct::Close(code, reason.clone())).await;
            let _ = tokio::time::timeout(Duration::from_secs(5), writer).await;
            reason
        }
    };
    tracing::info!(session = %session.id(), %conn, %reason, "chat socket closed");
}

/// Time until the caller's token expires; `None` for never.
fn expires_in(caller: &Caller) -> Option<Duration> {
    let expires = caller.access.expires_ms;
    if expires == 0 {
        return None;
    }
    let now = protocol::time::now_ms();
    Some(Duration::from_millis(expires.saturating_sub(now)))
}

async fn sleep_or_forever(after: Option<Duration>) {
    match after {
        Some(after) => tokio::time::sleep(after).await,
        None => std::future::pending().await,
    }
}

async fn write_loop(
    mut sink: SplitSink<WebSocket, Message>,
    first: Vec<Utf8Bytes>,
    mut frames: mpsc::Receiver<Utf8Bytes>,
    mut direct: mpsc::Receiver<Direct>,
    stop: CancellationToken,
    heartbeat: Duration,
) -> &'static str {
    for text in first {
        if sink.send(Message::Text(text)).await.is_err() {
            return "send failed";
        }
    }
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + heartbeat, heartbeat);
    loop {
        let message = tokio::select! {
            biased;
            () = stop.cancelled() => {
                // Flush what is queued (the runs' cancelled frames) first.
                while let Ok(text) = frames.try_recv() {
                    if sink.send(Message::Text(text)).await.is_err() {
                        return "send failed";
                    }
                }
                let _ = sink.send(close(close_code::AWAY, "server shutting down")).await;
                return "server shutting down";
            }
            direct = direct.recv() => match direct {
                Some(Direct::Frame(text)) => Message::Text(text),
                Some(Direct::Close(code, reason)) => {
                    let _ = sink.send(close(code, &reason)).await;
                    return "closed by the server";
                }
                None => continue,
            },
            text = frames.recv() => match text {
                Some(text) => Message::Text(text),
                None => {
                    let _ = sink.send(close(close_code::AGAIN, "too slow; reconnect with last_seq")).await;
                    return "too slow";
                }
            },
            _ = ping.tick() => Message::Ping(Default::default()),
        };
        if sink.send(message).await.is_err() {
            return "send failed";
        }
    }
}

fn close(code: u16, reason: &str) -> Message {
    Message::Close(Some(CloseFrame {
        code,
        reason: close_reason(reason),
    }))
}

/// Reads until the client closes (`None`) or the server must close the
/// socket: the code and reason to close with.
async fn read_loop(
    mut stream: futures::stream::SplitStream<WebSocket>,
    state: &AppState,
    session: &Arc<Session>,
    caller: &Caller,
    direct: mpsc::Sender<Direct>,
) -> Option<(u16, String)> {
    let limits = *state.admission.limits();
    let mut rate = RateLimit::new(limits.max_messages_per_sec);
    loop {
        let message = match tokio::time::timeout(limits.client_timeout, stream.next()).await {
            Err(_) => return Some((4008, "no frames or pongs in time".into())),
            Ok(None) => return None,
            Ok(Some(Err(err))) => return Some(read_error(&err.to_string())),
            Ok(Some(Ok(message))) => message,
        };
        let reply = match message {
            Message::Text(text) if text.len() > limits.max_frame_bytes => {
                return Some((
                    close_code::SIZE,
                    format!("frame larger than {} bytes", limits.max_frame_bytes),
                ));
            }
            Message::Text(_) | Message::Binary(_) if !rate.allow() => vec![rejection(
                session,
                "rate_limited",
                &format!(
                    "more than {} frames per second; this one was dropped",
                    limits.max_messages_per_sec
                ),
            )],
            Message::Text(text) => handle(&text, state, session, caller).await,
            Message::Binary(_) => vec![rejection(
                session,
                "invalid_frame",
                "frames must be JSON text",
            )],
            Message::Close(_) => return None,
            Message::Ping(_) | Message::Pong(_) => Vec::new(),
        };
        // A client that floods without reading loses replies, not memory.
        for reply in reply {
            let _ = direct.try_send(Direct::Frame(encode(&reply)));
        }
    }
}

/// The close for a frame the WebSocket layer refused.
fn read_error(err: &str) -> (u16, String) {
    if err.contains("too long") || err.contains("limit") || err.contains("too big") {
        (close_code::SIZE, "frame too large".into())
    } else {
        (close_code::PROTOCOL, "WebSocket protocol error".into())
    }
}

/// Decodes a client frame; the error names the field that is wrong.
pub fn decode(text: &str) -> Result<ClientFrame, String> {
    serde_json::from_str(text).map_err(|err| {
        let field = serde_json::from_str::<serde_json::Value>(text)
            .ok()
            .and_then(|value| failing_field(&value));
        match field {
            Some((path, reason)) => format!("{path}: {reason}"),
            None => format!("unreadable frame: {err}"),
        }
    })
}

/// A tagged enum loses the path of what failed; find it per frame type.
fn failing_field(value: &serde_json::Value) -> Option<(String, String)> {
    use protocol::chat_frames::{CancelData, MessageData};
    fn path_of<T: serde::de::DeserializeOwned>(
        value: &serde_json::Value,
        prefix: &str,
    ) -> Option<(String, String)> {
        let err = serde_path_to_error::deserialize::<_, T>(value.clone()).err()?;
        let path = err.path().to_string();
        let path = if path == "." {
            prefix.to_owned()
        } else {
            format!("{prefix}.{path}")
        };
        Some((path, err.into_inner().to_string()))
    }
    match value.get("type")?.as_str()? {
        "message" => match value.get("data") {
            None => Some(("data".into(), "missing field".into())),
            Some(data) => path_of::<MessageData>(data, "data"),
        },
        "approval" => match value.get("data") {
            None => Some(("data".into(), "missing field".into())),
            Some(data) => path_of::<ApprovalData>(data, "data"),
        },
        "cancel" => match (value.get("runId"), value.get("data")) {
            (Some(id), _) if !id.is_string() && !id.is_null() => {
                Some(("runId".into(), "must be a string".into()))
            }
            (_, Some(data)) if !data.is_null() => path_of::<CancelData>(data, "data"),
            _ => None,
        },
        _ => None,
    }
}

/// Acts on one client frame; returns the reply for this socket alone.
async fn handle(
    text: &str,
    state: &AppState,
    session: &Arc<Session>,
    caller: &Caller,
) -> Vec<ServerFrame> {
    let frame = match decode(text) {
        Ok(frame) => frame,
        Err(err) => return vec![rejection(session, "invalid_frame", &err)],
    };
    match frame {
        ClientFrame::Ping => vec![ServerFrame::Pong],
        ClientFrame::Message { data } => send_message(data, state, session, caller).await,
        ClientFrame::Cancel { .. } => cancel(&frame, session).await.into_iter().collect(),
        ClientFrame::Approval { data } => {
            approval(&data, session, caller).await.into_iter().collect()
        }
    }
}

/// `approval`: answers a tool call that waits for one. The run publishes the
/// call's next frame, with the answer, to every tab; only a stale or unknown
/// call gets a reply here. A run on another bridge is asked over NATS.
async fn approval(data: &ApprovalData, session: &Session, caller: &Caller) -> Option<ServerFrame> {
    if let Err(err) = validate::approval(&data.tool_call_id, data.reason.as_deref()) {
        return Some(rejection(session, "invalid_frame", &err.to_string()));
    }
    let decision = Decision {
        approved: data.approved,
        by: caller
            .access
            .subject
            .clone()
            .unwrap_or_else(|| "anonymous".into()),
        reason: data.reason.clone().filter(|r| !r.trim().is_empty()),
    };
    let answered = session
        .answer_approval_anywhere(&data.tool_call_id, decision)
        .await;
    (!answered).then(|| {
        rejection(
            session,
            "unknown_approval",
            &format!(
                "no tool call {} is waiting for approval (answered already, timed out, or never asked)",
                data.tool_call_id
            ),
        )
    })
}

/// A user message: a new run, or what a resend of an earlier one gets.
async fn send_message(
    data: MessageData,
    state: &AppState,
    session: &Arc<Session>,
    caller: &Caller,
) -> Vec<ServerFrame> {
    let checked = validate::content(&data.content).and_then(|content| {
        if let Some(id) = &data.message_id {
            validate::message_id(id)?;
        }
        if let Some(id) = &data.session_id {
            validate::session_id(id)?;
        }
        Ok(content)
    });
    let content = match checked {
        Ok(content) => content,
        Err(err) => return vec![rejection(session, "invalid_frame", &err.to_string())],
    };
    let message = UserMessage {
        content,
        token: caller.token.clone(),
        message_id: data.message_id.clone(),
        frontend_tools: Vec::new(),
    };
    // Frames for this socket alone carry the seq it has seen
    // (`session.seq()`) and no top-level `runId`.
    let told = |status, message: &str, run: uuid::Uuid| ServerFrame::Status {
        seq: session.seq(),
        run_id: None,
        data: StatusData {
            status,
            message: message.into(),
            run_id: Some(run.to_string()),
        },
    };
    match state.runner.start(Arc::clone(session), message).await {
        Ok(Started::New { .. }) => Vec::new(),
        // A resend: this socket follows the session, so it sees the
        // run's frames; it is told which run answers it.
        Ok(Started::InFlight(run)) => vec![told(
            RunStatus::Processing,
            "This message is already being answered",
            run,
        )],
        // Which run answered it, then that answer again under its
        // own seq: a tab that saw it drops it, one that missed it
        // shows it.
        Ok(Started::Answered(result, seq)) => vec![
            told(
                RunStatus::Idle,
                "This message was answered already",
                result.run_id,
            ),
            result.terminal_frame(seq.unwrap_or_else(|| session.seq())),
        ],
        Err(err @ StartError::Database(_)) => {
            tracing::error!(error = %err, "cannot start a run");
            vec![rejection(session, "internal", "internal error")]
        }
        Err(err @ StartError::Busy(_)) => {
            vec![rejection(session, "run_in_progress", &err.to_string())]
        }
        Err(err @ StartError::ShuttingDown) => {
            vec![rejection(session, "shutting_down", &err.to_string())]
        }
    }
}

/// `cancel`: the reply for this socket, if any. A run on another bridge is
/// asked over NATS.
async fn cancel(frame: &ClientFrame, session: &Session) -> Option<ServerFrame> {
    let wanted = match frame.cancel_run_id().map(validate::run_id) {
        None => None,
        Some(Ok(id)) => Some(id),
        Some(Err(err)) => {
            return Some(rejection(session, "invalid_frame", &err.to_string()));
        }
    };
    // The run itself publishes `status: cancelled` to every socket.
    (!session.cancel_run_anywhere(wanted).await).then(|| ServerFrame::Status {
        seq: session.seq(),
        run_id: None,
        data: StatusData {
            status: RunStatus::Idle,
            message: "No run to cancel".into(),
            run_id: None,
        },
    })
}

/// An error for this socket only; it ends no run.
fn rejection(session: &Session, code: &str, message: &str) -> ServerFrame {
    ServerFrame::Error {
        seq: session.seq(),
        run_id: None,
        data: ErrorData::new(code, message),
    }
}

fn encode(frame: &ServerFrame) -> Utf8Bytes {
    Utf8Bytes::from(protocol::json::encode(frame))
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #[test]
        fn decoding_any_json_never_panics(value in json_value()) {
            let _ = decode(&value.to_string());
        }

        #[test]
        fn decoding_any_text_never_panics(text in "\\PC*") {
            let _ = decode(&text);
        }

        #[test]
        fn decoding_messages_with_any_fields_never_panics(
            content in json_value(), id in json_value(), extra in json_value(),
        ) {
            let frame = serde_json::json!({"type": "message", "data": {"content": content, "message_id": id, "session_id": extra}});
            let _ = decode(&frame.to_string());
            let cancel = serde_json::json!({"type": "cancel", "runId": id, "data": extra});
            let _ = decode(&cancel.to_string());
        }
    }

    fn json_value() -> impl proptest::strategy::Strategy<Value = serde_json::Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            any::<f64>().prop_map(|f| serde_json::json!(f)),
            "\\PC*".prop_map(serde_json::Value::from),
            Just(serde_json::json!("message")),
            Just(serde_json::json!("cancel")),
        ];
        leaf.prop_recursive(4, 64, 8, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..8).prop_map(serde_json::Value::Array),
                proptest::collection::hash_map("(type|data|content|runId|\\PC{0,8})", inner, 0..8)
                    .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        })
    }

    #[test]
    fn close_reasons_are_cut_on_characters() {
        let long = "é".repeat(100);
        let cut = close_reason(&long);
        assert!(cut.len() <= 123 && long.starts_with(cut.as_str()));
    }
}
