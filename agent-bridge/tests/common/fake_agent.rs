//! A scripted stand-in for an agent backend, for failures a real AG-UI
//! server will not produce on demand. What it does depends on the last user
//! message: "garbage", "hang", "endless", "flood <tokens>" (2 KiB tokens as
//! fast as possible), or a short valid run otherwise.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use axum::{Json, Router, body::Body, http::header, response::Response, routing::post};
use futures::StreamExt;
use protocol::chat_frames::agui::{Event, RunAgentInput};

/// The fake backend; counts response streams that were dropped (closed by the client).
pub struct FakeAgent {
    pub url: String,
    pub dropped_streams: Arc<AtomicUsize>,
}

struct DropCounter(Arc<AtomicUsize>);

impl Drop for DropCounter {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

impl FakeAgent {
    pub async fn start() -> Self {
        let dropped_streams = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&dropped_streams);
        let app = Router::new().route(
            "/",
            post(move |Json(input): Json<RunAgentInput>| {
                let counter = Arc::clone(&counter);
                async move { respond(input, counter) }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            url: format!("http://{addr}/"),
            dropped_streams,
        }
    }

    pub fn dropped(&self) -> usize {
        self.dropped_streams.load(Ordering::SeqCst)
    }
}

fn respond(input: RunAgentInput, counter: Arc<AtomicUsize>) -> Response {
    let said = input
        .messages
        .last()
        .and_then(|m| m.content.clone())
        .unwrap_or_default();
    let sse = |body: Body| {
        Response::builder()
            .header(header::CONTENT_TYPE, "text/event-stream")
            .body(body)
            .unwrap()
    };
    let started = Event::RunStarted {
        thread_id: input.thread_id.clone(),
        run_id: input.run_id.clone(),
    };
    if said.contains("needs approval") || !input.resume.is_empty() {
        return sse(Body::from(approval_script(&input, started)));
    }
    if said.contains("garbage") {
        return sse(Body::from(format!(
            "{}data: {{this is not json\n\n",
            started.to_sse()
        )));
    }
    if said.contains("hang") {
        let stream = futures::stream::iter([Ok::<_, std::io::Error>(started.to_sse())])
            .chain(futures::stream::pending());
        return sse(Body::from_stream(stream));
    }
    if said.contains("endless") {
        let guard = DropCounter(counter);
        let ticks = futures::stream::unfold(0u64, |i| async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            let event = Event::TextMessageContent {
                message_id: "m".into(),
                delta: format!("tick{i} "),
            };
            Some((Ok::<_, std::io::Error>(event.to_sse()), i + 1))
        });
        let stream = futures::stream::iter([Ok(started.to_sse())])
            .chain(ticks)
            .map(move |item| {
                let _ = &guard;
                item
            });
        return sse(Body::from_stream(stream));
    }
    if let Some(count) = said.strip_prefix("flood ") {
        let count: usize = count.trim().parse().unwrap_or(1);
        let token = "x".repeat(2048);
        let body = futures::stream::iter(0..count).map(move |i| {
            let delta = format!("{i:08}{token}");
            Ok::<_, std::io::Error>(
                Event::TextMessageContent {
                    message_id: "m".into(),
                    delta,
                }
                .to_sse(),
            )
        });
        let finished = Event::RunFinished {
            thread_id: input.thread_id,
            run_id: input.run_id,
            outcome: None,
        };
        let stream = futures::stream::iter([Ok(started.to_sse())])
            .chain(body)
            .chain(futures::stream::iter([Ok(finished.to_sse())]));
        return sse(Body::from_stream(stream));
    }
    let events = [
        started,
        Event::TextMessageStart {
            message_id: "m".into(),
            role: Some("assistant".into()),
        },
        Event::TextMessageContent {
            message_id: "m".into(),
            delta: "ok".into(),
        },
        Event::TextMessageEnd {
            message_id: "m".into(),
        },
        Event::RunFinished {
            thread_id: input.thread_id,
            run_id: input.run_id,
            outcome: None,
        },
    ];
    sse(Body::from(
        events.iter().map(Event::to_sse).collect::<String>(),
    ))
}

/// A backend that asks before it deletes (AG-UI interrupts): the first run
/// announces `delete_task` and ends with an `interrupt` outcome; the run
/// that resumes it deletes when the answer was yes, and says so either way.
fn approval_script(input: &RunAgentInput, started: Event) -> String {
    let finished = Event::RunFinished {
        thread_id: input.thread_id.clone(),
        run_id: input.run_id.clone(),
        outcome: None,
    };
    let text = |delta: &str| {
        [
            Event::TextMessageStart {
                message_id: format!("{}-text", input.run_id),
                role: Some("assistant".into()),
            },
            Event::TextMessageContent {
                message_id: format!("{}-text", input.run_id),
                delta: delta.into(),
            },
            Event::TextMessageEnd {
                message_id: format!("{}-text", input.run_id),
            },
        ]
    };
    let events: Vec<Event> = match input.resume.first() {
        None => vec![
            started,
            Event::ToolCallStart {
                tool_call_id: "call-delete-1".into(),
                tool_call_name: "delete_task".into(),
                parent_message_id: None,
            },
            Event::ToolCallArgs {
                tool_call_id: "call-delete-1".into(),
                delta: r#"{"title":"Old plan"}"#.into(),
            },
            Event::ToolCallEnd {
                tool_call_id: "call-delete-1".into(),
            },
            Event::RunFinished {
                thread_id: input.thread_id.clone(),
                run_id: input.run_id.clone(),
                outcome: Some(protocol::chat_frames::agui::Outcome::Interrupt {
                    interrupts: vec![serde_json::json!({
                        "id": "interrupt-1",
                        "reason": "tool_approval",
                        "message": "Delete the task \"Old plan\"",
                        "toolCallId": "call-delete-1",
                    })],
                }),
            },
        ],
        Some(answer) => {
            let approved = answer
                .payload
                .as_ref()
                .and_then(|p| p["approved"].as_bool())
                == Some(true);
            // The resumed run must see the interrupted call in its history.
            let call_seen = input
                .messages
                .iter()
                .any(|m| m.tool_calls.iter().any(|c| c.id == "call-delete-1"));
            let mut events = vec![started];
            if approved {
                events.push(Event::ToolCallResult {
                    message_id: "result-1".into(),
                    tool_call_id: "call-delete-1".into(),
                    content: r#"{"deleted":"Old plan"}"#.into(),
                    role: Some("tool".into()),
                });
            }
            let said = format!(
                "{} (resumed {}, call in history: {call_seen})",
                if approved {
                    "Deleted it."
                } else {
                    "Left it alone."
                },
                answer.interrupt_id
            );
            events.extend(text(&said));
            events.push(finished);
            events
        }
    };
    events.iter().map(Event::to_sse).collect()
}
