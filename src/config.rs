//! Command-line flags and environment, resolved once into [`Settings`].
//! Precedence: flags > environment > defaults. Nothing deeper reads the
//! environment.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::llm::openai::{DEFAULT_MODEL, OPENAI_BASE_URL, OpenAiSettings};
use crate::sim::debate::{DEFAULT_MAX_TOKENS_PER_TURN, DEFAULT_ROUNDS};

#[derive(Debug, Parser)]
#[command(
    name = "persona-sim",
    version,
    about = "Watch a panel of virtual personas debate your product feature, live, in the terminal."
)]
pub struct Cli {
    /// Persona file to use instead of the one in the data directory
    /// (give it before a subcommand: `simulate --personas` takes ids).
    #[arg(
        long,
        visible_alias = "personas-file",
        env = "PERSONAS_FILE",
        value_name = "PATH"
    )]
    pub personas: Option<PathBuf>,

    /// Where personas, logs and (later) sessions live.
    #[arg(long, env = "PERSONA_SIM_DATA_DIR", global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// Chat model name sent to the server.
    #[arg(long, env = "OPENAI_MODEL", global = true, default_value = DEFAULT_MODEL)]
    pub model: String,

    /// OpenAI-compatible server, e.g. http://localhost:11434/v1 for Ollama.
    #[arg(long, env = "OPENAI_BASE_URL", global = true, value_name = "URL")]
    pub base_url: Option<String>,

    /// Sampling temperature, 0 to 2.
    #[arg(long, global = true, default_value_t = 0.8, value_parser = parse_temperature)]
    pub temperature: f32,

    /// Debate rounds: every selected persona speaks once per round.
    #[arg(long, global = true, default_value_t = DEFAULT_ROUNDS, value_parser = clap::value_parser!(u32).range(1..=20))]
    pub rounds: u32,

    /// Seconds to wait for the first token, and for the next one mid-stream.
    #[arg(long, env = "PERSONA_SIM_TIMEOUT", global = true, default_value_t = 30.0, value_parser = parse_seconds)]
    pub timeout: f64,

    /// Capture the mouse for wheel scrolling (turns off terminal text selection).
    #[arg(long, global = true)]
    pub mouse: bool,

    /// Log file (default: logs/app.log in the data directory).
    #[arg(long, global = true, value_name = "PATH")]
    pub log_file: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a debate without the TUI and stream it to stdout.
    Simulate(SimulateArgs),
    /// Work with the persona panel.
    #[command(subcommand)]
    Personas(PersonasCommand),
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
    /// Print the panel.
    List,
}

fn parse_temperature(s: &str) -> Result<f32, String> {
    let t: f32 = s.parse().map_err(|_| format!("{s:?} is not a number"))?;
    if (0.0..=2.0).contains(&t) {
        Ok(t)
    } else {
        Err(format!("{t} is outside 0..=2"))
    }
}

fn parse_seconds(s: &str) -> Result<f64, String> {
    let t: f64 = s
        .parse()
        .map_err(|_| format!("{s:?} is not a number of seconds"))?;
    if t > 0.0 && t <= 3600.0 {
        Ok(t)
    } else {
        Err(format!("{t} must be between 0 and 3600 seconds"))
    }
}

/// Which LLM the app talks to.
#[derive(Debug, Clone)]
pub enum BackendChoice {
    OpenAi(OpenAiSettings),
    /// Nothing configured: the app runs, and says how to configure one.
    None,
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub data_dir: PathBuf,
    pub personas_path: PathBuf,
    pub log_file: PathBuf,
    pub backend: BackendChoice,
    pub rounds: u32,
    pub max_tokens_per_turn: u32,
    pub mouse: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "cannot find a home directory for the data dir; pass --data-dir or set PERSONA_SIM_DATA_DIR"
    )]
    NoDataDir,
    #[error("OPENAI_BASE_URL {0:?} must start with http:// or https://")]
    BadBaseUrl(String),
}

impl Settings {
    /// `api_key` comes from `OPENAI_API_KEY`; it is never a flag, so it never
    /// shows up in `ps`.
    pub fn resolve(cli: &Cli, api_key: Option<String>) -> Result<Settings, ConfigError> {
        let data_dir = match &cli.data_dir {
            Some(dir) => dir.clone(),
            None => directories::ProjectDirs::from("", "", "persona-sim")
                .ok_or(ConfigError::NoDataDir)?
                .data_dir()
                .to_path_buf(),
        };
        let personas_path = cli
            .personas
            .clone()
            .unwrap_or_else(|| data_dir.join("personas.json"));
        let log_file = cli
            .log_file
            .clone()
            .unwrap_or_else(|| data_dir.join("logs").join("app.log"));
        let api_key = api_key.filter(|k| !k.trim().is_empty());
        let base_url = cli.base_url.clone().filter(|u| !u.trim().is_empty());
        if let Some(url) = &base_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(ConfigError::BadBaseUrl(url.clone()));
        }
        let timeout = Duration::from_secs_f64(cli.timeout);
        let backend = if api_key.is_some() || base_url.is_some() {
            BackendChoice::OpenAi(OpenAiSettings {
                api_key,
                base_url: base_url.unwrap_or_else(|| OPENAI_BASE_URL.to_string()),
                model: cli.model.clone(),
                temperature: cli.temperature,
                first_token_timeout: timeout,
                stall_timeout: timeout,
            })
        } else {
            BackendChoice::None
        };
        Ok(Settings {
            data_dir,
            personas_path,
            log_file,
            backend,
            rounds: cli.rounds,
            max_tokens_per_turn: DEFAULT_MAX_TOKENS_PER_TURN,
            mouse: cli.mouse,
        })
    }
}

impl BackendChoice {
    /// The live backend, or `None` when nothing is configured.
    pub fn build(&self) -> Option<std::sync::Arc<dyn crate::llm::ChatBackend>> {
        match self {
            BackendChoice::OpenAi(s) => Some(std::sync::Arc::new(
                crate::llm::openai::OpenAiBackend::new(s.clone()),
            )),
            BackendChoice::None => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cli(args: &[&str]) -> Cli {
        let mut all = vec!["persona-sim"];
        all.extend_from_slice(args);
        Cli::try_parse_from(all).unwrap()
    }

    #[test]
    fn no_key_and_no_url_means_no_backend() {
        let s = Settings::resolve(&cli(&["--data-dir", "/tmp/x"]), None).unwrap();
        assert!(matches!(s.backend, BackendChoice::None));
        assert_eq!(s.personas_path, PathBuf::from("/tmp/x/personas.json"));
        assert_eq!(s.log_file, PathBuf::from("/tmp/x/logs/app.log"));
    }

    #[test]
    fn key_selects_openai_with_defaults() {
        let s = Settings::resolve(&cli(&["--data-dir", "/d"]), Some("sk-1".into())).unwrap();
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
            None,
        )
        .unwrap();
        let BackendChoice::OpenAi(o) = s.backend else {
            panic!()
        };
        assert_eq!((o.api_key, o.model.as_str()), (None, "llama3"));
    }

    #[test]
    fn bad_values_are_rejected_with_reasons() {
        let err = Cli::try_parse_from(["persona-sim", "--temperature", "7"]).unwrap_err();
        assert!(err.to_string().contains("outside 0..=2"));
        let err = Cli::try_parse_from(["persona-sim", "--rounds", "0"]).unwrap_err();
        assert!(err.to_string().contains("rounds"));
        let err = Settings::resolve(
            &cli(&["--data-dir", "/d", "--base-url", "localhost:1"]),
            None,
        )
        .unwrap_err();
        assert!(err.to_string().contains("http://"));
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
}
