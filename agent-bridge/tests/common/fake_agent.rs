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
