//! The API described: an OpenAPI 3.1 document generated from the handlers'
//! `#[utoipa::path]` annotations (served at `/openapi.json`) and a page
//! that renders it (`/docs`), both open without a key. The page is one
//! self-contained HTML file embedded in the binary (no CDN, no download at
//! build time): it works on a machine with no internet.
//!
//! The persona routes are documented once, under `/v1/personas`; the
//! seed's `/v1/persona` prefix is an alias with the same operations (the
//! document's description says so).
//!
//! The schemas of core and serve types (`Persona`, `PanelStats`, the
//! debate `Session`, the synthesis `Job`, …) are described here
//! by mirror structs, so utoipa stays out of `src/persona` (the core uses
//! no face crate); a test checks each mirror's fields against what the
//! real type serialises.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{IntoResponses, Modify, OpenApi, ToSchema};

use super::{debates, personas, synthesis};

/// The level as the panel file and the API answer spell it.
#[derive(ToSchema)]
#[allow(dead_code)]
pub enum TechProficiency {
    Low,
    Medium,
    High,
}

/// A persona. Fields other than these are kept as they are (a newer
/// version's fields survive a save).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct Persona {
    /// Unique, 1 or more.
    #[schema(minimum = 1)]
    id: u32,
    name: String,
    occupation: String,
    /// `City, Country`; the country is the last comma-separated part.
    location: String,
    tech_proficiency: TechProficiency,
    behavioral_traits: Vec<String>,
    /// Left out when unknown.
    #[schema(nullable = false)]
    age: Option<u32>,
}

/// A persona to create: `id` may be left out (the next free one is used).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct NewPersona {
    #[schema(minimum = 1, nullable = false)]
    id: Option<u32>,
    name: String,
    occupation: String,
    location: String,
    tech_proficiency: TechProficiency,
    behavioral_traits: Vec<String>,
    #[schema(nullable = false)]
    age: Option<u32>,
}

/// The fields to change, set as `persona-sim personas edit` sets them:
/// strings, numbers, lists of strings, or null / "" to clear an optional
/// field. `id` cannot be changed. All or nothing.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct PersonaPatch {
    name: Option<String>,
    occupation: Option<String>,
    location: Option<String>,
    /// `low`, `medium` or `high` (any case).
    tech_proficiency: Option<String>,
    /// A list, or one string with `;` between traits.
    #[schema(value_type = Option<Vec<String>>)]
    behavioral_traits: Option<Vec<String>>,
    age: Option<u32>,
}

/// One page of a list or a search.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct PersonaPage {
    items: Vec<Persona>,
    /// Personas matching, on every page.
    total: usize,
    limit: usize,
    offset: usize,
    /// The next page's offset; null on the last page.
    next_offset: Option<usize>,
}

/// A label and how many personas have it.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct Count {
    name: String,
    count: usize,
}

/// Ages in six buckets (`<25` … `65+`), plus personas without an age.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct AgeStats {
    buckets: Vec<Count>,
    unknown: usize,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct Diversity {
    countries: usize,
    occupations: usize,
    /// Shannon evenness of the proficiency mix, 0 to 1.
    proficiency_evenness: f64,
}

/// A description of the panel (as `persona-sim personas stats`).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct PanelStats {
    total: usize,
    by_proficiency: Vec<Count>,
    by_country: Vec<Count>,
    by_occupation: Vec<Count>,
    top_traits: Vec<Count>,
    distinct_traits: usize,
    /// Null when no persona has an age.
    ages: Option<AgeStats>,
    diversity: Diversity,
}

/// What an import did.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ImportResult {
    imported: usize,
    /// Incoming ids that were taken, and the ids they got.
    renumbered: BTreeMap<String, u32>,
    /// Personas in the panel after the import.
    total: usize,
}

/// Every error: a stable code, a message for people, and details where
/// there are some (for `invalid`: `[{path, message}]`).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ErrorBody {
    error: ErrorDetail,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ErrorDetail {
    /// `not_found`, `bad_request`, `invalid`, `unauthorized`,
    /// `rate_limited`, `conflict`, `unavailable`, `internal`, …
    code: String,
    message: String,
    #[schema(value_type = Option<Object>)]
    details: Option<serde_json::Value>,
}

/// A debate to start.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct DebateRequest {
    /// The feature the personas debate; not empty.
    feature: String,
    /// 1 to 20 distinct persona ids from the panel.
    persona_ids: Vec<u32>,
    /// 1 to 10 (default: the server's default rounds).
    #[schema(minimum = 1, maximum = 10, nullable = false)]
    rounds: Option<u32>,
    /// Write a report at the end (default false).
    #[schema(nullable = false)]
    report: Option<bool>,
}

/// A debate started: its id, its session and its event stream.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct DebateStarted {
    id: String,
    /// `/v1/debates/{id}`: the session.
    location: String,
    /// `/v1/debates/{id}/events`: the event stream.
    events: String,
}

/// A debate's session as saved (the file `simulate` and the TUI write).
/// The nested parts are described by the session file's format.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct Session {
    version: u32,
    id: String,
    /// RFC 3339, local time with offset.
    created_at: String,
    updated_at: String,
    /// `running`, `completed`, `failed`, `cancelled` or `budget_reached`.
    status: String,
    feature: String,
    /// The personas as they were when the debate ran.
    personas: Vec<Persona>,
    /// `rounds`, `max_tokens_per_turn`, `max_tokens_total`.
    #[schema(value_type = Object)]
    settings: serde_json::Value,
    /// `kind`, `model`, `endpoint`.
    #[schema(value_type = Object)]
    backend: serde_json::Value,
    /// Each persona's turn, in order.
    #[schema(value_type = Vec<Object>)]
    turns: Vec<serde_json::Value>,
    /// Every token of the session.
    #[schema(value_type = Object)]
    usage: serde_json::Value,
    /// Left out when there is none.
    #[schema(value_type = Option<Object>, nullable = false)]
    report: Option<serde_json::Value>,
    #[schema(nullable = false)]
    report_error: Option<String>,
    #[schema(nullable = false)]
    error: Option<String>,
    /// The process that wrote a running session (informative only).
    #[schema(nullable = false)]
    pid: Option<u32>,
    /// What decided the run: `version`, `backend`, `model`, `sampling`
    /// (`temperature`, `seed`), `rounds`, `max_tokens_per_turn`,
    /// `max_tokens_total`, `prompts` (a hash of the prompt templates),
    /// `context`. Left out in sessions from before manifests.
    #[schema(value_type = Option<Object>, nullable = false)]
    manifest: Option<serde_json::Value>,
    /// What a moderator did (`after_turns` and the action); left out when
    /// nobody moderated (API debates have no moderator).
    #[schema(value_type = Option<Vec<Object>>, nullable = false)]
    moderation: Option<Vec<serde_json::Value>>,
    /// Rounds after which one stance held the panel (`round`, `position`,
    /// `count`, `known`, `share`); left out when none did.
    #[schema(value_type = Option<Vec<Object>>, nullable = false)]
    herding: Option<Vec<serde_json::Value>>,
}

/// A saved session, in short.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct SessionSummary {
    id: String,
    /// `running`, `incomplete` (its process died), `completed`, `failed`,
    /// `cancelled` or `budget reached`.
    status: String,
    created: String,
    feature: String,
    /// The personas' names.
    personas: Vec<String>,
}

/// One page of saved sessions, newest first.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct SessionPage {
    items: Vec<SessionSummary>,
    total: usize,
    limit: usize,
    offset: usize,
    /// The next page's offset; null on the last page.
    next_offset: Option<usize>,
    /// Session files that could not be read (left out of the list).
    unreadable: usize,
}

/// Personas to write with the model.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct GenerateRequest {
    /// What kind of persona to write; not empty.
    brief: String,
    /// 1 (default: written at once) to 100 (2 or more: a job).
    #[schema(minimum = 1, maximum = 100, nullable = false)]
    count: Option<usize>,
    /// Write but do not save (default false).
    #[schema(nullable = false)]
    dry_run: Option<bool>,
}

/// A synthesis job started.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct JobStarted {
    job_id: String,
    /// `/v1/jobs/{id}`.
    location: String,
}

#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum JobStatus {
    Queued,
    Running,
    Done,
    Failed,
    Cancelled,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct Progress {
    /// Personas finished, accepted or failed.
    done: usize,
    total: usize,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct Failure {
    /// The persona's place in the batch (0-based).
    index: usize,
    reason: String,
}

/// A synthesis job and what it has written so far.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct Job {
    id: String,
    status: JobStatus,
    brief: String,
    dry_run: bool,
    created: String,
    progress: Progress,
    /// The personas written (saved ones carry their panel id).
    results: Vec<Persona>,
    failures: Vec<Failure>,
    /// Why the job failed as a whole; left out otherwise.
    #[schema(nullable = false)]
    error: Option<String>,
}

/// The answers every key-protected route can give besides its own.
#[derive(IntoResponses)]
#[allow(dead_code)]
pub enum KeyErrors {
    /// No key, a malformed header, or a wrong or revoked key.
    #[response(status = 401)]
    Unauthorized(ErrorBody),
    /// Over the key's requests per second (`serve --rate-limit`).
    #[response(
        status = 429,
        headers(("Retry-After" = u64, description = "Seconds to wait before trying again"))
    )]
    RateLimited(ErrorBody),
    /// The panel file is locked too long by another process, or unreadable.
    #[response(status = 503)]
    Unavailable(ErrorBody),
}

/// `GET /healthz`: liveness, `OK` while the process serves.
#[utoipa::path(get, path = "/healthz", operation_id = "healthz", tag = "operations",
    responses((status = 200, description = "The process is serving", body = String, content_type = "text/plain")))]
#[allow(dead_code)]
fn healthz_doc() {}

/// `GET /health`: healthy, or degraded with the reasons (always 200).
#[utoipa::path(get, path = "/health", operation_id = "health", tag = "operations",
    responses((status = 200, description = "`status` is `healthy` or `degraded` (with `reasons`)", body = Object)))]
#[allow(dead_code)]
fn health_doc() {}

/// `GET /metrics`: Prometheus text format.
#[utoipa::path(get, path = "/metrics", operation_id = "metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text exposition format", body = String, content_type = "text/plain")))]
#[allow(dead_code)]
fn metrics_doc() {}

/// `GET /openapi.json`: this document.
#[utoipa::path(get, path = "/openapi.json", operation_id = "openapi", tag = "operations",
    responses((status = 200, description = "The OpenAPI 3.1 document", body = Object)))]
#[allow(dead_code)]
fn openapi_doc() {}

/// `GET /docs`: a page that renders this document (no internet needed).
#[utoipa::path(get, path = "/docs", operation_id = "docs", tag = "operations",
    responses((status = 200, description = "HTML", body = String, content_type = "text/html")))]
#[allow(dead_code)]
fn docs_doc() {}

struct BearerKey;

impl Modify for BearerKey {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An API key from `persona-sim keys create --name NAME`: \
                         `Authorization: Bearer <key>`",
                    ))
                    .build(),
            ),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "persona-sim Persona API",
        description = "The panel of virtual personas over HTTP: list, search, read, create, \
            change, delete, import and export personas, and the panel's statistics; personas written by the model (one, or a job \
            of many); debates run in the background, followed as Server-Sent Events, and their \
            saved sessions. JSON in and \
            out; every error is `{\"error\": {\"code\", \"message\", \"details\"}}`.\n\n\
            Every `/v1` route needs an API key (`Authorization: Bearer <key>`; make one with \
            `persona-sim keys create --name NAME`) and is limited per key (`serve --rate-limit`, \
            20 requests/s with bursts of 40 by default; over it: 429 with `Retry-After`).\n\n\
            **Alias:** every `/v1/personas…` route is also served under the seed's `/v1/persona…` \
            prefix, with the same parameters and answers; it is documented once, here."
    ),
    paths(
        personas::list,
        personas::create,
        personas::search,
        personas::stats,
        personas::export,
        personas::import,
        personas::get,
        personas::patch,
        personas::delete,
        synthesis::generate,
        synthesis::job,
        synthesis::cancel_job,
        debates::start,
        debates::session,
        debates::cancel,
        debates::events,
        debates::sessions,
        healthz_doc,
        health_doc,
        metrics_doc,
        openapi_doc,
        docs_doc,
    ),
    components(schemas(
        Persona, NewPersona, PersonaPatch, PersonaPage, PanelStats, ImportResult, ErrorBody,
        DebateRequest, DebateStarted, Session, SessionPage, GenerateRequest, JobStarted, Job
    )),
    modifiers(&BearerKey),
    tags(
        (name = "personas", description = "The panel (API key needed)"),
        (name = "synthesis", description = "Personas written by the model, one or a job of many (API key needed)"),
        (name = "debates", description = "Debates run in the background, their event streams, saved sessions (API key needed)"),
        (name = "operations", description = "Health, metrics and this document (no key)"),
    )
)]
pub struct ApiDoc;

/// The document as JSON, made once.
pub fn openapi_json() -> &'static str {
    static JSON: OnceLock<String> = OnceLock::new();
    JSON.get_or_init(|| {
        ApiDoc::openapi()
            .to_pretty_json()
            .expect("the OpenAPI document serialises")
    })
}

/// The docs page: plain HTML, CSS and script inline, reading
/// `/openapi.json` from the same server.
pub const DOCS_HTML: &str = include_str!("docs.html");

/// `/openapi.json` and `/docs` (no key, no state).
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route(
            "/openapi.json",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "application/json")],
                    openapi_json(),
                )
                    .into_response()
            }),
        )
        .route(
            "/docs",
            get(|| async {
                (
                    [
                        (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                        (
                            header::CONTENT_SECURITY_POLICY,
                            "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'",
                        ),
                    ],
                    DOCS_HTML,
                )
                    .into_response()
            }),
        )
}
