//! Projects: groups of boards. A project change is announced on the stream
//! of every board it concerns, each event at that board's next version.
//!
//! Lock order: project rows first (by id), then board rows (by id). A
//! transaction that locks several boards of a project holds that project's
//! lock, so it is the only one doing so; single-board writes take one lock.

use protocol::{
    event_type,
    v1::{
        BoardEvent, CreateProjectRequest, ListProjectsRequest, Project, ProjectView,
        SetBoardProjectRequest, UpdateProjectRequest,
    },
};
use service_kit::auth::Access;
use uuid::Uuid;

use super::{
    BoardRow, Key, ProjectRow, Store, Tx, board_lanes, check_version, check_write, log,
    rows::PROJECT_COLUMNS,
};
use crate::{
    error::{Error, Result, unique_violation},
    validate,
};

/// Most boards one CreateProject may name.
pub const PROJECT_BOARDS_MAX: usize = 100;

const BOARD_COLUMNS: &str = "id, slug, name, version, created_at, project_id";

impl Store {
    pub async fn create_project(
        &self,
        access: &Access,
        req: CreateProjectRequest,
    ) -> Result<Project> {
        const METHOD: &str = "CreateProject";
        check_manage_projects(access)?;
        let key = Key::new(access, METHOD, &req)?;
        let name = validate::text("name", &req.name, validate::NAME_MAX)?;
        let slug = req.slug.as_deref().map(validate::slug).transpose()?;
        let description = validate::description(&req.description)?;
        if req.board_ids.len() > PROJECT_BOARDS_MAX {
            return Err(Error::InvalidArgument(format!(
                "board_ids must name at most {PROJECT_BOARDS_MAX} boards"
            )));
        }
        let board_refs = req
            .board_ids
            .iter()
            .map(|b| validate::board_ref(b).map(str::to_owned))
            .collect::<Result<Vec<_>>>()?;
        // Filed under the nil board, like CreateBoard: nothing to lock yet.
        if let Some(project) = key.replay_on(&self.pool, Uuid::nil()).await? {
            return Ok(project);
        }
        let slug = match slug {
            Some(slug) => slug,
            None => {
                self.free_project_slug(&validate::slug_from_name(&name))
                    .await?
            }
        };

        let mut tx = self.transaction().await?;
        let project: ProjectRow = sqlx::query_as(&format!(
            "INSERT INTO projects (id, slug, name, description) VALUES ($1, $2, $3, $4)
             RETURNING {PROJECT_COLUMNS}"
        ))
        .bind(Uuid::now_v7())
        .bind(&slug)
        .bind(&name)
        .bind(&description)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| match unique_violation(&e) {
            Some(_) => Error::AlreadyExists(format!("a project with slug {slug:?} already exists")),
            None => e.into(),
        })?;
        let boards = lock_boards_by_ref(&mut tx, &board_refs).await?;
        for board in &boards {
            check_write(access, &board.id.to_string(), &board.slug)?;
            if let Some(other) = board.project_id {
                return Err(Error::FailedPrecondition(format!(
                    "board_ids: board {:?} already belongs to project {other}; \
                     take it out with SetBoardProject first",
                    board.slug
                )));
            }
        }
        let ids: Vec<Uuid> = boards.iter().map(|b| b.id).collect();
        sqlx::query("UPDATE boards SET project_id = $1 WHERE id = ANY($2)")
            .bind(project.id)
            .bind(&ids)
            .execute(&mut *tx)
            .await?;
        let response = project.to_proto(&project_board_ids(&mut tx, project.id).await?);
        announce(
            &mut tx,
            &boards,
            event_type::PROJECT_CREATED,
            &req.request_id,
            &response,
            vec![],
        )
        .await?;
        self.finish_or_replay(tx, &key, response).await
    }

    pub async fn update_project(
        &self,
        access: &Access,
        req: UpdateProjectRequest,
    ) -> Result<Project> {
        const METHOD: &str = "UpdateProject";
        check_manage_projects(access)?;
        let key = Key::new(access, METHOD, &req)?;
        let name = req
            .name
            .as_deref()
            .map(|n| validate::text("name", n, validate::NAME_MAX))
            .transpose()?;
        let description = req
            .description
            .as_deref()
            .map(validate::description)
            .transpose()?;
        if name.is_none() && description.is_none() {
            return Err(Error::InvalidArgument(
                "nothing to update: set name or description".into(),
            ));
        }
        let mut tx = self.transaction().await?;
        let current = lock_project(&mut tx, &req.project_id).await?;
        if let Some(project) = key.replay_on(&mut *tx, current.id).await? {
            return Ok(project);
        }
        check_version("project", current.version, req.expected_version)?;
        let mut changed = Vec::new();
        if name.as_ref().is_some_and(|n| *n != current.name) {
            changed.push("name".to_string());
        }
        if description
            .as_ref()
            .is_some_and(|d| *d != current.description)
        {
            changed.push("description".to_string());
        }
        if changed.is_empty() {
            let response = current.to_proto(&project_board_ids(&mut tx, current.id).await?);
            Self::finish(tx, current.id, &key, &response).await?;
            return Ok(response);
        }
        let project: ProjectRow = sqlx::query_as(&format!(
            "UPDATE projects SET name = coalesce($2, name), description = coalesce($3, description),
                 version = version + 1, updated_at = now()
             WHERE id = $1 RETURNING {PROJECT_COLUMNS}"
        ))
        .bind(current.id)
        .bind(name)
        .bind(description)
        .fetch_one(&mut *tx)
        .await?;
        let boards = lock_project_boards(&mut tx, project.id).await?;
        let response = project.to_proto(&boards.iter().map(|b| b.id).collect::<Vec<_>>());
        announce(
            &mut tx,
            &boards,
            event_type::PROJECT_UPDATED,
            &req.request_id,
            &response,
            changed,
        )
        .await?;
        Self::finish(tx, project.id, &key, &response).await?;
        Ok(response)
    }

    /// Puts a board into a project or takes it out. Returns the board's new
    /// project, or the project it left when `project_id` is empty.
    pub async fn set_board_project(
        &self,
        access: &Access,
        req: SetBoardProjectRequest,
    ) -> Result<Project> {
        const METHOD: &str = "SetBoardProject";
        let key = Key::new(access, METHOD, &req)?;
        let board_ref = validate::board_ref(&req.board_id)?;
        let project_ref = match req.project_id.as_str() {
            "" => None,
            other => Some(validate::project_ref(other)?),
        };
        let seen = self.resolve_board(board_ref).await?;
        check_write(access, &seen.id.to_string(), &seen.slug)?;

        let mut tx = self.transaction().await?;
        let target = match project_ref {
            Some(r) => Some(find_project(&mut tx, r).await?),
            None => None,
        };
        // Both projects' locks, in id order, before any board lock.
        let mut project_ids: Vec<Uuid> = target.iter().map(|p| p.id).collect();
        project_ids.extend(seen.project_id);
        project_ids.sort();
        project_ids.dedup();
        sqlx::query("SELECT id FROM projects WHERE id = ANY($1) ORDER BY id FOR UPDATE")
            .bind(&project_ids)
            .execute(&mut *tx)
            .await?;
        let board = lock_boards_by_ref(&mut tx, &[seen.id.to_string()])
            .await?
            .pop()
            .ok_or_else(|| super::board_not_found(board_ref))?;
        if board.project_id != seen.project_id {
            return Err(Error::StaleVersion(
                "the board changed project meanwhile: retry".into(),
            ));
        }
        if let Some(project) = key.replay_on(&mut *tx, board.id).await? {
            return Ok(project);
        }
        let old = board.project_id;
        let new = target.as_ref().map(|p| p.id);
        if old == new {
            let response = match new {
                Some(id) => {
                    let project = read_project(&mut tx, id).await?;
                    project.to_proto(&project_board_ids(&mut tx, id).await?)
                }
                None => Project::default(),
            };
            Self::finish(tx, board.id, &key, &response).await?;
            return Ok(response);
        }
        sqlx::query("UPDATE boards SET project_id = $2 WHERE id = $1")
            .bind(board.id)
            .bind(new)
            .execute(&mut *tx)
            .await?;
        let mut response = Project::default();
        // The project it left, then the one it joined: each project's
        // boards hear of it, and the moved board hears of its new project.
        for (project_id, joined) in [(old, false), (new, true)] {
            let Some(project_id) = project_id else {
                continue;
            };
            let project: ProjectRow = sqlx::query_as(&format!(
                "UPDATE projects SET version = version + 1, updated_at = now()
                 WHERE id = $1 RETURNING {PROJECT_COLUMNS}"
            ))
            .bind(project_id)
            .fetch_one(&mut *tx)
            .await?;
            let mut boards = lock_project_boards(&mut tx, project_id).await?;
            let proto = project.to_proto(&boards.iter().map(|b| b.id).collect::<Vec<_>>());
            if !joined && new.is_none() {
                boards.push(board.clone());
            }
            announce(
                &mut tx,
                &boards,
                event_type::PROJECT_UPDATED,
                &req.request_id,
                &proto,
                vec!["board_ids".into()],
            )
            .await?;
            if joined || new.is_none() {
                response = proto;
            }
        }
        Self::finish(tx, board.id, &key, &response).await?;
        Ok(response)
    }

    pub async fn list_projects(
        &self,
        access: &Access,
        _req: ListProjectsRequest,
    ) -> Result<Vec<Project>> {
        let projects: Vec<ProjectRow> = sqlx::query_as(&format!(
            "SELECT {PROJECT_COLUMNS} FROM projects ORDER BY created_at, id"
        ))
        .fetch_all(&self.pool)
        .await?;
        let boards: Vec<BoardRow> = sqlx::query_as(&format!(
            "SELECT {BOARD_COLUMNS} FROM boards WHERE project_id IS NOT NULL
             ORDER BY created_at, id"
        ))
        .fetch_all(&self.pool)
        .await?;
        Ok(projects
            .iter()
            .filter_map(|p| {
                let own: Vec<&BoardRow> = boards
                    .iter()
                    .filter(|b| b.project_id == Some(p.id))
                    .collect();
                visible(access, &own)
                    .then(|| p.to_proto(&own.iter().map(|b| b.id).collect::<Vec<_>>()))
            })
            .collect())
    }

    /// The project and those of its boards the caller may read.
    pub async fn get_project(&self, access: &Access, project_ref: &str) -> Result<ProjectView> {
        let project_ref = validate::project_ref(project_ref)?;
        let mut tx = self.transaction().await?;
        let project = find_project(&mut tx, project_ref).await?;
        let boards: Vec<BoardRow> = sqlx::query_as(&format!(
            "SELECT {BOARD_COLUMNS} FROM boards WHERE project_id = $1 ORDER BY created_at, id"
        ))
        .bind(project.id)
        .fetch_all(&mut *tx)
        .await?;
        if !visible(access, &boards.iter().collect::<Vec<_>>()) {
            return Err(Error::PermissionDenied(format!(
                "the token grants reading none of project {:?}'s boards",
                project.slug
            )));
        }
        let mut readable = Vec::new();
        for board in boards
            .iter()
            .filter(|b| access.can_read(&b.id.to_string(), &b.slug))
        {
            let lanes = board_lanes(&mut tx, board.id).await?;
            readable.push(board.to_proto(&lanes));
        }
        tx.commit().await?;
        Ok(ProjectView {
            project: Some(project.to_proto(&boards.iter().map(|b| b.id).collect::<Vec<_>>())),
            boards: readable,
        })
    }

    /// `base`, or `base-2`, `base-3`, … whichever project slug is free.
    async fn free_project_slug(&self, base: &str) -> Result<String> {
        let taken: Vec<(String,)> =
            sqlx::query_as("SELECT slug FROM projects WHERE slug = $1 OR slug LIKE $1 || '-%'")
                .bind(base)
                .fetch_all(&self.pool)
                .await?;
        Ok((1..)
            .map(|n| match n {
                1 => base.to_owned(),
                n => format!("{base}-{n}"),
            })
            .find(|c| !taken.iter().any(|(t,)| t == c))
            .unwrap_or_else(|| base.to_owned()))
    }
}

/// Creating and renaming projects is for tokens that may create boards.
fn check_manage_projects(access: &Access) -> Result<()> {
    if access.can_create_boards() {
        Ok(())
    } else {
        Err(Error::PermissionDenied(
            "the token does not grant managing projects (write: [\"*\"] or create_boards: true)"
                .into(),
        ))
    }
}

/// A project is visible to a caller who may read one of its boards, or
/// manage projects.
fn visible(access: &Access, boards: &[&BoardRow]) -> bool {
    access.can_create_boards()
        || boards
            .iter()
            .any(|b| access.can_read(&b.id.to_string(), &b.slug))
}

/// Appends the project event on each of `boards` (locked by the caller).
pub(super) async fn announce(
    tx: &mut Tx,
    boards: &[BoardRow],
    kind: &str,
    request_id: &str,
    project: &Project,
    changed: Vec<String>,
) -> Result<()> {
    for board in boards {
        let event = BoardEvent {
            r#type: kind.into(),
            request_id: request_id.into(),
            project: Some(project.clone()),
            changed_fields: changed.clone(),
            ..Default::default()
        };
        log::append(tx, board, event).await?;
    }
    Ok(())
}

/// The project's board ids, oldest first.
pub(super) async fn project_board_ids(tx: &mut Tx, project_id: Uuid) -> Result<Vec<Uuid>> {
    let ids: Vec<(Uuid,)> =
        sqlx::query_as("SELECT id FROM boards WHERE project_id = $1 ORDER BY created_at, id")
            .bind(project_id)
            .fetch_all(&mut **tx)
            .await?;
    Ok(ids.into_iter().map(|(id,)| id).collect())
}

/// Locks the project's boards in id order; returns them oldest first.
pub(super) async fn lock_project_boards(tx: &mut Tx, project_id: Uuid) -> Result<Vec<BoardRow>> {
    let mut boards: Vec<BoardRow> = sqlx::query_as(&format!(
        "SELECT {BOARD_COLUMNS} FROM boards WHERE project_id = $1 ORDER BY id FOR UPDATE"
    ))
    .bind(project_id)
    .fetch_all(&mut **tx)
    .await?;
    boards.sort_by_key(|b| (b.created_at, b.id));
    Ok(boards)
}

/// Locks the boards named by id or slug, in id order; every one must exist.
async fn lock_boards_by_ref(tx: &mut Tx, refs: &[String]) -> Result<Vec<BoardRow>> {
    let ids: Vec<Uuid> = refs
        .iter()
        .filter_map(|r| Uuid::parse_str(r).ok())
        .collect();
    let boards: Vec<BoardRow> = sqlx::query_as(&format!(
        "SELECT {BOARD_COLUMNS} FROM boards WHERE id = ANY($1) OR slug = ANY($2)
         ORDER BY id FOR UPDATE"
    ))
    .bind(&ids)
    .bind(refs)
    .fetch_all(&mut **tx)
    .await?;
    if let Some(missing) = refs.iter().find(|r| {
        !boards
            .iter()
            .any(|b| b.id.to_string() == **r || b.slug == **r)
    }) {
        return Err(super::board_not_found(missing));
    }
    Ok(boards)
}

/// Locks the project named by id or slug.
pub(crate) async fn lock_project(tx: &mut Tx, project_ref: &str) -> Result<ProjectRow> {
    let project_ref = validate::project_ref(project_ref)?;
    sqlx::query_as(&format!(
        "SELECT {PROJECT_COLUMNS} FROM projects WHERE id = $1 OR slug = $2 FOR UPDATE"
    ))
    .bind(Uuid::parse_str(project_ref).ok())
    .bind(project_ref)
    .fetch_optional(&mut **tx)
    .await?
    .ok_or_else(|| project_not_found(project_ref))
}

async fn find_project(tx: &mut Tx, project_ref: &str) -> Result<ProjectRow> {
    sqlx::query_as(&format!(
        "SELECT {PROJECT_COLUMNS} FROM projects WHERE id = $1 OR slug = $2"
    ))
    .bind(Uuid::parse_str(project_ref).ok())
    .bind(project_ref)
    .fetch_optional(&mut **tx)
    .await?
    .ok_or_else(|| project_not_found(project_ref))
}

async fn read_project(tx: &mut Tx, id: Uuid) -> Result<ProjectRow> {
    Ok(sqlx::query_as(&format!(
        "SELECT {PROJECT_COLUMNS} FROM projects WHERE id = $1"
    ))
    .bind(id)
    .fetch_one(&mut **tx)
    .await?)
}

pub fn project_not_found(project_ref: &str) -> Error {
    Error::NotFound(format!("project {project_ref:?} not found"))
}
