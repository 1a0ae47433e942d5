//! OpenAI and OpenAI-compatible servers over async-openai's streaming API.
//!
//! Strict in what we send (the typed request), forgiving in what we accept:
//! chunks are parsed into lenient local types, usage may never come, SSE
//! comments are skipped, and a stream may end without `[DONE]` once the
//! server has said why it finished.

use std::collections::VecDeque;
use std::fmt;
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
    Usage, error_chain,
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
            .finish()
    }
}

pub struct OpenAiBackend {
    client: Client<OpenAIConfig>,
    settings: OpenAiSettings,
}

impl OpenAiBackend {
    pub fn new(settings: OpenAiSettings) -> Self {
        let mut config = OpenAIConfig::new().with_api_base(settings.base_url.trim_end_matches('/'));
        // Local servers need no key, but async-openai always sends the header;
        // an empty bearer token is what they expect.
        config = config.with_api_key(settings.api_key.clone().unwrap_or_default());
        let http = reqwest_client(settings.first_token_timeout);
        OpenAiBackend {
            client: Client::with_config(config).with_http_client(http),
            settings,
        }
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

    fn stream(&self, request: ChatRequest) -> ChatStream {
        let body = self.build_request(&request);
        let client = self.client.clone();
        let settings = self.settings.clone();
        let state = State::Connecting {
            client,
            body: Box::new(body),
        };
        Box::pin(futures::stream::unfold(
            (state, settings),
            |(state, settings)| async move {
                step(state, &settings)
                    .await
                    .map(|(item, s)| (item, (s, settings)))
            },
        ))
    }
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
    fn debug_output_redacts_the_key() {
        let s = OpenAiSettings {
            api_key: Some("sk-secret-123".into()),
            base_url: OPENAI_BASE_URL.into(),
            model: DEFAULT_MODEL.into(),
            temperature: 0.8,
            first_token_timeout: Duration::from_secs(30),
            stall_timeout: Duration::from_secs(30),
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
