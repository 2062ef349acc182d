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
    Key, LaneRow, Scope, Store, TaskRow, Tx, board_lanes, epics, find_lane, locked_or_return,
    rows::TASK_COLUMNS, sprints,
};
use crate::{
    error::{Error, Result},
    rank, validate,
};

impl Store {
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

        let began = self
            .begin(access, Scope::Board(&req.board_id), &key)
            .await?;
        let (mut tx, board) = locked_or_return!(began);
        let lanes = board_lanes(&mut tx, board.id).await?;
        let lane = find_lane(&lanes, &req.lane_id)?;
        epics::check_parent(&mut tx, board.id, None, parent, kind as i16).await?;
        sprints::check_sprint(&mut tx, board.id, sprint).await?;
        check_wip(&mut tx, lane, 1).await?;
        let before = epics::progress_before(&mut tx, [parent]).await?;
        let (last, _) = neighbours(&mut tx, lane.id, None, Uuid::nil()).await?;
        let position = rank::key_between(last.as_deref(), None).map_err(internal)?;

        let task: TaskRow = sqlx::query_as(&format!(
            "INSERT INTO tasks AS t (id, board_id, lane_id, title, description, priority, kind,
                 estimated_hours, assignee, labels, position, status, parent_id, sprint_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
             RETURNING {TASK_COLUMNS}"
        ))
        .bind(Uuid::now_v7())
        .bind(board.id)
        .bind(lane.id)
        .bind(title)
        .bind(description)
        .bind(priority as i16)
        .bind(kind as i16)
        .bind(estimated_hours)
        .bind(assignee)
        .bind(labels)
        .bind(position)
        .bind(status)
        .bind(parent)
        .bind(sprint)
        .fetch_one(&mut *tx)
        .await?;
        let task = task.to_proto();
        let mut events = vec![BoardEvent {
            r#type: event_type::TASK_CREATED.into(),
            request_id: req.request_id.clone(),
            task: Some(task.clone()),
            ..Default::default()
        }];
        events.extend(epics::progress_events(&mut tx, before, &req.request_id).await?);
        Self::commit_changes(tx, &board, events, &key, &task).await?;
        Ok(task)
    }

    pub async fn update_task(&self, access: &Access, req: UpdateTaskRequest) -> Result<Task> {
        const METHOD: &str = "UpdateTask";
        let key = Key::new(access, METHOD, &req)?;
        let task_id = validate::id("task_id", &req.task_id)?;
        let began = self
            .begin_on_task(access, task_id, &key, req.expected_version)
            .await?;
        let (mut tx, board, current) = locked_or_return!(began);

        let mut next = current.clone();
        let mut changed = Vec::new();
        macro_rules! apply {
            ($field:ident, $value:expr) => {
                let value = $value;
                if next.$field != value {
                    next.$field = value;
                    changed.push(stringify!($field).to_string());
                }
            };
        }
        let mut any_field = false;
        if let Some(title) = &req.title {
            any_field = true;
            apply!(title, validate::title(title)?);
        }
        if let Some(description) = &req.description {
            any_field = true;
            apply!(description, validate::description(description)?);
        }
        if let Some(priority) = req.priority {
            any_field = true;
            apply!(priority, validate::priority(priority, None)? as i16);
        }
        if let Some(kind) = req.kind {
            any_field = true;
            apply!(kind, validate::kind(kind, None)? as i16);
        }
        if let Some(hours) = req.estimated_hours {
            any_field = true;
            apply!(estimated_hours, validate::estimated_hours(hours)?);
        }
        if let Some(assignee) = &req.assignee {
            any_field = true;
            apply!(assignee, validate::assignee(assignee)?);
        }
        if let Some(labels) = &req.labels {
            any_field = true;
            apply!(labels, validate::labels(&labels.values)?);
        }
        if let Some(status) = &req.status {
            any_field = true;
            apply!(status, validate::status(status)?);
        }
        if let Some(parent) = &req.parent_id {
            any_field = true;
            apply!(parent_id, epics::parent_ref(parent)?);
        }
        if let Some(sprint) = &req.sprint_id {
            any_field = true;
            apply!(sprint_id, sprints::sprint_ref(sprint)?);
        }
        if !any_field {
            return Err(Error::InvalidArgument(
                "nothing to update: set at least one of title, description, priority, kind, \
                 estimated_hours, assignee, labels, status, parent_id, sprint_id"
                    .into(),
            ));
        }
        if changed.is_empty() {
            // Same values as stored: nothing to write, nothing to broadcast.
            let task = current.to_proto();
            Self::finish(tx, board.id, &key, &task).await?;
            return Ok(task);
        }
        if next.kind != current.kind || next.parent_id != current.parent_id {
            epics::check_kind_change(&current, next.kind)?;
            epics::check_parent(&mut tx, board.id, Some(task_id), next.parent_id, next.kind)
                .await?;
        }
        if next.sprint_id != current.sprint_id {
            sprints::check_sprint(&mut tx, board.id, next.sprint_id).await?;
        }
        let before = epics::progress_before(&mut tx, [current.parent_id, next.parent_id]).await?;

        let updated: TaskRow = sqlx::query_as(&format!(
            "UPDATE tasks AS t SET title = $2, description = $3, priority = $4, kind = $5,
                 estimated_hours = $6, assignee = $7, labels = $8, status = $9, parent_id = $10,
                 sprint_id = $11, version = version + 1, updated_at = now()
             WHERE id = $1 RETURNING {TASK_COLUMNS}"
        ))
        .bind(task_id)
        .bind(&next.title)
        .bind(&next.description)
        .bind(next.priority)
        .bind(next.kind)
        .bind(next.estimated_hours)
        .bind(&next.assignee)
        .bind(&next.labels)
        .bind(&next.status)
        .bind(next.parent_id)
        .bind(next.sprint_id)
        .fetch_one(&mut *tx)
        .await?;
        let task = updated.to_proto();
        let mut events = vec![BoardEvent {
            r#type: event_type::TASK_UPDATED.into(),
            request_id: req.request_id.clone(),
            task: Some(task.clone()),
            changed_fields: changed,
            ..Default::default()
        }];
        events.extend(epics::progress_events(&mut tx, before, &req.request_id).await?);
        Self::commit_changes(tx, &board, events, &key, &task).await?;
        Ok(task)
    }

    pub async fn move_task(&self, access: &Access, req: MoveTaskRequest) -> Result<Task> {
        const METHOD: &str = "MoveTask";
        let key = Key::new(access, METHOD, &req)?;
        let task_id = validate::id("task_id", &req.task_id)?;
        if req.to_lane_id.is_empty() {
            return Err(Error::InvalidArgument(
                "to_lane_id is required (a lane id or key)".into(),
            ));
        }
        let anchor = match &req.anchor {
            None => None,
            Some(Anchor::BeforeTaskId(id)) => Some((true, validate::id("before_task_id", id)?)),
            Some(Anchor::AfterTaskId(id)) => Some((false, validate::id("after_task_id", id)?)),
        };
        if anchor.is_some_and(|(_, id)| id == task_id) {
            return Err(Error::InvalidArgument(
                "a task cannot be placed next to itself".into(),
            ));
        }

        let began = self
            .begin_on_task(access, task_id, &key, req.expected_version)
            .await?;
        let (mut tx, board, current) = locked_or_return!(began);
        let lanes = board_lanes(&mut tx, board.id).await?;
        let to_lane = find_lane(&lanes, &req.to_lane_id)?;
        let from_lane = lanes
            .iter()
            .find(|l| l.id == current.lane_id)
            .ok_or_else(|| Error::Internal(format!("task {task_id} has no lane")))?;
        if to_lane.id != current.lane_id {
            check_wip(&mut tx, to_lane, 1).await?;
        }
        let (before, after) = neighbours(&mut tx, to_lane.id, anchor, task_id).await?;
        let position = rank::key_between(before.as_deref(), after.as_deref()).map_err(internal)?;
        let progress = epics::progress_before(&mut tx, [current.parent_id]).await?;

        let moved: TaskRow = sqlx::query_as(&format!(
            "UPDATE tasks AS t SET lane_id = $2, position = $3, version = version + 1, updated_at = now()
             WHERE id = $1 RETURNING {TASK_COLUMNS}"
        ))
        .bind(task_id)
        .bind(to_lane.id)
        .bind(position)
        .fetch_one(&mut *tx)
        .await?;
        let task = moved.to_proto();
        let event = BoardEvent {
            r#type: event_type::TASK_MOVED.into(),
            request_id: req.request_id.clone(),
            task: Some(task.clone()),
            from_lane_id: from_lane.id.to_string(),
            from_lane_key: from_lane.key.clone(),
            to_lane_id: to_lane.id.to_string(),
            to_lane_key: to_lane.key.clone(),
            ..Default::default()
        };
        let mut events = vec![event];
        events.extend(epics::progress_events(&mut tx, progress, &req.request_id).await?);
        Self::commit_changes(tx, &board, events, &key, &task).await?;
        Ok(task)
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

fn internal(err: rank::RankError) -> Error {
    Error::Internal(err.to_string())
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

/// Refuses to add `adding` tasks to a lane at its WIP limit. Runs under the
/// board lock, so two concurrent moves cannot both take the last slot.
pub(super) async fn check_wip(tx: &mut Tx, lane: &LaneRow, adding: i64) -> Result<()> {
    let Some(limit) = lane.wip_limit else {
        return Ok(());
    };
    let (count,): (i64,) = sqlx::query_as("SELECT count(*) FROM tasks WHERE lane_id = $1")
        .bind(lane.id)
        .fetch_one(&mut **tx)
        .await?;
    if count + adding > i64::from(limit) {
        return Err(Error::FailedPrecondition(format!(
            "lane {:?} is at its WIP limit of {limit} tasks",
            lane.key
        )));
    }
    Ok(())
}

/// The order keys a task placed by `anchor` in `lane_id` goes between,
/// ignoring the task itself. `anchor` is (is_before, task id); `None` is the
/// end of the lane.
async fn neighbours(
    tx: &mut Tx,
    lane_id: Uuid,
    anchor: Option<(bool, Uuid)>,
    moving: Uuid,
) -> Result<(Option<String>, Option<String>)> {
    let Some((is_before, anchor_id)) = anchor else {
        let last: Option<(String,)> = sqlx::query_as(
            "SELECT position FROM tasks WHERE lane_id = $1 AND id <> $2
             ORDER BY position DESC LIMIT 1",
        )
        .bind(lane_id)
        .bind(moving)
        .fetch_optional(&mut **tx)
        .await?;
        return Ok((last.map(|(p,)| p), None));
    };
    let anchor_position: Option<(String,)> =
        sqlx::query_as("SELECT position FROM tasks WHERE id = $1 AND lane_id = $2")
            .bind(anchor_id)
            .bind(lane_id)
            .fetch_optional(&mut **tx)
            .await?;
    let Some((anchor_position,)) = anchor_position else {
        let field = if is_before {
            "before_task_id"
        } else {
            "after_task_id"
        };
        return Err(Error::FailedPrecondition(format!(
            "{field} {anchor_id} is not in the target lane"
        )));
    };
    let sql = if is_before {
        "SELECT position FROM tasks WHERE lane_id = $1 AND id <> $2 AND position < $3
         ORDER BY position DESC LIMIT 1"
    } else {
        "SELECT position FROM tasks WHERE lane_id = $1 AND id <> $2 AND position > $3
         ORDER BY position LIMIT 1"
    };
    let other: Option<(String,)> = sqlx::query_as(sql)
        .bind(lane_id)
        .bind(moving)
        .bind(&anchor_position)
        .fetch_optional(&mut **tx)
        .await?;
    let other = other.map(|(p,)| p);
    Ok(if is_before {
        (other, Some(anchor_position))
    } else {
        (Some(anchor_position), other)
    })
}
