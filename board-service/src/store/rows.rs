//! Database rows and their protobuf form.

use chrono::{DateTime, Utc};
use protocol::v1;
use uuid::Uuid;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct BoardRow {
    pub id: Uuid,
    pub slug: String,
    pub name: String,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub project_id: Option<Uuid>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ProjectRow {
    pub id: Uuid,
    pub slug: String,
    pub name: String,
    pub description: String,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Columns of a [`ProjectRow`].
pub const PROJECT_COLUMNS: &str = "id, slug, name, description, version, created_at, updated_at";

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SprintRow {
    pub id: Uuid,
    pub board_id: Uuid,
    pub name: String,
    pub goal: String,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    /// [`v1::SprintState`] as a number.
    pub state: i16,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Columns of a [`SprintRow`].
pub const SPRINT_COLUMNS: &str =
    "id, board_id, name, goal, starts_at, ends_at, state, version, created_at, updated_at";

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LaneRow {
    pub id: Uuid,
    pub board_id: Uuid,
    pub key: String,
    pub name: String,
    pub position: i32,
    pub wip_limit: Option<i32>,
}

/// A task as queries over [`TASK_COLUMNS`] read it, and as the database's
/// own task writes put it into the log (`boardwire_task_json`, whose JSON
/// keys are these field names).
#[derive(Debug, Clone, sqlx::FromRow, serde::Deserialize)]
pub struct TaskRow {
    pub id: Uuid,
    pub board_id: Uuid,
    pub lane_id: Uuid,
    pub lane_key: String,
    pub title: String,
    pub description: String,
    pub priority: i16,
    pub kind: i16,
    pub estimated_hours: f64,
    pub assignee: String,
    pub labels: Vec<String>,
    pub status: String,
    pub parent_id: Option<Uuid>,
    pub sprint_id: Option<Uuid>,
    /// Epics only: (done, total) of their tasks.
    pub progress_done: Option<i64>,
    pub progress_total: Option<i64>,
    pub position: String,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Columns of a [`TaskRow`] for a query over `tasks t`.
pub const TASK_COLUMNS: &str = "t.id, t.board_id, t.lane_id,
    (SELECT key FROM lanes WHERE id = t.lane_id) AS lane_key,
    t.title, t.description, t.priority, t.kind, t.estimated_hours, t.assignee,
    t.labels, t.status, t.parent_id, t.sprint_id,
    CASE WHEN t.kind = 4 THEN (SELECT count(*) FROM tasks c JOIN lanes cl ON cl.id = c.lane_id
                               WHERE c.parent_id = t.id AND cl.key = 'done') END AS progress_done,
    CASE WHEN t.kind = 4 THEN (SELECT count(*) FROM tasks c WHERE c.parent_id = t.id)
         END AS progress_total,
    t.position, t.version, t.created_at, t.updated_at";

pub fn timestamp(at: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: at.timestamp(),
        nanos: at.timestamp_subsec_nanos() as i32,
    }
}

impl BoardRow {
    pub fn to_proto(&self, lanes: &[LaneRow]) -> v1::Board {
        v1::Board {
            id: self.id.to_string(),
            slug: self.slug.clone(),
            name: self.name.clone(),
            version: self.version as u64,
            lanes: lanes.iter().map(LaneRow::to_proto).collect(),
            created_at: Some(timestamp(self.created_at)),
            project_id: self.project_id.map(|p| p.to_string()).unwrap_or_default(),
        }
    }
}

impl ProjectRow {
    /// The project with its boards' ids, oldest board first.
    pub fn to_proto(&self, board_ids: &[Uuid]) -> v1::Project {
        v1::Project {
            id: self.id.to_string(),
            slug: self.slug.clone(),
            name: self.name.clone(),
            description: self.description.clone(),
            version: self.version as u64,
            board_ids: board_ids.iter().map(Uuid::to_string).collect(),
            created_at: Some(timestamp(self.created_at)),
            updated_at: Some(timestamp(self.updated_at)),
        }
    }
}

impl SprintRow {
    pub fn to_proto(&self) -> v1::Sprint {
        v1::Sprint {
            id: self.id.to_string(),
            board_id: self.board_id.to_string(),
            name: self.name.clone(),
            goal: self.goal.clone(),
            starts_at: Some(timestamp(self.starts_at)),
            ends_at: Some(timestamp(self.ends_at)),
            state: i32::from(self.state),
            version: self.version as u64,
            created_at: Some(timestamp(self.created_at)),
            updated_at: Some(timestamp(self.updated_at)),
        }
    }
}

impl LaneRow {
    pub fn to_proto(&self) -> v1::Lane {
        v1::Lane {
            id: self.id.to_string(),
            board_id: self.board_id.to_string(),
            key: self.key.clone(),
            name: self.name.clone(),
            position: self.position as u32,
            wip_limit: self.wip_limit.map(|w| w as u32),
        }
    }
}

impl TaskRow {
    /// A task from the JSON of `boardwire_task_json`.
    pub fn from_json(json: &str) -> crate::error::Result<Self> {
        serde_json::from_str(json)
            .map_err(|e| crate::error::Error::Internal(format!("malformed task row: {e}")))
    }

    pub fn to_proto(&self) -> v1::Task {
        v1::Task {
            id: self.id.to_string(),
            board_id: self.board_id.to_string(),
            lane_id: self.lane_id.to_string(),
            title: self.title.clone(),
            description: self.description.clone(),
            priority: i32::from(self.priority),
            kind: i32::from(self.kind),
            estimated_hours: self.estimated_hours,
            assignee: self.assignee.clone(),
            labels: self.labels.clone(),
            position: self.position.clone(),
            version: self.version as u64,
            created_at: Some(timestamp(self.created_at)),
            updated_at: Some(timestamp(self.updated_at)),
            lane_key: self.lane_key.clone(),
            status: self.status.clone(),
            parent_id: self.parent_id.map(|p| p.to_string()).unwrap_or_default(),
            progress: self.progress(),
            sprint_id: self.sprint_id.map(|s| s.to_string()).unwrap_or_default(),
        }
    }

    pub fn progress(&self) -> Option<v1::Progress> {
        Some(v1::Progress {
            done: self.progress_done? as u32,
            total: self.progress_total? as u32,
        })
    }
}
