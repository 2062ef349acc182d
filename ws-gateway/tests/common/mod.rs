//! A real board-service and ws-gateway on 127.0.0.1:0 over a fresh
//! database, and WebSocket clients talking to the gateway over loopback.

#![allow(dead_code)]

use std::{net::SocketAddr, time::Duration};

use futures::{SinkExt, StreamExt};
use protocol::v1::{
    Board, CreateBoardRequest, CreateTaskRequest, Task, board_service_client::BoardServiceClient,
};
use serde_json::{Value, json};
use service_kit::test_database::TestDatabase;
use tokio::net::TcpStream;
use tokio_tungstenite::{
    MaybeTlsStream, WebSocketStream, connect_async,
    tungstenite::{Message, client::IntoClientRequest},
};
use tonic::transport::Channel;

pub type Api = BoardServiceClient<Channel>;

/// Long enough never to fail a healthy run; only there to stop hangs.
pub const WAIT: Duration = Duration::from_secs(20);

/// A running service (board-service or gateway), from service-kit's test support.
pub use service_kit::testing::RunningService as Running;

pub async fn start_board_service(database_url: &str, addr: SocketAddr) -> Running {
    start_board_service_with(database_url, addr, |_| {}).await
}

pub async fn start_board_service_with(
    database_url: &str,
    addr: SocketAddr,
    tweak: impl FnOnce(&mut board_service::Config),
) -> Running {
    let mut config = board_service::Config::new(database_url);
    config.listen_addr = addr;
    tweak(&mut config);
    let app = board_service::App::build(config)
        .await
        .expect("board-service starts");
    Running::spawn(app.local_addr(), |stopped| app.run_until_stopped(stopped))
}

pub async fn start_gateway(config: ws_gateway::Config) -> Running {
    let app = ws_gateway::App::build(config)
        .await
        .expect("gateway starts");
    spawn_gateway(app)
}

/// Runs a built gateway until stopped.
pub fn spawn_gateway(app: ws_gateway::App) -> Running {
    Running::spawn(app.local_addr(), |stopped| app.run_until_stopped(stopped))
}

/// Database, board-service, gateway and a gRPC client.
pub struct Stack {
    pub db: TestDatabase,
    pub board_service: Running,
    pub gateway: Running,
    pub api: Api,
}

impl Stack {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(tweak: impl FnOnce(&mut ws_gateway::Config)) -> Self {
        Self::start_both(|_| {}, tweak).await
    }

    /// Like [`Stack::start_with`], tweaking board-service's config too.
    pub async fn start_both(
        tweak_board_service: impl FnOnce(&mut board_service::Config),
        tweak: impl FnOnce(&mut ws_gateway::Config),
    ) -> Self {
        // Logs only (no OTLP endpoint in tests): the guard holds nothing.
        let _ = service_kit::telemetry::init("ws-gateway-tests");
        let db = TestDatabase::create().await;
        let board_service = start_board_service_with(
            db.url(),
            "127.0.0.1:0".parse().unwrap(),
            tweak_board_service,
        )
        .await;
        let mut config = ws_gateway::Config::new(format!("http://{}", board_service.addr));
        tweak(&mut config);
        let gateway = start_gateway(config).await;
        let api = connect_api(board_service.addr).await;
        Self {
            db,
            board_service,
            gateway,
            api,
        }
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.gateway.addr)
    }

    pub fn http_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.gateway.addr)
    }

    pub async fn connect(&self) -> Ws {
        Ws::connect(&self.ws_url()).await
    }

    pub async fn board(&mut self, slug: &str) -> Board {
        self.api
            .create_board(CreateBoardRequest {
                name: slug.into(),
                slug: Some(slug.into()),
                ..Default::default()
            })
            .await
            .expect("create board")
            .into_inner()
    }

    pub async fn task(&mut self, board: &str, lane: &str, title: &str) -> Task {
        self.api
            .create_task(CreateTaskRequest {
                board_id: board.into(),
                lane_id: lane.into(),
                title: title.into(),
                ..Default::default()
            })
            .await
            .expect("create task")
            .into_inner()
    }
}

pub async fn connect_api(addr: SocketAddr) -> Api {
    let endpoint = format!("http://{addr}");
    for _ in 0..200 {
        if let Ok(client) = BoardServiceClient::connect(endpoint.clone()).await {
            return client;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("cannot connect to board-service at {endpoint}");
}

/// A WebSocket client that reads JSON frames.
pub struct Ws {
    pub stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl Ws {
    pub async fn connect(url: &str) -> Self {
        Self::connect_request(url.into_client_request().unwrap())
            .await
            .expect("websocket connects")
    }

    pub async fn connect_request(
        request: tokio_tungstenite::tungstenite::handshake::client::Request,
    ) -> Result<Self, tokio_tungstenite::tungstenite::Error> {
        let (stream, _) = connect_async(request).await?;
        Ok(Self { stream })
    }

    pub async fn send(&mut self, frame: Value) {
        self.stream
            .send(Message::text(frame.to_string()))
            .await
            .expect("send");
    }

    pub async fn send_raw(&mut self, message: Message) {
        self.stream.send(message).await.expect("send");
    }

    /// The next JSON frame; panics on close or after [`WAIT`].
    pub async fn next(&mut self) -> Value {
        loop {
            let message = tokio::time::timeout(WAIT, self.stream.next())
                .await
                .expect("a frame within the wait")
                .expect("stream open")
                .expect("frame reads");
            match message {
                Message::Text(text) => return serde_json::from_str(&text).expect("JSON frame"),
                Message::Close(frame) => panic!("closed: {frame:?}"),
                _ => continue,
            }
        }
    }

    /// Skips frames until one of type `kind`.
    pub async fn next_of(&mut self, kind: &str) -> Value {
        loop {
            let frame = self.next().await;
            if frame["type"] == kind {
                return frame;
            }
        }
    }

    /// Subscribes and returns the `board.sync` that follows.
    pub async fn subscribe(&mut self, board: &str) -> Value {
        self.send(json!({"type": "subscribe", "boardId": board}))
            .await;
        self.next_of("board.sync").await
    }

    /// Reads until the server closes; returns the close code.
    pub async fn close_code(&mut self) -> u16 {
        loop {
            let message = tokio::time::timeout(WAIT, self.stream.next())
                .await
                .expect("close within the wait");
            match message {
                Some(Ok(Message::Close(Some(frame)))) => return frame.code.into(),
                Some(Ok(Message::Close(None))) | None => return 1005,
                Some(Err(e)) => panic!("socket failed before a close frame: {e}"),
                Some(Ok(_)) => continue,
            }
        }
    }
}

/// Reads frames until `version`; asserts each board frame is the next version.
pub async fn read_until(ws: &mut Ws, mut last: u64, version: u64) -> Vec<Value> {
    let mut frames = Vec::new();
    while last < version {
        let frame = ws.next().await;
        let Some(v) = frame["version"].as_u64() else {
            continue;
        };
        assert_eq!(
            v,
            last + 1,
            "frames arrive in version order without gaps: {frame}"
        );
        last = v;
        frames.push(frame);
    }
    frames
}
