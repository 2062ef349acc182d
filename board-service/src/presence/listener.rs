//! The presence LISTEN connection and the lease sweeper.

use std::time::Duration;

use sqlx::postgres::PgListener;

use super::{PresenceHub, store};

/// How often expired gateways are swept.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// Listens for presence notifications and pokes the matching feeds;
/// reconnects on its own, poking every feed afterwards.
pub fn spawn_listener(hub: PresenceHub) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let shutdown = hub.shutdown_token().clone();
        let mut attempt = 0u32;
        loop {
            let connected = async {
                let mut listener = PgListener::connect_with(hub.pool()).await?;
                listener.listen(store::NOTIFY_CHANNEL).await?;
                Ok::<_, sqlx::Error>(listener)
            };
            let mut listener = tokio::select! {
                result = connected => match result {
                    Ok(listener) => listener,
                    Err(err) => {
                        attempt += 1;
                        tracing::warn!(error = %err, attempt, "cannot LISTEN for presence; retrying");
                        let backoff = Duration::from_millis(200 * u64::from(attempt.min(25)));
                        tokio::select! {
                            () = tokio::time::sleep(backoff) => continue,
                            () = shutdown.cancelled() => return,
                        }
                    }
                },
                () = shutdown.cancelled() => return,
            };
            attempt = 0;
            hub.poke_all();
            loop {
                let next = tokio::select! {
                    next = listener.try_recv() => next,
                    () = shutdown.cancelled() => return,
                };
                match next {
                    Ok(Some(notification)) => hub.poke(notification.payload()),
                    Ok(None) => {
                        tracing::warn!("presence LISTEN connection lost; re-reading every scope");
                        hub.poke_all();
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, "presence LISTEN failed; reconnecting");
                        break;
                    }
                }
            }
        }
    })
}

/// Every second, removes gateways whose lease ran out (see [`store::sweep`]).
pub fn spawn_sweeper(hub: PresenceHub) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let shutdown = hub.shutdown_token().clone();
        loop {
            tokio::select! {
                () = tokio::time::sleep(SWEEP_EVERY) => {}
                () = shutdown.cancelled() => return,
            }
            match store::sweep(hub.pool()).await {
                Ok(0) => {}
                Ok(scopes) => tracing::info!(scopes, "swept expired presence leases"),
                Err(err) => tracing::warn!(error = %err, "cannot sweep presence leases"),
            }
        }
    })
}
