//! OpenAI and OpenAI-compatible servers over async-openai's streaming API.
//!
//! Strict in what we send (the typed request), forgiving in what we accept:
//! chunks are parsed into lenient local types, usage may never come, SSE
//! comments are skipped, and a stream may end without `[DONE]` once the
//! server has said why it finished.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use async_openai::Client;
use async_openai::config::OpenAIConfig;
use async_openai::error::{ApiError, ApiErrorResponse, OpenAIError};
use async_openai::middleware::retry::OpenAIRetryLayer;
use async_openai::middleware::{HttpRequestFactory, ReqwestService};
use async_openai::types::chat::{
    ChatCompletionRequestMessage, ChatCompletionRequestSystemMessage,
    ChatCompletionRequestUserMessage, ChatCompletionStreamOptions, CreateChatCompletionRequest,
    ResponseFormat, ResponseFormatJsonSchema,
};
use futures::StreamExt;
use serde::Deserialize;
use tokio::time::Instant;

use super::structured::{
    StructuredMemory, StructuredMode, is_format_rejection, with_schema_in_prompt,
};
use super::{
    BackendInfo, ChatBackend, ChatChunk, ChatRequest, ChatStream, FinishReason, LlmError, Role,
    Usage, error_chain, estimate_tokens,
};

pub const OPENAI_BASE_URL: &str = "https://api.openai.com/v1";
pub const DEFAULT_MODEL: &str = "gpt-4o-mini";

/// A hosted or local service with an OpenAI-compatible chat endpoint, chosen
/// by name (`--provider`): where it is, which environment variable holds its
/// key, and a model to ask for when none is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    OpenAi,
    Anthropic,
    Gemini,
    Ollama,
    OpenRouter,
    LmStudio,
    Vllm,
}

impl Provider {
    pub const ALL: [Provider; 7] = [
        Provider::OpenAi,
        Provider::Anthropic,
        Provider::Gemini,
        Provider::Ollama,
        Provider::OpenRouter,
        Provider::LmStudio,
        Provider::Vllm,
    ];

    /// The name on the command line and in the config file.
    pub fn name(self) -> &'static str {
        match self {
            Provider::OpenAi => "openai",
            Provider::Anthropic => "anthropic",
            Provider::Gemini => "gemini",
            Provider::Ollama => "ollama",
            Provider::OpenRouter => "openrouter",
            Provider::LmStudio => "lmstudio",
            Provider::Vllm => "vllm",
        }
    }

    pub fn from_name(name: &str) -> Option<Provider> {
        let name = name.trim().to_ascii_lowercase();
        Provider::ALL.into_iter().find(|p| p.name() == name)
    }

    /// The base URL of its OpenAI-compatible API.
    pub fn base_url(self) -> &'static str {
        match self {
            Provider::OpenAi => OPENAI_BASE_URL,
            Provider::Anthropic => "https://api.anthropic.com/v1",
            Provider::Gemini => "https://generativelanguage.googleapis.com/v1beta/openai",
            Provider::Ollama => "http://localhost:11434/v1",
            Provider::OpenRouter => "https://openrouter.ai/api/v1",
            Provider::LmStudio => "http://localhost:1234/v1",
            Provider::Vllm => "http://localhost:8000/v1",
        }
    }

    /// The environment variable its key is read from; `None` for local
    /// servers, which take no key.
    pub fn key_var(self) -> Option<&'static str> {
        match self {
            Provider::OpenAi => Some("OPENAI_API_KEY"),
            Provider::Anthropic => Some("ANTHROPIC_API_KEY"),
            Provider::Gemini => Some("GEMINI_API_KEY"),
            Provider::OpenRouter => Some("OPENROUTER_API_KEY"),
            Provider::Ollama | Provider::LmStudio | Provider::Vllm => None,
        }
    }

    /// The model asked for unless `--model` names another: a small, cheap
    /// one on hosted services; on local servers a common one to pull, which
    /// `--model` must change to whatever the server has loaded.
    pub fn default_model(self) -> &'static str {
        match self {
            Provider::OpenAi => DEFAULT_MODEL,
            Provider::Anthropic => "claude-haiku-4-5",
            Provider::Gemini => "gemini-2.5-flash",
            Provider::Ollama => "llama3.2",
            Provider::OpenRouter => "openai/gpt-4o-mini",
            Provider::LmStudio => "qwen2.5-7b-instruct",
            Provider::Vllm => "Qwen/Qwen2.5-7B-Instruct",
        }
    }
}

#[derive(Clone)]
pub struct OpenAiSettings {
    pub api_key: Option<String>,
    pub base_url: String,
    pub model: String,
    pub temperature: f32,
    pub first_token_timeout: Duration,
    pub stall_timeout: Duration,
    /// The server's context size in tokens, when the user says
    /// (`--context-tokens`); otherwise it is asked of the server once.
    pub context_tokens: Option<u32>,
    /// Sent as `seed` when set (`--seed`): servers that honour it sample
    /// reproducibly; nothing is sent otherwise.
    pub seed: Option<u32>,
}

impl fmt::Debug for OpenAiSettings {
    // The key never reaches a log or a panic message.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiSettings")
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .field("temperature", &self.temperature)
            .field("first_token_timeout", &self.first_token_timeout)
            .field("stall_timeout", &self.stall_timeout)
            .field("context_tokens", &self.context_tokens)
            .field("seed", &self.seed)
            .finish()
    }
}

pub struct OpenAiBackend {
    /// Retries 429, 5xx and refused connections with backoff (async-openai's
    /// retry layer, 3 retries).
    client: Client<OpenAIConfig>,
    /// No retries: for a structured request in a mode the server has not
    /// confirmed yet, whose rejection (often an HTTP 500) must be answered
    /// at once, not after three retries.
    probe_client: Client<OpenAIConfig>,
    settings: OpenAiSettings,
    /// For the context discovery requests.
    http: reqwest::Client,
    /// What the server said its context is (`None` inside: it did not
    /// say); empty until [`ChatBackend::discover_context`] first runs.
    discovered: Arc<tokio::sync::OnceCell<Option<u32>>>,
    /// What response format this server takes, learnt as the session goes.
    structured: Arc<StructuredMemory>,
}

impl OpenAiBackend {
    pub fn new(settings: OpenAiSettings) -> Self {
        let mut config = OpenAIConfig::new().with_api_base(settings.base_url.trim_end_matches('/'));
        // Local servers need no key, but async-openai always sends the header;
        // an empty bearer token is what they expect.
        config = config.with_api_key(settings.api_key.clone().unwrap_or_default());
        let http = reqwest_client(settings.first_token_timeout);
        let discovery_http = http.clone();
        let retrying = HttpErrors(tower::Layer::layer(
            &OpenAIRetryLayer::default(),
            ReqwestService::new(http.clone()),
        ));
        let once = HttpErrors(ReqwestService::new(http));
        OpenAiBackend {
            client: Client::with_config(config.clone()).with_http_service(retrying),
            probe_client: Client::with_config(config).with_http_service(once),
            settings,
            http: discovery_http,
            discovered: Arc::new(tokio::sync::OnceCell::new()),
            structured: Arc::new(StructuredMemory::new()),
        }
    }

    /// The context size from the flag or the server, whatever its size.
    fn known_context(&self) -> Option<u32> {
        self.settings
            .context_tokens
            .or_else(|| self.discovered.get().copied().flatten())
    }

    fn is_openai_itself(&self) -> bool {
        self.settings.base_url.trim_end_matches('/') == OPENAI_BASE_URL
    }

    /// The request as it would be sent now (in the response format this
    /// server is known to take).
    #[cfg(test)]
    fn build_request(&self, request: &ChatRequest) -> CreateChatCompletionRequest {
        let mode = request
            .json_schema
            .as_ref()
            .map(|_| self.structured.known(&self.settings.base_url).mode);
        build_body(&self.settings, request, mode)
    }
}

fn is_openai_itself(settings: &OpenAiSettings) -> bool {
    settings.base_url.trim_end_matches('/') == OPENAI_BASE_URL
}

/// The typed request; `mode` says how a structured reply is asked for.
fn build_body(
    settings: &OpenAiSettings,
    request: &ChatRequest,
    mode: Option<StructuredMode>,
) -> CreateChatCompletionRequest {
    let prompt = match (&request.json_schema, mode) {
        (Some(schema), Some(mode)) if mode.schema_in_prompt() => {
            with_schema_in_prompt(&request.messages, schema)
        }
        _ => request.messages.clone(),
    };
    let messages = prompt
        .iter()
        .map(|m| match m.role {
            Role::System => ChatCompletionRequestMessage::System(
                ChatCompletionRequestSystemMessage::from(m.content.as_str()),
            ),
            Role::User => ChatCompletionRequestMessage::User(
                ChatCompletionRequestUserMessage::from(m.content.as_str()),
            ),
            Role::Assistant => ChatCompletionRequestMessage::Assistant(m.content.as_str().into()),
        })
        .collect();
    let response_format = match (&request.json_schema, mode) {
        (Some(s), Some(StructuredMode::JsonSchema)) => Some(ResponseFormat::JsonSchema {
            json_schema: ResponseFormatJsonSchema {
                description: None,
                name: s.name.clone(),
                schema: s.schema.clone(),
                strict: Some(true),
            },
        }),
        (Some(_), Some(StructuredMode::JsonObject | StructuredMode::JsonObjectSchema)) => {
            Some(ResponseFormat::JsonObject)
        }
        _ => None,
    };
    let mut body = CreateChatCompletionRequest {
        model: settings.model.clone(),
        messages,
        stream: Some(true),
        stream_options: Some(ChatCompletionStreamOptions {
            include_usage: Some(true),
            include_obfuscation: None,
        }),
        temperature: Some(settings.temperature),
        response_format,
        ..Default::default()
    };
    // OpenAI marks `seed` deprecated (it was always best effort there);
    // vLLM, llama.cpp's server and Ollama sample by it.
    #[allow(deprecated)]
    {
        body.seed = request.seed(settings.seed).map(i64::from);
    }
    // OpenAI deprecated `max_tokens`; most compatible servers only know it.
    if is_openai_itself(settings) {
        body.max_completion_tokens = Some(request.max_tokens);
    } else {
        #[allow(deprecated)]
        {
            body.max_tokens = Some(request.max_tokens);
        }
    }
    body
}

/// The body as sent: the typed request, plus the `schema` key in a
/// `json_object` response format (which the typed request cannot carry).
fn request_body(
    settings: &OpenAiSettings,
    request: &ChatRequest,
    mode: Option<StructuredMode>,
) -> serde_json::Value {
    let typed = build_body(settings, request, mode);
    let mut body = serde_json::to_value(typed).expect("a chat request serializes");
    if let (Some(schema), Some(StructuredMode::JsonObjectSchema)) = (&request.json_schema, mode) {
        body["response_format"] = serde_json::json!({
            "type": "json_object",
            "schema": schema.schema,
        });
    }
    body
}

/// The HTTP layer under async-openai: every non-success response becomes an
/// `ApiError` that keeps the status and the whole body, whatever its shape
/// (async-openai itself keeps the status only for OpenAI-shaped bodies and
/// 5xx), so errors can be read and classified here.
#[derive(Clone)]
struct HttpErrors<S>(S);

type HttpFuture =
    Pin<Box<dyn Future<Output = Result<reqwest::Response, OpenAIError>> + Send + 'static>>;

impl<S> tower::Service<HttpRequestFactory> for HttpErrors<S>
where
    S: tower::Service<HttpRequestFactory, Response = reqwest::Response, Error = OpenAIError>,
    S::Future: Send + 'static,
{
    type Response = reqwest::Response;
    type Error = OpenAIError;
    type Future = HttpFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), OpenAIError>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: HttpRequestFactory) -> HttpFuture {
        let sent = self.0.call(request);
        Box::pin(async move {
            let response = sent.await?;
            let status = response.status();
            if status.is_success() {
                return Ok(response);
            }
            let body = response.text().await.unwrap_or_default();
            Err(OpenAIError::ApiError(ApiErrorResponse {
                status_code: status,
                api_error: ApiError {
                    message: body,
                    ..ApiError::default()
                },
            }))
        })
    }
}

/// Connect timeout only: a whole-request timeout would cut long streams.
fn reqwest_client(connect_timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(connect_timeout)
        .build()
        .expect("a reqwest client with default TLS builds")
}

impl ChatBackend for OpenAiBackend {
    fn info(&self) -> BackendInfo {
        BackendInfo {
            kind: "openai",
            model: self.settings.model.clone(),
            endpoint: self.settings.base_url.clone(),
        }
    }

    fn sampling(&self) -> super::Sampling {
        super::Sampling {
            temperature: Some(self.settings.temperature),
            seed: self.settings.seed.map(u64::from),
        }
    }

    fn context_window(&self) -> Option<u32> {
        // Told by the user: always planned around. Discovered: only when
        // small enough to matter (a 128k window needs no trimming, and
        // callers treat a known window as a small model's).
        self.settings.context_tokens.or_else(|| {
            self.discovered
                .get()
                .copied()
                .flatten()
                .filter(|&ctx| ctx <= PLANNED_CONTEXT_MAX)
        })
    }

    fn discover_context(&self) -> futures::future::BoxFuture<'_, Option<u32>> {
        Box::pin(async move {
            if self.settings.context_tokens.is_none() && !self.is_openai_itself() {
                self.discovered
                    .get_or_init(|| discover_context(&self.http, &self.settings))
                    .await;
            }
            self.context_window()
        })
    }

    fn stream(&self, request: ChatRequest) -> ChatStream {
        let overflow = OverflowCheck {
            prompt_tokens_estimate: estimate_tokens(&request.messages),
            context: self.known_context(),
        };
        let settings = self.settings.clone();
        let state = State::Connecting(Box::new(Connect {
            client: self.client.clone(),
            probe_client: self.probe_client.clone(),
            memory: self.structured.clone(),
            request,
        }));
        let mut got_text = false;
        Box::pin(
            futures::stream::unfold((state, settings), |(state, settings)| async move {
                step(state, &settings)
                    .await
                    .map(|(item, s)| (item, (s, settings)))
            })
            .map(move |item| {
                if let Ok(ChatChunk::Text(_)) = &item {
                    got_text = true;
                }
                item.map_err(|e| overflow.classify(e, got_text))
            }),
        )
    }
}

/// A discovered context above this is treated like a hosted model's: not
/// planned around.
pub const PLANNED_CONTEXT_MAX: u32 = 16_384;
/// How long asking a server for its context may take.
const DISCOVERY_TIMEOUT: Duration = Duration::from_millis(1500);
/// An empty or cut stream after a prompt this large (by estimate) is taken
/// for a context overflow when the server's context is not known.
const LARGE_PROMPT_TOKENS: u32 = 1500;

/// Asks the server for its context size, where servers say: vLLM (and
/// others) in `GET {base}/models` as `max_model_len`; llama.cpp's server
/// in `GET {base without /v1}/props` as `default_generation_settings.n_ctx`.
/// Both at once, each with a short timeout; `None` when neither says.
async fn discover_context(http: &reqwest::Client, settings: &OpenAiSettings) -> Option<u32> {
    let base = settings.base_url.trim_end_matches('/');
    let root = base.strip_suffix("/v1").unwrap_or(base);
    let get = |url: String| async move {
        let mut request = http.get(&url).timeout(DISCOVERY_TIMEOUT);
        if let Some(key) = &settings.api_key {
            request = request.bearer_auth(key);
        }
        let response = request.send().await.ok()?;
        if !response.status().is_success() {
            return None;
        }
        let bytes = response.bytes().await.ok()?;
        serde_json::from_slice::<serde_json::Value>(&bytes).ok()
    };
    let (models, props) = tokio::join!(get(format!("{base}/models")), get(format!("{root}/props")));
    let found = models
        .and_then(|m| context_from_models(&m, &settings.model))
        .or_else(|| props.and_then(|p| context_from_props(&p)));
    tracing::info!(target: "llm", base_url = %base, context = ?found, "context discovery");
    found
}

/// `max_model_len` (vLLM) or `context_length` of the model asked for, else
/// of the only model listed.
fn context_from_models(models: &serde_json::Value, model: &str) -> Option<u32> {
    let entries = models.get("data")?.as_array()?;
    let entry = entries
        .iter()
        .find(|e| e.get("id").and_then(|id| id.as_str()) == Some(model))
        .or_else(|| (entries.len() == 1).then(|| &entries[0]))?;
    ["max_model_len", "context_length", "context_window"]
        .iter()
        .find_map(|key| entry.get(*key).and_then(serde_json::Value::as_u64))
        .and_then(|n| u32::try_from(n).ok())
        .filter(|&n| n > 0)
}

/// llama.cpp server's `/props`: `default_generation_settings.n_ctx` (or a
/// top-level `n_ctx` in some versions).
fn context_from_props(props: &serde_json::Value) -> Option<u32> {
    props
        .pointer("/default_generation_settings/n_ctx")
        .or_else(|| props.get("n_ctx"))
        .and_then(serde_json::Value::as_u64)
        .and_then(|n| u32::try_from(n).ok())
        .filter(|&n| n > 0)
}

/// Turns a server's way of saying "context overflow" into
/// [`LlmError::ContextOverflow`].
#[derive(Debug, Clone, Copy)]
struct OverflowCheck {
    prompt_tokens_estimate: u32,
    /// The server's context when known (flag or discovery).
    context: Option<u32>,
}

impl OverflowCheck {
    fn classify(&self, error: LlmError, got_text: bool) -> LlmError {
        let overflow = |context: Option<u32>| LlmError::ContextOverflow {
            prompt_tokens_estimate: self.prompt_tokens_estimate,
            context: context.or(self.context),
        };
        match error {
            // An error body in a shape async-openai does not know (vLLM's
            // top-level `message`) arrives as `Malformed`.
            LlmError::Http { ref message, .. }
            | LlmError::Server(ref message)
            | LlmError::Malformed(ref message) => match overflow_in_message(message) {
                // The server's own count beats our estimate.
                Some(context) => LlmError::ContextOverflow {
                    prompt_tokens_estimate: prompt_tokens_in_message(message)
                        .unwrap_or(self.prompt_tokens_estimate),
                    context: context.or(self.context),
                },
                None => error,
            },
            // An empty or cut stream is an overflow only right after a
            // long prompt; otherwise it is what it says.
            LlmError::EndedEarly | LlmError::StreamBroken(_)
                if !got_text && self.prompt_is_large() =>
            {
                overflow(None)
            }
            other => other,
        }
    }

    fn prompt_is_large(&self) -> bool {
        match self.context {
            // No room left for a reply either.
            Some(ctx) => self.prompt_tokens_estimate >= ctx / 4 * 3,
            None => self.prompt_tokens_estimate > LARGE_PROMPT_TOKENS,
        }
    }
}

/// Whether an error message says the prompt did not fit, and the context
/// size when it names it (`Some(None)`: overflow, size not given). Knows
/// llama.cpp ("the request exceeds the available context size"), vLLM
/// and OpenAI ("maximum context length is N tokens"), llama-cpp-python
/// ("Requested tokens (N) exceed context window of M") and LM Studio
/// ("…context length of only N tokens").
fn overflow_in_message(message: &str) -> Option<Option<u32>> {
    let lower = message.to_lowercase();
    let says = [
        "exceeds the available context size",
        "exceed_context_size",
        "maximum context length",
        "context_length_exceeded",
        "exceed context window",
        "exceeds context window",
        "context length of only",
        "context window exceeded",
        "prompt is too long",
    ]
    .iter()
    .any(|phrase| lower.contains(phrase));
    if !says {
        return None;
    }
    let context = [
        "maximum context length is",
        "context window of",
        "context length of only",
        "n_ctx",
        "context size of",
    ]
    .iter()
    .find_map(|phrase| number_after(&lower, phrase));
    Some(context)
}

/// The prompt's size when the server's message states it: llama-cpp-python
/// ("Requested tokens (4100) exceed…"), OpenAI and vLLM ("your messages
/// resulted in 4100 tokens"), newer llama.cpp ("request (4100 tokens)").
fn prompt_tokens_in_message(message: &str) -> Option<u32> {
    let lower = message.to_lowercase();
    ["requested tokens", "resulted in", "request ("]
        .iter()
        .find_map(|phrase| number_after(&lower, phrase))
}

/// The first whole number in the few characters after `phrase`.
fn number_after(text: &str, phrase: &str) -> Option<u32> {
    let start = text.find(phrase)? + phrase.len();
    let rest: String = text[start..].chars().take(12).collect();
    let digits: String = rest
        .chars()
        .skip_while(|c| !c.is_ascii_digit())
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok().filter(|&n| n > 0)
}

/// What opening a stream needs.
struct Connect {
    client: Client<OpenAIConfig>,
    probe_client: Client<OpenAIConfig>,
    memory: Arc<StructuredMemory>,
    request: ChatRequest,
}

/// An HTTP error's status and raw body, to classify it.
fn http_failure(error: &OpenAIError) -> Option<(u16, String)> {
    match error {
        OpenAIError::ApiError(e) => Some((e.status_code.as_u16(), e.api_error.message.clone())),
        _ => None,
    }
}

type Opened = Result<RawStream, (LlmError, Option<(u16, String)>)>;

async fn open(
    client: &Client<OpenAIConfig>,
    body: serde_json::Value,
    deadline: Instant,
    settings: &OpenAiSettings,
) -> Opened {
    let chat = client.chat();
    let connect = chat.create_stream_byot::<_, WireChunk>(body);
    match tokio::time::timeout_at(deadline, connect).await {
        Err(_) => Err((
            LlmError::FirstTokenTimeout(settings.first_token_timeout),
            None,
        )),
        Ok(Err(e)) => {
            let raw = http_failure(&e);
            Err((map_error(e, &settings.base_url), raw))
        }
        Ok(Ok(inner)) => Ok(inner),
    }
}

/// Opens the stream. A structured request starts in the mode this server is
/// known to take; while that mode is unconfirmed it is sent without retries
/// (one probe at a time per server), and a rejection of the format moves to
/// the next mode at once. Any other error surfaces as it is.
async fn connect(c: Connect, settings: &OpenAiSettings) -> Result<RawStream, LlmError> {
    // Retries of 429/5xx with backoff happen inside async-openai, before
    // any token; the first-token budget covers them all.
    let deadline = Instant::now() + settings.first_token_timeout;
    if c.request.json_schema.is_none() {
        let body = request_body(settings, &c.request, None);
        return open(&c.client, body, deadline, settings)
            .await
            .map_err(|(e, _)| e);
    }
    let base = settings.base_url.as_str();
    let mut probing = None;
    loop {
        let known = c.memory.known(base);
        if !known.confirmed && probing.is_none() {
            let lock = c.memory.probe_lock(base);
            match tokio::time::timeout_at(deadline, lock.lock_owned()).await {
                Ok(guard) => probing = Some(guard),
                Err(_) => return Err(LlmError::FirstTokenTimeout(settings.first_token_timeout)),
            }
            // Another request may have learnt something meanwhile.
            continue;
        }
        let mode = known.mode;
        let body = request_body(settings, &c.request, Some(mode));
        let client = if known.confirmed {
            &c.client
        } else {
            &c.probe_client
        };
        let error = match open(client, body.clone(), deadline, settings).await {
            Ok(inner) => {
                c.memory.confirm(base, mode);
                return Ok(inner);
            }
            Err((error, Some((status, raw)))) if is_format_rejection(status, &raw) => {
                match c.memory.reject(base, mode, &error.to_string()) {
                    Some(_) => continue,
                    None => return Err(error),
                }
            }
            Err((error, _)) => error,
        };
        let busy = matches!(
            error,
            LlmError::Http {
                status: 429 | 500..=599,
                ..
            } | LlmError::Connect { .. }
        );
        if known.confirmed || !busy {
            return Err(error);
        }
        // Busy or down, not about the format: what the retrying client
        // would have done from the start.
        drop(probing.take());
        return match open(&c.client, body, deadline, settings).await {
            Ok(inner) => {
                c.memory.confirm(base, mode);
                Ok(inner)
            }
            Err((error, _)) => Err(error),
        };
    }
}

type RawStream = async_openai::types::stream::StreamResponse<WireChunk>;

enum State {
    Connecting(Box<Connect>),
    Streaming {
        inner: RawStream,
        pending: VecDeque<ChatChunk>,
        got_text: bool,
        finished: bool,
        /// The server's model name has been passed on.
        named_model: bool,
    },
    Done,
}

async fn step(
    state: State,
    settings: &OpenAiSettings,
) -> Option<(Result<ChatChunk, LlmError>, State)> {
    let (mut inner, mut pending, mut got_text, mut finished, mut named_model) = match state {
        State::Done => return None,
        State::Connecting(c) => match connect(*c, settings).await {
            Err(error) => return Some((Err(error), State::Done)),
            Ok(inner) => (inner, VecDeque::new(), false, false, false),
        },
        State::Streaming {
            inner,
            pending,
            got_text,
            finished,
            named_model,
        } => (inner, pending, got_text, finished, named_model),
    };
    loop {
        if let Some(chunk) = pending.pop_front() {
            let next = State::Streaming {
                inner,
                pending,
                got_text,
                finished,
                named_model,
            };
            return Some((Ok(chunk), next));
        }
        let (limit, on_timeout) = if got_text {
            (
                settings.stall_timeout,
                LlmError::Stalled(settings.stall_timeout),
            )
        } else {
            (
                settings.first_token_timeout,
                LlmError::FirstTokenTimeout(settings.first_token_timeout),
            )
        };
        let item = match tokio::time::timeout(limit, inner.next()).await {
            Err(_) => return Some((Err(on_timeout), State::Done)),
            Ok(item) => item,
        };
        match item {
            None if finished => return None,
            None => return Some((Err(LlmError::EndedEarly), State::Done)),
            Some(Err(e)) => return Some((Err(map_error(e, &settings.base_url)), State::Done)),
            Some(Ok(chunk)) => {
                if let Some(error) = chunk.error {
                    let message = one_line(&error_message(&error));
                    return Some((Err(LlmError::Server(message)), State::Done));
                }
                if let Some(model) = chunk.model.filter(|m| !m.is_empty())
                    && !named_model
                {
                    named_model = true;
                    pending.push_back(ChatChunk::Model(model));
                }
                for choice in chunk.choices {
                    if let Some(text) = choice.delta.and_then(|d| d.content)
                        && !text.is_empty()
                    {
                        got_text = true;
                        pending.push_back(ChatChunk::Text(text));
                    }
                    if let Some(reason) = choice.finish_reason.filter(|r| !r.is_empty()) {
                        finished = true;
                        pending.push_back(ChatChunk::Finish(FinishReason::parse(&reason)));
                    }
                }
                if let Some(u) = chunk.usage {
                    pending.push_back(ChatChunk::Usage(Usage {
                        prompt_tokens: u.prompt_tokens,
                        completion_tokens: u.completion_tokens,
                    }));
                }
            }
        }
    }
}

/// A streamed chunk as compatible servers actually send it: every field
/// optional, unknown fields ignored.
#[derive(Debug, Deserialize)]
struct WireChunk {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    choices: Vec<WireChoice>,
    #[serde(default)]
    usage: Option<WireUsage>,
    #[serde(default)]
    error: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
struct WireChoice {
    #[serde(default)]
    delta: Option<WireDelta>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Debug, Deserialize)]
struct WireDelta {
    #[serde(default)]
    content: Option<String>,
}

#[derive(Debug, Deserialize)]
struct WireUsage {
    #[serde(default)]
    prompt_tokens: u32,
    #[serde(default)]
    completion_tokens: u32,
}

/// Longest server message shown, in characters.
const MAX_MESSAGE: usize = 200;

/// Finds a human message in an error body of any common shape: OpenAI's
/// `error.message`, `message`, `error` as a string, FastAPI's `detail` (a
/// string, or pydantic's list of `{loc, msg}`), `msg`, `title`.
fn error_message(value: &serde_json::Value) -> String {
    use serde_json::Value;
    if let Value::String(s) = value {
        return s.clone();
    }
    if let Some(Value::Array(items)) = value.get("detail") {
        let first = items.first().map(|d| {
            let msg = d
                .get("msg")
                .or_else(|| d.get("message"))
                .and_then(Value::as_str)
                .map(str::to_string)
                .unwrap_or_else(|| d.to_string());
            let loc: Vec<String> = d
                .get("loc")
                .and_then(Value::as_array)
                .map(|l| {
                    l.iter()
                        .map(|p| p.as_str().map_or_else(|| p.to_string(), str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            if loc.is_empty() {
                msg
            } else {
                format!("{msg} ({})", loc.join("."))
            }
        });
        if let Some(first) = first {
            return match items.len() {
                1 => first,
                n => format!("{first} (and {} more)", n - 1),
            };
        }
    }
    let candidates = [
        value.pointer("/error/message"),
        value.pointer("/error/msg"),
        value.pointer("/message"),
        value.get("error").filter(|e| e.is_string()),
        value.get("detail"),
        value.get("msg"),
        value.pointer("/errors/0/message"),
        value.get("title"),
    ];
    candidates
        .into_iter()
        .flatten()
        .find_map(|v| v.as_str().map(str::to_string))
        .filter(|m| !m.trim().is_empty())
        .unwrap_or_else(|| value.to_string())
}

/// The server's message from an error body of any kind (JSON, an HTML
/// error page, a Python traceback, plain text), as one line of at most
/// `MAX_MESSAGE` characters.
pub(crate) fn server_message(body: &str) -> String {
    let body = body.trim();
    let text = match serde_json::from_str::<serde_json::Value>(body) {
        Ok(value) => error_message(&value),
        Err(_) if body.starts_with('<') => html_text(body),
        Err(_) => plain_message(body),
    };
    one_line(&text)
}

/// An HTML error page's title (or first heading, or its text).
fn html_text(html: &str) -> String {
    // ASCII only, so byte offsets in `lower` are offsets in `html`.
    let lower = html.to_ascii_lowercase();
    for tag in ["title", "h1"] {
        let open = format!("<{tag}");
        let close = format!("</{tag}>");
        if let Some(start) = lower.find(&open)
            && let Some(gt) = lower[start..].find('>')
            && let Some(end) = lower[start..].find(&close)
            && gt < end
        {
            let inner = strip_tags(&html[start + gt + 1..start + end]);
            if !inner.trim().is_empty() {
                return inner;
            }
        }
    }
    strip_tags(html)
}

fn strip_tags(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                out.push(' ');
            }
            _ if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}

/// A plain-text body: for a Python traceback, its last line (the
/// exception and its message), never the file paths above it.
fn plain_message(text: &str) -> String {
    if text.contains("Traceback (most recent call last)") {
        let last = text
            .lines()
            .rev()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.starts_with("File \"") && !l.starts_with('^'));
        if let Some(last) = last {
            return last.to_string();
        }
    }
    text.to_string()
}

/// Whitespace and line breaks collapsed to single spaces, capped.
fn one_line(text: &str) -> String {
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match line.char_indices().nth(MAX_MESSAGE) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line,
    }
}

fn snippet(text: &str) -> String {
    one_line(text)
}

/// The server's host and port ("127.0.0.1:8000", "api.openai.com").
pub(crate) fn server_label(base_url: &str) -> String {
    match reqwest::Url::parse(base_url) {
        Ok(url) => match (url.host_str(), url.port()) {
            (Some(host), Some(port)) => format!("{host}:{port}"),
            (Some(host), None) => host.to_string(),
            _ => base_url.to_string(),
        },
        Err(_) => base_url.to_string(),
    }
}

fn map_error(error: OpenAIError, base_url: &str) -> LlmError {
    match error {
        OpenAIError::ApiError(e) => LlmError::Http {
            status: e.status_code.as_u16(),
            message: server_message(&e.api_error.message),
            server: server_label(base_url),
        },
        OpenAIError::Reqwest(e) if e.is_connect() => LlmError::Connect {
            url: base_url.to_string(),
            detail: error_chain(&e),
        },
        OpenAIError::Reqwest(e) => LlmError::StreamBroken(error_chain(&e)),
        OpenAIError::StreamError(e) => LlmError::StreamBroken(one_line(&e.to_string())),
        // A body we could not parse: an error page, or a bad SSE chunk.
        OpenAIError::JSONDeserialize(_, content) => {
            match serde_json::from_str::<serde_json::Value>(&content) {
                Ok(value) if value.get("error").is_some() => {
                    LlmError::Server(one_line(&error_message(&value)))
                }
                _ => LlmError::Malformed(snippet(&content)),
            }
        }
        other => LlmError::StreamBroken(one_line(&other.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_messages_are_found_in_common_shapes() {
        let v = serde_json::json!({"error": {"message": "slow down", "code": 429}});
        assert_eq!(error_message(&v), "slow down");
        let v = serde_json::json!({"error": "model not found"});
        assert_eq!(error_message(&v), "model not found");
        let v = serde_json::json!({"detail": "bad"});
        assert_eq!(error_message(&v), "bad");
        let v = serde_json::json!({"object": "error", "message": "vLLM says no", "code": 400});
        assert_eq!(error_message(&v), "vLLM says no");
    }

    #[test]
    fn server_messages_are_one_readable_line() {
        let pydantic = r#"{"detail":[{"type":"literal_error","loc":["body","response_format","type"],
            "msg":"Input should be 'text' or 'json_object'","input":"json_schema"}]}"#;
        assert_eq!(
            server_message(pydantic),
            "Input should be 'text' or 'json_object' (body.response_format.type)"
        );
        let two = r#"{"detail":[{"msg":"a"},{"msg":"b"}]}"#;
        assert_eq!(server_message(two), "a (and 1 more)");
        let html =
            "<html><head><title>502 Bad Gateway</title></head>\n<body><h1>Bad</h1></body></html>";
        assert_eq!(server_message(html), "502 Bad Gateway");
        assert_eq!(
            server_message("<HTML><BODY>İstanbul <H1>Fehler ß</H1></BODY></HTML>"),
            "Fehler ß"
        );
        let traceback = "Traceback (most recent call last):\n  File \"/usr/lib/python3/site-packages/llama_cpp/server/app.py\", line 12, in create\n    raise ValueError(x)\nValueError: Input should be 'text' or 'json_object'\n";
        let m = server_message(traceback);
        assert_eq!(m, "ValueError: Input should be 'text' or 'json_object'");
        assert!(!m.contains("/usr/lib"));
        assert_eq!(
            server_message("  Internal\nServer   Error \n"),
            "Internal Server Error"
        );
        let long = "x".repeat(1000);
        assert_eq!(server_message(&long).chars().count(), MAX_MESSAGE + 1);
        assert_eq!(server_message(""), "");
    }

    #[test]
    fn the_server_is_named_by_host_and_port() {
        assert_eq!(server_label("http://127.0.0.1:8000/v1"), "127.0.0.1:8000");
        assert_eq!(server_label(OPENAI_BASE_URL), "api.openai.com");
        assert_eq!(server_label("not a url"), "not a url");
        let e = LlmError::Http {
            status: 500,
            message: "Input should be 'text' or 'json_object'".into(),
            server: "127.0.0.1:8000".into(),
        };
        assert_eq!(
            e.to_string(),
            "the server at 127.0.0.1:8000 answered HTTP 500: Input should be 'text' or 'json_object'"
        );
    }

    #[test]
    fn the_schema_moves_into_the_prompt_when_the_server_does_not_take_it() {
        let settings = OpenAiSettings {
            api_key: None,
            base_url: "http://127.0.0.1:8000/v1".into(),
            model: DEFAULT_MODEL.into(),
            temperature: 0.8,
            first_token_timeout: Duration::from_secs(30),
            stall_timeout: Duration::from_secs(30),
            context_tokens: None,
            seed: None,
        };
        let mut request = ChatRequest::new(
            vec![
                super::super::ChatMessage::system("sys"),
                super::super::ChatMessage::user("hi"),
            ],
            10,
        );
        request.json_schema = Some(super::super::JsonSchema {
            name: "persona".into(),
            schema: serde_json::json!({"type": "object"}),
        });
        let body =
            |mode| serde_json::to_value(build_body(&settings, &request, Some(mode))).unwrap();
        let schema = body(StructuredMode::JsonSchema);
        assert_eq!(schema["response_format"]["type"], "json_schema");
        assert_eq!(schema["messages"][0]["content"], "sys");
        let with_schema = request_body(&settings, &request, Some(StructuredMode::JsonObjectSchema));
        assert_eq!(
            with_schema["response_format"],
            serde_json::json!({"type": "json_object", "schema": {"type": "object"}})
        );
        assert!(
            with_schema["messages"][0]["content"]
                .as_str()
                .unwrap()
                .contains("JSON schema")
        );
        let object = body(StructuredMode::JsonObject);
        assert_eq!(object["response_format"]["type"], "json_object");
        assert!(
            object["messages"][0]["content"]
                .as_str()
                .unwrap()
                .contains("JSON schema")
        );
        let text = body(StructuredMode::Text);
        assert!(text.get("response_format").is_none());
        assert!(
            text["messages"][0]["content"]
                .as_str()
                .unwrap()
                .contains("persona")
        );
    }

    #[test]
    fn overflow_is_read_from_each_servers_words() {
        let cases = [
            (
                "the request exceeds the available context size, try increasing it",
                Some(None),
            ),
            (
                "This model's maximum context length is 2048 tokens. However, you requested 3000 tokens",
                Some(Some(2048)),
            ),
            (
                "Requested tokens (3000) exceed context window of 4096",
                Some(Some(4096)),
            ),
            (
                "Trying to keep the first 5000 tokens when context the overflows. However, the model is loaded with context length of only 4096 tokens",
                Some(Some(4096)),
            ),
            ("Rate limit reached for gpt-4o-mini", None),
            ("model 'x' not found", None),
        ];
        for (message, expected) in cases {
            assert_eq!(overflow_in_message(message), expected, "{message}");
        }
    }

    #[test]
    fn an_empty_stream_is_an_overflow_only_after_a_large_prompt() {
        let check = |estimate, context| OverflowCheck {
            prompt_tokens_estimate: estimate,
            context,
        };
        let overflow = |e: &LlmError| matches!(e, LlmError::ContextOverflow { .. });
        assert!(overflow(
            &check(10_000, None).classify(LlmError::EndedEarly, false)
        ));
        assert!(!overflow(
            &check(800, None).classify(LlmError::EndedEarly, false)
        ));
        // Text came first: the stream was cut mid-reply, not refused.
        assert!(!overflow(
            &check(10_000, None).classify(LlmError::EndedEarly, true)
        ));
        // A known small context lowers the bar; a large one raises it.
        assert!(overflow(
            &check(900, Some(1024)).classify(LlmError::EndedEarly, false)
        ));
        assert!(!overflow(
            &check(2_000, Some(32_768)).classify(LlmError::EndedEarly, false)
        ));
        let broken = LlmError::StreamBroken("connection reset".into());
        assert!(overflow(&check(10_000, None).classify(broken, false)));
        let error = check(3_000, Some(2048)).classify(
            LlmError::Http {
                status: 400,
                message: "the request exceeds the available context size".into(),
                server: "127.0.0.1:8080".into(),
            },
            false,
        );
        assert_eq!(
            error.to_string(),
            "the prompt is too long for this server's context (3000 tokens; it holds 2048)"
        );
        assert_eq!(
            check(1, None).classify(LlmError::Stalled(Duration::from_secs(3)), false),
            LlmError::Stalled(Duration::from_secs(3))
        );
    }

    #[test]
    fn the_context_is_read_from_models_and_props() {
        let models = serde_json::json!({"data": [
            {"id": "a", "max_model_len": 8192},
            {"id": "gpt-4o-mini", "max_model_len": 2048}
        ]});
        assert_eq!(context_from_models(&models, "gpt-4o-mini"), Some(2048));
        // Another model's size is not ours, unless it is the only one.
        assert_eq!(context_from_models(&models, "b"), None);
        let one = serde_json::json!({"data": [{"id": "served", "max_model_len": 4096}]});
        assert_eq!(context_from_models(&one, "gpt-4o-mini"), Some(4096));
        let ollama = serde_json::json!({"data": [{"id": "llama3.2", "owned_by": "library"}]});
        assert_eq!(context_from_models(&ollama, "llama3.2"), None);
        let props = serde_json::json!({"default_generation_settings": {"n_ctx": 2048}});
        assert_eq!(context_from_props(&props), Some(2048));
        assert_eq!(
            context_from_props(&serde_json::json!({"n_ctx": 512})),
            Some(512)
        );
        assert_eq!(context_from_props(&serde_json::json!({})), None);
    }

    #[test]
    fn the_flag_sets_the_context_without_asking() {
        let backend = OpenAiBackend::new(OpenAiSettings {
            api_key: None,
            base_url: "http://127.0.0.1:9/v1".into(),
            model: DEFAULT_MODEL.into(),
            temperature: 0.8,
            first_token_timeout: Duration::from_secs(30),
            stall_timeout: Duration::from_secs(30),
            context_tokens: Some(100_000),
            seed: None,
        });
        // Told by the user: planned around whatever its size.
        assert_eq!(backend.context_window(), Some(100_000));
        let backend = OpenAiBackend::new(OpenAiSettings {
            context_tokens: None,
            ..backend.settings.clone()
        });
        assert_eq!(backend.context_window(), None);
    }

    #[test]
    fn debug_output_redacts_the_key() {
        let s = OpenAiSettings {
            api_key: Some("sk-secret-123".into()),
            base_url: OPENAI_BASE_URL.into(),
            model: DEFAULT_MODEL.into(),
            temperature: 0.8,
            first_token_timeout: Duration::from_secs(30),
            stall_timeout: Duration::from_secs(30),
            context_tokens: None,
            seed: None,
        };
        let text = format!("{s:?}");
        assert!(!text.contains("sk-secret"), "{text}");
        assert!(text.contains("<redacted>"));
    }

    #[test]
    fn openai_gets_max_completion_tokens_and_others_max_tokens() {
        let mut s = OpenAiSettings {
            api_key: None,
            base_url: OPENAI_BASE_URL.into(),
            model: DEFAULT_MODEL.into(),
            temperature: 0.8,
            first_token_timeout: Duration::from_secs(30),
            stall_timeout: Duration::from_secs(30),
            context_tokens: None,
            seed: None,
        };
        let request = ChatRequest {
            messages: vec![super::super::ChatMessage::user("hi")],
            max_tokens: 99,
            json_schema: None,
            purpose: Default::default(),
            attempt: 0,
            names: None,
        };
        let body =
            serde_json::to_value(OpenAiBackend::new(s.clone()).build_request(&request)).unwrap();
        assert_eq!(body["max_completion_tokens"], 99);
        assert!(body.get("max_tokens").is_none());
        assert_eq!(body["stream"], true);
        assert_eq!(body["stream_options"]["include_usage"], true);
        s.base_url = "http://127.0.0.1:11434/v1".into();
        let body =
            serde_json::to_value(OpenAiBackend::new(s.clone()).build_request(&request)).unwrap();
        assert_eq!(body["max_tokens"], 99);
        assert!(body.get("seed").is_none(), "no seed unless given");
        // A turn asked again draws with the next seed.
        s.seed = Some(7);
        let retry = ChatRequest {
            attempt: 2,
            ..request.clone()
        };
        let body = serde_json::to_value(OpenAiBackend::new(s).build_request(&retry)).unwrap();
        assert_eq!(body["seed"], 9);
    }

    #[test]
    fn a_given_seed_is_sent() {
        let s = OpenAiSettings {
            api_key: None,
            base_url: "http://127.0.0.1:11434/v1".into(),
            model: DEFAULT_MODEL.into(),
            temperature: 0.8,
            first_token_timeout: Duration::from_secs(30),
            stall_timeout: Duration::from_secs(30),
            context_tokens: None,
            seed: Some(4_000_000_000),
        };
        let request = ChatRequest::new(vec![super::super::ChatMessage::user("hi")], 9);
        let body = request_body(&s, &request, None);
        assert_eq!(body["seed"], 4_000_000_000u64);
    }
}
