-- agent-bridge: tool calls that wait for a person's yes. A call's approval
-- (what it will do, the answer, who gave it and when) is kept with the call
-- and in its audit record.

ALTER TABLE chat_tool_executions
    DROP CONSTRAINT chat_tool_executions_status_check,
    ADD CONSTRAINT chat_tool_executions_status_check
        CHECK (status IN ('started', 'awaiting_approval', 'running', 'completed', 'failed')),
    ADD COLUMN approval jsonb;

ALTER TABLE chat_tool_audit
    -- NULL for calls that needed no approval.
    ADD COLUMN approved boolean,
    ADD COLUMN approved_by text,
    ADD COLUMN approved_at timestamptz;
