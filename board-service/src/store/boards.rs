//! Boards: create, read a consistent snapshot, list.

use protocol::v1::{Board, BoardSnapshot, CreateBoardRequest};
use service_kit::auth::Access;
use sqlx::Connection;
use uuid::Uuid;

use super::{
    BoardRow, DEFAULT_LANES, Key, LaneRow, ProjectRow, Store, TaskRow, board_lanes,
    board_not_found, projects,
    rows::{PROJECT_COLUMNS, TASK_COLUMNS},
};
use crate::{
    error::{Error, Result, unique_violation},
    validate,
};

impl Store {
    pub async fn create_board(&self, access: &Access, req: CreateBoardRequest) -> Result<Board> {
        const METHOD: &str = "CreateBoard";
        if !access.can_create_boards() {
            return Err(Error::PermissionDenied(
                "the token does not grant creating boards (write: [\"*\"] or create_boards: true)"
                    .into(),
            ));
        }
        let key = Key::new(access, METHOD, &req)?;
        let name = validate::text("name", &req.name, validate::NAME_MAX)?;
        let explicit_slug = req.slug.as_deref().map(validate::slug).transpose()?;
        let project_ref = req
            .project_id
            .as_deref()
            .filter(|p| !p.is_empty())
            .map(validate::project_ref)
            .transpose()?;
        let keys: Vec<String> = if req.lane_keys.is_empty() {
            DEFAULT_LANES.iter().map(|k| k.to_string()).collect()
        } else {
            req.lane_keys
                .iter()
                .map(|k| validate::lane_key(k))
                .collect::<Result<_>>()?
        };
        for (i, key) in keys.iter().enumerate() {
            if keys[..i].contains(key) {
                return Err(Error::InvalidArgument(format!(
                    "lane key {key:?} is repeated"
                )));
            }
        }
        // CreateBoard's records are filed under the nil board: its board
        // does not exist before the call.
        if let Some(board) = key.replay_on(&self.pool, Uuid::nil()).await? {
            return Ok(board);
        }

        let slug = match explicit_slug {
            Some(slug) => slug,
            None => self.free_slug(&validate::slug_from_name(&name)).await?,
        };
        let mut tx = self.transaction().await?;
        // The project's lock comes before any board's (see `projects`).
        let project = match project_ref {
            Some(r) => Some(projects::lock_project(&mut tx, r).await?),
            None => None,
        };
        let board: BoardRow = sqlx::query_as(
            "INSERT INTO boards (id, slug, name, project_id) VALUES ($1, $2, $3, $4)
             RETURNING id, slug, name, version, created_at, project_id",
        )
        .bind(Uuid::now_v7())
        .bind(&slug)
        .bind(&name)
        .bind(project.as_ref().map(|p| p.id))
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| match unique_violation(&e) {
            Some(_) => Error::AlreadyExists(format!("a board with slug {slug:?} already exists")),
            None => e.into(),
        })?;
        let mut lanes = Vec::with_capacity(keys.len());
        for (position, key) in keys.iter().enumerate() {
            let lane: LaneRow = sqlx::query_as(
                "INSERT INTO lanes (id, board_id, key, name, position) VALUES ($1, $2, $3, $4, $5)
                 RETURNING id, board_id, key, name, position, wip_limit",
            )
            .bind(Uuid::now_v7())
            .bind(board.id)
            .bind(key)
            .bind(validate::lane_name_from_key(key))
            .bind(position as i32)
            .fetch_one(&mut *tx)
            .await?;
            lanes.push(lane);
        }
        let mut response = board.to_proto(&lanes);
        if let Some(project) = project {
            // Every board of the project, the new one too, hears it joined.
            let project: ProjectRow = sqlx::query_as(&format!(
                "UPDATE projects SET version = version + 1, updated_at = now()
                 WHERE id = $1 RETURNING {PROJECT_COLUMNS}"
            ))
            .bind(project.id)
            .fetch_one(&mut *tx)
            .await?;
            let boards = projects::lock_project_boards(&mut tx, project.id).await?;
            let proto = project.to_proto(&boards.iter().map(|b| b.id).collect::<Vec<_>>());
            projects::announce(
                &mut tx,
                &boards,
                protocol::event_type::PROJECT_UPDATED,
                &req.request_id,
                &proto,
                vec!["board_ids".into()],
            )
            .await?;
            response.version += 1;
        }
        self.finish_or_replay(tx, &key, response).await
    }

    /// `base`, or `base-2`, `base-3`, … whichever is free.
    async fn free_slug(&self, base: &str) -> Result<String> {
        let taken: Vec<(String,)> =
            sqlx::query_as("SELECT slug FROM boards WHERE slug = $1 OR slug LIKE $1 || '-%'")
                .bind(base)
                .fetch_all(&self.pool)
                .await?;
        let taken: Vec<String> = taken.into_iter().map(|(s,)| s).collect();
        Ok((1..)
            .map(|n| {
                if n == 1 {
                    base.to_owned()
                } else {
                    format!("{base}-{n}")
                }
            })
            .find(|candidate| !taken.contains(candidate))
            .unwrap_or_else(|| base.to_owned()))
    }

    /// The board, its lanes and tasks, all as of one version.
    pub async fn board_snapshot(&self, board_ref: &str) -> Result<BoardSnapshot> {
        let mut conn = self.pool.acquire().await?;
        let mut tx = conn
            .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .await?;
        let board = find_board(&mut tx, board_ref).await?;
        let lanes = board_lanes(&mut tx, board.id).await?;
        let tasks: Vec<TaskRow> = sqlx::query_as(&format!(
            "SELECT {TASK_COLUMNS} FROM tasks t JOIN lanes l ON l.id = t.lane_id
             WHERE t.board_id = $1 ORDER BY l.position, t.position"
        ))
        .bind(board.id)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(BoardSnapshot {
            version: board.version as u64,
            board: Some(board.to_proto(&lanes)),
            tasks: tasks.iter().map(TaskRow::to_proto).collect(),
        })
    }

    pub async fn list_boards(&self) -> Result<Vec<Board>> {
        let boards: Vec<BoardRow> = sqlx::query_as(
            "SELECT id, slug, name, version, created_at, project_id FROM boards ORDER BY created_at, id",
        )
        .fetch_all(&self.pool)
        .await?;
        let lanes: Vec<LaneRow> = sqlx::query_as(
            "SELECT id, board_id, key, name, position, wip_limit FROM lanes ORDER BY board_id, position",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(boards
            .iter()
            .map(|b| {
                let own: Vec<LaneRow> = lanes
                    .iter()
                    .filter(|l| l.board_id == b.id)
                    .cloned()
                    .collect();
                b.to_proto(&own)
            })
            .collect())
    }

    /// The board's id for a reference that may be an id or a slug.
    pub async fn resolve_board(&self, board_ref: &str) -> Result<BoardRow> {
        let mut conn = self.pool.acquire().await?;
        find_board(&mut conn, board_ref).await
    }

    /// Creates the board with this slug unless one exists (used at first start).
    pub async fn ensure_board(&self, slug: &str, name: &str) -> Result<Board> {
        match self.resolve_board(slug).await {
            Ok(_) => {}
            Err(Error::NotFound(_)) => {
                let req = CreateBoardRequest {
                    name: name.into(),
                    slug: Some(slug.into()),
                    ..Default::default()
                };
                match self.create_board(&Access::open(), req).await {
                    Ok(board) => return Ok(board),
                    Err(Error::AlreadyExists(_)) => {}
                    Err(e) => return Err(e),
                }
            }
            Err(e) => return Err(e),
        }
        Ok(self.board_snapshot(slug).await?.board.unwrap_or_default())
    }
}

async fn find_board(conn: &mut sqlx::PgConnection, board_ref: &str) -> Result<BoardRow> {
    let board_ref = validate::board_ref(board_ref)?;
    sqlx::query_as(
        "SELECT id, slug, name, version, created_at, project_id FROM boards WHERE id = $1 OR slug = $2",
    )
    .bind(Uuid::parse_str(board_ref).ok())
    .bind(board_ref)
    .fetch_optional(conn)
    .await?
    .ok_or_else(|| board_not_found(board_ref))
}
