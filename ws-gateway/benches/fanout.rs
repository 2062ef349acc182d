//! Fan-out benchmark: what a ws-gateway process spends per delivered frame.
//!
//! `cargo bench -p ws-gateway --bench fanout` (release build). Three
//! processes, so that each one's CPU is its own:
//! - this one runs ws-gateway, as its standalone binary does, and reads its
//!   own CPU time (user + system, every thread: `getrusage(RUSAGE_SELF)`)
//!   over the measured window;
//! - a child runs board-service on a fresh database (`DATABASE_URL`, else a
//!   private PostgreSQL);
//! - a child runs the clients: C subscribers on one board, speaking raw
//!   RFC 6455 over loopback sockets, and one publisher that sends
//!   `task.update` at E/s for S s with the send time in the title. A frame
//!   counts as delivered when a subscriber has read it.
//!
//! The window runs from the first send until every frame has arrived (or
//! 20 s after the last send). Printed per load: µs of gateway CPU per
//! delivered frame, send→receive latency p50/p99, deliveries per second,
//! and the gateway's RSS per subscribed socket (grown from before the
//! clients connected to when they are all subscribed).
//!
//! Environment: `FANOUT_LOADS` (C×E pairs, default `1000x20,10000x2`),
//! `FANOUT_SECS` (default 10), `FANOUT_SOURCES` (client source addresses
//! 127.0.0.1..K, default 1; raise it past ~28k connections). The clients
//! share the machine's cores with the gateway, so compare figures taken in
//! one run, not across machines.

use std::{
    net::{Ipv4Addr, SocketAddr},
    process::Stdio,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering::Relaxed},
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use futures::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use nix::sys::resource::{UsageWho, getrusage};
use protocol::v1::{CreateBoardRequest, board_service_client::BoardServiceClient};
use serde_json::{Value, json};
use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader},
    net::TcpSocket,
    process::Command,
};
use tokio_tungstenite::tungstenite::Message;

const ROLE: &str = "FANOUT_ROLE";
const BOARD: &str = "bench";
const DRAIN: Duration = Duration::from_secs(20);
const SHARDS: usize = 16;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn unix_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

/// This process's resident memory in kB.
fn rss_kb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| {
            l.strip_prefix("VmRSS:")?
                .trim()
                .strip_suffix("kB")?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

/// This process's CPU time so far, every thread, in seconds.
fn cpu_secs() -> f64 {
    let usage = getrusage(UsageWho::RUSAGE_SELF).expect("getrusage");
    let secs = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 + t.tv_usec() as f64 / 1e6;
    secs(usage.user_time()) + secs(usage.system_time())
}

fn main() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    match std::env::var(ROLE).as_deref() {
        Ok("board-service") => runtime.block_on(board_service_role()),
        Ok("clients") => runtime.block_on(clients_role()),
        _ => runtime.block_on(gateway_role()),
    }
}

/// Serves board-service with one board until stdin closes; prints its address.
async fn board_service_role() {
    let db = service_kit::test_database::TestDatabase::create().await;
    let mut config = board_service::Config::new(db.url());
    config.listen_addr = "127.0.0.1:0".parse().unwrap();
    let app = board_service::App::build(config)
        .await
        .expect("board-service");
    let addr = app.local_addr();
    let service = tokio::spawn(app.run_until_stopped(async {
        let _ = tokio::io::stdin().read_to_end(&mut Vec::new()).await;
    }));
    let mut api = BoardServiceClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    api.create_board(CreateBoardRequest {
        name: BOARD.into(),
        slug: Some(BOARD.into()),
        ..Default::default()
    })
    .await
    .unwrap();
    println!("{addr}");
    let _ = service.await;
    drop(db);
}

fn spawn_self(role: &str) -> Command {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .env(ROLE, role)
        .env("RUST_LOG", "error")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    command
}

async fn gateway_role() {
    let loads: Vec<(usize, u64)> = std::env::var("FANOUT_LOADS")
        .unwrap_or_else(|_| "1000x20,10000x2".into())
        .split(',')
        .filter_map(|l| {
            let (c, e) = l.trim().split_once('x')?;
            Some((c.parse().ok()?, e.parse().ok()?))
        })
        .collect();
    let secs = env_or("FANOUT_SECS", 10u64);
    let sources = env_or("FANOUT_SOURCES", 1u8).max(1);

    let mut board_service = spawn_self("board-service").spawn().unwrap();
    let mut lines = BufReader::new(board_service.stdout.take().unwrap()).lines();
    let board_service_addr = lines
        .next_line()
        .await
        .unwrap()
        .expect("board-service address");

    for (clients, rate) in loads {
        let mut config = ws_gateway::Config::new(format!("http://{board_service_addr}"));
        config.max_connects_per_ip_per_min = u32::MAX;
        config.max_messages_per_sec = 100_000;
        let app = ws_gateway::App::build(config).await.expect("ws-gateway");
        let addr = app.local_addr();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let gateway = tokio::spawn(app.run_until_stopped(async {
            let _ = stopped.await;
        }));

        let mut child = spawn_self("clients")
            .env("FANOUT_ADDR", addr.to_string())
            .env("FANOUT_CLIENTS", clients.to_string())
            .env("FANOUT_RATE", rate.to_string())
            .env("FANOUT_SECS", secs.to_string())
            .env("FANOUT_SOURCES", sources.to_string())
            .spawn()
            .unwrap();
        let mut marks = BufReader::new(child.stdout.take().unwrap()).lines();
        let (mut cpu_start, mut cpu) = (0.0, 0.0);
        let (rss_before, mut rss_connected) = (rss_kb(), 0);
        let mut result = Value::Null;
        while let Some(line) = marks.next_line().await.unwrap() {
            match line.as_str() {
                "start" => {
                    cpu_start = cpu_secs();
                    rss_connected = rss_kb();
                }
                "end" => cpu = cpu_secs() - cpu_start,
                json => {
                    result = serde_json::from_str(json).expect("the clients' result");
                    break;
                }
            }
        }
        let _ = child.wait().await;
        let delivered = result["delivered"].as_u64().unwrap_or(0);
        println!(
            "C={clients} E={rate}/s S={secs}s: {:.2} us gateway CPU per delivery; \
             p50 {:.2} ms, p99 {:.2} ms send->receive; {delivered}/{} delivered, {:.0}/s; \
             clients used {:.0}% of a core; gateway RSS {:.1} KB per subscribed socket",
            cpu * 1e6 / delivered.max(1) as f64,
            result["p50_us"].as_f64().unwrap_or(f64::NAN) / 1e3,
            result["p99_us"].as_f64().unwrap_or(f64::NAN) / 1e3,
            result["expected"],
            result["delivered_per_s"].as_f64().unwrap_or(0.0),
            result["client_cpu_pct"].as_f64().unwrap_or(0.0),
            rss_connected.saturating_sub(rss_before) as f64 / clients as f64,
        );
        let _ = stop.send(());
        let _ = gateway.await;
    }
    drop(board_service.stdin.take());
    let _ = board_service.wait().await;
}

/// What the subscribers saw.
struct Seen {
    delivered: AtomicU64,
    latency_us: Vec<Mutex<Histogram<u64>>>,
}

async fn clients_role() {
    let addr: SocketAddr = std::env::var("FANOUT_ADDR").unwrap().parse().unwrap();
    let clients: usize = env_or("FANOUT_CLIENTS", 1000);
    let rate: u64 = env_or("FANOUT_RATE", 20);
    let secs: u64 = env_or("FANOUT_SECS", 10);
    let sources: u8 = env_or("FANOUT_SOURCES", 1);
    let seen = Arc::new(Seen {
        delivered: AtomicU64::new(0),
        latency_us: (0..SHARDS)
            .map(|_| Mutex::new(Histogram::new_with_bounds(1, 600_000_000, 3).unwrap()))
            .collect(),
    });
    let (ready, mut synced) = tokio::sync::mpsc::channel(clients);
    let gate = Arc::new(tokio::sync::Semaphore::new(250));
    for i in 0..clients {
        let source = Ipv4Addr::new(127, 0, 0, 1 + (i % usize::from(sources)) as u8);
        let (seen, ready, gate) = (seen.clone(), ready.clone(), gate.clone());
        tokio::spawn(async move {
            let permit = gate.acquire_owned().await.unwrap();
            subscriber(addr, source, i % SHARDS, seen, ready, permit).await
        });
    }
    for n in 0..clients {
        let got = tokio::time::timeout(Duration::from_secs(60), synced.recv()).await;
        assert!(
            matches!(got, Ok(Some(()))),
            "only {n} of {clients} subscribers got board.sync within a minute of the last"
        );
    }

    // The publisher has a thread and runtime of its own, so its send clock
    // is not held up by the subscribers.
    let publisher = std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(publish(addr, rate, secs))
    });
    let (cpu_start, started) = (cpu_secs(), Instant::now());
    println!("start");
    let sent = publisher.join().unwrap();
    let expected = sent * clients as u64;
    let deadline = Instant::now() + DRAIN;
    while seen.delivered.load(Relaxed) < expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    println!("end");
    let window = started.elapsed().as_secs_f64();
    let mut latency = Histogram::<u64>::new_with_bounds(1, 600_000_000, 3).unwrap();
    for shard in &seen.latency_us {
        latency.add(&*shard.lock().unwrap()).unwrap();
    }
    let delivered = seen.delivered.load(Relaxed);
    println!(
        "{}",
        json!({
            "expected": expected,
            "delivered": delivered,
            "delivered_per_s": delivered as f64 / window,
            "p50_us": latency.value_at_quantile(0.5),
            "p99_us": latency.value_at_quantile(0.99),
            "client_cpu_pct": (cpu_secs() - cpu_start) * 100.0 / window,
        })
    );
    std::process::exit(0);
}

/// Sends one `task.create`, then `task.update` at `rate`/s for `secs`;
/// returns the updates sent.
async fn publish(addr: SocketAddr, rate: u64, secs: u64) -> u64 {
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws"))
        .await
        .expect("publisher connects");
    // Command ids are idempotency keys: unique per run, or a later load's
    // commands would be answered from an earlier one's.
    let run = unix_ns();
    let create = json!({"type": "task.create", "id": format!("seed-{run}"), "boardId": BOARD,
        "data": {"title": "seed", "lane": "todo"}});
    ws.send(Message::text(create.to_string())).await.unwrap();
    let task_id = loop {
        let message = ws.next().await.expect("an ack for task.create");
        let Ok(Message::Text(text)) = message else {
            continue;
        };
        let frame: Value = serde_json::from_str(&text).unwrap();
        if frame["type"] == "ack" && frame["id"] == format!("seed-{run}").as_str() {
            break frame["result"]["id"]
                .as_str()
                .expect("the task's id")
                .to_owned();
        }
    };
    // Acks are read (and dropped) beside the sends, so they never back up.
    let (mut sink, mut stream) = ws.split();
    tokio::spawn(async move { while let Some(Ok(_)) = stream.next().await {} });
    let mut tick = tokio::time::interval(Duration::from_nanos(1_000_000_000 / rate.max(1)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let total = rate * secs;
    for seq in 0..total {
        tick.tick().await;
        let update = json!({"type": "task.update", "id": format!("u{run}-{seq}"), "boardId": BOARD,
            "data": {"id": task_id, "changes": {"title": format!("bench:{}", unix_ns())}}});
        sink.send(Message::text(update.to_string())).await.unwrap();
    }
    total
}

/// A masked client frame (RFC 6455 §5.3); the all-zero key leaves the
/// payload as it is.
fn client_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut frame = vec![0x80 | opcode];
    match payload.len() {
        n if n < 126 => frame.push(0x80 | n as u8),
        n => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(n as u16).to_be_bytes());
        }
    }
    frame.extend_from_slice(&[0; 4]);
    frame.extend_from_slice(payload);
    frame
}

/// One subscriber: a raw WebSocket that reads what it is sent, answers
/// pings, and records the latency of every stamped frame.
async fn subscriber(
    addr: SocketAddr,
    source: Ipv4Addr,
    shard: usize,
    seen: Arc<Seen>,
    ready: tokio::sync::mpsc::Sender<()>,
    permit: tokio::sync::OwnedSemaphorePermit,
) {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::from((source, 0))).unwrap();
    let mut tcp = socket.connect(addr).await.expect("connect");
    tcp.set_nodelay(true).unwrap();
    let request = format!(
        "GET /ws HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    );
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut buf = Vec::with_capacity(4096);
    let body = loop {
        assert!(
            tcp.read_buf(&mut buf).await.unwrap() > 0,
            "upgrade answered"
        );
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
    };
    buf.drain(..body);
    let subscribe = json!({"type": "subscribe", "boardId": BOARD}).to_string();
    tcp.write_all(&client_frame(0x1, subscribe.as_bytes()))
        .await
        .unwrap();
    let mut permit = Some(permit);
    loop {
        let mut at = 0;
        while buf.len() >= at + 2 {
            let (opcode, short) = (buf[at] & 0x0f, usize::from(buf[at + 1] & 0x7f));
            let (len, start) = match short {
                126 if buf.len() >= at + 4 => (
                    usize::from(u16::from_be_bytes([buf[at + 2], buf[at + 3]])),
                    at + 4,
                ),
                127 if buf.len() >= at + 10 => (
                    u64::from_be_bytes(buf[at + 2..at + 10].try_into().unwrap()) as usize,
                    at + 10,
                ),
                126 | 127 => break,
                n => (n, at + 2),
            };
            if buf.len() < start + len {
                break;
            }
            let payload = &buf[start..start + len];
            match opcode {
                0x1 => {
                    // A board.sync may hold earlier runs' stamps: only
                    // task.updated frames count.
                    let updated = payload.starts_with(br#"{"type":"task.updated""#);
                    let stamp = payload.windows(6).position(|w| w == b"bench:");
                    if let (true, Some(stamp)) = (updated, stamp) {
                        let digits = payload[stamp + 6..]
                            .iter()
                            .take_while(|b| b.is_ascii_digit());
                        let sent = digits.fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
                        let now = unix_ns();
                        let _ = seen.latency_us[shard]
                            .lock()
                            .unwrap()
                            .record((now.saturating_sub(sent) / 1000).max(1));
                        seen.delivered.fetch_add(1, Relaxed);
                    } else if permit.is_some() && payload.starts_with(br#"{"type":"board.sync""#) {
                        permit = None;
                        let _ = ready.send(()).await;
                    }
                }
                0x9 => {
                    let pong = client_frame(0xA, payload);
                    tcp.write_all(&pong).await.unwrap();
                }
                0x8 => return,
                _ => {}
            }
            at = start + len;
        }
        buf.drain(..at);
        if tcp.read_buf(&mut buf).await.unwrap_or(0) == 0 {
            return;
        }
    }
}
