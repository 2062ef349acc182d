-- Projects group boards; a board belongs to at most one. Existing boards
-- belong to none.
CREATE TABLE projects (
    id          uuid PRIMARY KEY,
    slug        text NOT NULL UNIQUE,
    name        text NOT NULL,
    description text NOT NULL DEFAULT '',
    version     bigint NOT NULL DEFAULT 1,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE boards ADD COLUMN project_id uuid REFERENCES projects (id);
CREATE INDEX boards_project_idx ON boards (project_id);
