-- agent-bridge: a chat session belongs to the token subject that opened it,
-- and a run in flight is leased by the bridge process that drives it, so a
-- run whose process died can be told apart from one that is merely long.

-- '' for sessions opened with auth off (anyone may use them then).
ALTER TABLE chat_sessions ADD COLUMN owner text NOT NULL DEFAULT '';

ALTER TABLE chat_runs
    -- The bridge process driving the run, and until when it vouches for it.
    ADD COLUMN instance_id uuid,
    ADD COLUMN lease_until timestamptz,
    -- The seq of the terminal frame written for a run whose process died.
    ADD COLUMN terminal_seq bigint;

CREATE INDEX chat_runs_running_idx ON chat_runs (lease_until) WHERE status = 'running';
