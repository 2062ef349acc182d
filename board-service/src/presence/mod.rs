//! Presence across gateways, in PostgreSQL.
//!
//! Each gateway holds a lease (`presence_gateways`) and its members' counts
//! (`presence`), written through `UpdatePresence`. Every change NOTIFYs
//! `presence_changes` with the scope; one listener per process pokes the
//! scope's [`feed`], which re-reads the aggregate (at most every 200 ms) and
//! hands it to its watchers, each of which sends the diff from what it last
//! sent. A sweeper on every replica deletes gateways whose lease ran out
//! and notifies their scopes, so the members of a dead gateway leave within
//! its lease plus a second. Aggregates count live leases only, so a missed
//! sweep cannot keep a dead gateway's members.

mod feed;
mod grpc;
mod listener;
pub mod store;
mod watch;

pub use feed::PresenceHub;
pub use grpc::PresenceApi;
pub use listener::{spawn_listener, spawn_sweeper};
