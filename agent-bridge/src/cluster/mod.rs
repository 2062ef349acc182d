//! Chat across bridge replicas (with `NATS_URL`, SCALING.md). Every frame a
//! bridge publishes on a session also goes to the JetStream stream
//! [`STREAM`], on a subject of its own per session; every bridge that holds
//! the session in memory follows that subject ([`follow`]), so a tab on any
//! bridge sees a run driven by any other, live, and resumes with `last_seq`
//! from frames the stream kept. Cancel and approvals travel by core-NATS
//! request to the bridge that runs the run ([`control`]).
//!
//! Seqs stay increasing across bridges because a session has one run at a
//! time (claimed in PostgreSQL, `Store::claim_run`) and each bridge starts
//! its runs above every seq reserved before it loaded the session and above
//! every seq it saw on the stream.

pub mod control;
mod follow;

use std::{sync::Arc, time::Duration};

use async_nats::{
    HeaderMap,
    jetstream::{self, stream::StorageType},
};
use axum::extract::ws::Utf8Bytes;
use service_kit::board_stream;
use tokio::sync::{OnceCell, mpsc};
use uuid::Uuid;

pub use follow::follow;

/// The stream of chat frames.
pub const STREAM: &str = "BOARDWIRE_CHAT";
const FRAMES_PREFIX: &str = "boardwire.chat.frames";
const CONTROL_PREFIX: &str = "boardwire.chat.control";
/// Frames kept per session: what a tab can resume from on a bridge that did
/// not follow the session while the frames went out.
const KEPT_PER_SESSION: i64 = 10_000;
/// How long frames are kept; older sessions reload from PostgreSQL.
const KEPT_FOR: Duration = Duration::from_secs(3600);
const KEPT_BYTES: i64 = 1 << 30;
/// The [`Session`](crate::session::Session) load that published a frame: a
/// follower skips its own load's frames, which it delivered already.
const ORIGIN_HEADER: &str = "Boardwire-Origin";
const SEQ_HEADER: &str = "Boardwire-Seq";
/// Frames waiting for NATS at most; past it live frames for other bridges'
/// tabs are dropped (never a terminal frame), and this bridge's own tabs are
/// not held up.
const QUEUE: usize = 65_536;

/// This bridge's link to the others; cheap to clone.
#[derive(Clone)]
pub struct Cluster {
    inner: Arc<Inner>,
}

struct Inner {
    client: async_nats::Client,
    context: jetstream::Context,
    stream: OnceCell<jetstream::stream::Stream>,
    outgoing: mpsc::Sender<Outgoing>,
}

/// A frame on its way to the stream.
struct Outgoing {
    subject: String,
    headers: HeaderMap,
    payload: bytes::Bytes,
    /// Terminal frames are published with an acknowledgement and re-sent
    /// until stored: a tab elsewhere must never wait for ever for its run's end.
    reliable: bool,
}

/// The stream's settings: file storage, so a NATS restart keeps it.
fn stream_config() -> jetstream::stream::Config {
    jetstream::stream::Config {
        name: STREAM.into(),
        subjects: vec![format!("{FRAMES_PREFIX}.>")],
        max_messages_per_subject: KEPT_PER_SESSION,
        max_age: KEPT_FOR,
        max_bytes: KEPT_BYTES,
        duplicate_window: board_stream::DUPLICATE_WINDOW,
        storage: StorageType::File,
        ..Default::default()
    }
}

/// Session ids may hold `.`, which NATS reads as a token separator: the
/// subject carries the id in hex, so every id is one token of its own.
fn token(session_id: &str) -> String {
    session_id.bytes().map(|b| format!("{b:02x}")).collect()
}

fn frames_subject(session_id: &str) -> String {
    format!("{FRAMES_PREFIX}.{}", token(session_id))
}

fn control_subject(session_id: &str) -> String {
    format!("{CONTROL_PREFIX}.{}", token(session_id))
}

impl Cluster {
    /// Connects in the background: the bridge starts while NATS is down,
    /// and its sessions work on this bridge alone until NATS answers.
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        let (client, context) = board_stream::connect_in_background(url, "agent-bridge").await?;
        let (outgoing, queue) = mpsc::channel(QUEUE);
        tokio::spawn(forward(client.clone(), context.clone(), queue));
        Ok(Self {
            inner: Arc::new(Inner {
                client,
                context,
                stream: OnceCell::new(),
                outgoing,
            }),
        })
    }

    fn client(&self) -> &async_nats::Client {
        &self.inner.client
    }

    async fn stream(&self) -> anyhow::Result<&jetstream::stream::Stream> {
        self.inner
            .stream
            .get_or_try_init(|| board_stream::ensure_stream(&self.inner.context, stream_config()))
            .await
    }

    /// Sends `text`, published at `seq` on `session_id` by the session load
    /// `origin` (nil: no load, as for a reaped run), to the other bridges.
    /// Never waits: the frame is queued for the forwarder.
    pub fn publish(
        &self,
        session_id: &str,
        origin: Uuid,
        seq: u64,
        text: &Utf8Bytes,
        terminal: bool,
    ) {
        let mut headers = HeaderMap::new();
        headers.insert(
            async_nats::header::NATS_MESSAGE_ID,
            format!("{session_id}:{seq}").as_str(),
        );
        headers.insert(ORIGIN_HEADER, origin.to_string().as_str());
        headers.insert(SEQ_HEADER, seq.to_string().as_str());
        let outgoing = Outgoing {
            subject: frames_subject(session_id),
            headers,
            payload: bytes::Bytes::copy_from_slice(text.as_bytes()),
            reliable: terminal,
        };
        match self.inner.outgoing.try_send(outgoing) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(outgoing)) if outgoing.reliable => {
                let queue = self.inner.outgoing.clone();
                tokio::spawn(async move { queue.send(outgoing).await });
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                crate::metrics::METRICS.cluster_frames_dropped.inc();
                tracing::warn!(session = %session_id, seq, "NATS is not keeping up: a frame for other bridges' tabs was dropped");
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }
}

/// Publishes queued frames in order on one connection, so the stream keeps
/// each session's frames in seq order.
async fn forward(
    client: async_nats::Client,
    context: jetstream::Context,
    mut queue: mpsc::Receiver<Outgoing>,
) {
    while let Some(out) = queue.recv().await {
        if out.reliable {
            let sent = context
                .publish_with_headers(
                    out.subject.clone(),
                    out.headers.clone(),
                    out.payload.clone(),
                )
                .await;
            let context = context.clone();
            tokio::spawn(async move {
                let stored = match sent {
                    Ok(ack) => ack.await.is_ok(),
                    Err(_) => false,
                };
                if !stored {
                    resend_until_stored(&context, out).await;
                }
            });
        } else if let Err(err) = client
            .publish_with_headers(out.subject, out.headers, out.payload)
            .await
        {
            tracing::warn!(%err, "cannot publish a chat frame to NATS");
        }
    }
}

/// Re-sends a terminal frame with backoff; its message id makes JetStream
/// drop a copy it already stored.
async fn resend_until_stored(context: &jetstream::Context, out: Outgoing) {
    let mut wait = Duration::from_millis(100);
    for _ in 0..20 {
        tokio::time::sleep(wait).await;
        let ack = context
            .publish_with_headers(
                out.subject.clone(),
                out.headers.clone(),
                out.payload.clone(),
            )
            .await;
        if let Ok(ack) = ack
            && ack.await.is_ok()
        {
            return;
        }
        wait = (wait * 2).min(Duration::from_secs(5));
    }
    tracing::error!(subject = %out.subject, "a terminal chat frame never reached NATS: tabs on other bridges miss it until they reload the session");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_session_id_is_one_subject_token() {
        assert_eq!(frames_subject("a.b"), "boardwire.chat.frames.612e62");
        assert_ne!(frames_subject("a.b"), frames_subject("a"));
        assert!(!token("..:x_-").contains('.'));
    }
}
