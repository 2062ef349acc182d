-- How far each board's events have been relayed from board_events to NATS
-- JetStream (only written when board-service runs with NATS_URL). The relay
-- publishes versions after relayed_version, in order, and advances it only
-- after JetStream acknowledged them.
CREATE TABLE board_relay (
    board_id        uuid PRIMARY KEY REFERENCES boards (id) ON DELETE CASCADE,
    relayed_version bigint NOT NULL
);
