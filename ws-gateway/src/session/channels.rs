//! A connection's channel subscriptions and publishes.

use std::sync::Arc;

use protocol::{
    board_frames::{Ack, AckResult, ServerFrame},
    channel_frames::{ChannelPosition, Publish, Published, SubscribeChannel},
    v1::PublishRequest,
};

use super::{CALL_TIMEOUT, Session};
use crate::{
    auth::Access, client::Client, error::Error, presence::channel_scope, upstream::as_user,
};

impl Session {
    pub(super) async fn subscribe_channel(&mut self, access: &Access, frame: SubscribeChannel) {
        let SubscribeChannel {
            channel,
            since_offset,
            epoch,
            id,
            ..
        } = frame;
        if !access.can_subscribe(&channel) {
            let error = Error::ChannelForbidden {
                channel,
                publish: false,
            };
            return self.refuse(error, id, None);
        }
        let already = self.channels.iter().any(|f| *f.name == *channel);
        if !already && self.channels.len() >= self.shared.config.max_subscriptions {
            let limit = self.shared.config.max_subscriptions;
            return self.refuse(Error::TooManySubscriptions(limit), id, None);
        }
        let since = since_offset.zip(epoch.as_deref());
        let client = self.client.clone();
        let ack = |position: ChannelPosition| ack_subscribe(&client, id.clone(), position);
        let hub = self.shared.channels.clone();
        match hub.subscribe(&self.client, &channel, since, &ack).await {
            Ok(feed) => {
                if !already {
                    self.channels.push(feed);
                }
                self.join_presence(access, channel_scope(&channel));
            }
            Err(error) => self.refuse(error, id, None),
        }
    }

    pub(super) fn unsubscribe_channel(&mut self, channel: &str, id: Option<String>) {
        let Some(index) = self.channels.iter().position(|f| &*f.name == channel) else {
            return self.refuse(Error::NotSubscribedChannel(channel.to_owned()), id, None);
        };
        let feed = self.channels.swap_remove(index);
        self.shared.channels.unsubscribe(&feed, self.client.id);
        self.leave_presence(&channel_scope(channel));
        if let Some(id) = id {
            self.reply(ServerFrame::Ack(Ack {
                id,
                ok: true,
                result: None,
            }));
        }
    }

    /// Publishes through board-service as the caller; the ack carries the
    /// offset. Awaited, not spawned: one connection's publications take
    /// offsets in the order it sent them.
    pub(super) async fn publish(&self, access: &Access, frame: Publish) {
        if !access.can_publish(&frame.channel) {
            let error = Error::ChannelForbidden {
                channel: frame.channel,
                publish: true,
            };
            return self.refuse(error, frame.id, None);
        }
        let request = PublishRequest {
            ttl_ms: frame.ttl_ms(),
            channel: frame.channel,
            event: frame.event,
            data_json: protocol::json::encode(&frame.data),
        };
        let id = frame.id;
        let mut api = self.shared.channels.upstream().channels();
        let call = api.publish(as_user(self.token.as_deref(), request));
        let reply = match tokio::time::timeout(CALL_TIMEOUT, call).await {
            Ok(Ok(published)) => {
                let Some(id) = id else { return };
                let p = published.into_inner();
                ServerFrame::Ack(Ack {
                    id,
                    ok: true,
                    result: Some(AckResult::Published(Published {
                        channel: p.channel,
                        offset: p.offset,
                        epoch: p.epoch,
                    })),
                })
            }
            Ok(Err(status)) => ServerFrame::Error(Error::Upstream(status).frame(id, None)),
            Err(_) => ServerFrame::Error(Error::Timeout.frame(id, None)),
        };
        self.client.push_frame(&reply);
    }

    /// Resumes the channels this client was dropped from for lagging, now
    /// that its outbox drained: from the last offset it was sure to get,
    /// silently when the history still has it, else with `channel.reset`.
    pub(super) fn resume_lagged_channels(&self) {
        for feed in &self.channels {
            let Some((since, epoch)) = feed.take_lagged(self.client.id) else {
                continue;
            };
            let (hub, client, name) = (
                self.shared.channels.clone(),
                self.client.clone(),
                feed.name.clone(),
            );
            tokio::spawn(async move {
                let ack = |position: ChannelPosition| {
                    if !position.recovered {
                        client.push_frame(&ServerFrame::ChannelReset(position));
                    }
                };
                if let Err(error) = hub
                    .subscribe(&client, &name, Some((since, &epoch)), &ack)
                    .await
                {
                    tracing::warn!(channel = %name, %error, "cannot resume a lagged subscriber");
                }
            });
        }
    }

    /// Leaves every channel.
    pub(super) fn leave_channels(&mut self) {
        for feed in self.channels.drain(..) {
            self.shared.channels.unsubscribe(&feed, self.client.id);
        }
    }
}

fn ack_subscribe(client: &Arc<Client>, id: Option<String>, position: ChannelPosition) {
    if let Some(id) = id {
        client.push_frame(&ServerFrame::Ack(Ack {
            id,
            ok: true,
            result: Some(AckResult::ChannelSubscribed(position)),
        }));
    }
}
