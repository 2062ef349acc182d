//! Idempotency keys (`request_id`), scoped to (board, caller) and bound to
//! a fingerprint of the request, as the IETF Idempotency-Key draft asks:
//! a retry of the same request replays its first response and writes
//! nothing; the same key with a different request is refused; one caller's
//! key never reveals another caller's result.

use prost::Message;
use protocol::v1::{
    CompleteSprintRequest, CreateBoardRequest, CreateLaneRequest, CreateProjectRequest,
    CreateSprintRequest, CreateTaskRequest, DeleteLaneRequest, DeleteTaskRequest, MoveTaskRequest,
    SetBoardProjectRequest, StartSprintRequest, UpdateLaneRequest, UpdateProjectRequest,
    UpdateTaskRequest,
};
use service_kit::auth::Access;
use sha2::{Digest, Sha256};
use sqlx::PgExecutor;
use uuid::Uuid;

use super::{TaskRow, Tx};
use crate::error::{Error, Result};

/// Records older than this are trimmed: a retry must come sooner.
pub const RETENTION_HOURS: i64 = 24;

/// A request's idempotency key with everything it is scoped to.
pub struct Key<'a> {
    pub caller: &'a str,
    pub request_id: &'a str,
    pub method: &'static str,
    fingerprint: [u8; 32],
}

impl Key<'_> {
    /// SHA-256 of the method and the request without its request_id.
    pub fn fingerprint(&self) -> &[u8] {
        &self.fingerprint
    }
}

/// A mutation request that carries a `request_id`.
pub trait Keyed: Message + Clone {
    fn request_id(&self) -> &str;
    fn clear_request_id(&mut self);
}

macro_rules! keyed {
    ($($request:ty),* $(,)?) => {$(
        impl Keyed for $request {
            fn request_id(&self) -> &str {
                &self.request_id
            }
            fn clear_request_id(&mut self) {
                self.request_id.clear();
            }
        }
    )*};
}
keyed!(
    CreateBoardRequest,
    CreateLaneRequest,
    UpdateLaneRequest,
    DeleteLaneRequest,
    CreateTaskRequest,
    UpdateTaskRequest,
    MoveTaskRequest,
    DeleteTaskRequest,
    CreateProjectRequest,
    UpdateProjectRequest,
    SetBoardProjectRequest,
    CreateSprintRequest,
    StartSprintRequest,
    CompleteSprintRequest,
);

impl<'a> Key<'a> {
    /// The key of `request`, made by `access`'s caller.
    pub fn new<R: Keyed>(access: &'a Access, method: &'static str, request: &'a R) -> Result<Self> {
        let request_id = crate::validate::request_id(request.request_id())?;
        let mut bare = request.clone();
        bare.clear_request_id();
        let mut hash = Sha256::new();
        hash.update(method.as_bytes());
        hash.update([0]);
        hash.update(bare.encode_to_vec());
        Ok(Self {
            caller: access.owner_key(),
            request_id,
            method,
            fingerprint: hash.finalize().into(),
        })
    }

    fn is_set(&self) -> bool {
        !self.request_id.is_empty()
    }

    /// The stored response to this exact request by this caller, on any
    /// board, with the board it changed (`None` for CreateBoard). Used when
    /// the request's task or lane is gone, so its board cannot be locked.
    pub async fn replay_any<M: Message + Default>(
        &self,
        db: impl PgExecutor<'_>,
    ) -> Result<Option<(M, Option<(String, String)>)>> {
        if !self.is_set() {
            return Ok(None);
        }
        let row: Option<AnyRecord> = sqlx::query_as(
            "SELECT p.response, p.response_task::text AS response_task, p.board_id, b.slug
             FROM processed_requests p
             LEFT JOIN boards b ON b.id = p.board_id
             WHERE p.caller = $1 AND p.request_id = $2 AND p.fingerprint = $3
             LIMIT 1",
        )
        .bind(self.caller)
        .bind(self.request_id)
        .bind(&self.fingerprint[..])
        .fetch_optional(db)
        .await?;
        let Some(AnyRecord {
            stored,
            board_id,
            slug,
        }) = row
        else {
            return Ok(None);
        };
        let board = (!board_id.is_nil()).then(|| (board_id.to_string(), slug.unwrap_or_default()));
        Ok(stored.decode()?.map(|response| (response, board)))
    }

    /// Under the board lock: the stored response to this key on `board_id`,
    /// or an error when the key was used there for a different request.
    pub async fn replay_on<M: Message + Default>(
        &self,
        db: impl PgExecutor<'_>,
        board_id: Uuid,
    ) -> Result<Option<M>> {
        if !self.is_set() {
            return Ok(None);
        }
        // The rule (a key reused for another request is refused) lives in
        // the database, where the task writes check it too.
        let stored: Stored = sqlx::query_as(
            "SELECT s.response, s.response_task::text AS response_task
             FROM boardwire_stored_response($1, $2, $3, $4) s",
        )
        .bind(board_id)
        .bind(self.caller)
        .bind(self.request_id)
        .bind(&self.fingerprint[..])
        .fetch_one(db)
        .await?;
        stored.decode()
    }

    /// Records `response` in the mutation's transaction.
    pub async fn remember<M: Message>(
        &self,
        tx: &mut Tx,
        board_id: Uuid,
        response: &M,
    ) -> Result<()> {
        if !self.is_set() {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO processed_requests
                 (board_id, caller, request_id, method, fingerprint, response)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(board_id)
        .bind(self.caller)
        .bind(self.request_id)
        .bind(self.method)
        .bind(&self.fingerprint[..])
        .bind(response.encode_to_vec())
        .execute(&mut **tx)
        .await?;
        Ok(())
    }
}

/// A stored response in either of its forms: `response`, encoded here, or
/// `response_task`, the task (a [`TaskRow`] as JSON) the database's own
/// task writes record. Neither: nothing is stored.
#[derive(sqlx::FromRow)]
pub struct Stored {
    pub response: Option<Vec<u8>>,
    pub response_task: Option<String>,
}

impl Stored {
    pub fn decode<M: Message + Default>(self) -> Result<Option<M>> {
        let bytes = match (self.response, self.response_task) {
            (Some(bytes), _) => bytes,
            (None, Some(json)) => TaskRow::from_json(&json)?.to_proto().encode_to_vec(),
            (None, None) => return Ok(None),
        };
        M::decode(bytes.as_slice())
            .map(Some)
            .map_err(|e| Error::Internal(format!("corrupt stored response: {e}")))
    }
}

/// A stored response found by caller, key and fingerprint on any board.
#[derive(sqlx::FromRow)]
struct AnyRecord {
    #[sqlx(flatten)]
    stored: Stored,
    board_id: Uuid,
    slug: Option<String>,
}

/// Deletes records past [`RETENTION_HOURS`]. Returns how many.
pub async fn trim(db: impl PgExecutor<'_>) -> Result<u64> {
    let done = sqlx::query(
        "DELETE FROM processed_requests WHERE created_at < now() - make_interval(hours => $1::int)",
    )
    .bind(RETENTION_HOURS as i32)
    .execute(db)
    .await?;
    Ok(done.rows_affected())
}
