//! A board resource subscription: board-service's WatchBoard stream, one
//! `notifications/resources/updated` per event, in version order.

use std::time::Duration;

use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use super::board::BoardClient;

/// Pause before reopening a watch that broke (board-service restarting).
const REOPEN_AFTER: Duration = Duration::from_secs(1);

/// Watches `board` from `after_version` until `stop`, calling `notify` for
/// every change in order. `notify` returns false once the client is gone.
/// A broken stream is reopened from the last version seen, so no change is
/// missed; a stream refused for good (access revoked, board deleted) ends it.
pub async fn watch_board<F, Fut>(
    board: BoardClient,
    board_ref: String,
    mut after_version: u64,
    stop: CancellationToken,
    mut notify: F,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    loop {
        let opened = tokio::select! {
            opened = board.watch(&board_ref, after_version) => opened,
            () = stop.cancelled() => return,
        };
        let mut events = match opened {
            Ok(events) => events,
            Err(error) if error.code == protocol::board_frames::ErrorCode::Unavailable => {
                tracing::debug!(board = %board_ref, %error.message, "watch not open yet; retrying");
                tokio::select! {
                    () = tokio::time::sleep(REOPEN_AFTER) => continue,
                    () = stop.cancelled() => return,
                }
            }
            Err(error) => {
                tracing::info!(board = %board_ref, %error.message, "board watch refused; subscription ends");
                return;
            }
        };
        loop {
            let next = tokio::select! {
                next = events.next() => next,
                () = stop.cancelled() => return,
            };
            match next {
                Some(Ok(event)) => {
                    // board.resync says the log moved on: the board changed,
                    // and watching again from its version goes on from there.
                    after_version = event.version.max(after_version);
                    if !notify().await {
                        return;
                    }
                }
                Some(Err(status)) => {
                    tracing::debug!(board = %board_ref, %status, "board watch broke; reopening");
                    break;
                }
                None => break,
            }
        }
        tokio::select! {
            () = tokio::time::sleep(REOPEN_AFTER / 10) => {}
            () = stop.cancelled() => return,
        }
    }
}
