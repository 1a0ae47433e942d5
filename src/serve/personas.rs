//! The persona routes: list, get, create, patch, delete, search, stats,
//! export (streamed) and import (all or nothing). Reads come from the
//! cached panel; every change is one locked change of the panel file, so a
//! TUI and the API can work on one panel at once and lose nothing.

use std::collections::HashMap;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::persona::import::{self, CheckedRecords};
use crate::persona::ops::{self, PanelOpError};
use crate::persona::rules;
use crate::persona::search::Query as SearchQuery;
use crate::persona::{PanelError, Persona, TechProficiency, csv, stats};

use super::error::ApiError;
use super::fields::json_body;
use super::state::{ApiState, Panel};

/// Most personas one list or search page holds.
pub const MAX_LIMIT: usize = 1000;
const DEFAULT_LIMIT: usize = 50;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Personas per page, 1 to 1000 (default 50).
    pub limit: Option<usize>,
    /// Personas to skip (default 0).
    pub offset: Option<usize>,
    /// `low`, `medium` or `high`.
    pub proficiency: Option<String>,
    /// Words the location must contain (any case).
    pub location: Option<String>,
    /// Words the occupation must contain (any case).
    pub occupation: Option<String>,
    /// `id` (default), `name`, `age`; `-` first for descending.
    pub sort: Option<String>,
    /// For search (required there): the query, in the TUI filter's
    /// language: words, `prof:high`, `loc:kenya`, `"a phrase"`.
    pub q: Option<String>,
}

fn contains(field: &str, wanted: &Option<String>) -> bool {
    wanted
        .as_ref()
        .is_none_or(|w| field.to_lowercase().contains(&w.to_lowercase()))
}

/// One page of a list or search, serialised straight from the panel.
#[derive(Serialize)]
struct Page<'a> {
    items: Vec<&'a Persona>,
    total: usize,
    limit: usize,
    offset: usize,
    next_offset: Option<usize>,
}

/// The page `params` asks for out of `rows` (indices into the panel;
/// `None`: every persona, in panel order), as a JSON response. A plain
/// page of the whole panel touches only the personas it shows.
fn page(
    panel: &Panel,
    rows: Option<Vec<usize>>,
    params: &ListParams,
) -> Result<Response, ApiError> {
    let proficiency = match &params.proficiency {
        None => None,
        Some(text) => Some(rules::parse_proficiency(text).ok_or_else(|| {
            ApiError::bad_request(format!(
                "proficiency must be one of {}",
                TechProficiency::ALL.map(|p| p.to_string()).join(", ")
            ))
        })?),
    };
    let limit = params.limit.unwrap_or(DEFAULT_LIMIT);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(ApiError::bad_request(format!(
            "limit must be 1 to {MAX_LIMIT}"
        )));
    }
    let offset = params.offset.unwrap_or(0);
    let filtered =
        proficiency.is_some() || params.location.is_some() || params.occupation.is_some();
    let rows = match rows {
        None if !filtered && params.sort.is_none() => None,
        None => Some((0..panel.personas.len()).collect()),
        Some(rows) => Some(rows),
    };
    let (items, total): (Vec<&Persona>, usize) = match rows {
        None => {
            let all = &panel.personas;
            let shown = all.iter().skip(offset).take(limit).collect();
            (shown, all.len())
        }
        Some(mut rows) => {
            if filtered {
                rows.retain(|&i| {
                    let p = &panel.personas[i];
                    proficiency.is_none_or(|level| p.tech_proficiency == level)
                        && contains(&p.location, &params.location)
                        && contains(&p.occupation, &params.occupation)
                });
            }
            if let Some(sort) = &params.sort {
                sort_rows(panel, &mut rows, sort)?;
            }
            let shown = rows
                .iter()
                .skip(offset)
                .take(limit)
                .map(|&i| &panel.personas[i])
                .collect();
            (shown, rows.len())
        }
    };
    let next = offset + items.len();
    let page = Page {
        next_offset: (next < total).then_some(next),
        items,
        total,
        limit,
        offset,
    };
    let body = serde_json::to_vec(&page).map_err(ApiError::internal)?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// Sorts `rows` by `sort`: `id`, `name` or `age`, `-` first for descending.
fn sort_rows(panel: &Panel, rows: &mut [usize], sort: &str) -> Result<(), ApiError> {
    let (key, descending) = match sort.strip_prefix('-') {
        Some(key) => (key, true),
        None => (sort, false),
    };
    let personas = &panel.personas;
    match key {
        "id" => rows.sort_by_key(|&i| personas[i].id),
        "name" => rows.sort_by_cached_key(|&i| personas[i].name.to_lowercase()),
        "age" => rows.sort_by_key(|&i| (personas[i].age.is_none(), personas[i].age)),
        other => {
            return Err(ApiError::bad_request(format!(
                "cannot sort by {other:?}: use id, name or age, with - for descending"
            )));
        }
    }
    if descending {
        rows.reverse();
    }
    Ok(())
}

/// List personas, a page at a time, filtered and sorted.
#[utoipa::path(get, path = "/v1/personas", operation_id = "listPersonas", tag = "personas", security(("bearer" = [])),
    params(ListParams),
    responses(
        (status = 200, description = "A page of personas", body = super::docs::PersonaPage),
        (status = 400, description = "A bad limit, proficiency or sort", body = super::docs::ErrorBody),
        super::docs::KeyErrors,
    ))]
pub async fn list(
    State(state): State<ApiState>,
    Query(params): Query<ListParams>,
) -> Result<Response, ApiError> {
    let panel = state.panel().await?;
    page(&panel, None, &params)
}

/// Search personas with the TUI filter's language (`q`), a page at a time.
#[utoipa::path(get, path = "/v1/personas/search", operation_id = "searchPersonas", tag = "personas", security(("bearer" = [])),
    params(ListParams),
    responses(
        (status = 200, description = "A page of the personas matching `q`", body = super::docs::PersonaPage),
        (status = 400, description = "No `q`, or a bad limit, proficiency or sort", body = super::docs::ErrorBody),
        super::docs::KeyErrors,
    ))]
pub async fn search(
    State(state): State<ApiState>,
    Query(params): Query<ListParams>,
) -> Result<Response, ApiError> {
    let q = params.q.as_deref().unwrap_or("").trim();
    if q.is_empty() {
        return Err(ApiError::bad_request(
            "q is required: words, prof:high, loc:kenya, \"a phrase\"",
        ));
    }
    let panel = state.panel().await?;
    let rows = panel.index.filter(&panel.personas, &SearchQuery::parse(q));
    page(&panel, Some(rows), &params)
}

/// One persona by id.
#[utoipa::path(get, path = "/v1/personas/{id}", operation_id = "getPersona", tag = "personas", security(("bearer" = [])),
    params(("id" = u32, Path, description = "The persona's id")),
    responses(
        (status = 200, description = "The persona", body = super::docs::Persona),
        (status = 404, description = "No persona has this id", body = super::docs::ErrorBody),
        super::docs::KeyErrors,
    ))]
pub async fn get(
    State(state): State<ApiState>,
    Path(id): Path<u32>,
) -> Result<Json<Persona>, ApiError> {
    let panel = state.panel().await?;
    panel
        .get(id)
        .cloned()
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no persona with id {id}")))
}

/// The panel's statistics: proficiency, countries, occupations, traits, ages, diversity.
#[utoipa::path(get, path = "/v1/personas/stats", operation_id = "panelStats", tag = "personas", security(("bearer" = [])),
    responses(
        (status = 200, description = "The panel described", body = super::docs::PanelStats),
        super::docs::KeyErrors,
    ))]
pub async fn stats(State(state): State<ApiState>) -> Result<Response, ApiError> {
    let panel = state.panel().await?;
    let body = panel.stats_json.get_or_init(|| {
        let stats = stats::stats(&panel.personas);
        Bytes::from(serde_json::to_vec(&stats).expect("stats serialise"))
    });
    Ok(([(header::CONTENT_TYPE, "application/json")], body.clone()).into_response())
}

/// A record's problems as (path, message) pairs; `prefix` names the
/// record in a list (`[3].`), empty for a single one.
fn problems(checked: &CheckedRecords, in_list: bool) -> Vec<(String, String)> {
    checked
        .problems
        .iter()
        .map(|p| match p {
            PanelError::Record {
                index,
                field,
                reason,
                ..
            } => {
                let path = if in_list {
                    format!("[{}].{field}", index - 1)
                } else {
                    field.clone()
                };
                (path, reason.clone())
            }
            other => (String::new(), other.to_string()),
        })
        .collect()
}

fn op_error(e: PanelOpError) -> ApiError {
    match e {
        PanelOpError::NoSuchId(id) => ApiError::not_found(format!("no persona with id {id}")),
        PanelOpError::IdTaken { id, name } => ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            format!("id {id} is taken by #{id} {name}"),
        ),
        PanelOpError::Invalid(problems) => ApiError::invalid(
            "the persona is not valid; nothing was changed",
            problems.into_iter().map(|p| (p.field, p.reason)).collect(),
        ),
    }
}

/// `POST /v1/personas`: one persona from JSON (`id` optional: the next
/// free one). 201 with the persona as saved.
#[utoipa::path(post, path = "/v1/personas", operation_id = "createPersona", tag = "personas", security(("bearer" = [])),
    request_body = super::docs::NewPersona,
    responses(
        (status = 201, description = "Saved; `Location` names it", body = super::docs::Persona,
            headers(("Location" = String, description = "/v1/personas/{id}"))),
        (status = 400, description = "Not a JSON object", body = super::docs::ErrorBody),
        (status = 409, description = "The id is taken", body = super::docs::ErrorBody),
        (status = 422, description = "Not valid: every problem with its field (`details`)", body = super::docs::ErrorBody),
        super::docs::KeyErrors,
    ))]
pub async fn create(State(state): State<ApiState>, body: Bytes) -> Result<Response, ApiError> {
    let record = json_body(&body)?;
    if !record.is_object() {
        return Err(ApiError::bad_request("send one persona as a JSON object"));
    }
    let checked = import::check_records(std::slice::from_ref(&record));
    if !checked.problems.is_empty() {
        return Err(ApiError::invalid(
            "the persona is not valid; nothing was saved",
            problems(&checked, false),
        ));
    }
    let persona = checked
        .valid
        .into_iter()
        .next()
        .expect("one valid record")
        .persona;
    let changed = state
        .change(move |panel| {
            let id = ops::add(panel, persona)?;
            Ok::<_, PanelOpError>(panel.iter().find(|p| p.id == id).cloned())
        })
        .await?
        .map_err(op_error)?;
    let saved = changed
        .value
        .ok_or_else(|| ApiError::internal("added persona vanished"))?;
    let location = format!("/v1/personas/{}", saved.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(saved),
    )
        .into_response())
}

/// A JSON value as the text `rules::set_field` takes: lists joined with
/// "; ", numbers as digits, null or "" to clear.
fn as_field_text(value: &Value) -> Option<String> {
    match value {
        Value::Null => Some(String::new()),
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Array(items) => items
            .iter()
            .map(|i| i.as_str().map(String::from))
            .collect::<Option<Vec<_>>>()
            .map(|items| items.join("; ")),
        _ => None,
    }
}

/// `PATCH /v1/personas/{id}`: the fields given, set as the CLI's `edit`
/// sets them (all or nothing, every problem at once).
#[utoipa::path(patch, path = "/v1/personas/{id}", operation_id = "patchPersona", tag = "personas", security(("bearer" = [])),
    params(("id" = u32, Path, description = "The persona's id")),
    request_body = super::docs::PersonaPatch,
    responses(
        (status = 200, description = "The persona as saved", body = super::docs::Persona),
        (status = 400, description = "Not a JSON object", body = super::docs::ErrorBody),
        (status = 404, description = "No persona has this id", body = super::docs::ErrorBody),
        (status = 422, description = "Not valid; nothing was changed", body = super::docs::ErrorBody),
        super::docs::KeyErrors,
    ))]
pub async fn patch(
    State(state): State<ApiState>,
    Path(id): Path<u32>,
    body: Bytes,
) -> Result<Json<Persona>, ApiError> {
    let Value::Object(fields) = json_body(&body)? else {
        return Err(ApiError::bad_request(
            "send the fields to change as a JSON object",
        ));
    };
    let mut changes = Vec::new();
    let mut bad = Vec::new();
    for (field, value) in &fields {
        if field == "id" {
            bad.push((field.clone(), "the id cannot be changed".to_string()));
            continue;
        }
        match as_field_text(value) {
            Some(text) => changes.push((field.clone(), text)),
            None => bad.push((
                field.clone(),
                "must be a string, number, list of strings or null".into(),
            )),
        }
    }
    if !bad.is_empty() {
        return Err(ApiError::invalid("nothing was changed", bad));
    }
    let changed = state
        .change(move |panel| ops::update(panel, id, &changes))
        .await?
        .map_err(op_error)?;
    Ok(Json(changed.value.after))
}

/// Delete one persona.
#[utoipa::path(delete, path = "/v1/personas/{id}", operation_id = "deletePersona", tag = "personas", security(("bearer" = [])),
    params(("id" = u32, Path, description = "The persona's id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No persona has this id", body = super::docs::ErrorBody),
        super::docs::KeyErrors,
    ))]
pub async fn delete(
    State(state): State<ApiState>,
    Path(id): Path<u32>,
) -> Result<StatusCode, ApiError> {
    state
        .change(move |panel| ops::remove(panel, &[id]))
        .await?
        .map_err(op_error)?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportParams {
    /// `json` (default) or `csv`.
    pub format: Option<String>,
}

/// Rows per chunk of a streamed export.
const EXPORT_CHUNK: usize = 500;

/// `GET /v1/personas/export?format=json|csv`: the panel, streamed in
/// chunks as it is serialised, not built in memory first.
#[utoipa::path(get, path = "/v1/personas/export", operation_id = "exportPersonas", tag = "personas", security(("bearer" = [])),
    params(ExportParams),
    responses(
        (status = 200, description = "The whole panel, streamed, as an attachment",
            content((Vec<super::docs::Persona> = "application/json"), (String = "text/csv"))),
        (status = 400, description = "A format other than json or csv", body = super::docs::ErrorBody),
        super::docs::KeyErrors,
    ))]
pub async fn export(
    State(state): State<ApiState>,
    Query(params): Query<ExportParams>,
) -> Result<Response, ApiError> {
    let format = params.format.as_deref().unwrap_or("json");
    let panel = state.panel().await?;
    let (content_type, name) = match format {
        "json" => ("application/json", "personas.json"),
        "csv" => ("text/csv; charset=utf-8", "personas.csv"),
        other => {
            return Err(ApiError::bad_request(format!(
                "format must be json or csv, not {other:?}"
            )));
        }
    };
    let csv = format == "csv";
    let chunks = panel.personas.len().div_ceil(EXPORT_CHUNK).max(1);
    let stream = futures::stream::iter(0..chunks + 1).map(move |n| {
        let personas = &panel.personas;
        let chunk = personas
            .get(n * EXPORT_CHUNK..((n + 1) * EXPORT_CHUNK).min(personas.len()))
            .unwrap_or(&[]);
        let text = if csv {
            match n {
                // The header, then each chunk's rows without theirs.
                0 => csv::to_csv(chunk),
                _ if n == chunks => String::new(),
                _ => body_rows(&csv::to_csv(chunk)),
            }
        } else {
            json_chunk(chunk, n == 0, n == chunks)
        };
        Ok::<_, std::convert::Infallible>(Bytes::from(text))
    });
    Ok((
        [
            (header::CONTENT_TYPE, content_type.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}

use futures::StreamExt;

/// A CSV text without its header line.
fn body_rows(text: &str) -> String {
    text.split_once('\n')
        .map(|(_, rest)| rest.to_string())
        .unwrap_or_default()
}

/// One chunk of a JSON array: `[` first, `,` between, `]` last.
fn json_chunk(chunk: &[Persona], first: bool, last: bool) -> String {
    if last {
        return "]\n".into();
    }
    let mut text = String::new();
    for (i, p) in chunk.iter().enumerate() {
        text.push_str(if first && i == 0 { "[\n" } else { ",\n" });
        text.push_str(&serde_json::to_string(p).expect("a persona serialises"));
    }
    if first && chunk.is_empty() {
        text.push('[');
    }
    text
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ImportParams {
    /// `merge` (default) adds to the panel; `replace` replaces it.
    pub mode: Option<String>,
}

/// `POST /v1/personas/import`: a JSON list (or `{"personas": [...]}`) or
/// CSV (`Content-Type: text/csv`), all or nothing: one bad record and
/// nothing is imported (422 with every problem and its path).
#[utoipa::path(post, path = "/v1/personas/import", operation_id = "importPersonas", tag = "personas", security(("bearer" = [])),
    params(ImportParams),
    request_body(description = "A JSON list of personas (or `{\"personas\": [...]}`), or CSV",
        content((Vec<super::docs::NewPersona> = "application/json"), (String = "text/csv"))),
    responses(
        (status = 200, description = "Imported; taken ids renumbered", body = super::docs::ImportResult),
        (status = 400, description = "Not JSON/CSV, no records, or a bad mode", body = super::docs::ErrorBody),
        (status = 413, description = "Larger than `serve --max-body-mb`", body = super::docs::ErrorBody),
        (status = 422, description = "Invalid records, each problem with its path (`[3].age`); nothing was imported", body = super::docs::ErrorBody),
        super::docs::KeyErrors,
    ))]
pub async fn import(
    State(state): State<ApiState>,
    Query(params): Query<ImportParams>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let replace = match params.mode.as_deref().unwrap_or("merge") {
        "merge" => false,
        "replace" => true,
        other => {
            return Err(ApiError::bad_request(format!(
                "mode must be merge or replace, not {other:?}"
            )));
        }
    };
    let text =
        std::str::from_utf8(&body).map_err(|_| ApiError::bad_request("the body is not UTF-8"))?;
    let is_csv = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/csv"));
    let records = if is_csv {
        csv::csv_records(text).map_err(|e| ApiError::bad_request(e.to_string()))?
    } else {
        import::json_records(text, false).map_err(|e| ApiError::bad_request(e.to_string()))?
    };
    if records.is_empty() {
        return Err(ApiError::bad_request(
            "no personas in the body; nothing was imported",
        ));
    }
    let checked = import::check_records(&records);
    if !checked.problems.is_empty() {
        return Err(ApiError::invalid(
            format!(
                "{} of {} records are invalid; nothing was imported",
                checked.invalid_records().len(),
                checked.total
            ),
            problems(&checked, true),
        ));
    }
    let incoming: Vec<Persona> = checked.valid.into_iter().map(|r| r.persona).collect();
    let imported = incoming.len();
    let changed = state
        .change(move |panel| {
            if replace {
                panel.clear();
            }
            let choices = rules::merge(panel, incoming);
            let renumbered: HashMap<String, u32> = choices
                .iter()
                .filter_map(|c| match c {
                    rules::IdChoice::Renumbered { from, to } => Some((from.to_string(), *to)),
                    _ => None,
                })
                .collect();
            Ok::<_, PanelOpError>(renumbered)
        })
        .await?
        .map_err(op_error)?;
    Ok(Json(json!({
        "imported": imported,
        "renumbered": changed.value,
        "total": changed.panel.len(),
    })))
}
