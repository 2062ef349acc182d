//! Boardwire scaled out, as separate processes on one PostgreSQL and one
//! NATS: 2 board-services relaying to JetStream, 3 gateways reading from
//! it and 2 agent-bridges sharing chat sessions over it. Board readers are
//! spread over the gateways, two writers over the board-services, and chat
//! tabs over the bridges, one tab per session talking to the built-in
//! agent (which writes the same boards). During the writes a gateway, a
//! bridge and a board-service are killed with SIGKILL and NATS restarts.
//! Afterwards every reader's board (built only from the frames it received,
//! resuming with `sinceVersion` on another gateway when its own died)
//! equals the database, no reader saw a version twice or out of order, and
//! every tab's transcript (the final message of each run, from its frames,
//! resuming with `last_seq` on the other bridge) equals the session's
//! answers in the database. Then, through a second round of faults, a
//! channel published to through both board-services reaches subscribers
//! spread over the gateways with every offset once and in order, and
//! afterwards each live gateway's presence lists exactly the watchers on
//! the live gateways (`fabric`).

#[path = "scale_out/chat.rs"]
mod chat;
#[path = "scale_out/fabric.rs"]
mod fabric;
#[path = "common/service_binaries.rs"]
mod service_binaries;

use std::{
    collections::BTreeMap,
    fs::File,
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use futures::{SinkExt, StreamExt};
use protocol::{
    board_frames::{ServerFrame, TaskData},
    v1::{
        CreateBoardRequest, CreateTaskRequest, GetBoardRequest, MoveTaskRequest,
        board_service_client::BoardServiceClient,
    },
};
use serde_json::json;
use service_kit::{local_nats::LocalNats, test_database::TestDatabase};
use tokio::sync::watch;
use tokio_tungstenite::{connect_async, tungstenite::Message};
use tonic::transport::Channel;

const BOARDS: usize = 4;
const READERS_PER_BOARD_AND_GATEWAY: usize = 2;
/// Chat sessions, each with a talking tab and a listening tab per bridge.
const SESSIONS: usize = 3;
/// Long enough never to fail a healthy run; only there to stop hangs.
const SETTLE: Duration = Duration::from_secs(90);

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// One service process, restartable on the same port, killed on drop.
struct Service {
    name: String,
    program: PathBuf,
    env: Vec<(&'static str, String)>,
    log: PathBuf,
    child: Option<Child>,
}

impl Service {
    fn new(name: &str, program: &str, env: Vec<(&'static str, String)>, logs: &Path) -> Self {
        Self {
            name: name.to_owned(),
            program: service_binaries::dir().join(program),
            env,
            log: logs.join(format!("{name}.log")),
            child: None,
        }
    }

    fn start(&mut self) {
        let log = File::options()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("open the log");
        let mut command = Command::new(&self.program);
        command
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("RUST_LOG", "info")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log);
        self.child = Some(
            command
                .spawn()
                .unwrap_or_else(|e| panic!("start {} ({:?}): {e}", self.name, self.program)),
        );
    }

    /// SIGKILL: no shutdown, no goodbye.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.kill();
    }
}

async fn wait_for_grpc(port: u16) -> BoardServiceClient<Channel> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(client) = BoardServiceClient::connect(format!("http://127.0.0.1:{port}")).await {
            return client;
        }
        assert!(
            Instant::now() < deadline,
            "board-service on {port} never answered"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn wait_for_http(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let url = format!("http://127.0.0.1:{port}/health");
    while !reqwest::get(&url)
        .await
        .is_ok_and(|r| r.status().is_success())
    {
        assert!(
            Instant::now() < deadline,
            "the service on {port} never became healthy"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A board as a reader holds it: task id → (lane id, position, title).
type BoardState = BTreeMap<String, (String, String, String)>;

fn entry(task: &TaskData) -> (String, (String, String, String)) {
    (
        task.id.clone(),
        (
            task.lane_id.clone(),
            task.position.clone(),
            task.title.clone(),
        ),
    )
}

/// What a reader ended with.
struct ReaderEnd {
    board: String,
    version: u64,
    state: BoardState,
    reconnects: usize,
}

/// Subscribes to `board` on `gateways[first]`, builds the board from its
/// frames, and when its socket dies resumes with `sinceVersion` on the next
/// gateway, until it holds `target`'s version for the board.
async fn reader(
    board: String,
    gateways: Vec<u16>,
    first: usize,
    mut target: watch::Receiver<BTreeMap<String, u64>>,
) -> ReaderEnd {
    let mut state = BoardState::new();
    let mut version: Option<u64> = None;
    let mut reconnects = 0;
    let mut at = first;
    let done = |board: &str, version: Option<u64>, target: &BTreeMap<String, u64>| {
        version.zip(target.get(board)).is_some_and(|(v, t)| v >= *t)
    };
    loop {
        if done(&board, version, &target.borrow()) {
            return ReaderEnd {
                board,
                version: version.unwrap_or(0),
                state,
                reconnects,
            };
        }
        let url = format!("ws://127.0.0.1:{}/ws", gateways[at % gateways.len()]);
        let Ok((mut ws, _)) = connect_async(&url).await else {
            at += 1;
            reconnects += 1;
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let mut subscribe = json!({"type": "subscribe", "boardId": board});
        if let Some(v) = version {
            subscribe["sinceVersion"] = v.into();
        }
        if ws.send(Message::text(subscribe.to_string())).await.is_err() {
            at += 1;
            reconnects += 1;
            continue;
        }
        loop {
            let message = tokio::select! {
                m = tokio::time::timeout(Duration::from_secs(20), ws.next()) => m,
                _ = target.changed() => {
                    if done(&board, version, &target.borrow()) { break; }
                    continue;
                }
            };
            let text = match message {
                Ok(Some(Ok(Message::Text(text)))) => text,
                Ok(Some(Ok(_))) => continue,
                // Closed, failed or silent: this gateway is gone.
                _ => {
                    at += 1;
                    reconnects += 1;
                    break;
                }
            };
            let Ok(frame) = serde_json::from_str::<ServerFrame>(&text) else {
                continue;
            };
            let change_version = match &frame {
                ServerFrame::BoardSync(sync) => {
                    state = sync
                        .data
                        .lanes
                        .0
                        .iter()
                        .flat_map(|(_, t)| t)
                        .map(entry)
                        .collect();
                    version = Some(sync.version);
                    continue;
                }
                ServerFrame::TaskCreated(c) => {
                    state.extend([entry(&c.data)]);
                    c.version
                }
                ServerFrame::TaskMoved(c) => {
                    let task = state
                        .get_mut(&c.data.id)
                        .unwrap_or_else(|| panic!("{board}: moved a task it never saw: {text}"));
                    task.0.clone_from(&c.data.to_lane_id);
                    task.1.clone_from(&c.data.position);
                    c.version
                }
                ServerFrame::Error(e) => panic!("{board}: error frame {e:?}"),
                _ => continue,
            };
            let last = version.expect("a board.sync comes first");
            assert_eq!(
                change_version,
                last + 1,
                "{board}: each change once, in order (reader on gateway {at})"
            );
            version = Some(change_version);
            if done(&board, version, &target.borrow()) {
                break;
            }
        }
    }
}

/// Creates tasks and moves them across `boards`, on `ports[first]` until a
/// call fails, then on the next board-service; a call whose outcome is
/// unknown is not retried (the database is the truth either way).
async fn writer(
    ports: Vec<u16>,
    first: usize,
    boards: Vec<(String, Vec<String>)>,
    stop: Arc<AtomicBool>,
) -> usize {
    let mut at = first;
    let mut client = wait_for_grpc(ports[at]).await;
    let mut mine: Vec<(usize, String)> = Vec::new();
    let mut ok = 0;
    let mut n = 0usize;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let b = n % boards.len();
        let (board, lanes) = &boards[b];
        let result = if n.is_multiple_of(3) && !mine.is_empty() {
            let (b, task) = &mine[n % mine.len()];
            let lanes = &boards[*b].1;
            client
                .move_task(MoveTaskRequest {
                    task_id: task.clone(),
                    to_lane_id: lanes[n % lanes.len()].clone(),
                    ..Default::default()
                })
                .await
                .map(|_| ())
        } else {
            client
                .create_task(CreateTaskRequest {
                    board_id: board.clone(),
                    lane_id: lanes[n % lanes.len()].clone(),
                    title: format!("w{first} #{n}"),
                    ..Default::default()
                })
                .await
                .map(|task| mine.push((b, task.into_inner().id)))
        };
        match result {
            Ok(()) => ok += 1,
            Err(_) => {
                at += 1;
                let port = ports[at % ports.len()];
                if let Ok(c) = BoardServiceClient::connect(format!("http://127.0.0.1:{port}")).await
                {
                    client = c;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    ok
}

/// Waits until no chat run is in flight, then names each session's last
/// run to its tabs and returns each session's answers: the assistant
/// messages of its completed runs, in order.
async fn chat_runs_settled(
    pool: &sqlx::PgPool,
    last_runs: &[(String, watch::Sender<Option<String>>)],
    failed: &impl Fn(&str) -> String,
) -> BTreeMap<String, Vec<String>> {
    let deadline = Instant::now() + SETTLE;
    loop {
        let running: i64 =
            sqlx::query_scalar("SELECT count(*) FROM chat_runs WHERE status = 'running'")
                .fetch_one(pool)
                .await
                .expect("count running runs");
        if running == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{}",
            failed("chat runs never ended")
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut answers = BTreeMap::new();
    for (session, last_run) in last_runs {
        let last: Option<uuid::Uuid> = sqlx::query_scalar(
            "SELECT id FROM chat_runs WHERE session_id = $1 ORDER BY started_at DESC LIMIT 1",
        )
        .bind(session)
        .fetch_optional(pool)
        .await
        .expect("the last run");
        let contents: Vec<String> = sqlx::query_scalar(
            "SELECT m.content FROM chat_messages m JOIN chat_runs r ON r.id = m.run_id
             WHERE m.session_id = $1 AND m.role = 'assistant' AND r.status = 'completed'
             ORDER BY m.position",
        )
        .bind(session)
        .fetch_all(pool)
        .await
        .expect("the session's answers");
        last_run.send_replace(last.map(|id| id.to_string()));
        answers.insert(session.clone(), contents);
    }
    answers
}

async fn gateway_metric(port: u16, name: &str) -> f64 {
    let scrape =
        service_kit::testing::scrape_metrics(&format!("http://127.0.0.1:{port}/metrics")).await;
    service_kit::testing::metric_value(&scrape, name, &[])
}

/// Stops `nats` for longer than the gateways' grace before they fall back
/// to WatchBoard and WatchChannel, then starts it again on its port.
async fn restart(nats: LocalNats) -> LocalNats {
    let stopped = tokio::task::spawn_blocking(move || nats.stop())
        .await
        .expect("stop nats-server");
    tokio::time::sleep(Duration::from_secs(5)).await;
    tokio::task::spawn_blocking(move || stopped.start())
        .await
        .expect("join")
        .unwrap_or_else(|e| panic!("restart nats-server: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_equal_the_database_after_kill_9_and_a_nats_restart() {
    service_binaries::build();

    let logs = tempfile::Builder::new()
        .prefix("boardwire-scale-")
        .tempdir()
        .expect("a log folder")
        // Removed at the end of a passing run; a failure names it.
        .keep();
    let db = TestDatabase::create().await;
    // Always a private server: the test restarts it.
    let nats = LocalNats::start_throwaway().unwrap_or_else(|e| panic!("{e}"));
    let nats_url = nats.url();

    let bs_ports = [free_port(), free_port()];
    let mut board_services: Vec<Service> = bs_ports
        .iter()
        .enumerate()
        .map(|(i, port)| {
            Service::new(
                &format!("board-service-{i}"),
                "board-service",
                vec![
                    ("BOARD_SERVICE_ADDR", format!("127.0.0.1:{port}")),
                    ("BOARD_SERVICE_METRICS_ADDR", "off".into()),
                    ("DATABASE_URL", db.url().to_owned()),
                    ("NATS_URL", nats_url.clone()),
                ],
                logs.as_path(),
            )
        })
        .collect();
    for service in &mut board_services {
        service.start();
    }
    let mut api = wait_for_grpc(bs_ports[1]).await;
    wait_for_grpc(bs_ports[0]).await;

    let gw_ports = [free_port(), free_port(), free_port()];
    let mut gateways: Vec<Service> = gw_ports
        .iter()
        .enumerate()
        .map(|(i, port)| {
            Service::new(
                &format!("ws-gateway-{i}"),
                "ws-gateway",
                vec![
                    ("WS_GATEWAY_ADDR", format!("127.0.0.1:{port}")),
                    (
                        "BOARD_SERVICE_URL",
                        format!("http://127.0.0.1:{}", bs_ports[i % 2]),
                    ),
                    ("NATS_URL", nats_url.clone()),
                    // The killed gateway's members leave within the test.
                    ("PRESENCE_LEASE_MS", "3000".into()),
                ],
                logs.as_path(),
            )
        })
        .collect();
    for gateway in &mut gateways {
        gateway.start();
    }
    let bridge_ports = [free_port(), free_port()];
    let mut bridges: Vec<Service> = bridge_ports
        .iter()
        .enumerate()
        .map(|(i, port)| {
            Service::new(
                &format!("agent-bridge-{i}"),
                "agent-bridge",
                vec![
                    ("AGENT_BRIDGE_ADDR", format!("127.0.0.1:{port}")),
                    ("DATABASE_URL", db.url().to_owned()),
                    (
                        "BOARD_SERVICE_URL",
                        format!("http://127.0.0.1:{}", bs_ports[i % 2]),
                    ),
                    ("NATS_URL", nats_url.clone()),
                    ("BUILTIN_TOKEN_DELAY_MS", "10".into()),
                    // Runs of the killed bridge are reaped within a second.
                    ("CHAT_RUN_LEASE_MS", "1000".into()),
                ],
                logs.as_path(),
            )
        })
        .collect();
    for bridge in &mut bridges {
        bridge.start();
    }
    for port in gw_ports.into_iter().chain(bridge_ports) {
        wait_for_http(port).await;
    }
    let failed = |what: &str| format!("{what}; service logs in {}", logs.as_path().display());

    let mut boards = Vec::new();
    for i in 0..BOARDS {
        let board = api
            .create_board(CreateBoardRequest {
                name: format!("Scale {i}"),
                slug: Some(format!("scale-{i}")),
                ..Default::default()
            })
            .await
            .expect("create board")
            .into_inner();
        boards.push((board.id, board.lanes.into_iter().map(|l| l.id).collect()));
    }

    let (targets, target_rx) = watch::channel(BTreeMap::new());
    let mut readers = Vec::new();
    for (board, _) in &boards {
        for gateway in 0..gw_ports.len() {
            for _ in 0..READERS_PER_BOARD_AND_GATEWAY {
                readers.push(tokio::spawn(reader(
                    board.clone(),
                    gw_ports.to_vec(),
                    gateway,
                    target_rx.clone(),
                )));
            }
        }
    }
    let stop = Arc::new(AtomicBool::new(false));
    let mut last_runs = Vec::new();
    let mut tabs = Vec::new();
    for s in 0..SESSIONS {
        let session = format!("scale-chat-{s}");
        let (last_run, last_run_rx) = watch::channel(None);
        last_runs.push((session.clone(), last_run));
        for (first, talks) in [(s % 2, true), (0, false), (1, false)] {
            tabs.push(tokio::spawn(chat::tab(
                session.clone(),
                boards[s % BOARDS].0.clone(),
                bridge_ports.to_vec(),
                first,
                chat::Role {
                    talks_until: talks.then(|| stop.clone()),
                    last_run: last_run_rx.clone(),
                },
            )));
        }
    }
    // Every reader holds its board.sync before the first write.
    tokio::time::sleep(Duration::from_secs(1)).await;

    let writers: Vec<_> = (0..2)
        .map(|first| {
            tokio::spawn(writer(
                bs_ports.to_vec(),
                first,
                boards.clone(),
                stop.clone(),
            ))
        })
        .collect();

    tokio::time::sleep(Duration::from_secs(2)).await;
    gateways[2].kill();
    tokio::time::sleep(Duration::from_secs(2)).await;
    bridges[1].kill();
    tokio::time::sleep(Duration::from_secs(2)).await;
    bridges[1].start();
    board_services[0].kill();
    tokio::time::sleep(Duration::from_secs(2)).await;
    board_services[0].start();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let nats = restart(nats).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::Relaxed);
    let mut written = 0;
    for writer in writers {
        written += writer.await.expect("writer");
    }
    assert!(
        written > 100,
        "{}",
        failed(&format!("only {written} writes"))
    );
    // Chat runs write the boards too: the truth is read once none is left.
    let pool = sqlx::PgPool::connect(db.url()).await.expect("connect");
    let chats = chat_runs_settled(&pool, &last_runs, &failed).await;

    // The database, read through the board-service that never died.
    let mut truth = BTreeMap::new();
    let mut versions = BTreeMap::new();
    for (board, _) in &boards {
        let snapshot = api
            .get_board(GetBoardRequest {
                board_id: board.clone(),
            })
            .await
            .expect("get board")
            .into_inner();
        let state: BoardState = snapshot
            .tasks
            .iter()
            .map(|t| entry(&TaskData::from(t)))
            .collect();
        versions.insert(board.clone(), snapshot.version);
        truth.insert(board.clone(), state);
    }
    targets.send_replace(versions.clone());

    let deadline = Instant::now() + SETTLE;
    let mut reconnects = 0;
    for reader in readers {
        let left = deadline.saturating_duration_since(Instant::now());
        let end = tokio::time::timeout(left, reader)
            .await
            .unwrap_or_else(|_| panic!("{}", failed("a reader never caught up")))
            .expect("reader");
        assert_eq!(end.version, versions[&end.board]);
        assert!(
            end.state == truth[&end.board],
            "{}",
            failed(&format!(
                "a reader's board {} differs from the database",
                end.board
            ))
        );
        reconnects += end.reconnects;
    }
    let mut tab_reconnects = 0;
    for tab in tabs {
        let left = deadline.saturating_duration_since(Instant::now());
        let end = tokio::time::timeout(left + SETTLE, tab)
            .await
            .unwrap_or_else(|_| panic!("{}", failed("a chat tab hung")))
            .expect("tab");
        if let Some(missed) = &end.missed {
            panic!(
                "{}",
                failed(&format!(
                    "a tab of {} never saw the end of {missed}",
                    end.session
                ))
            );
        }
        let answers = &chats[&end.session];
        assert!(
            end.transcript == *answers,
            "{}",
            failed(&format!(
                "tab of {} saw {:?}, the database holds {answers:?}",
                end.session, end.transcript
            ))
        );
        assert!(end.runs_ended > 0);
        tab_reconnects += end.reconnects;
    }
    let answered: usize = chats.values().map(Vec::len).sum();
    eprintln!(
        "scale-out: {written} writes, board versions {versions:?}, {reconnects} reader reconnects; \
         {answered} chat answers over {SESSIONS} sessions, {tab_reconnects} tab reconnects"
    );
    assert!(
        answered >= SESSIONS,
        "{}",
        failed("the chat answered almost nothing")
    );
    assert!(
        reconnects >= READERS_PER_BOARD_AND_GATEWAY * BOARDS,
        "the readers of the killed gateway moved to another one"
    );
    // The live gateways were fed from JetStream, not only from WatchBoard.
    for port in &gw_ports[..2] {
        assert!(
            gateway_metric(*port, "ws_gateway_jetstream_events_total").await > 0.0,
            "{}",
            failed("no JetStream feed")
        );
    }

    // Channels and presence, through faults of their own: the gateway
    // killed above comes back, then dies again, a board-service dies and
    // NATS restarts while a channel is published to through both.
    gateways[2].start();
    wait_for_http(gw_ports[2]).await;
    let (channel_head, channel_head_rx) = watch::channel(None);
    let subscribers: Vec<_> = (0..2 * gw_ports.len())
        .map(|i| {
            tokio::spawn(fabric::subscriber(
                gw_ports.to_vec(),
                i,
                channel_head_rx.clone(),
            ))
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let stop_publishing = Arc::new(AtomicBool::new(false));
    let publisher = tokio::spawn(fabric::publisher(
        bs_ports.to_vec(),
        bs_ports[1],
        stop_publishing.clone(),
    ));
    tokio::time::sleep(Duration::from_secs(2)).await;
    gateways[2].kill();
    tokio::time::sleep(Duration::from_secs(2)).await;
    board_services[0].kill();
    tokio::time::sleep(Duration::from_secs(1)).await;
    board_services[0].start();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let nats = restart(nats).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop_publishing.store(true, Ordering::Relaxed);
    let head = publisher.await.expect("publisher");
    channel_head.send_replace(Some(head));
    let mut subscriber_reconnects = 0;
    for subscriber in subscribers {
        let end = tokio::time::timeout(SETTLE, subscriber)
            .await
            .unwrap_or_else(|_| panic!("{}", failed("a channel subscriber hung")))
            .expect("subscriber");
        if let Some(broken) = end.broken {
            panic!("{}", failed(&format!("a channel subscriber: {broken}")));
        }
        assert_eq!(end.last, head, "{}", failed("a subscriber stopped short"));
        subscriber_reconnects += end.reconnects;
    }
    eprintln!(
        "scale-out: channel head {head}, {subscriber_reconnects} channel subscriber reconnects"
    );
    assert!(head > 50, "{}", failed("the channel publisher barely ran"));
    for port in &gw_ports[..2] {
        assert!(
            gateway_metric(*port, "ws_gateway_channel_nats_publications_total").await > 0.0,
            "{}",
            failed("no channel publication came over NATS")
        );
    }
    if let Err(why) =
        fabric::presence_agrees(&gw_ports[..2], &boards[0].0, Duration::from_secs(30)).await
    {
        panic!("{}", failed(&format!("presence over NATS: {why}")));
    }
    drop(nats);
    let _ = std::fs::remove_dir_all(&logs);
}
