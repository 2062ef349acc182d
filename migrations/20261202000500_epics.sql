-- Epics: tasks of kind epic (4) that other tasks of the same board point
-- to. board-service clears a deleted epic's children itself (announcing
-- each), so the reference needs no ON DELETE action.
ALTER TABLE tasks ADD COLUMN parent_id uuid REFERENCES tasks (id);
CREATE INDEX tasks_parent_idx ON tasks (parent_id) WHERE parent_id IS NOT NULL;
