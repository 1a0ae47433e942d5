//! Flags, environment and the config file, resolved once into [`Settings`]
//! that are passed down. Precedence: flags > environment > the config file
//! (TOML, [`default_config_path`] or `--config`) > defaults. Nothing deeper
//! reads the environment or the file.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::ValueEnum as _;
use serde::Deserialize;

use crate::cli::args::{self, BackendKind, Cli, Origin};
use crate::llm::openai::{DEFAULT_MODEL, OPENAI_BASE_URL, OpenAiSettings, Provider};
use crate::llm::{BackendChoice, LOCAL_AVAILABLE};
use crate::sim::debate::{DEFAULT_MAX_TOKENS_PER_TURN, DEFAULT_ROUNDS};
use crate::sim::devil::{DEFAULT_HERDING_THRESHOLD, DevilsAdvocate, Herding};

const OPENAI_TEMPERATURE: f32 = 0.8;
const LOCAL_TEMPERATURE: f32 = 0.3;
const DEFAULT_TIMEOUT_SECS: f64 = 30.0;
const DEFAULT_SLOW_CALL_SECS: f64 = 20.0;
const DEFAULT_METRICS_PORT: u16 = 8000;
const DEFAULT_METRICS_BIND: &str = "127.0.0.1";
const DEFAULT_ENVIRONMENT: &str = "development";
const DEFAULT_THEME: &str = "dark";

/// Replies are capped shorter on the small local model: it rambles.
const LOCAL_MAX_TOKENS_PER_TURN: u32 = 160;

#[derive(Debug, Clone)]
pub struct Settings {
    pub data_dir: PathBuf,
    pub personas_path: PathBuf,
    pub log_file: PathBuf,
    pub backend: BackendChoice,
    /// Where the local model is (or would be installed).
    pub model_path: PathBuf,
    /// First source for `model fetch`.
    pub model_url: String,
    pub rounds: u32,
    pub max_tokens_per_turn: u32,
    pub max_tokens_total: Option<u32>,
    /// `--devils-advocate`, when given (each face has its own default).
    pub devils_advocate: Option<DevilsAdvocate>,
    pub herding_threshold: f64,
    /// The sampling seed (`--seed`), also in the backend's settings; kept
    /// here for what records a run.
    pub seed: Option<u32>,
    /// Saved debates, one JSON file each.
    pub sessions_dir: PathBuf,
    /// Where the TUI writes exports.
    pub exports_dir: PathBuf,
    pub mouse: bool,
    pub theme: Option<String>,
    /// The TUI starts in (and returns to, at each debate) the stage view.
    pub stage: bool,
    /// The LLM response cache (`--cache`); `None`: off.
    pub cache_dir: Option<PathBuf>,
    pub log_level: Option<String>,
    /// Where the metrics server listens; `None` with `--no-metrics`.
    pub metrics_addr: Option<std::net::SocketAddr>,
    pub environment: String,
    pub slow_call: Duration,
    /// Postgres for `serve`, `keys` and `db`; `None`: files.
    pub database_url: Option<String>,
    /// The spectator page (`--live`); `None`: debates are not published.
    pub live: Option<LiveSettings>,
}

/// Where and how debates are published live.
#[derive(Clone, PartialEq, Eq)]
pub struct LiveSettings {
    pub addr: std::net::SocketAddr,
    /// Viewers must give it (`?token=`); never shown in `Debug`.
    pub token: Option<String>,
    /// Viewers may send questions to the moderator.
    pub questions: bool,
}

impl std::fmt::Debug for LiveSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveSettings")
            .field("addr", &self.addr)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("questions", &self.questions)
            .finish()
    }
}

/// A setting that cannot be used. Each is a mistake in what the user gave
/// (a flag, a variable, the file), so the binary exits 2 on it, as clap
/// does on a bad flag.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "cannot find a home directory for the data dir; pass --data-dir or set PERSONA_SIM_DATA_DIR"
    )]
    NoDataDir,
    #[error(
        "--backend local: this build has no embedded model (it was built without the `local` feature)"
    )]
    LocalUnavailable,
    #[error(
        "--backend openai needs OPENAI_API_KEY (or OPENAI_BASE_URL for a server that needs no key, or --provider)"
    )]
    OpenAiWithoutKey,
    #[error(
        "--provider {provider} needs its key in {var} (set it in the environment, or `api_key` in the config file)"
    )]
    MissingProviderKey {
        provider: &'static str,
        var: &'static str,
    },
    #[error(
        "--provider {0} is an OpenAI-compatible server, and --backend local is the embedded model: drop one of them"
    )]
    ProviderWithLocal(&'static str),
    #[error("{what} {path}: the folder {folder} does not exist (create it first, or fix the path)")]
    MissingFolder {
        what: &'static str,
        path: PathBuf,
        folder: PathBuf,
    },
    #[error("cannot read the config file {path}: {reason}")]
    Unreadable { path: PathBuf, reason: String },
    /// A mistake in the config file: where, which key, and why.
    #[error("{}", file_error_text(path, *line, key.as_deref(), message))]
    File {
        path: PathBuf,
        line: Option<usize>,
        key: Option<String>,
        message: String,
    },
}

fn file_error_text(path: &Path, line: Option<usize>, key: Option<&str>, message: &str) -> String {
    let at = match line {
        Some(line) => format!("{}:{line}", path.display()),
        None => path.display().to_string(),
    };
    match key {
        Some(key) => format!("config file {at}: `{key}`: {message}"),
        None => format!("config file {at}: {message}"),
    }
}

impl Settings {
    /// How debates watch for herding; `default` is the face's policy when
    /// `--devils-advocate` is not given.
    pub fn herding(&self, default: DevilsAdvocate) -> Herding {
        Herding {
            threshold: self.herding_threshold,
            policy: self.devils_advocate.unwrap_or(default),
        }
    }
}

// ---------------------------------------------------------------------------
// The environment
// ---------------------------------------------------------------------------

/// What resolution reads from outside the command line: the variables clap
/// does not read (the keys) and where the config file is by default.
#[derive(Debug, Clone, Default)]
pub struct Environment {
    vars: BTreeMap<String, String>,
    default_config: Option<PathBuf>,
}

/// Variables read here rather than by clap: keys are never flags, so they
/// never show in `ps`.
const KEY_VARS: [&str; 4] = [
    "OPENAI_API_KEY",
    "ANTHROPIC_API_KEY",
    "GEMINI_API_KEY",
    "OPENROUTER_API_KEY",
];

impl Environment {
    /// This process's.
    pub fn process() -> Environment {
        let mut env = Environment {
            default_config: default_config_path(),
            ..Environment::default()
        };
        for var in KEY_VARS {
            if let Ok(value) = std::env::var(var) {
                env.vars.insert(var.to_string(), value);
            }
        }
        env
    }

    /// One variable set (for tests and embedding).
    pub fn with(mut self, var: &str, value: &str) -> Environment {
        self.vars.insert(var.to_string(), value.to_string());
        self
    }

    /// Where the config file is when neither `--config` nor
    /// `PERSONA_SIM_CONFIG` says.
    pub fn with_default_config(mut self, path: Option<PathBuf>) -> Environment {
        self.default_config = path;
        self
    }

    /// A variable's value; an empty or blank one counts as unset (a compose
    /// file's unset variable).
    fn var(&self, name: &str) -> Option<String> {
        self.vars
            .get(name)
            .filter(|v| !v.trim().is_empty())
            .cloned()
    }
}

/// `config.toml` in the platform's config folder (`~/.config/persona-sim`
/// on Linux); `None` without a home directory.
pub fn default_config_path() -> Option<PathBuf> {
    directories::ProjectDirs::from("", "", "persona-sim")
        .map(|dirs| dirs.config_dir().join("config.toml"))
}

/// The config file in effect: `--config` / `PERSONA_SIM_CONFIG`, else the
/// default place.
pub fn config_path(cli: &Cli, env: &Environment) -> Option<PathBuf> {
    cli.config.clone().or_else(|| env.default_config.clone())
}

// ---------------------------------------------------------------------------
// The config file
// ---------------------------------------------------------------------------

/// Every key of the config file: its name, its default as TOML (`None`:
/// unset by default, the example shown instead) and what it does. The
/// template and the nearest-key suggestions are made from it.
pub const FILE_KEYS: &[(&str, Option<&str>, &str, &str)] = &[
    (
        "provider",
        None,
        "\"openai\"",
        "An OpenAI-compatible service by name: openai, anthropic, gemini, ollama,\n\
         # openrouter, lmstudio, vllm. Sets base_url, the variable the key is read\n\
         # from and a default model.",
    ),
    (
        "backend",
        Some("\"auto\""),
        "",
        "auto (OpenAI-compatible when a key, base_url or provider is set, else the\n\
         # embedded model), openai or local.",
    ),
    (
        "model",
        Some("\"gpt-4o-mini\""),
        "",
        "Chat model name sent to the server (default: the provider's).",
    ),
    (
        "base_url",
        Some("\"https://api.openai.com/v1\""),
        "",
        "Any OpenAI-compatible server (default: the provider's).",
    ),
    (
        "api_key",
        None,
        "\"sk-...\"",
        "The key, when not in the provider's variable (OPENAI_API_KEY, ...). Keep\n\
         # this file private if you put it here.",
    ),
    (
        "temperature",
        None,
        "0.8",
        "Sampling temperature, 0 to 2 (default: 0.8 on servers, 0.3 on the local model).",
    ),
    ("seed", None, "42", "Sampling seed, for reproducible runs."),
    ("rounds", Some("2"), "", "Debate rounds, 1 to 20."),
    (
        "timeout",
        Some("30.0"),
        "",
        "Seconds to wait for the first token, and for the next one.",
    ),
    (
        "context_tokens",
        None,
        "4096",
        "The server's context size, for a server that does not say (>= 256).",
    ),
    (
        "max_tokens_total",
        None,
        "20000",
        "Stop a debate cleanly once it used this many tokens (>= 100).",
    ),
    (
        "model_path",
        None,
        "\"~/models/model.gguf\"",
        "GGUF file for the local backend (default: models/ in the data folder).",
    ),
    (
        "model_url",
        None,
        "\"https://mirror.example/model.gguf\"",
        "Where `model fetch` downloads the default model first.",
    ),
    (
        "personas",
        None,
        "\"~/team/personas.json\"",
        "Persona file (default: personas.json in the data folder).",
    ),
    (
        "data_dir",
        None,
        "\"~/persona-sim\"",
        "Where personas, sessions, exports and logs live.",
    ),
    (
        "database_url",
        None,
        "\"postgres://user:pass@host:5432/db\"",
        "Postgres for `serve`, `keys` and `db`.",
    ),
    (
        "cache",
        None,
        "\"~/.cache/persona-sim\"",
        "Keep every LLM reply here and answer the same request from it.",
    ),
    (
        "log_file",
        None,
        "\"~/persona-sim.log\"",
        "Log file (default: logs/app.log in the data folder).",
    ),
    (
        "log_level",
        Some("\"info\""),
        "",
        "error, warn, info, debug or trace.",
    ),
    (
        "metrics",
        Some("true"),
        "",
        "Start the metrics server (TUI and serve).",
    ),
    (
        "metrics_port",
        Some("8000"),
        "",
        "Port of /metrics, /healthz and /health.",
    ),
    (
        "metrics_bind",
        Some("\"127.0.0.1\""),
        "",
        "Address the metrics server listens on.",
    ),
    (
        "environment",
        Some("\"development\""),
        "",
        "Reported by /health.",
    ),
    (
        "slow_call_secs",
        Some("20.0"),
        "",
        "LLM calls slower than this are logged at WARN.",
    ),
    (
        "mouse",
        Some("false"),
        "",
        "Capture the mouse for wheel scrolling (turns off text selection).",
    ),
    (
        "stage",
        Some("false"),
        "",
        "Start the TUI in the stage view.",
    ),
    (
        "theme",
        Some("\"dark\""),
        "",
        "The TUI's colours: dark, light or high-contrast.",
    ),
    (
        "devils_advocate",
        None,
        "\"auto\"",
        "auto or off (default: auto in `simulate`, off in the TUI).",
    ),
    (
        "herding_threshold",
        Some("0.8"),
        "",
        "The share of stances (0.5 to 1.0) that counts as herding.",
    ),
];

/// The file as written; values are checked in [`FileValues::check`].
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    provider: Option<String>,
    backend: Option<String>,
    model: Option<String>,
    base_url: Option<String>,
    api_key: Option<String>,
    temperature: Option<f64>,
    seed: Option<u32>,
    rounds: Option<u32>,
    timeout: Option<f64>,
    context_tokens: Option<u32>,
    max_tokens_total: Option<u32>,
    model_path: Option<PathBuf>,
    model_url: Option<String>,
    personas: Option<PathBuf>,
    data_dir: Option<PathBuf>,
    database_url: Option<String>,
    cache: Option<PathBuf>,
    log_file: Option<PathBuf>,
    log_level: Option<String>,
    metrics: Option<bool>,
    metrics_port: Option<u16>,
    metrics_bind: Option<String>,
    environment: Option<String>,
    slow_call_secs: Option<f64>,
    mouse: Option<bool>,
    stage: Option<bool>,
    theme: Option<String>,
    devils_advocate: Option<String>,
    herding_threshold: Option<f64>,
}

/// The file's values, checked as the flags are.
#[derive(Debug, Default)]
struct FileValues {
    path: Option<PathBuf>,
    provider: Option<Provider>,
    backend: Option<BackendKind>,
    model: Option<String>,
    base_url: Option<String>,
    api_key: Option<String>,
    temperature: Option<f32>,
    seed: Option<u32>,
    rounds: Option<u32>,
    timeout: Option<f64>,
    context_tokens: Option<u32>,
    max_tokens_total: Option<u32>,
    model_path: Option<PathBuf>,
    model_url: Option<String>,
    personas: Option<PathBuf>,
    data_dir: Option<PathBuf>,
    database_url: Option<String>,
    cache: Option<PathBuf>,
    log_file: Option<PathBuf>,
    log_level: Option<String>,
    metrics: Option<bool>,
    metrics_port: Option<u16>,
    metrics_bind: Option<std::net::IpAddr>,
    environment: Option<String>,
    slow_call_secs: Option<f64>,
    mouse: Option<bool>,
    stage: Option<bool>,
    theme: Option<String>,
    devils_advocate: Option<DevilsAdvocate>,
    herding_threshold: Option<f64>,
}

/// The 1-based line a byte offset is on.
fn line_at(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// The line where `key` is set (`key = ...`), for errors found after parsing.
fn line_of_key(text: &str, key: &str) -> Option<usize> {
    text.lines()
        .position(|line| {
            line.trim_start()
                .strip_prefix(key)
                .is_some_and(|rest| rest.trim_start().starts_with('='))
        })
        .map(|i| i + 1)
}

/// The key set on a line (`key = value`), if any.
fn key_on_line(text: &str, line: usize) -> Option<String> {
    let (key, _) = text.lines().nth(line.checked_sub(1)?)?.split_once('=')?;
    let key = key.trim().trim_matches('"');
    (!key.is_empty() && !key.starts_with('#')).then(|| key.to_string())
}

/// The known key nearest a mistyped one, if it is near enough to be meant.
pub(crate) fn nearest<'a>(word: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    known
        .into_iter()
        .map(|k| (strsim::damerau_levenshtein(word, k), k))
        .filter(|(distance, k)| *distance <= (k.len() / 3).max(2))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, k)| k)
}

/// `~/` at the start of a path in the file means the home folder.
fn expand_home(path: PathBuf) -> PathBuf {
    let Ok(rest) = path.strip_prefix("~") else {
        return path;
    };
    match directories::BaseDirs::new() {
        Some(dirs) => dirs.home_dir().join(rest),
        None => path,
    }
}

impl FileValues {
    /// Reads and checks the file; a missing file is no file.
    fn load(path: &Path) -> Result<FileValues, ConfigError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(FileValues::default()),
            Err(e) => {
                return Err(ConfigError::Unreadable {
                    path: path.to_path_buf(),
                    reason: e.to_string(),
                });
            }
        };
        FileValues::parse(path, &text)
    }

    fn parse(path: &Path, text: &str) -> Result<FileValues, ConfigError> {
        let file: FileConfig = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|span| line_at(text, span.start));
            let message = e.message().trim().to_string();
            // serde names an unknown field `like this`; suggest a known one.
            if let Some(unknown) = message
                .strip_prefix("unknown field `")
                .and_then(|rest| rest.split('`').next())
            {
                let hint = match nearest(unknown, FILE_KEYS.iter().map(|k| k.0)) {
                    Some(key) => format!("unknown key; did you mean `{key}`?"),
                    None => "unknown key (`persona-sim config init` writes every key)".into(),
                };
                return ConfigError::File {
                    path: path.to_path_buf(),
                    line,
                    key: Some(unknown.to_string()),
                    message: hint,
                };
            }
            ConfigError::File {
                path: path.to_path_buf(),
                line,
                key: line.and_then(|line| key_on_line(text, line)),
                message,
            }
        })?;
        let bad = |key: &str, message: String| ConfigError::File {
            path: path.to_path_buf(),
            line: line_of_key(text, key),
            key: Some(key.to_string()),
            message,
        };
        let check =
            |key: &str, value: Option<String>, parse: fn(&str) -> Result<String, String>| {
                value
                    .map(|v| parse(&v))
                    .transpose()
                    .map_err(|m| bad(key, m))
            };
        let provider = match file.provider {
            None => None,
            Some(name) => Some(Provider::from_name(&name).ok_or_else(|| {
                bad(
                    "provider",
                    format!("{name:?} is not a provider ({})", provider_names()),
                )
            })?),
        };
        let backend =
            match file.backend {
                None => None,
                Some(name) => Some(BackendKind::from_str(name.trim(), true).map_err(|_| {
                    bad("backend", format!("{name:?} is not auto, openai or local"))
                })?),
            };
        let temperature = match file.temperature {
            None => None,
            Some(t) => {
                Some(args::parse_temperature(&t.to_string()).map_err(|m| bad("temperature", m))?)
            }
        };
        let seconds = |key: &str, value: Option<f64>| {
            value
                .map(|t| args::parse_seconds(&t.to_string()))
                .transpose()
                .map_err(|m| bad(key, m))
        };
        let at_least = |key: &str, value: Option<u32>, min: u32, max: u32| match value {
            Some(n) if n < min || n > max => Err(bad(
                key,
                if max == u32::MAX {
                    format!("{n} is below {min}")
                } else {
                    format!("{n} is outside {min}..={max}")
                },
            )),
            other => Ok(other),
        };
        let herding_threshold = match file.herding_threshold {
            None => None,
            Some(t) => Some(
                args::parse_herding_threshold(&t.to_string())
                    .map_err(|m| bad("herding_threshold", m))?,
            ),
        };
        let metrics_bind = match file.metrics_bind {
            None => None,
            Some(addr) => Some(addr.trim().parse().map_err(|_| {
                bad(
                    "metrics_bind",
                    format!("{addr:?} is not an IP address (e.g. 127.0.0.1 or 0.0.0.0)"),
                )
            })?),
        };
        let devils_advocate = match file.devils_advocate.as_deref().map(str::trim) {
            None => None,
            Some("auto") => Some(DevilsAdvocate::Auto),
            Some("off") => Some(DevilsAdvocate::Off),
            Some(other) => {
                return Err(bad(
                    "devils_advocate",
                    format!("{other:?} is not auto or off"),
                ));
            }
        };
        let not_blank = |s: &str| -> Result<String, String> {
            match s.trim() {
                "" => Err("is empty".into()),
                s => Ok(s.to_string()),
            }
        };
        Ok(FileValues {
            path: Some(path.to_path_buf()),
            provider,
            backend,
            model: check("model", file.model, args::parse_model)?,
            base_url: check("base_url", file.base_url, args::parse_base_url)?,
            api_key: file.api_key.filter(|k| !k.trim().is_empty()),
            temperature,
            seed: file.seed,
            rounds: at_least("rounds", file.rounds, 1, 20)?,
            timeout: seconds("timeout", file.timeout)?,
            context_tokens: at_least("context_tokens", file.context_tokens, 256, u32::MAX)?,
            max_tokens_total: at_least("max_tokens_total", file.max_tokens_total, 100, u32::MAX)?,
            model_path: file.model_path.map(expand_home),
            model_url: check("model_url", file.model_url, not_blank)?,
            personas: file.personas.map(expand_home),
            data_dir: file.data_dir.map(expand_home),
            database_url: file.database_url.filter(|u| !u.trim().is_empty()),
            cache: file.cache.map(expand_home),
            log_file: file.log_file.map(expand_home),
            log_level: check("log_level", file.log_level, args::parse_level)?,
            metrics: file.metrics,
            metrics_port: file.metrics_port,
            metrics_bind,
            environment: check("environment", file.environment, not_blank)?,
            slow_call_secs: seconds("slow_call_secs", file.slow_call_secs)?,
            mouse: file.mouse,
            stage: file.stage,
            theme: check("theme", file.theme, args::parse_theme)?,
            devils_advocate,
            herding_threshold,
        })
    }
}

fn provider_names() -> String {
    Provider::ALL.map(Provider::name).join(", ")
}

/// `config init`'s file: every key, commented out, at its default (or an
/// example, for keys unset by default).
pub fn template() -> String {
    let mut text = String::from(
        "# persona-sim configuration (TOML). Flags beat environment variables, which\n\
         # beat this file, which beats the defaults. Every key is shown at its\n\
         # default (or, for keys unset by default, with an example): uncomment a line\n\
         # to change it. `persona-sim config show` says what is in effect and why.\n",
    );
    for (key, default, example, doc) in FILE_KEYS {
        text.push_str(&format!("\n# {doc}\n"));
        match default {
            Some(value) => text.push_str(&format!("# {key} = {value}\n")),
            None => text.push_str(&format!("# {key} = {example}   # unset by default\n")),
        }
    }
    text
}

// ---------------------------------------------------------------------------
// Resolution
// ---------------------------------------------------------------------------

/// Where a setting's value came from, for `config show`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Flag(String),
    Env(String),
    File(PathBuf),
    /// Set by the provider preset.
    Provider(&'static str),
    Default,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Flag(flag) => write!(f, "flag {flag}"),
            Source::Env(var) => write!(f, "env {var}"),
            Source::File(path) => write!(f, "file {}", path.display()),
            Source::Provider(name) => write!(f, "provider {name}"),
            Source::Default => f.write_str("default"),
        }
    }
}

impl Source {
    /// Flags beat the environment, which beats the file.
    fn rank(&self) -> u8 {
        match self {
            Source::Flag(_) => 3,
            Source::Env(_) => 2,
            Source::File(_) => 1,
            Source::Provider(_) | Source::Default => 0,
        }
    }
}

/// One resolved setting, as `config show` prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shown {
    pub key: &'static str,
    /// The value as text; secrets are `<redacted>`, unset ones `(none)`.
    pub value: String,
    pub source: Source,
}

struct Resolver<'a> {
    cli: &'a Cli,
    file: FileValues,
    shown: Vec<Shown>,
}

impl Resolver<'_> {
    /// The source of a value the command line has (`id`: the clap id).
    fn cli_source(&self, id: &str) -> Source {
        match self.cli.origins.of(id) {
            Some(Origin::Env(var)) => Source::Env(var.clone()),
            Some(Origin::Flag) | None => Source::Flag(format!("--{}", id.replace('_', "-"))),
        }
    }

    /// Flag or environment, else the file; `None` when neither has it.
    fn given<T>(&self, id: &str, cli: Option<T>, file: Option<T>) -> Option<(T, Source)> {
        match (cli, file) {
            (Some(value), _) => Some((value, self.cli_source(id))),
            (None, Some(value)) => Some((value, self.file_source())),
            (None, None) => None,
        }
    }

    fn file_source(&self) -> Source {
        Source::File(self.file.path.clone().unwrap_or_default())
    }

    fn show(&mut self, key: &'static str, value: String, source: Source) {
        self.shown.push(Shown { key, value, source });
    }

    /// A setting with a default.
    fn value<T>(
        &mut self,
        key: &'static str,
        cli: Option<T>,
        file: Option<T>,
        default: T,
        text: impl Fn(&T) -> String,
    ) -> T {
        let (value, source) = self
            .given(key, cli, file)
            .unwrap_or((default, Source::Default));
        self.show(key, text(&value), source);
        value
    }

    /// A setting that may stay unset; `unset` says what that means.
    fn optional<T>(
        &mut self,
        key: &'static str,
        cli: Option<T>,
        file: Option<T>,
        unset: &str,
        text: impl Fn(&T) -> String,
    ) -> Option<T> {
        match self.given(key, cli, file) {
            Some((value, source)) => {
                self.show(key, text(&value), source);
                Some(value)
            }
            None => {
                self.show(key, unset.to_string(), Source::Default);
                None
            }
        }
    }

    /// A boolean flag (present or not) or the file's `true`/`false`.
    fn switch(
        &mut self,
        key: &'static str,
        id: &str,
        flag: bool,
        file: Option<bool>,
        default: bool,
    ) -> bool {
        let (value, source) = if flag {
            (true, self.cli_source(id))
        } else if let Some(value) = file {
            (value, self.file_source())
        } else {
            (default, Source::Default)
        };
        self.show(key, value.to_string(), source);
        value
    }
}

fn path_text(path: &Path) -> String {
    path.display().to_string()
}

fn redacted<T>(_: &T) -> String {
    "<redacted>".into()
}

/// A path that names a file in a folder that does not exist: a typo, or a
/// folder not made yet; either way not a reason to start a new, empty file.
fn check_folder(what: &'static str, path: &Path) -> Result<(), ConfigError> {
    match path.parent() {
        Some(folder) if !folder.as_os_str().is_empty() && !folder.is_dir() => {
            Err(ConfigError::MissingFolder {
                what,
                path: path.to_path_buf(),
                folder: folder.to_path_buf(),
            })
        }
        _ => Ok(()),
    }
}

impl Settings {
    /// Resolves the command line, the environment and the config file.
    pub fn resolve(cli: &Cli, env: &Environment) -> Result<Settings, ConfigError> {
        Settings::resolve_shown(cli, env)?.0
    }

    /// As [`Settings::resolve`], with every setting's value and source for
    /// `config show`. The outer error stops resolution (a bad file); the
    /// inner one (no key for the provider, a backend that cannot run) comes
    /// with every setting shown.
    pub fn resolve_shown(
        cli: &Cli,
        env: &Environment,
    ) -> Result<(Result<Settings, ConfigError>, Vec<Shown>), ConfigError> {
        let file = match config_path(cli, env) {
            Some(path) => FileValues::load(&path)?,
            None => FileValues::default(),
        };
        let mut r = Resolver {
            cli,
            file,
            shown: Vec::new(),
        };
        let file_provider = r.file.provider;
        let provider = r.given("provider", cli.provider, file_provider);
        match &provider {
            Some((p, source)) => r.show("provider", p.name().into(), source.clone()),
            None => r.show("provider", "(none)".into(), Source::Default),
        }
        let file_backend = r.file.backend;
        let backend_kind = r.value(
            "backend",
            cli.backend,
            file_backend,
            BackendKind::Auto,
            |b| format!("{b:?}").to_ascii_lowercase(),
        );

        // A base URL or model given at the provider's level or above is
        // meant for it; one from below (OPENAI_BASE_URL in the environment
        // under a --provider flag) is not.
        let provider_rank = provider.as_ref().map_or(0, |(_, s)| s.rank());
        let file_base_url = r.file.base_url.clone();
        let given_base_url = r
            .given("base_url", cli.base_url.clone(), file_base_url)
            .filter(|(_, source)| provider.is_none() || source.rank() >= provider_rank);
        let base_url = match (&given_base_url, &provider) {
            (Some((url, source)), _) => Some((url.clone(), source.clone())),
            (None, Some((p, _))) => Some((p.base_url().to_string(), Source::Provider(p.name()))),
            (None, None) => None,
        };
        match &base_url {
            Some((url, source)) => r.show("base_url", url.clone(), source.clone()),
            None => r.show("base_url", OPENAI_BASE_URL.into(), Source::Default),
        }
        let file_model = r.file.model.clone();
        let model = match r
            .given("model", cli.model.clone(), file_model)
            .filter(|(_, source)| provider.is_none() || source.rank() >= provider_rank)
        {
            Some(given) => given,
            None => match &provider {
                Some((p, _)) => (p.default_model().to_string(), Source::Provider(p.name())),
                None => (DEFAULT_MODEL.to_string(), Source::Default),
            },
        };
        r.show("model", model.0.clone(), model.1.clone());
        let model = model.0;

        // The key: the provider's variable (OPENAI_API_KEY without one),
        // else the file's `api_key`.
        let key_var = match &provider {
            Some((p, _)) => p.key_var(),
            None => Some("OPENAI_API_KEY"),
        };
        let file_key = r.file.api_key.clone();
        let api_key = match key_var {
            Some(var) => match env.var(var) {
                Some(key) => Some((key, Source::Env(var.to_string()))),
                None => file_key.map(|key| (key, r.file_source())),
            },
            // Local servers take no key: none is sent, so an OpenAI key in
            // the environment never goes to them.
            None => None,
        };
        match &api_key {
            Some((key, source)) => r.show("api_key", redacted(key), source.clone()),
            None => r.show("api_key", "(none)".into(), Source::Default),
        }
        let missing_key = match (&provider, key_var, &api_key) {
            (Some((p, _)), Some(var), None) => Some(ConfigError::MissingProviderKey {
                provider: p.name(),
                var,
            }),
            _ => None,
        };
        let api_key = api_key.map(|(key, _)| key);

        let file_temperature = r.file.temperature;
        let temperature = r.optional(
            "temperature",
            cli.temperature,
            file_temperature,
            "0.8 on servers, 0.3 on the local model",
            f32::to_string,
        );
        let file_seed = r.file.seed;
        let seed = r.optional(
            "seed",
            cli.seed,
            file_seed,
            "(none: random)",
            u32::to_string,
        );
        let file_rounds = r.file.rounds;
        let rounds = r.value(
            "rounds",
            cli.rounds,
            file_rounds,
            DEFAULT_ROUNDS,
            u32::to_string,
        );
        let file_timeout = r.file.timeout;
        let timeout = r.value(
            "timeout",
            cli.timeout,
            file_timeout,
            DEFAULT_TIMEOUT_SECS,
            f64::to_string,
        );
        let file_context = r.file.context_tokens;
        let context_tokens = r.optional(
            "context_tokens",
            cli.context_tokens,
            file_context,
            "(asked of the server)",
            u32::to_string,
        );
        let file_max_total = r.file.max_tokens_total;
        let max_tokens_total = r.optional(
            "max_tokens_total",
            cli.max_tokens_total,
            file_max_total,
            "(none)",
            u32::to_string,
        );

        let file_data_dir = r.file.data_dir.clone();
        let data_dir = match r.given("data_dir", cli.data_dir.clone(), file_data_dir) {
            Some((dir, source)) => {
                r.show("data_dir", path_text(&dir), source);
                dir
            }
            None => {
                let dir = directories::ProjectDirs::from("", "", "persona-sim")
                    .ok_or(ConfigError::NoDataDir)?
                    .data_dir()
                    .to_path_buf();
                r.show("data_dir", path_text(&dir), Source::Default);
                dir
            }
        };
        let file_personas = r.file.personas.clone();
        let personas_path = match r.given("personas", cli.personas.clone(), file_personas) {
            Some((path, source)) => {
                check_folder("the persona file", &path)?;
                r.show("personas", path_text(&path), source);
                path
            }
            None => {
                let path = data_dir.join("personas.json");
                r.show("personas", path_text(&path), Source::Default);
                path
            }
        };
        let file_model_path = r.file.model_path.clone();
        let model_path = r.value(
            "model_path",
            cli.model_path.clone(),
            file_model_path,
            data_dir
                .join("models")
                .join(crate::llm::fetch::DEFAULT_MODEL_FILE),
            |p| path_text(p),
        );
        let file_model_url = r.file.model_url.clone();
        let model_url = r.value(
            "model_url",
            cli.model_url.clone(),
            file_model_url,
            crate::llm::fetch::HUGGING_FACE_URL.to_string(),
            String::clone,
        );
        // An empty DATABASE_URL (as compose files leave it) means files.
        let file_database = r.file.database_url.clone();
        let database_url = r.optional(
            "database_url",
            cli.database_url
                .clone()
                .filter(|url| !url.trim().is_empty()),
            file_database,
            "(none: files)",
            redacted,
        );
        let file_cache = r.file.cache.clone();
        let cache_dir = r.optional("cache", cli.cache.clone(), file_cache, "(off)", |p| {
            path_text(p)
        });
        let file_log_file = r.file.log_file.clone();
        let log_file = r.value(
            "log_file",
            cli.log_file.clone(),
            file_log_file,
            data_dir.join("logs").join("app.log"),
            |p| path_text(p),
        );
        let file_log_level = r.file.log_level.clone();
        let log_level = r.optional(
            "log_level",
            cli.log_level.clone(),
            file_log_level,
            "(RUST_LOG, else info)",
            String::clone,
        );
        let file_metrics = r.file.metrics;
        // `--no-metrics` turns them off; the file says `metrics = false`.
        let (metrics_on, source) = if cli.no_metrics {
            (false, r.cli_source("no_metrics"))
        } else if let Some(on) = file_metrics {
            (on, r.file_source())
        } else {
            (true, Source::Default)
        };
        r.show("metrics", metrics_on.to_string(), source);
        let file_port = r.file.metrics_port;
        let metrics_port = r.value(
            "metrics_port",
            cli.metrics_port,
            file_port,
            DEFAULT_METRICS_PORT,
            u16::to_string,
        );
        let file_bind = r.file.metrics_bind;
        let metrics_bind = r.value(
            "metrics_bind",
            cli.metrics_bind,
            file_bind,
            DEFAULT_METRICS_BIND.parse().expect("an IP address"),
            std::net::IpAddr::to_string,
        );
        let file_environment = r.file.environment.clone();
        let environment = r.value(
            "environment",
            cli.environment.clone(),
            file_environment,
            DEFAULT_ENVIRONMENT.to_string(),
            String::clone,
        );
        let file_slow = r.file.slow_call_secs;
        let slow_call_secs = r.value(
            "slow_call_secs",
            cli.slow_call_secs,
            file_slow,
            DEFAULT_SLOW_CALL_SECS,
            f64::to_string,
        );
        let file_mouse = r.file.mouse;
        let mouse = r.switch("mouse", "mouse", cli.mouse, file_mouse, false);
        let file_stage = r.file.stage;
        let stage = r.switch("stage", "stage", cli.stage, file_stage, false);
        let file_theme = r.file.theme.clone();
        let theme = r.optional(
            "theme",
            cli.theme.clone(),
            file_theme,
            DEFAULT_THEME,
            String::clone,
        );
        let file_devil = r.file.devils_advocate;
        let devils_advocate = r.optional(
            "devils_advocate",
            cli.devils_advocate,
            file_devil,
            "auto in simulate, off in the TUI",
            |d| format!("{d:?}").to_ascii_lowercase(),
        );
        let file_herding = r.file.herding_threshold;
        let herding_threshold = r.value(
            "herding_threshold",
            cli.herding_threshold,
            file_herding,
            DEFAULT_HERDING_THRESHOLD,
            f64::to_string,
        );

        // Every setting is recorded by now, so `config show` can print them
        // all beside the problem.
        let shown = r.shown;
        let settings = 'built: {
            if let Some(error) = missing_key {
                break 'built Err(error);
            }
            let timeout = Duration::from_secs_f64(timeout);
            let openai_configured =
                api_key.is_some() || given_base_url.is_some() || provider.is_some();
            let use_openai = match backend_kind {
                BackendKind::Openai if !openai_configured => {
                    break 'built Err(ConfigError::OpenAiWithoutKey);
                }
                BackendKind::Openai => true,
                BackendKind::Local if provider.is_some() => {
                    break 'built Err(ConfigError::ProviderWithLocal(
                        provider.map_or("", |(p, _)| p.name()),
                    ));
                }
                BackendKind::Local if !LOCAL_AVAILABLE => {
                    break 'built Err(ConfigError::LocalUnavailable);
                }
                BackendKind::Local => false,
                BackendKind::Auto => openai_configured,
            };
            let backend = if use_openai {
                BackendChoice::OpenAi(OpenAiSettings {
                    api_key,
                    base_url: base_url
                        .map(|(url, _)| url)
                        .unwrap_or_else(|| OPENAI_BASE_URL.to_string()),
                    model,
                    temperature: temperature.unwrap_or(OPENAI_TEMPERATURE),
                    first_token_timeout: timeout,
                    stall_timeout: timeout,
                    context_tokens,
                    seed,
                })
            } else if LOCAL_AVAILABLE {
                BackendChoice::Local {
                    model_path: model_path.clone(),
                    temperature: temperature.unwrap_or(LOCAL_TEMPERATURE),
                    seed,
                }
            } else {
                BackendChoice::None
            };
            let max_tokens_per_turn = match backend {
                BackendChoice::Local { .. } => LOCAL_MAX_TOKENS_PER_TURN,
                _ => DEFAULT_MAX_TOKENS_PER_TURN,
            };
            let settings = Settings {
                sessions_dir: data_dir.join("sessions"),
                exports_dir: data_dir.join("exports"),
                data_dir,
                personas_path,
                log_file,
                backend,
                model_path,
                model_url,
                rounds,
                max_tokens_per_turn,
                max_tokens_total,
                devils_advocate,
                herding_threshold,
                seed,
                mouse,
                theme,
                stage,
                cache_dir,
                log_level,
                metrics_addr: metrics_on
                    .then(|| std::net::SocketAddr::new(metrics_bind, metrics_port)),
                environment,
                slow_call: Duration::from_secs_f64(slow_call_secs),
                database_url,
                live: cli.live.map(|addr| LiveSettings {
                    addr,
                    // An empty token (an unset variable in a compose file) is none.
                    token: cli.live_token.clone().filter(|t| !t.trim().is_empty()),
                    questions: cli.live_questions,
                }),
            };
            Ok(settings)
        };
        Ok((settings, shown))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    #[test]
    fn debug_output_of_the_settings_never_shows_the_key() {
        let s = Settings::resolve(&cli(&["--data-dir", "/d"]), &key_env("sk-secret-9")).unwrap();
        let text = format!("{s:?}");
        assert!(!text.contains("sk-secret-9"), "{text}");
        assert!(text.contains("<redacted>"), "{text}");
    }
    #[test]
    fn live_is_off_by_default_and_a_bare_flag_is_loopback_7777() {
        let s = Settings::resolve(&cli(&["--data-dir", "/d"]), &no_env()).unwrap();
        assert_eq!(s.live, None);
        let s = Settings::resolve(&cli(&["--data-dir", "/d", "--live"]), &no_env()).unwrap();
        let live = s.live.unwrap();
        assert_eq!(live.addr, "127.0.0.1:7777".parse().unwrap());
        assert_eq!(
            live.addr,
            crate::serve::live::DEFAULT_ADDR,
            "the flag's default and the server's documented one agree"
        );
        assert!(!live.questions);
    }
    #[test]
    fn live_flags_take_an_address_a_port_a_token_and_questions() {
        let s = Settings::resolve(
            &cli(&[
                "--data-dir",
                "/d",
                "--live",
                "0.0.0.0:9000",
                "--live-token",
                "tok-secret-1",
                "--live-questions",
            ]),
            &no_env(),
        )
        .unwrap();
        let live = s.live.clone().unwrap();
        assert_eq!(live.addr, "0.0.0.0:9000".parse().unwrap());
        assert_eq!(live.token.as_deref(), Some("tok-secret-1"));
        assert!(live.questions);
        assert!(!format!("{s:?}").contains("tok-secret-1"));
        let s = Settings::resolve(&cli(&["--data-dir", "/d", "--live=8123"]), &no_env()).unwrap();
        assert_eq!(s.live.unwrap().addr, "127.0.0.1:8123".parse().unwrap());
        let e = Cli::try_parse_from(["persona-sim", "--live", "nowhere:x"]).unwrap_err();
        assert!(e.to_string().contains("not an address"), "{e}");
        let e = Cli::try_parse_from(["persona-sim", "--live-questions"]).unwrap_err();
        assert!(e.to_string().contains("--live"), "{e}");
    }
    #[test]
    fn stage_flag_reaches_the_settings() {
        let s = Settings::resolve(&cli(&["--data-dir", "/d"]), &no_env()).unwrap();
        assert!(!s.stage);
        let s = Settings::resolve(&cli(&["--data-dir", "/d", "--stage"]), &no_env()).unwrap();
        assert!(s.stage);
    }
    #[test]
    fn metrics_and_logging_flags() {
        let s = Settings::resolve(&cli(&["--data-dir", "/d"]), &no_env()).unwrap();
        assert_eq!(s.metrics_addr, Some("127.0.0.1:8000".parse().unwrap()));
        assert_eq!(s.environment, "development");
        assert_eq!(s.log_level, None);
        let s = Settings::resolve(
            &cli(&[
                "--data-dir",
                "/d",
                "--metrics-port",
                "9100",
                "--metrics-bind",
                "0.0.0.0",
                "--log-level",
                "DEBUG",
            ]),
            &no_env(),
        )
        .unwrap();
        assert_eq!(s.metrics_addr, Some("0.0.0.0:9100".parse().unwrap()));
        assert_eq!(s.log_level.as_deref(), Some("debug"));
        let s = Settings::resolve(&cli(&["--data-dir", "/d", "--no-metrics"]), &no_env()).unwrap();
        assert_eq!(s.metrics_addr, None);
        let err = Cli::try_parse_from(["persona-sim", "--log-level", "loud"]).unwrap_err();
        assert!(err.to_string().contains("not a level"), "{err}");
        let err = Cli::try_parse_from(["persona-sim", "--metrics-port", "70000"]).unwrap_err();
        assert!(err.to_string().contains("metrics-port"), "{err}");
    }
    fn cli(args: &[&str]) -> Cli {
        let mut all = vec!["persona-sim"];
        all.extend_from_slice(args);
        args::try_parse_from(all).unwrap()
    }
    /// No key, and no config file unless `--config` names one.
    fn no_env() -> Environment {
        Environment::default()
    }
    fn key_env(key: &str) -> Environment {
        Environment::default().with("OPENAI_API_KEY", key)
    }
    #[test]
    fn no_key_and_no_url_means_the_local_model_when_built_in() {
        let s = Settings::resolve(&cli(&["--data-dir", "/tmp/x"]), &no_env()).unwrap();
        let model = PathBuf::from("/tmp/x/models/SmolLM2-135M-Instruct.Q4_1.gguf");
        if LOCAL_AVAILABLE {
            assert!(
                matches!(&s.backend, BackendChoice::Local { model_path, .. } if *model_path == model)
            );
            assert_eq!(s.max_tokens_per_turn, LOCAL_MAX_TOKENS_PER_TURN);
        } else {
            assert!(matches!(s.backend, BackendChoice::None));
        }
        assert_eq!(s.model_path, model);
        assert_eq!(s.personas_path, PathBuf::from("/tmp/x/personas.json"));
        assert_eq!(s.log_file, PathBuf::from("/tmp/x/logs/app.log"));
    }
    #[test]
    fn explicit_backend_choices() {
        let s = Settings::resolve(
            &cli(&[
                "--data-dir",
                "/d",
                "--backend",
                "local",
                "--model-path",
                "/m.gguf",
            ]),
            &key_env("sk-1"),
        );
        if LOCAL_AVAILABLE {
            let s = s.unwrap();
            assert!(
                matches!(&s.backend, BackendChoice::Local { model_path, .. } if model_path == &PathBuf::from("/m.gguf"))
            );
            assert_eq!(
                s.backend.missing_local_model(),
                Some(std::path::Path::new("/m.gguf"))
            );
        } else {
            assert!(matches!(s, Err(ConfigError::LocalUnavailable)));
        }
        let err = Settings::resolve(
            &cli(&["--data-dir", "/d", "--backend", "openai"]),
            &no_env(),
        )
        .unwrap_err();
        assert!(matches!(err, ConfigError::OpenAiWithoutKey));
        let s = Settings::resolve(
            &cli(&["--data-dir", "/d", "--backend", "openai"]),
            &key_env("k"),
        )
        .unwrap();
        assert!(matches!(s.backend, BackendChoice::OpenAi(_)));
        assert_eq!(s.backend.missing_local_model(), None);
    }
    #[test]
    fn key_selects_openai_with_defaults() {
        let s = Settings::resolve(&cli(&["--data-dir", "/d"]), &key_env("sk-1")).unwrap();
        let BackendChoice::OpenAi(o) = s.backend else {
            panic!()
        };
        assert_eq!(o.base_url, OPENAI_BASE_URL);
        assert_eq!(o.model, "gpt-4o-mini");
        assert_eq!(o.first_token_timeout, Duration::from_secs(30));
    }
    #[test]
    fn base_url_alone_selects_a_compatible_server() {
        let s = Settings::resolve(
            &cli(&[
                "--data-dir",
                "/d",
                "--base-url",
                "http://127.0.0.1:1/v1",
                "--model",
                "llama3",
            ]),
            &no_env(),
        )
        .unwrap();
        let BackendChoice::OpenAi(o) = s.backend else {
            panic!()
        };
        assert_eq!((o.api_key, o.model.as_str()), (None, "llama3"));
    }
    #[test]
    fn context_tokens_reach_the_server_settings() {
        let s = Settings::resolve(
            &cli(&[
                "--data-dir",
                "/d",
                "--base-url",
                "http://127.0.0.1:1/v1",
                "--context-tokens",
                "2048",
            ]),
            &no_env(),
        )
        .unwrap();
        let BackendChoice::OpenAi(o) = s.backend else {
            panic!()
        };
        assert_eq!(o.context_tokens, Some(2048));
        let s = Settings::resolve(&cli(&["--data-dir", "/d"]), &key_env("sk-1")).unwrap();
        let BackendChoice::OpenAi(o) = s.backend else {
            panic!()
        };
        assert_eq!(o.context_tokens, None);
        let err = Cli::try_parse_from(["persona-sim", "--context-tokens", "10"]).unwrap_err();
        assert!(err.to_string().contains("context-tokens"), "{err}");
    }
    #[test]
    fn the_seed_reaches_either_backend() {
        let s = Settings::resolve(
            &cli(&[
                "--data-dir",
                "/d",
                "--base-url",
                "http://h/v1",
                "--seed",
                "9",
            ]),
            &no_env(),
        )
        .unwrap();
        let BackendChoice::OpenAi(o) = s.backend else {
            panic!()
        };
        assert_eq!(o.seed, Some(9));
        let s = Settings::resolve(
            &cli(&["--data-dir", "/d", "--base-url", "http://h/v1"]),
            &no_env(),
        )
        .unwrap();
        let BackendChoice::OpenAi(o) = s.backend else {
            panic!()
        };
        assert_eq!(o.seed, None);
        if LOCAL_AVAILABLE {
            let s =
                Settings::resolve(&cli(&["--data-dir", "/d", "--seed", "3"]), &no_env()).unwrap();
            assert!(matches!(
                s.backend,
                BackendChoice::Local { seed: Some(3), .. }
            ));
        }
        let err = Cli::try_parse_from(["persona-sim", "--seed", "x"]).unwrap_err();
        assert!(err.to_string().contains("seed"), "{err}");
    }
    #[test]
    fn bad_values_are_rejected_with_reasons() {
        let err = Cli::try_parse_from(["persona-sim", "--temperature", "7"]).unwrap_err();
        assert!(err.to_string().contains("outside 0..=2"));
        let err = Cli::try_parse_from(["persona-sim", "--rounds", "0"]).unwrap_err();
        assert!(err.to_string().contains("rounds"));
        for (url, says) in [
            ("localhost:1", "http://"),
            ("http://[::1", "not a valid URL"),
            ("   ", "the URL is empty"),
        ] {
            let err = args::try_parse_from(["persona-sim", "--base-url", url]).unwrap_err();
            assert!(err.to_string().contains(says), "{url}: {err}");
            assert_eq!(err.exit_code(), 2);
        }
    }

    /// A config file with `text`, and the arguments that point at it.
    fn with_file(text: &str) -> (tempfile::TempDir, String) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, text).unwrap();
        (dir, path.display().to_string())
    }
    fn file_error(text: &str) -> (Option<usize>, Option<String>, String) {
        let (_dir, path) = with_file(text);
        match Settings::resolve(&cli(&["--config", &path, "--data-dir", "/d"]), &no_env()) {
            Err(ConfigError::File {
                line, key, message, ..
            }) => (line, key, message),
            other => panic!("{other:?}"),
        }
    }
    #[test]
    fn the_file_sets_what_flags_and_the_environment_do_not() {
        let (_dir, path) = with_file(
            "rounds = 5\ntimeout = 12\nmodel = \"m-file\"\nmouse = true\ntheme = \"light\"\nmetrics = false\n",
        );
        let c = cli(&["--config", &path, "--data-dir", "/d", "--rounds", "3"]);
        let (s, shown) = Settings::resolve_shown(&c, &key_env("k")).unwrap();
        let s = s.unwrap();
        assert_eq!(s.rounds, 3, "the flag beats the file");
        let BackendChoice::OpenAi(o) = &s.backend else {
            panic!()
        };
        assert_eq!(o.first_token_timeout, Duration::from_secs(12));
        assert_eq!(o.model, "m-file");
        assert!(s.mouse);
        assert_eq!(s.theme.as_deref(), Some("light"));
        assert_eq!(s.metrics_addr, None);
        let source = |key: &str| {
            shown
                .iter()
                .find(|s| s.key == key)
                .unwrap()
                .source
                .to_string()
        };
        assert_eq!(source("rounds"), "flag --rounds");
        assert!(
            source("timeout").starts_with("file "),
            "{}",
            source("timeout")
        );
        assert_eq!(source("herding_threshold"), "default");
        assert_eq!(source("api_key"), "env OPENAI_API_KEY");
        let key = shown.iter().find(|s| s.key == "api_key").unwrap();
        assert_eq!(key.value, "<redacted>");
    }
    #[test]
    fn a_missing_file_means_the_defaults() {
        let s = Settings::resolve(
            &cli(&["--config", "/nowhere/config.toml", "--data-dir", "/d"]),
            &no_env(),
        )
        .unwrap();
        assert_eq!(s.rounds, DEFAULT_ROUNDS);
        assert_eq!(s.theme, None);
    }
    #[test]
    fn an_unknown_key_names_the_line_and_the_nearest_key() {
        let (line, key, message) = file_error("rounds = 2\n\nherding_treshold = 0.9\n");
        assert_eq!(line, Some(3));
        assert_eq!(key.as_deref(), Some("herding_treshold"));
        assert!(
            message.contains("did you mean `herding_threshold`"),
            "{message}"
        );
        let (_, _, message) = file_error("zzzzzzzz = 1\n");
        assert!(message.contains("config init"), "{message}");
    }
    #[test]
    fn a_wrong_type_or_syntax_names_the_line_and_key() {
        let (line, key, message) = file_error("model = \"x\"\nrounds = \"two\"\n");
        assert_eq!((line, key.as_deref()), (Some(2), Some("rounds")));
        assert!(message.contains("invalid type"), "{message}");
        let (line, _, _) = file_error("model = \"x\"\nrounds = \n");
        assert_eq!(line, Some(2));
    }
    #[test]
    fn a_bad_value_is_checked_as_the_flag_is() {
        for (text, key, says) in [
            ("temperature = 7.0", "temperature", "outside 0..=2"),
            ("rounds = 0", "rounds", "outside 1..=20"),
            ("theme = \"pink\"", "theme", "not a theme"),
            ("provider = \"acme\"", "provider", "not a provider"),
            ("base_url = \"http://[::1\"", "base_url", "not a valid URL"),
            ("backend = \"gpu\"", "backend", "not auto, openai or local"),
            ("log_level = \"loud\"", "log_level", "not a level"),
            ("herding_threshold = 0.1", "herding_threshold", "outside"),
            ("context_tokens = 10", "context_tokens", "below 256"),
        ] {
            let (line, got, message) = file_error(&format!("# a comment\n{text}\n"));
            assert_eq!((line, got.as_deref()), (Some(2), Some(key)), "{text}");
            assert!(message.contains(says), "{text}: {message}");
        }
        let (_dir, path) = with_file("rounds = 0\n");
        let err = Settings::resolve(&cli(&["--config", &path]), &no_env()).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains(&format!("{path}:1")) && text.contains("`rounds`"),
            "{text}"
        );
    }
    #[test]
    fn the_template_has_every_key_at_its_default() {
        let template = template();
        let uncommented: String = template
            .lines()
            .filter_map(|l| l.strip_prefix("# "))
            .filter(|l| l.contains(" = "))
            .map(|l| format!("{l}\n"))
            .collect();
        for (key, ..) in FILE_KEYS {
            assert!(
                uncommented.contains(&format!("{key} = ")),
                "{key} is missing from the template"
            );
        }
        // Every key the struct knows is in the table, and back.
        let (_dir, path) = with_file(
            &uncommented
                .replace("\"~/", "\"/tmp/")
                .replace("\"sk-...\"", "\"k\""),
        );
        let file = FileValues::load(std::path::Path::new(&path)).unwrap();
        assert_eq!(file.rounds, Some(DEFAULT_ROUNDS));
        assert_eq!(file.herding_threshold, Some(DEFAULT_HERDING_THRESHOLD));
        assert_eq!(file.timeout, Some(DEFAULT_TIMEOUT_SECS));
        assert_eq!(file.slow_call_secs, Some(DEFAULT_SLOW_CALL_SECS));
        assert_eq!(file.metrics_port, Some(DEFAULT_METRICS_PORT));
        assert_eq!(file.environment.as_deref(), Some(DEFAULT_ENVIRONMENT));
        assert_eq!(file.theme.as_deref(), Some(DEFAULT_THEME));
        assert_eq!(file.model.as_deref(), Some(DEFAULT_MODEL));
        assert_eq!(file.base_url.as_deref(), Some(OPENAI_BASE_URL));
        assert_eq!(file.backend, Some(BackendKind::Auto));
        let fields = format!("{:?}", FileConfig::default());
        assert_eq!(
            fields.matches(": None").count(),
            FILE_KEYS.len(),
            "FILE_KEYS and FileConfig list the same keys"
        );
    }
    fn openai(s: &Settings) -> &OpenAiSettings {
        match &s.backend {
            BackendChoice::OpenAi(o) => o,
            other => panic!("{other:?}"),
        }
    }
    #[test]
    fn a_provider_sets_the_url_the_key_variable_and_the_model() {
        let env = Environment::default()
            .with("ANTHROPIC_API_KEY", "sk-ant")
            .with("OPENAI_API_KEY", "sk-openai");
        let s = Settings::resolve(&cli(&["--data-dir", "/d", "--provider", "anthropic"]), &env)
            .unwrap();
        let o = openai(&s);
        assert_eq!(o.base_url, Provider::Anthropic.base_url());
        assert_eq!(o.api_key.as_deref(), Some("sk-ant"));
        assert_eq!(o.model, Provider::Anthropic.default_model());
        let s = Settings::resolve(
            &cli(&[
                "--data-dir",
                "/d",
                "--provider",
                "ollama",
                "--model",
                "qwen3",
            ]),
            &env,
        )
        .unwrap();
        let o = openai(&s);
        assert_eq!(o.base_url, "http://localhost:11434/v1");
        assert_eq!(o.api_key, None, "a local server is not sent the OpenAI key");
        assert_eq!(o.model, "qwen3");
        for p in Provider::ALL {
            assert_eq!(Provider::from_name(p.name()), Some(p));
        }
    }
    #[test]
    fn a_provider_without_its_key_names_the_variable() {
        let err = Settings::resolve(
            &cli(&["--data-dir", "/d", "--provider", "gemini"]),
            &key_env("sk-openai"),
        )
        .unwrap_err();
        assert!(err.to_string().contains("GEMINI_API_KEY"), "{err}");
        let (_dir, path) = with_file("provider = \"openrouter\"\napi_key = \"sk-or\"\n");
        let s =
            Settings::resolve(&cli(&["--config", &path, "--data-dir", "/d"]), &no_env()).unwrap();
        assert_eq!(openai(&s).api_key.as_deref(), Some("sk-or"));
        assert_eq!(openai(&s).base_url, Provider::OpenRouter.base_url());
    }
    #[test]
    fn an_explicit_url_beats_the_preset_but_a_lower_one_does_not() {
        let env = Environment::default().with("GEMINI_API_KEY", "g");
        let s = Settings::resolve(
            &cli(&[
                "--data-dir",
                "/d",
                "--provider",
                "gemini",
                "--base-url",
                "http://127.0.0.1:9/v1",
            ]),
            &env,
        )
        .unwrap();
        assert_eq!(openai(&s).base_url, "http://127.0.0.1:9/v1");
        // OPENAI_BASE_URL in the environment is for OpenAI-compatible
        // servers in general; a provider flag is more specific.
        let (_dir, path) = with_file("base_url = \"http://file:1/v1\"\nmodel = \"file-model\"\n");
        let s = Settings::resolve(
            &cli(&[
                "--config",
                &path,
                "--data-dir",
                "/d",
                "--provider",
                "gemini",
            ]),
            &env,
        )
        .unwrap();
        assert_eq!(openai(&s).base_url, Provider::Gemini.base_url());
        assert_eq!(openai(&s).model, Provider::Gemini.default_model());
    }
    #[test]
    fn a_provider_with_the_local_backend_is_refused() {
        let err = Settings::resolve(
            &cli(&[
                "--data-dir",
                "/d",
                "--provider",
                "vllm",
                "--backend",
                "local",
            ]),
            &no_env(),
        )
        .unwrap_err();
        assert!(
            matches!(err, ConfigError::ProviderWithLocal("vllm")),
            "{err}"
        );
    }
    #[test]
    fn the_theme_is_checked_and_reaches_the_settings() {
        let s = Settings::resolve(
            &cli(&["--data-dir", "/d", "--theme", "High-Contrast"]),
            &no_env(),
        )
        .unwrap();
        assert_eq!(s.theme.as_deref(), Some("high-contrast"));
        let err = args::try_parse_from(["persona-sim", "--theme", "pink"]).unwrap_err();
        assert!(err.to_string().contains("not a theme"), "{err}");
        assert_eq!(err.exit_code(), 2);
    }
    #[test]
    fn a_persona_file_in_a_missing_folder_is_an_error() {
        let err = Settings::resolve(
            &cli(&["--data-dir", "/d", "--personas", "/no/such/folder/p.json"]),
            &no_env(),
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("/no/such/folder does not exist"),
            "{err}"
        );
        assert!(
            Settings::resolve(
                &cli(&["--data-dir", "/d", "--personas", "p.json"]),
                &no_env()
            )
            .is_ok()
        );
    }
    #[test]
    fn nearest_suggests_only_close_words() {
        assert_eq!(
            nearest("ocupation", ["name", "occupation"]),
            Some("occupation")
        );
        assert_eq!(nearest("colour", ["name", "occupation"]), None);
    }
}
