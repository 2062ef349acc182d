-- Sprints: time boxes on a board. state 1 = planned, 2 = active,
-- 3 = completed; at most one active sprint per board. A task belongs to at
-- most one sprint of its board (board-service checks the board).
CREATE TABLE sprints (
    id         uuid PRIMARY KEY,
    board_id   uuid NOT NULL REFERENCES boards (id) ON DELETE CASCADE,
    name       text NOT NULL,
    goal       text NOT NULL DEFAULT '',
    starts_at  timestamptz NOT NULL,
    ends_at    timestamptz NOT NULL,
    state      smallint NOT NULL DEFAULT 1 CHECK (state IN (1, 2, 3)),
    version    bigint NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CHECK (ends_at > starts_at)
);
CREATE INDEX sprints_board_idx ON sprints (board_id, starts_at);
CREATE UNIQUE INDEX sprints_one_active_per_board ON sprints (board_id) WHERE state = 2;

ALTER TABLE tasks ADD COLUMN sprint_id uuid REFERENCES sprints (id);
CREATE INDEX tasks_sprint_idx ON tasks (sprint_id) WHERE sprint_id IS NOT NULL;
