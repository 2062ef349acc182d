//! The one task that keeps board-service's view of this gateway current:
//! batches of joins and leaves, and the lease renewed every third of it.

use std::{sync::Arc, time::Duration};

use protocol::v1::UpdatePresenceRequest;

use super::Presence;

/// Longest an `UpdatePresence` call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// Sends batches until the gateway stops, then releases the lease.
pub async fn run(presence: Arc<Presence>) {
    let stop = presence.stop.clone();
    let mut failures = 0u32;
    // Whether board-service may hold rows of ours that need the lease.
    let mut holding = false;
    while presence.next_batch_due().await {
        let (changes, reset, empty) = {
            let mut local = presence.local();
            if !local.has_changes() && local.is_empty() && !holding {
                continue;
            }
            let (changes, reset) = local.take_batch();
            (changes, reset, local.is_empty())
        };
        let request = UpdatePresenceRequest {
            gateway_id: presence.instance.to_string(),
            lease_ms: presence.lease_ms,
            changes,
            reset,
            release: false,
        };
        let called = tokio::time::timeout(
            CALL_TIMEOUT,
            presence.upstream.presence().update_presence(request),
        )
        .await;
        match called {
            Ok(Ok(response)) => {
                failures = 0;
                holding = !empty;
                if response.get_ref().created && !reset {
                    // Our earlier rows were swept: send everything again, now.
                    tracing::info!(gateway = %presence.instance, "presence lease was new; sending every member again");
                    presence.local().reset = true;
                    presence.changed.notify_one();
                }
            }
            failed => {
                failures += 1;
                let why = match failed {
                    Ok(Err(status)) => status.to_string(),
                    _ => "timed out".to_owned(),
                };
                tracing::warn!(failures, error = %why, "cannot update presence; will send every member again");
                presence.local().reset = true;
                holding = true;
                let backoff = Duration::from_millis(200 * u64::from(failures.min(25)));
                tokio::select! {
                    () = tokio::time::sleep(backoff) => presence.changed.notify_one(),
                    () = stop.cancelled() => break,
                }
            }
        }
    }
    release(&presence).await;
}

/// Drops this gateway's lease and rows, so its members leave at once
/// rather than when the lease runs out.
async fn release(presence: &Presence) {
    let request = UpdatePresenceRequest {
        gateway_id: presence.instance.to_string(),
        lease_ms: presence.lease_ms,
        release: true,
        ..Default::default()
    };
    let released = tokio::time::timeout(
        Duration::from_secs(2),
        presence.upstream.presence().update_presence(request),
    )
    .await;
    if !matches!(released, Ok(Ok(_))) {
        tracing::info!("could not release the presence lease; it runs out on its own");
    }
}
