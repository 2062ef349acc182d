//! What the MCP tests run besides the stack: the Python MCP client of
//! `client.py` (the official `mcp` SDK, in its own venv), a ws-gateway on
//! the test's board-service, and a board subscriber on that gateway.

// Each test binary uses some of these.
#![allow(dead_code)]

use std::{net::SocketAddr, path::PathBuf, process::Stdio};

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::{
    io::{AsyncBufReadExt, BufReader, Lines},
    net::TcpStream,
    process::{Child, ChildStdin, ChildStdout},
    sync::oneshot,
    task::JoinHandle,
};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, tungstenite::Message};

use crate::common::{PATIENCE, python_env::python_for};

/// `client.py SCENARIO ARGS…` running; its stdout is one JSON object a line.
pub struct McpPeer {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Lines<BufReader<ChildStdout>>,
}

impl McpPeer {
    pub async fn start(args: &[&str]) -> Self {
        let python = tokio::task::spawn_blocking(|| python_for("tests/mcp"))
            .await
            .expect("set up the MCP client venv");
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/mcp/client.py");
        let mut child = tokio::process::Command::new(python)
            .arg(script)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start tests/mcp/client.py");
        let stdin = child.stdin.take();
        let lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        Self {
            child,
            stdin,
            lines,
        }
    }

    /// Writes one line to the client's stdin.
    pub async fn send_line(&mut self, line: &str) {
        use tokio::io::AsyncWriteExt;
        let stdin = self.stdin.as_mut().expect("stdin is open");
        stdin
            .write_all(format!("{line}\n").as_bytes())
            .await
            .expect("write to the MCP client");
        stdin.flush().await.expect("flush the MCP client's stdin");
    }

    /// The next thing the client reports; panics if it ends first.
    pub async fn next(&mut self) -> Value {
        let line = tokio::time::timeout(PATIENCE, self.lines.next_line())
            .await
            .expect("the MCP client reports within the patience")
            .expect("read the MCP client's stdout")
            .expect("the MCP client ended early (its stderr is above)");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
    }

    /// Everything it reports until it exits, which it must do cleanly.
    pub async fn finish(mut self) -> Vec<Value> {
        drop(self.stdin.take());
        let mut seen = Vec::new();
        while let Some(line) = tokio::time::timeout(PATIENCE, self.lines.next_line())
            .await
            .expect("the MCP client finishes within the patience")
            .expect("read the MCP client's stdout")
        {
            seen.push(serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}")));
        }
        let status = tokio::time::timeout(PATIENCE, self.child.wait())
            .await
            .expect("the MCP client exits")
            .expect("wait for the MCP client");
        assert!(status.success(), "the MCP client failed: {status}");
        seen
    }
}

/// The report of step `step` among `seen`.
pub fn step<'a>(seen: &'a [Value], step: &str) -> &'a Value {
    seen.iter()
        .find(|line| line["step"] == step)
        .unwrap_or_else(|| panic!("no {step} step in {seen:#?}"))
}

/// A ws-gateway in front of the test's board-service.
pub struct Gateway {
    pub addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Gateway {
    pub async fn start(board_addr: SocketAddr, jwt_secret: Option<&str>) -> Self {
        let mut config = ws_gateway::Config::new(format!("http://{board_addr}"));
        if let Some(secret) = jwt_secret {
            config.auth = service_kit::auth::AuthConfig::with_secret(secret);
        }
        let app = ws_gateway::App::build(config)
            .await
            .expect("ws-gateway starts");
        let addr = app.local_addr();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(app.run_until_stopped(async {
            let _ = stopped.await;
        }));
        Self { addr, stop, task }
    }

    pub async fn stop(self) {
        let _ = self.stop.send(());
        tokio::time::timeout(PATIENCE, self.task)
            .await
            .expect("gateway stops")
            .expect("join the gateway")
            .expect("gateway ran cleanly");
    }
}

/// A WebSocket client of the gateway, subscribed to one board.
pub struct BoardSocket(WebSocketStream<MaybeTlsStream<TcpStream>>);

impl BoardSocket {
    /// Connects (with `?token=` when given), subscribes to `board` and
    /// returns with its `board.sync` read.
    pub async fn subscribe(gateway: &Gateway, board: &str, token: Option<&str>) -> (Self, Value) {
        let query = token.map(|t| format!("?token={t}")).unwrap_or_default();
        let url = format!("ws://{}/ws{query}", gateway.addr);
        let (stream, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("connect to the gateway");
        let mut socket = Self(stream);
        socket
            .send(json!({"type": "subscribe", "boardId": board, "id": "sub-1"}))
            .await;
        let sync = socket.next_of("board.sync").await;
        (socket, sync)
    }

    pub async fn send(&mut self, frame: Value) {
        self.0
            .send(Message::text(frame.to_string()))
            .await
            .expect("send a frame");
    }

    /// The next frame of type `kind`, skipping others.
    pub async fn next_of(&mut self, kind: &str) -> Value {
        loop {
            let message = tokio::time::timeout(PATIENCE, self.0.next())
                .await
                .unwrap_or_else(|_| panic!("a {kind} frame within the patience"))
                .expect("socket open")
                .expect("frame reads");
            if let Message::Text(text) = message {
                let frame: Value = serde_json::from_str(&text).expect("a JSON frame");
                if frame["type"] == kind {
                    return frame;
                }
            }
        }
    }
}
