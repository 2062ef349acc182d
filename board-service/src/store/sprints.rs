//! Sprints: time boxes on a board, planned → active → completed, at most
//! one active per board (also a partial unique index). A task belongs to
//! at most one sprint of its board. Every write holds the board lock and
//! goes through the idempotency path like any other board write.

use chrono::{DateTime, Utc};
use protocol::{
    event_type,
    v1::{
        BoardEvent, CompleteSprintRequest, CompleteSprintResponse, CreateSprintRequest, Sprint,
        SprintState, StartSprintRequest,
    },
};
use service_kit::auth::Access;
use uuid::Uuid;

use super::{
    Key, Scope, SprintRow, Store, TaskRow, Tx, check_read, check_version, locked_or_return,
    rows::{SPRINT_COLUMNS, TASK_COLUMNS},
};
use crate::{
    error::{Error, Result, unique_violation},
    validate,
};

/// Longest sprint goal, in characters.
pub const GOAL_MAX: usize = 2_000;

const PLANNED: i16 = SprintState::Planned as i16;
const ACTIVE: i16 = SprintState::Active as i16;
const COMPLETED: i16 = SprintState::Completed as i16;

impl Store {
    pub async fn create_sprint(&self, access: &Access, req: CreateSprintRequest) -> Result<Sprint> {
        const METHOD: &str = "CreateSprint";
        let key = Key::new(access, METHOD, &req)?;
        let name = validate::text("name", &req.name, validate::NAME_MAX)?;
        let goal = goal(&req.goal)?;
        let starts_at = instant("starts_at", req.starts_at.as_ref())?;
        let ends_at = instant("ends_at", req.ends_at.as_ref())?;
        if ends_at <= starts_at {
            return Err(Error::InvalidArgument(
                "ends_at must be after starts_at".into(),
            ));
        }
        let began = self
            .begin(access, Scope::Board(&req.board_id), &key)
            .await?;
        let (mut tx, board) = locked_or_return!(began);
        let sprint: SprintRow = sqlx::query_as(&format!(
            "INSERT INTO sprints (id, board_id, name, goal, starts_at, ends_at, state)
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {SPRINT_COLUMNS}"
        ))
        .bind(Uuid::now_v7())
        .bind(board.id)
        .bind(&name)
        .bind(&goal)
        .bind(starts_at)
        .bind(ends_at)
        .bind(PLANNED)
        .fetch_one(&mut *tx)
        .await?;
        let sprint = sprint.to_proto();
        let event = sprint_event(event_type::SPRINT_CREATED, &req.request_id, &sprint);
        Self::commit_change(tx, &board, event, &key, &sprint).await?;
        Ok(sprint)
    }

    pub async fn start_sprint(&self, access: &Access, req: StartSprintRequest) -> Result<Sprint> {
        const METHOD: &str = "StartSprint";
        let key = Key::new(access, METHOD, &req)?;
        let sprint_id = validate::id("sprint_id", &req.sprint_id)?;
        let began = self.begin(access, Scope::Sprint(sprint_id), &key).await?;
        let (mut tx, board) = locked_or_return!(began);
        let current = read_sprint(&mut tx, sprint_id).await?;
        check_version("sprint", current.version, req.expected_version)?;
        if current.state != PLANNED {
            return Err(Error::FailedPrecondition(format!(
                "sprint_id: sprint {sprint_id} is {}; only a planned sprint can start",
                state_name(current.state)
            )));
        }
        let active: Option<(Uuid, String)> =
            sqlx::query_as("SELECT id, name FROM sprints WHERE board_id = $1 AND state = $2")
                .bind(board.id)
                .bind(ACTIVE)
                .fetch_optional(&mut *tx)
                .await?;
        if let Some((id, name)) = active {
            return Err(one_active(id, &name));
        }
        let started: SprintRow = sqlx::query_as(&format!(
            "UPDATE sprints SET state = $2, version = version + 1, updated_at = now()
             WHERE id = $1 RETURNING {SPRINT_COLUMNS}"
        ))
        .bind(sprint_id)
        .bind(ACTIVE)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| match unique_violation(&e) {
            // Only reachable if the board lock were bypassed.
            Some(_) => Error::FailedPrecondition(
                "sprint_id: the board already has an active sprint; complete it first".into(),
            ),
            None => e.into(),
        })?;
        let sprint = started.to_proto();
        let event = sprint_event(event_type::SPRINT_STARTED, &req.request_id, &sprint);
        Self::commit_change(tx, &board, event, &key, &sprint).await?;
        Ok(sprint)
    }

    pub async fn complete_sprint(
        &self,
        access: &Access,
        req: CompleteSprintRequest,
    ) -> Result<CompleteSprintResponse> {
        const METHOD: &str = "CompleteSprint";
        let key = Key::new(access, METHOD, &req)?;
        let sprint_id = validate::id("sprint_id", &req.sprint_id)?;
        let move_to = match req.move_to_sprint_id.as_str() {
            "" => None,
            id => Some(validate::id("move_to_sprint_id", id)?),
        };
        if move_to == Some(sprint_id) {
            return Err(Error::InvalidArgument(
                "move_to_sprint_id: a sprint cannot take its own unfinished tasks".into(),
            ));
        }
        let began = self.begin(access, Scope::Sprint(sprint_id), &key).await?;
        let (mut tx, board) = locked_or_return!(began);
        let current = read_sprint(&mut tx, sprint_id).await?;
        check_version("sprint", current.version, req.expected_version)?;
        if current.state != ACTIVE {
            return Err(Error::FailedPrecondition(format!(
                "sprint_id: sprint {sprint_id} is {}; only the active sprint can complete",
                state_name(current.state)
            )));
        }
        if let Some(target) = move_to {
            let found: Option<(Uuid, i16)> =
                sqlx::query_as("SELECT board_id, state FROM sprints WHERE id = $1")
                    .bind(target)
                    .fetch_optional(&mut *tx)
                    .await?;
            match found {
                None => {
                    return Err(Error::FailedPrecondition(format!(
                        "move_to_sprint_id: sprint {target} does not exist"
                    )));
                }
                Some((other, _)) if other != board.id => {
                    return Err(Error::FailedPrecondition(format!(
                        "move_to_sprint_id: sprint {target} is on another board"
                    )));
                }
                Some((_, state)) if state != PLANNED => {
                    return Err(Error::FailedPrecondition(format!(
                        "move_to_sprint_id: sprint {target} is {}, not planned",
                        state_name(state)
                    )));
                }
                Some(_) => {}
            }
        }
        let completed: SprintRow = sqlx::query_as(&format!(
            "UPDATE sprints SET state = $2, version = version + 1, updated_at = now()
             WHERE id = $1 RETURNING {SPRINT_COLUMNS}"
        ))
        .bind(sprint_id)
        .bind(COMPLETED)
        .fetch_one(&mut *tx)
        .await?;
        // Unfinished: not in the lane keyed `done`. Done tasks keep the
        // sprint they were finished in.
        let mut moved: Vec<TaskRow> = sqlx::query_as(&format!(
            "WITH moved AS (
                 UPDATE tasks SET sprint_id = $2, version = version + 1, updated_at = now()
                 WHERE sprint_id = $1
                   AND lane_id NOT IN (SELECT id FROM lanes WHERE board_id = $3 AND key = 'done')
                 RETURNING *)
             SELECT {TASK_COLUMNS} FROM moved t"
        ))
        .bind(sprint_id)
        .bind(move_to)
        .bind(board.id)
        .fetch_all(&mut *tx)
        .await?;
        // Oldest first (ids are time-ordered UUIDv7).
        moved.sort_by_key(|t| t.id);
        let sprint = completed.to_proto();
        let mut events = vec![sprint_event(
            event_type::SPRINT_COMPLETED,
            &req.request_id,
            &sprint,
        )];
        let moved_tasks: Vec<_> = moved.iter().map(TaskRow::to_proto).collect();
        events.extend(moved_tasks.iter().map(|task| BoardEvent {
            r#type: event_type::TASK_UPDATED.into(),
            request_id: req.request_id.clone(),
            task: Some(task.clone()),
            changed_fields: vec!["sprint_id".into()],
            ..Default::default()
        }));
        let response = CompleteSprintResponse {
            sprint: Some(sprint),
            board_version: board.version as u64 + events.len() as u64,
            moved_tasks,
        };
        Self::commit_changes(tx, &board, events, &key, &response).await?;
        Ok(response)
    }

    /// The board's sprints by start time, for a caller that may read it.
    pub async fn list_sprints(&self, access: &Access, board_ref: &str) -> Result<Vec<Sprint>> {
        let board = self.resolve_board(board_ref).await?;
        check_read(access, &board.id.to_string(), &board.slug)?;
        let rows: Vec<SprintRow> = sqlx::query_as(&format!(
            "SELECT {SPRINT_COLUMNS} FROM sprints WHERE board_id = $1 ORDER BY starts_at, id"
        ))
        .bind(board.id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(SprintRow::to_proto).collect())
    }
}

/// A `sprint_id` as requests carry it: empty is none.
pub(super) fn sprint_ref(value: &str) -> Result<Option<Uuid>> {
    match value {
        "" => Ok(None),
        id => validate::id("sprint_id", id).map(Some),
    }
}

async fn read_sprint(tx: &mut Tx, sprint_id: Uuid) -> Result<SprintRow> {
    sqlx::query_as(&format!(
        "SELECT {SPRINT_COLUMNS} FROM sprints WHERE id = $1"
    ))
    .bind(sprint_id)
    .fetch_optional(&mut **tx)
    .await?
    .ok_or_else(|| sprint_not_found(sprint_id))
}

pub(super) fn sprint_not_found(sprint_id: Uuid) -> Error {
    Error::NotFound(format!("sprint {sprint_id} not found"))
}

fn one_active(id: Uuid, name: &str) -> Error {
    Error::FailedPrecondition(format!(
        "sprint_id: sprint {id} ({name:?}) is already active on this board; complete it first"
    ))
}

fn sprint_event(kind: &str, request_id: &str, sprint: &Sprint) -> BoardEvent {
    BoardEvent {
        r#type: kind.into(),
        request_id: request_id.into(),
        sprint: Some(sprint.clone()),
        ..Default::default()
    }
}

fn state_name(state: i16) -> &'static str {
    match state {
        PLANNED => "planned",
        ACTIVE => "active",
        COMPLETED => "completed",
        _ => "unknown",
    }
}

/// Multi-line text, may be empty.
fn goal(value: &str) -> Result<String> {
    if value.chars().count() > GOAL_MAX {
        return Err(Error::InvalidArgument(format!(
            "goal must be at most {GOAL_MAX} characters"
        )));
    }
    validate::no_control_chars("goal", value, true)?;
    Ok(value.trim().to_owned())
}

/// A required timestamp between the years 1970 and 9999.
fn instant(field: &str, at: Option<&prost_types::Timestamp>) -> Result<DateTime<Utc>> {
    let at = at.ok_or_else(|| Error::InvalidArgument(format!("{field} is required")))?;
    const MAX_SECONDS: i64 = 253_402_300_799; // 9999-12-31T23:59:59Z
    if !(0..=MAX_SECONDS).contains(&at.seconds) || !(0..1_000_000_000).contains(&at.nanos) {
        return Err(Error::InvalidArgument(format!(
            "{field} must be a time between 1970 and 9999"
        )));
    }
    DateTime::from_timestamp(at.seconds, at.nanos as u32)
        .ok_or_else(|| Error::InvalidArgument(format!("{field} is not a valid time")))
}
