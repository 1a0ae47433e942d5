//! Flags and environment, resolved once into [`Settings`] that are passed
//! down. Precedence: flags > environment > defaults. Nothing deeper reads the
//! environment.

use std::path::PathBuf;
use std::time::Duration;

use crate::cli::args::{BackendKind, Cli};
use crate::llm::openai::{OPENAI_BASE_URL, OpenAiSettings};
use crate::llm::{BackendChoice, LOCAL_AVAILABLE};
use crate::sim::debate::DEFAULT_MAX_TOKENS_PER_TURN;
use crate::sim::devil::{DevilsAdvocate, Herding};

const OPENAI_TEMPERATURE: f32 = 0.8;
const LOCAL_TEMPERATURE: f32 = 0.3;

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

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "cannot find a home directory for the data dir; pass --data-dir or set PERSONA_SIM_DATA_DIR"
    )]
    NoDataDir,
    #[error("OPENAI_BASE_URL {0:?} must start with http:// or https://")]
    BadBaseUrl(String),
    #[error(
        "--backend local: this build has no embedded model (it was built without the `local` feature)"
    )]
    LocalUnavailable,
    #[error(
        "--backend openai needs OPENAI_API_KEY (or OPENAI_BASE_URL for a server that needs no key)"
    )]
    OpenAiWithoutKey,
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
        let model_path = cli.model_path.clone().unwrap_or_else(|| {
            data_dir
                .join("models")
                .join(crate::llm::fetch::DEFAULT_MODEL_FILE)
        });
        let openai_configured = api_key.is_some() || base_url.is_some();
        let use_openai = match cli.backend {
            BackendKind::Openai if !openai_configured => return Err(ConfigError::OpenAiWithoutKey),
            BackendKind::Openai => true,
            BackendKind::Local if !LOCAL_AVAILABLE => return Err(ConfigError::LocalUnavailable),
            BackendKind::Local => false,
            BackendKind::Auto => openai_configured,
        };
        let backend = if use_openai {
            BackendChoice::OpenAi(OpenAiSettings {
                api_key,
                base_url: base_url.unwrap_or_else(|| OPENAI_BASE_URL.to_string()),
                model: cli.model.clone(),
                temperature: cli.temperature.unwrap_or(OPENAI_TEMPERATURE),
                first_token_timeout: timeout,
                stall_timeout: timeout,
                context_tokens: cli.context_tokens,
                seed: cli.seed,
            })
        } else if LOCAL_AVAILABLE {
            BackendChoice::Local {
                model_path: model_path.clone(),
                temperature: cli.temperature.unwrap_or(LOCAL_TEMPERATURE),
                seed: cli.seed,
            }
        } else {
            BackendChoice::None
        };
        let max_tokens_per_turn = match backend {
            BackendChoice::Local { .. } => LOCAL_MAX_TOKENS_PER_TURN,
            _ => DEFAULT_MAX_TOKENS_PER_TURN,
        };
        Ok(Settings {
            sessions_dir: data_dir.join("sessions"),
            exports_dir: data_dir.join("exports"),
            data_dir,
            personas_path,
            log_file,
            backend,
            model_path,
            model_url: cli.model_url.clone(),
            rounds: cli.rounds,
            max_tokens_per_turn,
            max_tokens_total: cli.max_tokens_total,
            devils_advocate: cli.devils_advocate,
            herding_threshold: cli.herding_threshold,
            seed: cli.seed,
            mouse: cli.mouse,
            theme: None,
            stage: cli.stage,
            cache_dir: cli.cache.clone(),
            log_level: cli.log_level.clone(),
            metrics_addr: (!cli.no_metrics)
                .then(|| std::net::SocketAddr::new(cli.metrics_bind, cli.metrics_port)),
            environment: cli.environment.clone(),
            slow_call: Duration::from_secs_f64(cli.slow_call_secs),
            // An empty DATABASE_URL (as compose files leave it) means files.
            database_url: cli
                .database_url
                .clone()
                .filter(|url| !url.trim().is_empty()),
            live: cli.live.map(|addr| LiveSettings {
                addr,
                // An empty token (an unset variable in a compose file) is none.
                token: cli.live_token.clone().filter(|t| !t.trim().is_empty()),
                questions: cli.live_questions,
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    #[test]
    fn debug_output_of_the_settings_never_shows_the_key() {
        let s = Settings::resolve(&cli(&["--data-dir", "/d"]), Some("sk-secret-9".into())).unwrap();
        let text = format!("{s:?}");
        assert!(!text.contains("sk-secret-9"), "{text}");
        assert!(text.contains("<redacted>"), "{text}");
    }
    #[test]
    fn live_is_off_by_default_and_a_bare_flag_is_loopback_7777() {
        let s = Settings::resolve(&cli(&["--data-dir", "/d"]), None).unwrap();
        assert_eq!(s.live, None);
        let s = Settings::resolve(&cli(&["--data-dir", "/d", "--live"]), None).unwrap();
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
            None,
        )
        .unwrap();
        let live = s.live.clone().unwrap();
        assert_eq!(live.addr, "0.0.0.0:9000".parse().unwrap());
        assert_eq!(live.token.as_deref(), Some("tok-secret-1"));
        assert!(live.questions);
        assert!(!format!("{s:?}").contains("tok-secret-1"));
        let s = Settings::resolve(&cli(&["--data-dir", "/d", "--live=8123"]), None).unwrap();
        assert_eq!(s.live.unwrap().addr, "127.0.0.1:8123".parse().unwrap());
        let e = Cli::try_parse_from(["persona-sim", "--live", "nowhere:x"]).unwrap_err();
        assert!(e.to_string().contains("not an address"), "{e}");
        let e = Cli::try_parse_from(["persona-sim", "--live-questions"]).unwrap_err();
        assert!(e.to_string().contains("--live"), "{e}");
    }
    #[test]
    fn stage_flag_reaches_the_settings() {
        let s = Settings::resolve(&cli(&["--data-dir", "/d"]), None).unwrap();
        assert!(!s.stage);
        let s = Settings::resolve(&cli(&["--data-dir", "/d", "--stage"]), None).unwrap();
        assert!(s.stage);
    }
    #[test]
    fn metrics_and_logging_flags() {
        let s = Settings::resolve(&cli(&["--data-dir", "/d"]), None).unwrap();
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
            None,
        )
        .unwrap();
        assert_eq!(s.metrics_addr, Some("0.0.0.0:9100".parse().unwrap()));
        assert_eq!(s.log_level.as_deref(), Some("debug"));
        let s = Settings::resolve(&cli(&["--data-dir", "/d", "--no-metrics"]), None).unwrap();
        assert_eq!(s.metrics_addr, None);
        let err = Cli::try_parse_from(["persona-sim", "--log-level", "loud"]).unwrap_err();
        assert!(err.to_string().contains("not a level"), "{err}");
        let err = Cli::try_parse_from(["persona-sim", "--metrics-port", "70000"]).unwrap_err();
        assert!(err.to_string().contains("metrics-port"), "{err}");
    }
    fn cli(args: &[&str]) -> Cli {
        let mut all = vec!["persona-sim"];
        all.extend_from_slice(args);
        Cli::try_parse_from(all).unwrap()
    }
    #[test]
    fn no_key_and_no_url_means_the_local_model_when_built_in() {
        let s = Settings::resolve(&cli(&["--data-dir", "/tmp/x"]), None).unwrap();
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
            Some("sk-1".into()),
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
        let err = Settings::resolve(&cli(&["--data-dir", "/d", "--backend", "openai"]), None)
            .unwrap_err();
        assert!(matches!(err, ConfigError::OpenAiWithoutKey));
        let s = Settings::resolve(
            &cli(&["--data-dir", "/d", "--backend", "openai"]),
            Some("k".into()),
        )
        .unwrap();
        assert!(matches!(s.backend, BackendChoice::OpenAi(_)));
        assert_eq!(s.backend.missing_local_model(), None);
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
            None,
        )
        .unwrap();
        let BackendChoice::OpenAi(o) = s.backend else {
            panic!()
        };
        assert_eq!(o.context_tokens, Some(2048));
        let s = Settings::resolve(&cli(&["--data-dir", "/d"]), Some("sk-1".into())).unwrap();
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
            None,
        )
        .unwrap();
        let BackendChoice::OpenAi(o) = s.backend else {
            panic!()
        };
        assert_eq!(o.seed, Some(9));
        let s = Settings::resolve(
            &cli(&["--data-dir", "/d", "--base-url", "http://h/v1"]),
            None,
        )
        .unwrap();
        let BackendChoice::OpenAi(o) = s.backend else {
            panic!()
        };
        assert_eq!(o.seed, None);
        if LOCAL_AVAILABLE {
            let s = Settings::resolve(&cli(&["--data-dir", "/d", "--seed", "3"]), None).unwrap();
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
        let err = Settings::resolve(
            &cli(&["--data-dir", "/d", "--base-url", "localhost:1"]),
            None,
        )
        .unwrap_err();
        assert!(err.to_string().contains("http://"));
    }
}
