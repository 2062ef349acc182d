//! Oversized chat frames, alone in their own test binary: the memory
//! check reads this process's RSS, which tests running beside it in the
//! same process would disturb.

mod common;

use common::{Stack, Ws};
use protocol::chat_frames::ServerFrame;
use serde_json::json;

/// Resident memory of this process (the bridge runs in it), in KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn oversized_frames_close_1009_without_the_memory_growing() {
    let stack = Stack::start().await;
    let before = rss_kib();
    // Just over the cap (the bridge's own check) and far over it (the
    // WebSocket layer's), on six sockets.
    for size in [130 * 1024, 15 << 20, 15 << 20, 15 << 20, 15 << 20, 15 << 20] {
        let (mut ws, _) = Ws::open(&stack.ws_url("")).await;
        let content = "x".repeat(size);
        ws.send_text(json!({"type": "message", "data": {"content": content}}).to_string())
            .await;
        let close = ws.closed().await;
        assert_eq!(
            close.map(|c| u16::from(c.code)),
            Some(1009),
            "a {size}-byte frame"
        );
    }
    // The frames are 75 MiB, and this process builds each of them as the
    // client too, so its RSS (glibc keeps freed large blocks) says little
    // about the bridge: the figure is printed, not asserted. What bounds the
    // bridge is that the WebSocket layer refuses a frame by its header
    // length, before reading the payload (the 1009s above).
    let grown_mib = rss_kib().saturating_sub(before) / 1024;
    eprintln!("RSS of the test process (client and bridge) grew by {grown_mib} MiB");
    // An HTTP body past the cap is 413, not read whole.
    let (status, reply) = stack
        .post_chat(json!({"content": "y".repeat(1 << 20)}))
        .await;
    assert_eq!(status, 413, "{reply}");
    let (mut ws, _) = Ws::open(&stack.ws_url("")).await;
    ws.say("list tasks").await;
    assert!(matches!(
        ws.until_terminal().await.last(),
        Some(ServerFrame::Message { .. })
    ));
    stack.stop().await;
}
