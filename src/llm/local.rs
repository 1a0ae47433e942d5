//! The embedded backend: a GGUF model run in-process by llama.cpp.
//!
//! The model is loaded once (lazily, on the first request, so a model fetched
//! after start is picked up) and reused. Generation runs on its own thread,
//! never on the async runtime or the UI thread, one request at a time (two
//! cores are shared by all). Dropping the stream stops generation within one
//! token: it sets the generation's cancel flag, which the thread checks
//! before every token (and between prompt chunks).
//!
//! No generation thread may outlive the process's `main`: exit runs
//! llama.cpp's C++ static destructors, and a decode still running on another
//! thread then reads freed statics and dies with SIGSEGV. Every generation
//! thread is therefore registered here; [`shutdown`] (called on the way out
//! of `main` through [`ExitGuard`]) cancels and joins them all, and dropping
//! a [`LocalBackend`] joins its own.

use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::{LlamaChatMessage, LlamaChatTemplate, LlamaModel};
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;
use llama_cpp_2::token::logit_bias::LlamaLogitBias;
use tokio::sync::mpsc;

use super::{
    BackendInfo, ChatBackend, ChatChunk, ChatMessage, ChatRequest, ChatStream, FinishReason,
    LlmError, Purpose, Role, Usage,
};

/// The tokens of a turn's opening in which no participant's name is drawn.
const OPENING_TOKENS: u32 = 8;

/// DRY ("don't repeat yourself", llama.cpp's sampler after p-e-w): a token
/// that would extend a sequence already in the context past
/// `DRY_ALLOWED_LENGTH` tokens is penalised by
/// `DRY_MULTIPLIER * DRY_BASE^(length - DRY_ALLOWED_LENGTH)`. A turn's
/// sampler is shown the prompt too, so copying another speaker's turn (the
/// small model's habit: a 5-gram copy rate of 0.64) gets costly after a
/// few tokens, while names and short phrases stay free.
const DRY_MULTIPLIER: f32 = 0.8;
const DRY_BASE: f32 = 1.75;
const DRY_ALLOWED_LENGTH: i32 = 2;
/// A repeated run stops at these (llama.cpp's defaults): a line, a label,
/// a quote or markdown does not chain one copy into the next.
const DRY_BREAKERS: [&str; 4] = ["\n", ":", "\"", "*"];

#[derive(Debug, Clone, PartialEq)]
pub struct LocalSettings {
    pub model_path: PathBuf,
    pub temperature: f32,
    pub top_p: f32,
    pub repeat_penalty: f32,
    /// Per earlier use of a token in the last 64 (llama.cpp's frequency
    /// penalty), and once for any use (presence): a turn does not say
    /// "the app" five times.
    pub frequency_penalty: f32,
    pub presence_penalty: f32,
    /// Tokens of context (prompt + reply).
    pub context_size: u32,
    pub threads: i32,
    /// Fixed seed for reproducible runs (tests, benchmarks); random otherwise.
    pub seed: Option<u32>,
}

impl LocalSettings {
    pub fn new(model_path: PathBuf, temperature: f32) -> Self {
        LocalSettings {
            model_path,
            temperature,
            top_p: 0.9,
            repeat_penalty: 1.15,
            frequency_penalty: 0.1,
            presence_penalty: 0.1,
            context_size: 2048,
            threads: std::thread::available_parallelism().map_or(2, |n| n.get().min(8) as i32),
            seed: None,
        }
    }

    /// The sampler chain: repetition penalty, nucleus, temperature, draw.
    /// Greedy decoding makes a model this small loop.
    pub fn sampler(&self, model: &LlamaModel) -> LlamaSampler {
        self.sampler_with(model, None)
    }

    /// The same chain behind a grammar (GBNF) when one is given, so the
    /// reply is well-formed JSON in the requested shape. The repetition
    /// penalty is left out then: JSON repeats its quotes and braces.
    pub fn sampler_with(&self, model: &LlamaModel, grammar: Option<LlamaSampler>) -> LlamaSampler {
        self.sampler_seeing(model, grammar, &[], &[])
    }

    /// The chain for a reply to `context` (the prompt's tokens): without a
    /// grammar, the DRY sampler is shown `context`, so the reply does not
    /// copy long runs of it (see [`DRY_MULTIPLIER`]). `banned` tokens are
    /// never drawn.
    pub fn sampler_seeing(
        &self,
        model: &LlamaModel,
        grammar: Option<LlamaSampler>,
        context: &[LlamaToken],
        banned: &[LlamaToken],
    ) -> LlamaSampler {
        let seed = self.seed.unwrap_or_else(rand_seed);
        let mut chain = Vec::new();
        if !banned.is_empty() {
            let biases: Vec<LlamaLogitBias> = banned
                .iter()
                .map(|t| LlamaLogitBias::new(*t, f32::NEG_INFINITY))
                .collect();
            chain.push(LlamaSampler::logit_bias(model.n_vocab(), &biases));
        }
        match grammar {
            Some(g) => chain.push(g),
            None => {
                chain.push(LlamaSampler::penalties(
                    model.n_vocab(),
                    64,
                    self.repeat_penalty,
                    self.frequency_penalty,
                    self.presence_penalty,
                ));
                // llama.cpp takes 0 (or less) as "off": the window is the context.
                let window = (self.context_size as i32).max(context.len() as i32 + 1);
                chain.push(
                    LlamaSampler::dry(
                        model,
                        DRY_MULTIPLIER,
                        DRY_BASE,
                        DRY_ALLOWED_LENGTH,
                        window,
                        DRY_BREAKERS,
                    )
                    .with_tokens(context),
                );
            }
        }
        chain.extend([
            LlamaSampler::top_k(40),
            LlamaSampler::top_p(self.top_p, 1),
            LlamaSampler::temp(self.temperature),
            LlamaSampler::dist(seed),
        ]);
        LlamaSampler::chain_simple(chain)
    }
}

fn rand_seed() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos() ^ d.as_secs() as u32)
}

/// llama.cpp may be initialised once per process; this is that one handle.
pub fn llama() -> Result<&'static LlamaBackend, LlmError> {
    static BACKEND: OnceLock<Result<LlamaBackend, String>> = OnceLock::new();
    BACKEND
        .get_or_init(|| {
            // llama.cpp logs to stderr by default, which would draw over the TUI.
            llama_cpp_2::send_logs_to_tracing(llama_cpp_2::LogOptions::default());
            LlamaBackend::init().map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| LlmError::Model(format!("cannot start llama.cpp: {e}")))
}

pub struct LoadedModel {
    pub model: LlamaModel,
    template: Option<LlamaChatTemplate>,
    pub load_time: std::time::Duration,
}

impl LoadedModel {
    /// Loads and checks a GGUF file, with errors that name the path.
    pub fn load(path: &Path) -> Result<LoadedModel, LlmError> {
        let started = std::time::Instant::now();
        let mut magic = [0u8; 4];
        match std::fs::File::open(path)
            .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut magic))
        {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(LlmError::Model(format!(
                    "model file not found: {}",
                    path.display()
                )));
            }
            Err(e) => {
                return Err(LlmError::Model(format!(
                    "cannot read the model {}: {e}",
                    path.display()
                )));
            }
            Ok(()) if &magic != b"GGUF" => {
                return Err(LlmError::Model(format!(
                    "{} is not a GGUF model file (corrupt, or the wrong file)",
                    path.display()
                )));
            }
            Ok(()) => {}
        }
        let model = LlamaModel::load_from_file(llama()?, path, &LlamaModelParams::default())
            .map_err(|e| {
                LlmError::Model(format!(
                    "llama.cpp cannot load {}: {e} (is the file complete?)",
                    path.display()
                ))
            })?;
        let template = model.chat_template(None).ok();
        let load_time = started.elapsed();
        tracing::info!(target: "llm", path = %path.display(), load_ms = load_time.as_millis() as u64, has_template = template.is_some(), "local model loaded");
        Ok(LoadedModel {
            model,
            template,
            load_time,
        })
    }

    /// The prompt in the model's own chat template (ChatML if it has none).
    pub fn render_prompt(&self, messages: &[ChatMessage]) -> Result<String, LlmError> {
        if let Some(template) = &self.template {
            let chat: Result<Vec<_>, _> = messages
                .iter()
                .map(|m| LlamaChatMessage::new(role_name(m.role).into(), m.content.clone()))
                .collect();
            if let Ok(chat) = chat
                && let Ok(prompt) = self.model.apply_chat_template(template, &chat, true)
            {
                return Ok(prompt);
            }
        }
        Ok(chatml(messages))
    }

    pub fn tokenize(&self, prompt: &str) -> Vec<llama_cpp_2::token::LlamaToken> {
        self.model.vocab().tokenize(prompt.as_bytes(), true, true)
    }

    /// The first tokens of `names` (full and first, with and without a
    /// leading space): banning them keeps a reply from writing the name.
    /// A token shorter than three characters ("K" of "Kwame") would ban
    /// too much else and is left alone.
    fn name_tokens<'n>(&self, names: impl IntoIterator<Item = &'n String>) -> Vec<LlamaToken> {
        let vocab = self.model.vocab();
        let mut tokens = Vec::new();
        for name in names {
            let name = name.trim();
            let first = name.split_whitespace().next().unwrap_or(name);
            for form in [
                name.to_string(),
                first.to_string(),
                format!(" {name}"),
                format!(" {first}"),
            ] {
                let Some(&token) = vocab.tokenize(form.as_bytes(), false, false).first() else {
                    continue;
                };
                let piece = vocab.token_to_piece(token, false, None);
                if String::from_utf8_lossy(&piece).trim().chars().count() >= 3 {
                    tokens.push(token);
                }
            }
        }
        tokens.sort_by_key(|t| t.0);
        tokens.dedup();
        tokens
    }
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::System => "system",
        Role::User => "user",
        Role::Assistant => "assistant",
    }
}

/// ChatML, the format SmolLM2 and many small models are trained on.
pub fn chatml(messages: &[ChatMessage]) -> String {
    let mut prompt = String::new();
    for m in messages {
        prompt.push_str(&format!(
            "<|im_start|>{}\n{}<|im_end|>\n",
            role_name(m.role),
            m.content
        ));
    }
    prompt.push_str("<|im_start|>assistant\n");
    prompt
}

struct Engine {
    settings: LocalSettings,
    loaded: Mutex<Option<Arc<LoadedModel>>>,
    /// One generation at a time.
    turn: Mutex<()>,
    /// What the status line calls the model, once its file was read.
    name: OnceLock<String>,
}

impl Engine {
    fn model(&self) -> Result<Arc<LoadedModel>, LlmError> {
        let mut slot = self.loaded.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(model) = slot.as_ref() {
            return Ok(model.clone());
        }
        let model = Arc::new(LoadedModel::load(&self.settings.model_path)?);
        *slot = Some(model.clone());
        Ok(model)
    }
}

/// How long exit (or dropping a backend) waits for generation threads to
/// stop. They check their cancel flag before every token and between prompt
/// chunks, so this is only reached when a model load or one decode step is
/// extremely slow.
pub const JOIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Prompt tokens decoded per step, so that a cancel lands between steps.
const PROMPT_CHUNK: usize = 64;

/// One generation thread, as registered for [`shutdown`].
struct Generation {
    /// The [`LocalBackend`] that started it.
    owner: usize,
    cancel: Arc<AtomicBool>,
    handle: JoinHandle<()>,
}

/// Every generation thread not yet joined, and whether the process is
/// shutting down (then no new one starts).
struct Registry {
    running: Vec<Generation>,
    closed: bool,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    running: Vec::new(),
    closed: false,
});

fn registry() -> std::sync::MutexGuard<'static, Registry> {
    REGISTRY.lock().unwrap_or_else(|p| p.into_inner())
}

/// Cancels and joins the generation threads `which` selects, waiting up to
/// `timeout` in all. Returns how many were still running at the deadline
/// (logged; they are left detached).
fn stop(which: impl Fn(&Generation) -> bool, close: bool, timeout: Duration) -> usize {
    let mut stopping = {
        let mut registry = registry();
        registry.closed |= close;
        let (stopping, kept) = std::mem::take(&mut registry.running)
            .into_iter()
            .partition::<Vec<_>, _>(|g| which(g));
        registry.running = kept;
        stopping
    };
    // Never join the calling thread itself.
    let me = std::thread::current().id();
    stopping.retain(|g| g.handle.thread().id() != me);
    for g in &stopping {
        g.cancel.store(true, Ordering::SeqCst);
    }
    let started = Instant::now();
    let deadline = started + timeout;
    let mut late = 0;
    for g in stopping {
        while !g.handle.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        if g.handle.is_finished() {
            let _ = g.handle.join();
        } else {
            late += 1;
        }
    }
    if late > 0 {
        tracing::warn!(target: "llm", late, waited_ms = started.elapsed().as_millis() as u64, "local generation threads still running after the shutdown wait");
    }
    late
}

/// Cancels every generation of the process and joins its thread (waiting up
/// to `timeout`), and refuses new ones from then on. Call it before the
/// process exits: `main` does, through [`ExitGuard`]. Returns how many
/// threads were still running at the deadline.
pub fn shutdown(timeout: Duration) -> usize {
    stop(|_| true, true, timeout)
}

/// Runs [`shutdown`] when dropped: `main` holds one for as long as anything
/// may generate, so every way out (success, error, Ctrl-C, TUI quit, panic)
/// stops and joins the generation threads before llama.cpp's statics go.
pub struct ExitGuard;

impl Drop for ExitGuard {
    fn drop(&mut self) {
        shutdown(JOIN_TIMEOUT);
    }
}

/// Number of generation threads not yet joined (finished ones included).
pub fn registered_generations() -> usize {
    registry().running.len()
}

pub struct LocalBackend {
    engine: Arc<Engine>,
    /// Tells this backend's generations apart in the registry.
    id: usize,
}

impl LocalBackend {
    pub fn new(settings: LocalSettings) -> Self {
        static NEXT_ID: AtomicUsize = AtomicUsize::new(0);
        LocalBackend {
            engine: Arc::new(Engine {
                settings,
                loaded: Mutex::new(None),
                turn: Mutex::new(()),
                name: OnceLock::new(),
            }),
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
        }
    }

    /// Cancels this backend's generations and joins their threads (up to
    /// `timeout`); it can still be used afterwards. Returns how many were
    /// still running at the deadline.
    pub fn shutdown(&self, timeout: Duration) -> usize {
        let id = self.id;
        stop(|g| g.owner == id, false, timeout)
    }

    pub fn settings(&self) -> &LocalSettings {
        &self.engine.settings
    }

    /// Loads the model now (it is otherwise loaded on the first request).
    pub fn preload(&self) -> Result<Arc<LoadedModel>, LlmError> {
        self.engine.model()
    }

    /// True while a generation holds the model (tests use it to see a cancel land).
    pub fn is_generating(&self) -> bool {
        self.engine.turn.try_lock().is_err()
    }

    /// Tokens the request's prompt takes, as the model will see it.
    pub fn count_prompt_tokens(&self, request: &ChatRequest) -> Result<usize, LlmError> {
        let model = self.engine.model()?;
        Ok(model
            .tokenize(&model.render_prompt(&request.messages)?)
            .len())
    }
}

type Sender = mpsc::Sender<Result<ChatChunk, LlmError>>;

impl ChatBackend for LocalBackend {
    fn sampling(&self) -> super::Sampling {
        super::Sampling {
            temperature: Some(self.engine.settings.temperature),
            seed: self.engine.settings.seed.map(u64::from),
        }
    }

    fn info(&self) -> BackendInfo {
        let path = &self.engine.settings.model_path;
        // Read from the file once it is there (see `gguf::display_name`).
        let model = match self.engine.name.get() {
            Some(name) => name.clone(),
            None if path.exists() => self
                .engine
                .name
                .get_or_init(|| super::gguf::display_name(path))
                .clone(),
            None => super::gguf::display_name(path),
        };
        BackendInfo {
            kind: "local",
            model,
            endpoint: path.display().to_string(),
        }
    }

    fn context_window(&self) -> Option<u32> {
        Some(self.engine.settings.context_size)
    }

    fn stream(&self, request: ChatRequest) -> ChatStream {
        let (tx, rx) = mpsc::channel(256);
        let engine = self.engine.clone();
        let cancel = Arc::new(AtomicBool::new(false));
        let out = Out {
            tx,
            cancel: cancel.clone(),
        };
        let spawned = {
            // Registered under the lock, so `shutdown` cannot miss a thread
            // that is starting, and none starts after it.
            let mut registry = registry();
            // Threads that have ended are joined here (instantly).
            let (done, running): (Vec<_>, Vec<_>) = std::mem::take(&mut registry.running)
                .into_iter()
                .partition(|g| g.handle.is_finished());
            registry.running = running;
            for g in done {
                let _ = g.handle.join();
            }
            if registry.closed {
                Err("the process is shutting down".to_string())
            } else {
                std::thread::Builder::new()
                    .name("llm-local".into())
                    .spawn(move || {
                        if let Err(e) = generate(&engine, &request, &out) {
                            out.send(Err(e));
                        }
                    })
                    .map(|handle| {
                        registry.running.push(Generation {
                            owner: self.id,
                            cancel: cancel.clone(),
                            handle,
                        })
                    })
                    .map_err(|e| e.to_string())
            }
        };
        if let Err(e) = spawned {
            return Box::pin(futures::stream::once(async move {
                Err(LlmError::Model(format!(
                    "cannot start the generation thread: {e}"
                )))
            }));
        }
        Box::pin(LocalStream { rx, cancel })
    }
}

impl Drop for LocalBackend {
    fn drop(&mut self) {
        self.shutdown(JOIN_TIMEOUT);
    }
}

/// The receiving end of one generation; dropping it cancels the generation.
struct LocalStream {
    rx: mpsc::Receiver<Result<ChatChunk, LlmError>>,
    cancel: Arc<AtomicBool>,
}

impl futures::Stream for LocalStream {
    type Item = Result<ChatChunk, LlmError>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx)
    }
}

impl Drop for LocalStream {
    fn drop(&mut self) {
        self.cancel.store(true, Ordering::SeqCst);
    }
}

/// The generation thread's side: the channel and the cancel flag.
struct Out {
    tx: Sender,
    cancel: Arc<AtomicBool>,
}

impl Out {
    /// Cancelled: the stream was dropped, or the process is shutting down.
    fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::SeqCst) || self.tx.is_closed()
    }

    /// Sends one item; false when cancelled. Never blocks past a cancel
    /// (a full channel whose reader stopped reading would block forever).
    fn send(&self, item: Result<ChatChunk, LlmError>) -> bool {
        let mut item = item;
        loop {
            match self.tx.try_send(item) {
                Ok(()) => return true,
                Err(mpsc::error::TrySendError::Closed(_)) => return false,
                Err(mpsc::error::TrySendError::Full(back)) => {
                    if self.cancelled() {
                        return false;
                    }
                    item = back;
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        }
    }
}

fn generate(engine: &Engine, request: &ChatRequest, tx: &Out) -> Result<(), LlmError> {
    let _turn = engine.turn.lock().unwrap_or_else(|p| p.into_inner());
    if tx.cancelled() {
        return Ok(());
    }
    let loaded = engine.model()?;
    let settings = &engine.settings;
    let started = std::time::Instant::now();
    match run(&loaded, settings, request, tx)? {
        Some(usage) => {
            let secs = started.elapsed().as_secs_f64();
            tracing::info!(target: "llm", backend = "local", prompt_tokens = usage.prompt_tokens, completion_tokens = usage.completion_tokens,
                latency_ms = (secs * 1000.0) as u64, tokens_per_s = usage.completion_tokens as f64 / secs.max(1e-9), "local generation finished");
            tx.send(Ok(ChatChunk::Usage(usage)));
            Ok(())
        }
        None => {
            tracing::info!(target: "llm", backend = "local", "local generation cancelled");
            Ok(())
        }
    }
}

fn failed(what: &str, error: impl std::fmt::Display) -> LlmError {
    LlmError::Model(format!("{what}: {error}"))
}

/// The decode loop. `Ok(None)`: the receiver went away (cancelled).
fn run(
    loaded: &LoadedModel,
    settings: &LocalSettings,
    request: &ChatRequest,
    tx: &Out,
) -> Result<Option<Usage>, LlmError> {
    let model = &loaded.model;
    let settings = &LocalSettings {
        seed: request.seed(settings.seed),
        ..settings.clone()
    };
    let prompt = loaded.render_prompt(&request.messages)?;
    let tokens = loaded.tokenize(&prompt);
    let n_ctx = settings.context_size.min(model.n_ctx_train().max(512));
    if tokens.len() + 8 >= n_ctx as usize {
        return Err(LlmError::Model(format!(
            "the prompt takes {} tokens, more than the {n_ctx}-token context allows",
            tokens.len()
        )));
    }
    let budget = (request.max_tokens as usize).min(n_ctx as usize - tokens.len());
    let params = LlamaContextParams::default()
        .with_n_ctx(NonZeroU32::new(n_ctx))
        .with_n_batch(n_ctx)
        .with_n_threads(settings.threads)
        .with_n_threads_batch(settings.threads);
    let mut ctx = model
        .new_context(llama()?, params)
        .map_err(|e| failed("cannot create a context", e))?;
    let mut batch = LlamaBatch::new(n_ctx as usize, 1);
    let last = tokens.len() - 1;
    // In chunks, so that a cancel (or exit) need not wait for a long prompt.
    for (c, chunk) in tokens.chunks(PROMPT_CHUNK).enumerate() {
        if tx.cancelled() {
            return Ok(None);
        }
        batch.clear();
        for (j, token) in chunk.iter().enumerate() {
            let i = c * PROMPT_CHUNK + j;
            batch
                .add(*token, i as i32, &[0], i == last)
                .map_err(|e| failed("prompt batch", e))?;
        }
        ctx.decode(&mut batch)
            .map_err(|e| failed("decoding the prompt failed", e))?;
    }

    let grammar = request.json_schema.as_ref().and_then(|s| {
        let built = super::grammar::gbnf(&s.schema)
            .and_then(|g| LlamaSampler::grammar(model, &g, "root").map_err(|e| e.to_string()));
        built
            .inspect_err(
                |e| tracing::warn!(target: "llm", error = %e, "no grammar for this schema"),
            )
            .ok()
    });
    // A persona's turn is prose: it may not copy the prompt (the others'
    // turns) and it lands on a sentence end near the cap. JSON is neither.
    let prose = request.purpose == Purpose::Turn && request.json_schema.is_none();
    // A persona never writes their own name; nor, in a turn's first
    // tokens, anyone's (a label, or "I'm Maria" said by Kwame).
    let names = request.names.as_ref().filter(|_| prose);
    let own = names.map_or_else(Vec::new, |n| loaded.name_tokens([&n.own]));
    let mut sampler = if prose {
        settings.sampler_seeing(model, grammar, &tokens, &own)
    } else {
        settings.sampler_with(model, grammar)
    };
    let mut opening = names.map(|n| {
        let all = loaded.name_tokens(n.others.iter().chain([&n.own]));
        settings.sampler_seeing(model, None, &tokens, &all)
    });
    let landing = if prose {
        budget.saturating_sub(landing_tokens(budget))
    } else {
        budget
    };
    let mut tail = String::new();
    // Text not sent yet: the word still being written.
    let mut word = String::new();
    let mut landed = false;
    let vocab = model.vocab();
    let mut pending = Vec::new();
    let mut generated = 0u32;
    let mut position = tokens.len() as i32;
    while (generated as usize) < budget {
        if tx.cancelled() {
            return Ok(None);
        }
        let token = match opening.as_mut() {
            Some(first) => {
                let token = first.sample(&ctx, batch.n_tokens() - 1);
                sampler.accept(token);
                token
            }
            None => sampler.sample(&ctx, batch.n_tokens() - 1),
        };
        if generated + 1 >= OPENING_TOKENS {
            opening = None;
        }
        if vocab.is_eog(token) {
            break;
        }
        generated += 1;
        pending.extend(vocab.token_to_piece(token, false, None));
        let text = take_utf8(&mut pending);
        if !text.is_empty() {
            keep_tail(&mut tail, &text);
            // Prose is sent a whole word at a time (one token late), so a
            // turn stopped at its cap ends on a word, not "a game-ch".
            word.push_str(&text);
            let whole = if prose {
                whole_words(&word)
            } else {
                word.len()
            };
            if whole > 0 {
                let text: String = word.drain(..whole).collect();
                if !tx.send(Ok(ChatChunk::Text(text))) {
                    return Ok(None);
                }
            }
        }
        if generated as usize >= landing && ends_sentence(&tail) {
            landed = true;
            break;
        }
        batch.clear();
        batch
            .add(token, position, &[0], true)
            .map_err(|e| failed("batch", e))?;
        position += 1;
        ctx.decode(&mut batch)
            .map_err(|e| failed("decoding failed", e))?;
    }
    let reason = if landed || (generated as usize) < budget {
        FinishReason::Stop
    } else {
        FinishReason::Length
    };
    // At the cap the word in hand is cut short: it is dropped.
    if reason == FinishReason::Stop || !prose {
        word.push_str(&String::from_utf8_lossy(&pending));
        if !word.is_empty() && !tx.send(Ok(ChatChunk::Text(word))) {
            return Ok(None);
        }
    }
    if !tx.send(Ok(ChatChunk::Finish(reason))) {
        return Ok(None);
    }
    Ok(Some(Usage {
        prompt_tokens: tokens.len() as u32,
        completion_tokens: generated,
    }))
}

/// How many tokens before the cap a turn starts looking for a sentence end
/// to stop at: a third of the budget, so a 160-token turn ends after the
/// first full sentence past token 107 instead of mid-word at 160.
fn landing_tokens(budget: usize) -> usize {
    budget / 3
}

/// How much of `text` is whole words: up to and including the last
/// character that cannot be inside a word (a space, a line break,
/// punctuation). What follows may still be a word in the making.
fn whole_words(text: &str) -> usize {
    let in_word = |c: char| c.is_alphanumeric() || matches!(c, '\'' | '’' | '-');
    text.char_indices()
        .rev()
        .find(|(_, c)| !in_word(*c))
        .map_or(0, |(i, c)| i + c.len_utf8())
}

/// Keeps the last few characters of the reply (enough to see a sentence end).
fn keep_tail(tail: &mut String, text: &str) {
    tail.push_str(text);
    if tail.len() > 32 {
        let mut cut = tail.len() - 16;
        while !tail.is_char_boundary(cut) {
            cut += 1;
        }
        tail.drain(..cut);
    }
}

/// Whether the text ends a sentence: `.`, `!`, `?` or `…` (a closing quote
/// or bracket may follow) after a word, not a number ("3." may go on "3.5")
/// or a lone initial ("J."); a line break after a sentence counts too.
fn ends_sentence(text: &str) -> bool {
    let t = text.trim_end_matches([' ', '\n']);
    let t = t.trim_end_matches(['"', '\'', '”', '’', ')']);
    let Some(body) = t.strip_suffix(['.', '!', '?', '…']) else {
        return false;
    };
    let word: String = body
        .chars()
        .rev()
        .take_while(|c| c.is_alphanumeric())
        .collect();
    !word.is_empty() && !word.chars().all(|c| c.is_ascii_digit()) && word.chars().count() > 1
}

/// Takes the longest valid UTF-8 prefix; a multi-byte character split across
/// tokens waits for its last byte.
fn take_utf8(pending: &mut Vec<u8>) -> String {
    let valid = match std::str::from_utf8(pending) {
        Ok(s) => s.len(),
        Err(e) if e.error_len().is_none() => e.valid_up_to(),
        // Invalid bytes, not just incomplete: emit them replaced.
        Err(_) => pending.len(),
    };
    let text = String::from_utf8_lossy(&pending[..valid]).into_owned();
    pending.drain(..valid);
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_characters_wait_for_their_last_byte() {
        let bytes = "é!".as_bytes();
        let mut pending = bytes[..1].to_vec();
        assert_eq!(take_utf8(&mut pending), "");
        pending.extend_from_slice(&bytes[1..]);
        assert_eq!(take_utf8(&mut pending), "é!");
        assert!(pending.is_empty());
    }

    #[test]
    fn sentence_ends_are_told_from_numbers_and_initials() {
        for yes in [
            "I like it.",
            "Why not?",
            "Great!\n",
            "He said \"no.\"",
            "So… fine…",
            "it is OK. ",
        ] {
            assert!(ends_sentence(yes), "{yes:?}");
        }
        for no in [
            "I think it's a game-ch",
            "costs 3.",
            "ask J.",
            "and then",
            "",
            "!",
            "pros:",
        ] {
            assert!(!ends_sentence(no), "{no:?}");
        }
    }

    #[test]
    fn the_tail_keeps_the_end_of_the_reply() {
        assert_eq!(whole_words("a game-ch"), 2);
        assert_eq!(whole_words("I think it's"), 8);
        assert_eq!(whole_words("well, "), 6);
        assert_eq!(whole_words("done."), 5);
        assert_eq!(whole_words("naïve café"), "naïve ".len());
        assert_eq!(whole_words("word"), 0);
        let mut tail = String::new();
        for piece in [
            "Offline mode ",
            "would help me a lot on the road",
            " when there is no signal",
            ".",
        ] {
            keep_tail(&mut tail, piece);
        }
        assert!(tail.len() <= 32 && tail.ends_with("no signal."), "{tail:?}");
        assert!(ends_sentence(&tail));
        let mut tail = "é".repeat(20);
        keep_tail(&mut tail, "ü");
        assert!(tail.ends_with('ü'));
    }

    #[test]
    fn chatml_fallback_ends_with_the_assistant_turn() {
        let p = chatml(&[ChatMessage::system("be brief"), ChatMessage::user("hi")]);
        assert_eq!(
            p,
            "<|im_start|>system\nbe brief<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
        );
    }

    #[test]
    fn missing_and_corrupt_model_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.gguf");
        let err = LoadedModel::load(&missing).err().unwrap().to_string();
        assert!(
            err.contains("model file not found") && err.contains("nope.gguf"),
            "{err}"
        );
        let corrupt = dir.path().join("bad.gguf");
        std::fs::write(&corrupt, b"this is not a model").unwrap();
        let err = LoadedModel::load(&corrupt).err().unwrap().to_string();
        assert!(
            err.contains("not a GGUF model") && err.contains("bad.gguf"),
            "{err}"
        );
    }
}
