//! The auth matrix through real clients, with auth on in the gateway AND in
//! board-service (one shared secret, as compose sets it): tokens at every
//! door, the user's token carried to board-service, idempotency keys that
//! stay the caller's own.

mod common;

use common::*;
use protocol::v1::{CreateBoardRequest, CreateTaskRequest, GetBoardRequest};
use serde_json::{Value, json};
use service_kit::auth::{AuthConfig, insert_bearer};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const SECRET: &str = "matrix-secret";
/// The audience and issuer when a test configures them.
const AUD: &str = "boardwire";
const ISS: &str = "https://issuer.example";

use service_kit::testing::unix_now as now;

fn sign(claims: Value) -> String {
    service_kit::testing::sign_token(SECRET, &claims)
}

fn token(sub: &str, read: &[&str], write: &[&str]) -> String {
    service_kit::testing::board_token(SECRET, sub, read, write)
}

fn as_admin<T>(message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    // Carries the audience and issuer of the test that configures them;
    // the others ignore both.
    let admin =
        sign(json!({"exp": now() + 600, "sub": "admin", "write": ["*"], "aud": AUD, "iss": ISS}));
    insert_bearer(request.metadata_mut(), &admin);
    request
}

struct Secured {
    _db: service_kit::test_database::TestDatabase,
    board_service: Running,
    gateway: Running,
    api: Api,
}

impl Secured {
    async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// Auth on in both services, with the same `tweak` of its settings.
    async fn start_with(tweak: impl Fn(&mut AuthConfig)) -> Self {
        let mut auth = AuthConfig::with_secret(SECRET);
        tweak(&mut auth);
        let db = service_kit::test_database::TestDatabase::create().await;
        let board_service =
            start_board_service_with(db.url(), "127.0.0.1:0".parse().unwrap(), |c| {
                c.auth = auth.clone();
            })
            .await;
        let mut config = ws_gateway::Config::new(format!("http://{}", board_service.addr));
        config.auth = auth;
        config.auth_timeout_ms = 300;
        config.header_timeout_ms = 300;
        let gateway = start_gateway(config).await;
        let mut api = connect_api(board_service.addr).await;
        for slug in ["alpha", "beta"] {
            api.create_board(as_admin(CreateBoardRequest {
                name: slug.into(),
                slug: Some(slug.into()),
                ..Default::default()
            }))
            .await
            .expect("admin creates boards");
        }
        Self {
            _db: db,
            board_service,
            gateway,
            api,
        }
    }

    fn ws_url(&self, token: Option<&str>) -> String {
        match token {
            Some(t) => format!("ws://{}/ws?token={t}", self.gateway.addr),
            None => format!("ws://{}/ws", self.gateway.addr),
        }
    }

    fn http(&self, path: &str) -> String {
        format!("http://{}{path}", self.gateway.addr)
    }

    async fn connect(&self, token: &str) -> Ws {
        let mut ws = Ws::connect(&self.ws_url(Some(token))).await;
        ws.next_of("connected").await;
        ws
    }

    async fn task_on(&mut self, board: &str, title: &str) -> protocol::v1::Task {
        self.api
            .create_task(as_admin(CreateTaskRequest {
                board_id: board.into(),
                lane_id: "todo".into(),
                title: title.into(),
                ..Default::default()
            }))
            .await
            .unwrap()
            .into_inner()
    }

    async fn titles(&mut self, board: &str) -> Vec<String> {
        let snapshot = self
            .api
            .get_board(as_admin(GetBoardRequest {
                board_id: board.into(),
            }))
            .await
            .unwrap()
            .into_inner();
        snapshot.tasks.into_iter().map(|t| t.title).collect()
    }
}

#[tokio::test]
async fn sockets_without_a_good_token_are_closed_with_the_documented_codes() {
    let stack = Secured::start().await;
    let expired = sign(json!({"exp": now() - 3600, "read": ["*"]}));
    let early = sign(json!({"exp": now() + 7200, "nbf": now() + 3600, "read": ["*"]}));
    let forged = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &json!({"exp": now() + 600, "read": ["*"]}),
        &jsonwebtoken::EncodingKey::from_secret(b"guessed"),
    )
    .unwrap();
    for (token, code) in [(&expired, 4002), (&early, 4001), (&forged, 4001)] {
        let mut ws = Ws::connect(&stack.ws_url(Some(token))).await;
        assert_eq!(ws.close_code().await, code, "token {token}");
    }
    // No token: the auth deadline passes.
    let mut silent = Ws::connect(&stack.ws_url(None)).await;
    assert_eq!(silent.close_code().await, 4001);
    // An `auth` frame with an expired token.
    let mut late = Ws::connect(&stack.ws_url(None)).await;
    late.next_of("connected").await;
    late.send(json!({"type": "auth", "token": expired})).await;
    assert_eq!(late.close_code().await, 4002);

    let sse = reqwest::get(stack.http("/events?boardId=alpha"))
        .await
        .unwrap();
    assert_eq!(sse.status(), 401);
    let sse = reqwest::get(stack.http(&format!("/events?boardId=alpha&token={expired}")))
        .await
        .unwrap();
    assert_eq!(sse.status(), 401);
}

#[tokio::test]
async fn commands_write_only_what_the_token_grants() {
    let mut stack = Secured::start().await;
    let beta_task = stack.task_on("beta", "beta's own").await;
    let reader = token("reader", &["alpha", "beta"], &[]);
    let writer = token("writer", &[], &["alpha"]);

    let mut ws = stack.connect(&reader).await;
    ws.send(json!({"type":"task.create","id":"r1","boardId":"alpha","data":{"title":"nope","lane":"todo"}}))
        .await;
    assert_eq!(ws.next_of("error").await["code"], "forbidden");

    let mut ws = stack.connect(&writer).await;
    ws.send(json!({"type":"subscribe","boardId":"beta","id":"s"}))
        .await;
    assert_eq!(ws.next_of("error").await["code"], "forbidden");
    // A task of beta, named through alpha or through beta.
    for board in ["alpha", "beta"] {
        ws.send(json!({"type":"task.delete","id":format!("d-{board}"),"boardId":board,"data":{"id":beta_task.id}}))
            .await;
        assert_eq!(
            ws.next_of("error").await["code"],
            "forbidden",
            "via {board}"
        );
    }
    ws.send(json!({"type":"task.create","id":"w1","boardId":"alpha","data":{"title":"mine","lane":"todo"}}))
        .await;
    assert_eq!(ws.next_of("ack").await["result"]["title"], "mine");
    assert_eq!(stack.titles("beta").await, ["beta's own"]);
    assert_eq!(stack.titles("alpha").await, ["mine"]);
}

#[tokio::test]
async fn an_idempotency_key_used_on_another_board_is_not_someone_elses_result() {
    let mut stack = Secured::start().await;
    let both = token("both", &[], &["alpha", "beta"]);
    let alpha_only = token("alpha-only", &[], &["alpha"]);
    let mut ws = stack.connect(&both).await;
    ws.send(json!({"type":"task.create","id":"k1","boardId":"beta","data":{"title":"secret plan","lane":"todo"}}))
        .await;
    ws.next_of("ack").await;

    let mut other = stack.connect(&alpha_only).await;
    other
        .send(json!({"type":"task.create","id":"k1","boardId":"alpha","data":{"title":"public note","lane":"todo"}}))
        .await;
    let ack = other.next_of("ack").await;
    assert_eq!(ack["result"]["title"], "public note", "{ack}");
    assert_eq!(stack.titles("alpha").await, ["public note"]);
}

#[tokio::test]
async fn http_routes_need_a_token_and_name_only_readable_boards() {
    let stack = Secured::start().await;
    let http = reqwest::Client::new();
    let alpha_reader = token("r", &["alpha"], &[]);
    let admin = token("admin", &[], &["*"]);

    let anonymous = http.get(stack.http("/api/boards")).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    let listed: Value = http
        .get(stack.http("/api/boards"))
        .bearer_auth(&alpha_reader)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let slugs: Vec<&str> = listed["boards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["slug"].as_str().unwrap())
        .collect();
    assert_eq!(slugs, ["alpha"]);

    let create = |token: Option<String>| {
        let mut request = http
            .post(stack.http("/api/boards"))
            .json(&json!({"name": "Gamma"}));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send()
    };
    assert_eq!(create(None).await.unwrap().status(), 401);
    assert_eq!(
        create(Some(alpha_reader.clone())).await.unwrap().status(),
        403
    );
    assert_eq!(create(Some(admin)).await.unwrap().status(), 201);

    assert_eq!(
        http.get(stack.http("/stats"))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    // A watched board shows in /stats only to those who may read it.
    let beta_reader = token("b", &["beta"], &[]);
    let mut ws = stack.connect(&beta_reader).await;
    ws.subscribe("beta").await;
    let stats: Value = http
        .get(stack.http(&format!("/stats?token={alpha_reader}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["boards"], json!([]), "{stats}");
}

#[tokio::test]
async fn upgrades_follow_rfc_6455() {
    let stack = Secured::start().await;
    let mut request = stack.ws_url(None).into_client_request().unwrap();
    request
        .headers_mut()
        .insert("sec-websocket-version", "8".parse().unwrap());
    let refused = Ws::connect_request(request)
        .await
        .err()
        .expect("version 8 refused");
    match refused {
        tokio_tungstenite::tungstenite::Error::Http(response) => {
            assert_eq!(response.status(), 426);
            assert_eq!(response.headers()["sec-websocket-version"], "13");
        }
        other => panic!("unexpected: {other}"),
    }
    let mut request = stack.ws_url(None).into_client_request().unwrap();
    request
        .headers_mut()
        .insert("sec-websocket-key", "c2hvcnQ=".parse().unwrap());
    match Ws::connect_request(request)
        .await
        .err()
        .expect("short key refused")
    {
        tokio_tungstenite::tungstenite::Error::Http(response) => assert_eq!(response.status(), 400),
        other => panic!("unexpected: {other}"),
    }
}

#[tokio::test]
async fn half_sent_requests_do_not_hold_the_gateway() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let stack = Secured::start().await;
    let mut slow = tokio::net::TcpStream::connect(stack.gateway.addr)
        .await
        .unwrap();
    slow.write_all(b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 256];
    let closed = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        loop {
            match slow.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(
        closed.is_ok(),
        "a half-sent request was held past the header timeout"
    );
}

#[tokio::test]
async fn hostile_frames_get_errors_that_name_the_field() {
    let stack = Secured::start().await;
    let mut ws = stack.connect(&token("w", &[], &["alpha"])).await;
    let cases = [
        (
            json!({"type":"subscribe","boardId":123,"id":"a"}),
            "invalid_frame",
            "boardId",
        ),
        (
            json!({"type":"task.create","id":"","boardId":"alpha","data":{"title":"x","lane":"todo"}}),
            "invalid_frame",
            "id",
        ),
        (
            json!({"type":"task.move","id":"m","boardId":"alpha","data":{"id":"t","toLane":"done","before":"a","after":"b"}}),
            "invalid_frame",
            "before",
        ),
        (
            json!({"type":"task.update","id":"u","boardId":"alpha","expectedVersion":-1,"data":{"id":"t","changes":{}}}),
            "invalid_frame",
            "expectedVersion",
        ),
        (
            json!({"type":"task.create","id":"n","boardId":"alpha","data":{"title":"x","lane":"todo","description":"a\u{0}b"}}),
            "invalid_argument",
            "description",
        ),
        (
            json!({"type":"task.create","id":"n2","boardId":"alpha","data":{"title":"bell\u{7}","lane":"todo"}}),
            "invalid_argument",
            "title",
        ),
    ];
    for (frame, code, field) in cases {
        ws.send(frame.clone()).await;
        let error = ws.next_of("error").await;
        assert_eq!(error["code"], code, "{frame} → {error}");
        assert!(
            error["message"].as_str().unwrap().contains(field),
            "{frame} → {error}"
        );
    }
}

/// The code a socket opened with `token` is closed with.
async fn close_code_for(stack: &Secured, token: &str) -> u16 {
    let mut ws = Ws::connect(&stack.ws_url(Some(token))).await;
    ws.close_code().await
}

#[tokio::test]
async fn tokens_for_another_audience_or_issuer_are_refused_where_they_are_configured() {
    let stack = Secured::start_with(|auth| {
        auth.audience = Some(AUD.into());
        auth.issuer = Some(ISS.into());
    })
    .await;
    let claims = |aud: Option<&str>, iss: Option<&str>| {
        let mut claims = json!({"exp": now() + 600, "sub": "u", "read": ["*"], "write": ["alpha"]});
        if let Some(aud) = aud {
            claims["aud"] = json!(aud);
        }
        if let Some(iss) = iss {
            claims["iss"] = json!(iss);
        }
        sign(claims)
    };
    for (aud, iss) in [
        (None, Some(ISS)),
        (Some("someone-else"), Some(ISS)),
        (Some(AUD), None),
        (Some(AUD), Some("https://evil.example")),
    ] {
        let token = claims(aud, iss);
        assert_eq!(
            close_code_for(&stack, &token).await,
            4001,
            "aud {aud:?} iss {iss:?}"
        );
        let listed = reqwest::Client::new()
            .get(stack.http("/api/boards"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(listed.status(), 401, "aud {aud:?} iss {iss:?}");
    }
    // The right audience and issuer: reads go through the service token,
    // writes through the user's, and board-service takes both.
    let good = claims(Some(AUD), Some(ISS));
    let mut ws = stack.connect(&good).await;
    ws.subscribe("alpha").await;
    ws.send(json!({"type":"task.create","id":"aud-ok","boardId":"alpha","data":{"title":"in","lane":"todo"}}))
        .await;
    assert_eq!(ws.next_of("ack").await["result"]["title"], "in");
}

#[tokio::test]
async fn a_token_that_expires_while_connected_is_closed_with_4002() {
    let stack = Secured::start_with(|auth| auth.leeway_secs = 0).await;
    let brief = sign(json!({"exp": now() + 2, "sub": "brief", "read": ["*"]}));
    let mut ws = stack.connect(&brief).await;
    ws.subscribe("alpha").await;
    assert_eq!(ws.close_code().await, 4002);

    // Expired and not-yet-valid tokens get 401 on every HTTP route.
    let expired = sign(json!({"exp": now() - 60, "read": ["*"], "write": ["*"]}));
    let early =
        sign(json!({"exp": now() + 7200, "nbf": now() + 3600, "read": ["*"], "write": ["*"]}));
    let http = reqwest::Client::new();
    for token in [&expired, &early] {
        for path in ["/api/boards", "/stats", "/events?boardId=alpha"] {
            let answer = http
                .get(stack.http(path))
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            assert_eq!(answer.status(), 401, "{path} with {token}");
        }
        let created = http
            .post(stack.http("/api/boards"))
            .bearer_auth(token)
            .json(&json!({"name": "late"}))
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), 401);
    }
}

#[tokio::test]
async fn another_boards_task_cannot_be_updated_or_moved_through_any_board() {
    let mut stack = Secured::start().await;
    let beta_task = stack.task_on("beta", "beta's own").await;
    let alpha_task = stack.task_on("alpha", "alpha's own").await;
    let writer = token("writer", &["alpha"], &["alpha"]);
    let reader = token("reader", &["*"], &[]);

    // Before and after the writer watches alpha (the gateway then answers
    // from its feed instead of asking board-service).
    for watching in [false, true] {
        let mut ws = stack.connect(&writer).await;
        if watching {
            ws.subscribe("alpha").await;
        }
        for board in ["alpha", "beta"] {
            let frames = [
                json!({"type":"task.update","id":format!("u-{board}-{watching}"),"boardId":board,"data":{"id":beta_task.id,"changes":{"title":"pwned"}}}),
                json!({"type":"task.move","id":format!("m-{board}-{watching}"),"boardId":board,"data":{"id":beta_task.id,"toLane":"done"}}),
                json!({"type":"task.create","id":format!("c-{board}-{watching}"),"boardId":"beta","data":{"title":"pwned","lane":"todo"}}),
            ];
            for frame in frames {
                ws.send(frame.clone()).await;
                let error = ws.next_of("error").await;
                assert_eq!(error["code"], "forbidden", "{frame} → {error}");
                assert_eq!(error["id"], frame["id"], "{error}");
            }
        }
    }
    let mut ws = stack.connect(&reader).await;
    ws.send(json!({"type":"task.update","id":"ro","boardId":"alpha","data":{"id":alpha_task.id,"changes":{"title":"pwned"}}}))
        .await;
    assert_eq!(ws.next_of("error").await["code"], "forbidden");
    assert_eq!(stack.titles("beta").await, ["beta's own"]);
    assert_eq!(stack.titles("alpha").await, ["alpha's own"]);

    // The writer may still change its own board.
    let mut ws = stack.connect(&writer).await;
    ws.send(json!({"type":"task.update","id":"own","boardId":"alpha","data":{"id":alpha_task.id,"changes":{"title":"renamed"}}}))
        .await;
    assert_eq!(ws.next_of("ack").await["result"]["title"], "renamed");
}

#[tokio::test]
async fn an_auth_frame_grants_what_its_token_grants_and_a_bad_one_closes() {
    let stack = Secured::start().await;
    let writer = token("writer", &["alpha"], &["alpha"]);
    let mut ws = Ws::connect(&stack.ws_url(None)).await;
    ws.next_of("connected").await;
    ws.send(json!({"type":"task.create","id":"early","boardId":"alpha","data":{"title":"x","lane":"todo"}}))
        .await;
    let error = ws.next_of("error").await;
    assert_eq!(error["code"], "unauthorized", "{error}");
    assert_eq!(error["id"], "early");
    ws.send(json!({"type":"auth","token":writer})).await;
    ws.send(json!({"type":"task.create","id":"after","boardId":"alpha","data":{"title":"x","lane":"todo"}}))
        .await;
    assert_eq!(ws.next_of("ack").await["id"], "after");
    let forged = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &json!({"exp": now() + 600, "read": ["*"], "write": ["*"]}),
        &jsonwebtoken::EncodingKey::from_secret(b"guessed"),
    )
    .unwrap();
    ws.send(json!({"type":"auth","token":forged})).await;
    assert_eq!(ws.close_code().await, 4001);

    // A bearer header works like ?token= for clients that can set one.
    let mut request = stack.ws_url(None).into_client_request().unwrap();
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {writer}").parse().unwrap());
    let mut ws = Ws::connect_request(request).await.expect("connects");
    ws.next_of("connected").await;
    ws.subscribe("alpha").await;
}

#[tokio::test]
async fn metrics_stay_open_and_name_no_board_while_stats_name_only_readable_ones() {
    let stack = Secured::start().await;
    let beta_reader = token("b", &["beta"], &[]);
    let mut ws = stack.connect(&beta_reader).await;
    let sync = ws.subscribe("beta").await;
    let beta_id = sync["data"]["board"]["id"].as_str().unwrap().to_owned();
    let http = reqwest::Client::new();

    let metrics = http.get(stack.http("/metrics")).send().await.unwrap();
    assert_eq!(metrics.status(), 200);
    let body = metrics.text().await.unwrap();
    assert!(!body.contains("beta") && !body.contains(&beta_id), "{body}");

    let stats: Value = http
        .get(stack.http("/stats"))
        .bearer_auth(&beta_reader)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let slugs: Vec<&str> = stats["boards"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|b| b["slug"].as_str())
        .collect();
    assert_eq!(slugs, ["beta"], "{stats}");
}

#[tokio::test]
async fn only_a_token_that_writes_every_board_creates_boards() {
    let stack = Secured::start().await;
    let http = reqwest::Client::new();
    for token in [
        token("w", &["*"], &["alpha"]),
        token("r", &["*"], &[]),
        sign(json!({"exp": now() + 600, "sub": "none"})),
    ] {
        let answer = http
            .post(stack.http("/api/boards"))
            .bearer_auth(&token)
            .json(&json!({"name": "Gamma", "slug": "gamma"}))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 403, "{token}");
        let body: Value = answer.json().await.unwrap();
        assert_eq!(body["code"], "forbidden", "{body}");
    }
    let listed: Value = http
        .get(stack.http("/api/boards"))
        .bearer_auth(token("r", &["*"], &[]))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let slugs: Vec<&str> = listed["boards"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|b| b["slug"].as_str())
        .collect();
    assert!(!slugs.contains(&"gamma"), "{listed}");
    assert_eq!(slugs.len(), 2, "{listed}");
}

#[tokio::test]
async fn the_gateway_refuses_writes_itself_even_with_board_service_down() {
    let mut stack = Secured::start().await;
    let reader = token("reader", &["*"], &[]);
    let alpha_writer = token("writer", &["alpha"], &["alpha"]);
    let mut read_only = stack.connect(&reader).await;
    let mut writer = stack.connect(&alpha_writer).await;
    writer.subscribe("alpha").await;
    stack.board_service.stop_in_place().await;

    read_only
        .send(json!({"type":"task.create","id":"ro","boardId":"alpha","data":{"title":"x","lane":"todo"}}))
        .await;
    assert_eq!(read_only.next_of("error").await["code"], "forbidden");
    // alpha is watched, so the gateway knows beta is not it.
    writer
        .send(json!({"type":"task.create","id":"wb","boardId":"beta","data":{"title":"x","lane":"todo"}}))
        .await;
    let error = writer.next_of("error").await;
    assert!(
        error["code"] == "forbidden" || error["code"] == "unavailable",
        "{error}"
    );
    // And what it may write is only unavailable, to be retried.
    writer
        .send(json!({"type":"task.create","id":"wa","boardId":"alpha","data":{"title":"x","lane":"todo"}}))
        .await;
    assert_eq!(writer.next_of("error").await["code"], "unavailable");
}
