//! Synthesis jobs in Postgres (`synthesis_jobs`, migration 0003): the
//! server running a job writes its view after every change, and any server
//! reads it or asks for it to be cancelled. The view is whatever the API
//! answers for the job, kept as JSON; this module knows only its id, its
//! status word and the flag.

use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::types::Json;

use super::{Db, DbError};

/// The status words of a job that has not finished.
pub const UNFINISHED: [&str; 2] = ["queued", "running"];

/// The `synthesis_jobs` table of one database.
#[derive(Clone)]
pub struct PgJobs {
    db: Db,
}

impl PgJobs {
    pub fn new(db: Db) -> PgJobs {
        PgJobs { db }
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Writes job `id`'s `view` (with its `status` word), creating the row
    /// the first time. Returns whether a cancel was requested meanwhile, so
    /// the writer learns of it with no second query.
    pub async fn save(
        &self,
        id: &str,
        status: &str,
        view: &impl Serialize,
    ) -> Result<bool, DbError> {
        self.db
            .call(
                sqlx::query_scalar(
                    "INSERT INTO synthesis_jobs (id, status, view) VALUES ($1, $2, $3) \
                     ON CONFLICT (id) DO UPDATE \
                     SET status = EXCLUDED.status, view = EXCLUDED.view, updated_at = now() \
                     RETURNING cancel_requested",
                )
                .bind(id)
                .bind(status)
                .bind(Json(view))
                .fetch_one(self.db.pool()),
            )
            .await
    }

    /// Job `id`'s view as last written, if there is such a job.
    pub async fn load<V: DeserializeOwned + Send + Unpin + 'static>(
        &self,
        id: &str,
    ) -> Result<Option<V>, DbError> {
        let view: Option<Json<V>> = self
            .db
            .call(
                sqlx::query_scalar("SELECT view FROM synthesis_jobs WHERE id = $1")
                    .bind(id)
                    .fetch_optional(self.db.pool()),
            )
            .await?;
        Ok(view.map(|Json(v)| v))
    }

    /// Asks the server running job `id` to cancel it. Returns whether the
    /// job exists and has not finished (only then is the flag set).
    pub async fn request_cancel(&self, id: &str) -> Result<bool, DbError> {
        let done = self
            .db
            .call(
                sqlx::query(
                    "UPDATE synthesis_jobs SET cancel_requested = true \
                     WHERE id = $1 AND status = ANY($2)",
                )
                .bind(id)
                .bind(&UNFINISHED[..])
                .execute(self.db.pool()),
            )
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Whether a cancel of job `id` was requested (`false` for no such job).
    pub async fn cancel_requested(&self, id: &str) -> Result<bool, DbError> {
        let flag: Option<bool> = self
            .db
            .call(
                sqlx::query_scalar("SELECT cancel_requested FROM synthesis_jobs WHERE id = $1")
                    .bind(id)
                    .fetch_optional(self.db.pool()),
            )
            .await?;
        Ok(flag.unwrap_or(false))
    }
}
