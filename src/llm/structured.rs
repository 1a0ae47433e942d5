//! Structured output that degrades. Servers differ in what they take as
//! `response_format`: OpenAI, vLLM and recent llama.cpp take a strict
//! `json_schema`; llama-cpp-python and some older servers only
//! `json_object` (and answer a schema with HTTP 500 `Input should be 'text'
//! or 'json_object'`); some take nothing at all. So a structured request
//! tries [`StructuredMode::JsonSchema`] first and, when the server rejects
//! the format, `json_object` with the schema written into the prompt (first
//! with the schema also in `response_format`, which llama-cpp-python
//! enforces, then without), then [`StructuredMode::Text`] (schema in the prompt; callers
//! read the reply leniently with [`super::reply`]). What a server accepts is
//! remembered per base URL in a [`StructuredMemory`], so later calls start
//! at the mode that works and the failed ones are not repeated.
//!
//! The embedded model ignores all this: it enforces the schema with a
//! grammar.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::{ChatMessage, JsonSchema, Role};

/// How a structured reply is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StructuredMode {
    /// `response_format: {"type": "json_schema", …, "strict": true}`.
    JsonSchema,
    /// `response_format: {"type": "json_object", "schema": …}`, the schema
    /// also in the prompt: llama-cpp-python enforces that schema with a
    /// grammar; a server that refuses the extra key moves on to `JsonObject`.
    JsonObjectSchema,
    /// `response_format: {"type": "json_object"}`, the schema in the prompt.
    JsonObject,
    /// No `response_format`; the schema in the prompt.
    Text,
}

impl StructuredMode {
    /// The mode to try when the server rejects this one.
    pub fn fallback(self) -> Option<StructuredMode> {
        match self {
            StructuredMode::JsonSchema => Some(StructuredMode::JsonObjectSchema),
            StructuredMode::JsonObjectSchema => Some(StructuredMode::JsonObject),
            StructuredMode::JsonObject => Some(StructuredMode::Text),
            StructuredMode::Text => None,
        }
    }

    /// Whether the schema must be written into the prompt.
    pub fn schema_in_prompt(self) -> bool {
        self != StructuredMode::JsonSchema
    }

    pub fn label(self) -> &'static str {
        match self {
            StructuredMode::JsonSchema => "json_schema",
            StructuredMode::JsonObjectSchema => "json_object with a schema",
            StructuredMode::JsonObject => "json_object",
            StructuredMode::Text => "text",
        }
    }
}

/// What is known about one server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Known {
    pub mode: StructuredMode,
    /// The server answered a request in this mode (not just: the better
    /// modes were rejected).
    pub confirmed: bool,
}

impl Default for Known {
    fn default() -> Self {
        Known {
            mode: StructuredMode::JsonSchema,
            confirmed: false,
        }
    }
}

/// What each server (by base URL) accepts, for the life of the backend (one
/// per process: the session). Unknown servers are probed one request at a
/// time ([`StructuredMemory::probe_lock`]), so a batch that starts with ten
/// requests in flight sends the schema once, not ten times.
#[derive(Debug, Default)]
pub struct StructuredMemory {
    known: Mutex<HashMap<String, Known>>,
    probes: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

fn key(base_url: &str) -> String {
    base_url.trim_end_matches('/').to_string()
}

impl StructuredMemory {
    pub fn new() -> Self {
        Self::default()
    }

    /// What is known about this server (unconfirmed `JsonSchema` if nothing).
    pub fn known(&self, base_url: &str) -> Known {
        let known = self.known.lock().expect("structured memory lock");
        known.get(&key(base_url)).copied().unwrap_or_default()
    }

    /// The server answered a request in `mode`.
    pub fn confirm(&self, base_url: &str, mode: StructuredMode) {
        let mut known = self.known.lock().expect("structured memory lock");
        known.insert(
            key(base_url),
            Known {
                mode,
                confirmed: true,
            },
        );
    }

    /// The server rejected `mode`: later calls start at its fallback.
    /// Returns the new mode, or `None` when there is nothing left to try.
    /// Logs the downgrade once (a second caller that saw the same rejection
    /// finds it already done).
    pub fn reject(
        &self,
        base_url: &str,
        mode: StructuredMode,
        reason: &str,
    ) -> Option<StructuredMode> {
        let next = mode.fallback()?;
        let mut known = self.known.lock().expect("structured memory lock");
        let entry = known.entry(key(base_url)).or_default();
        if entry.mode == mode {
            *entry = Known {
                mode: next,
                confirmed: false,
            };
            tracing::warn!(
                target: "llm",
                server = %key(base_url),
                rejected = mode.label(),
                now = next.label(),
                %reason,
                "the server rejected this response format; asking with the schema in the prompt"
            );
        }
        Some(next)
    }

    /// Held while a request probes a mode not yet confirmed for the server.
    pub fn probe_lock(&self, base_url: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut probes = self.probes.lock().expect("structured probe lock");
        probes.entry(key(base_url)).or_default().clone()
    }
}

/// Whether an HTTP error says the server does not take this response
/// format: a 4xx or 5xx whose body names the format (`response_format`,
/// `json_schema`, `json_object`, a grammar or guided decoding, or pydantic's
/// "Input should be 'text' or …"), or a bare 400/422 with nothing else to
/// say. A 4xx about anything else (401, 404 model not found, a bad
/// `max_tokens`) is not: it would fail in every mode.
pub fn is_format_rejection(status: u16, body: &str) -> bool {
    if matches!(status, 401 | 402 | 403 | 404 | 408 | 413 | 429) {
        return false;
    }
    if !(400..600).contains(&status) {
        return false;
    }
    let body = body.to_lowercase();
    const NAMES: [&str; 11] = [
        "response_format",
        "response format",
        "json_schema",
        "json schema",
        "json_object",
        "schema",
        "grammar",
        "guided",
        "structured output",
        "'text'",
        "\"text\"",
    ];
    if NAMES.iter().any(|n| body.contains(n)) {
        return true;
    }
    let bare = body.trim().trim_matches(|c: char| !c.is_alphanumeric());
    (status == 400 || status == 422)
        && (bare.is_empty() || bare == "bad request" || bare == "unprocessable entity")
}

/// The instruction that carries the schema when the server does not
/// enforce it.
pub fn schema_instructions(schema: &JsonSchema) -> String {
    format!(
        "Reply with one JSON object and nothing else. It must follow this JSON schema \
(\"{}\"):\n{}",
        schema.name, schema.schema
    )
}

/// The messages with the schema written into the system message (one is
/// added at the front when there is none).
pub fn with_schema_in_prompt(messages: &[ChatMessage], schema: &JsonSchema) -> Vec<ChatMessage> {
    let mut messages = messages.to_vec();
    let instructions = schema_instructions(schema);
    match messages.iter_mut().find(|m| m.role == Role::System) {
        Some(system) => {
            system.content = format!("{}\n\n{instructions}", system.content.trim_end());
        }
        None => messages.insert(0, ChatMessage::system(instructions)),
    }
    messages
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn modes_degrade_schema_then_object_then_text() {
        assert_eq!(
            StructuredMode::JsonSchema.fallback(),
            Some(StructuredMode::JsonObjectSchema)
        );
        assert_eq!(
            StructuredMode::JsonObjectSchema.fallback(),
            Some(StructuredMode::JsonObject)
        );
        assert_eq!(
            StructuredMode::JsonObject.fallback(),
            Some(StructuredMode::Text)
        );
        assert_eq!(StructuredMode::Text.fallback(), None);
    }

    #[test]
    fn rejections_of_the_format_are_told_from_other_errors() {
        let pydantic = r#"{"detail":[{"type":"literal_error","loc":["body","response_format","type"],"msg":"Input should be 'text' or 'json_object'"}]}"#;
        assert!(is_format_rejection(500, pydantic));
        assert!(is_format_rejection(
            500,
            r#"{"detail":[{"msg":"Input should be 'text' or 'json_object'"}]}"#
        ));
        assert!(is_format_rejection(
            400,
            r#"{"error":{"message":"response_format json_schema is not supported"}}"#
        ));
        assert!(is_format_rejection(422, ""));
        assert!(is_format_rejection(400, "Bad Request"));
        // Not about the format: would fail in every mode.
        assert!(!is_format_rejection(500, "Internal Server Error"));
        assert!(!is_format_rejection(
            401,
            r#"{"error":{"message":"bad key json_schema"}}"#
        ));
        assert!(!is_format_rejection(
            404,
            r#"{"error":{"message":"model not found"}}"#
        ));
        assert!(!is_format_rejection(
            400,
            r#"{"error":{"message":"max_tokens is too large"}}"#
        ));
        assert!(!is_format_rejection(429, "json_schema"));
    }

    #[test]
    fn memory_downgrades_once_and_confirms() {
        let memory = StructuredMemory::new();
        let url = "http://127.0.0.1:8000/v1/";
        assert_eq!(memory.known(url), Known::default());
        assert_eq!(
            memory.reject(url, StructuredMode::JsonSchema, "500"),
            Some(StructuredMode::JsonObjectSchema)
        );
        // A second caller that saw the same rejection changes nothing.
        memory.reject(
            "http://127.0.0.1:8000/v1",
            StructuredMode::JsonSchema,
            "500",
        );
        assert_eq!(memory.known(url).mode, StructuredMode::JsonObjectSchema);
        assert!(!memory.known(url).confirmed);
        memory.confirm(url, StructuredMode::JsonObjectSchema);
        assert!(memory.known(url).confirmed);
        assert_eq!(memory.known("http://other/v1"), Known::default());
        assert_eq!(memory.reject(url, StructuredMode::Text, "x"), None);
    }

    #[test]
    fn the_schema_goes_into_the_system_message() {
        let schema = JsonSchema {
            name: "persona".into(),
            schema: json!({"type": "object"}),
        };
        let out = with_schema_in_prompt(
            &[ChatMessage::system("Be brief."), ChatMessage::user("hi")],
            &schema,
        );
        assert_eq!(out.len(), 2);
        assert!(out[0].content.starts_with("Be brief.\n\n"));
        assert!(out[0].content.contains(r#"{"type":"object"}"#));
        let out = with_schema_in_prompt(&[ChatMessage::user("hi")], &schema);
        assert_eq!(out[0].role, Role::System);
        assert!(out[0].content.contains("persona"));
    }
}
