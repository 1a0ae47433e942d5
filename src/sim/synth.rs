//! Persona synthesis: the model writes a persona as JSON from a one-line
//! brief; it is parsed leniently, validated like any persona, checked for
//! near-duplicates, and retried with the problem fed back (up to
//! `MAX_ATTEMPTS`). A batch runs up to `MAX_IN_FLIGHT` requests at once,
//! asks each for a different corner of the audience, and keeps every
//! persona that succeeded whatever happens to the others. When the server
//! shows it cannot take that many (it cuts a stream while others are in
//! flight, or answers 429/503), the batch halves the number in flight, down
//! to one, and sends the request again; such a retry is not one of the
//! persona's attempts. What a server could take is remembered (per
//! endpoint) for the next batch.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::llm::reply::{as_u32, find_json_object, string_at, strings_at, strip_think};
use crate::llm::{
    BackendInfo, ChatBackend, ChatChunk, ChatMessage, ChatRequest, ChatStream, FinishReason,
    JsonSchema, LlmError, Purpose, Role,
};
use crate::persona::Persona;
use crate::persona::rules::{field_problems, next_free_id, parse_proficiency};
use crate::persona::similar::near_duplicate;

/// Tries per persona: the first answer and two corrections.
pub const MAX_ATTEMPTS: u32 = 3;
/// Requests in flight at once in a batch.
pub const MAX_IN_FLIGHT: usize = 10;
/// How many times one request is sent again because the server was busy
/// (not counted as the persona's attempts).
pub const MAX_CAPACITY_RETRIES: u32 = 8;
/// The largest batch one command asks for.
pub const MAX_BATCH: usize = 100;
const MAX_TOKENS: u32 = 400;

const SYSTEM: &str = "You create realistic, specific personas for product research: real-sounding \
people with a job, a place, habits and opinions. Reply with one JSON object and nothing else.";

/// What a batch reports as it goes.
#[derive(Debug, Clone, PartialEq)]
pub enum SynthEvent {
    /// A persona was accepted (and holds its final id).
    Accepted { index: usize, persona: Persona },
    /// An attempt failed and will be retried with the reason.
    Retrying {
        index: usize,
        attempt: u32,
        reason: String,
    },
    /// Gave up on this one after `MAX_ATTEMPTS`.
    Failed { index: usize, reason: String },
    /// The server could not take that many requests at once (`reason`):
    /// from now on at most `at_a_time` are in flight.
    Slowed { at_a_time: usize, reason: String },
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct BatchResult {
    /// In the order they were accepted.
    pub accepted: Vec<Persona>,
    /// (index in the batch, why it failed), in index order.
    pub failed: Vec<(usize, String)>,
    /// Set when the batch had to adapt to the server.
    pub adapted: Option<Adapted>,
}

/// How a batch adapted to a server that could not take every request at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Adapted {
    /// Requests in flight at once at the end of the batch.
    pub at_a_time: usize,
    /// Requests sent again because the server cut or refused them.
    pub retried: usize,
}

impl std::fmt::Display for Adapted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let plural = |n: usize, one: &str, many: &str| {
            if n == 1 {
                format!("{n} {one}")
            } else {
                format!("{n} {many}")
            }
        };
        write!(
            f,
            "the server handled {} at a time; {} retried",
            self.at_a_time,
            plural(self.retried, "request was", "requests were")
        )
    }
}

fn persona_schema() -> JsonSchema {
    let list = json!({"type": "array", "items": {"type": "string"}});
    JsonSchema {
        name: "persona".into(),
        schema: json!({
            "type": "object",
            "properties": {
                "name": {"type": "string"},
                "age": {"type": "integer"},
                "occupation": {"type": "string"},
                "location": {"type": "string"},
                "tech_proficiency": {"type": "string", "enum": ["Low", "Medium", "High"]},
                "behavioral_traits": list,
                "bio": {"type": "string"},
                "goals": list,
                "frustrations": list
            },
            "required": ["name", "age", "occupation", "location", "tech_proficiency",
                         "behavioral_traits", "bio", "goals", "frustrations"],
            "additionalProperties": false
        }),
    }
}

/// For persona `index` of `count`: which corner of the audience to aim at,
/// so a batch spreads over ages, regions, proficiency and attitudes.
pub fn diversity_hint(index: usize, count: usize) -> String {
    const AGES: [&str; 5] = [
        "in their twenties",
        "in their thirties",
        "in their forties",
        "in their fifties",
        "over 60",
    ];
    const LEVELS: [&str; 3] = ["Low", "Medium", "High"];
    const ATTITUDES: [&str; 4] = [
        "enthusiastic early adopter",
        "pragmatist who needs proof",
        "sceptic who distrusts new tools",
        "reluctant user pushed by circumstances",
    ];
    const REGIONS: [&str; 6] = [
        "Africa",
        "Asia",
        "Europe",
        "Latin America",
        "North America",
        "the Middle East or Oceania",
    ];
    format!(
        "This is persona {} of {count}. Aim for someone {}, living in {}, with {} tech proficiency, \
an {}.",
        index + 1,
        AGES[index % AGES.len()],
        REGIONS[(index / 2) % REGIONS.len()],
        LEVELS[(index + index / 3) % LEVELS.len()],
        ATTITUDES[(index / 5 + index) % ATTITUDES.len()],
    )
}

fn user_prompt(brief: &str, hint: Option<&str>, existing: &[Persona]) -> String {
    let mut prompt = format!("Create one persona from this brief: {}\n", brief.trim());
    if let Some(hint) = hint {
        prompt.push_str(hint);
        prompt.push('\n');
    }
    if !existing.is_empty() {
        let names: Vec<&str> = existing
            .iter()
            .rev()
            .take(40)
            .map(|p| p.name.as_str())
            .collect();
        prompt.push_str(&format!(
            "These people exist already; create someone clearly different: {}.\n",
            names.join(", ")
        ));
    }
    prompt.push_str(
        "JSON fields: name (full name), age (integer), occupation, location (\"City, Country\"), \
tech_proficiency (\"Low\", \"Medium\" or \"High\"), behavioral_traits (3 to 5 short phrases), \
bio (one or two sentences), goals (2 or 3), frustrations (2 or 3).",
    );
    prompt
}

/// Reads a persona out of the model's reply. The id is a placeholder (0);
/// the caller assigns the real one.
pub fn parse_persona(reply: &str) -> Result<Persona, String> {
    let cleaned = strip_think(reply);
    let value = find_json_object(&cleaned).ok_or("the reply contains no JSON object")?;
    let text = |keys: &[&str]| string_at(&value, keys);
    let name = text(&["name"]).ok_or("missing field `name`")?;
    let occupation = text(&["occupation", "job"]).ok_or("missing field `occupation`")?;
    let location = text(&["location"]).ok_or("missing field `location`")?;
    let level = text(&["tech_proficiency"]).ok_or("missing field `tech_proficiency`")?;
    let tech_proficiency = parse_proficiency(&level).ok_or_else(|| {
        format!("`tech_proficiency` is {level:?}; it must be \"Low\", \"Medium\" or \"High\"")
    })?;
    let behavioral_traits = strings_at(&value, "behavioral_traits");
    if behavioral_traits.is_empty() {
        return Err("`behavioral_traits` must list at least one trait".into());
    }
    let mut persona = Persona {
        id: 0,
        name,
        occupation,
        location,
        tech_proficiency,
        behavioral_traits,
        age: value.get("age").and_then(as_u32),
        extra: Default::default(),
    };
    if let Some(bio) = text(&["bio", "background"]) {
        persona.extra.insert("bio".into(), Value::String(bio));
    }
    for key in ["goals", "frustrations"] {
        let items = strings_at(&value, key);
        if !items.is_empty() {
            persona.extra.insert(key.into(), json!(items));
        }
    }
    // The id is assigned later: only the other fields are checked.
    if let Some(problem) = field_problems(&persona)
        .into_iter()
        .find(|problem| problem.field != "id")
    {
        return Err(format!("`{}` {}", problem.field, problem.reason));
    }
    Ok(persona)
}

/// Generates one persona. `taken` is the panel plus what a batch has
/// accepted so far: the new persona must not nearly duplicate any of it,
/// and it gets the next free id, claimed under the lock.
async fn generate(
    backend: &dyn ChatBackend,
    brief: &str,
    hint: Option<&str>,
    taken: &Mutex<Vec<Persona>>,
    mut on_retry: impl FnMut(u32, &str),
) -> Result<Persona, String> {
    let existing = taken.lock().expect("panel lock").clone();
    let mut messages = vec![
        ChatMessage::system(SYSTEM),
        ChatMessage::user(user_prompt(brief, hint, &existing)),
    ];
    let mut last_error = String::new();
    for attempt in 1..=MAX_ATTEMPTS {
        let mut request = ChatRequest::new(messages.clone(), MAX_TOKENS);
        request.json_schema = Some(persona_schema());
        request.purpose = Purpose::Synthesis;
        // The backend degrades the format when the server does not take
        // the schema (`llm::structured`); the reply is read leniently.
        let (reply, cut) = match complete(backend, request).await {
            Ok(reply) => reply,
            // The server failed: feeding that back to the model is no help.
            Err(e) => return Err(e),
        };
        let problem = match parse_persona(&reply) {
            Err(e) if cut => format!(
                "That reply was cut off at the length limit before it was finished ({e}). \
Keep every field short."
            ),
            Err(e) => format!("That was not a valid persona: {e}."),
            Ok(mut persona) => {
                let mut taken = taken.lock().expect("panel lock");
                match near_duplicate(&persona, &taken) {
                    Some((other, reason)) => format!(
                        "That persona is too close to #{} {} ({reason}). Create a clearly different person.",
                        other.id, other.name
                    ),
                    None => {
                        persona.id = next_free_id(&taken);
                        taken.push(persona.clone());
                        return Ok(persona);
                    }
                }
            }
        };
        tracing::info!(target: "synth", attempt, problem = %problem, "persona rejected");
        last_error = problem.clone();
        if attempt < MAX_ATTEMPTS {
            on_retry(attempt, &problem);
            messages.push(ChatMessage {
                role: Role::Assistant,
                content: reply,
            });
            messages.push(ChatMessage::user(format!(
                "{problem} Reply with the corrected JSON object only."
            )));
        }
    }
    Err(format!("gave up after {MAX_ATTEMPTS} tries: {last_error}"))
}

/// The whole reply of one call, and whether it was cut by the token limit.
async fn complete(
    backend: &dyn ChatBackend,
    request: ChatRequest,
) -> Result<(String, bool), String> {
    let mut stream = backend.stream(request);
    let mut text = String::new();
    let mut cut = false;
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(ChatChunk::Text(t)) => text.push_str(&t),
            Ok(ChatChunk::Finish(reason)) => cut = reason == FinishReason::Length,
            Ok(ChatChunk::Usage(_) | ChatChunk::Model(_)) => {}
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok((text, cut))
}

/// One persona from a brief, for review before it is saved.
pub async fn synthesize_one(
    backend: &dyn ChatBackend,
    brief: &str,
    panel: &[Persona],
) -> Result<Persona, String> {
    let taken = Mutex::new(panel.to_vec());
    generate(backend, brief, None, &taken, |_, _| {}).await
}

/// `count` personas for an audience, up to `MAX_IN_FLIGHT` at once. Each
/// success is reported (and kept) as it arrives; failures are listed.
pub async fn synthesize_batch(
    backend: Arc<dyn ChatBackend>,
    audience: String,
    count: usize,
    panel: Vec<Persona>,
    tx: mpsc::Sender<SynthEvent>,
) -> BatchResult {
    let taken = Arc::new(Mutex::new(panel));
    let endpoint = backend.info().endpoint;
    let capacity = Arc::new(Capacity::new(learned_limit(&endpoint)));
    let backend: Arc<dyn ChatBackend> = Arc::new(Adaptive {
        inner: backend,
        capacity: capacity.clone(),
        tx: tx.clone(),
    });
    let mut runs = futures::stream::iter(0..count.min(MAX_BATCH))
        .map(|index| {
            let backend = backend.clone();
            let taken = taken.clone();
            let audience = audience.clone();
            let tx = tx.clone();
            async move {
                let hint = diversity_hint(index, count);
                let mut retries = Vec::new();
                let result = generate(
                    &*backend,
                    &audience,
                    Some(&hint),
                    &taken,
                    |attempt, reason| retries.push((attempt, reason.to_string())),
                )
                .await;
                for (attempt, reason) in retries {
                    let _ = tx
                        .send(SynthEvent::Retrying {
                            index,
                            attempt,
                            reason,
                        })
                        .await;
                }
                (index, result)
            }
        })
        .buffer_unordered(MAX_IN_FLIGHT);
    let mut result = BatchResult::default();
    while let Some((index, outcome)) = runs.next().await {
        let event = match outcome {
            Ok(persona) => {
                result.accepted.push(persona.clone());
                SynthEvent::Accepted { index, persona }
            }
            Err(reason) => {
                tracing::warn!(target: "synth", index, %reason, "persona failed");
                result.failed.push((index, reason.clone()));
                SynthEvent::Failed { index, reason }
            }
        };
        let _ = tx.send(event).await;
    }
    result.failed.sort_by_key(|(index, _)| *index);
    let (at_a_time, retried, lowered) = capacity.summary();
    if lowered || retried > 0 {
        result.adapted = Some(Adapted { at_a_time, retried });
    }
    if lowered {
        LEARNED
            .lock()
            .expect("capacity lock")
            .get_or_insert_with(HashMap::new)
            .insert(endpoint, at_a_time);
    }
    result
}

/// What each server (by endpoint) was found to take at once, for the
/// batches that follow in this process.
static LEARNED: Mutex<Option<HashMap<String, usize>>> = Mutex::new(None);

fn learned_limit(endpoint: &str) -> usize {
    LEARNED
        .lock()
        .expect("capacity lock")
        .get_or_insert_with(HashMap::new)
        .get(endpoint)
        .copied()
        .unwrap_or(MAX_IN_FLIGHT)
}

/// The number of requests a batch may have in flight, lowered when the
/// server shows it cannot take them.
struct Capacity {
    state: Mutex<CapacityState>,
    freed: tokio::sync::Notify,
}

struct CapacityState {
    limit: usize,
    in_flight: usize,
    /// Requests started so far: a request overlapped others if this moved
    /// while it ran.
    started: u64,
    retried: usize,
    lowered: bool,
}

/// One request's place in flight.
struct Slot {
    started_as: u64,
    others_at_start: bool,
}

impl Capacity {
    fn new(limit: usize) -> Capacity {
        Capacity {
            state: Mutex::new(CapacityState {
                limit: limit.clamp(1, MAX_IN_FLIGHT),
                in_flight: 0,
                started: 0,
                retried: 0,
                lowered: false,
            }),
            freed: tokio::sync::Notify::new(),
        }
    }

    async fn acquire(&self) -> Slot {
        loop {
            // Registered before the check, so a release in between wakes us.
            let freed = self.freed.notified();
            {
                let mut state = self.state.lock().expect("capacity lock");
                if state.in_flight < state.limit {
                    state.in_flight += 1;
                    state.started += 1;
                    return Slot {
                        started_as: state.started,
                        others_at_start: state.in_flight > 1,
                    };
                }
            }
            freed.await;
        }
    }

    /// Frees the slot; says whether other requests were in flight at any
    /// point while it ran.
    fn release(&self, slot: Slot) -> bool {
        let overlapped = {
            let mut state = self.state.lock().expect("capacity lock");
            state.in_flight -= 1;
            slot.others_at_start || state.in_flight > 0 || state.started != slot.started_as
        };
        self.freed.notify_waiters();
        overlapped
    }

    /// Halves the limit (down to one) and counts a retry. Returns the new
    /// limit when it went down.
    fn lower(&self) -> Option<usize> {
        let mut state = self.state.lock().expect("capacity lock");
        state.retried += 1;
        if state.limit == 1 {
            return None;
        }
        state.limit = (state.limit / 2).max(1);
        state.lowered = true;
        Some(state.limit)
    }

    fn summary(&self) -> (usize, usize, bool) {
        let state = self.state.lock().expect("capacity lock");
        (state.limit, state.retried, state.lowered)
    }
}

/// Why a failed request is worth sending again with fewer in flight, if it is.
fn busy_reason(error: &LlmError, overlapped: bool) -> Option<String> {
    match error {
        LlmError::Http {
            status: status @ (429 | 503),
            ..
        } => Some(format!("the server answered HTTP {status}")),
        LlmError::EndedEarly | LlmError::StreamBroken(_) if overlapped => {
            Some("the server cut a stream while others were in flight".into())
        }
        _ => None,
    }
}

/// A batch's view of the backend: each request waits for a slot, its reply
/// is read whole, and a request the server cut or refused for being busy
/// is sent again with fewer in flight.
struct Adaptive {
    inner: Arc<dyn ChatBackend>,
    capacity: Arc<Capacity>,
    tx: mpsc::Sender<SynthEvent>,
}

impl ChatBackend for Adaptive {
    fn info(&self) -> BackendInfo {
        self.inner.info()
    }

    fn context_window(&self) -> Option<u32> {
        self.inner.context_window()
    }

    fn stream(&self, request: ChatRequest) -> ChatStream {
        let inner = self.inner.clone();
        let capacity = self.capacity.clone();
        let tx = self.tx.clone();
        let reply = async move {
            let mut busy_retries = 0;
            loop {
                let slot = capacity.acquire().await;
                let mut chunks = Vec::new();
                let mut failure = None;
                let mut stream = inner.stream(request.clone());
                while let Some(item) = stream.next().await {
                    match item {
                        Ok(chunk) => chunks.push(Ok(chunk)),
                        Err(e) => {
                            failure = Some(e);
                            break;
                        }
                    }
                }
                drop(stream);
                let overlapped = capacity.release(slot);
                let Some(error) = failure else {
                    return chunks;
                };
                let reason = match busy_reason(&error, overlapped) {
                    Some(reason) if busy_retries < MAX_CAPACITY_RETRIES => reason,
                    _ => {
                        chunks.push(Err(error));
                        return chunks;
                    }
                };
                busy_retries += 1;
                tracing::info!(target: "synth", %reason, busy_retries, "server busy; retrying with fewer in flight");
                if let Some(at_a_time) = capacity.lower() {
                    let _ = tx.send(SynthEvent::Slowed { at_a_time, reason }).await;
                }
                if matches!(error, LlmError::Http { .. }) {
                    // Refused: give the server a moment.
                    let pause = Duration::from_millis(250) * 2u32.pow(busy_retries.min(4) - 1);
                    tokio::time::sleep(pause).await;
                }
            }
        };
        Box::pin(futures::stream::once(reply).flat_map(futures::stream::iter))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::persona::TechProficiency;

    #[test]
    fn a_persona_is_read_leniently_and_validated() {
        let p = parse_persona(
            r#"<think>hmm</think>```json
            {"name":"Wanjiru Kamau","age":"67","occupation":"Retired farmer","location":"Nyeri, Kenya",
             "tech_proficiency":"low","behavioral_traits":"distrusts banks; saves in cash",
             "bio":"Grew tea for 40 years.","goals":["keep savings safe"],"frustrations":[]}
            ```"#,
        )
        .unwrap();
        assert_eq!(p.name, "Wanjiru Kamau");
        assert_eq!(p.age, Some(67));
        assert_eq!(p.tech_proficiency, TechProficiency::Low);
        assert_eq!(p.behavioral_traits, ["distrusts banks", "saves in cash"]);
        assert_eq!(p.extra["bio"], "Grew tea for 40 years.");
        assert_eq!(p.extra["goals"], json!(["keep savings safe"]));
        assert!(!p.extra.contains_key("frustrations"));
    }

    #[test]
    fn bad_personas_say_what_is_wrong() {
        let e = parse_persona("I cannot do that").unwrap_err();
        assert!(e.contains("no JSON"), "{e}");
        let e = parse_persona(r#"{"name":"A","occupation":"B","location":"C","tech_proficiency":"Expert","behavioral_traits":["x"]}"#).unwrap_err();
        assert!(e.contains("Expert"), "{e}");
        let e = parse_persona(
            r#"{"name":"A","location":"C","tech_proficiency":"Low","behavioral_traits":["x"]}"#,
        )
        .unwrap_err();
        assert!(e.contains("occupation"), "{e}");
        let e = parse_persona(r#"{"name":"A","occupation":"B","location":"C","tech_proficiency":"Low","behavioral_traits":["x"],"age":400}"#).unwrap_err();
        assert!(e.contains("age"), "{e}");
    }

    #[test]
    fn capacity_halves_down_to_one_and_counts_retries() {
        let capacity = Capacity::new(MAX_IN_FLIGHT);
        assert_eq!(capacity.lower(), Some(5));
        assert_eq!(capacity.lower(), Some(2));
        assert_eq!(capacity.lower(), Some(1));
        assert_eq!(capacity.lower(), None);
        assert_eq!(capacity.summary(), (1, 4, true));
        // A learned limit never exceeds the batch's.
        assert_eq!(Capacity::new(50).summary().0, MAX_IN_FLIGHT);
    }

    #[tokio::test]
    async fn a_request_overlapped_if_another_ran_at_any_point() {
        let capacity = Capacity::new(2);
        let alone = capacity.acquire().await;
        assert!(!capacity.release(alone));
        let first = capacity.acquire().await;
        let second = capacity.acquire().await;
        assert!(capacity.release(second));
        // `first` started alone, but `second` came and went meanwhile.
        assert!(capacity.release(first));
    }

    #[test]
    fn only_busy_signs_are_retried() {
        let http = |status| LlmError::Http {
            status,
            message: "x".into(),
            server: "127.0.0.1:8080".into(),
        };
        assert!(busy_reason(&http(429), false).is_some());
        assert!(busy_reason(&http(503), false).is_some());
        assert!(busy_reason(&http(500), true).is_none());
        assert!(busy_reason(&LlmError::EndedEarly, true).is_some());
        assert!(busy_reason(&LlmError::EndedEarly, false).is_none());
        let overflow = LlmError::ContextOverflow {
            prompt_tokens_estimate: 5000,
            context: None,
        };
        assert!(busy_reason(&overflow, true).is_none());
    }

    #[test]
    fn adapting_is_reported_in_words() {
        let a = Adapted {
            at_a_time: 1,
            retried: 4,
        };
        assert_eq!(
            a.to_string(),
            "the server handled 1 at a time; 4 requests were retried"
        );
    }

    #[test]
    fn hints_spread_over_the_batch() {
        let hints: Vec<String> = (0..10).map(|i| diversity_hint(i, 10)).collect();
        assert!(hints[0].contains("persona 1 of 10"));
        for level in ["Low", "Medium", "High"] {
            assert!(
                hints.iter().any(|h| h.contains(&format!("{level} tech"))),
                "{level}"
            );
        }
        for age in ["twenties", "over 60"] {
            assert!(hints.iter().any(|h| h.contains(age)));
        }
        assert!(hints.iter().any(|h| h.contains("sceptic")));
    }
}
