//! Keeping this bridge's runs leased, and ending runs a dead bridge left.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::Runner;
use crate::{session::Sessions, store::Store};

/// Marks runs whose lease ran out as interrupted and tells their sessions:
/// a session this bridge has in memory gets the `error` frame live, and with
/// NATS so do the other bridges' tabs; a session loaded later finds it in
/// PostgreSQL. Returns how many.
pub async fn reap_interrupted(store: &Store, sessions: &Sessions) -> sqlx::Result<usize> {
    let reaped = store.reap_interrupted().await?;
    for run in &reaped {
        tracing::warn!(run = %run.run_id, session = %run.session_id, "run interrupted: its bridge is gone");
        crate::metrics::METRICS.run_ended("interrupted");
        if let Some(session) = sessions.in_memory(&run.session_id) {
            let seq = session.publish_interrupted(run.run_id, &run.message, run.seq);
            if seq != run.seq {
                store.set_terminal_seq(run.run_id, seq).await?;
            }
        } else if let Some(cluster) = sessions.cluster() {
            // Tabs on other bridges are told too, though this one has none.
            let frame = crate::session::interrupted_frame(run.run_id, &run.message, run.seq);
            let text = protocol::json::encode(&frame).into();
            cluster.publish(&run.session_id, uuid::Uuid::nil(), run.seq, &text, true);
        }
    }
    Ok(reaped.len())
}

/// Renews the leases of this bridge's runs every third of a lease, and
/// every half lease reaps expired ones and settles other bridges' runs
/// that ended without their terminal frame reaching this bridge, until `stop`.
pub fn spawn_lease_keeper(
    runner: Runner,
    sessions: Sessions,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let (store, lease, instance) = (runner.store.clone(), runner.lease, runner.instance);
    let renew_every = (lease / 3).max(Duration::from_millis(30));
    let reap_every = (lease / 2).max(Duration::from_millis(50));
    tokio::spawn(async move {
        let mut renew = tokio::time::interval(renew_every);
        let mut reap = tokio::time::interval(reap_every);
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                _ = renew.tick() => {
                    if let Err(err) = store.renew_leases(instance, lease).await {
                        tracing::warn!(error = %err, "cannot renew run leases");
                    }
                }
                _ = reap.tick() => {
                    if let Err(err) = reap_interrupted(&store, &sessions).await {
                        tracing::warn!(error = %err, "cannot reap interrupted runs");
                    }
                    if let Err(err) = super::settle::settle_remote_runs(&store, &sessions).await {
                        tracing::warn!(error = %err, "cannot settle other bridges' ended runs");
                    }
                }
            }
        }
    })
}
