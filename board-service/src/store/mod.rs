//! PostgreSQL storage. Every mutation is one transaction that locks the
//! board row, bumps `boards.version` by one, writes the change and appends the
//! event to `board_events` ([`log`]). Holding the board lock serialises a
//! board's writers, which makes order keys, WIP limits and versions safe
//! without any further locking; boards never wait on each other.
//!
//! The writes a board sees most, CreateTask, UpdateTask and MoveTask, are
//! each one call of a PL/pgSQL function (`boardwire_create_task`,
//! `boardwire_update_task`, `boardwire_move_task`; migration
//! `…_task_writes_in_one_round_trip`): the
//! same steps in the same transaction, but one round trip, so the board
//! lock is held for one statement and its commit. The rules they share with
//! the other writes (WIP limits, epics, sprints, request_id reuse) live in
//! SQL functions that both call.

mod boards;
mod epics;
pub mod idempotency;
mod lanes;
pub mod log;
mod projects;
mod rows;
mod sprints;
mod tasks;

use service_kit::auth::Access;
use sqlx::{PgConnection, PgPool, Postgres, Transaction};
use uuid::Uuid;

use crate::{
    error::{Error, Result},
    events::Announcer,
};
pub use idempotency::Key;
pub use rows::{BoardRow, LaneRow, ProjectRow, SprintRow, TaskRow};

/// Lanes a board gets when created without `lane_keys`.
pub const DEFAULT_LANES: [&str; 5] = ["backlog", "todo", "in_progress", "done", "recovery"];

/// The database behind board-service.
#[derive(Clone)]
pub struct Store {
    pool: PgPool,
    announcer: Announcer,
}

impl Store {
    pub fn new(pool: PgPool) -> Self {
        Self {
            announcer: Announcer::new(pool.clone()),
            pool,
        }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Who tells watchers that this store's writes committed.
    pub fn announcer(&self) -> &Announcer {
        &self.announcer
    }

    /// A write transaction: what it appends to the log is announced once
    /// it commits.
    async fn transaction(&self) -> Result<Tx> {
        Ok(Tx {
            inner: self.pool.begin().await?,
            appended: Vec::new(),
            announcer: self.announcer.clone(),
        })
    }
}

/// A write transaction that remembers the board versions it appended
/// ([`log::append`]) and announces them after its commit, so no writer holds
/// NOTIFY's commit lock ([`Announcer`]). Dereferences to the connection,
/// as sqlx's own transaction does; dropped uncommitted, it rolls back.
pub struct Tx {
    inner: Transaction<'static, Postgres>,
    appended: Vec<(Uuid, u64)>,
    announcer: Announcer,
}

impl Tx {
    pub async fn commit(self) -> Result<()> {
        self.inner.commit().await?;
        self.announcer.committed(&self.appended);
        Ok(())
    }

    fn record_append(&mut self, board_id: Uuid, version: u64) {
        self.appended.push((board_id, version));
    }
}

impl std::ops::Deref for Tx {
    type Target = PgConnection;

    fn deref(&self) -> &PgConnection {
        &self.inner
    }
}

impl std::ops::DerefMut for Tx {
    fn deref_mut(&mut self) -> &mut PgConnection {
        &mut self.inner
    }
}

/// Locks the board named by id or slug for the rest of the transaction.
async fn lock_board(tx: &mut Tx, board_ref: &str) -> Result<BoardRow> {
    let board_ref = crate::validate::board_ref(board_ref)?;
    let id = Uuid::parse_str(board_ref).ok();
    sqlx::query_as::<_, BoardRow>(
        "SELECT id, slug, name, version, created_at, project_id FROM boards
         WHERE id = $1 OR slug = $2 FOR UPDATE",
    )
    .bind(id)
    .bind(board_ref)
    .fetch_optional(&mut **tx)
    .await?
    .ok_or_else(|| board_not_found(board_ref))
}

/// The query locking the board that holds row `$1` of `$table`: one text
/// for every kind of row, built at compile time.
macro_rules! lock_board_holding {
    ($table:literal) => {
        concat!(
            "SELECT b.id, b.slug, b.name, b.version, b.created_at, b.project_id
             FROM boards b JOIN ",
            $table,
            " h ON h.board_id = b.id WHERE h.id = $1 FOR UPDATE OF b"
        )
    };
}

/// Locks the board of the row `id` that `sql` (from `lock_board_holding!`) names.
async fn lock_board_holding(tx: &mut Tx, sql: &'static str, id: Uuid) -> Result<Option<BoardRow>> {
    Ok(sqlx::query_as::<_, BoardRow>(sql)
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?)
}

/// Locks the board that holds `task_id`.
async fn lock_board_of_task(tx: &mut Tx, task_id: Uuid) -> Result<BoardRow> {
    lock_board_holding(tx, lock_board_holding!("tasks"), task_id)
        .await?
        .ok_or_else(|| task_not_found(task_id))
}

/// Locks the board that holds `lane_id`.
async fn lock_board_of_lane(tx: &mut Tx, lane_id: Uuid) -> Result<BoardRow> {
    lock_board_holding(tx, lock_board_holding!("lanes"), lane_id)
        .await?
        .ok_or_else(|| Error::NotFound(format!("lane {lane_id} not found")))
}

/// Locks the board that holds `sprint_id`.
async fn lock_board_of_sprint(tx: &mut Tx, sprint_id: Uuid) -> Result<BoardRow> {
    lock_board_holding(tx, lock_board_holding!("sprints"), sprint_id)
        .await?
        .ok_or_else(|| sprints::sprint_not_found(sprint_id))
}

/// The board's lanes in display order.
async fn board_lanes(conn: &mut sqlx::PgConnection, board_id: Uuid) -> Result<Vec<LaneRow>> {
    Ok(sqlx::query_as::<_, LaneRow>(
        "SELECT id, board_id, key, name, position, wip_limit FROM lanes
         WHERE board_id = $1 ORDER BY position",
    )
    .bind(board_id)
    .fetch_all(conn)
    .await?)
}

/// A lane of `board_id` named by id or key.
fn find_lane<'a>(lanes: &'a [LaneRow], lane_ref: &str) -> Result<&'a LaneRow> {
    let id = Uuid::parse_str(lane_ref).ok();
    lanes
        .iter()
        .find(|l| Some(l.id) == id || l.key == lane_ref)
        .ok_or_else(|| Error::NotFound(format!("lane {lane_ref:?} not found on this board")))
}

pub fn board_not_found(board_ref: &str) -> Error {
    Error::NotFound(format!("board {board_ref:?} not found"))
}

pub fn task_not_found(task_id: Uuid) -> Error {
    Error::NotFound(format!("task {task_id} not found"))
}

fn check_version(entity: &str, current: i64, expected: Option<u64>) -> Result<()> {
    match expected {
        Some(expected) if expected != current as u64 => Err(Error::StaleVersion(format!(
            "{entity} is at version {current}, not the expected {expected}: reload and retry"
        ))),
        _ => Ok(()),
    }
}

/// What a board a mutation locks is named by.
pub(crate) enum Scope<'a> {
    Board(&'a str),
    Task(Uuid),
    Lane(Uuid),
    Sprint(Uuid),
}

/// A mutation either replays the stored response to its request_id, or holds
/// the board lock inside its open transaction.
pub(crate) enum Began<M, Locked = (Tx, BoardRow)> {
    Replayed(M),
    Locked(Locked),
}

impl Store {
    /// Starts a mutation: opens the transaction, locks the board and checks
    /// that `access` may write it, then replays a repeated request. Looking
    /// the key up under the lock means a duplicate racing the first call
    /// sees its result, and a key reused for a different request on this
    /// board is refused.
    pub(crate) async fn begin<M: prost::Message + Default>(
        &self,
        access: &Access,
        scope: Scope<'_>,
        key: &Key<'_>,
    ) -> Result<Began<M>> {
        let mut tx = self.transaction().await?;
        let locked = match scope {
            Scope::Board(board_ref) => lock_board(&mut tx, board_ref).await,
            Scope::Task(id) => lock_board_of_task(&mut tx, id).await,
            Scope::Lane(id) => lock_board_of_lane(&mut tx, id).await,
            Scope::Sprint(id) => lock_board_of_sprint(&mut tx, id).await,
        };
        let board = match locked {
            Ok(board) => board,
            // A retried DeleteTask's task is gone: its record is found by
            // caller, key and fingerprint alone. Only then, so a write
            // costs no extra round trip.
            Err(not_found @ Error::NotFound(_)) => {
                drop(tx);
                let Some((response, board)) = key.replay_any(&self.pool).await? else {
                    return Err(not_found);
                };
                if let Some((id, slug)) = board {
                    check_write(access, &id, &slug)?;
                }
                return Ok(Began::Replayed(response));
            }
            Err(err) => return Err(err),
        };
        check_write(access, &board.id.to_string(), &board.slug)?;
        if let Some(response) = key.replay_on(&mut *tx, board.id).await? {
            return Ok(Began::Replayed(response));
        }
        Ok(Began::Locked((tx, board)))
    }

    /// [`Store::begin`] for a change to one task: also reads the task under
    /// the board lock and checks the caller's `expected_version`.
    pub(crate) async fn begin_on_task<M: prost::Message + Default>(
        &self,
        access: &Access,
        task_id: Uuid,
        key: &Key<'_>,
        expected_version: Option<u64>,
    ) -> Result<Began<M, (Tx, BoardRow, TaskRow)>> {
        let (mut tx, board) = match self.begin(access, Scope::Task(task_id), key).await? {
            Began::Replayed(response) => return Ok(Began::Replayed(response)),
            Began::Locked(locked) => locked,
        };
        let task = tasks::read_task(&mut tx, task_id).await?;
        check_version("task", task.version, expected_version)?;
        Ok(Began::Locked((tx, board, task)))
    }

    /// Appends the change's event (bumping the board version), records the
    /// response for its key, and commits. Returns the new version.
    pub(crate) async fn commit_change<M: prost::Message>(
        mut tx: Tx,
        board: &BoardRow,
        event: protocol::v1::BoardEvent,
        key: &Key<'_>,
        response: &M,
    ) -> Result<u64> {
        let version = log::append(&mut tx, board, event).await?;
        Self::finish(tx, board.id, key, response).await?;
        Ok(version)
    }

    /// [`Store::commit_change`] for a change made of several events, each
    /// at the next board version. Returns the last version.
    pub(crate) async fn commit_changes<M: prost::Message>(
        mut tx: Tx,
        board: &BoardRow,
        events: Vec<protocol::v1::BoardEvent>,
        key: &Key<'_>,
        response: &M,
    ) -> Result<u64> {
        let mut at = board.clone();
        for event in events {
            at.version = log::append(&mut tx, &at, event).await? as i64;
        }
        Self::finish(tx, board.id, key, response).await?;
        Ok(at.version as u64)
    }

    /// Records the response for its key and commits.
    pub(crate) async fn finish<M: prost::Message>(
        mut tx: Tx,
        board_id: Uuid,
        key: &Key<'_>,
        response: &M,
    ) -> Result<()> {
        key.remember(&mut tx, board_id, response).await?;
        tx.commit().await?;
        Ok(())
    }

    /// [`Store::finish`] for a write filed under the nil board (a new board
    /// or project, whose row is only unique once it commits): when a
    /// concurrent call with the same request_id committed first, its answer.
    pub(crate) async fn finish_or_replay<M: prost::Message + Default>(
        &self,
        tx: Tx,
        key: &Key<'_>,
        response: M,
    ) -> Result<M> {
        match Self::finish(tx, Uuid::nil(), key, &response).await {
            Ok(()) => Ok(response),
            Err(Error::Database(e)) if crate::error::unique_violation(&e).is_some() => key
                .replay_on(&self.pool, Uuid::nil())
                .await?
                .ok_or(Error::Database(e)),
            Err(e) => Err(e),
        }
    }
}

/// Refuses a change to a board the caller may not write.
pub fn check_write(access: &Access, board_id: &str, slug: &str) -> Result<()> {
    if access.can_write(board_id, slug) {
        Ok(())
    } else {
        Err(Error::PermissionDenied(format!(
            "the token does not grant writing board {slug:?}"
        )))
    }
}

/// Refuses a read of a board the caller may not read.
pub fn check_read(access: &Access, board_id: &str, slug: &str) -> Result<()> {
    if access.can_read(board_id, slug) {
        Ok(())
    } else {
        Err(Error::PermissionDenied(format!(
            "the token does not grant reading board {slug:?}"
        )))
    }
}

/// Unwraps [`Began`]: returns early with a replayed response.
macro_rules! locked_or_return {
    ($began:expr) => {
        match $began {
            $crate::store::Began::Replayed(response) => return Ok(response),
            $crate::store::Began::Locked(locked) => locked,
        }
    };
}
pub(crate) use locked_or_return;
