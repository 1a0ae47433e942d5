//! Persona synthesis over HTTP: `POST /v1/personas/generate` writes one
//! persona at once (201 saved, or 200 for a dry run), or starts a job for
//! 2 to 100 (`202`, then `GET /v1/jobs/{id}`). Every LLM call goes through
//! the server-wide gate ([`super::state::MAX_LLM_CALLS`]); accepted
//! personas are saved one locked change at a time, ids renumbered when
//! taken ([`rules::merge`]).
//!
//! With a database (`serve --database-url`), jobs are also kept in it
//! ([`PgJobs`]) so that every server behind one load balancer answers for
//! every job: the server running a job writes it through after each change
//! ([`Mirror`]), another server answers `GET` from the table and turns
//! `DELETE` into a request the running server picks up within about a
//! second.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::{Notify, Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

use crate::db::jobs::PgJobs;
use crate::persona::panel_store::{PanelStore, PanelStoreError};
use crate::persona::{Persona, rules};
use crate::sim::synth::{MAX_BATCH, SynthEvent, synthesize_batch, synthesize_one};

use super::error::ApiError;
use super::fields::{Fields, json_body};
use super::state::ApiState;

/// Jobs running at once; the others wait as `queued`.
pub const RUNNING_JOBS: usize = 2;
/// Finished jobs kept for `GET /v1/jobs/{id}`.
const KEEP_FINISHED: usize = 200;
/// How often a job kept in the database looks for a cancel requested on
/// another server (when no write of its own has just looked).
const CANCEL_CHECK_EVERY: Duration = Duration::from_secs(1);
/// How long a finished job's last write is retried while the database is
/// down, before the table keeps its last state.
const FINAL_WRITE_RETRY: Duration = Duration::from_secs(300);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    Queued,
    Running,
    Done,
    Failed,
    Cancelled,
}

impl JobStatus {
    fn finished(self) -> bool {
        matches!(
            self,
            JobStatus::Done | JobStatus::Failed | JobStatus::Cancelled
        )
    }

    /// The word the API and the database use.
    fn word(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Running => "running",
            JobStatus::Done => "done",
            JobStatus::Failed => "failed",
            JobStatus::Cancelled => "cancelled",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Failure {
    /// The persona's place in the batch (0-based).
    pub index: usize,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobView {
    pub id: String,
    pub status: JobStatus,
    pub brief: String,
    pub dry_run: bool,
    pub created: String,
    pub progress: Progress,
    /// The personas written (saved ones carry their panel id).
    pub results: Vec<Persona>,
    pub failures: Vec<Failure>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Progress {
    /// Personas finished, accepted or failed.
    pub done: usize,
    pub total: usize,
}

pub struct Job {
    /// The view, and how many changes it has had (what [`Mirror`] wrote
    /// is a number of changes).
    view: Mutex<(JobView, u64)>,
    cancel: CancellationToken,
    /// Told of every change (for [`Mirror`]; nobody listens without a
    /// database).
    changed: Notify,
}

impl Job {
    fn new(view: JobView, cancel: CancellationToken) -> Job {
        Job {
            view: Mutex::new((view, 0)),
            cancel,
            changed: Notify::new(),
        }
    }

    fn update(&self, f: impl FnOnce(&mut JobView)) {
        let mut guard = self.view.lock().expect("job lock");
        f(&mut guard.0);
        guard.1 += 1;
        drop(guard);
        self.changed.notify_one();
    }

    fn view(&self) -> JobView {
        self.view.lock().expect("job lock").0.clone()
    }

    /// The view and its number of changes.
    fn revision(&self) -> (JobView, u64) {
        self.view.lock().expect("job lock").clone()
    }
}

/// Keeps one job's row in the database in step with the job: writes its
/// latest view after every change, one write at a time (so an older view
/// never overwrites a newer one; changes made during a write go out
/// together in the next), and cancels the job when a cancel was requested
/// on another server. A failed write is logged and tried again at the next
/// change or check; it never fails the job.
struct Mirror {
    job: Arc<Job>,
    table: PgJobs,
    /// The number of changes last written.
    written: Option<u64>,
    /// When the database last said whether a cancel was requested.
    checked: Instant,
    /// Whether the last write failed (logged once until one succeeds).
    failing: bool,
}

impl Mirror {
    fn new(job: Arc<Job>, table: PgJobs) -> Mirror {
        Mirror {
            job,
            table,
            written: None,
            checked: Instant::now(),
            failing: false,
        }
    }

    /// Writes the view if it changed since the last write, else looks for
    /// a cancel request if none was seen for [`CANCEL_CHECK_EVERY`].
    /// Returns the view's status and whether it is written.
    async fn sync(&mut self) -> (JobStatus, bool) {
        let (view, revision) = self.job.revision();
        if self.written != Some(revision) {
            match self.table.save(&view.id, view.status.word(), &view).await {
                Ok(cancel) => {
                    if self.failing {
                        tracing::info!(target: "api", id = %view.id, "job written to the database again");
                    }
                    self.failing = false;
                    self.written = Some(revision);
                    self.seen_cancel(cancel);
                }
                Err(e) => {
                    if !self.failing {
                        tracing::warn!(target: "api", id = %view.id, error = %e,
                            "could not write the job to the database; trying again at its next change");
                    }
                    self.failing = true;
                }
            }
        } else if !view.status.finished() && self.checked.elapsed() >= CANCEL_CHECK_EVERY {
            match self.table.cancel_requested(&view.id).await {
                Ok(cancel) => self.seen_cancel(cancel),
                Err(e) => {
                    tracing::debug!(target: "api", id = %view.id, error = %e, "could not check for a cancel request");
                }
            }
        }
        (view.status, self.written == Some(revision))
    }

    fn seen_cancel(&mut self, cancel: bool) {
        self.checked = Instant::now();
        if cancel && !self.job.cancel.is_cancelled() {
            tracing::info!(target: "api", id = %self.job.view().id, "job cancelled from another server");
            self.job.cancel.cancel();
        }
    }

    /// Syncs after every change and every [`CANCEL_CHECK_EVERY`], until the
    /// finished job is written (or [`FINAL_WRITE_RETRY`] after it finished).
    async fn run(mut self) {
        let mut tick = tokio::time::interval(CANCEL_CHECK_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut finished_at = None;
        loop {
            let (status, written) = self.sync().await;
            if status.finished() {
                if written {
                    return;
                }
                let since = *finished_at.get_or_insert_with(Instant::now);
                if since.elapsed() >= FINAL_WRITE_RETRY {
                    tracing::error!(target: "api", id = %self.job.view().id,
                        "gave up writing the finished job to the database");
                    return;
                }
            }
            tokio::select! {
                _ = self.job.changed.notified() => {}
                _ = tick.tick() => {}
            }
        }
    }
}

/// The jobs table, when the server keeps its panel in a database.
fn table(state: &ApiState) -> Option<PgJobs> {
    match &state.panel_store {
        PanelStore::Postgres(panel) => Some(PgJobs::new(panel.db().clone())),
        PanelStore::File(_) => None,
    }
}

/// By id, and the ids oldest first.
type ByAge<T> = (HashMap<String, Arc<T>>, Vec<String>);

/// The synthesis jobs of this server, and the slots they run in.
pub struct Registry {
    jobs: Mutex<ByAge<Job>>,
    slots: Arc<Semaphore>,
}

impl Default for Registry {
    fn default() -> Registry {
        Registry {
            jobs: Mutex::default(),
            slots: Arc::new(Semaphore::new(RUNNING_JOBS)),
        }
    }
}

impl Registry {
    fn get(&self, id: &str) -> Option<Arc<Job>> {
        self.jobs.lock().expect("jobs lock").0.get(id).cloned()
    }

    fn insert(&self, id: String, job: Arc<Job>) {
        let mut guard = self.jobs.lock().expect("jobs lock");
        let (map, order) = &mut *guard;
        map.insert(id.clone(), job);
        order.push(id);
        let finished: Vec<String> = order
            .iter()
            .filter(|id| map.get(*id).is_some_and(|j| j.view().status.finished()))
            .cloned()
            .collect();
        for old in finished
            .iter()
            .take(finished.len().saturating_sub(KEEP_FINISHED))
        {
            map.remove(old);
            order.retain(|id| id != old);
        }
    }
}

struct Request {
    brief: String,
    count: usize,
    dry_run: bool,
}

fn check(body: &Bytes) -> Result<Request, ApiError> {
    let body = json_body(body)?;
    let mut fields = Fields::of(&body)?;
    let brief = fields.text("brief").trim().to_string();
    let count = fields.whole("count", 1..=MAX_BATCH as u64, 1) as usize;
    let dry_run = fields.flag("dry_run");
    fields.finish("the synthesis request is not valid; nothing was started")?;
    Ok(Request {
        brief,
        count,
        dry_run,
    })
}

/// Appends `persona` to the panel (a new id if its own is taken); the
/// persona as saved.
async fn save(state: &ApiState, persona: Persona) -> Result<Persona, ApiError> {
    let changed = state
        .change(move |panel| {
            rules::merge(panel, vec![persona]);
            Ok::<_, std::convert::Infallible>(panel.last().cloned().expect("just added"))
        })
        .await?;
    match changed {
        Ok(changed) => Ok(changed.value),
        Err(never) => match never {},
    }
}

fn new_job_id() -> String {
    let mut bytes = [0u8; 8];
    if getrandom::fill(&mut bytes).is_err() {
        // Unique enough within one process.
        let nanos = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0);
        bytes = nanos.to_le_bytes();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `POST /v1/personas/generate`.
#[utoipa::path(post, path = "/v1/personas/generate", operation_id = "generatePersonas", tag = "synthesis", security(("bearer" = [])),
    request_body = super::docs::GenerateRequest,
    responses(
        (status = 200, description = "`count` 1 and `dry_run`: the persona written, not saved", body = super::docs::Persona),
        (status = 201, description = "`count` 1: the persona written and saved; `Location` names it", body = super::docs::Persona,
            headers(("Location" = String, description = "/v1/personas/{id}"))),
        (status = 202, description = "`count` 2 or more: a job started; `Location` names it", body = super::docs::JobStarted,
            headers(("Location" = String, description = "/v1/jobs/{id}"))),
        (status = 400, description = "Not UTF-8 or not JSON", body = super::docs::ErrorBody),
        (status = 422, description = "Not valid: every problem with its field (`details`); nothing was started", body = super::docs::ErrorBody),
        (status = 502, description = "`synthesis_failed`: the model did not write a valid persona", body = super::docs::ErrorBody),
        super::docs::KeyErrors,
        (status = 503, description = "`no_backend`: no LLM backend is configured; `busy`: the work queue is full \
            (with `Retry-After`); `unavailable`: the panel file is locked too long or unreadable", body = super::docs::ErrorBody,
            headers(("Retry-After" = u64, description = "With `busy` only: seconds to wait before trying again"))),
    ))]
pub async fn generate(State(state): State<ApiState>, body: Bytes) -> Result<Response, ApiError> {
    let request = check(&body)?;
    let backend = state.gated_backend()?;
    if request.count == 1 {
        let panel = state.panel().await?;
        let persona = synthesize_one(&*backend, &request.brief, &panel.personas)
            .await
            .map_err(|reason| {
                ApiError::new(
                    StatusCode::BAD_GATEWAY,
                    "synthesis_failed",
                    format!("the model did not write a valid persona: {reason}"),
                )
            })?;
        if request.dry_run {
            return Ok((StatusCode::OK, Json(persona)).into_response());
        }
        let saved = save(&state, persona).await?;
        let location = format!("/v1/personas/{}", saved.id);
        return Ok((
            StatusCode::CREATED,
            [(header::LOCATION, location)],
            Json(saved),
        )
            .into_response());
    }
    let Some(admitted) = state.work.admit() else {
        return Ok(super::state::busy());
    };
    let id = new_job_id();
    let job = Arc::new(Job::new(
        JobView {
            id: id.clone(),
            status: JobStatus::Queued,
            brief: request.brief.clone(),
            dry_run: request.dry_run,
            created: chrono::Local::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, false),
            progress: Progress {
                done: 0,
                total: request.count,
            },
            results: Vec::new(),
            failures: Vec::new(),
            error: None,
        },
        state.work.shutdown.child_token(),
    ));
    state.work.jobs.insert(id.clone(), job.clone());
    if let Some(table) = table(&state) {
        // Written before the answer, so another server knows the job as
        // soon as the client does (if this fails, the mirror tries again).
        let mut mirror = Mirror::new(job.clone(), table);
        mirror.sync().await;
        tokio::spawn(mirror.run());
    }
    let slots = state.work.jobs.slots.clone();
    let run_state = state.clone();
    tokio::spawn(async move {
        let _admitted = admitted;
        let cancel = job.cancel.clone();
        let _slot = tokio::select! {
            slot = slots.acquire_owned() => slot,
            _ = cancel.cancelled() => {
                job.update(|v| v.status = JobStatus::Cancelled);
                return;
            }
        };
        job.update(|v| v.status = JobStatus::Running);
        let status = run_job(&run_state, &job, backend, request).await;
        job.update(|v| v.status = status);
        tracing::info!(target: "api", id = %job.view().id, ?status, "synthesis job ended");
    });
    let location = format!("/v1/jobs/{id}");
    Ok((
        StatusCode::ACCEPTED,
        [(header::LOCATION, location.clone())],
        Json(json!({"job_id": id, "location": location})),
    )
        .into_response())
}

async fn run_job(
    state: &ApiState,
    job: &Job,
    backend: Arc<dyn crate::llm::ChatBackend>,
    request: Request,
) -> JobStatus {
    let panel = match state.panel().await {
        Ok(panel) => panel.personas.clone(),
        Err(e) => {
            job.update(|v| v.error = Some(e.message));
            return JobStatus::Failed;
        }
    };
    let (tx, mut rx) = mpsc::channel(64);
    let batch = tokio::spawn(synthesize_batch(
        backend,
        request.brief,
        request.count,
        panel,
        tx,
    ));
    // Aborted (its calls dropped, their permits given back) however this
    // ends.
    let abort = batch.abort_handle();
    let _abort_on_drop = scopeguard(move || abort.abort());
    loop {
        let event = tokio::select! {
            biased;
            _ = job.cancel.cancelled() => return JobStatus::Cancelled,
            event = rx.recv() => event,
        };
        match event {
            None => break,
            Some(SynthEvent::Accepted { index, persona }) => {
                let kept = if request.dry_run {
                    Ok(persona)
                } else {
                    save(state, persona).await
                };
                job.update(|v| {
                    v.progress.done += 1;
                    match kept {
                        Ok(p) => v.results.push(p),
                        Err(e) => v.failures.push(Failure {
                            index,
                            reason: format!("could not be saved: {}", e.message),
                        }),
                    }
                });
            }
            Some(SynthEvent::Failed { index, reason }) => job.update(|v| {
                v.progress.done += 1;
                v.failures.push(Failure { index, reason });
            }),
            Some(SynthEvent::Retrying { .. } | SynthEvent::Slowed { .. }) => {}
        }
    }
    if job.cancel.is_cancelled() {
        return JobStatus::Cancelled;
    }
    let view = job.view();
    if view.results.is_empty() && !view.failures.is_empty() {
        JobStatus::Failed
    } else {
        JobStatus::Done
    }
}

/// Runs `f` when dropped.
fn scopeguard(f: impl FnOnce()) -> impl Drop {
    struct Guard<F: FnOnce()>(Option<F>);
    impl<F: FnOnce()> Drop for Guard<F> {
        fn drop(&mut self) {
            if let Some(f) = self.0.take() {
                f();
            }
        }
    }
    Guard(Some(f))
}

/// `GET /v1/jobs/{id}`.
#[utoipa::path(get, path = "/v1/jobs/{id}", operation_id = "getJob", tag = "synthesis", security(("bearer" = [])),
    params(("id" = String, Path, description = "The job's id")),
    responses(
        (status = 200, description = "The job and what it has written so far", body = super::docs::Job),
        (status = 404, description = "No job with this id (finished jobs are kept for a while)", body = super::docs::ErrorBody),
        super::docs::KeyErrors,
        (status = 503, description = "`database_unavailable`: the job is not this server's and the database is down", body = super::docs::ErrorBody),
    ))]
pub async fn job(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<JobView>, ApiError> {
    if let Some(job) = state.work.jobs.get(&id) {
        return Ok(Json(job.view()));
    }
    match table(&state) {
        Some(table) => elsewhere(&state, &table, &id).await.map(Json),
        None => Err(no_job(&id)),
    }
}

fn no_job(id: &str) -> ApiError {
    ApiError::not_found(format!("no job with id {id}"))
}

/// A job another server runs (or ran), as last written to the database.
async fn elsewhere(state: &ApiState, table: &PgJobs, id: &str) -> Result<JobView, ApiError> {
    table
        .load(id)
        .await
        .map_err(|e| state.store_failed(PanelStoreError::Db(e)))?
        .ok_or_else(|| no_job(id))
}

/// `DELETE /v1/jobs/{id}`: cancels a queued or running job; what was saved
/// stays saved.
#[utoipa::path(delete, path = "/v1/jobs/{id}", operation_id = "cancelJob", tag = "synthesis", security(("bearer" = [])),
    params(("id" = String, Path, description = "The job's id")),
    responses(
        (status = 200, description = "The job after cancelling (what was saved stays saved)", body = super::docs::Job),
        (status = 404, description = "No job with this id", body = super::docs::ErrorBody),
        super::docs::KeyErrors,
        (status = 503, description = "`database_unavailable`: the job is not this server's and the database is down", body = super::docs::ErrorBody),
    ))]
pub async fn cancel_job(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<JobView>, ApiError> {
    if let Some(job) = state.work.jobs.get(&id) {
        job.cancel.cancel();
        // The job task sets the status; give it a moment.
        for _ in 0..50 {
            if job.view().status.finished() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        return Ok(Json(job.view()));
    }
    let Some(table) = table(&state) else {
        return Err(no_job(&id));
    };
    let unfinished = table
        .request_cancel(&id)
        .await
        .map_err(|e| state.store_failed(PanelStoreError::Db(e)))?;
    // The server running it sees the request within about a second
    // (CANCEL_CHECK_EVERY), cancels, and writes the status; wait for that
    // a little longer than here for a local job.
    let mut view = elsewhere(&state, &table, &id).await?;
    let waited = Instant::now();
    while unfinished && !view.status.finished() && waited.elapsed() < CANCEL_CHECK_EVERY * 2 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        view = elsewhere(&state, &table, &id).await?;
    }
    Ok(Json(view))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_knows_the_status_words_the_api_writes() {
        use JobStatus::*;
        for status in [Queued, Running, Done, Failed, Cancelled] {
            assert_eq!(serde_json::to_value(status).unwrap(), status.word());
            assert_eq!(
                crate::db::jobs::UNFINISHED.contains(&status.word()),
                !status.finished(),
                "{status:?}"
            );
        }
    }
}
