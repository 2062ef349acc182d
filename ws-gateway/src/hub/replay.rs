//! Catching one client up from board-service's log when it resumes from
//! further back than its feed's window: a short-lived `WatchBoard` from the
//! client's version that ends where the feed took over.

use std::{sync::Arc, time::Duration};

use protocol::{board_frames::ServerFrame, event_type, v1::WatchBoardRequest};

use super::Feed;
use crate::frame::Frame;
use crate::{client::Client, upstream::Upstream};

/// A replay that takes longer gives up and sends `board.sync` instead.
const REPLAY_LIMIT: Duration = Duration::from_secs(30);

pub fn spawn(
    feed: Arc<Feed>,
    upstream: Upstream,
    client: Arc<Client>,
    id: u64,
    since: u64,
    until: u64,
) {
    tokio::spawn(async move {
        let replayed = tokio::time::timeout(
            REPLAY_LIMIT,
            replay(&feed, &upstream, &client, id, since, until),
        )
        .await
        .ok()
        .flatten();
        if replayed.is_none() {
            tracing::debug!(board = %feed.board_id, client = client.id, since, "log replay failed; sending board.sync");
        }
        feed.finish_replay(client.id, id, replayed);
    });
}

/// Queues the frames after `since` up to `until`; the version reached, or
/// `None` when the log no longer has them or the client cannot take them.
async fn replay(
    feed: &Feed,
    upstream: &Upstream,
    client: &Client,
    id: u64,
    since: u64,
    until: u64,
) -> Option<u64> {
    let request = WatchBoardRequest {
        board_id: feed.board_id.to_string(),
        after_version: since,
    };
    let mut stream = upstream
        .client()
        .watch_board(request)
        .await
        .ok()?
        .into_inner();
    let mut last = since;
    while last < until {
        let event = stream.message().await.ok()??;
        if event.r#type == event_type::BOARD_RESYNC || event.version != last + 1 {
            return None;
        }
        let frame = ServerFrame::from_event(&event)?;
        let frame = Frame::encode(&feed.board_id, event.version, &frame);
        if !feed.push_replayed(client.id, id, &frame) {
            return None;
        }
        last = event.version;
    }
    Some(last)
}

impl Feed {
    /// Queues one replayed frame, if replay `id` of `client_id` is still
    /// wanted (the client may have left, re-subscribed or been resynced).
    pub fn push_replayed(&self, client_id: u64, id: u64, frame: &Frame) -> bool {
        let state = self.state();
        let Some(sub) = state
            .subscribers
            .iter()
            .find(|s| s.client.id == client_id && s.replay.as_ref().is_some_and(|(r, _)| *r == id))
        else {
            return false;
        };
        sub.client.push_board(frame).is_ok()
    }

    /// Ends replay `id` of `client_id`: releases the live frames held back
    /// meanwhile, or, when the log could not fill the gap, gives a `board.sync`.
    pub fn finish_replay(self: &Arc<Self>, client_id: u64, id: u64, replayed_to: Option<u64>) {
        let mut state = self.state();
        let Some(index) = state.subscribers.iter().position(|s| {
            s.client.id == client_id && s.replay.as_ref().is_some_and(|(r, _)| *r == id)
        }) else {
            return;
        };
        let mut sub = state.subscribers.swap_remove(index);
        let (_, held) = sub.replay.take().expect("matched above");
        match replayed_to {
            Some(last) => {
                sub.last = last;
                for frame in held.iter().filter(|f| f.version > last) {
                    if sub.client.push_board(frame).is_err() {
                        sub.client.drop_board(&self.board_id);
                        sub.dropped = true;
                        break;
                    }
                    sub.last = frame.version;
                }
            }
            None => {
                sub.client.drop_board(&self.board_id);
                self.catch_up(&mut state, &mut sub, None);
            }
        }
        state.subscribers.push(sub);
    }
}
