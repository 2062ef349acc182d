-- agent-bridge: a chat message is identified by the id its client gives it,
-- so a resent message finds the run that answered it instead of starting
-- another; and a run keeps the messages it added to the agent's
-- conversation (tool calls, tool results, the backend's own ids), so the
-- next turn sends the agent the whole conversation under stable ids.

-- The client's `message_id`, unique per session among user messages.
ALTER TABLE chat_messages ADD COLUMN client_id text;
CREATE UNIQUE INDEX chat_messages_client_id_idx
    ON chat_messages (session_id, client_id) WHERE client_id IS NOT NULL;

ALTER TABLE chat_runs
    -- The user message the run answers (a retried message has several runs).
    ADD COLUMN message_id uuid,
    -- AG-UI messages the run added, or with agui_snapshot the backend's
    -- whole conversation from its last MESSAGES_SNAPSHOT.
    ADD COLUMN agui_messages jsonb,
    ADD COLUMN agui_snapshot boolean NOT NULL DEFAULT false;
CREATE INDEX chat_runs_message_idx ON chat_runs (message_id, started_at) WHERE message_id IS NOT NULL;
