//! The Postgres store: what `serve --database-url` keeps in tables instead
//! of files, so several servers can share one panel. The pool connects
//! lazily and reconnects by itself: a database that is down at start or
//! goes away later makes calls fail with [`DbError::Unavailable`] (the API
//! answers 503) until it is back. Every call is bounded by [`CALL_TIMEOUT`],
//! so a database that stalls is an error, not a hung request.

pub mod jobs;
pub mod keys;
pub mod panel;
pub mod sessions;

use std::future::Future;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::Connection;
use sqlx::postgres::PgConnection;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

/// The migrations in `migrations/`, compiled in.
pub static MIGRATOR: Migrator = sqlx::migrate!();

/// The longest one database call (a query or a transaction) may take.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a call waits for a connection before the database counts as
/// unavailable.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections per server: the API's own concurrency is bounded well below.
const MAX_CONNECTIONS: u32 = 16;

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("{0:?} is not a valid database URL: {1}")]
    BadUrl(String, String),
    /// Down, unreachable, refusing connections, or too slow to answer.
    #[error("the database at {at} is unavailable: {why}")]
    Unavailable { at: String, why: String },
    /// The database answered, but not as this build expects (an error in a
    /// query, a schema from a newer build).
    #[error("the database at {at} failed: {why}")]
    Failed { at: String, why: String },
    #[error(
        "the database at {at} has no schema yet: run `persona-sim db migrate` (serve migrates on start)"
    )]
    NotMigrated { at: String },
}

impl DbError {
    /// Whether waiting may help (the API answers 503, not 500).
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            DbError::Unavailable { .. } | DbError::NotMigrated { .. }
        )
    }
}

/// A pool of connections to one database.
#[derive(Clone)]
pub struct Db {
    pool: PgPool,
    /// Where it is, without the password: for messages and logs.
    at: String,
    options: Arc<PgConnectOptions>,
    /// Why the last [`Db::check`] failed, while it stays failed: calls
    /// fail at once meanwhile instead of each waiting for a connection.
    down: Arc<Mutex<Option<String>>>,
}

/// A migration as `db status` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct MigrationState {
    pub version: i64,
    pub description: String,
    /// When it was applied, if it was.
    pub applied_on: Option<chrono::DateTime<chrono::Utc>>,
    /// Applied, but the file in this build differs from what was applied.
    pub changed: bool,
}

impl Db {
    /// A pool for `url` (`postgres://user:password@host:port/database`).
    /// Nothing connects yet: a database that is down is reported by the
    /// first call, and the pool keeps trying on later calls.
    pub fn new(url: &str) -> Result<Db, DbError> {
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(DbError::BadUrl(
                redact(url),
                "it must start with postgres:// or postgresql://".into(),
            ));
        }
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| DbError::BadUrl(redact(url), e.to_string()))?
            .application_name("persona-sim");
        let at = format!(
            "{}:{}/{}",
            options.get_host(),
            options.get_port(),
            options.get_database().unwrap_or("")
        );
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            // Checked before use, so a connection the server dropped while
            // idle (a restart) is replaced instead of failing a request.
            .test_before_acquire(true)
            .connect_lazy_with(options.clone());
        Ok(Db {
            pool,
            at,
            options: Arc::new(options),
            down: Arc::default(),
        })
    }

    /// Connects afresh (not from the pool, so a database that refuses is
    /// known at once) and asks a trivial query. Until a check succeeds
    /// again, every call fails at once with the reason.
    pub async fn check(&self) -> Result<(), DbError> {
        let attempt = async {
            let mut conn = PgConnection::connect_with(&self.options).await?;
            sqlx::query("SELECT 1").execute(&mut conn).await?;
            conn.close().await
        };
        let result = match tokio::time::timeout(ACQUIRE_TIMEOUT, attempt).await {
            Ok(result) => result.map_err(|e| self.error(e)),
            Err(_) => Err(DbError::Unavailable {
                at: self.at.clone(),
                why: format!("no answer within {} s", ACQUIRE_TIMEOUT.as_secs()),
            }),
        };
        let why = match &result {
            Err(DbError::Unavailable { why, .. }) => Some(why.clone()),
            _ => None,
        };
        *self.down.lock().expect("db state lock") = why;
        result
    }

    /// `host:port/database`, for messages.
    pub fn at(&self) -> &str {
        &self.at
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Runs `call` within [`CALL_TIMEOUT`], turning its errors into
    /// [`DbError`]s that say where the database is.
    pub async fn call<T>(
        &self,
        call: impl Future<Output = Result<T, sqlx::Error>>,
    ) -> Result<T, DbError> {
        if let Some(why) = self.down.lock().expect("db state lock").clone() {
            return Err(DbError::Unavailable {
                at: self.at.clone(),
                why,
            });
        }
        match tokio::time::timeout(CALL_TIMEOUT, call).await {
            Ok(result) => result.map_err(|e| self.error(e)),
            Err(_) => Err(DbError::Unavailable {
                at: self.at.clone(),
                why: format!("no answer within {} s", CALL_TIMEOUT.as_secs()),
            }),
        }
    }

    /// What a sqlx error means for the caller.
    pub fn error(&self, error: sqlx::Error) -> DbError {
        let at = self.at.clone();
        match &error {
            sqlx::Error::PoolTimedOut => DbError::Unavailable {
                at,
                why: format!(
                    "no connection within {} s (is it running, and reachable from here?)",
                    ACQUIRE_TIMEOUT.as_secs()
                ),
            },
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => DbError::Unavailable {
                at,
                why: error.to_string(),
            },
            sqlx::Error::Database(e) => match e.code().as_deref() {
                // undefined_table: no migrations yet.
                Some("42P01") => DbError::NotMigrated { at },
                // The server is shutting down or restarting (admin_shutdown,
                // crash_shutdown, cannot_connect_now), or out of connections.
                Some("57P01" | "57P02" | "57P03" | "53300") => DbError::Unavailable {
                    at,
                    why: e.message().to_string(),
                },
                _ => DbError::Failed {
                    at,
                    why: e.message().to_string(),
                },
            },
            _ => DbError::Failed {
                at,
                why: error.to_string(),
            },
        }
    }

    /// Applies the migrations not yet applied (each in its own transaction;
    /// sqlx holds an advisory lock meanwhile, so servers starting together
    /// migrate once). Returns the versions it applied.
    pub async fn migrate(&self) -> Result<Vec<i64>, DbError> {
        let before = self.status().await?;
        let run = async {
            MIGRATOR.run(&self.pool).await.map_err(|e| match e {
                sqlx::migrate::MigrateError::Execute(e) => self.error(e),
                other => DbError::Failed {
                    at: self.at.clone(),
                    why: other.to_string(),
                },
            })
        };
        match tokio::time::timeout(CALL_TIMEOUT * 6, run).await {
            Ok(result) => result?,
            Err(_) => {
                return Err(DbError::Unavailable {
                    at: self.at.clone(),
                    why: "migrations did not finish within a minute".into(),
                });
            }
        }
        Ok(before
            .iter()
            .filter(|m| m.applied_on.is_none())
            .map(|m| m.version)
            .collect())
    }

    /// Every migration this build has, with whether (and when) it is
    /// applied, plus any applied migration this build does not know (a
    /// newer build migrated the database).
    pub async fn status(&self) -> Result<Vec<MigrationState>, DbError> {
        let exists: bool = self
            .call(
                sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
                    .fetch_one(&self.pool),
            )
            .await?;
        let applied: Vec<(i64, String, Vec<u8>, chrono::DateTime<chrono::Utc>)> = if exists {
            self.call(
                sqlx::query_as(
                    "SELECT version, description, checksum, installed_on FROM _sqlx_migrations \
                     WHERE success ORDER BY version",
                )
                .fetch_all(&self.pool),
            )
            .await?
        } else {
            Vec::new()
        };
        let mut states: Vec<MigrationState> = MIGRATOR
            .iter()
            .filter(|m| m.migration_type.is_up_migration())
            .map(|m| {
                let done = applied.iter().find(|a| a.0 == m.version);
                MigrationState {
                    version: m.version,
                    description: m.description.to_string(),
                    applied_on: done.map(|a| a.3),
                    changed: done.is_some_and(|a| a.2 != *m.checksum),
                }
            })
            .collect();
        for (version, description, _, on) in &applied {
            if !states.iter().any(|s| s.version == *version) {
                states.push(MigrationState {
                    version: *version,
                    description: format!("{description} (unknown to this build)"),
                    applied_on: Some(*on),
                    changed: false,
                });
            }
        }
        states.sort_by_key(|s| s.version);
        Ok(states)
    }
}

/// `url` without its password.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_stay_out_of_messages() {
        assert_eq!(
            redact("postgres://app:s3cret@db:5432/persona"),
            "postgres://app:***@db:5432/persona"
        );
        assert_eq!(redact("postgres://db/persona"), "postgres://db/persona");
        let Err(e) = Db::new("mysql://app:s3cret@db/persona") else {
            panic!("only Postgres");
        };
        assert!(e.to_string().contains("postgres://"), "{e}");
        let Err(e) = Db::new("postgres://app:s3cret@db:notaport/persona") else {
            panic!("a bad port is an error");
        };
        assert!(!e.to_string().contains("s3cret"), "{e}");
    }

    #[tokio::test]
    async fn a_database_that_is_not_there_is_unavailable() {
        // A port nothing listens on (bound, then released).
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let db = Db::new(&format!("postgres://u@127.0.0.1:{port}/x")).unwrap();
        let e = db.check().await.unwrap_err();
        assert!(e.is_unavailable(), "{e}");
        assert!(
            e.to_string().contains(&format!("127.0.0.1:{port}/x")),
            "{e}"
        );
    }
}
