//! Task mutations: create, update, move, delete.

use protocol::{
    event_type,
    v1::{
        BoardEvent, CreateTaskRequest, DeleteTaskRequest, DeleteTaskResponse, MoveTaskRequest,
        Priority, Task, TaskKind, UpdateTaskRequest, move_task_request::Anchor,
    },
};
use service_kit::auth::Access;
use uuid::Uuid;

use super::{
    Key, LaneRow, Store, TaskRow, Tx, epics, locked_or_return, rows::TASK_COLUMNS, sprints,
};
use crate::{
    error::{Error, Result},
    validate,
};

/// What `boardwire_update_task` and `boardwire_move_task` answer (the
/// migration's `boardwire_task_written`).
#[derive(sqlx::FromRow)]
struct TaskWritten {
    board_id: Option<Uuid>,
    board_version: Option<i64>,
    task: Option<String>,
    stored_response: Option<Vec<u8>>,
    replayed: Option<bool>,
}

/// The statement calling one of the database's task writes, built at
/// compile time: the call takes the task ($1), expected version ($2), write
/// grants ($3), caller ($4), request_id ($5), fingerprint ($6) and trace
/// context ($7); its own arguments follow.
macro_rules! task_write_sql {
    ($call:literal) => {
        concat!(
            "SELECT w.board_id, w.board_version, w.task::text AS task, w.stored_response,
                 w.replayed FROM ",
            $call,
            " w"
        )
    };
}

/// [`task_write_sql!`]'s statement with its first seven arguments bound.
fn task_write<'q>(
    sql: &'static str,
    access: &'q Access,
    task_id: Uuid,
    expected_version: Option<u64>,
    key: &'q Key<'q>,
) -> sqlx::query::QueryAs<'q, sqlx::Postgres, TaskWritten, sqlx::postgres::PgArguments> {
    let trace = service_kit::telemetry::propagation::current_context_map();
    sqlx::query_as(sql)
        .bind(task_id)
        .bind(expected_version.map(|v| v as i64))
        .bind(access.write_grants())
        .bind(key.caller)
        .bind(key.request_id)
        .bind(key.fingerprint())
        .bind(serde_json::to_string(&trace).unwrap_or_else(|_| "{}".into()))
}

impl Store {
    /// One call of `boardwire_create_task`, as [`Store::update_task`].
    pub async fn create_task(&self, access: &Access, req: CreateTaskRequest) -> Result<Task> {
        const METHOD: &str = "CreateTask";
        let key = Key::new(access, METHOD, &req)?;
        let title = validate::title(&req.title)?;
        let description = validate::description(&req.description)?;
        let priority = validate::priority(req.priority, Some(Priority::Medium))?;
        let kind = validate::kind(req.kind, Some(TaskKind::Task))?;
        let estimated_hours = validate::estimated_hours(req.estimated_hours)?;
        let assignee = validate::assignee(&req.assignee)?;
        let labels = validate::labels(&req.labels)?;
        let status = validate::status(&req.status)?;
        let parent = epics::parent_ref(&req.parent_id)?;
        let sprint = sprints::sprint_ref(&req.sprint_id)?;
        if req.lane_id.is_empty() {
            return Err(Error::InvalidArgument(
                "lane_id is required (a lane id or key)".into(),
            ));
        }

        let board_ref = validate::board_ref(&req.board_id)?;
        let new_task = Uuid::now_v7();
        // $2, the expected version, has no place in a create.
        let written = task_write(
            task_write_sql!(
                "boardwire_create_task($1, $3, $4, $5, $6, $7::text::jsonb, $8, $9, $10, $11,
                     $12, $13, $14, $15, $16, $17, $18, $19, $20, $21)"
            ),
            access,
            new_task,
            None,
            &key,
        )
        .bind(Uuid::parse_str(board_ref).ok())
        .bind(board_ref)
        .bind(Uuid::parse_str(&req.lane_id).ok())
        .bind(&req.lane_id)
        .bind(title)
        .bind(description)
        .bind(priority as i16)
        .bind(kind as i16)
        .bind(estimated_hours)
        .bind(assignee)
        .bind(labels)
        .bind(status)
        .bind(parent)
        .bind(sprint)
        .fetch_one(self.pool())
        .await?;
        self.task_written(written, new_task, &key).await
    }

    /// One call of `boardwire_update_task`: the board lock, the checks, the
    /// write, the log and the request_id's record in one round trip.
    pub async fn update_task(&self, access: &Access, req: UpdateTaskRequest) -> Result<Task> {
        const METHOD: &str = "UpdateTask";
        let key = Key::new(access, METHOD, &req)?;
        let task_id = validate::id("task_id", &req.task_id)?;
        let title = req.title.as_deref().map(validate::title).transpose()?;
        let description = (req.description.as_deref())
            .map(validate::description)
            .transpose()?;
        let priority = (req.priority)
            .map(|p| validate::priority(p, None).map(|p| p as i16))
            .transpose()?;
        let kind = (req.kind)
            .map(|k| validate::kind(k, None).map(|k| k as i16))
            .transpose()?;
        let hours = (req.estimated_hours)
            .map(validate::estimated_hours)
            .transpose()?;
        let assignee = req
            .assignee
            .as_deref()
            .map(validate::assignee)
            .transpose()?;
        let labels = (req.labels.as_ref())
            .map(|l| validate::labels(&l.values))
            .transpose()?;
        let status = req.status.as_deref().map(validate::status).transpose()?;
        let parent = req
            .parent_id
            .as_deref()
            .map(epics::parent_ref)
            .transpose()?;
        let sprint = req
            .sprint_id
            .as_deref()
            .map(sprints::sprint_ref)
            .transpose()?;
        let nothing = [title.is_none(), description.is_none(), priority.is_none()]
            .into_iter()
            .chain([kind.is_none(), hours.is_none(), assignee.is_none()])
            .chain([labels.is_none(), status.is_none(), parent.is_none()])
            .all(|none| none)
            && sprint.is_none();
        if nothing {
            return Err(Error::InvalidArgument(
                "nothing to update: set at least one of title, description, priority, kind, \
                 estimated_hours, assignee, labels, status, parent_id, sprint_id"
                    .into(),
            ));
        }
        let written = task_write(
            task_write_sql!(
                "boardwire_update_task($1, $2, $3, $4, $5, $6, $7::text::jsonb, $8, $9, $10,
                     $11, $12, $13, $14, $15, $16, $17, $18, $19)"
            ),
            access,
            task_id,
            req.expected_version,
            &key,
        )
        .bind(title)
        .bind(description)
        .bind(priority)
        .bind(kind)
        .bind(hours)
        .bind(assignee)
        .bind(labels)
        .bind(status)
        .bind(parent.is_some())
        .bind(parent.flatten())
        .bind(sprint.is_some())
        .bind(sprint.flatten())
        .fetch_one(self.pool())
        .await?;
        self.task_written(written, task_id, &key).await
    }

    /// One call of `boardwire_move_task`, as [`Store::update_task`].
    pub async fn move_task(&self, access: &Access, req: MoveTaskRequest) -> Result<Task> {
        const METHOD: &str = "MoveTask";
        let key = Key::new(access, METHOD, &req)?;
        let task_id = validate::id("task_id", &req.task_id)?;
        if req.to_lane_id.is_empty() {
            return Err(Error::InvalidArgument(
                "to_lane_id is required (a lane id or key)".into(),
            ));
        }
        let (before, after) = match &req.anchor {
            None => (None, None),
            Some(Anchor::BeforeTaskId(id)) => (Some(validate::id("before_task_id", id)?), None),
            Some(Anchor::AfterTaskId(id)) => (None, Some(validate::id("after_task_id", id)?)),
        };
        if before.or(after) == Some(task_id) {
            return Err(Error::InvalidArgument(
                "a task cannot be placed next to itself".into(),
            ));
        }
        let written = task_write(
            task_write_sql!(
                "boardwire_move_task($1, $8, $9, $10, $11, $2, $3, $4, $5, $6, $7::text::jsonb)"
            ),
            access,
            task_id,
            req.expected_version,
            &key,
        )
        .bind(Uuid::parse_str(&req.to_lane_id).ok())
        .bind(&req.to_lane_id)
        .bind(before)
        .bind(after)
        .fetch_one(self.pool())
        .await?;
        self.task_written(written, task_id, &key).await
    }

    /// The task a task write answers with, announcing what it appended; a
    /// vanished task's request_id may still have an answer on record.
    async fn task_written(
        &self,
        written: TaskWritten,
        task_id: Uuid,
        key: &Key<'_>,
    ) -> Result<Task> {
        let Some(board_id) = written.board_id else {
            return match key.replay_any::<Task>(self.pool()).await? {
                Some((task, _)) => Ok(task),
                None => Err(super::task_not_found(task_id)),
            };
        };
        if written.replayed != Some(true) {
            let version = written.board_version.unwrap_or_default();
            self.announcer().committed(&[(board_id, version as u64)]);
        }
        let stored = super::idempotency::Stored {
            response: written.stored_response,
            response_task: written.task,
        };
        stored
            .decode()?
            .ok_or_else(|| Error::Internal("a task write answered no task".into()))
    }

    pub async fn delete_task(
        &self,
        access: &Access,
        req: DeleteTaskRequest,
    ) -> Result<DeleteTaskResponse> {
        const METHOD: &str = "DeleteTask";
        let key = Key::new(access, METHOD, &req)?;
        let task_id = validate::id("task_id", &req.task_id)?;
        let began = self
            .begin_on_task(access, task_id, &key, req.expected_version)
            .await?;
        let (mut tx, board, current) = locked_or_return!(began);
        // A deleted epic's tasks stay, without a parent; each is announced.
        let orphans: Vec<TaskRow> = sqlx::query_as(&format!(
            "UPDATE tasks AS t SET parent_id = NULL, version = version + 1, updated_at = now()
             WHERE parent_id = $1 RETURNING {TASK_COLUMNS}"
        ))
        .bind(task_id)
        .fetch_all(&mut *tx)
        .await?;
        let mut events: Vec<BoardEvent> = orphans
            .iter()
            .map(|orphan| BoardEvent {
                r#type: event_type::TASK_UPDATED.into(),
                request_id: req.request_id.clone(),
                task: Some(orphan.to_proto()),
                changed_fields: vec!["parent_id".into()],
                ..Default::default()
            })
            .collect();
        let progress = epics::progress_before(&mut tx, [current.parent_id]).await?;
        sqlx::query("DELETE FROM tasks WHERE id = $1")
            .bind(task_id)
            .execute(&mut *tx)
            .await?;
        events.push(BoardEvent {
            r#type: event_type::TASK_DELETED.into(),
            request_id: req.request_id.clone(),
            task: Some(current.to_proto()),
            ..Default::default()
        });
        events.extend(epics::progress_events(&mut tx, progress, &req.request_id).await?);
        let response = DeleteTaskResponse {
            task_id: task_id.to_string(),
            board_version: board.version as u64 + events.len() as u64,
        };
        Self::commit_changes(tx, &board, events, &key, &response).await?;
        Ok(response)
    }
}

pub(super) async fn read_task(tx: &mut Tx, task_id: Uuid) -> Result<TaskRow> {
    sqlx::query_as(&format!(
        "SELECT {TASK_COLUMNS} FROM tasks t WHERE t.id = $1"
    ))
    .bind(task_id)
    .fetch_optional(&mut **tx)
    .await?
    .ok_or_else(|| super::task_not_found(task_id))
}

/// Refuses to add `adding` tasks to a lane at its WIP limit
/// (`boardwire_check_wip`). Runs under the board lock, so two concurrent
/// writes cannot both take the last slot.
pub(super) async fn check_wip(tx: &mut Tx, lane: &LaneRow, adding: i64) -> Result<()> {
    if lane.wip_limit.is_none() {
        return Ok(());
    }
    sqlx::query("SELECT boardwire_check_wip($1, $2)")
        .bind(lane.id)
        .bind(adding)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
