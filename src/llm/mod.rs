//! LLM backends behind one streaming trait.

pub mod cache;
pub mod fetch;
pub mod gated;
pub mod gguf;
pub mod grammar;
#[cfg(feature = "local")]
pub mod local;
pub mod openai;
pub mod pricing;
pub mod reply;
pub mod structured;

use std::fmt;
use std::pin::Pin;
use std::time::Duration;

use futures::Stream;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChatMessage {
    pub role: Role,
    pub content: String,
}

impl ChatMessage {
    pub fn system(content: impl Into<String>) -> Self {
        ChatMessage {
            role: Role::System,
            content: content.into(),
        }
    }
    pub fn user(content: impl Into<String>) -> Self {
        ChatMessage {
            role: Role::User,
            content: content.into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ChatRequest {
    pub messages: Vec<ChatMessage>,
    /// Upper bound on the reply's length in tokens.
    pub max_tokens: u32,
    /// Ask for JSON matching this schema (OpenAI structured outputs). A
    /// backend that cannot enforce it ignores it; callers parse leniently.
    pub json_schema: Option<JsonSchema>,
    /// What the call is for (metrics and logs).
    pub purpose: Purpose,
    /// 0, then 1, 2 … when the same turn is asked again (a reply that
    /// spoke only for someone else). A fixed seed is moved by it, so the
    /// retry draws differently and a rerun draws the same way again.
    pub attempt: u32,
    /// Whose turn this is, for a backend that can steer its sampler by it.
    pub names: Option<TurnNames>,
}

/// The speaker of a persona's turn and the others at the table. A small
/// model opens a turn with a speaker's label, introduces itself as someone
/// else or calls itself by name; the local model draws no name in a
/// turn's first tokens and never its own. A server cannot be steered so,
/// and the debate asks a turn that spoke only for someone else again.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TurnNames {
    pub own: String,
    pub others: Vec<String>,
}

impl ChatRequest {
    pub fn new(messages: Vec<ChatMessage>, max_tokens: u32) -> Self {
        ChatRequest {
            messages,
            max_tokens,
            json_schema: None,
            purpose: Purpose::Turn,
            attempt: 0,
            names: None,
        }
    }

    /// The seed this request samples with, from the run's fixed seed.
    pub fn seed(&self, base: Option<u32>) -> Option<u32> {
        base.map(|s| s.wrapping_add(self.attempt))
    }
}

/// What a chat call is for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Purpose {
    /// A persona's turn or follow-up answer.
    #[default]
    Turn,
    Report,
    Synthesis,
}

/// A named JSON schema for a structured reply.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonSchema {
    pub name: String,
    pub schema: serde_json::Value,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
}

impl Usage {
    pub fn total(&self) -> u32 {
        self.prompt_tokens + self.completion_tokens
    }
}

impl std::ops::AddAssign for Usage {
    fn add_assign(&mut self, other: Usage) {
        self.prompt_tokens += other.prompt_tokens;
        self.completion_tokens += other.completion_tokens;
    }
}

/// One piece of a streamed reply.
#[derive(Debug, Clone, PartialEq)]
pub enum ChatChunk {
    Text(String),
    Usage(Usage),
    /// Why the reply ended, when the backend says (`finish_reason`).
    Finish(FinishReason),
    /// The model the server says answered (it may differ from the one
    /// asked for, e.g. a server that serves one model whatever the name).
    Model(String),
}

/// Why a reply ended.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// The model finished on its own.
    Stop,
    /// It hit the token limit: the text may end mid-sentence.
    Length,
    /// Anything else a server reports (`content_filter`, `tool_calls`, …).
    Other(String),
}

impl FinishReason {
    /// From an OpenAI-style `finish_reason` string.
    pub fn parse(reason: &str) -> FinishReason {
        match reason {
            "stop" | "eos" | "end_turn" | "stop_sequence" => FinishReason::Stop,
            "length" | "max_tokens" | "model_length" => FinishReason::Length,
            other => FinishReason::Other(other.to_string()),
        }
    }
}

/// Every way a chat call can fail, worded for the person reading it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LlmError {
    #[error("no LLM backend is configured: {0}")]
    NotConfigured(String),
    #[error("cannot reach {url}: {detail}")]
    Connect { url: String, detail: String },
    /// An HTTP error: `message` is the server's own words (one line, capped),
    /// `server` its host:port.
    #[error("{}", http_line(*.status, .message, .server))]
    Http {
        status: u16,
        message: String,
        server: String,
    },
    #[error("no reply from the model within {}s", .0.as_secs())]
    FirstTokenTimeout(Duration),
    #[error("the stream stalled: nothing received for {}s", .0.as_secs())]
    Stalled(Duration),
    #[error("the connection broke mid-reply: {0}")]
    StreamBroken(String),
    #[error("the server sent a malformed chunk: {0}")]
    Malformed(String),
    #[error("the server reported an error: {0}")]
    Server(String),
    #[error("the server closed the stream before the reply was finished")]
    EndedEarly,
    #[error("local model: {0}")]
    Model(String),
    /// The server could not fit the prompt in its context window: it said
    /// so, or it sent an empty or cut stream right after a long prompt.
    #[error("the prompt is too long for this server's context ({prompt_tokens_estimate} tokens{})",
        context_phrase(*.context))]
    ContextOverflow {
        /// The prompt's size by estimate ([`estimate_tokens`]).
        prompt_tokens_estimate: u32,
        /// The server's context in tokens, when known.
        context: Option<u32>,
    },
}

fn context_phrase(context: Option<u32>) -> String {
    match context {
        Some(ctx) => format!("; it holds {ctx}"),
        None => String::new(),
    }
}

/// Characters per token when a prompt's size is estimated (the same
/// conservative ratio the prompts are planned with).
pub const CHARS_PER_TOKEN_ESTIMATE: usize = 3;

/// A prompt's size in tokens, by estimate: its characters over
/// [`CHARS_PER_TOKEN_ESTIMATE`], plus a few tokens of template per message.
pub fn estimate_tokens(messages: &[ChatMessage]) -> u32 {
    let chars: usize = messages.iter().map(|m| m.content.chars().count()).sum();
    (chars.div_ceil(CHARS_PER_TOKEN_ESTIMATE) + 4 * messages.len()) as u32
}

/// "the server at 127.0.0.1:8000 answered HTTP 500: Input should be …".
fn http_line(status: u16, message: &str, server: &str) -> String {
    let who = if server.is_empty() {
        "the server".to_string()
    } else {
        format!("the server at {server}")
    };
    if message.is_empty() {
        format!("{who} answered HTTP {status}")
    } else {
        format!("{who} answered HTTP {status}: {message}")
    }
}

pub type ChatStream = Pin<Box<dyn Stream<Item = Result<ChatChunk, LlmError>> + Send>>;

/// An error and its sources, "outer: inner: root", so the root cause of a
/// network failure (DNS, refused, reset) reaches the user.
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        message = format!("{message}: {inner}");
        source = inner.source();
    }
    message
}

/// What the status bar shows about the live backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendInfo {
    /// "openai" or "local".
    pub kind: &'static str,
    pub model: String,
    /// Where requests go (base URL or model path).
    pub endpoint: String,
}

impl fmt::Display for BackendInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} · {}", self.kind, self.model)
    }
}

/// A chat model that streams its reply. Dropping the stream cancels the call.
/// The sampling settings a backend sends or uses, for a run's record and
/// the response cache's key; `None` where it leaves the choice to the model.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Sampling {
    pub temperature: Option<f32>,
    pub seed: Option<u64>,
}

pub trait ChatBackend: Send + Sync {
    fn info(&self) -> BackendInfo;
    /// How it samples (a wrapper says what its inner backend does).
    fn sampling(&self) -> Sampling {
        Sampling::default()
    }
    fn stream(&self, request: ChatRequest) -> ChatStream;
    /// The context size in tokens when it is small enough to plan prompts
    /// around (the local model); `None` for large hosted models.
    fn context_window(&self) -> Option<u32> {
        None
    }
    /// [`Self::context_window`], after asking the server once when it can
    /// say (an OpenAI-compatible server's `/models` or `/props`). Cached:
    /// later calls, and `context_window`, answer at once. Call it before
    /// planning the first prompt of a run.
    fn discover_context(&self) -> futures::future::BoxFuture<'_, Option<u32>> {
        Box::pin(std::future::ready(self.context_window()))
    }
}

/// Which LLM the app talks to.
#[derive(Debug, Clone)]
pub enum BackendChoice {
    OpenAi(openai::OpenAiSettings),
    /// The embedded GGUF model.
    Local {
        model_path: std::path::PathBuf,
        temperature: f32,
        /// The sampler's seed (`--seed`); random when `None`.
        seed: Option<u32>,
    },
    /// Nothing that can run: the app starts, and says how to configure one.
    None,
}

/// Whether this binary was built with the embedded model.
pub const LOCAL_AVAILABLE: bool = cfg!(feature = "local");

impl BackendChoice {
    /// The live backend, or `None` when nothing is configured. The local
    /// model is loaded on first use, so this never blocks.
    pub fn build(&self) -> Option<std::sync::Arc<dyn ChatBackend>> {
        match self {
            BackendChoice::OpenAi(s) => {
                Some(std::sync::Arc::new(openai::OpenAiBackend::new(s.clone())))
            }
            #[cfg(feature = "local")]
            BackendChoice::Local {
                model_path,
                temperature,
                seed,
            } => Some(std::sync::Arc::new(local::LocalBackend::new(
                local::LocalSettings {
                    seed: *seed,
                    ..local::LocalSettings::new(model_path.clone(), *temperature)
                },
            ))),
            #[cfg(not(feature = "local"))]
            BackendChoice::Local { .. } => None,
            BackendChoice::None => None,
        }
    }

    /// The local model's path when it is the backend and not installed yet.
    pub fn missing_local_model(&self) -> Option<&std::path::Path> {
        match self {
            BackendChoice::Local { model_path, .. } if !model_path.exists() => Some(model_path),
            _ => None,
        }
    }
}
