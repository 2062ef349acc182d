//! The JetStream stream board events travel on between processes when
//! `NATS_URL` is set (SCALING.md): board-service's relay publishes to it,
//! gateways consume from it. Its name, subjects and settings live here so
//! both sides agree, and either may create it; so does the core-NATS
//! subject of channel publications.

use std::time::Duration;

use async_nats::jetstream::{self, stream::StorageType};

/// The stream's name.
pub const STREAM: &str = "BOARDWIRE_BOARDS";
/// Its subjects: one per board, [`subject`].
pub const SUBJECTS: &str = "boardwire.boards.>";
/// How long JetStream remembers message ids: re-sends within it are dropped.
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);
/// Longest wait for a JetStream request (an acknowledgement, a consumer).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Core-NATS subject (outside the stream) the relaying board-service
/// publishes to after each pass that left nothing behind, at least every
/// [`RELAY_HEARTBEAT_EVERY`]. Gateways follow the stream only while they
/// hear it: a stream nobody feeds (no replica relays, board-service runs
/// without `NATS_URL`, the relay is stuck) would otherwise look like a
/// quiet board for ever.
pub const RELAY_HEARTBEAT: &str = "boardwire.relay.heartbeat";
pub const RELAY_HEARTBEAT_EVERY: Duration = Duration::from_secs(1);
/// Silence after which gateways stop trusting the stream.
pub const RELAY_HEARTBEAT_STALE: Duration = Duration::from_secs(5);

/// `boardwire.boards.<board_id>`.
pub fn subject(board_id: impl std::fmt::Display) -> String {
    format!("boardwire.boards.{board_id}")
}

/// Core-NATS subject (outside the stream) a channel's publications go out
/// on: every board-service replica publishes each one it commits, encoded
/// as protobuf `ChannelPublication`, and the gateways that have the
/// channel's subscribers follow it. Core NATS keeps nothing and does not
/// order replicas against one another; offsets do: gateways fill gaps
/// from board-service's history, which stays the truth. The name is hex,
/// since channel names may hold `.` and `>`.
pub fn channel_subject(channel: &str) -> String {
    use std::fmt::Write as _;
    let mut subject = String::with_capacity(CHANNEL_PREFIX.len() + 2 * channel.len());
    subject.push_str(CHANNEL_PREFIX);
    for byte in channel.bytes() {
        let _ = write!(subject, "{byte:02x}");
    }
    subject
}

const CHANNEL_PREFIX: &str = "boardwire.channels.";

/// `<board_id>:<version>`, the `Nats-Msg-Id` of an event.
pub fn message_id(board_id: impl std::fmt::Display, version: u64) -> String {
    format!("{board_id}:{version}")
}

/// The stream's settings: file storage, so a NATS restart keeps it.
pub fn config() -> jetstream::stream::Config {
    jetstream::stream::Config {
        name: STREAM.into(),
        subjects: vec![SUBJECTS.into()],
        duplicate_window: DUPLICATE_WINDOW,
        storage: StorageType::File,
        ..Default::default()
    }
}

/// Options every Boardwire NATS client uses: named, bounded waits, and
/// reconnecting for ever (a NATS restart must not need ours).
pub fn connect_options(name: &str) -> async_nats::ConnectOptions {
    async_nats::ConnectOptions::new()
        .name(name)
        .connection_timeout(REQUEST_TIMEOUT)
        .request_timeout(Some(REQUEST_TIMEOUT))
        .max_reconnects(None)
}

/// Connects as `name` and returns a JetStream context with our timeout.
pub async fn connect(url: &str, name: &str) -> anyhow::Result<jetstream::Context> {
    let client = connect_options(name)
        .connect(url)
        .await
        .map_err(|e| anyhow::anyhow!("connect to NATS at {url}: {e}"))?;
    let mut context = jetstream::new(client);
    context.set_timeout(REQUEST_TIMEOUT);
    Ok(context)
}

/// Connects as `name` in the background: the service starts while NATS
/// is down, and the client reconnects for ever. A client and its
/// JetStream context with our timeout.
pub async fn connect_in_background(
    url: &str,
    name: &str,
) -> anyhow::Result<(async_nats::Client, jetstream::Context)> {
    let client = connect_options(name)
        .retry_on_initial_connect()
        .connect(url)
        .await
        .map_err(|e| anyhow::anyhow!("NATS_URL {url}: {e}"))?;
    let mut context = jetstream::new(client.clone());
    context.set_timeout(REQUEST_TIMEOUT);
    Ok((client, context))
}

/// Creates the board stream, or brings its settings up to date.
pub async fn ensure(context: &jetstream::Context) -> anyhow::Result<jetstream::stream::Stream> {
    ensure_stream(context, config()).await
}

/// Creates the stream `config` describes, or brings its settings up to date.
pub async fn ensure_stream(
    context: &jetstream::Context,
    config: jetstream::stream::Config,
) -> anyhow::Result<jetstream::stream::Stream> {
    let name = config.name.clone();
    context
        .create_or_update_stream(config)
        .await
        .map_err(|e| anyhow::anyhow!("create or update stream {name}: {e}"))?;
    context
        .get_stream(&name)
        .await
        .map_err(|e| anyhow::anyhow!("open stream {name}: {e}"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn channel_subjects_are_one_safe_token() {
        assert_eq!(
            super::channel_subject("a.*>"),
            "boardwire.channels.612e2a3e"
        );
        assert_ne!(super::channel_subject("ab"), super::channel_subject("a.b"));
    }
}
