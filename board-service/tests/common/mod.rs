//! A real board-service on 127.0.0.1:0 over a fresh database, and a client.

#![allow(dead_code)]

use std::{net::SocketAddr, time::Duration};

use board_service::{App, Config};
use protocol::v1::{
    Board, BoardEvent, CreateBoardRequest, CreateTaskRequest, Task, WatchBoardRequest,
    board_service_client::BoardServiceClient,
};
use service_kit::test_database::TestDatabase;
use tokio::{sync::oneshot, task::JoinHandle};
use tonic::{Streaming, transport::Channel};

pub type Client = BoardServiceClient<Channel>;

/// A running board-service; stopped by [`Service::stop`] or when dropped.
pub struct Service {
    pub addr: SocketAddr,
    /// Where `/metrics` is served, when the config asked for it.
    pub metrics_addr: Option<SocketAddr>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

impl Service {
    pub async fn start(database_url: &str) -> Self {
        Self::start_with(
            Config::new(database_url),
            "127.0.0.1:0".parse().expect("addr"),
        )
        .await
    }

    pub async fn start_with(mut config: Config, addr: SocketAddr) -> Self {
        config.listen_addr = addr;
        let app = App::build(config).await.expect("board-service starts");
        let addr = app.local_addr();
        let metrics_addr = app.metrics_addr();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(app.run_until_stopped(async {
            let _ = stopped.await;
        }));
        Self {
            addr,
            metrics_addr,
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub async fn client(&self) -> Client {
        let endpoint = format!("http://{}", self.addr);
        for _ in 0..100 {
            if let Ok(client) = BoardServiceClient::connect(endpoint.clone()).await {
                return client;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("cannot connect to board-service at {endpoint}");
    }

    /// Graceful shutdown; waits until the port is released.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let result = tokio::time::timeout(Duration::from_secs(20), task)
                .await
                .expect("board-service stops within 20 s");
            result.expect("join").expect("board-service ran cleanly");
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A fresh database with one board-service on it.
pub async fn start() -> (TestDatabase, Service, Client) {
    let db = TestDatabase::create().await;
    let service = Service::start(db.url()).await;
    let client = service.client().await;
    (db, service, client)
}

pub async fn create_board(client: &mut Client, name: &str) -> Board {
    client
        .create_board(CreateBoardRequest {
            name: name.into(),
            ..Default::default()
        })
        .await
        .expect("create board")
        .into_inner()
}

pub async fn create_task(client: &mut Client, board: &str, lane: &str, title: &str) -> Task {
    client
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

pub async fn watch(client: &mut Client, board: &str, after_version: u64) -> Streaming<BoardEvent> {
    client
        .watch_board(WatchBoardRequest {
            board_id: board.into(),
            after_version,
        })
        .await
        .expect("watch board")
        .into_inner()
}

/// The next `n` events, failing the test if they do not come within 10 s.
pub async fn next_events(stream: &mut Streaming<BoardEvent>, n: usize) -> Vec<BoardEvent> {
    let mut events = Vec::with_capacity(n);
    while events.len() < n {
        let next = tokio::time::timeout(Duration::from_secs(10), stream.message())
            .await
            .unwrap_or_else(|_| panic!("only {} of {n} events arrived", events.len()))
            .expect("stream error")
            .expect("stream ended");
        events.push(next);
    }
    events
}

/// Asserts nothing more arrives for a short while.
pub async fn assert_quiet(stream: &mut Streaming<BoardEvent>) {
    if let Ok(Ok(Some(extra))) =
        tokio::time::timeout(Duration::from_millis(300), stream.message()).await
    {
        panic!(
            "unexpected extra event: {} v{}",
            extra.r#type, extra.version
        );
    }
}

/// Task ids of a lane in board order.
pub async fn lane_order(client: &mut Client, board: &str, lane_key: &str) -> Vec<String> {
    let snapshot = client
        .get_board(protocol::v1::GetBoardRequest {
            board_id: board.into(),
        })
        .await
        .expect("get board")
        .into_inner();
    snapshot
        .tasks
        .into_iter()
        .filter(|t| t.lane_key == lane_key)
        .map(|t| t.id)
        .collect()
}
