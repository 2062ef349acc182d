//! Presence rows in PostgreSQL: leases, per-gateway counts, the aggregate.

use std::collections::{BTreeMap, BTreeSet};

use protocol::v1::{PresenceEntry, UpdatePresenceRequest};
use sqlx::{PgPool, Postgres, Transaction};

use crate::error::Result;

/// The NOTIFY channel: payload is the changed scope, sent at commit.
pub const NOTIFY_CHANNEL: &str = "presence_changes";

/// What [`apply`] did.
pub struct Applied {
    /// The lease was missing or had run out before this call.
    pub created: bool,
}

/// The request's changes, the last one per (scope, key) winning.
type Changes = BTreeMap<(String, String), (String, u32)>;

/// Renews `request.gateway_id`'s lease and applies its changes, in one
/// transaction holding the lease row, so the sweeper either sees the
/// renewed lease or deletes the gateway before this call writes.
pub async fn apply(pool: &PgPool, request: &UpdatePresenceRequest) -> Result<Applied> {
    let gateway = request.gateway_id.as_str();
    let mut tx = pool.begin().await?;
    let mut changed = BTreeSet::new();
    if request.release {
        let scopes: Vec<String> =
            sqlx::query_scalar("DELETE FROM presence WHERE gateway_id = $1 RETURNING scope")
                .bind(gateway)
                .fetch_all(&mut *tx)
                .await?;
        sqlx::query("DELETE FROM presence_gateways WHERE gateway_id = $1")
            .bind(gateway)
            .execute(&mut *tx)
            .await?;
        changed.extend(scopes);
        notify(&mut tx, &changed).await?;
        tx.commit().await?;
        return Ok(Applied { created: false });
    }
    let alive: Option<bool> = sqlx::query_scalar(
        "SELECT expires_at > now() FROM presence_gateways WHERE gateway_id = $1 FOR UPDATE",
    )
    .bind(gateway)
    .fetch_optional(&mut *tx)
    .await?;
    let created = alive != Some(true);
    sqlx::query(
        "INSERT INTO presence_gateways (gateway_id, expires_at)
         VALUES ($1, now() + make_interval(secs => $2::float8 / 1000))
         ON CONFLICT (gateway_id) DO UPDATE SET expires_at = EXCLUDED.expires_at",
    )
    .bind(gateway)
    .bind(f64::from(request.lease_ms))
    .execute(&mut *tx)
    .await?;
    // Rows of a lease that ran out are stale whatever the caller sends now.
    if created || request.reset {
        let scopes: Vec<String> =
            sqlx::query_scalar("DELETE FROM presence WHERE gateway_id = $1 RETURNING scope")
                .bind(gateway)
                .fetch_all(&mut *tx)
                .await?;
        changed.extend(scopes);
    }
    let changes: Changes = request
        .changes
        .iter()
        .filter_map(|c| {
            let entry = c.entry.as_ref()?;
            Some((
                (c.scope.clone(), entry.key.clone()),
                (entry.name.clone(), entry.connections),
            ))
        })
        .collect();
    let (mut up_scopes, mut up_keys, mut up_names, mut up_counts) =
        (vec![], vec![], vec![], vec![]);
    let (mut gone_scopes, mut gone_keys) = (vec![], vec![]);
    for ((scope, key), (name, connections)) in changes {
        changed.insert(scope.clone());
        if connections == 0 {
            gone_scopes.push(scope);
            gone_keys.push(key);
        } else {
            up_scopes.push(scope);
            up_keys.push(key);
            up_names.push(name);
            up_counts.push(i32::try_from(connections).unwrap_or(i32::MAX));
        }
    }
    if !gone_scopes.is_empty() {
        sqlx::query(
            "DELETE FROM presence p USING UNNEST($2::text[], $3::text[]) AS g(scope, key)
             WHERE p.gateway_id = $1 AND p.scope = g.scope AND p.key = g.key",
        )
        .bind(gateway)
        .bind(&gone_scopes)
        .bind(&gone_keys)
        .execute(&mut *tx)
        .await?;
    }
    if !up_scopes.is_empty() {
        sqlx::query(
            "INSERT INTO presence (gateway_id, scope, key, name, connections)
             SELECT $1, * FROM UNNEST($2::text[], $3::text[], $4::text[], $5::int4[])
             ON CONFLICT (gateway_id, scope, key)
             DO UPDATE SET name = EXCLUDED.name, connections = EXCLUDED.connections",
        )
        .bind(gateway)
        .bind(&up_scopes)
        .bind(&up_keys)
        .bind(&up_names)
        .bind(&up_counts)
        .execute(&mut *tx)
        .await?;
    }
    notify(&mut tx, &changed).await?;
    tx.commit().await?;
    Ok(Applied { created })
}

/// Queues one notification per changed scope, delivered at commit.
async fn notify(tx: &mut Transaction<'_, Postgres>, scopes: &BTreeSet<String>) -> Result<()> {
    if scopes.is_empty() {
        return Ok(());
    }
    let scopes: Vec<&str> = scopes.iter().map(String::as_str).collect();
    sqlx::query("SELECT pg_notify($1, s) FROM UNNEST($2::text[]) AS s")
        .bind(NOTIFY_CHANNEL)
        .bind(&scopes)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Deletes the gateways whose lease ran out, with their rows, and notifies
/// the scopes they were in. Safe to run on several replicas at once: each
/// expired gateway is deleted (and announced) by exactly one of them, and
/// a lease being renewed right now (locked) is skipped, not waited for.
pub async fn sweep(pool: &PgPool) -> Result<usize> {
    let mut tx = pool.begin().await?;
    let scopes: Vec<String> = sqlx::query_scalar(
        "WITH gone AS (
             DELETE FROM presence_gateways WHERE gateway_id IN (
                 SELECT gateway_id FROM presence_gateways WHERE expires_at < now()
                 FOR UPDATE SKIP LOCKED
             )
             RETURNING gateway_id
         )
         DELETE FROM presence p USING gone WHERE p.gateway_id = gone.gateway_id
         RETURNING p.scope",
    )
    .fetch_all(&mut *tx)
    .await?;
    let scopes: BTreeSet<String> = scopes.into_iter().collect();
    notify(&mut tx, &scopes).await?;
    tx.commit().await?;
    Ok(scopes.len())
}

/// The members of `scope` over every live gateway, by key.
pub async fn aggregate(pool: &PgPool, scope: &str) -> Result<BTreeMap<String, PresenceEntry>> {
    let rows: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT p.key, max(p.name), sum(p.connections)::int8
         FROM presence p JOIN presence_gateways g USING (gateway_id)
         WHERE p.scope = $1 AND g.expires_at > now()
         GROUP BY p.key",
    )
    .bind(scope)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(key, name, connections)| {
            let connections = u32::try_from(connections).unwrap_or(u32::MAX);
            (
                key.clone(),
                PresenceEntry {
                    key,
                    name,
                    connections,
                },
            )
        })
        .collect())
}
