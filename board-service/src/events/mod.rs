//! Live events for watchers on this replica.
//!
//! After a commit anywhere (this process or another replica on the same
//! database) the committing process's [`announce`] task sends
//! `NOTIFY board_events '<board>:<version>'`, outside the writer's
//! transaction. One listener connection per process pokes the board's
//! [`feed`], which reads the new rows from the log and broadcasts them to
//! its watchers; the committing process pokes its own feeds directly. The log, not the notification, is the
//! source of truth: a lost notification only delays events until the next
//! poke or the periodic re-check, and watchers fill any gap from the log.

mod announce;
mod feed;
mod listener;
pub mod watch;

pub use announce::Announcer;
pub use feed::EventHub;
pub use listener::spawn_listener;
