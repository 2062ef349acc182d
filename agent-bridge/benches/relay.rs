//! Relay benchmark: S concurrent sessions, each streaming T tokens from an
//! in-process AG-UI upstream through agent-bridge to a WebSocket client.
//!
//! Each token carries the time the upstream produced it, so the client
//! measures the latency of the bridge hop (upstream SSE write → bridge →
//! WebSocket read) per frame. Three phases: a burst (upstream as fast as it
//! can: throughput), a paced one (a token every BENCH_INTERVAL_US, every
//! session in lockstep: the worst case of latency when not saturated) and a
//! spread one (the same, with the sessions' starts spread over one interval,
//! as independent users' streams are). Loopback only; bounded by count and BENCH_MAX_SECS.
//!
//! `cargo bench -p agent-bridge --bench relay`
//! Env: BENCH_SESSIONS (50), BENCH_TOKENS (200), BENCH_INTERVAL_US (2000),
//! BENCH_MAX_SECS (120), DATABASE_URL (else a private PostgreSQL).

use std::{
    sync::{Arc, OnceLock},
    time::{Duration, Instant},
};

use axum::{Json, Router, body::Body, http::header, response::Response, routing::post};
use futures::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use protocol::chat_frames::{
    ClientFrame, MessageData, ServerFrame,
    agui::{Event, RunAgentInput},
};
use tokio_tungstenite::{connect_async, tungstenite::Message};

static EPOCH: OnceLock<Instant> = OnceLock::new();

fn now_ns() -> u64 {
    EPOCH.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The upstream: the user message is "<tokens> <interval_us>".
async fn upstream(Json(input): Json<RunAgentInput>) -> Response {
    let said = input
        .messages
        .last()
        .and_then(|m| m.content.clone())
        .unwrap_or_default();
    let mut words = said
        .split_whitespace()
        .map(|w| w.parse::<u64>().unwrap_or(0));
    let (tokens, interval) = (words.next().unwrap_or(0), words.next().unwrap_or(0));
    let (thread_id, run_id) = (input.thread_id, input.run_id);
    let head = futures::stream::iter([
        Event::RunStarted {
            thread_id: thread_id.clone(),
            run_id: run_id.clone(),
        },
        Event::TextMessageStart {
            message_id: "m".into(),
            role: None,
        },
    ])
    .map(|e| e.to_sse());
    let body = futures::stream::unfold(0, move |i| async move {
        if i == tokens {
            return None;
        }
        if interval > 0 {
            tokio::time::sleep(Duration::from_micros(interval)).await;
        }
        let delta = format!("{} ", now_ns());
        Some((
            Event::TextMessageContent {
                message_id: "m".into(),
                delta,
            }
            .to_sse(),
            i + 1,
        ))
    });
    let tail = futures::stream::iter([
        Event::TextMessageEnd {
            message_id: "m".into(),
        },
        Event::RunFinished {
            thread_id,
            run_id,
            outcome: None,
        },
    ])
    .map(|e| e.to_sse());
    let stream = head.chain(body).chain(tail).map(Ok::<_, std::io::Error>);
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .body(Body::from_stream(stream))
        .unwrap()
}

struct Outcome {
    frames: u64,
    latency: Histogram<u64>,
}

async fn session(
    bridge: std::net::SocketAddr,
    tokens: u64,
    interval: u64,
) -> anyhow::Result<Outcome> {
    let (mut ws, _) = connect_async(format!("ws://{bridge}/ws/chat")).await?;
    let message = ClientFrame::Message {
        data: MessageData {
            content: format!("{tokens} {interval}"),
            session_id: None,
            message_id: None,
            message_history: None,
        },
    };
    ws.send(Message::text(serde_json::to_string(&message)?))
        .await?;
    let mut latency = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3)?;
    let mut frames = 0;
    while let Some(message) = ws.next().await {
        let Message::Text(text) = message? else {
            continue;
        };
        let received = now_ns();
        frames += 1;
        match serde_json::from_str::<ServerFrame>(&text)? {
            ServerFrame::Token { data, .. } => {
                if let Ok(sent) = data.token.trim().parse::<u64>() {
                    latency.record(received.saturating_sub(sent).max(1))?;
                }
            }
            frame if frame.is_terminal() => {
                anyhow::ensure!(
                    matches!(frame, ServerFrame::Message { .. }),
                    "run failed: {frame:?}"
                );
                break;
            }
            _ => {}
        }
    }
    Ok(Outcome { frames, latency })
}

async fn phase(
    name: &str,
    bridge: std::net::SocketAddr,
    sessions: u64,
    tokens: u64,
    interval: u64,
    limit: Duration,
) -> anyhow::Result<()> {
    let started = Instant::now();
    // "spread": sessions start evenly over one interval, as independent
    // users' streams do; otherwise every session's tokens come in lockstep.
    let spread = name == "spread";
    let runs: Vec<_> = (0..sessions)
        .map(|i| {
            let delay = Duration::from_micros(if spread { interval * i / sessions } else { 0 });
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                session(bridge, tokens, interval).await
            })
        })
        .collect();
    let mut latency = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3)?;
    let mut frames = 0;
    for run in runs {
        let outcome =
            tokio::time::timeout(limit.saturating_sub(started.elapsed()), run).await???;
        frames += outcome.frames;
        latency.add(&outcome.latency)?;
    }
    let elapsed = started.elapsed();
    let us = |q: f64| latency.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "{name:>6}: {sessions} sessions x {tokens} tokens (interval {interval} us): {frames} frames in {:.2} s = {:.0} frames/s; \
         bridge latency per token p50 {:.0} us, p99 {:.0} us, max {:.0} us",
        elapsed.as_secs_f64(),
        frames as f64 / elapsed.as_secs_f64(),
        us(0.5),
        us(0.99),
        latency.max() as f64 / 1000.0,
    );
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let sessions = env("BENCH_SESSIONS", 50);
    let tokens = env("BENCH_TOKENS", 200);
    let interval = env("BENCH_INTERVAL_US", 2000);
    let limit = Duration::from_secs(env("BENCH_MAX_SECS", 120));
    now_ns();

    let db = service_kit::test_database::TestDatabase::create().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let upstream_addr = listener.local_addr()?;
    // Like the bridge, the upstream must not hold small writes back (Nagle).
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    tokio::spawn(
        async move { axum::serve(listener, Router::new().route("/", post(upstream))).await },
    );

    let mut config = agent_bridge::Config::new(db.url());
    config.listen_addr = "127.0.0.1:0".parse()?;
    config.agent_url = Some(format!("http://{upstream_addr}/"));
    config.db_max_connections = 32;
    // Every session comes from this one address; the per-address limit
    // guards against a flood, not against this bench.
    config.limits.max_connects_per_ip_per_min = u32::MAX;
    let app = agent_bridge::App::build(config).await?;
    let bridge = app.local_addr();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));
    let _keep = Arc::new(db);

    phase("warmup", bridge, 4, 20, 0, limit).await?;
    phase("burst", bridge, sessions, tokens, 0, limit).await?;
    phase("paced", bridge, sessions, tokens, interval, limit).await?;
    phase("spread", bridge, sessions, tokens, interval, limit).await?;

    let _ = stop.send(());
    server.await??;
    Ok(())
}
