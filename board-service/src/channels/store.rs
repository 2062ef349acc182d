//! Channel rows and their publications in PostgreSQL.

use protocol::v1::ChannelPublication;
use sqlx::PgPool;
use uuid::Uuid;

use super::policy::{History, Policy};
use crate::{error::Result, events::Announcer};

/// The NOTIFY channel, sent after commit by [`Announcer`]; the payload is
/// the channel name.
pub const NOTIFY_CHANNEL: &str = "boardwire_channels";

/// The statements for one pair of tables (logged or unlogged), written once.
struct Queries {
    publish: String,
    create: String,
    position: String,
    read: String,
    sweep: String,
}

impl Queries {
    fn new(channels: &str, messages: &str) -> Self {
        Self {
            // One round trip: number the publication under the channel's row
            // lock (held to commit, so offsets commit in order), store it and
            // trim past the size. Replicas are notified after the commit.
            publish: format!(
                r#"WITH ch AS (
                     INSERT INTO {channels} (name, epoch, top) VALUES ($1, $2, 1)
                     ON CONFLICT (name) DO UPDATE SET top = {channels}.top + 1
                     RETURNING epoch, top),
                   stored AS (
                     INSERT INTO {messages}
                       (channel, "offset", event, data, expires_at, retain_until)
                     SELECT $1, top, $3, $4,
                            now() + make_interval(secs => $5::float8 / 1000),
                            now() + make_interval(secs => $6::float8 / 1000)
                     FROM ch),
                   trimmed AS (
                     DELETE FROM {messages}
                     WHERE channel = $1 AND "offset" <= (SELECT top FROM ch) - $7)
                 SELECT epoch, top, (extract(epoch FROM now()) * 1000)::int8 FROM ch"#
            ),
            create: format!(
                "INSERT INTO {channels} (name, epoch, top) VALUES ($1, $2, 0)
                 ON CONFLICT (name) DO NOTHING"
            ),
            position: format!(
                r#"SELECT c.epoch, c.top,
                          (SELECT min("offset") FROM {messages} m
                           WHERE m.channel = c.name AND m.retain_until > now())
                   FROM {channels} c WHERE c.name = $1"#
            ),
            read: format!(
                r#"SELECT "offset", event, data,
                          (extract(epoch FROM published_at) * 1000)::int8
                   FROM {messages}
                   WHERE channel = $1 AND "offset" > $2
                     AND retain_until > now() AND expires_at > now()
                   ORDER BY "offset" LIMIT $3"#
            ),
            sweep: format!("DELETE FROM {messages} WHERE retain_until <= now()"),
        }
    }
}

/// Where a channel stands: its epoch, newest offset, and the oldest offset
/// its history still holds (`None` when it holds nothing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    pub epoch: String,
    pub top: u64,
    pub oldest: Option<u64>,
}

impl Position {
    /// Whether everything after `since` in `epoch` can still be replayed.
    pub fn can_resume(&self, since: u64, epoch: &str) -> bool {
        epoch == self.epoch
            && since <= self.top
            && (since == self.top || self.oldest.is_some_and(|oldest| oldest <= since + 1))
    }
}

/// Channel storage, with each channel's history policy.
pub struct ChannelStore {
    pool: PgPool,
    announcer: Announcer,
    policy: Policy,
    durable: Queries,
    ephemeral: Queries,
}

impl ChannelStore {
    pub fn new(pool: PgPool, policy: Policy, announcer: Announcer) -> Self {
        Self {
            pool,
            announcer,
            policy,
            durable: Queries::new("channels", "channel_messages"),
            ephemeral: Queries::new("ephemeral_channels", "ephemeral_channel_messages"),
        }
    }

    fn queries(&self, history: History) -> &Queries {
        if history.durable {
            &self.durable
        } else {
            &self.ephemeral
        }
    }

    /// Appends a publication; `ttl_ms` 0 keeps it as long as the channel's age.
    pub async fn publish(
        &self,
        channel: &str,
        event: &str,
        data_json: &str,
        ttl_ms: u64,
    ) -> Result<ChannelPublication> {
        let history = self.policy.history(channel);
        let age_ms = history.age.as_millis() as i64;
        let ttl_ms = if ttl_ms == 0 {
            age_ms
        } else {
            (ttl_ms as i64).min(age_ms)
        };
        let (epoch, top, ts): (String, i64, i64) = sqlx::query_as(&self.queries(history).publish)
            .bind(channel)
            .bind(new_epoch())
            .bind(event)
            .bind(data_json)
            .bind(ttl_ms)
            .bind(age_ms)
            .bind(history.size as i64)
            .fetch_one(&self.pool)
            .await?;
        self.announcer.published(channel);
        Ok(ChannelPublication {
            channel: channel.to_owned(),
            offset: top as u64,
            epoch,
            event: event.to_owned(),
            data_json: data_json.to_owned(),
            ts,
        })
    }

    /// The channel's position, creating the channel (offset 0, a new epoch)
    /// if nothing was ever published on it.
    pub async fn position(&self, channel: &str) -> Result<Position> {
        let queries = self.queries(self.policy.history(channel));
        loop {
            let row: Option<(String, i64, Option<i64>)> = sqlx::query_as(&queries.position)
                .bind(channel)
                .fetch_optional(&self.pool)
                .await?;
            if let Some((epoch, top, oldest)) = row {
                return Ok(Position {
                    epoch,
                    top: top as u64,
                    oldest: oldest.map(|o| o as u64),
                });
            }
            sqlx::query(&queries.create)
                .bind(channel)
                .bind(new_epoch())
                .execute(&self.pool)
                .await?;
        }
    }

    /// Up to `limit` live publications after `after`, in offset order.
    /// Offsets may skip those whose own TTL has passed.
    pub async fn read_after(
        &self,
        channel: &str,
        epoch: &str,
        after: u64,
        limit: i64,
    ) -> Result<Vec<ChannelPublication>> {
        let queries = self.queries(self.policy.history(channel));
        let rows: Vec<(i64, String, String, i64)> = sqlx::query_as(&queries.read)
            .bind(channel)
            .bind(after as i64)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .into_iter()
            .map(|(offset, event, data_json, ts)| ChannelPublication {
                channel: channel.to_owned(),
                offset: offset as u64,
                epoch: epoch.to_owned(),
                event,
                data_json,
                ts,
            })
            .collect())
    }

    /// Deletes publications past their channel's age. Returns how many.
    pub async fn sweep(&self) -> Result<u64> {
        let mut swept = 0;
        for queries in [&self.durable, &self.ephemeral] {
            swept += sqlx::query(&queries.sweep)
                .execute(&self.pool)
                .await?
                .rows_affected();
        }
        Ok(swept)
    }
}

/// A fresh epoch: short, and unique enough that a recreated channel never
/// reuses its predecessor's.
fn new_epoch() -> String {
    Uuid::new_v4().simple().to_string()[..12].to_owned()
}

#[cfg(test)]
mod tests {
    use super::Position;

    #[test]
    fn resume_needs_the_same_epoch_and_an_unbroken_history() {
        let at = |top, oldest| Position {
            epoch: "e1".into(),
            top,
            oldest,
        };
        assert!(at(10, Some(5)).can_resume(4, "e1"));
        assert!(at(10, Some(5)).can_resume(9, "e1"));
        assert!(at(10, None).can_resume(10, "e1"));
        assert!(!at(10, Some(5)).can_resume(3, "e1"));
        assert!(!at(10, Some(5)).can_resume(4, "e2"));
        assert!(!at(10, Some(5)).can_resume(11, "e1"));
        assert!(!at(10, None).can_resume(9, "e1"));
    }
}
