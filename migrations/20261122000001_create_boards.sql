-- Boards, lanes and tasks. Every change bumps boards.version by exactly one
-- and appends one row to board_events in the same transaction (outbox).

CREATE TABLE boards (
    id         uuid PRIMARY KEY,
    slug       text NOT NULL UNIQUE,
    name       text NOT NULL,
    version    bigint NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE lanes (
    id        uuid PRIMARY KEY,
    board_id  uuid NOT NULL REFERENCES boards (id) ON DELETE CASCADE,
    key       text NOT NULL,
    name      text NOT NULL,
    position  integer NOT NULL,
    wip_limit integer CHECK (wip_limit >= 0),
    UNIQUE (board_id, key)
);

CREATE TABLE tasks (
    id              uuid PRIMARY KEY,
    board_id        uuid NOT NULL REFERENCES boards (id) ON DELETE CASCADE,
    lane_id         uuid NOT NULL REFERENCES lanes (id),
    title           text NOT NULL,
    description     text NOT NULL DEFAULT '',
    priority        smallint NOT NULL,
    kind            smallint NOT NULL,
    estimated_hours double precision NOT NULL DEFAULT 0,
    assignee        text NOT NULL DEFAULT '',
    labels          text[] NOT NULL DEFAULT '{}',
    -- Fractional order key; byte order ("C") so it sorts like the client sorts.
    position        text COLLATE "C" NOT NULL,
    version         bigint NOT NULL DEFAULT 1,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (lane_id, position)
);
CREATE INDEX tasks_board_idx ON tasks (board_id);

-- The ordered change log each board's watchers read; `event` is an encoded
-- boardwire.v1.BoardEvent.
CREATE TABLE board_events (
    board_id   uuid NOT NULL REFERENCES boards (id) ON DELETE CASCADE,
    version    bigint NOT NULL,
    event      bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (board_id, version)
);

-- Idempotency: the first response to each request_id, replayed on retries.
CREATE TABLE processed_requests (
    request_id text PRIMARY KEY,
    method     text NOT NULL,
    response   bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
