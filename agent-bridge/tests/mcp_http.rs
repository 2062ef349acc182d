//! The MCP server at `/mcp`, driven by the official Python MCP SDK
//! (`tests/mcp/client.py`) against the real bridge, board-service and
//! ws-gateway: the tools, changes seen by a WebSocket subscriber, resource
//! subscriptions fed by WatchBoard, and read-only tokens.

mod common;
#[path = "mcp/peer.rs"]
mod peer;

use common::{Options, Stack, token};
use peer::{BoardSocket, Gateway, McpPeer, step};
use serde_json::{Value, json};

const SECRET: &str = "mcp-secret";
const TOOLS: [&str; 12] = [
    "list_boards",
    "get_board",
    "list_sprints",
    "create_task",
    "update_task",
    "move_task",
    "delete_task",
    "create_lane",
    "update_lane",
    "create_sprint",
    "start_sprint",
    "complete_sprint",
];

fn mcp_url(stack: &Stack) -> String {
    stack.http_url("/mcp")
}

fn names(value: &Value) -> Vec<&str> {
    value
        .as_array()
        .expect("a list")
        .iter()
        .map(|v| v.as_str().expect("a name"))
        .collect()
}

#[tokio::test]
async fn lists_the_tools_with_schemas_on_every_protocol_generation() {
    let stack = Stack::start().await;
    for mode in ["auto", "legacy"] {
        let mut peer = McpPeer::start(&["tools", &mcp_url(&stack), "--mode", mode]).await;
        let listed = peer.next().await;
        peer.finish().await;
        eprintln!("{mode}: protocol {}", listed["protocol"]);
        assert_eq!(names(&listed["tools"]), TOOLS, "{mode}");
        for tool in TOOLS {
            let schema = &listed["schemas"][tool];
            assert_eq!(schema["type"], "object", "{tool}: {schema}");
            let description = listed["descriptions"][tool].as_str().unwrap_or_default();
            assert!(description.len() > 40, "{tool} is described: {description}");
        }
        let create = &listed["schemas"]["create_task"];
        assert_eq!(create["required"], json!(["board_id", "title"]));
        assert!(
            create["properties"]["lane"]["description"]
                .as_str()
                .unwrap()
                .contains("in_progress")
        );
        assert_eq!(
            listed["schemas"]["move_task"]["required"],
            json!(["task_id"])
        );
    }
    // auto probes server/discover and lands on the newest version; legacy
    // goes through initialize.
    stack.stop().await;
}

#[tokio::test]
async fn a_task_created_and_moved_over_mcp_appears_on_a_websocket_subscriber() {
    let stack = Stack::start().await;
    let gateway = Gateway::start(stack.board_addr, None).await;
    let (mut socket, _sync) = BoardSocket::subscribe(&gateway, "default", None).await;

    let peer = McpPeer::start(&["create-move", &mcp_url(&stack)]).await;
    let seen = peer.finish().await;
    let created = step(&seen, "create_task");
    let moved = step(&seen, "move_task");
    assert_eq!(created["is_error"], false, "{created}");
    assert_eq!(moved["is_error"], false, "{moved}");
    let task_id = created["structured"]["id"].as_str().unwrap();
    assert_eq!(moved["structured"]["lane"], "in_progress");

    let frame = socket.next_of("task.created").await;
    assert_eq!(frame["data"]["id"], task_id);
    assert_eq!(frame["data"]["title"], "Write the MCP docs");
    assert_eq!(frame["data"]["lane"], "todo");
    assert_eq!(frame["data"]["priority"], "high");
    let frame = socket.next_of("task.moved").await;
    assert_eq!(frame["data"]["id"], task_id);
    assert_eq!(frame["data"]["fromLane"], "todo");
    assert_eq!(frame["data"]["toLane"], "in_progress");

    gateway.stop().await;
    stack.stop().await;
}

/// A task on the default board, made over the gateway: its id.
async fn task_over_gateway(socket: &mut BoardSocket, title: &str) -> String {
    socket
        .send(
            json!({"type": "task.create", "id": format!("create-{title}"), "boardId": "default",
                     "data": {"title": title, "lane": "todo"}}),
        )
        .await;
    let created = socket.next_of("task.created").await;
    created["data"]["id"].as_str().unwrap().to_owned()
}

async fn move_over_gateway(socket: &mut BoardSocket, task: &str, lane: &str) -> u64 {
    socket
        .send(
            json!({"type": "task.move", "id": format!("move-{lane}"), "boardId": "default",
                     "data": {"id": task, "toLane": lane}}),
        )
        .await;
    let moved = socket.next_of("task.moved").await;
    moved["version"].as_u64().unwrap()
}

fn lane_holds(update: &Value, lane: &str, task: &str) -> bool {
    update["lanes"][lane]
        .as_array()
        .is_some_and(|tasks| tasks.iter().any(|t| t["id"] == task))
}

#[tokio::test]
async fn a_subscribed_board_resource_hears_of_moves_made_over_the_gateway() {
    let stack = Stack::start().await;
    let gateway = Gateway::start(stack.board_addr, None).await;
    let (mut socket, _) = BoardSocket::subscribe(&gateway, "default", None).await;
    let task = task_over_gateway(&mut socket, "Watched").await;

    // resources/subscribe (2025-11-25, initialize) and subscriptions/listen
    // (2026-07-28) each hear both moves, in order.
    let mut legacy = McpPeer::start(&[
        "subscribe",
        &mcp_url(&stack),
        "--mode",
        "legacy",
        "--count",
        "2",
    ])
    .await;
    let listed = legacy.next().await;
    assert_eq!(listed["uris"], json!(["boardwire://boards/default"]));
    assert_eq!(legacy.next().await["ready"], "subscribed");
    let mut modern = McpPeer::start(&["listen", &mcp_url(&stack)]).await;
    let ready = modern.next().await;
    assert_eq!(ready["ready"], "listening");
    assert_eq!(ready["honored"], json!(["boardwire://boards/default"]));

    let first = move_over_gateway(&mut socket, &task, "in_progress").await;
    let second = move_over_gateway(&mut socket, &task, "done").await;
    assert!(second > first);

    // resources/subscribe: one notification per change, in order.
    let seen = legacy.finish().await;
    let updates: Vec<&Value> = seen.iter().filter(|l| l["step"] == "updated").collect();
    assert_eq!(updates.len(), 2, "resources/subscribe: {seen:#?}");
    assert!(updates[0]["version"].as_u64().unwrap() >= first);
    assert!(updates[0]["version"].as_u64() <= updates[1]["version"].as_u64());
    assert_eq!(updates[1]["version"].as_u64(), Some(second));
    assert!(lane_holds(updates[1], "done", &task), "{:#}", updates[1]);
    // subscriptions/listen: notified until the board is read at the last
    // change (the server adds one notification when it starts watching).
    modern.send_line(&second.to_string()).await;
    let seen = modern.finish().await;
    let updates: Vec<&Value> = seen.iter().filter(|l| l["step"] == "updated").collect();
    let versions: Vec<u64> = updates
        .iter()
        .filter_map(|u| u["version"].as_u64())
        .collect();
    assert!(
        versions.is_sorted(),
        "subscriptions/listen in order: {versions:?}"
    );
    assert_eq!(versions.last(), Some(&second), "{seen:#?}");
    assert!(lane_holds(updates[updates.len() - 1], "done", &task));
    eprintln!("notified at versions {versions:?}");

    gateway.stop().await;
    stack.stop().await;
}

#[tokio::test]
async fn refusals_are_tool_errors_that_say_what_to_fix() {
    let stack = Stack::start().await;
    let seen = McpPeer::start(&["errors", &mcp_url(&stack)])
        .await
        .finish()
        .await;
    for (name, needles) in [
        (
            "stale_version",
            &["version", "get_board", "expected_version"][..],
        ),
        (
            "unknown_lane",
            &["\"nowhere\"", "backlog, todo, in_progress, done"][..],
        ),
        (
            "full_lane",
            &["WIP limit of 1", "update_lane", "another lane"][..],
        ),
        ("bad_argument", &["title", "expected a string"][..]),
    ] {
        let report = step(&seen, name);
        assert_eq!(report["is_error"], true, "{name}: {report}");
        let text = report["text"].as_str().unwrap();
        for needle in needles {
            assert!(text.contains(needle), "{name} says {needle:?}: {text}");
        }
        eprintln!("{name}: {text}");
    }
    assert_eq!(step(&seen, "create_lane")["is_error"], false);
    assert_eq!(step(&seen, "fill_lane")["is_error"], false);
    stack.stop().await;
}

#[tokio::test]
async fn a_read_only_token_gets_read_only_tools_and_is_refused_a_write() {
    let stack = Stack::start_with(Options {
        jwt_secret: Some(SECRET.into()),
        ..Options::default()
    })
    .await;
    let url = mcp_url(&stack);

    let reader = token(SECRET, "reader", &["*"], &[], 3600);
    let seen = McpPeer::start(&["readonly", &url, "--token", &reader])
        .await
        .finish()
        .await;
    assert_eq!(
        names(&step(&seen, "list_tools")["tools"]),
        ["list_boards", "get_board", "list_sprints"]
    );
    let read = step(&seen, "get_board");
    assert_eq!(read["is_error"], false, "{read}");
    assert_eq!(read["structured"]["board"]["slug"], "default");
    let write = step(&seen, "create_task");
    assert_eq!(write["is_error"], true, "{write}");
    assert!(
        write["text"].as_str().unwrap().contains("read-only"),
        "{write}"
    );
    assert!(stack.board().await.tasks.is_empty(), "nothing was written");

    let writer = token(SECRET, "writer", &[], &["default"], 3600);
    let mut peer = McpPeer::start(&["tools", &url, "--token", &writer]).await;
    assert_eq!(names(&peer.next().await["tools"]), TOOLS);
    peer.finish().await;

    // No token: 401 with a Bearer challenge, before any MCP.
    let response = reqwest::Client::new()
        .post(&url)
        .header("accept", "application/json, text/event-stream")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert!(
        response.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );
    stack.stop().await;
}

#[tokio::test]
async fn browsers_from_allowed_origins_get_cors_and_others_are_refused() {
    let stack = Stack::start_with(Options {
        allowed_origins: vec!["http://app.example".into()],
        ..Options::default()
    })
    .await;
    let client = reqwest::Client::new();
    let preflight = client
        .request(reqwest::Method::OPTIONS, mcp_url(&stack))
        .header("origin", "http://app.example")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "content-type, mcp-protocol-version",
        )
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success(), "{}", preflight.status());
    let headers = preflight.headers();
    assert_eq!(headers["access-control-allow-origin"], "http://app.example");
    let allowed = headers["access-control-allow-headers"].to_str().unwrap();
    assert!(allowed.contains("mcp-protocol-version"), "{allowed}");

    let foreign = client
        .post(mcp_url(&stack))
        .header("origin", "http://evil.example")
        .header("accept", "application/json, text/event-stream")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), 403);
    stack.stop().await;
}

#[tokio::test]
async fn sprint_tools_plan_a_sprint_with_a_task_in_it_and_start_it() {
    let stack = Stack::start().await;
    let peer = McpPeer::start(&["sprints", &mcp_url(&stack)]).await;
    let seen = peer.finish().await;
    let bad = step(&seen, "bad_time");
    assert_eq!(bad["is_error"], true, "{bad}");
    assert!(
        bad["text"].as_str().unwrap().contains("starts_at must be"),
        "{bad}"
    );
    let created = step(&seen, "create_sprint");
    assert_eq!(created["is_error"], false, "{created}");
    let sprint = &created["structured"];
    assert_eq!(sprint["state"], "planned");
    assert_eq!(sprint["startsAt"], 1_796_083_200_000_i64, "2026-12-01");
    assert_eq!(sprint["endsAt"], 1_797_267_600_000_i64, "2026-12-14 17:00");
    let task = step(&seen, "create_task");
    assert_eq!(task["structured"]["sprintId"], sprint["id"], "{task}");
    let started = step(&seen, "start_sprint");
    assert_eq!(started["structured"]["state"], "active", "{started}");
    let listed = step(&seen, "list_sprints");
    assert_eq!(listed["structured"]["sprints"][0]["state"], "active");

    // board-service holds what the tools reported.
    let board = stack.board().await;
    let login = board
        .tasks
        .iter()
        .find(|t| t.title == "Login form")
        .unwrap();
    assert_eq!(login.sprint_id, sprint["id"].as_str().unwrap());
    stack.stop().await;
}
