//! RFC 6455 closing: a client's close is echoed, so it ends cleanly; a
//! framing error gets 1002 and bad UTF-8 gets 1007 before the TCP close.

mod common;

use std::time::Duration;

use common::*;
use futures::StreamExt;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};
use tokio_tungstenite::tungstenite::{
    Message,
    protocol::{CloseFrame, frame::coding::CloseCode},
};

#[tokio::test]
async fn a_client_close_is_echoed_with_its_code() {
    let stack = Stack::start().await;
    let mut ws = stack.connect().await;
    ws.next_of("connected").await;
    ws.stream
        .close(Some(CloseFrame {
            code: CloseCode::Normal,
            reason: "bye".into(),
        }))
        .await
        .unwrap();
    let echo = tokio::time::timeout(Duration::from_secs(5), ws.stream.next())
        .await
        .expect("an answer to the close");
    match echo {
        Some(Ok(Message::Close(Some(frame)))) => assert_eq!(frame.code, CloseCode::Normal),
        other => panic!("the close was not echoed: {other:?}"),
    }
}

/// Upgrades by hand, sends `frame` raw, and returns the close code the
/// gateway answers with (None when it just drops the connection).
async fn close_code_after(stack: &Stack, frame: &[u8]) -> Option<u16> {
    let mut tcp = TcpStream::connect(stack.gateway.addr).await.unwrap();
    tcp.write_all(
        b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    )
    .await
    .unwrap();
    tcp.write_all(frame).await.unwrap();
    let mut seen = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        let mut buf = [0u8; 4096];
        while let Ok(n) = tcp.read(&mut buf).await {
            if n == 0 {
                break;
            }
            seen.extend_from_slice(&buf[..n]);
        }
    })
    .await;
    let body = seen.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    // Server frames are unmasked: find the close frame (0x88) and its code.
    let mut at = body;
    while at + 2 <= seen.len() {
        let (opcode, len) = (seen[at] & 0x0f, usize::from(seen[at + 1] & 0x7f));
        let (len, start) = match len {
            126 => (
                usize::from(u16::from_be_bytes([seen[at + 2], seen[at + 3]])),
                at + 4,
            ),
            127 => return None,
            n => (n, at + 2),
        };
        if opcode == 0x8 && len >= 2 {
            return Some(u16::from_be_bytes([seen[start], seen[start + 1]]));
        }
        at = start + len;
    }
    None
}

#[tokio::test]
async fn framing_errors_are_closed_with_1002_and_bad_utf8_with_1007() {
    let stack = Stack::start().await;
    // A text frame from the client without a mask.
    assert_eq!(close_code_after(&stack, b"\x81\x02hi").await, Some(1002));
    // A reserved opcode, masked.
    assert_eq!(
        close_code_after(&stack, b"\x83\x80\x00\x00\x00\x00").await,
        Some(1002)
    );
    // Masked (all-zero key) text that is not UTF-8.
    assert_eq!(
        close_code_after(&stack, b"\x81\x82\x00\x00\x00\x00\xc3\x28").await,
        Some(1007)
    );
}
