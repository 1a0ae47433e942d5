//! Debates over HTTP: start one (`POST /v1/debates`), follow it as
//! Server-Sent Events (`GET /v1/debates/{id}/events`: the same JSON events
//! `simulate --format jsonl` prints, each with its index as `id:` so
//! `Last-Event-ID` resumes), read its session (`GET /v1/debates/{id}`),
//! cancel it (`DELETE`), and list saved sessions (`GET /v1/sessions`).
//! A debate runs on the core runner ([`run_session`]), so its session file
//! is written exactly as the CLI's and the TUI's are.

use crate::sim::moderator::Chair;
use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::Stream;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::persona::Persona;
use crate::persona::panel_store::PanelStore;
use crate::sim::debate::DebateConfig;
use crate::sim::session::{
    ReportPolicy, Session, SessionStore, Sessions, SessionsError, event_json, run_session,
};

use super::error::ApiError;
use super::fields::{Fields, json_body};
use super::state::ApiState;

/// Rounds a request may ask for.
pub const MAX_ROUNDS: u32 = 10;
/// Personas one debate may have.
pub const MAX_PERSONAS: usize = 20;
/// How often an idle event stream sends a comment, so proxies keep it.
pub const HEARTBEAT: Duration = Duration::from_secs(15);
/// How long `DELETE` (and shutdown) waits for a cancelled debate to save.
pub const SAVE_WAIT: Duration = Duration::from_secs(2);
/// Finished debates whose events stay in memory for late readers.
const KEEP_FINISHED: usize = 64;

/// What a debate has said so far, and whether it is over.
#[derive(Default)]
struct Log {
    events: Vec<Arc<str>>,
    done: bool,
}

/// One debate run by this server.
pub struct Debate {
    log: watch::Sender<Log>,
    cancel: CancellationToken,
}

impl Debate {
    fn is_done(&self) -> bool {
        self.log.borrow().done
    }

    /// Waits (up to `wait`) for the run to end; true if it did.
    async fn finished(&self, wait: Duration) -> bool {
        let mut rx = self.log.subscribe();
        tokio::time::timeout(wait, rx.wait_for(|log| log.done))
            .await
            .is_ok_and(|r| r.is_ok())
    }
}

/// By id, and the ids oldest first.
type ByAge<T> = (HashMap<String, Arc<T>>, Vec<String>);

/// The debates this server runs or ran, by session id.
#[derive(Default)]
pub struct Registry {
    debates: Mutex<ByAge<Debate>>,
}

impl Registry {
    fn get(&self, id: &str) -> Option<Arc<Debate>> {
        self.debates
            .lock()
            .expect("debates lock")
            .0
            .get(id)
            .cloned()
    }

    fn insert(&self, id: &str, debate: Arc<Debate>) -> bool {
        let mut guard = self.debates.lock().expect("debates lock");
        let (map, order) = &mut *guard;
        if map.contains_key(id) {
            return false;
        }
        map.insert(id.to_string(), debate);
        order.push(id.to_string());
        // Forget the oldest finished ones beyond the few kept.
        let finished: Vec<String> = order
            .iter()
            .filter(|id| map.get(*id).is_some_and(|d| d.is_done()))
            .cloned()
            .collect();
        for old in finished
            .iter()
            .take(finished.len().saturating_sub(KEEP_FINISHED))
        {
            map.remove(old);
            order.retain(|id| id != old);
        }
        true
    }

    /// Cancels every running debate and waits (up to `wait` in all) for
    /// them to save; returns how many had not finished by then.
    pub async fn cancel_all(&self, wait: Duration) -> usize {
        let running: Vec<Arc<Debate>> = self
            .debates
            .lock()
            .expect("debates lock")
            .0
            .values()
            .filter(|d| !d.is_done())
            .cloned()
            .collect();
        for d in &running {
            d.cancel.cancel();
        }
        let deadline = tokio::time::Instant::now() + wait;
        let mut unsaved = 0;
        for d in running {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if !d.finished(left).await {
                unsaved += 1;
            }
        }
        unsaved
    }
}

/// What `POST /v1/debates` asks for, checked.
struct Request {
    feature: String,
    persona_ids: Vec<u32>,
    rounds: u32,
    report: bool,
}

/// Checks the request against the panel: every problem, with its path.
fn check(body: &Value, panel: &[Persona], default_rounds: u32) -> Result<Request, ApiError> {
    let mut fields = Fields::of(body)?;
    let feature = fields.text("feature");
    let mut persona_ids = Vec::new();
    match fields.object.get("persona_ids") {
        Some(Value::Array(items)) if items.is_empty() => fields
            .problems
            .push(("persona_ids".into(), "name at least one persona".into())),
        Some(Value::Array(items)) if items.len() > MAX_PERSONAS => fields.problems.push((
            "persona_ids".into(),
            format!("at most {MAX_PERSONAS} personas take part in one debate"),
        )),
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                let path = format!("persona_ids[{i}]");
                match item.as_u64().and_then(|n| u32::try_from(n).ok()) {
                    None => fields
                        .problems
                        .push((path, "must be a persona id (a whole number)".into())),
                    Some(id) if persona_ids.contains(&id) => fields
                        .problems
                        .push((path, format!("persona {id} is listed twice"))),
                    Some(id) if !panel.iter().any(|p| p.id == id) => fields
                        .problems
                        .push((path, format!("no persona with id {id}"))),
                    Some(id) => persona_ids.push(id),
                }
            }
        }
        None | Some(Value::Null) => fields
            .problems
            .push(("persona_ids".into(), "is required".into())),
        Some(_) => fields
            .problems
            .push(("persona_ids".into(), "must be a list of ids".into())),
    }
    let rounds = fields.whole(
        "rounds",
        1..=u64::from(MAX_ROUNDS),
        u64::from(default_rounds.clamp(1, MAX_ROUNDS)),
    ) as u32;
    let report = fields.flag("report");
    fields.finish("the debate request is not valid; nothing was started")?;
    Ok(Request {
        feature,
        persona_ids,
        rounds,
        report,
    })
}

/// Where this server keeps sessions: its database, else `sessions/`.
fn store(state: &ApiState) -> Sessions {
    match &state.panel_store {
        PanelStore::Postgres(panel) => Sessions::Postgres(panel.db().clone()),
        PanelStore::File(_) => Sessions::Files(SessionStore::new(&state.sessions_dir)),
    }
}

fn sessions_failed(e: SessionsError) -> ApiError {
    match e {
        SessionsError::Db(e) if e.is_unavailable() => ApiError::database_unavailable(e),
        other => ApiError::internal(other),
    }
}

/// `POST /v1/debates`: 202 with the id; the debate runs in the background.
#[utoipa::path(post, path = "/v1/debates", operation_id = "startDebate", tag = "debates", security(("bearer" = [])),
    request_body = super::docs::DebateRequest,
    responses(
        (status = 202, description = "Started; it runs in the background. `Location` names its session", body = super::docs::DebateStarted,
            headers(("Location" = String, description = "/v1/debates/{id}"))),
        (status = 400, description = "Not UTF-8 or not JSON", body = super::docs::ErrorBody),
        (status = 422, description = "Not valid (e.g. an unknown persona id): every problem with its field (`details`); nothing was started", body = super::docs::ErrorBody),
        super::docs::KeyErrors,
        (status = 503, description = "`no_backend`: no LLM backend is configured; `busy`: the work queue is full \
            (with `Retry-After`); `unavailable`: the panel file is locked too long or unreadable", body = super::docs::ErrorBody,
            headers(("Retry-After" = u64, description = "With `busy` only: seconds to wait before trying again"))),
    ))]
pub async fn start(State(state): State<ApiState>, body: Bytes) -> Result<Response, ApiError> {
    let body = json_body(&body)?;
    let panel = state.panel().await?;
    let request = check(&body, &panel.personas, state.work.default_rounds)?;
    let backend = state.gated_backend()?;
    let Some(admitted) = state.work.admit() else {
        return Ok(super::state::busy());
    };
    let personas: Vec<Persona> = request
        .persona_ids
        .iter()
        .filter_map(|id| panel.get(*id).cloned())
        .collect();
    let config = DebateConfig {
        feature: request.feature,
        personas,
        rounds: request.rounds,
        max_tokens_per_turn: state.work.max_tokens_per_turn,
        max_tokens_total: state.work.max_tokens_total,
    };
    let cancel = state.work.shutdown.child_token();
    let debate = Arc::new(Debate {
        log: watch::Sender::new(Log::default()),
        cancel: cancel.clone(),
    });
    // Ids are per second with a salt: try again on the rare clash.
    let mut session = Session::new(&config, backend.info());
    let mut tries = 0;
    while !state.work.debates.insert(&session.id, debate.clone()) {
        tries += 1;
        if tries > 20 {
            return Err(ApiError::internal("no free session id"));
        }
        tokio::time::sleep(Duration::from_millis(3)).await;
        session = Session::new(&config, backend.info());
    }
    let id = session.id.clone();
    let policy = if request.report {
        ReportPolicy::Auto
    } else {
        ReportPolicy::Never
    };
    let store = store(&state);
    let on_stage = state.work.live.as_ref().and_then(|stage| stage.take());
    if on_stage.is_some() {
        tracing::info!(target: "live", %id, "debate published on the live page");
    }
    tokio::spawn(async move {
        let _admitted = admitted;
        let (tx, mut rx) = mpsc::channel(256);
        let runner = tokio::spawn(run_session(
            backend,
            session,
            policy,
            Some(store),
            cancel,
            tx,
            Chair::absent(),
        ));
        while let Some(event) = rx.recv().await {
            if let Some(stage) = &on_stage {
                stage.publish(&event);
            }
            let line: Arc<str> = event_json(&event).into();
            debate.log.send_modify(|log| log.events.push(line));
        }
        if let Err(e) = runner.await {
            tracing::error!(target: "api", error = %e, "the debate task failed");
        }
        debate.log.send_modify(|log| log.done = true);
        drop(on_stage);
    });
    tracing::info!(target: "api", %id, "debate started");
    let location = format!("/v1/debates/{id}");
    Ok((
        StatusCode::ACCEPTED,
        [(header::LOCATION, location.clone())],
        Json(json!({"id": id, "location": location, "events": format!("{location}/events")})),
    )
        .into_response())
}

/// The saved session with exactly this id.
async fn saved(state: &ApiState, id: &str) -> Result<Session, ApiError> {
    store(state)
        .find_exact(id)
        .await
        .map_err(sessions_failed)?
        .ok_or_else(|| ApiError::not_found(format!("no session with id {id}")))
}

/// `GET /v1/debates/{id}`: the session as saved (while it runs, as of its
/// last finished turn).
#[utoipa::path(get, path = "/v1/debates/{id}", operation_id = "getDebate", tag = "debates", security(("bearer" = [])),
    params(("id" = String, Path, description = "The debate's session id")),
    responses(
        (status = 200, description = "The session as saved (while it runs, as of its last finished turn)", body = super::docs::Session),
        (status = 404, description = "No session has exactly this id", body = super::docs::ErrorBody),
        super::docs::KeyErrors,
    ))]
pub async fn session(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<Session>, ApiError> {
    saved(&state, &id).await.map(Json)
}

/// `DELETE /v1/debates/{id}`: cancels a running debate, waits for it to be
/// saved as cancelled, and answers with the session.
#[utoipa::path(delete, path = "/v1/debates/{id}", operation_id = "cancelDebate", tag = "debates", security(("bearer" = [])),
    params(("id" = String, Path, description = "The debate's session id")),
    responses(
        (status = 200, description = "Cancelled; the session as saved", body = super::docs::Session),
        (status = 404, description = "No session has exactly this id", body = super::docs::ErrorBody),
        (status = 409, description = "`not_running`: the debate has ended, or does not run on this server", body = super::docs::ErrorBody),
        super::docs::KeyErrors,
    ))]
pub async fn cancel(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<Session>, ApiError> {
    let Some(debate) = state.work.debates.get(&id) else {
        saved(&state, &id).await?;
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "not_running",
            format!("debate {id} is not running on this server"),
        ));
    };
    if debate.is_done() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "not_running",
            format!("debate {id} has already ended"),
        ));
    }
    debate.cancel.cancel();
    if !debate.finished(SAVE_WAIT * 2).await {
        tracing::warn!(target: "api", %id, "cancelled debate not saved in time");
    }
    saved(&state, &id).await.map(Json)
}

/// `GET /v1/debates/{id}/events`: everything said so far from
/// `Last-Event-ID` + 1 (or the start), then live events until the last.
#[utoipa::path(get, path = "/v1/debates/{id}/events", operation_id = "debateEvents", tag = "debates", security(("bearer" = [])),
    params(
        ("id" = String, Path, description = "The debate's session id"),
        ("Last-Event-ID" = Option<u64>, Header, description = "Resume after this event (its `id:`)"),
    ),
    responses(
        (status = 200, description = "Server-Sent Events: each event's `data:` is one JSON event as \
            `simulate --format jsonl` prints it, its `id:` the event's index; a `heartbeat` comment \
            every 15 s while idle; the stream ends after the debate's last event. No request timeout",
            body = String, content_type = "text/event-stream"),
        (status = 400, description = "`Last-Event-ID` is not an event's id", body = super::docs::ErrorBody),
        (status = 404, description = "No debate with this id runs or ran on this server since it started \
            (`GET /v1/debates/{id}` reads a saved session)", body = super::docs::ErrorBody),
        super::docs::KeyErrors,
    ))]
pub async fn events(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let debate = state.work.debates.get(&id).ok_or_else(|| {
        ApiError::not_found(format!(
            "no debate {id} runs or ran on this server since it started; GET /v1/debates/{id} reads a saved session"
        ))
    })?;
    let from = match headers.get("last-event-id") {
        None => 0,
        Some(value) => value
            .to_str()
            .ok()
            .and_then(|v| v.trim().parse::<usize>().ok())
            .map(|n| n + 1)
            .ok_or_else(|| ApiError::bad_request("Last-Event-ID must be an event's id"))?,
    };
    let rx = debate.log.subscribe();
    let stream = futures::stream::unfold((rx, from), |(mut rx, next)| async move {
        loop {
            let (batch, done) = {
                let log = rx.borrow_and_update();
                let batch: Vec<Arc<str>> = log.events.get(next..).unwrap_or_default().to_vec();
                (batch, log.done)
            };
            if !batch.is_empty() {
                let events: Vec<Result<Event, Infallible>> = batch
                    .iter()
                    .enumerate()
                    .map(|(i, data)| Ok(Event::default().id((next + i).to_string()).data(&**data)))
                    .collect();
                let after = next + batch.len();
                return Some((futures::stream::iter(events), (rx, after)));
            }
            if done || rx.changed().await.is_err() {
                return None;
            }
        }
    });
    Ok(Sse::new(futures::StreamExt::flatten(stream))
        .keep_alive(KeepAlive::new().interval(HEARTBEAT).text("heartbeat")))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Paging {
    /// Sessions per page, 1 to 1000 (default 50).
    pub limit: Option<usize>,
    /// Sessions to skip (default 0).
    pub offset: Option<usize>,
}

/// `GET /v1/sessions`: saved sessions, newest first.
#[utoipa::path(get, path = "/v1/sessions", operation_id = "listSessions", tag = "debates", security(("bearer" = [])),
    params(Paging),
    responses(
        (status = 200, description = "A page of saved sessions, newest first", body = super::docs::SessionPage),
        (status = 400, description = "A bad limit", body = super::docs::ErrorBody),
        super::docs::KeyErrors,
    ))]
pub async fn sessions(
    State(state): State<ApiState>,
    Query(paging): Query<Paging>,
) -> Result<Json<Value>, ApiError> {
    let limit = paging.limit.unwrap_or(50);
    if limit == 0 || limit > super::personas::MAX_LIMIT {
        return Err(ApiError::bad_request(format!(
            "limit must be 1 to {}",
            super::personas::MAX_LIMIT
        )));
    }
    let offset = paging.offset.unwrap_or(0);
    let (page, total, unreadable) = store(&state)
        .page(offset, limit)
        .await
        .map_err(sessions_failed)?;
    let items: Vec<Value> = page
        .iter()
        .map(|s| {
            json!({
                "id": s.id,
                "status": s.status.label(s.live),
                "created": s.created_at,
                "feature": s.feature,
                "personas": s.persona_names,
            })
        })
        .collect();
    let next = offset + items.len();
    Ok(Json(json!({
        "items": items,
        "total": total,
        "limit": limit,
        "offset": offset,
        "next_offset": (next < total).then_some(next),
        "unreadable": unreadable,
    })))
}
