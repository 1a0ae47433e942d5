//! Tokens per second of a debate turn through persona-sim's local backend
//! versus a bare llama-cpp-2 loop on the same model, prompt, sampler and
//! seed, in the same process; plus model load time and peak RSS.
//!
//! `cargo run --release --example bench_local -- [MODEL.gguf] [RUNS]`

use std::num::NonZeroU32;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use futures::StreamExt;
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use persona_sim::llm::local::{LoadedModel, LocalBackend, LocalSettings};
use persona_sim::llm::{ChatBackend, ChatChunk, ChatMessage, ChatRequest};
use persona_sim::persona::builtin_panel;
use persona_sim::sim::prompts::{persona_system_prompt, turn_prompt};

const MAX_TOKENS: u32 = 160;

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// The bare loop: llama-cpp-2 only, the same sampler chain.
fn bare(model: &LoadedModel, settings: &LocalSettings, prompt: &str) -> (u32, Duration) {
    let backend: &LlamaBackend = persona_sim::llm::local::llama().unwrap();
    let started = Instant::now();
    let tokens = model.tokenize(prompt);
    let n_ctx = settings.context_size;
    let params = LlamaContextParams::default()
        .with_n_ctx(NonZeroU32::new(n_ctx))
        .with_n_batch(n_ctx)
        .with_n_threads(settings.threads)
        .with_n_threads_batch(settings.threads);
    let mut ctx = model.model.new_context(backend, params).unwrap();
    let mut batch = LlamaBatch::new(n_ctx as usize, 1);
    for (i, t) in tokens.iter().enumerate() {
        batch
            .add(*t, i as i32, &[0], i == tokens.len() - 1)
            .unwrap();
    }
    ctx.decode(&mut batch).unwrap();
    let mut sampler = settings.sampler(&model.model);
    let vocab = model.model.vocab();
    let mut n = 0;
    let mut pos = tokens.len() as i32;
    let mut out = Vec::new();
    while n < MAX_TOKENS {
        let token = sampler.sample(&ctx, batch.n_tokens() - 1);
        if vocab.is_eog(token) {
            break;
        }
        n += 1;
        out.extend(vocab.token_to_piece(token, false, None));
        batch.clear();
        batch.add(token, pos, &[0], true).unwrap();
        pos += 1;
        ctx.decode(&mut batch).unwrap();
    }
    (n, started.elapsed())
}

async fn through_persona_sim(backend: &LocalBackend, request: ChatRequest) -> (u32, Duration) {
    let started = Instant::now();
    let mut stream = backend.stream(request);
    let mut n = 0;
    while let Some(item) = stream.next().await {
        if let ChatChunk::Usage(u) = item.unwrap() {
            n = u.completion_tokens;
        }
    }
    (n, started.elapsed())
}

#[tokio::main]
async fn main() {
    let path = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            directories::ProjectDirs::from("", "", "persona-sim")
                .unwrap()
                .data_dir()
                .join("models/SmolLM2-135M-Instruct.Q4_1.gguf")
        });
    let runs: usize = std::env::args()
        .nth(2)
        .and_then(|r| r.parse().ok())
        .unwrap_or(5);
    let mut settings = LocalSettings::new(path.clone(), 0.3);
    settings.seed = Some(7);
    if let Some(threads) = std::env::args().nth(3).and_then(|t| t.parse().ok()) {
        settings.threads = threads;
    }
    let backend = LocalBackend::new(settings.clone());
    let rss_before = peak_rss_mb();
    let loaded = backend.preload().expect("model loads");
    println!("model: {}", path.display());
    println!(
        "load time: {:?}; peak RSS after load: {:.0} MB (before: {:.0} MB)",
        loaded.load_time,
        peak_rss_mb(),
        rss_before
    );

    let panel = builtin_panel();
    let request = ChatRequest {
        messages: vec![
            ChatMessage::system(persona_system_prompt(&panel[0])),
            ChatMessage::user(turn_prompt(
                "Offline mode for field workers",
                &[],
                &panel[0],
                1,
                2,
                None,
            )),
        ],
        max_tokens: MAX_TOKENS,
        json_schema: None,
        purpose: Default::default(),
        attempt: 0,
        names: None,
    };
    let prompt = loaded.render_prompt(&request.messages).unwrap();
    println!(
        "prompt: {} tokens; reply cap {MAX_TOKENS}; {} threads; {runs} runs each, alternating",
        loaded.tokenize(&prompt).len(),
        settings.threads
    );
    let (mut bare_rates, mut sim_rates) = (Vec::new(), Vec::new());
    let mode = std::env::args().nth(4).unwrap_or_else(|| "both".into());
    for _ in 0..runs {
        // On a fresh thread each time, as persona-sim runs each turn, so both
        // get the same OpenMP thread-team setup.
        let (n, t) = if mode != "sim" {
            std::thread::scope(|s| {
                s.spawn(|| bare(&loaded, &settings, &prompt))
                    .join()
                    .unwrap()
            })
        } else {
            (1, Duration::from_secs(1))
        };
        bare_rates.push(n as f64 / t.as_secs_f64());
        let (n2, t2) = if mode != "bare" {
            through_persona_sim(&backend, request.clone()).await
        } else {
            (1, Duration::from_secs(1))
        };
        sim_rates.push(n2 as f64 / t2.as_secs_f64());
        let threads = std::fs::read_dir("/proc/self/task").map_or(0, |d| d.count());
        println!(
            "  bare {n} tok in {t:.2?} | persona-sim {n2} tok in {t2:.2?} | {threads} OS threads"
        );
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        v[v.len() / 2]
    };
    let (b, s) = (median(&mut bare_rates), median(&mut sim_rates));
    println!(
        "median tokens/s (prompt + generation): bare llama-cpp-2 {b:.1}, persona-sim {s:.1}, ratio {:.2}",
        s / b
    );
    println!("peak RSS: {:.0} MB", peak_rss_mb());
}
