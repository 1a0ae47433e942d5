//! A mock OpenAI-compatible server for tests: real HTTP on 127.0.0.1:0,
//! streaming SSE chunks the way OpenAI does, plus the ways servers fail.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use futures::StreamExt;
use serde_json::{Value, json};
use tokio::sync::Notify;

/// One scripted answer to one request.
#[derive(Debug, Clone)]
pub enum Reply {
    /// Streams the pieces, then `finish_reason`, usage (if set) and `[DONE]`.
    Stream {
        pieces: Vec<String>,
        usage: Option<(u32, u32)>,
    },
    /// Like `Stream` but ends after `finish_reason`, with no usage and no `[DONE]`.
    NoDone { pieces: Vec<String> },
    /// Streams the pieces, then closes cleanly without a finish reason or `[DONE]`.
    EndsEarly { pieces: Vec<String> },
    /// Streams the pieces, then breaks the connection.
    Cut { pieces: Vec<String> },
    /// Streams the pieces, then a chunk that is not JSON.
    Malformed { pieces: Vec<String> },
    /// Streams the pieces, sends nothing for `stall` (on tokio's clock, so a
    /// paused-time test can outwait it), then finishes the turn as `Stream`
    /// would, without usage. A client timeout shorter than `stall` must fire
    /// first; see [`MockServer::stalling`].
    Stall {
        pieces: Vec<String>,
        stall: Duration,
    },
    /// An HTTP error status with this body.
    Status { code: u16, body: String },
    // -- turns (cut and marked) --
    /// Streams the pieces, then `finish_reason: "length"` (the server's
    /// token limit), no usage, and `[DONE]`.
    LengthStop { pieces: Vec<String> },
    /// Streams the pieces as `Stream` does without usage, naming `model` as
    /// the model that answered (every other reply names the model asked
    /// for, as OpenAI does).
    Served { model: String, pieces: Vec<String> },
    /// Exactly this response: status, content type and body (e.g. an SSE
    /// body written by hand, or an HTML error page).
    Raw {
        status: u16,
        content_type: String,
        body: String,
    },
}

impl Reply {
    pub fn text(text: &str) -> Reply {
        Reply::Stream {
            pieces: split_words(text),
            usage: Some((42, text.split_whitespace().count() as u32)),
        }
    }

    // -- turns (cut and marked) --
    /// `text` in word pieces, from a server that sends no usage.
    pub fn text_without_usage(text: &str) -> Reply {
        Reply::Stream {
            pieces: split_words(text),
            usage: None,
        }
    }

    /// `reply` with its usage taken away.
    pub fn without_usage(reply: Reply) -> Reply {
        match reply {
            Reply::Stream { pieces, .. } => Reply::Stream {
                pieces,
                usage: None,
            },
            other => other,
        }
    }
    /// Streams `text` and ends with this `finish_reason` ("length": cut by
    /// the token limit), usage and `[DONE]`.
    pub fn finished(text: &str, reason: &str) -> Reply {
        let mut body = String::new();
        for piece in split_words(text) {
            body.push_str(&format!("data: {}\n\n", content_chunk(&piece)));
        }
        let finish = json!({"id":"chatcmpl-mock","object":"chat.completion.chunk","created":1,
            "model":"mock","choices":[{"index":0,"delta":{},"finish_reason":reason}],
            "usage":{"prompt_tokens":42,"completion_tokens":19,"total_tokens":61}});
        body.push_str(&format!("data: {finish}\n\ndata: [DONE]\n\n"));
        Reply::Raw {
            status: 200,
            content_type: "text/event-stream".into(),
            body,
        }
    }

    /// What llama-cpp-python answers a `json_schema` response format.
    pub fn pydantic_500() -> Reply {
        Reply::Status {
            code: 500,
            body: r#"{"detail":[{"type":"literal_error","loc":["body","response_format","type"],"msg":"Input should be 'text' or 'json_object'","input":"json_schema"}]}"#.into(),
        }
    }
}

/// The `response_format` type a request asked for ("text" when none).
pub fn format_type(body: &Value) -> String {
    body["response_format"]["type"]
        .as_str()
        .unwrap_or("text")
        .to_string()
}

/// Splits text into word-sized streaming pieces ("Hello", " world").
pub fn split_words(text: &str) -> Vec<String> {
    let mut pieces = Vec::new();
    for (i, word) in text.split(' ').enumerate() {
        pieces.push(if i == 0 {
            word.to_string()
        } else {
            format!(" {word}")
        });
    }
    pieces
}

#[derive(Debug, Clone)]
pub struct Recorded {
    pub body: Value,
    pub authorization: Option<String>,
}

type Generator = dyn Fn(&Value) -> Reply + Send + Sync;

struct MockState {
    queue: Mutex<VecDeque<Reply>>,
    fallback: Box<Generator>,
    requests: Mutex<Vec<Recorded>>,
    chunk_delay: Duration,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    /// Replies that reached their stall (all their pieces handed to hyper).
    stalls: AtomicUsize,
    stall_started: Notify,
}

/// Counts a request as in flight until its response body is finished.
struct InFlight(Arc<MockState>);

impl InFlight {
    fn start(state: &Arc<MockState>) -> InFlight {
        let now = state.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        state.max_in_flight.fetch_max(now, Ordering::SeqCst);
        InFlight(state.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

pub struct MockServer {
    pub base_url: String,
    state: Arc<MockState>,
}

impl MockServer {
    /// Answers from `queue` first; when it is empty, from `fallback`.
    pub async fn start(
        queue: Vec<Reply>,
        chunk_delay: Duration,
        fallback: impl Fn(&Value) -> Reply + Send + Sync + 'static,
    ) -> MockServer {
        MockServer::start_on(0, queue, chunk_delay, fallback).await
    }

    pub async fn start_on(
        port: u16,
        queue: Vec<Reply>,
        chunk_delay: Duration,
        fallback: impl Fn(&Value) -> Reply + Send + Sync + 'static,
    ) -> MockServer {
        let state = Arc::new(MockState {
            queue: Mutex::new(queue.into()),
            fallback: Box::new(fallback),
            requests: Mutex::new(Vec::new()),
            chunk_delay,
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
            stalls: AtomicUsize::new(0),
            stall_started: Notify::new(),
        });
        let app = axum::Router::new()
            .route("/v1/chat/completions", post(chat))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        MockServer {
            base_url: format!("http://{addr}/v1"),
            state,
        }
    }

    /// A server that plays `queue` and then fails loudly.
    pub async fn scripted(queue: Vec<Reply>) -> MockServer {
        MockServer::start(queue, Duration::ZERO, |_| Reply::Status {
            code: 500,
            body: r#"{"error":{"message":"mock: no scripted reply left"}}"#.into(),
        })
        .await
    }

    /// A server that answers every turn in character, forever.
    pub async fn persona_echo(chunk_delay: Duration) -> MockServer {
        MockServer::start(Vec::new(), chunk_delay, echo_reply).await
    }

    pub async fn persona_echo_on(port: u16, chunk_delay: Duration) -> MockServer {
        MockServer::start_on(port, Vec::new(), chunk_delay, echo_reply).await
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.state.requests.lock().unwrap().clone()
    }

    /// Waits until `n` `Reply::Stall` answers have sent their pieces and
    /// begun to stall.
    pub async fn stalling(&self, n: usize) {
        loop {
            // Registered before the check, so a stall in between still wakes us.
            let started = self.state.stall_started.notified();
            if self.state.stalls.load(Ordering::SeqCst) >= n {
                return;
            }
            started.await;
        }
    }

    /// The most requests that were being answered at the same time.
    pub fn max_in_flight(&self) -> usize {
        self.state.max_in_flight.load(Ordering::SeqCst)
    }

    // --- capacity: single-slot servers and context discovery ---

    fn new_state(
        queue: Vec<Reply>,
        chunk_delay: Duration,
        fallback: impl Fn(&Value) -> Reply + Send + Sync + 'static,
    ) -> Arc<MockState> {
        Arc::new(MockState {
            queue: Mutex::new(queue.into()),
            fallback: Box::new(fallback),
            requests: Mutex::new(Vec::new()),
            chunk_delay,
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
            stalls: AtomicUsize::new(0),
            stall_started: Notify::new(),
        })
    }

    async fn serve(app: axum::Router, state: Arc<MockState>) -> MockServer {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        MockServer {
            base_url: format!("http://{addr}/v1"),
            state,
        }
    }

    /// A server with one slot, like llama-cpp-python: a new request cuts
    /// the stream that is running (it ends cleanly, unfinished) and is
    /// answered from `fallback`, each piece after `chunk_delay`.
    pub async fn single_slot(
        chunk_delay: Duration,
        fallback: impl Fn(&Value) -> Reply + Send + Sync + 'static,
    ) -> MockServer {
        let state = MockServer::new_state(Vec::new(), chunk_delay, fallback);
        // The number of the latest request: a stream runs while it is its own.
        let latest = Arc::new(tokio::sync::watch::Sender::new(0u64));
        let handler = move |state: State<Arc<MockState>>, headers: HeaderMap, body: String| {
            let latest = latest.clone();
            async move {
                let mut me = 0;
                latest.send_modify(|n| {
                    *n += 1;
                    me = *n;
                });
                let mut newer = latest.subscribe();
                let response = chat(state, headers, body).await;
                let (parts, body) = response.into_parts();
                let cut = async move {
                    let _ = newer.wait_for(|&n| n != me).await;
                };
                let body = Body::from_stream(body.into_data_stream().take_until(cut));
                Response::from_parts(parts, body)
            }
        };
        let app = axum::Router::new()
            .route("/v1/chat/completions", post(handler))
            .with_state(state.clone());
        MockServer::serve(app, state).await
    }

    /// A server that answers from `fallback` and says what it is where
    /// servers do: `GET /v1/models` (vLLM's `max_model_len`) and `GET /props`
    /// (llama.cpp's `n_ctx`); `None` answers 404.
    pub async fn describing(
        models: Option<Value>,
        props: Option<Value>,
        fallback: impl Fn(&Value) -> Reply + Send + Sync + 'static,
    ) -> MockServer {
        let state = MockServer::new_state(Vec::new(), Duration::ZERO, fallback);
        let answer = |value: Option<Value>| {
            move || {
                let value = value.clone();
                async move {
                    match value {
                        Some(v) => (StatusCode::OK, axum::Json(v)).into_response(),
                        None => StatusCode::NOT_FOUND.into_response(),
                    }
                }
            }
        };
        let app = axum::Router::new()
            .route("/v1/chat/completions", post(chat))
            .route("/v1/models", axum::routing::get(answer(models)))
            .route("/props", axum::routing::get(answer(props)))
            .with_state(state.clone());
        MockServer::serve(app, state).await
    }

    // --- end capacity ---
    /// Like llama-cpp-python: a `json_schema` response format gets HTTP 500
    /// `Input should be 'text' or 'json_object'`; `json_object` and plain
    /// requests are answered as [`echo_reply`] does.
    pub async fn rejecting_json_schema() -> MockServer {
        MockServer::start(Vec::new(), Duration::ZERO, |body| {
            match format_type(body).as_str() {
                "json_schema" => Reply::pydantic_500(),
                _ => echo_reply(body),
            }
        })
        .await
    }

    /// Takes no response format at all: `json_schema` and `json_object`
    /// both get the HTTP 500; plain requests are answered.
    pub async fn rejecting_every_format() -> MockServer {
        MockServer::start(Vec::new(), Duration::ZERO, |body| {
            match format_type(body).as_str() {
                "text" => echo_reply(body),
                _ => Reply::Status {
                    code: 500,
                    body: r#"{"detail":[{"loc":["body","response_format"],"msg":"Input should be 'text'"}]}"#.into(),
                },
            }
        })
        .await
    }

    /// Takes `json_object` but not a schema: `json_schema`, and a
    /// `json_object` that carries a `schema` key, get HTTP 400 naming
    /// `response_format` (as a strict server would).
    pub async fn json_object_only() -> MockServer {
        MockServer::start(Vec::new(), Duration::ZERO, |body| {
            if body["response_format"].get("schema").is_some() {
                return Reply::Status {
                    code: 400,
                    body: r#"{"error":{"message":"response_format.schema: Extra inputs are not permitted"}}"#.into(),
                };
            }
            match format_type(body).as_str() {
                "json_schema" => Reply::Status {
                    code: 400,
                    body: r#"{"error":{"message":"'response_format.type' must be 'json_object' or 'text'","type":"invalid_request_error"}}"#.into(),
                },
                _ => echo_reply(body),
            }
        })
        .await
    }
}

/// "As <name>, I think request <n> is ..." using the name in the system prompt;
/// a report request gets a JSON report built from the transcript it quotes.
pub fn echo_reply(body: &Value) -> Reply {
    let system = body["messages"][0]["content"].as_str().unwrap_or("");
    if system.contains("feedback report") {
        return Reply::text(&report_json(body).to_string());
    }
    if system.contains("personas for product research") {
        return Reply::text(&persona_json(body).to_string());
    }
    let name = system
        .strip_prefix("You are ")
        .and_then(|s| s.split(',').next())
        .unwrap_or("someone");
    let user = body["messages"][1]["content"].as_str().unwrap_or("");
    let heard = user.matches('\n').count();
    Reply::text(&format!(
        "As {name}, I like it but worry about cost. I have read {heard} lines so far."
    ))
}

/// Whether this request asks for the feedback report.
pub fn is_report_request(body: &Value) -> bool {
    body["messages"][0]["content"]
        .as_str()
        .is_some_and(|s| s.contains("feedback report"))
}

/// A report in the schema's shape whose stances and turns come from the
/// "[T#] Name: text" lines of the request, so tests can check the links.
pub fn report_json(body: &Value) -> Value {
    let user = body["messages"][1]["content"].as_str().unwrap_or("");
    let mut personas: Vec<(String, Vec<usize>)> = Vec::new();
    for line in user.lines() {
        let Some(rest) = line.strip_prefix("[T") else {
            continue;
        };
        let Some((num, rest)) = rest.split_once("] ") else {
            continue;
        };
        let Some((name, _)) = rest.split_once(':') else {
            continue;
        };
        let name = name.split(" (asked").next().unwrap_or(name).to_string();
        let turn: usize = num.parse().unwrap_or(0);
        match personas.iter_mut().find(|(n, _)| *n == name) {
            Some((_, turns)) => turns.push(turn),
            None => personas.push((name, vec![turn])),
        }
    }
    let stances = ["for", "mixed", "against"];
    let all_turns: Vec<usize> = personas.iter().flat_map(|(_, t)| t.clone()).collect();
    json!({
        "summary": format!("{} personas discussed the feature; cost worried them.", personas.len()),
        "personas": personas.iter().enumerate().map(|(i, (name, _))| json!({
            "name": name, "stance": stances[i % 3], "interest": 8 - (i as i64 % 7),
            "reason": "I like it but worry about cost."
        })).collect::<Vec<_>>(),
        "concerns": [{"text": "Cost", "count": personas.len(),
            "personas": personas.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>(),
            "turns": all_turns}],
        "requests": [{"text": "A free tier", "count": 1,
            "personas": personas.iter().take(1).map(|(n, _)| n.clone()).collect::<Vec<_>>(),
            "turns": personas.first().map(|(_, t)| t.clone()).unwrap_or_default()}],
        "insights": [{"change": "Offer a cheaper plan", "why": "Everyone raised cost",
            "helps": "price-sensitive users", "priority": 1,
            "turns": personas.last().map(|(_, t)| vec![t[0]]).unwrap_or_default()}]
    })
}

/// Which persona of a batch a synthesis request asks for ("This is persona
/// 3 of 25" gives 3), if it says.
pub fn batch_index(body: &Value) -> Option<usize> {
    let user = body["messages"][1]["content"].as_str()?;
    let rest = user.split("This is persona ").nth(1)?;
    rest.split_whitespace().next()?.parse().ok()
}

/// A valid persona for a synthesis request, distinct per batch index (or
/// per request when there is none).
pub fn persona_json(body: &Value) -> Value {
    static COUNTER: AtomicUsize = AtomicUsize::new(1000);
    let n = batch_index(body).unwrap_or_else(|| COUNTER.fetch_add(1, Ordering::SeqCst));
    let levels = ["Low", "Medium", "High"];
    json!({
        "name": format!("Mock Person {n}"),
        "age": 20 + (n % 60),
        "occupation": format!("Occupation {n}"),
        "location": format!("City {n}, Country {}", n % 7),
        "tech_proficiency": levels[n % 3],
        "behavioral_traits": [format!("trait a{n}"), format!("trait b{n}"), format!("trait c{n}")],
        "bio": format!("Mock person number {n}."),
        "goals": ["save time"],
        "frustrations": ["slow apps"]
    })
}

fn sse(value: &Value) -> Bytes {
    Bytes::from(format!("data: {value}\n\n"))
}

fn content_chunk(text: &str) -> Value {
    json!({"id":"chatcmpl-mock","object":"chat.completion.chunk","created":1,"model":"mock",
        "choices":[{"index":0,"delta":{"content":text},"finish_reason":null}]})
}

fn finish_chunk() -> Value {
    json!({"id":"chatcmpl-mock","object":"chat.completion.chunk","created":1,"model":"mock",
        "choices":[{"index":0,"delta":{},"finish_reason":"stop"}]})
}

async fn chat(State(state): State<Arc<MockState>>, headers: HeaderMap, body: String) -> Response {
    let body: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    state.requests.lock().unwrap().push(Recorded {
        body: body.clone(),
        authorization: headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
    });
    let in_flight = InFlight::start(&state);
    let next = state.queue.lock().unwrap().pop_front();
    let reply = next.unwrap_or_else(|| (state.fallback)(&body));
    // The model the chunks name: the one asked for, as OpenAI does.
    let served = match &reply {
        Reply::Served { model, .. } => model.clone(),
        _ => body["model"].as_str().unwrap_or("mock").to_string(),
    };
    let named = move |mut chunk: Value| {
        chunk["model"] = json!(served);
        chunk
    };

    enum Tail {
        Finish {
            usage: Option<(u32, u32)>,
            done: bool,
        },
        Clean,
        Cut,
        Malformed,
        Stall(Duration),
        Length,
    }
    let (pieces, tail) = match reply {
        Reply::Raw {
            status,
            content_type,
            body,
        } => {
            return (
                StatusCode::from_u16(status).unwrap(),
                [("content-type", content_type)],
                body,
            )
                .into_response();
        }
        Reply::Status { code, body } => {
            return (
                StatusCode::from_u16(code).unwrap(),
                [("content-type", "application/json")],
                body,
            )
                .into_response();
        }
        Reply::Stream { pieces, usage } => (pieces, Tail::Finish { usage, done: true }),
        Reply::NoDone { pieces } => (
            pieces,
            Tail::Finish {
                usage: None,
                done: false,
            },
        ),
        Reply::EndsEarly { pieces } => (pieces, Tail::Clean),
        Reply::Cut { pieces } => (pieces, Tail::Cut),
        Reply::Malformed { pieces } => (pieces, Tail::Malformed),
        Reply::Stall { pieces, stall } => (pieces, Tail::Stall(stall)),
        Reply::LengthStop { pieces } => (pieces, Tail::Length),
        Reply::Served { pieces, .. } => (
            pieces,
            Tail::Finish {
                usage: None,
                done: true,
            },
        ),
    };
    // An SSE comment first: real servers send keep-alives like this.
    let mut items: Vec<Result<Bytes, std::io::Error>> = vec![Ok(Bytes::from(": keep-alive\n\n"))];
    items.extend(pieces.iter().map(|p| Ok(sse(&named(content_chunk(p))))));
    let ending: Vec<Result<Bytes, std::io::Error>> = match tail {
        Tail::Finish { usage, done } => {
            let mut end = vec![Ok(sse(&named(finish_chunk())))];
            if let Some((prompt, completion)) = usage {
                end.push(Ok(sse(
                    &json!({"id":"chatcmpl-mock","object":"chat.completion.chunk",
                    "created":1,"model":"mock","choices":[],
                    "usage":{"prompt_tokens":prompt,"completion_tokens":completion,
                             "total_tokens":prompt+completion}}),
                )));
            }
            if done {
                end.push(Ok(Bytes::from("data: [DONE]\n\n")));
            }
            end
        }
        Tail::Clean => vec![],
        Tail::Cut => vec![Err(std::io::Error::other("mock: connection cut"))],
        Tail::Malformed => vec![Ok(Bytes::from("data: {\"choices\": [{\"delta\": \n\n"))],
        Tail::Stall(_) => vec![],
        Tail::Length => {
            let mut finish = finish_chunk();
            finish["choices"][0]["finish_reason"] = json!("length");
            vec![Ok(sse(&finish)), Ok(Bytes::from("data: [DONE]\n\n"))]
        }
    };
    let stall = match tail {
        Tail::Stall(stall) => Some(stall),
        _ => None,
    };
    // Let the pieces reach the client before a cut, as on a real network.
    let cut_pause = if matches!(tail, Tail::Cut) {
        Duration::from_millis(150)
    } else {
        Duration::ZERO
    };
    let delay = state.chunk_delay;
    let stream = futures::stream::iter(items.into_iter().chain(ending))
        .then(move |item| async move {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            if item.is_err() {
                tokio::time::sleep(cut_pause).await;
            }
            item
        })
        .chain(futures::stream::once(async move {
            let mut after = Bytes::new();
            if let Some(stall) = stall {
                let state = in_flight.0.clone();
                state.stalls.fetch_add(1, Ordering::SeqCst);
                state.stall_started.notify_waiters();
                tokio::time::sleep(stall).await;
                after = Bytes::from(format!("data: {}\n\ndata: [DONE]\n\n", finish_chunk()));
            }
            drop(in_flight);
            Ok(after)
        }));
    Response::builder()
        .header("content-type", "text/event-stream")
        .header("cache-control", "no-cache")
        .body(Body::from_stream(stream))
        .unwrap()
}
