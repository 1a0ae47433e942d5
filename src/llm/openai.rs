//! OpenAI and OpenAI-compatible servers over async-openai's streaming API.
//!
//! Strict in what we send (the typed request), forgiving in what we accept:
//! chunks are parsed into lenient local types, usage may never come, SSE
//! comments are skipped, and a stream may end without `[DONE]` once the
//! server has said why it finished.

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_openai::Client;
use async_openai::config::OpenAIConfig;
use async_openai::error::OpenAIError;
use async_openai::types::chat::{
    ChatCompletionRequestMessage, ChatCompletionRequestSystemMessage,
    ChatCompletionRequestUserMessage, ChatCompletionStreamOptions, CreateChatCompletionRequest,
    ResponseFormat, ResponseFormatJsonSchema,
};
use futures::StreamExt;
use serde::Deserialize;

use super::{
    BackendInfo, ChatBackend, ChatChunk, ChatRequest, ChatStream, FinishReason, LlmError, Role,
    Usage, error_chain, estimate_tokens,
};

pub const OPENAI_BASE_URL: &str = "https://api.openai.com/v1";
pub const DEFAULT_MODEL: &str = "gpt-4o-mini";

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
            .finish()
    }
}

pub struct OpenAiBackend {
    client: Client<OpenAIConfig>,
    settings: OpenAiSettings,
    /// For the context discovery requests.
    http: reqwest::Client,
    /// What the server said its context is (`None` inside: it did not
    /// say); empty until [`ChatBackend::discover_context`] first runs.
    discovered: Arc<tokio::sync::OnceCell<Option<u32>>>,
}

impl OpenAiBackend {
    pub fn new(settings: OpenAiSettings) -> Self {
        let mut config = OpenAIConfig::new().with_api_base(settings.base_url.trim_end_matches('/'));
        // Local servers need no key, but async-openai always sends the header;
        // an empty bearer token is what they expect.
        config = config.with_api_key(settings.api_key.clone().unwrap_or_default());
        let http = reqwest_client(settings.first_token_timeout);
        OpenAiBackend {
            client: Client::with_config(config).with_http_client(http.clone()),
            settings,
            http,
            discovered: Arc::new(tokio::sync::OnceCell::new()),
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

    fn build_request(&self, request: &ChatRequest) -> CreateChatCompletionRequest {
        let messages = request
            .messages
            .iter()
            .map(|m| match m.role {
                Role::System => ChatCompletionRequestMessage::System(
                    ChatCompletionRequestSystemMessage::from(m.content.as_str()),
                ),
                Role::User => ChatCompletionRequestMessage::User(
                    ChatCompletionRequestUserMessage::from(m.content.as_str()),
                ),
                Role::Assistant => {
                    ChatCompletionRequestMessage::Assistant(m.content.as_str().into())
                }
            })
            .collect();
        let mut body = CreateChatCompletionRequest {
            model: self.settings.model.clone(),
            messages,
            stream: Some(true),
            stream_options: Some(ChatCompletionStreamOptions {
                include_usage: Some(true),
                include_obfuscation: None,
            }),
            temperature: Some(self.settings.temperature),
            response_format: request
                .json_schema
                .as_ref()
                .map(|s| ResponseFormat::JsonSchema {
                    json_schema: ResponseFormatJsonSchema {
                        description: None,
                        name: s.name.clone(),
                        schema: s.schema.clone(),
                        strict: Some(true),
                    },
                }),
            ..Default::default()
        };
        // OpenAI deprecated `max_tokens`; most compatible servers only know it.
        if self.is_openai_itself() {
            body.max_completion_tokens = Some(request.max_tokens);
        } else {
            #[allow(deprecated)]
            {
                body.max_tokens = Some(request.max_tokens);
            }
        }
        body
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
        let body = self.build_request(&request);
        let client = self.client.clone();
        let settings = self.settings.clone();
        let state = State::Connecting {
            client,
            body: Box::new(body),
        };
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
                Some(context) => overflow(context),
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

type RawStream = async_openai::types::stream::StreamResponse<WireChunk>;

enum State {
    Connecting {
        client: Client<OpenAIConfig>,
        body: Box<CreateChatCompletionRequest>,
    },
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
        State::Connecting { client, body } => {
            // Retries of 429/5xx with backoff happen inside async-openai,
            // before any token; the first-token budget covers them all.
            let chat = client.chat();
            let connect = chat.create_stream_byot::<_, WireChunk>(*body);
            match tokio::time::timeout(settings.first_token_timeout, connect).await {
                Err(_) => {
                    return Some((
                        Err(LlmError::FirstTokenTimeout(settings.first_token_timeout)),
                        State::Done,
                    ));
                }
                Ok(Err(e)) => return Some((Err(map_error(e, &settings.base_url)), State::Done)),
                Ok(Ok(inner)) => (inner, VecDeque::new(), false, false, false),
            }
        }
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
                    return Some((Err(LlmError::Server(error_message(&error))), State::Done));
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

/// Finds a human message in an error body of any common shape.
fn error_message(value: &serde_json::Value) -> String {
    let candidates = [
        value.pointer("/error/message"),
        value.pointer("/message"),
        value.get("error").filter(|e| e.is_string()),
        value.get("detail"),
    ];
    candidates
        .into_iter()
        .flatten()
        .find_map(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| snippet(&value.to_string()))
}

fn snippet(text: &str) -> String {
    const MAX: usize = 200;
    let text = text.trim();
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

fn map_error(error: OpenAIError, base_url: &str) -> LlmError {
    match error {
        OpenAIError::ApiError(e) => LlmError::Http {
            status: e.status_code.as_u16(),
            message: e.api_error.message,
        },
        OpenAIError::Reqwest(e) if e.is_connect() => LlmError::Connect {
            url: base_url.to_string(),
            detail: error_chain(&e),
        },
        OpenAIError::Reqwest(e) => LlmError::StreamBroken(error_chain(&e)),
        OpenAIError::StreamError(e) => LlmError::StreamBroken(e.to_string()),
        // A body we could not parse: an error page, or a bad SSE chunk.
        OpenAIError::JSONDeserialize(_, content) => {
            match serde_json::from_str::<serde_json::Value>(&content) {
                Ok(value) if value.get("error").is_some() => {
                    LlmError::Server(error_message(&value))
                }
                _ => LlmError::Malformed(snippet(&content)),
            }
        }
        other => LlmError::StreamBroken(other.to_string()),
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
        };
        let request = ChatRequest {
            messages: vec![super::super::ChatMessage::user("hi")],
            max_tokens: 99,
            json_schema: None,
            purpose: Default::default(),
        };
        let body =
            serde_json::to_value(OpenAiBackend::new(s.clone()).build_request(&request)).unwrap();
        assert_eq!(body["max_completion_tokens"], 99);
        assert!(body.get("max_tokens").is_none());
        assert_eq!(body["stream"], true);
        assert_eq!(body["stream_options"]["include_usage"], true);
        s.base_url = "http://127.0.0.1:11434/v1".into();
        let body = serde_json::to_value(OpenAiBackend::new(s).build_request(&request)).unwrap();
        assert_eq!(body["max_tokens"], 99);
    }
}
