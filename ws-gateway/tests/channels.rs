//! Channels through a real board-service and gateway: publish and
//! subscribe over `/ws`, resume with offset and epoch (from the gateway's
//! window and from board-service's history), honest `recovered: false`,
//! `POST /api/publish` in both shapes, seed 001's `/api/events` with
//! `Last-Event-ID`, and the `channels` claim at every door.

mod common;

use common::{Stack, WAIT, Ws};
use futures::StreamExt;
use serde_json::{Value, json};
use service_kit::auth::AuthConfig;

async fn subscribe(ws: &mut Ws, channel: &str, since: Option<(u64, &str)>) -> Value {
    let mut frame =
        json!({"type": "subscribe", "channel": channel, "id": format!("sub-{channel}")});
    if let Some((offset, epoch)) = since {
        frame["sinceOffset"] = offset.into();
        frame["epoch"] = epoch.into();
    }
    ws.send(frame).await;
    let ack = ws.next().await;
    assert_eq!(ack["type"], "ack", "{ack}");
    ack["result"].clone()
}

async fn publish_http(stack: &Stack, body: Value) -> Value {
    let response = reqwest::Client::new()
        .post(stack.http_url("/api/publish"))
        .json(&body)
        .send()
        .await
        .expect("POST /api/publish");
    assert!(response.status().is_success(), "{}", response.status());
    response.json().await.expect("JSON answer")
}

/// The next `n` publications, in the order they came.
async fn publications(ws: &mut Ws, n: usize) -> Vec<Value> {
    let mut got = Vec::new();
    while got.len() < n {
        let frame = ws.next().await;
        assert_eq!(frame["type"], "publication", "unexpected frame {frame}");
        got.push(frame);
    }
    got
}

fn offsets(frames: &[Value]) -> Vec<u64> {
    frames
        .iter()
        .map(|f| f["offset"].as_u64().unwrap())
        .collect()
}

#[tokio::test]
async fn publications_reach_subscribers_in_order_and_resume_exactly() {
    let stack = Stack::start().await;
    let mut a = stack.connect().await;
    a.next_of("connected").await;
    let head = subscribe(&mut a, "topics/deploys", None).await;
    assert_eq!(head["recovered"], false);
    assert_eq!(head["offset"], 0);
    let epoch = head["epoch"].as_str().unwrap().to_owned();

    for i in 1..=3 {
        a.send(
            json!({"type": "publish", "channel": "topics/deploys", "event": "deploy.done",
                      "data": {"n": i}, "id": format!("p{i}")}),
        )
        .await;
    }
    // Acks and publications interleave; sort them out.
    let (mut acks, mut seen) = (Vec::new(), Vec::new());
    while acks.len() < 3 || seen.len() < 3 {
        let frame = a.next().await;
        match frame["type"].as_str() {
            Some("ack") => acks.push(frame["result"]["offset"].as_u64().unwrap()),
            Some("publication") => seen.push(frame),
            _ => panic!("unexpected {frame}"),
        }
    }
    acks.sort();
    assert_eq!(acks, [1, 2, 3]);
    assert_eq!(offsets(&seen), [1, 2, 3]);
    assert_eq!(seen[1]["data"], json!({"n": 2}));
    assert_eq!(seen[1]["event"], "deploy.done");
    assert_eq!(seen[1]["epoch"], epoch.as_str());

    // Resume after offset 1: exactly 2 and 3, then live ones.
    let mut b = stack.connect().await;
    b.next_of("connected").await;
    let resumed = subscribe(&mut b, "topics/deploys", Some((1, &epoch))).await;
    assert_eq!(resumed["recovered"], true, "{resumed}");
    assert_eq!(offsets(&publications(&mut b, 2).await), [2, 3]);
    let published = publish_http(
        &stack,
        json!({"channel": "topics/deploys", "message": {"seed": 1}}),
    )
    .await;
    assert_eq!(published["offset"], 4);
    let live = publications(&mut b, 1).await;
    assert_eq!(live[0]["event"], "message");
    assert_eq!(live[0]["data"], json!({"seed": 1}));
    assert_eq!(offsets(&publications(&mut a, 1).await), [4]);

    // Another epoch is never silently resumed.
    let mut c = stack.connect().await;
    c.next_of("connected").await;
    let stale = subscribe(&mut c, "topics/deploys", Some((1, "not-the-epoch"))).await;
    assert_eq!(stale["recovered"], false);
    assert_eq!(stale["offset"], 4);
    publish_http(
        &stack,
        json!({"channel": "topics/deploys", "event": "e", "data": 5}),
    )
    .await;
    assert_eq!(offsets(&publications(&mut c, 1).await), [5]);
}

#[tokio::test]
async fn history_fills_what_the_gateway_never_saw_and_trimmed_history_says_so() {
    let stack = Stack::start_both(
        |bs| bs.channel_history = board_service::channels::Policy::parse("small/*=3/60").unwrap(),
        |_| {},
    )
    .await;
    // Published before any gateway feed exists: only board-service has them.
    let mut epoch = String::new();
    for i in 1..=5 {
        let p = publish_http(
            &stack,
            json!({"channel": "jobs/1", "event": "progress", "data": i}),
        )
        .await;
        epoch = p["epoch"].as_str().unwrap().to_owned();
    }
    let mut ws = stack.connect().await;
    ws.next_of("connected").await;
    let resumed = subscribe(&mut ws, "jobs/1", Some((2, &epoch))).await;
    assert_eq!(resumed["recovered"], true, "{resumed}");
    let got = publications(&mut ws, 3).await;
    assert_eq!(offsets(&got), [3, 4, 5]);
    assert_eq!(got[0]["data"], 3);

    // A channel keeping three publications cannot replay from offset 1 of 6.
    let mut small_epoch = String::new();
    for i in 1..=6 {
        let p = publish_http(
            &stack,
            json!({"channel": "small/x", "event": "e", "data": i}),
        )
        .await;
        small_epoch = p["epoch"].as_str().unwrap().to_owned();
    }
    let lost = subscribe(&mut ws, "small/x", Some((1, &small_epoch))).await;
    assert_eq!(lost["recovered"], false, "{lost}");
    assert_eq!(lost["offset"], 6);
    let kept = subscribe(&mut ws, "small/x", Some((3, &small_epoch))).await;
    assert_eq!(kept["recovered"], true, "{kept}");
    assert_eq!(offsets(&publications(&mut ws, 3).await), [4, 5, 6]);
}

#[tokio::test]
async fn bad_channel_frames_get_clear_errors() {
    let stack = Stack::start().await;
    let mut ws = stack.connect().await;
    ws.next_of("connected").await;
    let cases = [
        json!({"type": "subscribe", "channel": "has space", "id": "1"}),
        json!({"type": "subscribe", "channel": "", "id": "2"}),
        json!({"type": "subscribe", "channel": "x", "sinceOffset": 3, "id": "3"}),
        json!({"type": "publish", "channel": "x", "id": "4"}),
        json!({"type": "publish", "channel": "x", "event": "", "id": "5"}),
        json!({"type": "unsubscribe", "channel": "never", "id": "6"}),
        json!({"type": "publish", "channel": "a*", "event": "e", "id": "7"}),
    ];
    for case in cases {
        ws.send(case.clone()).await;
        let error = ws.next().await;
        assert_eq!(error["type"], "error", "{case} → {error}");
        assert_eq!(error["id"], case["id"], "{error}");
        assert!(!error["message"].as_str().unwrap().is_empty());
    }
    // Oversized data is refused by board-service, the connection lives on.
    let big = "x".repeat(70 * 1024);
    ws.send(json!({"type": "publish", "channel": "x", "event": "e", "data": big, "id": "8"}))
        .await;
    let error = ws.next().await;
    assert_eq!(error["code"], "invalid_argument", "{error}");
    ws.send(json!({"type": "ping"})).await;
    assert_eq!(ws.next().await["type"], "pong");
}

#[tokio::test]
async fn last_event_id_resumes_every_channel_of_a_seed_001_stream() {
    let stack = Stack::start().await;
    let url = stack.http_url("/api/events?channels=ai:jobs:status,ui:activity");
    let mut events = sse_events(reqwest::get(&url).await.expect("GET /api/events")).await;
    // The stream is subscribed once the response has begun.
    publish_http(
        &stack,
        json!({"channel": "ai:jobs:status", "message": {"jobId": "job_1", "status": "running"}}),
    )
    .await;
    publish_http(
        &stack,
        json!({"channel": "ui:activity", "message": {"who": "ann"}}),
    )
    .await;
    // Two channels' feeds are independent: either may come first. The
    // second event's id holds both positions.
    let first = events.next_message().await;
    let second = events.next_message().await;
    let mut live = [first.0, second.0.clone()];
    live.sort_by_key(|m| m["channel"].as_str().unwrap_or_default().to_owned());
    assert_eq!(
        live,
        [
            json!({"channel": "ai:jobs:status", "message": {"jobId": "job_1", "status": "running"}}),
            json!({"channel": "ui:activity", "message": {"who": "ann"}}),
        ]
    );
    drop(events);

    // Missed while away: one on each channel.
    publish_http(
        &stack,
        json!({"channel": "ai:jobs:status", "message": {"jobId": "job_1", "status": "completed"}}),
    )
    .await;
    publish_http(
        &stack,
        json!({"channel": "ui:activity", "message": {"who": "bob"}}),
    )
    .await;
    let resumed = reqwest::Client::new()
        .get(&url)
        .header("Last-Event-ID", &second.1)
        .send()
        .await
        .expect("GET /api/events again");
    let mut events = sse_events(resumed).await;
    let mut got = [events.next_message().await.0, events.next_message().await.0];
    got.sort_by_key(|m| m["channel"].as_str().unwrap().to_owned());
    assert_eq!(got[0]["message"]["status"], "completed");
    assert_eq!(got[1]["message"]["who"], "bob");
}

/// A minimal reader of default SSE events: (data as JSON, id).
struct SseEvents {
    body: std::pin::Pin<Box<dyn futures::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>,
    buffer: String,
}

async fn sse_events(response: reqwest::Response) -> SseEvents {
    assert!(response.status().is_success(), "{}", response.status());
    SseEvents {
        body: Box::pin(response.bytes_stream()),
        buffer: String::new(),
    }
}

impl SseEvents {
    async fn next_message(&mut self) -> (Value, String) {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let (mut data, mut id, mut named) = (None, String::new(), false);
                for line in block.lines() {
                    if let Some(d) = line.strip_prefix("data:") {
                        data = Some(d.trim().to_owned());
                    } else if let Some(i) = line.strip_prefix("id:") {
                        id = i.trim().to_owned();
                    } else if line.starts_with("event:") {
                        named = true;
                    }
                }
                match data {
                    Some(data) if !named => {
                        return (serde_json::from_str(&data).expect("JSON data"), id);
                    }
                    _ => continue,
                }
            }
            let chunk = tokio::time::timeout(WAIT, self.body.next())
                .await
                .expect("an event within the wait")
                .expect("stream open")
                .expect("body reads");
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
}

const SECRET: &str = "channels-test-secret";

#[tokio::test]
async fn the_channels_claim_decides_who_reads_and_publishes() {
    let auth = AuthConfig::with_secret(SECRET);
    let stack = Stack::start_both(|bs| bs.auth = auth.clone(), |gw| gw.auth = auth.clone()).await;
    let token = |channels: Value| {
        service_kit::testing::sign_token(
            SECRET,
            &json!({"exp": service_kit::testing::unix_now() + 600, "sub": "agent-1", "channels": channels}),
        )
    };
    let scoped = token(json!({"read": ["global"], "publish": ["topics/*"]}));
    let mut ws = Ws::connect(&format!("{}?token={scoped}", stack.ws_url())).await;
    ws.next_of("connected").await;
    assert_eq!(subscribe(&mut ws, "global", None).await["recovered"], false);
    assert_eq!(subscribe(&mut ws, "topics/a", None).await["offset"], 0);
    ws.send(json!({"type": "subscribe", "channel": "metrics", "id": "m"}))
        .await;
    assert_eq!(ws.next().await["code"], "forbidden");
    ws.send(json!({"type": "publish", "channel": "global", "event": "e", "id": "g"}))
        .await;
    assert_eq!(ws.next().await["code"], "forbidden");

    let client = reqwest::Client::new();
    let publish = |bearer: Option<String>, channel: &str| {
        let mut request = client
            .post(stack.http_url("/api/publish"))
            .json(&json!({"channel": channel, "event": "e", "data": 1}));
        if let Some(bearer) = bearer {
            request = request.bearer_auth(bearer);
        }
        request.send()
    };
    assert_eq!(publish(None, "topics/a").await.unwrap().status(), 401);
    assert_eq!(
        publish(Some(scoped.clone()), "global")
            .await
            .unwrap()
            .status(),
        403
    );
    assert_eq!(
        publish(Some("not-a-token".into()), "topics/a")
            .await
            .unwrap()
            .status(),
        401
    );
    let ok = publish(Some(scoped.clone()), "topics/a").await.unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(publications(&mut ws, 1).await[0]["channel"], "topics/a");

    // board-service checks the claim too: the gateway is not the only door.
    let mut channels = protocol::v1::channel_service_client::ChannelServiceClient::connect(
        format!("http://{}", stack.board_service.addr),
    )
    .await
    .unwrap();
    let mut request = tonic::Request::new(protocol::v1::PublishRequest {
        channel: "global".into(),
        event: "e".into(),
        data_json: "1".into(),
        ttl_ms: 0,
    });
    service_kit::auth::insert_bearer(request.metadata_mut(), &scoped);
    let refused = channels.publish(request).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::PermissionDenied);
    let anonymous = channels
        .watch_channel(protocol::v1::WatchChannelRequest {
            channel: "global".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(anonymous.code(), tonic::Code::Unauthenticated);
}

/// Presence on a channel works as on a board: every subscriber is present,
/// one entry per person (or agent) with its connection count.
#[tokio::test]
async fn channel_subscribers_are_present_and_agents_by_their_id() {
    let stack = Stack::start().await;
    let mut ann = Ws::connect(&format!("{}?name=Ann", stack.ws_url())).await;
    ann.next_of("connected").await;
    subscribe(&mut ann, "rooms/1", None).await;
    let agent_url = format!(
        "ws://{}/ws/agents?agent_id=planner&session_id=s1",
        stack.gateway.addr
    );
    let mut agent = Ws::connect(&agent_url).await;
    agent.next().await;
    agent
        .send(json!({"type": "subscribe", "channel": "rooms/1", "id": "a1"}))
        .await;
    assert_eq!(agent.next_of("ack").await["success"], true);

    // Not subscribed: refused, and named.
    ann.send(json!({"type": "presence", "channel": "rooms/2", "id": "q0"}))
        .await;
    assert_eq!(ann.next().await["code"], "not_subscribed");
    // Presence travels through board-service in batches: ask until both show.
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        ann.send(json!({"type": "presence", "channel": "rooms/1", "id": "q1"}))
            .await;
        let answer = ann.next_of("presence").await;
        let mut names: Vec<String> = answer["entries"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| e["name"].as_str().unwrap_or_default().to_owned())
            .collect();
        names.sort();
        if names == ["Ann", "planner"] {
            let agent_entry = answer["entries"]
                .as_array()
                .unwrap()
                .iter()
                .find(|e| e["name"] == "planner")
                .unwrap()
                .clone();
            assert_eq!(agent_entry["key"], "planner", "{answer}");
            assert_eq!(agent_entry["connections"], 1);
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never saw both: {answer}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    drop(agent);
    let left = ann.next_of("presence.left").await;
    assert_eq!(left["entries"][0]["key"], "planner", "{left}");
}

/// Two gateways on one board-service: a publication on one reaches the
/// other's subscribers, with the same offsets and epoch, and a client that
/// moves from one gateway to the other resumes where it was.
#[tokio::test]
async fn a_channel_is_the_same_on_every_gateway() {
    let stack = Stack::start().await;
    let second = common::start_gateway(ws_gateway::Config::new(format!(
        "http://{}",
        stack.board_service.addr
    )))
    .await;
    let second_url = format!("ws://{}/ws", second.addr);
    let mut on_a = stack.connect().await;
    on_a.next_of("connected").await;
    let head = subscribe(&mut on_a, "topics/shared", None).await;
    let epoch = head["epoch"].as_str().unwrap().to_owned();
    let mut on_b = Ws::connect(&second_url).await;
    on_b.next_of("connected").await;
    assert_eq!(
        subscribe(&mut on_b, "topics/shared", None).await["epoch"],
        epoch.as_str()
    );

    on_b.send(
        json!({"type": "publish", "channel": "topics/shared", "event": "e", "data": "from b"}),
    )
    .await;
    let got = publications(&mut on_a, 1).await;
    assert_eq!(
        (got[0]["offset"].as_u64(), got[0]["data"].as_str()),
        (Some(1), Some("from b"))
    );
    assert_eq!(offsets(&publications(&mut on_b, 1).await), [1]);
    drop(on_a);

    // Away while two more go out; back through the other gateway.
    for n in 2..=3 {
        publish_http(
            &stack,
            json!({"channel": "topics/shared", "event": "e", "data": n}),
        )
        .await;
    }
    let mut moved = Ws::connect(&second_url).await;
    moved.next_of("connected").await;
    let resumed = subscribe(&mut moved, "topics/shared", Some((1, &epoch))).await;
    assert_eq!(resumed["recovered"], true, "{resumed}");
    assert_eq!(offsets(&publications(&mut moved, 2).await), [2, 3]);
}

/// A publication's own TTL (seed 004's `data.ttl` on `message.new`) ends
/// its replay; the offset it took is skipped, the rest replays in order.
#[tokio::test]
async fn a_publication_past_its_ttl_is_not_replayed() {
    let stack = Stack::start().await;
    let first = publish_http(
        &stack,
        json!({"channel": "agents/a", "event": "message.new", "data": {"content": "soon gone", "ttl": 1}}),
    )
    .await;
    let epoch = first["epoch"].as_str().unwrap().to_owned();
    publish_http(
        &stack,
        json!({"channel": "agents/a", "event": "message.new", "data": {"content": "kept"}}),
    )
    .await;
    // Past the one-second TTL (the behaviour needs time to pass; nothing is timed).
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let mut ws = stack.connect().await;
    ws.next_of("connected").await;
    let resumed = subscribe(&mut ws, "agents/a", Some((0, &epoch))).await;
    assert_eq!(resumed["recovered"], true, "{resumed}");
    let got = publications(&mut ws, 1).await;
    assert_eq!(got[0]["offset"], 2, "{got:?}");
    assert_eq!(got[0]["data"]["content"], "kept");
    publish_http(
        &stack,
        json!({"channel": "agents/a", "event": "e", "data": 3}),
    )
    .await;
    assert_eq!(
        offsets(&publications(&mut ws, 1).await),
        [3],
        "the expired one is never sent late"
    );
}
