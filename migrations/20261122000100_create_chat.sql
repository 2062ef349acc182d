-- agent-bridge: chat sessions, their messages and runs, tool executions and
-- an append-only audit of every tool call.

CREATE TABLE chat_sessions (
    -- Clients may bring their own session ids, so this is text, not uuid.
    id         text PRIMARY KEY,
    -- The board's id or slug, as board-service accepts either.
    board_id   text NOT NULL,
    -- Last sequence number handed out, so numbers stay monotonic across restarts.
    last_seq   bigint NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE chat_runs (
    id            uuid PRIMARY KEY,
    session_id    text NOT NULL REFERENCES chat_sessions (id) ON DELETE CASCADE,
    backend       text NOT NULL,
    status        text NOT NULL CHECK (status IN ('running', 'completed', 'failed', 'cancelled')),
    error_code    text,
    error_message text,
    started_at    timestamptz NOT NULL DEFAULT now(),
    finished_at   timestamptz
);
CREATE INDEX chat_runs_session_idx ON chat_runs (session_id, started_at);

CREATE TABLE chat_messages (
    -- Insertion order; timestamps can tie.
    position   bigserial PRIMARY KEY,
    id         uuid NOT NULL UNIQUE,
    session_id text NOT NULL REFERENCES chat_sessions (id) ON DELETE CASCADE,
    run_id     uuid REFERENCES chat_runs (id) ON DELETE SET NULL,
    role       text NOT NULL CHECK (role IN ('user', 'assistant')),
    content    text NOT NULL,
    artifacts  jsonb NOT NULL DEFAULT '[]',
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX chat_messages_session_idx ON chat_messages (session_id, position);

-- The latest state of each tool call of a run.
CREATE TABLE chat_tool_executions (
    run_id       uuid NOT NULL REFERENCES chat_runs (id) ON DELETE CASCADE,
    tool_call_id text NOT NULL,
    session_id   text NOT NULL REFERENCES chat_sessions (id) ON DELETE CASCADE,
    tool         text NOT NULL,
    status       text NOT NULL CHECK (status IN ('started', 'running', 'completed', 'failed')),
    input        jsonb NOT NULL DEFAULT 'null',
    output       jsonb,
    error        text,
    started_at   timestamptz NOT NULL,
    ended_at     timestamptz,
    position     bigserial,
    PRIMARY KEY (run_id, tool_call_id)
);

-- One row per finished tool call, never updated.
CREATE TABLE chat_tool_audit (
    id           bigserial PRIMARY KEY,
    session_id   text NOT NULL,
    run_id       uuid NOT NULL,
    tool_call_id text NOT NULL,
    tool         text NOT NULL,
    input        jsonb NOT NULL,
    outcome      text NOT NULL CHECK (outcome IN ('completed', 'failed', 'cancelled')),
    error        text,
    duration_ms  bigint NOT NULL,
    recorded_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX chat_tool_audit_session_idx ON chat_tool_audit (session_id, id);
