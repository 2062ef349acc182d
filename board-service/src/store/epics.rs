//! Epics: tasks of kind epic that other tasks of the same board point to
//! through `parent_id`. An epic has no parent, so a chain is one level deep
//! and no cycle can form. Its progress is derived from its tasks' lanes;
//! when a change moves it, the epic's `task.updated` (changed_fields
//! `progress`) follows the change at the next board version. The rules on
//! `parent_id` are checked in the database (`boardwire_check_parent`).

use protocol::{
    event_type,
    v1::{BoardEvent, Progress},
};
use uuid::Uuid;

use super::{Tx, tasks::read_task};
use crate::error::{Error, Result};

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
