//! The board as an MCP server, built on the official Rust SDK (`rmcp`):
//! streamable HTTP at `/mcp` on agent-bridge, and stdio for `boardwire mcp`.
//!
//! - Tools: list_boards, get_board, create_task, update_task, move_task,
//!   delete_task, create_lane, update_lane. Refusals come back as tool
//!   errors that say what to fix.
//! - Resources: `boardwire://boards/{slug}`, the board as JSON. Subscribing
//!   (resources/subscribe, or subscriptions/listen on 2026-07-28) sends
//!   `notifications/resources/updated` for every change, from WatchBoard.
//! - Auth: the bearer tokens of the rest of Boardwire; a token without a
//!   write claim sees and may call only the read tools.

mod args;
mod board;
mod error;
mod http;
mod server;
mod stdio;
mod tools;
mod view;
mod watch;

pub use board::BoardClient;
pub use http::{McpHttp, router};
pub use server::BoardwireMcp;
pub use stdio::{StdioOptions, init_stderr_logging, serve_stdio};
