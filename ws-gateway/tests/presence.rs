//! Presence over real gateway processes (the `ws-gateway` binary) sharing
//! one board-service, or with `NATS_URL` one nats-server: members on one
//! gateway are seen on the other, one person's tabs are one entry, a
//! gateway killed with SIGKILL loses its members when its lease runs out,
//! and a big board sends counts only. Over NATS, PostgreSQL holds no
//! presence and a NATS restart loses no member.

mod common;

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use common::{Running, WAIT, Ws, connect_api, start_board_service_with};
use protocol::v1::{Board, CreateBoardRequest};
use serde_json::{Value, json};
use service_kit::{
    auth::{AuthConfig, insert_bearer},
    local_nats,
    test_database::TestDatabase,
    testing::{sign_token, unix_now},
};

const SECRET: &str = "presence-secret";

/// A `ws-gateway` binary running as a child process.
struct Gateway {
    child: Child,
    addr: SocketAddr,
}

impl Gateway {
    /// Starts the binary against `board_service` with `env` on top of a
    /// clean environment, and waits until `/health` answers.
    async fn spawn(board_service: SocketAddr, env: &[(&str, &str)]) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let child = Command::new(env!("CARGO_BIN_EXE_ws-gateway"))
            .env_clear()
            .env("WS_GATEWAY_ADDR", addr.to_string())
            .env("BOARD_SERVICE_URL", format!("http://{board_service}"))
            .env("RUST_LOG", "warn")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .spawn()
            .expect("ws-gateway starts");
        let gateway = Self { child, addr };
        let deadline = Instant::now() + WAIT;
        let health = format!("http://{addr}/health");
        while reqwest::get(&health).await.is_err() {
            assert!(
                Instant::now() < deadline,
                "gateway on {addr} never answered"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        gateway
    }

    fn ws_url(&self, query: &str) -> String {
        format!("ws://{}/ws?{query}", self.addr)
    }

    /// SIGKILL: no close frames, no lease release.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A client that keeps the presence it was told: `presence` replaces the
/// list, `presence.joined` upserts, `presence.left` removes.
struct Watcher {
    ws: Ws,
    client_id: String,
    entries: BTreeMap<String, Value>,
    count: u64,
    /// Whether the last `presence` frame listed entries.
    listed: bool,
    /// Every presence frame, in order.
    seen: Vec<Value>,
}

impl Watcher {
    /// Connects to `url`, subscribes to `board` and asks who is there.
    async fn join(url: &str, board: &str) -> Self {
        let mut ws = Ws::connect(url).await;
        let connected = ws.next_of("connected").await;
        let client_id = connected["clientId"].as_str().expect("clientId").to_owned();
        ws.subscribe(board).await;
        let mut watcher = Self {
            ws,
            client_id,
            entries: BTreeMap::new(),
            count: 0,
            listed: false,
            seen: Vec::new(),
        };
        watcher
            .ws
            .send(json!({"type": "presence", "boardId": board, "id": "q1"}))
            .await;
        let answer = watcher.wait_frame("presence").await;
        assert_eq!(answer["id"], "q1", "{answer}");
        watcher
    }

    fn apply(&mut self, frame: &Value) {
        let entries = frame["entries"].as_array().cloned().unwrap_or_default();
        match frame["type"].as_str() {
            Some("presence") => {
                self.listed = frame.get("entries").is_some();
                self.entries.clear();
                for e in entries {
                    self.entries
                        .insert(e["key"].as_str().unwrap().to_owned(), e);
                }
            }
            Some("presence.joined") => {
                for e in entries {
                    self.entries
                        .insert(e["key"].as_str().unwrap().to_owned(), e);
                }
            }
            Some("presence.left") => {
                for e in entries {
                    self.entries.remove(e["key"].as_str().unwrap());
                }
            }
            _ => return,
        }
        self.count = frame["count"].as_u64().expect("count");
        self.seen.push(frame.clone());
    }

    async fn wait_frame(&mut self, kind: &str) -> Value {
        loop {
            let frame = self.ws.next().await;
            self.apply(&frame);
            if frame["type"] == kind {
                return frame;
            }
        }
    }

    /// Reads frames until `done` holds (each read bounded by [`WAIT`]).
    async fn wait_until(&mut self, what: &str, done: impl Fn(&Self) -> bool) {
        let deadline = Instant::now() + WAIT;
        while !done(self) {
            assert!(
                Instant::now() < deadline,
                "{what}: never happened; presence is {:?}",
                self.entries
            );
            let frame = self.ws.next().await;
            self.apply(&frame);
        }
    }

    fn connections(&self, key: &str) -> Option<u64> {
        self.entries
            .get(key)
            .and_then(|e| e["connections"].as_u64())
    }
}

struct Stack {
    db: TestDatabase,
    board_service: Running,
    board: Board,
    /// The NATS every gateway (and board-service) uses, if any.
    nats_url: Option<String>,
}

impl Stack {
    async fn start(auth: Option<AuthConfig>) -> Self {
        Self::start_on(auth, None).await
    }

    /// With `nats_url`, board-service relays to it and every gateway
    /// starts with `NATS_URL`, so presence goes over NATS.
    async fn start_on(auth: Option<AuthConfig>, nats_url: Option<String>) -> Self {
        let _ = service_kit::telemetry::init("presence-tests");
        let db = TestDatabase::create().await;
        let relay = nats_url.clone();
        let board_service =
            start_board_service_with(db.url(), "127.0.0.1:0".parse().unwrap(), |c| {
                if let Some(auth) = auth {
                    c.auth = auth;
                }
                c.nats_url = relay;
            })
            .await;
        let mut api = connect_api(board_service.addr).await;
        let mut request = tonic::Request::new(CreateBoardRequest {
            name: "Presence".into(),
            slug: Some("presence".into()),
            ..Default::default()
        });
        let admin = sign_token(
            SECRET,
            &json!({"exp": unix_now() + 600, "sub": "admin", "write": ["*"]}),
        );
        insert_bearer(request.metadata_mut(), &admin);
        let board = api
            .create_board(request)
            .await
            .expect("create board")
            .into_inner();
        Self {
            db,
            board_service,
            board,
            nats_url,
        }
    }

    async fn gateway(&self, env: &[(&str, &str)]) -> Gateway {
        let mut env = env.to_vec();
        if let Some(url) = &self.nats_url {
            env.push(("NATS_URL", url));
        }
        Gateway::spawn(self.board_service.addr, &env).await
    }

    /// Rows in board-service's presence table.
    async fn presence_rows(&self) -> i64 {
        let pool = sqlx::PgPool::connect(self.db.url()).await.expect("connect");
        sqlx::query_scalar("SELECT count(*) FROM presence")
            .fetch_one(&pool)
            .await
            .expect("count presence rows")
    }
}

fn token(sub: &str, name: &str) -> String {
    sign_token(
        SECRET,
        &json!({"exp": unix_now() + 600, "sub": sub, "name": name, "read": ["*"], "write": []}),
    )
}

#[tokio::test]
async fn people_on_another_gateway_are_seen_and_three_tabs_are_one_entry() {
    let stack = Stack::start(Some(AuthConfig::with_secret(SECRET))).await;
    tabs_on_two_gateways(&stack).await;
    assert!(stack.presence_rows().await > 0, "counted in PostgreSQL");
}

#[tokio::test]
async fn over_nats_people_on_another_gateway_are_seen_and_postgres_holds_nothing() {
    let nats = local_nats::url();
    let stack = Stack::start_on(Some(AuthConfig::with_secret(SECRET)), Some(nats)).await;
    tabs_on_two_gateways(&stack).await;
    assert_eq!(stack.presence_rows().await, 0, "presence went over NATS");
}

/// Wendy on gateway A, Ann with three tabs on A and B, Bob on B: each
/// sees the others, Ann's tabs are one entry, and her leaving is told.
async fn tabs_on_two_gateways(stack: &Stack) {
    let auth = [("JWT_SECRET", SECRET)];
    let a = stack.gateway(&auth).await;
    let b = stack.gateway(&auth).await;
    let board = stack.board.id.clone();

    let watcher_token = token("wendy-sub", "Wendy");
    let mut wendy = Watcher::join(&a.ws_url(&format!("token={watcher_token}")), &board).await;
    wendy
        .wait_until("Wendy sees herself", |w| {
            w.connections("wendy-sub") == Some(1)
        })
        .await;
    assert_eq!(wendy.entries["wendy-sub"]["name"], "Wendy");

    // Ann: two tabs on B, one on A, all the same `sub`.
    let ann = token("ann-sub", "Ann Lee");
    let mut tabs = Vec::new();
    for gateway in [&b, &b, &a] {
        let mut tab = Ws::connect(&gateway.ws_url(&format!("token={ann}&name=Ignored"))).await;
        tab.subscribe(&board).await;
        tabs.push(tab);
    }
    wendy
        .wait_until("Ann's three tabs on two gateways", |w| {
            w.connections("ann-sub") == Some(3)
        })
        .await;
    assert_eq!(wendy.entries.len(), 2, "{:?}", wendy.entries);
    assert_eq!(wendy.count, 2);
    assert_eq!(
        wendy.entries["ann-sub"]["name"], "Ann Lee",
        "the name is the token's, not ?name="
    );

    // And the other way round: a watcher on B sees Wendy on A.
    let bob = token("bob-sub", "Bob");
    let mut bob = Watcher::join(&b.ws_url(&format!("token={bob}")), &board).await;
    bob.wait_until("Bob on B sees Wendy on A", |w| {
        w.connections("wendy-sub") == Some(1) && w.connections("ann-sub") == Some(3)
    })
    .await;

    // Ann closes her tab on A, then both on B.
    let mut on_a = tabs.pop().expect("tab on A");
    on_a.stream.close(None).await.expect("close");
    wendy
        .wait_until("Ann down to two", |w| w.connections("ann-sub") == Some(2))
        .await;
    for mut tab in tabs.drain(..) {
        tab.send(json!({"type": "unsubscribe", "boardId": board}))
            .await;
        tab.stream.close(None).await.expect("close");
    }
    wendy
        .wait_until("Ann left", |w| !w.entries.contains_key("ann-sub"))
        .await;
    let left = wendy
        .seen
        .iter()
        .rev()
        .find(|f| f["type"] == "presence.left")
        .expect("a presence.left frame");
    assert_eq!(left["entries"][0]["key"], "ann-sub", "{left}");
    assert_eq!(left["boardId"], board.as_str());
}

#[tokio::test]
async fn members_of_a_killed_gateway_leave_when_its_lease_runs_out() {
    killed_gateway(&Stack::start(None).await).await;
}

#[tokio::test]
async fn over_nats_members_of_a_killed_gateway_leave_when_its_lease_runs_out() {
    killed_gateway(&Stack::start_on(None, Some(local_nats::url())).await).await;
}

async fn killed_gateway(stack: &Stack) {
    let a = stack.gateway(&[]).await;
    let mut b = stack.gateway(&[("PRESENCE_LEASE_MS", "2000")]).await;
    let board = stack.board.id.clone();

    let mut watcher = Watcher::join(&a.ws_url("name=Walt"), &board).await;
    let mut bea = Ws::connect(&b.ws_url("name=Bea%20%1B[31mRed")).await;
    let bea_id = bea.next_of("connected").await["clientId"]
        .as_str()
        .expect("clientId")
        .to_owned();
    bea.subscribe(&board).await;
    assert_ne!(
        bea_id, watcher.client_id,
        "client ids are unique across gateways, though each counts from 1"
    );
    watcher
        .wait_until("Walt sees Bea on the other gateway", |w| {
            w.entries.contains_key(&bea_id) && w.entries.contains_key(&w.client_id)
        })
        .await;
    assert_eq!(
        watcher.entries[&bea_id]["name"], "Bea [31mRed",
        "control characters dropped"
    );
    assert_eq!(watcher.entries[&watcher.client_id]["name"], "Walt");

    b.kill();
    let killed = Instant::now();
    watcher
        .wait_until("Bea leaves after her gateway died", |w| {
            !w.entries.contains_key(&bea_id)
        })
        .await;
    println!(
        "members of the killed gateway left after {:?} (lease 2 s)",
        killed.elapsed()
    );
    assert!(watcher.entries.contains_key(&watcher.client_id));
    assert_eq!(watcher.count, 1);
}

#[tokio::test]
async fn a_board_above_the_member_limit_sends_counts_only() {
    let stack = Stack::start(None).await;
    let gateway = stack.gateway(&[("PRESENCE_MAX_MEMBERS", "3")]).await;
    let board = stack.board.id.clone();
    let url = gateway.ws_url("name=Watcher");

    let mut watcher = Watcher::join(&url, &board).await;
    // A query about a board the client is not subscribed to is refused.
    watcher
        .ws
        .send(json!({"type": "presence", "boardId": "elsewhere", "id": "q2"}))
        .await;
    let refused = watcher.ws.next_of("error").await;
    assert_eq!(
        (refused["code"].as_str(), refused["id"].as_str()),
        (Some("not_subscribed"), Some("q2")),
        "{refused}"
    );

    let mut others = Vec::new();
    for _ in 0..4 {
        let mut ws = Ws::connect(&url).await;
        ws.subscribe(&board).await;
        others.push(ws);
    }
    watcher
        .wait_until("five members, counted", |w| w.count == 5)
        .await;
    assert!(!watcher.listed, "above the limit the list has no entries");
    let over = watcher
        .seen
        .iter()
        .position(|f| f["count"].as_u64() > Some(3))
        .expect("a frame above the limit");
    for frame in &watcher.seen[over..] {
        assert_eq!(frame["type"], "presence", "counts only: {frame}");
        assert!(frame.get("entries").is_none(), "{frame}");
    }

    // Back under the limit, the list comes back.
    for mut ws in others.drain(..3) {
        ws.stream.close(None).await.expect("close");
    }
    watcher
        .wait_until("two members, listed", |w| w.count == 2 && w.listed)
        .await;
    assert_eq!(watcher.entries.len(), 2);
}

#[tokio::test]
async fn over_nats_a_nats_restart_loses_no_member_and_a_new_gateway_sees_everyone_at_once() {
    let nats = local_nats::LocalNats::start_throwaway().unwrap_or_else(|e| panic!("{e}"));
    let stack = Stack::start_on(None, Some(nats.url())).await;
    let lease = [("PRESENCE_LEASE_MS", "2000")];
    let a = stack.gateway(&lease).await;
    let b = stack.gateway(&lease).await;
    let board = stack.board.id.clone();

    let mut walt = Watcher::join(&a.ws_url("name=Walt"), &board).await;
    let mut bea = Ws::connect(&b.ws_url("name=Bea")).await;
    let bea_id = bea.next_of("connected").await["clientId"]
        .as_str()
        .expect("clientId")
        .to_owned();
    bea.subscribe(&board).await;
    walt.wait_until("Walt sees Bea", |w| w.entries.contains_key(&bea_id))
        .await;

    // NATS is away for twice the lease, and Cy joins B meanwhile.
    let stopped = tokio::task::spawn_blocking(move || nats.stop())
        .await
        .expect("stop nats-server");
    let mut cy = Ws::connect(&b.ws_url("name=Cy")).await;
    let cy_id = cy.next_of("connected").await["clientId"]
        .as_str()
        .expect("clientId")
        .to_owned();
    cy.subscribe(&board).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let nats = tokio::task::spawn_blocking(move || stopped.start())
        .await
        .expect("join")
        .unwrap_or_else(|e| panic!("restart nats-server: {e}"));

    walt.wait_until("Cy, who joined during the outage, is seen", |w| {
        w.entries.contains_key(&cy_id)
    })
    .await;
    assert!(walt.entries.contains_key(&bea_id));
    let bea_left = walt.seen.iter().any(|f| {
        f["type"] == "presence.left"
            && f["entries"]
                .as_array()
                .is_some_and(|e| e.iter().any(|e| e["key"] == bea_id.as_str()))
    });
    assert!(
        !bea_left,
        "an outage of NATS is not a gateway's death: {:?}",
        walt.seen
    );

    // A gateway started now has everyone in its first answer.
    let c = stack.gateway(&lease).await;
    let late = Watcher::join(&c.ws_url("name=Late"), &board).await;
    for key in [&walt.client_id, &bea_id, &cy_id, &late.client_id] {
        assert!(
            late.entries.contains_key(key),
            "{key} missing from a new gateway's first list: {:?}",
            late.entries
        );
    }
    assert_eq!(stack.presence_rows().await, 0);
    drop(nats);
}
