//! Live events for watchers on this replica.
//!
//! Commits anywhere (this process or another replica on the same database)
//! `NOTIFY board_events '<board>:<version>'`. One listener connection per
//! process pokes the board's [`feed`], which reads the new rows from the log
//! and broadcasts them to its watchers. The log, not the notification, is the
//! source of truth: a lost notification only delays events until the next
//! poke or the periodic re-check, and watchers fill any gap from the log.

mod feed;
mod listener;
pub mod watch;

pub use feed::EventHub;
pub use listener::spawn_listener;
