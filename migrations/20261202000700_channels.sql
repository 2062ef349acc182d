-- Pub/sub channels (seed 004's agent channels, seed 001's job streams).
--
-- Each channel has a row holding its epoch and its newest offset; each
-- publication a row numbered by offset. History is trimmed from the oldest
-- end only (by count and by the channel's age), so what a channel holds is
-- always a contiguous run of offsets: a resume either finds every offset it
-- asks for or knows it cannot.
--
-- Durable channels use logged tables. Ephemeral ones (the default) use
-- UNLOGGED tables: no WAL, so no fsync on the publish path; PostgreSQL
-- empties them after a crash, and the channel then starts a new epoch,
-- which tells resuming clients `recovered: false` instead of a silent gap.

CREATE TABLE channels (
    name        text PRIMARY KEY,
    epoch       text NOT NULL,
    top         bigint NOT NULL
);

CREATE TABLE channel_messages (
    channel      text NOT NULL,
    "offset"     bigint NOT NULL,
    event        text NOT NULL,
    data         text NOT NULL,
    published_at timestamptz NOT NULL DEFAULT now(),
    -- Not replayed after this (the publication's own TTL).
    expires_at   timestamptz NOT NULL,
    -- Trimmed after this (the channel's history age; the same span for
    -- every row of a channel, so trimming by it removes the oldest first).
    retain_until timestamptz NOT NULL,
    PRIMARY KEY (channel, "offset")
);
CREATE INDEX channel_messages_retain ON channel_messages (retain_until);

CREATE UNLOGGED TABLE ephemeral_channels (LIKE channels INCLUDING ALL);
CREATE UNLOGGED TABLE ephemeral_channel_messages (LIKE channel_messages INCLUDING ALL);
