//! Epics: tasks of kind epic that other tasks of the same board point to
//! through `parent_id`. An epic has no parent, so a chain is one level deep
//! and no cycle can form. Its progress is derived from its tasks' lanes;
//! when a change moves it, the epic's `task.updated` (changed_fields
//! `progress`) follows the change at the next board version.

use protocol::{
    event_type,
    v1::{BoardEvent, Progress, TaskKind},
};
use uuid::Uuid;

use super::{TaskRow, Tx, tasks::read_task};
use crate::error::{Error, Result};

const EPIC: i16 = TaskKind::Epic as i16;

/// Refuses `parent` for a task of `kind` (with id `task_id`, once it
/// exists) on `board_id`, naming the field and the rule.
pub(super) async fn check_parent(
    tx: &mut Tx,
    board_id: Uuid,
    task_id: Option<Uuid>,
    parent: Option<Uuid>,
    kind: i16,
) -> Result<()> {
    let Some(parent) = parent else {
        return Ok(());
    };
    if Some(parent) == task_id {
        return Err(Error::InvalidArgument(
            "parent_id: a task cannot be its own parent".into(),
        ));
    }
    if kind == EPIC {
        return Err(Error::InvalidArgument(
            "parent_id: an epic cannot have a parent (epics are one level deep)".into(),
        ));
    }
    let found: Option<(Uuid, i16)> =
        sqlx::query_as("SELECT board_id, kind FROM tasks WHERE id = $1")
            .bind(parent)
            .fetch_optional(&mut **tx)
            .await?;
    match found {
        None => Err(Error::FailedPrecondition(format!(
            "parent_id: task {parent} does not exist"
        ))),
        Some((other, _)) if other != board_id => Err(Error::FailedPrecondition(format!(
            "parent_id: task {parent} is on another board; an epic's tasks share its board"
        ))),
        Some((_, k)) if k != EPIC => Err(Error::FailedPrecondition(format!(
            "parent_id: task {parent} is a {}, not an epic",
            protocol::board_frames::TaskKind::from_proto(i32::from(k)).as_str()
        ))),
        Some(_) => Ok(()),
    }
}

/// Refuses turning an epic that still has tasks into another kind.
pub(super) fn check_kind_change(task: &TaskRow, kind: i16) -> Result<()> {
    if task.kind != EPIC || kind == EPIC {
        return Ok(());
    }
    let children = task.progress_total.unwrap_or(0);
    if children > 0 {
        return Err(Error::FailedPrecondition(format!(
            "kind: the epic still has {children} tasks; clear their parent_id first"
        )));
    }
    Ok(())
}

/// The epics' progress now, to compare with after a change.
pub(super) async fn progress_before(
    tx: &mut Tx,
    epics: impl IntoIterator<Item = Option<Uuid>>,
) -> Result<Vec<(Uuid, Option<Progress>)>> {
    let mut ids: Vec<Uuid> = epics.into_iter().flatten().collect();
    ids.sort();
    ids.dedup();
    let mut before = Vec::with_capacity(ids.len());
    for id in ids {
        before.push((id, read_task(tx, id).await?.progress()));
    }
    Ok(before)
}

/// A `task.updated` of each epic whose progress differs from `before`.
pub(super) async fn progress_events(
    tx: &mut Tx,
    before: Vec<(Uuid, Option<Progress>)>,
    request_id: &str,
) -> Result<Vec<BoardEvent>> {
    let mut events = Vec::new();
    for (id, was) in before {
        let epic = match read_task(tx, id).await {
            Ok(epic) => epic,
            Err(Error::NotFound(_)) => continue,
            Err(err) => return Err(err),
        };
        let now = epic.progress();
        if now.is_some() && now != was {
            events.push(BoardEvent {
                r#type: event_type::TASK_UPDATED.into(),
                request_id: request_id.into(),
                task: Some(epic.to_proto()),
                changed_fields: vec!["progress".into()],
                ..Default::default()
            });
        }
    }
    Ok(events)
}

/// A `parent_id` as requests carry it: empty is none.
pub(super) fn parent_ref(value: &str) -> Result<Option<Uuid>> {
    match value {
        "" => Ok(None),
        id => crate::validate::id("parent_id", id).map(Some),
    }
}
