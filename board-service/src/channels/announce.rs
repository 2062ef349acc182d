//! With `NATS_URL`: each committed publication is announced to the
//! gateways on its channel's core-NATS subject
//! (`board_stream::channel_subject`), from a queue of its own.
//!
//! The queue is why `Publish` never waits for NATS: the client buffers
//! only so much while NATS is away, and then its `publish` would block.
//! A full queue drops announcements instead. That loses nothing: a
//! publication NATS never carried is a gap at the gateways, or a tail
//! their position checks find, filled from history either way.

use prost::Message as _;
use protocol::v1::ChannelPublication;
use service_kit::board_stream;
use tokio::sync::mpsc;

/// Announcements waiting for NATS at most.
const QUEUE: usize = 16_384;

#[derive(Clone)]
pub struct Announcer {
    queue: mpsc::Sender<ChannelPublication>,
}

impl Announcer {
    /// Starts the task that publishes the queue on `nats`; it ends when
    /// every `Announcer` is dropped.
    pub fn spawn(nats: async_nats::Client) -> Self {
        let (queue, mut queued) = mpsc::channel::<ChannelPublication>(QUEUE);
        tokio::spawn(async move {
            while let Some(publication) = queued.recv().await {
                let subject = board_stream::channel_subject(&publication.channel);
                if let Err(err) = nats
                    .publish(subject, publication.encode_to_vec().into())
                    .await
                {
                    tracing::warn!(%err, channel = %publication.channel, "cannot announce a publication on NATS");
                }
            }
        });
        Self { queue }
    }

    /// Queues `publication`, or drops it when NATS is this far behind.
    pub fn announce(&self, publication: &ChannelPublication) {
        if self.queue.try_send(publication.clone()).is_err() {
            tracing::debug!(channel = %publication.channel, "announcement queue full; gateways catch up from history");
        }
    }
}
