//! A socket that stops reading is closed with 1013 instead of buffering
//! without bound, and loses nothing when it resumes with `last_seq`.

mod common;

use common::{Options, Stack, Ws, assert_contiguous, fake_agent::FakeAgent};
use protocol::chat_frames::ServerFrame;

const TOKENS: usize = 8_000;

#[tokio::test]
async fn a_socket_that_falls_behind_is_closed_and_resumes_without_loss() {
    let agent = FakeAgent::start().await;
    let options = Options {
        agent_url: Some(agent.url.clone()),
        socket_queue: 16,
        replay_frames: TOKENS + 100,
        ..Options::default()
    };
    let stack = Stack::start_with(options).await;
    let (mut stalled, connected) = Ws::open_stalling(&stack.ws_url(""), stack.addr).await;
    let ServerFrame::Connected { session_id, .. } = connected else {
        unreachable!()
    };
    let (mut reader, _) = Ws::open(&stack.ws_url(&format!("?session_id={session_id}"))).await;

    // 16 MiB of tokens: far more than the socket buffers of a tab that does
    // not read hold (4 KiB receive buffer, at most 4 MiB send buffer).
    stalled.say(&format!("flood {TOKENS}")).await;
    let whole = reader.until_terminal().await;
    assert!(
        matches!(whole.last(), Some(ServerFrame::Message { .. })),
        "the run is unaffected"
    );

    let mut before = Vec::new();
    let close = loop {
        match stalled.next_or_close().await {
            Ok(frame) => before.push(frame),
            Err(close) => break close,
        }
    };
    assert_eq!(
        close.map(|c| u16::from(c.code)),
        Some(1013),
        "closed as too slow"
    );
    assert!(before.len() < whole.len());
    assert_contiguous(&before);

    let last_seq = before.last().and_then(ServerFrame::seq).unwrap();
    let url = stack.ws_url(&format!("?session_id={session_id}&last_seq={last_seq}"));
    let (mut resumed, _) = Ws::open(&url).await;
    let after = resumed.until_terminal().await;
    let rejoined: Vec<ServerFrame> = before.into_iter().chain(after).collect();
    assert_eq!(rejoined, whole, "nothing lost, nothing doubled");
    stack.stop().await;
}
