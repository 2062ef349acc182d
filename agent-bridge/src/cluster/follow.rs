//! One bridge following one session on the stream: the frames other
//! bridges publish reach this bridge's tabs and its replay ring.

use std::{
    sync::{Arc, Weak},
    time::Duration,
};

use async_nats::jetstream::consumer::{DeliverPolicy, pull::OrderedConfig};
use axum::extract::ws::Utf8Bytes;
use futures::StreamExt;
use protocol::chat_frames::ServerFrame;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{Cluster, ORIGIN_HEADER, SEQ_HEADER, frames_subject};
use crate::session::Session;

/// Wait between attempts while NATS or the stream is away.
const RETRY: Duration = Duration::from_secs(2);

/// Follows `session`'s subject from the oldest frame the stream keeps until
/// `stop` (the session's load is dropped). Frames its own load `origin`
/// published are skipped; so is every seq at or below one already seen.
/// Calls `caught_up` with the highest seq seen once the frames stored
/// before it started are in (or the stream cannot be read), so the first
/// tab's replay has them.
pub async fn follow(
    cluster: Cluster,
    session: Weak<Session>,
    session_id: String,
    origin: Uuid,
    caught_up: impl FnOnce(u64),
    stop: CancellationToken,
) {
    let subject = frames_subject(&session_id);
    let mut caught_up = Some(caught_up);
    let mut seen = 0u64;
    loop {
        let followed = tokio::select! {
            () = stop.cancelled() => return,
            followed = follow_once(&cluster, &session, &subject, origin, &mut seen, &mut caught_up) => followed,
        };
        if let Err(err) = followed {
            tracing::warn!(session = %session_id, error = %format!("{err:#}"), "cannot follow the session on NATS; retrying");
        }
        // Not waiting for ever for history NATS cannot give now.
        if let Some(done) = caught_up.take() {
            done(seen);
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(RETRY) => {}
        }
    }
}

async fn follow_once(
    cluster: &Cluster,
    session: &Weak<Session>,
    subject: &str,
    origin: Uuid,
    seen: &mut u64,
    caught_up: &mut Option<impl FnOnce(u64)>,
) -> anyhow::Result<()> {
    let stream = cluster.stream().await?;
    // The last frame stored now: the history to read before the first tab.
    let target = match stream.get_last_raw_message_by_subject(subject).await {
        Ok(message) => message.sequence,
        Err(err)
            if err.kind()
                == async_nats::jetstream::stream::LastRawMessageErrorKind::NoMessageFound =>
        {
            0
        }
        Err(err) => anyhow::bail!("read the session's last frame: {err}"),
    };
    if target == 0
        && let Some(done) = caught_up.take()
    {
        done(*seen);
    }
    let consumer = stream
        .create_consumer(OrderedConfig {
            filter_subject: subject.to_owned(),
            deliver_policy: DeliverPolicy::All,
            ..Default::default()
        })
        .await
        .map_err(|e| anyhow::anyhow!("create a consumer: {e}"))?;
    let mut messages = consumer
        .messages()
        .await
        .map_err(|e| anyhow::anyhow!("read the stream: {e}"))?;
    while let Some(message) = messages.next().await {
        let message = message.map_err(|e| anyhow::anyhow!("stream failed: {e}"))?;
        let stream_seq = message.info().map(|info| info.stream_sequence).unwrap_or(0);
        let Some(session) = session.upgrade() else {
            return Ok(());
        };
        accept(&session, &message, origin, seen);
        if stream_seq >= target
            && let Some(done) = caught_up.take()
        {
            done(*seen);
        }
    }
    anyhow::bail!("the stream's consumer ended")
}

/// Hands one stored frame to the session, unless it is this load's own or
/// not newer than one seen.
fn accept(session: &Arc<Session>, message: &async_nats::Message, origin: Uuid, seen: &mut u64) {
    let header = |name: &str| {
        message
            .headers
            .as_ref()
            .and_then(|headers| headers.get(name))
            .map(|value| value.as_str().to_owned())
    };
    let Some(seq) = header(SEQ_HEADER).and_then(|s| s.parse::<u64>().ok()) else {
        tracing::warn!(subject = %message.subject, "a chat frame without a seq on the stream; skipped");
        return;
    };
    if seq <= *seen {
        return;
    }
    *seen = seq;
    if header(ORIGIN_HEADER).and_then(|s| s.parse::<Uuid>().ok()) == Some(origin) {
        return;
    }
    let text = match std::str::from_utf8(&message.payload) {
        Ok(text) => text,
        Err(_) => {
            tracing::warn!(subject = %message.subject, seq, "a chat frame that is not UTF-8 on the stream; skipped");
            return;
        }
    };
    match serde_json::from_str::<ServerFrame>(text) {
        Ok(frame) => session.accept_remote(seq, Utf8Bytes::from(text), &frame),
        Err(err) => {
            tracing::warn!(subject = %message.subject, seq, %err, "an undecodable chat frame on the stream; skipped");
        }
    }
}
