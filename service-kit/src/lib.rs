//! Shared plumbing for Boardwire's binaries and tests. Nothing here knows
//! about boards or frames; that lives in `protocol` and the services.

pub mod auth;
pub mod board_stream;
pub mod channels;
pub mod exposition;
pub mod handshake_deadline;
pub mod http_server;
#[cfg(feature = "test-support")]
pub mod local_nats;
pub mod local_postgres;
pub mod shutdown;
pub mod telemetry;
#[cfg(feature = "test-support")]
pub mod test_database;
#[cfg(feature = "test-support")]
pub mod testing;
pub mod tls;
