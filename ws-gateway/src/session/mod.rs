//! What a connection may do and what it watches; turns client frames into
//! subscriptions and board-service calls. Shared by WebSocket and SSE.

mod channels;
mod checks;
mod commands;
mod presence;

use protocol::time::now_ms;
use std::{sync::Arc, time::Duration};

use protocol::{
    board_frames::{Ack, AckResult, ClientFrame, ServerFrame},
    v1::{BoardSnapshot, GetBoardRequest},
};

use crate::{
    auth::{Access, Grant},
    client::Client,
    error::{CloseReason, Error},
    hub::Feed,
    presence::board_scope,
    state::Shared,
};

pub(crate) const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// One connection's protocol state.
pub struct Session {
    pub client: Arc<Client>,
    shared: Arc<Shared>,
    /// `None` until a valid token arrives, when the gateway requires one.
    access: Option<Arc<Access>>,
    /// The token behind `access`, forwarded with every command.
    token: Option<Arc<str>>,
    feeds: Vec<Arc<Feed>>,
    channels: Vec<Arc<crate::channels::ChannelFeed>>,
    /// The agent a seed 004 socket belongs to; its pings are heartbeats.
    pub agent: Option<crate::channels::Agent>,
    /// With auth off, the `?name=` this connection gave.
    guest_name: Option<String>,
    /// Scopes (boards, channels) this connection is present on, as whom.
    present: Vec<(String, crate::presence::Member)>,
    /// Scopes whose presence changes this connection gets.
    watching: Vec<String>,
}

impl Session {
    pub fn new(client: Arc<Client>, shared: Arc<Shared>, grant: Option<Grant>) -> Self {
        if let Some(grant) = &grant {
            client.set_expiry_ms(grant.access.expires_ms);
        }
        let (access, token) = match grant {
            Some(Grant { access, token }) => (Some(Arc::new(access)), token.map(Arc::from)),
            None => (None, None),
        };
        Self {
            client,
            shared,
            access,
            token,
            feeds: Vec::new(),
            channels: Vec::new(),
            agent: None,
            guest_name: None,
            present: Vec::new(),
            watching: Vec::new(),
        }
    }

    /// The name shown for this connection with auth off (`?name=`).
    pub fn set_guest_name(&mut self, name: Option<String>) {
        self.guest_name = name;
    }

    /// Answers the frame `id` (about `board`, if any) with `error`.
    fn refuse(&self, error: Error, id: Option<String>, board: Option<&str>) {
        let frame = error.frame(id, board.map(str::to_owned));
        self.reply(ServerFrame::Error(frame));
    }

    fn reply(&self, frame: ServerFrame) {
        if matches!(frame, ServerFrame::Error(_)) {
            self.shared.metrics.frame_errors.inc();
        }
        self.client.push_frame(&frame);
    }

    /// Handles one text frame; never fails, bad input gets an error frame.
    pub async fn handle_text(&mut self, text: &str) {
        match ClientFrame::parse(text) {
            Ok(frame) => self.handle(frame).await,
            Err(e) => self.refuse(
                Error::BadFrame {
                    code: e.code,
                    message: e.message,
                },
                e.id,
                None,
            ),
        }
    }

    pub async fn handle(&mut self, frame: ClientFrame) {
        if let ClientFrame::Auth { token } = &frame {
            return self.authenticate(token).await;
        }
        if let ClientFrame::Ping {} = frame {
            if let Some(agent) = &mut self.agent {
                agent.beat(&self.shared);
            }
            return self.reply(ServerFrame::Pong {
                ts: now_ms() as i64,
            });
        }
        let Some(access) = self.access.clone() else {
            let message = "send an auth frame with a valid token first";
            return self.refuse(Error::Unauthorized(message.into()), frame_id(&frame), None);
        };
        if access.expired_at(now_ms()) {
            // The heartbeat closes it within a tick; refuse what arrives first.
            let expired = Error::Unauthorized(CloseReason::TokenExpired.text().into());
            self.refuse(expired, frame_id(&frame), None);
            return self.client.close(CloseReason::TokenExpired);
        }
        if let Err(error) = checks::check_text(&frame) {
            return self.refuse(error, frame_id(&frame), None);
        }
        match frame {
            ClientFrame::Subscribe {
                board_id,
                since_version,
                id,
            } => {
                self.subscribe(&access, &board_id, since_version, id).await;
            }
            ClientFrame::Unsubscribe { board_id, id } => self.unsubscribe(&board_id, id),
            ClientFrame::TaskCreate(c) => self.spawn_command(
                access,
                c.id.clone(),
                c.board_id.clone(),
                None,
                move |mut api, token| async move {
                    api.create_task(crate::upstream::as_user(token.as_deref(), c.to_request()))
                        .await
                        .map(|r| AckResult::task(r.get_ref()))
                },
            ),
            ClientFrame::TaskUpdate(c) => self.spawn_command(
                access,
                c.id.clone(),
                c.board_id.clone(),
                Some(c.data.id.clone()),
                move |api, token| async move {
                    commands::edit_task(api, token.as_deref(), &c)
                        .await
                        .map(|task| AckResult::task(&task))
                },
            ),
            ClientFrame::TaskMove(c) => self.spawn_command(
                access,
                c.id.clone(),
                c.board_id.clone(),
                Some(c.data.id.clone()),
                move |mut api, token| async move {
                    api.move_task(crate::upstream::as_user(token.as_deref(), c.to_request()))
                        .await
                        .map(|r| AckResult::task(r.get_ref()))
                },
            ),
            ClientFrame::TaskDelete(c) => self.spawn_command(
                access,
                c.id.clone(),
                c.board_id.clone(),
                Some(c.data.id.clone()),
                move |mut api, token| async move {
                    api.delete_task(crate::upstream::as_user(token.as_deref(), c.to_request()))
                        .await
                        .map(|r| AckResult::Deleted {
                            task_id: r.get_ref().task_id.clone(),
                            board_version: r.get_ref().board_version,
                        })
                },
            ),
            ClientFrame::SubscribeChannel(c) => self.subscribe_channel(&access, c).await,
            ClientFrame::UnsubscribeChannel(c) => self.unsubscribe_channel(&c.channel, c.id),
            ClientFrame::Publish(p) => self.publish(&access, p).await,
            ClientFrame::Presence {
                board_id,
                channel,
                id,
            } => self.presence_query(&access, board_id, channel, id).await,
            ClientFrame::Auth { .. } | ClientFrame::Ping {} => {}
        }
    }

    async fn authenticate(&mut self, token: &str) {
        if self.shared.auth.is_none() {
            return;
        }
        match crate::auth::verify(&self.shared, token).await {
            Ok(grant) => {
                self.client.set_expiry_ms(grant.access.expires_ms);
                self.client.set_auth_deadline_ms(0);
                self.access = Some(Arc::new(grant.access));
                self.token = grant.token.map(Arc::from);
            }
            Err((reason, message)) => {
                self.refuse(Error::Unauthorized(message), None, None);
                self.client.close(reason);
            }
        }
    }

    async fn subscribe(
        &mut self,
        access: &Access,
        board_ref: &str,
        since: Option<u64>,
        id: Option<String>,
    ) {
        let already = self
            .feeds
            .iter()
            .any(|f| &*f.board_id == board_ref || f.slug == board_ref);
        if !already && self.feeds.len() >= self.shared.config.max_subscriptions {
            let limit = self.shared.config.max_subscriptions;
            return self.refuse(Error::TooManySubscriptions(limit), id, None);
        }
        let hub = &self.shared.hub;
        let mut id = id;
        if let Some(feed) = hub.find(board_ref) {
            if !access.can_read(&feed.board_id, &feed.slug) {
                return self.refuse(forbidden(board_ref), id, Some(board_ref));
            }
            // The ack goes first, so it precedes the board's frames.
            self.ack_subscribe(id.take(), &feed.board_id, &feed.slug);
            if let Some(feed) = hub.subscribe_existing(&self.client, board_ref, since) {
                return self.remember(access, feed);
            }
        }
        let snapshot = match self.snapshot(board_ref).await {
            Ok(snapshot) => snapshot,
            Err(error) => return self.refuse(error, id, Some(board_ref)),
        };
        let board = snapshot.board.clone().unwrap_or_default();
        if !access.can_read(&board.id, &board.slug) {
            return self.refuse(forbidden(board_ref), id, Some(board_ref));
        }
        self.ack_subscribe(id, &board.id, &board.slug);
        let feed = hub.subscribe(&self.client, snapshot, since);
        self.remember(access, feed);
    }

    fn ack_subscribe(&self, id: Option<String>, board_id: &str, slug: &str) {
        if let Some(id) = id {
            self.reply(ServerFrame::Ack(Ack {
                id,
                ok: true,
                result: Some(AckResult::Subscribed {
                    board_id: board_id.to_owned(),
                    slug: slug.to_owned(),
                }),
            }));
        }
    }

    fn remember(&mut self, access: &Access, feed: Arc<Feed>) {
        if !self.feeds.iter().any(|f| Arc::ptr_eq(f, &feed)) {
            self.join_presence(access, board_scope(&feed.board_id));
            self.feeds.push(feed);
        }
    }

    async fn snapshot(&self, board_ref: &str) -> Result<BoardSnapshot, Error> {
        let request = GetBoardRequest {
            board_id: board_ref.to_owned(),
        };
        let mut api = self.shared.hub.upstream().client();
        match tokio::time::timeout(CALL_TIMEOUT, api.get_board(request)).await {
            Ok(Ok(response)) => Ok(response.into_inner()),
            Ok(Err(status)) => Err(Error::Upstream(status)),
            Err(_) => Err(Error::Timeout),
        }
    }

    fn unsubscribe(&mut self, board_ref: &str, id: Option<String>) {
        let Some(index) = self
            .feeds
            .iter()
            .position(|f| &*f.board_id == board_ref || f.slug == board_ref)
        else {
            return self.refuse(Error::NotSubscribed(board_ref.to_owned()), id, None);
        };
        let feed = self.feeds.swap_remove(index);
        self.shared.hub.unsubscribe(&feed, self.client.id);
        self.leave_presence(&board_scope(&feed.board_id));
        self.ack_subscribe(id, &feed.board_id, &feed.slug);
    }

    /// Gives a client that lagged and drained a fresh `board.sync` of each board.
    pub fn resync(&self) {
        for feed in &self.feeds {
            feed.resync(self.client.id);
        }
        self.resume_lagged_channels();
        self.resend_presence();
    }

    /// Leaves every board and channel; closes feeds nobody else watches.
    pub fn leave(&mut self) {
        for feed in self.feeds.drain(..) {
            self.shared.hub.unsubscribe(&feed, self.client.id);
        }
        self.leave_channels();
        self.leave_all_presence();
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.leave();
    }
}

/// The `id` a reply to `frame` carries.
fn frame_id(frame: &ClientFrame) -> Option<String> {
    match frame {
        ClientFrame::Subscribe { id, .. }
        | ClientFrame::Unsubscribe { id, .. }
        | ClientFrame::Presence { id, .. } => id.clone(),
        ClientFrame::TaskCreate(c) => Some(c.id.clone()),
        ClientFrame::TaskUpdate(c) => Some(c.id.clone()),
        ClientFrame::TaskMove(c) => Some(c.id.clone()),
        ClientFrame::TaskDelete(c) => Some(c.id.clone()),
        ClientFrame::SubscribeChannel(c) => c.id.clone(),
        ClientFrame::UnsubscribeChannel(c) => c.id.clone(),
        ClientFrame::Publish(p) => p.id.clone(),
        ClientFrame::Ping {} | ClientFrame::Auth { .. } => None,
    }
}

fn forbidden(board_ref: &str) -> Error {
    Error::Forbidden {
        board: board_ref.to_owned(),
        write: false,
    }
}
