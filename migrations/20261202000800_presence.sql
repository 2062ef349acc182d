-- Presence: who is connected where. Each gateway holds a lease; its rows
-- count its connections per (scope, key). Rows of a gateway whose lease ran
-- out are swept (board-service, every second) and never counted: readers
-- join on live leases. Both tables are soft state, rebuilt by the gateways,
-- so they are UNLOGGED: a crash of PostgreSQL empties them, and the
-- gateways' next renewal finds its lease gone and sends everything again.
CREATE UNLOGGED TABLE presence_gateways (
    gateway_id text PRIMARY KEY,
    expires_at timestamptz NOT NULL
);
CREATE INDEX presence_gateways_expiry_idx ON presence_gateways (expires_at);

CREATE UNLOGGED TABLE presence (
    gateway_id  text NOT NULL,
    scope       text NOT NULL,
    key         text NOT NULL,
    name        text NOT NULL,
    connections integer NOT NULL CHECK (connections > 0),
    PRIMARY KEY (gateway_id, scope, key)
);
CREATE INDEX presence_scope_idx ON presence (scope, key);
