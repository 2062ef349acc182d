//! `boardwire mcp`: the stdio MCP server, launched by the official Python
//! MCP SDK's stdio client as Claude Desktop or Cursor would launch it,
//! against a real board-service.

mod common;
#[path = "mcp/peer.rs"]
mod peer;

use std::{path::PathBuf, sync::OnceLock};

use common::{Options, Stack, token};
use peer::{McpPeer, step};

/// The `boardwire` binary, built if needed: it belongs to the root package,
/// whose binaries cargo does not hand to agent-bridge's tests.
fn boardwire() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(build_boardwire).clone()
}

fn build_boardwire() -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = std::process::Command::new(cargo)
        .args(["build", "-q", "-p", "boardwire", "--bin", "boardwire"])
        .args(["--message-format", "json"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run cargo build -p boardwire");
    assert!(
        out.status.success(),
        "cargo build -p boardwire failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .find_map(|message| message["executable"].as_str().map(PathBuf::from))
        .expect("cargo names the boardwire executable")
}

#[tokio::test]
async fn boardwire_mcp_over_stdio_lists_the_tools_and_changes_the_board() {
    let stack = Stack::start().await;
    let exe = tokio::task::spawn_blocking(boardwire).await.unwrap();
    let board_url = format!("http://{}", stack.board_addr);
    let exe = exe.to_str().unwrap();
    for mode in ["auto", "legacy"] {
        // As the README's client config does: the URL in the environment.
        let seen = McpPeer::start(&[
            "stdio",
            exe,
            "mcp",
            "--mode",
            mode,
            "--env",
            &format!("BOARD_SERVICE_URL={board_url}"),
        ])
        .await
        .finish()
        .await;
        let tools = step(&seen, "list_tools")["tools"].as_array().unwrap().len();
        assert_eq!(tools, 12, "{mode}: {seen:#?}");
        let boards = step(&seen, "list_boards");
        assert_eq!(boards["is_error"], false, "{mode}: {boards}");
        assert_eq!(boards["structured"]["boards"][0]["slug"], "default");
        assert_eq!(
            boards["structured"]["boards"][0]["uri"],
            "boardwire://boards/default"
        );
        let created = step(&seen, "create_task");
        assert_eq!(created["is_error"], false, "{mode}: {created}");
        assert_eq!(created["structured"]["lane"], "backlog");
    }
    let titles: Vec<String> = stack
        .board()
        .await
        .tasks
        .into_iter()
        .map(|t| t.title)
        .collect();
    assert_eq!(titles, ["From stdio", "From stdio"]);
    stack.stop().await;
}

#[tokio::test]
async fn boardwire_mcp_with_a_read_only_token_offers_only_the_read_tools() {
    const SECRET: &str = "mcp-stdio-secret";
    let stack = Stack::start_with(Options {
        jwt_secret: Some(SECRET.into()),
        ..Options::default()
    })
    .await;
    let exe = tokio::task::spawn_blocking(boardwire).await.unwrap();
    let reader = token(SECRET, "reader", &["default"], &[], 3600);
    let seen = McpPeer::start(&[
        "stdio",
        exe.to_str().unwrap(),
        "mcp",
        "--env",
        &format!("BOARD_SERVICE_URL=http://{}", stack.board_addr),
        "--env",
        &format!("BOARDWIRE_TOKEN={reader}"),
        "--env",
        &format!("JWT_SECRET={SECRET}"),
    ])
    .await
    .finish()
    .await;
    assert_eq!(
        step(&seen, "list_tools")["tools"],
        serde_json::json!(["list_boards", "get_board", "list_sprints"])
    );
    let boards = step(&seen, "list_boards");
    assert_eq!(boards["is_error"], false, "{boards}");
    assert_eq!(boards["structured"]["boards"][0]["slug"], "default");
    let created = step(&seen, "create_task");
    assert_eq!(created["is_error"], true, "{created}");
    assert!(created["text"].as_str().unwrap().contains("read-only"));
    assert!(stack.board().await.tasks.is_empty());
    stack.stop().await;
}
