//! Catching one client up from board-service's log when it resumes from
//! further back than its feed's window: a short-lived `WatchBoard` from the
//! client's version that ends where the feed took over.

use std::{sync::Arc, time::Duration};

use protocol::{board_frames::ServerFrame, event_type, v1::WatchBoardRequest};

use super::{Feed, Frame};
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
