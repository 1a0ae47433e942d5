use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;

use persona_sim::api_keys::{KeyStore, Keys};
use persona_sim::cli::args::{Cli, Command, ModelCommand, PersonasCommand, SessionsCommand};
use persona_sim::config::{Environment, Settings};
use persona_sim::db::Db;
use persona_sim::db::panel::PgPanel;
use persona_sim::persona::panel_store::PanelStore;
use persona_sim::persona::store::{self, StorePaths};
use persona_sim::services::Services;
use persona_sim::sim::live::{Feed, Publication};
use persona_sim::{cli, serve, tui};

fn main() -> ExitCode {
    let cli = persona_sim::cli::args::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            // A failed write (stderr gone with the terminal) must not panic.
            let _ = writeln!(std::io::stderr(), "persona-sim: error: {e:#}");
            ExitCode::from(cli::exit_code_for(&e))
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    // Completions and the man page need no settings, logs or runtime.
    match cli.command {
        Some(Command::Completions { shell }) => {
            cli::completions::write_completions(shell, &mut std::io::stdout().lock())?;
            return Ok(ExitCode::SUCCESS);
        }
        Some(Command::Man) => {
            cli::completions::write_man_page(&mut std::io::stdout().lock())?;
            return Ok(ExitCode::SUCCESS);
        }
        _ => {}
    }
    // Sessions, exports, logs and data folders are private to this user; a
    // shared panel file keeps its own mode (atomic_file::write_keeping).
    persona_sim::atomic_file::private_by_default();
    let env = Environment::process();
    // `config` needs no logging or runtime, and `config path` / `init` must
    // work while the file is broken.
    if let Some(Command::Config(command)) = &cli.command {
        cli::config_cmd::run(command, &cli, &env, &mut std::io::stdout().lock())?;
        return Ok(ExitCode::SUCCESS);
    }
    let settings = Settings::resolve(&cli, &env)?;
    let _log_guard =
        persona_sim::observe::logging::init(&settings.log_file, settings.log_level.as_deref())?;
    tracing::info!(target: "app", backend = ?settings.backend, personas = %settings.personas_path.display(), "starting");
    if let Some((old, new)) = persona_sim::observe::limits::raise_open_files_limit() {
        tracing::info!(target: "app", old, new, "raised the open-files limit");
    }
    // Declared before the runtime and the services, so it drops after them
    // (and before the log guard): every way out of `run` cancels and joins
    // the embedded model's generation threads before exit tears down
    // llama.cpp's statics under a running decode (SIGSEGV).
    #[cfg(feature = "local")]
    let _llm_guard = persona_sim::llm::local::ExitGuard;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    // The database pool starts its upkeep tasks on this runtime.
    let _runtime_context = runtime.enter();
    let paths = StorePaths::for_file(&settings.personas_path);
    // The TUI serves metrics; short-lived commands only log their calls.
    // The TUI and the API serve metrics; short-lived commands only log.
    let serving = matches!(cli.command, None | Some(Command::Serve(_)));
    let services = Services::new(settings, serving);
    let settings = &services.settings;
    match &cli.command {
        // Written above, before the settings.
        Some(Command::Completions { .. } | Command::Man) => Ok(ExitCode::SUCCESS),
        None => {
            let loaded = store::load(&paths)?;
            let (_live_server, live) = runtime.block_on(start_live(settings))?;
            let ending = runtime.block_on(tui::run(&services, loaded, live))?;
            Ok(ExitCode::from(ending.exit_code()))
        }
        Some(Command::Personas(command)) => {
            let backend = matches!(command, PersonasCommand::Generate(_))
                .then(|| services.backend.clone())
                .flatten();
            runtime.block_on(cli::personas::run(
                command,
                &paths,
                settings,
                backend,
                &mut std::io::stdout().lock(),
            ))
        }
        Some(Command::Model(ModelCommand::Fetch { force })) => runtime.block_on(cli::model::fetch(
            &settings.model_path,
            &settings.model_url,
            *force,
        )),
        Some(Command::Model(ModelCommand::Status)) => {
            cli::model::status(
                &settings.backend,
                &settings.model_path,
                &mut std::io::stdout().lock(),
            )?;
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Simulate(args)) => {
            let loaded = store::load(&paths)?;
            for notice in &loaded.notices {
                let _ = writeln!(std::io::stderr(), "note: {notice}");
            }
            let (_live_server, live) = runtime.block_on(start_live(settings))?;
            runtime.block_on(cli::simulate::run(
                args,
                &loaded.personas,
                services.backend.clone(),
                settings,
                live,
            ))
        }
        Some(Command::Config(_)) => unreachable!("`config` runs before the settings are resolved"),
        Some(Command::Eval(args)) => {
            cli::eval::run(args, &settings.sessions_dir, &mut std::io::stdout().lock())?;
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Sessions(SessionsCommand::Rerun { id })) => runtime.block_on(
            cli::rerun::run(id, &services, &mut std::io::stdout().lock()),
        ),
        Some(Command::Sessions(command)) => {
            cli::sessions::run(
                command,
                &settings.sessions_dir,
                &mut std::io::stdout().lock(),
            )?;
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Db(command)) => {
            let url = settings.database_url.as_deref().context(
                "`db` needs a database: pass --database-url postgres://USER:PASSWORD@HOST:PORT/DB or set DATABASE_URL",
            )?;
            runtime.block_on(cli::db::run(
                command,
                &Db::new(url)?,
                &mut std::io::stdout().lock(),
            ))
        }
        Some(Command::Keys(command)) => {
            let keys = match &settings.database_url {
                Some(url) => {
                    let db = Db::new(url)?;
                    // A key made before the first `serve` needs the schema.
                    runtime.block_on(db.migrate())?;
                    Keys::Postgres(db)
                }
                None => Keys::File(KeyStore::in_dir(&settings.data_dir)),
            };
            runtime.block_on(cli::keys::run(
                command,
                &keys,
                &mut std::io::stdout().lock(),
            ))?;
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Serve(args)) => {
            let (panel_store, keys) = match &settings.database_url {
                Some(url) => {
                    if cli.personas.is_some() {
                        eprintln!(
                            "note: --personas is not used with --database-url: the panel is the database's (`db import-panel FILE` copies a file in)"
                        );
                    }
                    let db = Db::new(url)?;
                    let panel = PanelStore::Postgres(Arc::new(PgPanel::new(db.clone())));
                    (panel, Keys::Postgres(db))
                }
                None => (
                    PanelStore::File(paths.clone()),
                    Keys::File(KeyStore::in_dir(&settings.data_dir)),
                ),
            };
            // Recover or create the panel file before the first request,
            // and keep it for the first request. A database is not waited
            // for: the server starts, says what is wrong on /health and
            // answers 503 until the database answers (serve::run).
            let loaded = match &panel_store {
                PanelStore::File(_) => Some(runtime.block_on(panel_store.load())?),
                PanelStore::Postgres(_) => None,
            };
            for notice in loaded.iter().flat_map(|l| &l.notices) {
                eprintln!("note: {notice}");
            }
            // A local model that is not installed is no backend: the LLM
            // routes say how to get one instead of failing at the first call.
            let no_backend = match settings.backend.missing_local_model() {
                Some(path) => Some(format!(
                    "the local model is not installed at {}: run `persona-sim model fetch`, or set OPENAI_API_KEY / OPENAI_BASE_URL",
                    path.display()
                )),
                None if services.backend.is_none() => Some(
                    "no LLM backend is configured: start the server with OPENAI_API_KEY (and OPENAI_BASE_URL for another OpenAI-compatible server) set".into(),
                ),
                None => None,
            };
            let backend = services.backend.clone().filter(|_| no_backend.is_none());
            if let Some(metrics) = &services.metrics {
                metrics.set_store_problem(loaded.as_ref().and_then(|l| l.write_problem.clone()));
                metrics.set_backend_problem(no_backend.clone());
            }
            let state = serve::state::ApiState::new(
                panel_store,
                settings.sessions_dir.clone(),
                keys,
                backend,
                services.metrics.clone(),
                settings.environment.clone(),
            )
            .with_debate_settings(
                settings.rounds,
                settings.max_tokens_per_turn,
                settings.max_tokens_total,
            )
            .with_no_backend_reason(no_backend);
            // API debates have no moderator: nobody would read questions.
            if settings.live.as_ref().is_some_and(|l| l.questions) {
                anyhow::bail!(
                    "--live-questions: `serve` runs debates without a moderator, so nobody would take audience questions; drop the flag"
                );
            }
            let (_live_server, live) = runtime.block_on(start_live(settings))?;
            let state = match live {
                Some(publication) => {
                    eprintln!(
                        "live page on {} (each API debate is shown there, one at a time)",
                        publication.url
                    );
                    state.with_live_feed(publication.feed)
                }
                None => state,
            };
            if let Some(loaded) = loaded {
                state.prime_panel(loaded);
            }
            let options = serve::ServeOptions {
                bind: args.bind,
                cors_origins: args.cors_origins.clone(),
                max_body: args.max_body_mb.saturating_mul(1024 * 1024),
                rate_limit: args.rate_limit,
                ..serve::ServeOptions::default()
            };
            runtime.block_on(serve::run(state, options))?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// With `--live`: the feed (taking questions with `--live-questions`) and
/// its spectator server, started before the face so a taken port stops the
/// run at once. The server lives as long as the returned handle.
async fn start_live(
    settings: &Settings,
) -> anyhow::Result<(Option<serve::live::LiveServer>, Option<Publication>)> {
    let Some(live) = &settings.live else {
        return Ok((None, None));
    };
    let (feed, questions) = if live.questions {
        let (feed, queue) = Feed::with_questions();
        (feed, Some(queue))
    } else {
        (Feed::new(), None)
    };
    let feed = Arc::new(feed);
    let server = serve::live::start(live.addr, feed.clone(), live.token.clone())
        .await
        .with_context(|| {
            format!(
                "cannot serve the live page on {} (--live): choose another address, e.g. --live 127.0.0.1:7778",
                live.addr
            )
        })?;
    if !live.addr.ip().is_loopback() && live.token.is_none() {
        eprintln!(
            "note: the live page on {} has no viewer token: anyone who can reach it can watch{}; set --live-token",
            live.addr,
            if live.questions {
                " and ask questions"
            } else {
                ""
            }
        );
    }
    let url = server.url(live.token.as_deref());
    tracing::info!(target: "live", addr = %server.addr(), questions = live.questions, token = live.token.is_some(), "live page ready");
    Ok((
        Some(server),
        Some(Publication {
            feed,
            questions,
            url,
        }),
    ))
}
