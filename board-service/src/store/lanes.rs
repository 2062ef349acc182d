//! Lane mutations: create, update (rename, WIP limit, reorder), delete.

use protocol::{
    event_type,
    v1::{
        BoardEvent, CreateLaneRequest, DeleteLaneRequest, DeleteLaneResponse, Lane,
        UpdateLaneRequest,
    },
};
use service_kit::auth::Access;
use uuid::Uuid;

use super::{
    Key, LaneRow, Scope, Store, TaskRow, Tx, board_lanes, epics, find_lane, locked_or_return,
    rows::TASK_COLUMNS, tasks::check_wip,
};
use crate::{
    error::{Error, Result},
    rank, validate,
};

impl Store {
    pub async fn create_lane(&self, access: &Access, req: CreateLaneRequest) -> Result<Lane> {
        const METHOD: &str = "CreateLane";
        let idem = Key::new(access, METHOD, &req)?;
        let key = validate::lane_key(&req.key)?;
        let name = if req.name.trim().is_empty() {
            validate::lane_name_from_key(&key)
        } else {
            validate::text("name", &req.name, validate::NAME_MAX)?
        };
        let wip_limit = req.wip_limit.map(validate::wip_limit).transpose()?;

        let began = self
            .begin(access, Scope::Board(&req.board_id), &idem)
            .await?;
        let (mut tx, board) = locked_or_return!(began);
        let mut lanes = board_lanes(&mut tx, board.id).await?;
        if lanes.iter().any(|l| l.key == key) {
            return Err(Error::AlreadyExists(format!(
                "lane {key:?} already exists on this board"
            )));
        }
        let index = req
            .position
            .map_or(lanes.len(), |p| (p as usize).min(lanes.len()));
        let lane = LaneRow {
            id: Uuid::now_v7(),
            board_id: board.id,
            key,
            name,
            position: index as i32,
            wip_limit,
        };
        sqlx::query(
            "UPDATE lanes SET position = position + 1 WHERE board_id = $1 AND position >= $2",
        )
        .bind(board.id)
        .bind(index as i32)
        .execute(&mut *tx)
        .await?;
        sqlx::query("INSERT INTO lanes (id, board_id, key, name, position, wip_limit) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(lane.id)
            .bind(board.id)
            .bind(&lane.key)
            .bind(&lane.name)
            .bind(lane.position)
            .bind(lane.wip_limit)
            .execute(&mut *tx)
            .await?;
        lanes.insert(index, lane.clone());
        renumber(&mut lanes);
        let response = lane.to_proto();
        let event = lane_event(
            event_type::LANE_CREATED,
            &req.request_id,
            &response,
            &lanes,
            vec![],
        );
        Self::commit_change(tx, &board, event, &idem, &response).await?;
        Ok(response)
    }

    pub async fn update_lane(&self, access: &Access, req: UpdateLaneRequest) -> Result<Lane> {
        const METHOD: &str = "UpdateLane";
        let key = Key::new(access, METHOD, &req)?;
        let lane_id = validate::id("lane_id", &req.lane_id)?;
        let name = req
            .name
            .as_deref()
            .map(|n| validate::text("name", n, validate::NAME_MAX))
            .transpose()?;
        let wip_limit = req.wip_limit.map(validate::wip_limit).transpose()?;
        if req.clear_wip_limit && wip_limit.is_some() {
            return Err(Error::InvalidArgument(
                "set either wip_limit or clear_wip_limit, not both".into(),
            ));
        }
        if name.is_none() && wip_limit.is_none() && !req.clear_wip_limit && req.position.is_none() {
            return Err(Error::InvalidArgument(
                "nothing to update: set name, wip_limit, clear_wip_limit or position".into(),
            ));
        }

        let began = self.begin(access, Scope::Lane(lane_id), &key).await?;
        let (mut tx, board) = locked_or_return!(began);
        let mut lanes = board_lanes(&mut tx, board.id).await?;
        let index = lanes
            .iter()
            .position(|l| l.id == lane_id)
            .ok_or_else(|| Error::NotFound(format!("lane {lane_id} not found")))?;
        let mut lane = lanes.remove(index);
        if let Some(name) = name {
            lane.name = name;
        }
        if let Some(limit) = wip_limit {
            lane.wip_limit = Some(limit);
        }
        if req.clear_wip_limit {
            lane.wip_limit = None;
        }
        let new_index = req
            .position
            .map_or(index, |p| (p as usize).min(lanes.len()));
        lanes.insert(new_index, lane);
        renumber(&mut lanes);
        save_lanes(&mut tx, &lanes).await?;
        let response = lanes[new_index].to_proto();
        let event = lane_event(
            event_type::LANE_UPDATED,
            &req.request_id,
            &response,
            &lanes,
            vec![],
        );
        Self::commit_change(tx, &board, event, &key, &response).await?;
        Ok(response)
    }

    pub async fn delete_lane(
        &self,
        access: &Access,
        req: DeleteLaneRequest,
    ) -> Result<DeleteLaneResponse> {
        const METHOD: &str = "DeleteLane";
        let key = Key::new(access, METHOD, &req)?;
        let lane_id = validate::id("lane_id", &req.lane_id)?;
        let began = self.begin(access, Scope::Lane(lane_id), &key).await?;
        let (mut tx, board) = locked_or_return!(began);
        let mut lanes = board_lanes(&mut tx, board.id).await?;
        let index = lanes
            .iter()
            .position(|l| l.id == lane_id)
            .ok_or_else(|| Error::NotFound(format!("lane {lane_id} not found")))?;
        let lane = lanes.remove(index);
        let tasks: Vec<TaskRow> = sqlx::query_as(&format!(
            "SELECT {TASK_COLUMNS} FROM tasks t WHERE t.lane_id = $1 ORDER BY t.position"
        ))
        .bind(lane_id)
        .fetch_all(&mut *tx)
        .await?;

        let mut moved = Vec::with_capacity(tasks.len());
        let mut progress = Vec::new();
        if !tasks.is_empty() {
            let Some(target_ref) = req.move_tasks_to_lane_id.as_deref() else {
                return Err(Error::FailedPrecondition(format!(
                    "lane {:?} still holds {} tasks: pass move_tasks_to_lane_id to move them",
                    lane.key,
                    tasks.len()
                )));
            };
            if target_ref == lane.key || target_ref == lane.id.to_string() {
                return Err(Error::InvalidArgument(
                    "move_tasks_to_lane_id must name another lane than the one deleted".into(),
                ));
            }
            let target = find_lane(&lanes, target_ref)?.clone();
            check_wip(&mut tx, &target, tasks.len() as i64).await?;
            let mut last: Option<(String,)> = sqlx::query_as(
                "SELECT position FROM tasks WHERE lane_id = $1 ORDER BY position DESC LIMIT 1",
            )
            .bind(target.id)
            .fetch_optional(&mut *tx)
            .await?;
            // Keys appended after the target's last task, in the old order;
            // then one statement moves them all.
            let mut positions = Vec::with_capacity(tasks.len());
            for _ in &tasks {
                let position = rank::key_between(last.as_ref().map(|(p,)| p.as_str()), None)
                    .map_err(|e| Error::Internal(e.to_string()))?;
                positions.push(position.clone());
                last = Some((position,));
            }
            let ids: Vec<Uuid> = tasks.iter().map(|t| t.id).collect();
            progress = epics::progress_before(&mut tx, tasks.iter().map(|t| t.parent_id)).await?;
            let mut rows: Vec<TaskRow> = sqlx::query_as(&format!(
                "UPDATE tasks AS t SET lane_id = $1, position = m.position, version = t.version + 1,
                     updated_at = now()
                 FROM unnest($2::uuid[], $3::text[]) AS m(id, position)
                 WHERE t.id = m.id RETURNING {TASK_COLUMNS}"
            ))
            .bind(target.id)
            .bind(&ids)
            .bind(&positions)
            .fetch_all(&mut *tx)
            .await?;
            rows.sort_by(|a, b| a.position.cmp(&b.position));
            moved = rows.iter().map(TaskRow::to_proto).collect();
        }
        sqlx::query("DELETE FROM lanes WHERE id = $1")
            .bind(lane_id)
            .execute(&mut *tx)
            .await?;
        renumber(&mut lanes);
        save_lanes(&mut tx, &lanes).await?;
        let deleted = lane.to_proto();
        let event = lane_event(
            event_type::LANE_DELETED,
            &req.request_id,
            &deleted,
            &lanes,
            moved.clone(),
        );
        // Tasks leaving the `done` lane move their epics' progress.
        let mut events = vec![event];
        events.extend(epics::progress_events(&mut tx, progress, &req.request_id).await?);
        let response = DeleteLaneResponse {
            lane: Some(deleted),
            moved_tasks: moved,
            board_version: board.version as u64 + events.len() as u64,
        };
        Self::commit_changes(tx, &board, events, &key, &response).await?;
        Ok(response)
    }
}

/// Writes every lane's name, WIP limit and position in one statement.
async fn save_lanes(tx: &mut Tx, lanes: &[LaneRow]) -> Result<()> {
    let ids: Vec<Uuid> = lanes.iter().map(|l| l.id).collect();
    let names: Vec<&str> = lanes.iter().map(|l| l.name.as_str()).collect();
    let limits: Vec<Option<i32>> = lanes.iter().map(|l| l.wip_limit).collect();
    let positions: Vec<i32> = lanes.iter().map(|l| l.position).collect();
    sqlx::query(
        "UPDATE lanes AS l SET name = m.name, wip_limit = m.wip_limit, position = m.position
         FROM unnest($1::uuid[], $2::text[], $3::int[], $4::int[]) AS m(id, name, wip_limit, position)
         WHERE l.id = m.id",
    )
    .bind(&ids)
    .bind(&names)
    .bind(&limits)
    .bind(&positions)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

fn renumber(lanes: &mut [LaneRow]) {
    for (i, lane) in lanes.iter_mut().enumerate() {
        lane.position = i as i32;
    }
}

/// A lane event carries the whole lane order, so clients need no follow-up read.
fn lane_event(
    kind: &str,
    request_id: &str,
    lane: &Lane,
    lanes: &[LaneRow],
    moved_tasks: Vec<protocol::v1::Task>,
) -> BoardEvent {
    BoardEvent {
        r#type: kind.into(),
        request_id: request_id.into(),
        lane: Some(lane.clone()),
        lanes: lanes.iter().map(LaneRow::to_proto).collect(),
        moved_tasks,
        ..Default::default()
    }
}
