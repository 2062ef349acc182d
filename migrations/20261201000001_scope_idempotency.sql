-- Idempotency keys belong to (board, caller), and each is bound to a
-- fingerprint of its request: a key reused with a different request is
-- refused, and nobody replays another caller's response. The old global
-- records cannot be scoped after the fact; a retry in flight across this
-- upgrade runs again (the records are short-lived anyway).
DROP TABLE processed_requests;

CREATE TABLE processed_requests (
    -- The board the request changed; the nil uuid for CreateBoard, whose
    -- board does not exist before the request.
    board_id    uuid NOT NULL,
    -- The token's `sub`; '' when auth is off.
    caller      text NOT NULL,
    request_id  text NOT NULL,
    method      text NOT NULL,
    -- SHA-256 of the method and the encoded request without its request_id.
    fingerprint bytea NOT NULL,
    response    bytea NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (board_id, caller, request_id)
);
-- A retry of a task change whose task is gone (DeleteTask) is found
-- before any board lock, by caller, key and fingerprint.
CREATE INDEX processed_requests_caller_idx ON processed_requests (caller, request_id);
CREATE INDEX processed_requests_age_idx ON processed_requests (created_at);
