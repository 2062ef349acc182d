-- A free-text status beside the lane (seed 003's `changes.status`, such as
-- "working"). Existing tasks get none.
ALTER TABLE tasks ADD COLUMN status text NOT NULL DEFAULT '';
