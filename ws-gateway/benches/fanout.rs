//! Fan-out benchmark: C WebSocket clients subscribed to one board, E task
//! creations per second through board-service, the gateway in its own
//! process so its RSS and CPU can be read from /proc.
//!
//! `cargo bench -p ws-gateway --bench fanout` (release build). Environment:
//! `FANOUT_CLIENTS` (default `1000,10000`), `FANOUT_FRAMES_PER_SEC` (target
//! deliveries per second, default 20000: E = that / C), `FANOUT_SECS`
//! (load duration, default 10), `FANOUT_SOURCES` (127.0.0.x client source
//! addresses, default 4), `DATABASE_URL` (else a private PostgreSQL).
//! Loopback only.

use std::{
    net::{Ipv4Addr, SocketAddr},
    process::{Child, Command, Stdio},
    sync::{Arc, OnceLock},
    time::{Duration, Instant},
};

use futures::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use protocol::v1::{
    CreateBoardRequest, CreateTaskRequest, board_service_client::BoardServiceClient,
};
use tokio::{net::TcpSocket, sync::watch};
use tokio_tungstenite::tungstenite::{Message, protocol::WebSocketConfig};

static BASE: OnceLock<Instant> = OnceLock::new();

fn now_ns() -> u64 {
    BASE.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A field of /proc/<pid>/status in kB.
fn status_kb(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| {
            l.strip_prefix(field)?
                .trim()
                .strip_suffix("kB")?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

/// User + system CPU seconds of a process.
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = fields.get(11..13).map_or(0.0, |f| {
        f.iter().filter_map(|v| v.parse::<f64>().ok()).sum()
    });
    ticks / 100.0
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Gateway {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start_gateway(board_service: SocketAddr) -> Gateway {
    let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let child = Command::new(env!("CARGO_BIN_EXE_ws-gateway"))
        .env("WS_GATEWAY_ADDR", addr.to_string())
        .env("BOARD_SERVICE_URL", format!("http://{board_service}"))
        .env("WS_MAX_CONNECTS_PER_IP_PER_MIN", "1000000")
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn the ws-gateway binary");
    let gateway = Gateway { child, addr };
    for _ in 0..200 {
        if reqwest::get(format!("http://{addr}/health"))
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return gateway;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("ws-gateway did not become healthy");
}

/// One subscribed client; records (sequence, receive time) per task frame.
async fn client(
    addr: SocketAddr,
    source: Ipv4Addr,
    ready: tokio::sync::mpsc::Sender<()>,
    mut stop: watch::Receiver<bool>,
) -> Vec<(u32, u64)> {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::from((source, 0))).unwrap();
    let tcp = socket.connect(addr).await.expect("connect");
    tcp.set_nodelay(true).unwrap();
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0);
    let (mut ws, _) =
        tokio_tungstenite::client_async_with_config(format!("ws://{addr}/ws"), tcp, Some(config))
            .await
            .expect("handshake");
    ws.send(Message::text(r#"{"type":"subscribe","boardId":"bench"}"#))
        .await
        .unwrap();
    let mut seen = Vec::new();
    let mut synced = false;
    loop {
        let message = tokio::select! {
            m = ws.next() => m,
            _ = stop.changed() => break,
        };
        let Some(Ok(Message::Text(text))) = message else {
            if matches!(message, None | Some(Err(_))) {
                break;
            }
            continue;
        };
        let at = now_ns();
        if !synced && text.contains("\"board.sync\"") {
            synced = true;
            let _ = ready.send(()).await;
        } else if let Some(rest) = text.split_once("\"title\":\"e").map(|(_, r)| r) {
            let seq = rest
                .split('"')
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or(u32::MAX);
            seen.push((seq, at));
        }
    }
    seen
}

async fn run(
    clients: usize,
    frames_per_sec: u64,
    secs: u64,
    sources: u8,
    board_service: SocketAddr,
) {
    let rate = (frames_per_sec / clients as u64).max(1);
    let total = (rate * secs) as usize;
    let gateway = start_gateway(board_service).await;
    let pid = gateway.child.id();
    let rss_start = status_kb(pid, "VmRSS:");

    let (stop_tx, stop_rx) = watch::channel(false);
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel(clients);
    let mut handles = Vec::with_capacity(clients);
    let connect_started = Instant::now();
    let warmup = clients.min(100);
    let mut rss_warm = rss_start;
    for i in 0..clients {
        if i == warmup {
            for _ in 0..warmup {
                ready_rx.recv().await.expect("warm-up client synced");
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
            rss_warm = status_kb(pid, "VmRSS:");
        }
        let source = Ipv4Addr::new(127, 0, 0, 1 + (i % usize::from(sources)) as u8);
        handles.push(tokio::spawn(client(
            gateway.addr,
            source,
            ready_tx.clone(),
            stop_rx.clone(),
        )));
        if i % 200 == 199 {
            tokio::task::yield_now().await;
        }
    }
    let remaining = clients - warmup;
    let synced = tokio::time::timeout(Duration::from_secs(120), async {
        for _ in 0..remaining {
            ready_rx.recv().await;
        }
    })
    .await;
    assert!(synced.is_ok(), "all clients subscribed within 120 s");
    let connect_secs = connect_started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_idle = status_kb(pid, "VmRSS:");
    let per_conn = if remaining > 0 {
        (rss_idle.saturating_sub(rss_warm)) as f64 * 1024.0 / remaining as f64
    } else {
        0.0
    };

    // Load: `rate` creations per second for `secs`, paced by an interval.
    let mut api = BoardServiceClient::connect(format!("http://{board_service}"))
        .await
        .unwrap();
    let commits: Arc<Vec<std::sync::atomic::AtomicU64>> =
        Arc::new((0..total).map(|_| Default::default()).collect());
    let cpu_before = cpu_secs(pid);
    let load_started = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_nanos(1_000_000_000 / rate));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    for seq in 0..total {
        tick.tick().await;
        api.create_task(CreateTaskRequest {
            board_id: "bench".into(),
            lane_id: "todo".into(),
            title: format!("e{seq}"),
            ..Default::default()
        })
        .await
        .expect("create task");
        commits[seq].store(now_ns(), std::sync::atomic::Ordering::Relaxed);
    }
    // Drain: wait (bounded) until the gateway has nothing queued.
    let drain_deadline = Instant::now() + Duration::from_secs(30);
    let expected = (total * clients) as u64;
    loop {
        let metrics = reqwest::get(format!("http://{}/metrics", gateway.addr))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let queued = metrics
            .lines()
            .find_map(|l| {
                l.strip_prefix("ws_gateway_client_queue_frames ")?
                    .parse::<u64>()
                    .ok()
            })
            .unwrap_or(0);
        let sent = metrics
            .lines()
            .find_map(|l| {
                l.strip_prefix("ws_gateway_frames_queued_total ")?
                    .parse::<u64>()
                    .ok()
            })
            .unwrap_or(0);
        if (queued == 0 && sent >= expected) || Instant::now() > drain_deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let cpu = cpu_secs(pid) - cpu_before;
    let _ = stop_tx.send(true);

    let mut latency = Histogram::<u64>::new(3).unwrap();
    let (mut delivered, mut last_at) = (0u64, 0u64);
    let started_ns = now_ns() - load_started.elapsed().as_nanos() as u64;
    for handle in handles {
        for (seq, at) in handle.await.unwrap() {
            let Some(commit) = commits
                .get(seq as usize)
                .map(|c| c.load(std::sync::atomic::Ordering::Relaxed))
            else {
                continue;
            };
            delivered += 1;
            last_at = last_at.max(at);
            latency
                .record(at.saturating_sub(commit).max(1) / 1_000)
                .unwrap();
        }
    }
    let window = (last_at.saturating_sub(started_ns)) as f64 / 1e9;
    let rss_loaded = status_kb(pid, "VmRSS:");
    println!(
        "C={clients:>6}  E={rate}/s x {secs}s  sources={sources}  connect+subscribe {connect_secs:.1}s\n  \
         delivered {delivered}/{expected} frames, {:.0} frames/s\n  \
         commit->client latency (from CreateTask return, us): p50 {} p99 {} max {}\n  \
         gateway CPU {cpu:.2}s = {:.2} us per delivered frame\n  \
         gateway RSS: start {rss_start} kB, {warmup} warm {rss_warm} kB, idle with all {rss_idle} kB, after load {rss_loaded} kB \
         => {per_conn:.0} bytes per idle connection",
        delivered as f64 / window.max(1e-9),
        latency.value_at_quantile(0.5),
        latency.value_at_quantile(0.99),
        latency.max(),
        cpu * 1e6 / delivered.max(1) as f64,
    );
}

#[tokio::main]
async fn main() {
    now_ns();
    let clients: Vec<usize> = std::env::var("FANOUT_CLIENTS")
        .unwrap_or_else(|_| "1000,10000".into())
        .split(',')
        .filter_map(|c| c.trim().parse().ok())
        .collect();
    let frames_per_sec = env_or("FANOUT_FRAMES_PER_SEC", 20_000u64);
    let secs = env_or("FANOUT_SECS", 10u64);
    let sources = env_or("FANOUT_SOURCES", 4u8).max(1);

    let db = service_kit::test_database::TestDatabase::create().await;
    let mut config = board_service::Config::new(db.url());
    config.listen_addr = "127.0.0.1:0".parse().unwrap();
    let app = board_service::App::build(config)
        .await
        .expect("board-service");
    let board_service = app.local_addr();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let service = tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));
    let mut api = BoardServiceClient::connect(format!("http://{board_service}"))
        .await
        .unwrap();
    api.create_board(CreateBoardRequest {
        name: "bench".into(),
        slug: Some("bench".into()),
        ..Default::default()
    })
    .await
    .unwrap();

    for c in clients {
        run(c, frames_per_sec, secs, sources, board_service).await;
    }
    let _ = stop.send(());
    let _ = service.await;
}
