use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;

use persona_sim::config::{Cli, Command, ModelCommand, PersonasCommand, Settings};
use persona_sim::persona::store::{self, StorePaths};
use persona_sim::{cli, tui};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("persona-sim: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let settings = Settings::resolve(&cli, std::env::var("OPENAI_API_KEY").ok())?;
    let _log_guard = init_logging(&settings)?;
    tracing::info!(target: "app", backend = ?settings.backend, personas = %settings.personas_path.display(), "starting");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let paths = StorePaths::for_file(&settings.personas_path);
    match &cli.command {
        None => {
            let loaded = store::load(&paths)?;
            runtime.block_on(tui::run(settings, loaded))?;
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Personas(PersonasCommand::List)) => {
            let loaded = store::load(&paths)?;
            for notice in &loaded.notices {
                eprintln!("note: {notice}");
            }
            cli::personas_list(&loaded.personas, &mut std::io::stdout().lock())?;
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Model(ModelCommand::Fetch { force })) => runtime.block_on(cli::model_fetch(
            &settings.model_path,
            &settings.model_url,
            *force,
        )),
        Some(Command::Model(ModelCommand::Status)) => {
            cli::model_status(
                &settings.backend,
                &settings.model_path,
                &mut std::io::stdout().lock(),
            )?;
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Simulate(args)) => {
            let loaded = store::load(&paths)?;
            for notice in &loaded.notices {
                eprintln!("note: {notice}");
            }
            let backend = settings.backend.build();
            runtime.block_on(cli::simulate(args, &loaded.personas, backend, &settings))
        }
        Some(Command::Sessions(command)) => {
            cli::sessions(
                command,
                &settings.sessions_dir,
                &mut std::io::stdout().lock(),
            )?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Logs go to a file, never to the terminal the UI draws on.
fn init_logging(
    settings: &Settings,
) -> anyhow::Result<tracing_appender::non_blocking::WorkerGuard> {
    use tracing_subscriber::EnvFilter;
    let path = &settings.log_file;
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create the log directory {}", dir.display()))?;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("cannot open the log file {}", path.display()))?;
    let (writer, guard) = tracing_appender::non_blocking(file);
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(false)
        .init();
    Ok(guard)
}
