//! A session's presence: present on every board and channel it
//! subscribes to, and told who else is once it asks (`presence` query).

use protocol::board_frames::PresenceTarget;

use super::{Session, forbidden};
use crate::{
    auth::Access,
    error::Error,
    presence::{Member, board_scope, channel_scope},
};

impl Session {
    /// Who this connection is: the token's `sub` and name with auth on,
    /// else a seed 004 socket's agent id, else its `clientId` and `?name=`.
    fn member(&self, access: &Access) -> Member {
        match (&self.shared.auth, &access.subject, &self.agent) {
            (Some(_), Some(subject), _) => Member::new(subject.clone(), access.display_name()),
            (_, _, Some(agent)) => Member::new(agent.agent_id.clone(), Some(&agent.agent_id)),
            _ => Member::new(
                self.shared.presence.client_key(self.client.id),
                self.guest_name.as_deref(),
            ),
        }
    }

    pub(super) fn join_presence(&mut self, access: &Access, scope: String) {
        if self.present.iter().any(|(s, _)| *s == scope) {
            return;
        }
        let member = self.member(access);
        self.shared.presence.join(&scope, &member, self.client.id);
        self.present.push((scope, member));
    }

    pub(super) fn leave_presence(&mut self, scope: &str) {
        let presence = &self.shared.presence;
        if let Some(index) = self.present.iter().position(|(s, _)| s == scope) {
            let (_, member) = self.present.swap_remove(index);
            presence.leave(scope, &member.key, self.client.id);
        }
        if let Some(index) = self.watching.iter().position(|s| s == scope) {
            self.watching.swap_remove(index);
            presence.unwatch(scope, self.client.id);
        }
    }

    pub(super) fn leave_all_presence(&mut self) {
        let presence = &self.shared.presence;
        for (scope, member) in self.present.drain(..) {
            presence.leave(&scope, &member.key, self.client.id);
        }
        for scope in self.watching.drain(..) {
            presence.unwatch(&scope, self.client.id);
        }
    }

    /// A lagging client that drained gets each watched scope's list again.
    pub(super) fn resend_presence(&self) {
        for scope in &self.watching {
            self.shared.presence.resend(scope, &self.client);
        }
    }

    /// Answers `{type:"presence", boardId, id}` about a subscribed board,
    /// and pushes its joins and leaves from then on.
    pub(super) async fn presence_query(
        &mut self,
        access: &Access,
        board_ref: Option<String>,
        channel: Option<String>,
        id: Option<String>,
    ) {
        let Some(board_ref) = board_ref else {
            let channel = channel.unwrap_or_default();
            return self.channel_presence_query(access, channel, id).await;
        };
        let feed = self
            .feeds
            .iter()
            .find(|f| *f.board_id == *board_ref || f.slug == board_ref)
            .cloned();
        let Some(feed) = feed else {
            return self.refuse(
                Error::NotSubscribed(board_ref.clone()),
                id,
                Some(&board_ref),
            );
        };
        if !access.can_read(&feed.board_id, &feed.slug) {
            return self.refuse(forbidden(&board_ref), id, Some(&board_ref));
        }
        let target = PresenceTarget {
            board_id: Some(feed.board_id.to_string()),
            channel: None,
        };
        let scope = board_scope(&feed.board_id);
        let watched = self
            .shared
            .presence
            .watch(&scope, target, &self.client, id.clone())
            .await;
        match watched {
            Ok(()) if !self.watching.contains(&scope) => self.watching.push(scope),
            Ok(()) => {}
            Err(_) => self.refuse(Error::Timeout, id, Some(&board_ref)),
        }
    }

    /// Answers `{type:"presence", channel, id}` about a subscribed channel.
    async fn channel_presence_query(
        &mut self,
        access: &Access,
        channel: String,
        id: Option<String>,
    ) {
        if !self.channels.iter().any(|f| *f.name == *channel) {
            return self.refuse(Error::NotSubscribedChannel(channel), id, None);
        }
        if !access.can_subscribe(&channel) {
            let error = Error::ChannelForbidden {
                channel,
                publish: false,
            };
            return self.refuse(error, id, None);
        }
        let scope = channel_scope(&channel);
        let target = PresenceTarget {
            board_id: None,
            channel: Some(channel),
        };
        let watched = self
            .shared
            .presence
            .watch(&scope, target, &self.client, id.clone())
            .await;
        match watched {
            Ok(()) if !self.watching.contains(&scope) => self.watching.push(scope),
            Ok(()) => {}
            Err(_) => self.refuse(Error::Timeout, id, None),
        }
    }
}
