//! `POST /agui`: Boardwire's agent as an AG-UI endpoint, so AG-UI frontends
//! (CopilotKit, `@ag-ui/client`) drive the same agent and the same sessions
//! as the chat: `threadId` is the chat session, the last message is the new
//! user message (its `id` is the message's `message_id`), and the reply is
//! the run's AG-UI events over SSE. A client that closes the request
//! cancels the run it started; that is how AG-UI clients abort. A tool call
//! that needs approval ends the request with an `interrupt` outcome while
//! the run waits in the bridge; a request whose `resume` answers it follows
//! the rest of the run.

mod events;

use std::{convert::Infallible, sync::Arc, time::Duration};

use axum::{
    Json,
    body::Body,
    extract::{
        Query, State,
        rejection::{JsonRejection, QueryRejection},
    },
    http::{HeaderMap, HeaderValue, header},
    response::{IntoResponse, Response},
};
use protocol::chat_frames::{
    ServerFrame,
    agui::{Event, Role, RunAgentInput},
};
use tokio::sync::mpsc;
use uuid::Uuid;

use self::events::{End, RunEvents};
use super::{
    ApiError, AppState, Caller,
    api::{TokenQuery, body_error, open_for, start_error},
    validate,
};
use crate::{
    run::{Started, UserMessage},
    session::{Decision, Session, SubscriberGuard},
};

/// An SSE comment this often keeps proxies from closing a quiet stream.
const KEEPALIVE: Duration = Duration::from_secs(15);

pub async fn run(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<TokenQuery>, QueryRejection>,
    body: Result<Json<RunAgentInput>, JsonRejection>,
) -> Result<Response, ApiError> {
    let token = query.as_ref().ok().and_then(|q| q.token.as_deref());
    let caller = state.gate.caller(&headers, token).await?;
    let Json(input) = body.map_err(body_error)?;
    validate::session_id(&input.thread_id)
        .map_err(|_| ApiError::BadRequest("threadId must be a valid session id".into()))?;
    if !input.resume.is_empty() {
        return resume(state, caller, input).await;
    }
    let last = input
        .messages
        .last()
        .filter(|m| m.role == Role::User)
        .ok_or_else(|| {
            ApiError::BadRequest("the last message must be the user's new message".into())
        })?;
    let content = validate::content(last.content.as_deref().unwrap_or(""))?;
    validate::message_id(&last.id)?;
    let board = input
        .forwarded_props
        .get("boardId")
        .and_then(serde_json::Value::as_str);
    if let Some(board) = board {
        validate::board_id(board)?;
    }
    let session = open_for(&state, &caller, Some(&input.thread_id), board).await?;
    // Following before starting: none of the run's frames can be missed.
    let (frames, replay, guard) = session.subscribe(None, state.socket_queue).into_parts();
    let message = UserMessage {
        content,
        token: caller.token.clone(),
        message_id: Some(last.id.clone()),
        frontend_tools: input.tools.clone(),
    };
    let started = state
        .runner
        .start(Arc::clone(&session), message)
        .await
        .map_err(start_error)?;
    let (run_id, owned, backlog) = match started {
        Started::New { run_id, .. } => (run_id, true, Vec::new()),
        // A resend while it runs: its frames so far, then live.
        Started::InFlight(run_id) => (run_id, false, replay.iter().filter_map(parse).collect()),
        // Answered already: the same events again, from the stored result.
        Started::Answered(result, _) => {
            let mut frames: Vec<ServerFrame> = result
                .tool_executions
                .iter()
                .map(|tool| ServerFrame::ToolExecution {
                    seq: 0,
                    run_id: None,
                    data: tool.clone(),
                })
                .collect();
            frames.push(result.terminal_frame(0));
            (result.run_id, false, frames)
        }
    };
    let stream = Stream {
        events: RunEvents::new(input.thread_id.clone(), input.run_id.clone()),
        session,
        run_id,
        owned,
        caller,
        state,
    };
    Ok(stream.respond(backlog, frames, guard))
}

/// A run that ended in an interrupt (a tool call awaiting approval) goes on:
/// `resume` answers it, and the rest of the run streams on this request.
async fn resume(
    state: AppState,
    caller: Caller,
    input: RunAgentInput,
) -> Result<Response, ApiError> {
    let session = open_for(&state, &caller, Some(&input.thread_id), None).await?;
    // Following before answering: none of what the answer sets off is missed.
    let following = session.subscribe(None, state.socket_queue);
    let run_id = following
        .active_run
        .ok_or_else(|| ApiError::NotPending("no run of this thread waits for an answer".into()))?;
    let (frames, _replay, guard) = following.into_parts();
    let mut events = RunEvents::new(input.thread_id.clone(), input.run_id.clone());
    let by = caller
        .access
        .subject
        .clone()
        .unwrap_or_else(|| "anonymous".into());
    for entry in &input.resume {
        let payload = entry.payload.as_ref();
        let reason = payload
            .and_then(|p| p.get("reason"))
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned);
        validate::approval(&entry.interrupt_id, reason.as_deref())?;
        // A yes is `{"approved": true}` (or plain `true`) on a resolved entry.
        let approved = entry.status == "resolved"
            && payload.is_some_and(|p| {
                p.as_bool()
                    .or_else(|| p.get("approved").and_then(serde_json::Value::as_bool))
                    == Some(true)
            });
        let decision = Decision {
            approved,
            by: by.clone(),
            reason,
        };
        // The run may be on another bridge (with NATS).
        if !session
            .answer_approval_anywhere(&entry.interrupt_id, decision)
            .await
        {
            return Err(ApiError::NotPending(format!(
                "interrupt {} is not pending (answered already, timed out, or never asked)",
                entry.interrupt_id
            )));
        }
        events.resumed(&entry.interrupt_id);
    }
    let stream = Stream {
        events,
        session,
        run_id,
        owned: true,
        caller,
        state,
    };
    Ok(stream.respond(Vec::new(), frames, guard))
}

/// One request's run, relayed as AG-UI events.
struct Stream {
    events: RunEvents,
    session: Arc<Session>,
    run_id: Uuid,
    /// Whether this request started the run (and so cancels it on close).
    owned: bool,
    caller: Caller,
    state: AppState,
}

impl Stream {
    /// The SSE response; a task relays the run into it.
    fn respond(
        self,
        backlog: Vec<ServerFrame>,
        frames: mpsc::Receiver<axum::extract::ws::Utf8Bytes>,
        guard: SubscriberGuard,
    ) -> Response {
        let (tx, rx) = mpsc::channel::<String>(64);
        tokio::spawn(self.relay(backlog, frames, guard, tx));
        let body = futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|text| (Ok::<_, Infallible>(text), rx))
        });
        let mut response = Body::from_stream(body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream"),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
        response
    }

    async fn relay(
        mut self,
        backlog: Vec<ServerFrame>,
        mut frames: mpsc::Receiver<axum::extract::ws::Utf8Bytes>,
        _following: SubscriberGuard,
        tx: mpsc::Sender<String>,
    ) {
        let mut out = vec![self.events.started()];
        out.extend(self.board_snapshot().await);
        if !send(&tx, &mut out).await {
            return self.abandon();
        }
        for frame in backlog {
            if self.apply(&frame, &mut out).await {
                send(&tx, &mut out).await;
                return;
            }
        }
        let mut keepalive = tokio::time::interval(KEEPALIVE);
        keepalive.tick().await;
        loop {
            tokio::select! {
                () = tx.closed() => return self.abandon(),
                _ = keepalive.tick() => {
                    if tx.send(": keepalive\n\n".into()).await.is_err() {
                        return self.abandon();
                    }
                }
                frame = frames.recv() => {
                    let Some(text) = frame else {
                        // The session dropped this follower for reading too
                        // slowly; the run itself goes on.
                        out.push(Event::RunError {
                            message: "the client read too slowly; the run goes on in its session".into(),
                            code: Some("too_slow".into()),
                        });
                        send(&tx, &mut out).await;
                        return;
                    };
                    let Some(frame) = parse(&text) else { continue };
                    if frame.run_id() != Some(self.run_id.to_string().as_str()) {
                        continue;
                    }
                    let ended = self.apply(&frame, &mut out).await;
                    if !send(&tx, &mut out).await {
                        return self.abandon();
                    }
                    if ended {
                        return;
                    }
                }
            }
        }
    }

    /// Maps one frame; at a finished run, the board as it is now goes out
    /// just before `RUN_FINISHED`. Returns whether the run ended.
    async fn apply(&mut self, frame: &ServerFrame, out: &mut Vec<Event>) -> bool {
        match self.events.frame(frame, out) {
            None => false,
            Some(End::Failed | End::Interrupted) => true,
            Some(End::Finished) => {
                if let Some(snapshot) = self.board_snapshot().await {
                    let at = out.len().saturating_sub(1);
                    out.insert(at, snapshot);
                }
                true
            }
        }
    }

    /// `STATE_SNAPSHOT` with the session's board, read as the caller.
    async fn board_snapshot(&self) -> Option<Event> {
        let boards = self
            .state
            .gate
            .boards()
            .with_bearer(self.caller.token.as_deref());
        match boards.snapshot_json(self.session.board_id()).await {
            Ok(snapshot) => Some(Event::StateSnapshot { snapshot }),
            Err(err) => {
                tracing::warn!(error = %err, "no board snapshot for the AG-UI stream");
                None
            }
        }
    }

    /// The client went away: the run it started stops.
    fn abandon(&self) {
        if self.owned && self.session.cancel_run(Some(self.run_id)).is_some() {
            tracing::info!(run = %self.run_id, "AG-UI client closed its request; run cancelled");
        }
    }
}

/// Sends the events as SSE; false when the client is gone.
async fn send(tx: &mpsc::Sender<String>, out: &mut Vec<Event>) -> bool {
    for event in out.drain(..) {
        if tx.send(event.to_sse()).await.is_err() {
            return false;
        }
    }
    true
}

fn parse(text: &axum::extract::ws::Utf8Bytes) -> Option<ServerFrame> {
    serde_json::from_str(text).ok()
}
