//! The process's one LISTEN connection, for board commits and channel
//! publications alike.

use std::time::Duration;

use sqlx::postgres::PgListener;
use uuid::Uuid;

use super::{Announcer, EventHub};
use crate::{channels::ChannelHub, store::log::NOTIFY_CHANNEL};

/// Listens for commit notifications and pokes the matching feeds; reconnects
/// on its own, poking every feed afterwards since notifications sent while
/// disconnected are lost. Skips what this process's `announcer` sent: its
/// commits poked their feeds already.
pub fn spawn_listener(
    hub: EventHub,
    channels: ChannelHub,
    announcer: Announcer,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let shutdown = hub.shutdown_token().clone();
        let mut attempt = 0u32;
        loop {
            let connected = async {
                let mut listener = PgListener::connect_with(hub.pool()).await?;
                listener
                    .listen_all([NOTIFY_CHANNEL, crate::channels::NOTIFY_CHANNEL])
                    .await?;
                Ok::<_, sqlx::Error>(listener)
            };
            let mut listener = tokio::select! {
                result = connected => match result {
                    Ok(listener) => listener,
                    Err(err) => {
                        attempt += 1;
                        tracing::warn!(error = %err, attempt, "cannot LISTEN for board events; retrying");
                        tokio::select! {
                            () = tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt.min(25)))) => continue,
                            () = shutdown.cancelled() => return,
                        }
                    }
                },
                () = shutdown.cancelled() => return,
            };
            attempt = 0;
            hub.poke_all();
            channels.poke_all();
            loop {
                let next = tokio::select! {
                    next = listener.try_recv() => next,
                    () = shutdown.cancelled() => return,
                };
                match next {
                    Ok(Some(notification)) if announcer.sent_here(notification.process_id()) => {}
                    Ok(Some(notification))
                        if notification.channel() == crate::channels::NOTIFY_CHANNEL =>
                    {
                        channels.poke(notification.payload());
                    }
                    Ok(Some(notification)) => {
                        let (board, version) = notification
                            .payload()
                            .split_once(':')
                            .unwrap_or((notification.payload(), ""));
                        if let Ok(board_id) = Uuid::parse_str(board) {
                            match version.parse() {
                                Ok(version) => hub.poke_past(board_id, version),
                                Err(_) => hub.poke(board_id),
                            }
                        }
                    }
                    // The connection dropped; PgListener reconnects on the next call.
                    Ok(None) => {
                        tracing::warn!("LISTEN connection lost; re-checking every watched board");
                        hub.poke_all();
                        channels.poke_all();
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, "LISTEN connection failed; reconnecting");
                        break;
                    }
                }
            }
        }
    })
}
