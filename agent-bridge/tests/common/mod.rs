//! A real stack for agent-bridge tests: a fresh database, board-service and
//! agent-bridge on 127.0.0.1:0, plus WebSocket and AG-UI helpers.

#![allow(dead_code)]

pub mod fake_agent;

use std::{net::SocketAddr, path::PathBuf, process::Stdio, time::Duration};

use futures::{SinkExt, StreamExt};
use protocol::{
    chat_frames::{ClientFrame, MessageData, ServerFrame},
    v1::{BoardSnapshot, GetBoardRequest, board_service_client::BoardServiceClient},
};
use service_kit::test_database::TestDatabase;
use tokio::{net::TcpStream, process::Child, sync::oneshot, task::JoinHandle};
use tokio_tungstenite::{
    MaybeTlsStream, WebSocketStream,
    tungstenite::{Message, protocol::CloseFrame},
};

/// Guards against a hung test; never a timing assertion.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// How to start agent-bridge.
#[derive(Clone)]
pub struct Options {
    pub agent_url: Option<String>,
    pub agent_timeout: Duration,
    pub token_delay: Duration,
    /// Point the built-in agent at a port where nothing listens.
    pub board_service_down: bool,
    pub socket_queue: usize,
    pub replay_frames: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            agent_url: None,
            agent_timeout: Duration::from_secs(10),
            token_delay: Duration::ZERO,
            board_service_down: false,
            socket_queue: 1024,
            replay_frames: 10_000,
        }
    }
}

/// A running service and the way to stop it.
struct Running {
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Running {
    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(PATIENCE, self.task)
            .await
            .expect("service stops")
            .expect("join")
            .expect("service ran cleanly");
    }
}

/// board-service and agent-bridge over one fresh database.
pub struct Stack {
    pub db: TestDatabase,
    pub board_addr: SocketAddr,
    pub addr: SocketAddr,
    pub options: Options,
    board: Running,
    bridge: Running,
}

impl Stack {
    pub async fn start() -> Self {
        Self::start_with(Options::default()).await
    }

    pub async fn start_with(options: Options) -> Self {
        let db = TestDatabase::create().await;
        let mut config = board_service::Config::new(db.url());
        config.listen_addr = "127.0.0.1:0".parse().unwrap();
        config.default_board = Some("default".into());
        let app = board_service::App::build(config)
            .await
            .expect("board-service starts");
        let board_addr = app.local_addr();
        let board = spawn(|stopped| app.run_until_stopped(stopped));
        let (addr, bridge) = start_bridge(db.url(), board_addr, &options).await;
        Self {
            db,
            board_addr,
            addr,
            options,
            board,
            bridge,
        }
    }

    /// Stops agent-bridge gracefully and starts a new one on the same database.
    pub async fn restart_bridge(&mut self) {
        let (addr, bridge) = start_bridge(self.db.url(), self.board_addr, &self.options).await;
        let old = std::mem::replace(&mut self.bridge, bridge);
        old.stop().await;
        self.addr = addr;
    }

    pub async fn stop(self) {
        self.bridge.stop().await;
        self.board.stop().await;
    }

    pub fn ws_url(&self, query: &str) -> String {
        format!("ws://{}/ws/chat{query}", self.addr)
    }

    pub fn http_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub async fn board(&self) -> BoardSnapshot {
        let mut client = BoardServiceClient::connect(format!("http://{}", self.board_addr))
            .await
            .expect("connect to board-service");
        client
            .get_board(GetBoardRequest {
                board_id: "default".into(),
            })
            .await
            .expect("get the default board")
            .into_inner()
    }
}

async fn start_bridge(
    database_url: &str,
    board_addr: SocketAddr,
    options: &Options,
) -> (SocketAddr, Running) {
    let mut config = agent_bridge::Config::new(database_url);
    config.listen_addr = "127.0.0.1:0".parse().unwrap();
    config.board_service_url = if options.board_service_down {
        format!("http://{}", closed_port())
    } else {
        format!("http://{board_addr}")
    };
    config.agent_url = options.agent_url.clone();
    config.agent_timeout = options.agent_timeout;
    config.builtin_token_delay = options.token_delay;
    config.socket_queue = options.socket_queue;
    config.replay_frames = options.replay_frames;
    let app = agent_bridge::App::build(config)
        .await
        .expect("agent-bridge starts");
    let addr = app.local_addr();
    (addr, spawn(|stopped| app.run_until_stopped(stopped)))
}

fn spawn<F>(run: impl FnOnce(futures::future::BoxFuture<'static, ()>) -> F) -> Running
where
    F: std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(run(Box::pin(async {
        let _ = stopped.await;
    })));
    Running {
        stop: Some(stop),
        task,
    }
}

/// An address where nothing listens.
pub fn closed_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

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
        self.send(&ClientFrame::Message {
            data: MessageData {
                content: content.into(),
                session_id: None,
                message_history: None,
            },
        })
        .await;
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

pub fn tool_frames(frames: &[ServerFrame]) -> Vec<protocol::chat_frames::ToolExecution> {
    frames
        .iter()
        .filter_map(|f| match f {
            ServerFrame::ToolExecution { data, .. } => Some(data.clone()),
            _ => None,
        })
        .collect()
}

/// The real AG-UI server of `tests/agui/server.py` (pydantic-ai), on a free port.
pub struct AgUiServer {
    child: Child,
    pub url: String,
}

impl AgUiServer {
    pub async fn start() -> Self {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/agui/server.py");
        let port = closed_port().port();
        let child = tokio::process::Command::new("python3")
            .arg(&script)
            .args(["--port", &port.to_string()])
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("python3 runs tests/agui/server.py (pip install -r agent-bridge/tests/agui/requirements.txt)");
        let url = format!("http://127.0.0.1:{port}/");
        let health = format!("http://127.0.0.1:{port}/health");
        let client = reqwest::Client::new();
        for _ in 0..300 {
            if client
                .get(&health)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return Self { child, url };
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the AG-UI server did not come up on port {port}");
    }

    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
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
