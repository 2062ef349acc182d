-- CreateTask, UpdateTask and MoveTask in one round trip: each is one call of a
-- function below, its own implicit transaction, so the board's row lock is
-- held for one statement and its commit instead of about ten round trips.
--
-- The functions cannot encode protobuf, so what they append to the log and
-- record for a request_id is JSON: `board_events.change` holds the event
-- with its task as the `tasks` row (the columns of board-service's
-- `TaskRow`), and `processed_requests.response_task` the task a replay
-- answers with. board-service reads both forms (store::log, store::idempotency).
ALTER TABLE board_events ALTER COLUMN event DROP NOT NULL;
ALTER TABLE board_events ADD COLUMN change jsonb;
ALTER TABLE board_events ADD CONSTRAINT board_events_one_form CHECK (num_nonnulls(event, change) = 1);

ALTER TABLE processed_requests ALTER COLUMN response DROP NOT NULL;
ALTER TABLE processed_requests ADD COLUMN response_task jsonb;
ALTER TABLE processed_requests
    ADD CONSTRAINT processed_requests_one_form CHECK (num_nonnulls(response, response_task) = 1);

-- Errors the functions raise. board-service maps each SQLSTATE onto its
-- error kind in one place (error.rs) and passes the message through.
--   BWINV invalid argument   BWNTF not found      BWSTL stale version
--   BWPRE failed precondition BWIDM idempotency conflict BWPRM permission denied

-- Fractional order keys, a port of board-service's rank.rs (the
-- rocicorp/fractional-indexing format); a test checks both agree. Keys
-- compare by bytes, hence the ascii() and COLLATE "C" comparisons.
CREATE FUNCTION boardwire_rank_digit(i integer) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN substr('0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz', i + 1, 1);

CREATE FUNCTION boardwire_rank_value(c text) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN strpos('0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz', c) - 1;

-- A fraction strictly between fractions a and b (NULL b is 1).
CREATE FUNCTION boardwire_rank_midpoint(a text, b text) RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    n integer := 0;
    da integer;
    db integer;
BEGIN
    IF b IS NOT NULL THEN
        WHILE n < length(b)
              AND coalesce(nullif(substr(a, n + 1, 1), ''), '0') = substr(b, n + 1, 1) LOOP
            n := n + 1;
        END LOOP;
        IF n > 0 THEN
            RETURN substr(b, 1, n) || boardwire_rank_midpoint(substr(a, n + 1), substr(b, n + 1));
        END IF;
    END IF;
    da := CASE WHEN a = '' THEN 0 ELSE boardwire_rank_value(substr(a, 1, 1)) END;
    db := CASE WHEN b IS NULL OR b = '' THEN 62 ELSE boardwire_rank_value(substr(b, 1, 1)) END;
    IF db - da > 1 THEN
        RETURN boardwire_rank_digit((da + db + 1) / 2);
    END IF;
    IF b IS NOT NULL AND length(b) > 1 THEN
        RETURN substr(b, 1, 1);
    END IF;
    RETURN boardwire_rank_digit(da) || boardwire_rank_midpoint(substr(a, 2), NULL);
END $$;

CREATE FUNCTION boardwire_rank_integer_length(head text) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE
    WHEN ascii(head) BETWEEN ascii('a') AND ascii('z') THEN ascii(head) - ascii('a') + 2
    WHEN ascii(head) BETWEEN ascii('A') AND ascii('Z') THEN ascii('Z') - ascii(head) + 2
END;

-- The next integer part, or NULL past the largest.
CREATE FUNCTION boardwire_rank_increment(x text) RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    head text := substr(x, 1, 1);
    digits text := substr(x, 2);
    v integer;
BEGIN
    FOR i IN REVERSE length(digits)..1 LOOP
        v := boardwire_rank_value(substr(digits, i, 1)) + 1;
        IF v < 62 THEN
            RETURN head || overlay(digits PLACING boardwire_rank_digit(v) FROM i FOR 1);
        END IF;
        digits := overlay(digits PLACING '0' FROM i FOR 1);
    END LOOP;
    IF head = 'Z' THEN RETURN 'a0'; END IF;
    IF head = 'z' THEN RETURN NULL; END IF;
    head := chr(ascii(head) + 1);
    IF ascii(head) > ascii('a') THEN
        digits := digits || '0';
    ELSE
        digits := left(digits, -1);
    END IF;
    RETURN head || digits;
END $$;

-- The previous integer part, or NULL before the smallest.
CREATE FUNCTION boardwire_rank_decrement(x text) RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    head text := substr(x, 1, 1);
    digits text := substr(x, 2);
    v integer;
BEGIN
    FOR i IN REVERSE length(digits)..1 LOOP
        v := boardwire_rank_value(substr(digits, i, 1));
        IF v > 0 THEN
            RETURN head || overlay(digits PLACING boardwire_rank_digit(v - 1) FROM i FOR 1);
        END IF;
        digits := overlay(digits PLACING 'z' FROM i FOR 1);
    END LOOP;
    IF head = 'a' THEN RETURN 'Zz'; END IF;
    IF head = 'A' THEN RETURN NULL; END IF;
    head := chr(ascii(head) - 1);
    IF ascii(head) < ascii('Z') THEN
        digits := digits || 'z';
    ELSE
        digits := left(digits, -1);
    END IF;
    RETURN head || digits;
END $$;

-- A key strictly between a and b; NULL is the start or end of the lane.
CREATE FUNCTION boardwire_key_between(a text, b text) RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    smallest constant text := 'A00000000000000000000000000';
    ia text;
    fa text;
    ib text;
    fb text;
    i text;
BEGIN
    IF a IS NOT NULL AND b IS NOT NULL AND a COLLATE "C" >= b COLLATE "C" THEN
        RAISE EXCEPTION 'order keys % and % are not in ascending order', a, b;
    END IF;
    IF a IS NOT NULL THEN
        ia := left(a, boardwire_rank_integer_length(substr(a, 1, 1)));
        fa := substr(a, length(ia) + 1);
    END IF;
    IF b IS NOT NULL THEN
        ib := left(b, boardwire_rank_integer_length(substr(b, 1, 1)));
        fb := substr(b, length(ib) + 1);
    END IF;
    IF a IS NULL AND b IS NULL THEN
        RETURN 'a0';
    ELSIF a IS NULL THEN
        IF ib = smallest THEN
            RETURN ib || boardwire_rank_midpoint('', fb);
        ELSIF length(ib) < length(b) THEN
            RETURN ib;
        END IF;
        i := boardwire_rank_decrement(ib);
    ELSIF b IS NULL THEN
        RETURN coalesce(boardwire_rank_increment(ia), ia || boardwire_rank_midpoint(fa, NULL));
    ELSIF ia = ib THEN
        RETURN ia || boardwire_rank_midpoint(fa, fb);
    ELSE
        i := boardwire_rank_increment(ia);
        IF i IS NOT NULL AND i COLLATE "C" >= b COLLATE "C" THEN
            RETURN ia || boardwire_rank_midpoint(fa, NULL);
        END IF;
    END IF;
    IF i IS NULL THEN
        RAISE EXCEPTION 'order key space exhausted';
    END IF;
    RETURN i;
END $$;

-- PL/pgSQL rather than SQL functions below: PostgreSQL plans a SQL
-- function that reads tables again on every call, and PL/pgSQL keeps its
-- plans for the session (measured: 0.3-0.9 ms per call the other way).

-- An epic's progress as {done, total}; NULL for a task that is no epic.
-- The same rule as TASK_COLUMNS in board-service's rows.rs.
CREATE FUNCTION boardwire_epic_progress(epic uuid) RETURNS bigint[]
LANGUAGE plpgsql STABLE AS $$
DECLARE
    done bigint;
    total bigint;
BEGIN
    IF NOT EXISTS (SELECT FROM tasks t WHERE t.id = epic AND t.kind = 4) THEN
        RETURN NULL;
    END IF;
    SELECT count(*) FILTER (WHERE cl.key = 'done'), count(*) INTO done, total
    FROM tasks c JOIN lanes cl ON cl.id = c.lane_id WHERE c.parent_id = epic;
    RETURN ARRAY[done, total];
END $$;

-- A task as board-service's TaskRow reads it.
CREATE FUNCTION boardwire_task_json(task uuid) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE
    t tasks;
    lane text;
    progress bigint[];
BEGIN
    SELECT * INTO t FROM tasks WHERE id = task;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    SELECT l.key INTO lane FROM lanes l WHERE l.id = t.lane_id;
    IF t.kind = 4 THEN
        progress := boardwire_epic_progress(task);
    END IF;
    RETURN to_jsonb(t) || jsonb_build_object(
        'lane_key', lane, 'progress_done', progress[1], 'progress_total', progress[2]);
END $$;

-- The answer stored for `request_id` of `caller` on `board` (NULLs when
-- none is, or no request_id is given); refused when the key was used there
-- for a different request (another fingerprint), as the IETF
-- Idempotency-Key draft asks.
CREATE FUNCTION boardwire_stored_response(
    board uuid, caller text, request_id text, fingerprint bytea,
    OUT response bytea, OUT response_task jsonb
)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    stored record;
BEGIN
    IF request_id = '' THEN
        RETURN;
    END IF;
    SELECT p.method, p.fingerprint, p.response, p.response_task INTO stored
    FROM processed_requests p
    WHERE p.board_id = board AND p.caller = $2 AND p.request_id = $3;
    IF NOT FOUND THEN
        RETURN;
    ELSIF stored.fingerprint <> $4 THEN
        RAISE EXCEPTION USING ERRCODE = 'BWIDM', MESSAGE = format(
            'request_id %s was already used for a different %s request: '
            'send a new request_id for a new request', to_jsonb($3), stored.method);
    END IF;
    response := stored.response;
    response_task := stored.response_task;
END $$;

CREATE TYPE boardwire_task_write AS (
    board_id uuid,
    slug text,
    board_version bigint,
    stored_response bytea,
    stored_task jsonb
);

-- For the locked board `w`: refuses a caller whose write grants
-- (`writers`, NULL for every board) miss it, and adds the answer stored for
-- the request_id (the same request replays it, another one is refused).
CREATE FUNCTION boardwire_admit_write(
    w boardwire_task_write, writers text[], caller text, request_id text, fingerprint bytea
) RETURNS boardwire_task_write
LANGUAGE plpgsql AS $$
BEGIN
    -- service_kit's Access::can_write: '*', the board's id or its slug.
    IF writers IS NOT NULL
       AND NOT ('*' = ANY (writers) OR w.board_id::text = ANY (writers) OR w.slug = ANY (writers)) THEN
        RAISE EXCEPTION USING ERRCODE = 'BWPRM',
            MESSAGE = format('the token does not grant writing board %s', to_jsonb(w.slug));
    END IF;
    SELECT s.response, s.response_task INTO w.stored_response, w.stored_task
    FROM boardwire_stored_response(w.board_id, caller, request_id, fingerprint) s;
    RETURN w;
END $$;

-- The lane of `board` named by `lane_id` or `lane_key`, first in board order.
CREATE FUNCTION boardwire_lane_of(board uuid, lane_id uuid, lane_key text) RETURNS lanes
LANGUAGE plpgsql STABLE AS $$
DECLARE
    lane lanes;
BEGIN
    SELECT * INTO lane FROM lanes l
    WHERE l.board_id = board AND (l.id = $2 OR l.key = $3)
    ORDER BY l.position LIMIT 1;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'BWNTF',
            MESSAGE = format('lane %s not found on this board', to_jsonb($3));
    END IF;
    RETURN lane;
END $$;

-- Locks the board holding `task` (NULL when the task is gone) and admits
-- the write (boardwire_admit_write).
CREATE FUNCTION boardwire_begin_task_write(
    task uuid, writers text[], caller text, request_id text, fingerprint bytea
) RETURNS boardwire_task_write
LANGUAGE plpgsql AS $$
DECLARE
    w boardwire_task_write;
BEGIN
    SELECT b.id, b.slug, b.version INTO w.board_id, w.slug, w.board_version
    FROM boards b JOIN tasks h ON h.board_id = b.id WHERE h.id = task FOR UPDATE OF b;
    IF NOT FOUND OR NOT EXISTS (SELECT FROM tasks WHERE id = task) THEN
        RETURN NULL;
    END IF;
    RETURN boardwire_admit_write(w, writers, caller, request_id, fingerprint);
END $$;

-- The current tasks row, refused when it is not at `expected`.
CREATE FUNCTION boardwire_task_at(task uuid, expected bigint) RETURNS tasks
LANGUAGE plpgsql AS $$
DECLARE
    t tasks;
BEGIN
    SELECT * INTO STRICT t FROM tasks WHERE id = task;
    IF expected IS NOT NULL AND t.version <> expected THEN
        RAISE EXCEPTION USING ERRCODE = 'BWSTL', MESSAGE = format(
            'task is at version %s, not the expected %s: reload and retry', t.version, expected);
    END IF;
    RETURN t;
END $$;

-- Each epic of `epics` with its progress now, as {"<id>": [done, total]}.
CREATE FUNCTION boardwire_progress_map(epics uuid[]) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE
    epic uuid;
    progress jsonb := '{}';
BEGIN
    FOREACH epic IN ARRAY coalesce(epics, '{}') LOOP
        progress := progress || jsonb_build_object(epic::text, boardwire_epic_progress(epic));
    END LOOP;
    RETURN progress;
END $$;

-- Appends `events` (each a change without board_id and version) at the
-- board's next versions, each followed by a task.updated of every epic in
-- `epics` whose progress differs from `progress_before`, bumps the board's
-- version and records `response_task` for the request_id. Returns the
-- board's new version.
CREATE FUNCTION boardwire_finish_task_write(
    board uuid, from_version bigint, events jsonb[], epics uuid[], progress_before jsonb,
    caller text, request_id text, method text, fingerprint bytea, response_task jsonb,
    trace jsonb
) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    at_version bigint := from_version;
    e jsonb;
    epic uuid;
    now_progress bigint[];
BEGIN
    FOREACH epic IN ARRAY coalesce(epics, '{}') LOOP
        now_progress := boardwire_epic_progress(epic);
        IF now_progress IS NOT NULL
           AND to_jsonb(now_progress) IS DISTINCT FROM progress_before -> epic::text THEN
            events := events || jsonb_build_object(
                'type', 'task.updated', 'task', boardwire_task_json(epic),
                'changed_fields', jsonb_build_array('progress'));
        END IF;
    END LOOP;
    FOREACH e IN ARRAY coalesce(events, '{}') LOOP
        at_version := at_version + 1;
        INSERT INTO board_events (board_id, version, change)
        VALUES (board, at_version, e || jsonb_build_object(
            'request_id', request_id, 'occurred_at', clock_timestamp(),
            'trace_context', coalesce(trace, '{}')));
    END LOOP;
    IF at_version <> from_version THEN
        UPDATE boards SET version = at_version WHERE id = board;
    END IF;
    IF request_id <> '' THEN
        INSERT INTO processed_requests
            (board_id, caller, request_id, method, fingerprint, response_task)
        VALUES (board, caller, request_id, method, fingerprint, response_task);
    END IF;
    RETURN at_version;
END $$;

-- A kind's name as frames carry it (protocol's TaskKind::as_str; a test
-- checks the two agree).
CREATE FUNCTION boardwire_kind_name(kind smallint) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE kind WHEN 2 THEN 'story' WHEN 3 THEN 'bug' WHEN 4 THEN 'epic' ELSE 'task' END;

-- Refuses adding `adding` tasks to `lane` at its WIP limit. Called under
-- the board lock, so two writes cannot both take the last slot.
CREATE FUNCTION boardwire_check_wip(lane uuid, adding bigint) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    l lanes;
    occupied bigint;
BEGIN
    SELECT * INTO l FROM lanes WHERE id = lane;
    IF l.wip_limit IS NULL THEN
        RETURN;
    END IF;
    SELECT count(*) INTO occupied FROM tasks t WHERE t.lane_id = lane;
    IF occupied + adding > l.wip_limit THEN
        RAISE EXCEPTION USING ERRCODE = 'BWPRE', MESSAGE = format(
            'lane %s is at its WIP limit of %s tasks', to_jsonb(l.key), l.wip_limit);
    END IF;
END $$;

-- Refuses `parent` for the task `task` (NULL before it exists) of `kind`
-- on `board`: an epic's tasks share its board, and epics are one level deep.
CREATE FUNCTION boardwire_check_parent(board uuid, task uuid, parent uuid, kind smallint)
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    found_board uuid;
    found_kind smallint;
BEGIN
    IF parent IS NULL THEN
        RETURN;
    ELSIF parent = task THEN
        RAISE EXCEPTION USING ERRCODE = 'BWINV',
            MESSAGE = 'parent_id: a task cannot be its own parent';
    ELSIF kind = 4 THEN
        RAISE EXCEPTION USING ERRCODE = 'BWINV',
            MESSAGE = 'parent_id: an epic cannot have a parent (epics are one level deep)';
    END IF;
    SELECT t.board_id, t.kind INTO found_board, found_kind FROM tasks t WHERE t.id = parent;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'BWPRE',
            MESSAGE = format('parent_id: task %s does not exist', parent);
    ELSIF found_board <> board THEN
        RAISE EXCEPTION USING ERRCODE = 'BWPRE', MESSAGE = format(
            'parent_id: task %s is on another board; an epic''s tasks share its board', parent);
    ELSIF found_kind <> 4 THEN
        RAISE EXCEPTION USING ERRCODE = 'BWPRE', MESSAGE = format(
            'parent_id: task %s is a %s, not an epic', parent, boardwire_kind_name(found_kind));
    END IF;
END $$;

-- Refuses `sprint` for a task of `board`: it must be a sprint of the same
-- board that is not completed (state 3).
CREATE FUNCTION boardwire_check_sprint(board uuid, sprint uuid) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    found_board uuid;
    found_state smallint;
BEGIN
    IF sprint IS NULL THEN
        RETURN;
    END IF;
    SELECT s.board_id, s.state INTO found_board, found_state FROM sprints s WHERE s.id = sprint;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'BWPRE',
            MESSAGE = format('sprint_id: sprint %s does not exist', sprint);
    ELSIF found_board <> board THEN
        RAISE EXCEPTION USING ERRCODE = 'BWPRE', MESSAGE = format(
            'sprint_id: sprint %s is on another board; a task''s sprint shares its board', sprint);
    ELSIF found_state = 3 THEN
        RAISE EXCEPTION USING ERRCODE = 'BWPRE', MESSAGE = format(
            'sprint_id: sprint %s is completed; plan the task in another sprint', sprint);
    END IF;
END $$;

-- What a task write answers: NULL board_id when the task is gone; else
-- the board's version after the call, the task (a TaskRow) and, for a
-- replayed request_id, `replayed` with the stored answer in `task` or, in
-- the encoded form of older records, `stored_response`.
CREATE TYPE boardwire_task_written AS (
    board_id uuid,
    board_version bigint,
    task jsonb,
    stored_response bytea,
    replayed boolean
);

-- MoveTask: to the lane named by `to_lane_id` or `to_lane_key`, before
-- `before_task`, after `after_task`, or (neither) at the end.
CREATE FUNCTION boardwire_move_task(
    task uuid, to_lane_id uuid, to_lane_key text, before_task uuid, after_task uuid,
    expected bigint, writers text[], caller text, request_id text, fingerprint bytea, trace jsonb
) RETURNS boardwire_task_written
LANGUAGE plpgsql AS $$
DECLARE
    w boardwire_task_write;
    cur tasks;
    src lanes;
    dest lanes;
    anchor_at text COLLATE "C";
    lo text COLLATE "C";
    hi text COLLATE "C";
    epics uuid[] := '{}';
    progress jsonb;
    moved jsonb;
    r boardwire_task_written;
BEGIN
    w := boardwire_begin_task_write(task, writers, caller, request_id, fingerprint);
    IF w.board_id IS NULL THEN
        RETURN r;
    ELSIF w.stored_response IS NOT NULL OR w.stored_task IS NOT NULL THEN
        RETURN (w.board_id, w.board_version, w.stored_task, w.stored_response, true);
    END IF;
    cur := boardwire_task_at(task, expected);
    dest := boardwire_lane_of(w.board_id, to_lane_id, to_lane_key);
    SELECT * INTO src FROM lanes l WHERE l.id = cur.lane_id;
    IF dest.id <> cur.lane_id THEN
        PERFORM boardwire_check_wip(dest.id, 1);
    END IF;
    -- The order keys the task goes between, leaving the task itself out.
    IF before_task IS NULL AND after_task IS NULL THEN
        SELECT t.position INTO lo FROM tasks t WHERE t.lane_id = dest.id AND t.id <> task
        ORDER BY t.position DESC LIMIT 1;
    ELSE
        SELECT t.position INTO anchor_at FROM tasks t
        WHERE t.id = coalesce(before_task, after_task) AND t.lane_id = dest.id;
        IF NOT FOUND THEN
            RAISE EXCEPTION USING ERRCODE = 'BWPRE', MESSAGE = format(
                '%s %s is not in the target lane',
                CASE WHEN before_task IS NOT NULL THEN 'before_task_id' ELSE 'after_task_id' END,
                coalesce(before_task, after_task));
        ELSIF before_task IS NOT NULL THEN
            hi := anchor_at;
            SELECT t.position INTO lo FROM tasks t
            WHERE t.lane_id = dest.id AND t.id <> task AND t.position < anchor_at
            ORDER BY t.position DESC LIMIT 1;
        ELSE
            lo := anchor_at;
            SELECT t.position INTO hi FROM tasks t
            WHERE t.lane_id = dest.id AND t.id <> task AND t.position > anchor_at
            ORDER BY t.position LIMIT 1;
        END IF;
    END IF;
    IF cur.parent_id IS NOT NULL THEN
        epics := ARRAY[cur.parent_id];
    END IF;
    progress := boardwire_progress_map(epics);
    UPDATE tasks t SET lane_id = dest.id, position = boardwire_key_between(lo, hi),
        version = t.version + 1, updated_at = now()
    WHERE t.id = task;
    moved := boardwire_task_json(task);
    r.board_version := boardwire_finish_task_write(w.board_id, w.board_version,
        ARRAY[jsonb_build_object('type', 'task.moved', 'task', moved,
            'from_lane_id', src.id, 'from_lane_key', src.key,
            'to_lane_id', dest.id, 'to_lane_key', dest.key)],
        epics, progress, caller, request_id, 'MoveTask', fingerprint, moved, trace);
    r.board_id := w.board_id;
    r.task := moved;
    r.replayed := false;
    RETURN r;
END $$;

-- UpdateTask: every field given (not NULL; `set_parent` / `set_sprint`
-- for the two that may be cleared) replaces the stored one. Values arrive
-- validated; the rules between rows are checked here, under the lock.
CREATE FUNCTION boardwire_update_task(
    task uuid, expected bigint, writers text[], caller text, request_id text, fingerprint bytea,
    trace jsonb, new_title text, new_description text, new_priority smallint, new_kind smallint,
    new_hours double precision, new_assignee text, new_labels text[], new_status text,
    set_parent boolean, new_parent uuid, set_sprint boolean, new_sprint uuid
) RETURNS boardwire_task_written
LANGUAGE plpgsql AS $$
DECLARE
    w boardwire_task_write;
    cur tasks;
    nxt tasks;
    changed text[] := '{}';
    children bigint;
    epics uuid[];
    progress jsonb;
    updated jsonb;
    events jsonb[] := '{}';
    r boardwire_task_written;
BEGIN
    w := boardwire_begin_task_write(task, writers, caller, request_id, fingerprint);
    IF w.board_id IS NULL THEN
        RETURN r;
    ELSIF w.stored_response IS NOT NULL OR w.stored_task IS NOT NULL THEN
        RETURN (w.board_id, w.board_version, w.stored_task, w.stored_response, true);
    END IF;
    cur := boardwire_task_at(task, expected);
    nxt := cur;
    nxt.title := coalesce(new_title, cur.title);
    nxt.description := coalesce(new_description, cur.description);
    nxt.priority := coalesce(new_priority, cur.priority);
    nxt.kind := coalesce(new_kind, cur.kind);
    nxt.estimated_hours := coalesce(new_hours, cur.estimated_hours);
    nxt.assignee := coalesce(new_assignee, cur.assignee);
    nxt.labels := coalesce(new_labels, cur.labels);
    nxt.status := coalesce(new_status, cur.status);
    IF set_parent THEN nxt.parent_id := new_parent; END IF;
    IF set_sprint THEN nxt.sprint_id := new_sprint; END IF;
    -- Proto field names, in the order of the Task message.
    IF nxt.title <> cur.title THEN changed := changed || 'title'::text; END IF;
    IF nxt.description <> cur.description THEN changed := changed || 'description'::text; END IF;
    IF nxt.priority <> cur.priority THEN changed := changed || 'priority'::text; END IF;
    IF nxt.kind <> cur.kind THEN changed := changed || 'kind'::text; END IF;
    IF nxt.estimated_hours <> cur.estimated_hours THEN
        changed := changed || 'estimated_hours'::text;
    END IF;
    IF nxt.assignee <> cur.assignee THEN changed := changed || 'assignee'::text; END IF;
    IF nxt.labels <> cur.labels THEN changed := changed || 'labels'::text; END IF;
    IF nxt.status <> cur.status THEN changed := changed || 'status'::text; END IF;
    IF nxt.parent_id IS DISTINCT FROM cur.parent_id THEN
        changed := changed || 'parent_id'::text;
    END IF;
    IF nxt.sprint_id IS DISTINCT FROM cur.sprint_id THEN
        changed := changed || 'sprint_id'::text;
    END IF;

    IF cardinality(changed) > 0 THEN
        IF nxt.kind <> cur.kind OR nxt.parent_id IS DISTINCT FROM cur.parent_id THEN
            IF cur.kind = 4 AND nxt.kind <> 4 THEN
                SELECT count(*) INTO children FROM tasks t WHERE t.parent_id = task;
                IF children > 0 THEN
                    RAISE EXCEPTION USING ERRCODE = 'BWPRE', MESSAGE = format(
                        'kind: the epic still has %s tasks; clear their parent_id first', children);
                END IF;
            END IF;
            PERFORM boardwire_check_parent(w.board_id, task, nxt.parent_id, nxt.kind);
        END IF;
        IF nxt.sprint_id IS DISTINCT FROM cur.sprint_id THEN
            PERFORM boardwire_check_sprint(w.board_id, nxt.sprint_id);
        END IF;
        SELECT coalesce(array_agg(DISTINCT e ORDER BY e), '{}') INTO epics
        FROM unnest(ARRAY[cur.parent_id, nxt.parent_id]) e WHERE e IS NOT NULL;
        progress := boardwire_progress_map(epics);
        UPDATE tasks t SET title = nxt.title, description = nxt.description,
            priority = nxt.priority, kind = nxt.kind, estimated_hours = nxt.estimated_hours,
            assignee = nxt.assignee, labels = nxt.labels, status = nxt.status,
            parent_id = nxt.parent_id, sprint_id = nxt.sprint_id,
            version = t.version + 1, updated_at = now()
        WHERE t.id = task;
    END IF;
    updated := boardwire_task_json(task);
    IF cardinality(changed) > 0 THEN
        events := ARRAY[jsonb_build_object('type', 'task.updated', 'task', updated,
            'changed_fields', to_jsonb(changed))];
    END IF;
    -- The same values as stored write nothing and announce nothing, but
    -- the request_id is still recorded.
    r.board_version := boardwire_finish_task_write(w.board_id, w.board_version, events,
        epics, progress, caller, request_id, 'UpdateTask', fingerprint, updated, trace);
    r.board_id := w.board_id;
    r.task := updated;
    r.replayed := false;
    RETURN r;
END $$;

-- CreateTask: at the end of the lane named by `lane_id` or `lane_key` of
-- the board named by `board_id` or `board_ref` (its slug).
CREATE FUNCTION boardwire_create_task(
    new_task uuid, writers text[], caller text, request_id text, fingerprint bytea, trace jsonb,
    board_uuid uuid, board_ref text, lane_uuid uuid, lane_ref text,
    new_title text, new_description text, new_priority smallint, new_kind smallint,
    new_hours double precision, new_assignee text, new_labels text[], new_status text,
    new_parent uuid, new_sprint uuid
) RETURNS boardwire_task_written
LANGUAGE plpgsql AS $$
DECLARE
    w boardwire_task_write;
    dest lanes;
    last_at text COLLATE "C";
    epics uuid[] := '{}';
    progress jsonb;
    created jsonb;
    r boardwire_task_written;
BEGIN
    SELECT b.id, b.slug, b.version INTO w.board_id, w.slug, w.board_version
    FROM boards b WHERE b.id = board_uuid OR b.slug = board_ref
    ORDER BY b.id = board_uuid DESC LIMIT 1 FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'BWNTF',
            MESSAGE = format('board %s not found', to_jsonb(board_ref));
    END IF;
    w := boardwire_admit_write(w, writers, caller, request_id, fingerprint);
    IF w.stored_response IS NOT NULL OR w.stored_task IS NOT NULL THEN
        RETURN (w.board_id, w.board_version, w.stored_task, w.stored_response, true);
    END IF;
    dest := boardwire_lane_of(w.board_id, lane_uuid, lane_ref);
    PERFORM boardwire_check_parent(w.board_id, NULL, new_parent, new_kind);
    PERFORM boardwire_check_sprint(w.board_id, new_sprint);
    PERFORM boardwire_check_wip(dest.id, 1);
    IF new_parent IS NOT NULL THEN
        epics := ARRAY[new_parent];
    END IF;
    progress := boardwire_progress_map(epics);
    SELECT t.position INTO last_at FROM tasks t WHERE t.lane_id = dest.id
    ORDER BY t.position DESC LIMIT 1;
    INSERT INTO tasks AS t (id, board_id, lane_id, title, description, priority, kind,
        estimated_hours, assignee, labels, position, status, parent_id, sprint_id)
    VALUES (new_task, w.board_id, dest.id, new_title, new_description, new_priority, new_kind,
        new_hours, new_assignee, new_labels, boardwire_key_between(last_at, NULL), new_status,
        new_parent, new_sprint);
    created := boardwire_task_json(new_task);
    r.board_version := boardwire_finish_task_write(w.board_id, w.board_version,
        ARRAY[jsonb_build_object('type', 'task.created', 'task', created)],
        epics, progress, caller, request_id, 'CreateTask', fingerprint, created, trace);
    r.board_id := w.board_id;
    r.task := created;
    r.replayed := false;
    RETURN r;
END $$;
