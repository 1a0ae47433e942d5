//! Debate sessions in the database (see `migrations/0002_keys_sessions.sql`):
//! a save is one transaction that rewrites the session row and upserts its
//! turns and report, so a reader sees a session as of one save.

use serde_json::Value;

use crate::sim::session::{SESSION_VERSION, Session, SessionStatus, Summary};

use super::{Db, DbError};

/// A running session saved more recently than this counts as live (its
/// server saves it after every turn); older, it shows as "incomplete", as a
/// file whose process died does.
const LIVE_FOR_SECS: i64 = 600;

/// Saves `session` (the caller sets `updated_at`).
pub async fn save(db: &Db, session: &Session) -> Result<(), DbError> {
    let mut session = session.clone();
    session.version = SESSION_VERSION;
    let turns: Vec<String> = session
        .turns
        .iter()
        .map(|t| serde_json::to_string(t).expect("turns serialise"))
        .collect();
    let seqs: Vec<i32> = (0..turns.len() as i32).collect();
    let report = session
        .report
        .take()
        .map(|r| serde_json::to_string(&r).expect("reports serialise"));
    session.turns.clear();
    let status = serde_json::to_value(session.status).expect("statuses serialise");
    let status = status.as_str().unwrap_or("running").to_string();
    let data = serde_json::to_string(&session).expect("sessions serialise");
    let created = chrono::DateTime::parse_from_rfc3339(&session.created_at)
        .map(|t| t.with_timezone(&chrono::Utc))
        .unwrap_or_else(|_| chrono::Utc::now());
    db.call(async {
        let mut tx = db.pool().begin().await?;
        sqlx::query(
            "INSERT INTO sessions (id, created_at, updated_at, status, feature, data) \
             VALUES ($1, $2, now(), $3, $4, $5::jsonb) \
             ON CONFLICT (id) DO UPDATE SET updated_at = now(), status = EXCLUDED.status, \
             feature = EXCLUDED.feature, data = EXCLUDED.data",
        )
        .bind(&session.id)
        .bind(created)
        .bind(&status)
        .bind(&session.feature)
        .bind(&data)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO session_turns (session_id, seq, data) \
             SELECT $1, * FROM UNNEST($2::int4[], $3::text[]::jsonb[]) \
             ON CONFLICT (session_id, seq) DO UPDATE SET data = EXCLUDED.data",
        )
        .bind(&session.id)
        .bind(&seqs)
        .bind(&turns)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM session_turns WHERE session_id = $1 AND seq >= $2")
            .bind(&session.id)
            .bind(seqs.len() as i32)
            .execute(&mut *tx)
            .await?;
        match &report {
            Some(report) => {
                sqlx::query(
                    "INSERT INTO session_reports (session_id, data) VALUES ($1, $2::jsonb) \
                     ON CONFLICT (session_id) DO UPDATE SET data = EXCLUDED.data",
                )
                .bind(&session.id)
                .bind(report)
                .execute(&mut *tx)
                .await?;
            }
            None => {
                sqlx::query("DELETE FROM session_reports WHERE session_id = $1")
                    .bind(&session.id)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        tx.commit().await
    })
    .await
}

/// The session with exactly this id.
pub async fn load(db: &Db, id: &str) -> Result<Option<Session>, DbError> {
    let row: Option<(String, Option<String>, Option<String>, bool)> = db
        .call(
            sqlx::query_as(
                "SELECT s.data::text, \
                   (SELECT json_agg(t.data ORDER BY t.seq)::text FROM session_turns t WHERE t.session_id = s.id), \
                   (SELECT r.data::text FROM session_reports r WHERE r.session_id = s.id), \
                   s.updated_at > now() - make_interval(secs => $2) \
                 FROM sessions s WHERE s.id = $1",
            )
            .bind(id)
            .bind(LIVE_FOR_SECS as f64)
            .fetch_optional(db.pool()),
        )
        .await?;
    let Some((data, turns, report, recent)) = row else {
        return Ok(None);
    };
    let decode = |what: &str, e: serde_json::Error| DbError::Failed {
        at: db.at().to_string(),
        why: format!("session {id}: {what} is not readable: {e}"),
    };
    let mut value: Value = serde_json::from_str(&data).map_err(|e| decode("the session", e))?;
    value["turns"] = match turns {
        Some(turns) => serde_json::from_str(&turns).map_err(|e| decode("a turn", e))?,
        None => Value::Array(Vec::new()),
    };
    if let Some(report) = report {
        value["report"] = serde_json::from_str(&report).map_err(|e| decode("the report", e))?;
    }
    let mut session: Session =
        serde_json::from_value(value).map_err(|e| decode("the session", e))?;
    session.live = session.status == SessionStatus::Running && recent;
    Ok(Some(session))
}

/// Sessions newest first, `limit` from `offset`, and how many there are.
pub async fn list(db: &Db, offset: usize, limit: usize) -> Result<(Vec<Summary>, usize), DbError> {
    type Row = (String, String, String, String, Value, bool, i64);
    let rows: Vec<Row> = db
        .call(
            sqlx::query_as(
                "SELECT id, status, data->>'created_at', feature, \
                   coalesce(jsonb_path_query_array(data, '$.personas[*].name'), '[]'::jsonb), \
                   updated_at > now() - make_interval(secs => $3), \
                   count(*) OVER () \
                 FROM sessions ORDER BY id DESC OFFSET $1 LIMIT $2",
            )
            .bind(offset as i64)
            .bind(limit as i64)
            .bind(LIVE_FOR_SECS as f64)
            .fetch_all(db.pool()),
        )
        .await?;
    let total = match rows.first() {
        Some(row) => row.6 as usize,
        None => {
            db.call(
                sqlx::query_scalar::<_, i64>("SELECT count(*) FROM sessions").fetch_one(db.pool()),
            )
            .await? as usize
        }
    };
    let summaries = rows
        .into_iter()
        .map(|(id, status, created_at, feature, names, recent, _)| {
            let status: SessionStatus =
                serde_json::from_value(Value::String(status)).unwrap_or(SessionStatus::Failed);
            Summary {
                live: status == SessionStatus::Running && recent,
                status,
                id,
                created_at,
                feature,
                persona_names: serde_json::from_value(names).unwrap_or_default(),
            }
        })
        .collect();
    Ok((summaries, total))
}
