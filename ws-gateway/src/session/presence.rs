//! A session's presence: present on every board it subscribes to, and
//! told who else is once it asks (`presence` query).

use std::sync::Arc;

use protocol::board_frames::PresenceTarget;

use super::{Session, forbidden};
use crate::{
    auth::Access,
    error::Error,
    presence::{Member, board_scope},
};

impl Session {
    /// Who this connection is: the token's `sub` and name with auth on,
    /// else its `clientId` and `?name=`.
    fn member(&self, access: &Access) -> Member {
        match (&self.shared.auth, &access.subject) {
            (Some(_), Some(subject)) => Member::new(subject.clone(), access.display_name()),
            _ => Member::new(
                self.shared.presence.client_key(self.client.id),
                self.guest_name.as_deref(),
            ),
        }
    }

    pub(super) fn join_presence(&mut self, access: &Access, board_id: &Arc<str>) {
        if self.present.iter().any(|(b, _)| b == board_id) {
            return;
        }
        let member = self.member(access);
        self.shared
            .presence
            .join(&board_scope(board_id), &member, self.client.id);
        self.present.push((board_id.clone(), member));
    }

    pub(super) fn leave_presence(&mut self, board_id: &str) {
        let presence = &self.shared.presence;
        let scope = board_scope(board_id);
        if let Some(index) = self.present.iter().position(|(b, _)| &**b == board_id) {
            let (_, member) = self.present.swap_remove(index);
            presence.leave(&scope, &member.key, self.client.id);
        }
        if let Some(index) = self.watching.iter().position(|b| &**b == board_id) {
            self.watching.swap_remove(index);
            presence.unwatch(&scope, self.client.id);
        }
    }

    pub(super) fn leave_all_presence(&mut self) {
        let presence = &self.shared.presence;
        for (board_id, member) in self.present.drain(..) {
            presence.leave(&board_scope(&board_id), &member.key, self.client.id);
        }
        for board_id in self.watching.drain(..) {
            presence.unwatch(&board_scope(&board_id), self.client.id);
        }
    }

    /// A lagging client that drained gets each watched board's list again.
    pub(super) fn resend_presence(&self) {
        for board_id in &self.watching {
            self.shared
                .presence
                .resend(&board_scope(board_id), &self.client);
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
            let message = format!("presence on channel {channel:?} is not served yet");
            return self.refuse(Error::InvalidArgument(message), id, None);
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
            Ok(()) if !self.watching.contains(&feed.board_id) => {
                self.watching.push(feed.board_id.clone());
            }
            Ok(()) => {}
            Err(_) => self.refuse(Error::Timeout, id, Some(&board_ref)),
        }
    }
}
