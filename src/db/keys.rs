//! API keys in the database (see `migrations/0002_keys_sessions.sql`).

use crate::api_keys::{KeyError, KeyRecord};

use super::Db;

type Row = (
    String,
    String,
    String,
    chrono::DateTime<chrono::Utc>,
    Option<chrono::DateTime<chrono::Utc>>,
);

/// Every key, revoked ones too, oldest first.
pub async fn list(db: &Db) -> Result<Vec<KeyRecord>, super::DbError> {
    let rows: Vec<Row> = db
        .call(
            sqlx::query_as(
                "SELECT name, hash, shown, created, revoked FROM api_keys ORDER BY created, name",
            )
            .fetch_all(db.pool()),
        )
        .await?;
    Ok(rows
        .into_iter()
        .map(|(name, hash, shown, created, revoked)| KeyRecord {
            name,
            hash,
            shown,
            created,
            revoked,
        })
        .collect())
}

/// Adds an active key; its name must not be an active key's.
pub async fn insert(db: &Db, record: &KeyRecord) -> Result<(), KeyError> {
    let inserted = db
        .call(
            sqlx::query(
                "INSERT INTO api_keys (hash, name, shown, created) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(&record.hash)
            .bind(&record.name)
            .bind(&record.shown)
            .bind(record.created)
            .execute(db.pool()),
        )
        .await?;
    if inserted.rows_affected() == 0 {
        return Err(KeyError::NameTaken(record.name.clone()));
    }
    Ok(())
}

/// Revokes the active key named `name`.
pub async fn revoke(db: &Db, name: &str) -> Result<(), KeyError> {
    let revoked = db
        .call(
            sqlx::query("UPDATE api_keys SET revoked = now() WHERE name = $1 AND revoked IS NULL")
                .bind(name)
                .execute(db.pool()),
        )
        .await?;
    if revoked.rows_affected() == 0 {
        return Err(KeyError::NoSuchKey(name.into()));
    }
    Ok(())
}
