//! A WebSocket chat client for tests, and helpers over the frames it reads.

use std::net::SocketAddr;

use futures::{SinkExt, StreamExt};
use protocol::chat_frames::{ClientFrame, MessageData, ServerFrame};
use tokio::net::TcpStream;
use tokio_tungstenite::{
    MaybeTlsStream, WebSocketStream,
    tungstenite::{Message, protocol::CloseFrame},
};

use super::PATIENCE;

/// A chat client socket.
pub struct Ws(WebSocketStream<MaybeTlsStream<TcpStream>>);

impl Ws {
    pub async fn connect(url: &str) -> Self {
        let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
            .max_message_size(None)
            .max_frame_size(None);
        let connecting = tokio_tungstenite::connect_async_with_config(url, Some(config), true);
        let (stream, _) = tokio::time::timeout(PATIENCE, connecting)
            .await
            .expect("connect in time")
            .expect("WebSocket handshake");
        Self(stream)
    }

    /// Connects with these extra request headers (`Authorization`, `Origin`).
    pub async fn connect_with(url: &str, headers: &[(&str, &str)]) -> Self {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let mut request = url.into_client_request().unwrap();
        for (name, value) in headers {
            request.headers_mut().insert(
                tokio_tungstenite::tungstenite::http::HeaderName::from_bytes(name.as_bytes())
                    .unwrap(),
                value.parse().unwrap(),
            );
        }
        let connecting = tokio_tungstenite::connect_async(request);
        let (stream, _) = tokio::time::timeout(PATIENCE, connecting)
            .await
            .expect("connect in time")
            .expect("WebSocket handshake");
        Self(stream)
    }

    /// Sends a raw text frame.
    pub async fn send_text(&mut self, text: String) {
        let _ = self.0.send(Message::text(text)).await;
    }

    /// Connects with a tiny receive buffer and no message size limit, like a
    /// browser tab that stopped reading.
    pub async fn open_stalling(url: &str, addr: SocketAddr) -> (Self, ServerFrame) {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        let stream = socket.connect(addr).await.expect("TCP connect");
        let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
            .max_message_size(None)
            .max_frame_size(None);
        let (stream, _) = tokio_tungstenite::client_async_with_config(
            url,
            MaybeTlsStream::Plain(stream),
            Some(config),
        )
        .await
        .expect("WebSocket handshake");
        let mut ws = Self(stream);
        let connected = ws.next().await;
        (ws, connected)
    }

    /// Connects and reads `connected`.
    pub async fn open(url: &str) -> (Self, ServerFrame) {
        let mut ws = Self::connect(url).await;
        let connected = ws.next().await;
        assert!(
            matches!(connected, ServerFrame::Connected { .. }),
            "first frame: {connected:?}"
        );
        (ws, connected)
    }

    pub async fn send(&mut self, frame: &ClientFrame) {
        let text = serde_json::to_string(frame).unwrap();
        self.0.send(Message::text(text)).await.expect("send");
    }

    pub async fn say(&mut self, content: &str) {
        self.say_with_id(content, None).await;
    }

    /// Sends a message the way chat-client.js does: named by `message_id`.
    pub async fn say_as(&mut self, content: &str, message_id: &str) {
        self.say_with_id(content, Some(message_id)).await;
    }

    async fn say_with_id(&mut self, content: &str, message_id: Option<&str>) {
        self.send(&ClientFrame::Message {
            data: MessageData {
                content: content.into(),
                session_id: None,
                message_id: message_id.map(str::to_owned),
                message_history: None,
            },
        })
        .await;
    }

    /// Answers a tool call awaiting approval.
    pub async fn approve(&mut self, tool_call_id: &str, approved: bool, reason: Option<&str>) {
        self.send(&ClientFrame::Approval {
            data: protocol::chat_frames::ApprovalData {
                tool_call_id: tool_call_id.into(),
                approved,
                reason: reason.map(str::to_owned),
            },
        })
        .await;
    }

    /// Reads up to the first tool call that awaits approval, and returns it.
    pub async fn until_awaiting_approval(&mut self) -> protocol::chat_frames::ToolExecution {
        loop {
            if let ServerFrame::ToolExecution { data, .. } = self.next().await
                && data.status == protocol::chat_frames::ToolStatus::AwaitingApproval
            {
                return data;
            }
        }
    }

    /// The next frame; panics on close.
    pub async fn next(&mut self) -> ServerFrame {
        loop {
            let message = tokio::time::timeout(PATIENCE, self.0.next())
                .await
                .expect("a frame in time")
                .expect("socket open")
                .expect("read");
            match message {
                Message::Text(text) => return serde_json::from_str(&text).expect("a server frame"),
                Message::Close(close) => panic!("socket closed: {close:?}"),
                _ => {}
            }
        }
    }

    /// Frames up to and including the next terminal one.
    pub async fn until_terminal(&mut self) -> Vec<ServerFrame> {
        let mut frames = Vec::new();
        loop {
            let frame = self.next().await;
            let terminal = frame.is_terminal();
            frames.push(frame);
            if terminal {
                return frames;
            }
        }
    }

    /// Reads until the server closes; returns its close frame.
    pub async fn closed(&mut self) -> Option<CloseFrame> {
        loop {
            match tokio::time::timeout(PATIENCE, self.0.next())
                .await
                .expect("close in time")
            {
                Some(Ok(Message::Close(close))) => return close,
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return None,
            }
        }
    }

    pub async fn close(mut self) {
        let _ = self.0.close(None).await;
    }
}

/// The streamed text of a run's frames.
pub fn streamed_text(frames: &[ServerFrame]) -> String {
    frames
        .iter()
        .filter_map(|f| match f {
            ServerFrame::Token { data, .. } => Some(data.token.as_str()),
            _ => None,
        })
        .collect()
}

/// Asserts seqs rise by exactly one from frame to frame.
pub fn assert_contiguous(frames: &[ServerFrame]) {
    let seqs: Vec<u64> = frames.iter().filter_map(ServerFrame::seq).collect();
    for pair in seqs.windows(2) {
        assert_eq!(pair[1], pair[0] + 1, "seqs not contiguous: {seqs:?}");
    }
}

/// The seqs of a tab's run frames (those with a top-level `runId`).
pub fn run_seqs(frames: &[ServerFrame]) -> Vec<u64> {
    frames
        .iter()
        .filter(|f| f.run_id().is_some())
        .filter_map(ServerFrame::seq)
        .collect()
}

/// Asserts `seqs` strictly increase (gaps allowed: a restarted or other
/// bridge continues above its reservation).
pub fn assert_rising(seqs: &[u64]) {
    assert!(
        seqs.windows(2).all(|w| w[1] > w[0]),
        "seqs not strictly increasing: {seqs:?}"
    );
}

pub fn tool_frames(frames: &[ServerFrame]) -> Vec<protocol::chat_frames::ToolExecution> {
    frames
        .iter()
        .filter_map(|f| match f {
            ServerFrame::ToolExecution { data, .. } => Some(data.clone()),
            _ => None,
        })
        .collect()
}

impl Ws {
    /// The next frame, or the close frame when the server closes.
    pub async fn next_or_close(&mut self) -> Result<ServerFrame, Option<CloseFrame>> {
        loop {
            match self.0.next().await {
                Some(Ok(Message::Text(text))) => {
                    return Ok(serde_json::from_str(&text).expect("a server frame"));
                }
                Some(Ok(Message::Close(close))) => return Err(close),
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return Err(None),
            }
        }
    }
}
