//! Pub/sub channels: `Publish` appends to a channel's bounded history in
//! PostgreSQL and `WatchChannel` streams it, resumable by offset and epoch.
//!
//! Ordering and resumption work as for boards: a row lock on the channel
//! numbers publications in commit order; `NOTIFY boardwire_channels` wakes
//! each replica's reader for the channel, which reads the new rows. The
//! table, not the notification, is the truth, so a lost notification only
//! delays. With NATS, gateways hear of publications there (`announce`).
//! See the migration for why ephemeral channels use unlogged tables.

mod announce;
mod grpc;
mod hub;
mod policy;
mod store;

pub use announce::Announcer;
pub use grpc::ChannelApi;
pub use hub::ChannelHub;
pub use policy::{History, Policy};
pub use store::{ChannelStore, NOTIFY_CHANNEL};
