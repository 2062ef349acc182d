//! Sessions across sockets: tabs, reconnects with `last_seq`, runs that
//! outlive their socket, cancel.

mod common;

use std::time::Duration;

use common::{Options, Stack, Ws, assert_contiguous, streamed_text};
use protocol::chat_frames::{ClientFrame, RunStatus, ServerFrame};

fn slow() -> Options {
    Options {
        token_delay: Duration::from_millis(40),
        ..Options::default()
    }
}

fn session_of(connected: &ServerFrame) -> String {
    let ServerFrame::Connected { session_id, .. } = connected else {
        panic!("{connected:?}")
    };
    session_id.clone()
}

#[tokio::test]
async fn two_tabs_receive_the_same_frames_in_the_same_order() {
    let stack = Stack::start().await;
    let (mut first, connected) = Ws::open(&stack.ws_url("")).await;
    let session = session_of(&connected);
    let (mut second, _) = Ws::open(&stack.ws_url(&format!("?session_id={session}"))).await;

    second.say("Create a P2 task for two tabs").await;
    let seen_by_first = first.until_terminal().await;
    let seen_by_second = second.until_terminal().await;
    assert_eq!(seen_by_first, seen_by_second);
    assert_contiguous(&seen_by_first);
    assert!(matches!(
        seen_by_first.last(),
        Some(ServerFrame::Message { .. })
    ));
    stack.stop().await;
}

#[tokio::test]
async fn reconnecting_with_last_seq_replays_the_rest_of_the_run() {
    let stack = Stack::start_with(slow()).await;
    let (mut ws, connected) = Ws::open(&stack.ws_url("")).await;
    let session = session_of(&connected);
    ws.say("tell me what you can do").await;
    let mut before = Vec::new();
    while before
        .iter()
        .filter(|f| matches!(f, ServerFrame::Token { .. }))
        .count()
        < 3
    {
        before.push(ws.next().await);
    }
    let last_seq = before.last().unwrap().seq().unwrap();
    ws.close().await;

    let url = stack.ws_url(&format!("?session_id={session}&last_seq={last_seq}"));
    let (mut again, _) = Ws::open(&url).await;
    let after = again.until_terminal().await;
    assert_eq!(
        after[0].seq(),
        Some(last_seq + 1),
        "replay starts right after last_seq"
    );
    let whole: Vec<ServerFrame> = before.into_iter().chain(after).collect();
    assert_contiguous(&whole);
    assert_eq!(whole.iter().filter(|f| f.is_terminal()).count(), 1);
    let ServerFrame::Message { data, .. } = whole.last().unwrap() else {
        panic!("{whole:?}")
    };
    assert_eq!(data.content, streamed_text(&whole));
    stack.stop().await;
}

#[tokio::test]
async fn a_run_finishes_after_its_socket_closes() {
    let stack = Stack::start_with(slow()).await;
    let (mut ws, connected) = Ws::open(&stack.ws_url("")).await;
    let session = session_of(&connected);
    ws.say("Create a P3 epic for closed sockets").await;
    let processing = ws.next().await;
    let seq = processing.seq().unwrap();
    ws.close().await;

    let url = stack.ws_url(&format!("?session_id={session}&last_seq={seq}"));
    let (mut again, _) = Ws::open(&url).await;
    let rest = again.until_terminal().await;
    assert!(
        matches!(rest.last(), Some(ServerFrame::Message { .. })),
        "{rest:?}"
    );
    assert!(
        stack
            .board()
            .await
            .tasks
            .iter()
            .any(|t| t.title == "Closed sockets")
    );
    stack.stop().await;
}

#[tokio::test]
async fn cancel_stops_the_run_with_one_cancelled_frame_and_the_session_goes_on() {
    let stack = Stack::start_with(Options {
        token_delay: Duration::from_millis(300),
        ..Options::default()
    })
    .await;
    let (mut ws, connected) = Ws::open(&stack.ws_url("")).await;
    let session = session_of(&connected);
    let (mut other_tab, _) = Ws::open(&stack.ws_url(&format!("?session_id={session}"))).await;
    ws.say("what can you do").await;
    let mut frames = vec![ws.next().await];
    let run_id = frames[0].run_id().unwrap().to_owned();
    frames.push(ws.next().await);
    ws.send(&ClientFrame::Cancel {
        run_id: Some(run_id.clone()),
        data: None,
    })
    .await;
    frames.extend(ws.until_terminal().await);
    let ServerFrame::Status { data, .. } = frames.last().unwrap() else {
        panic!("{frames:?}")
    };
    assert_eq!(data.status, RunStatus::Cancelled);
    let text = streamed_text(&frames);
    assert!(
        !text.contains("delete <task title>"),
        "the reply stopped early: {text:?}"
    );
    let other = other_tab.until_terminal().await;
    assert_eq!(other.last(), frames.last(), "every tab sees the cancel");

    // Nothing of the cancelled run arrives after its terminal frame.
    ws.send(&ClientFrame::Ping).await;
    assert_eq!(ws.next().await, ServerFrame::Pong);
    // Cancelling again is a no-op reported as idle.
    ws.send(&ClientFrame::Cancel {
        run_id: None,
        data: None,
    })
    .await;
    let idle = ws.next().await;
    assert!(
        matches!(idle, ServerFrame::Status { ref data, .. } if data.status == RunStatus::Idle),
        "{idle:?}"
    );

    ws.say("Create a P2 task for after cancel").await;
    let next = ws.until_terminal().await;
    assert!(matches!(next.last(), Some(ServerFrame::Message { .. })));
    let history: serde_json::Value =
        reqwest::get(stack.http_url(&format!("/api/sessions/{session}/messages")))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    let assistant_runs: Vec<&str> = history["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "assistant")
        .map(|m| m["runId"].as_str().unwrap())
        .collect();
    assert!(
        assistant_runs.contains(&run_id.as_str()),
        "the partial reply is kept"
    );
    stack.stop().await;
}

#[tokio::test]
async fn a_second_message_during_a_run_is_refused_without_ending_the_run() {
    let stack = Stack::start_with(slow()).await;
    let (mut ws, _) = Ws::open(&stack.ws_url("")).await;
    ws.say("help").await;
    let first = ws.next().await;
    ws.say("help again").await;
    let mut frames = vec![first];
    frames.extend(ws.until_terminal().await);
    let refusal = frames
        .iter()
        .find(|f| matches!(f, ServerFrame::Error { .. }))
        .expect("the second message is refused");
    assert!(!refusal.is_terminal());
    let ServerFrame::Error { data, .. } = refusal else {
        unreachable!()
    };
    assert_eq!(data.code, "run_in_progress");
    assert!(matches!(frames.last(), Some(ServerFrame::Message { .. })));
    stack.stop().await;
}

#[tokio::test]
async fn shutdown_cancels_runs_and_closes_sockets_with_1001() {
    let stack = Stack::start_with(Options {
        token_delay: Duration::from_millis(300),
        ..Options::default()
    })
    .await;
    let (mut ws, _) = Ws::open(&stack.ws_url("")).await;
    ws.say("help").await;
    ws.next().await;
    let stopping = tokio::spawn(stack.stop());
    let mut cancelled = false;
    let close = loop {
        match tokio::time::timeout(common::PATIENCE, ws.next_or_close())
            .await
            .unwrap()
        {
            Ok(frame) => cancelled |= frame.is_terminal(),
            Err(close) => break close,
        }
    };
    assert!(
        cancelled,
        "the run ended with a terminal frame before the close"
    );
    assert_eq!(close.map(|c| u16::from(c.code)), Some(1001));
    stopping.await.unwrap();
}
