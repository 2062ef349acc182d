//! Chat state in PostgreSQL: sessions, runs, messages, tool executions and
//! the tool audit. Queries are checked at run time (no database at build time).

mod leases;
mod messages;
mod runs;
mod sessions;
mod tools;

use sqlx::PgPool;

pub use leases::Interrupted;
pub use messages::{ConversationRow, StoredMessage};
pub use runs::{PriorMessage, RunRecord, Transcript};
pub use sessions::{LoadedSession, SEQ_BLOCK, SessionRow};

/// The migrations under `migrations/` at the workspace root. board-service
/// runs the same set; running them twice is harmless.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

/// Runs [`MIGRATOR`], tolerating migrations applied by a newer build of
/// another service that this build does not know yet.
pub async fn migrate(pool: &PgPool) -> Result<(), sqlx::migrate::MigrateError> {
    let mut migrator = sqlx::migrate!("../migrations");
    migrator.set_ignore_missing(true);
    migrator.run(pool).await
}

/// Handle to the chat tables; cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    pool: PgPool,
}

impl Store {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}
