//! The config file and provider presets, as a user meets them: the real
//! binary, a temp config file, and the mock server standing in for each
//! provider.

mod support;

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use support::MockServer;
use support::binary::{command, text};

async fn run(cmd: std::process::Command) -> Output {
    support::binary::run(cmd).await
}

/// `persona-sim ARGS` with `config` as the config file.
fn with_config(data_dir: &Path, config: &Path, args: &[&str]) -> std::process::Command {
    let mut cmd = command(data_dir, None, args);
    cmd.env("PERSONA_SIM_CONFIG", config);
    cmd
}

/// The row of `config show` for `key`.
fn row<'a>(shown: &'a str, key: &str) -> &'a str {
    shown
        .lines()
        .find(|l| l.split_whitespace().next() == Some(key))
        .unwrap_or_else(|| panic!("no {key} in {shown}"))
}

#[tokio::test]
async fn config_path_show_and_init() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("conf").join("config.toml");
    let out = run(with_config(dir.path(), &config, &["config", "path"])).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), config.display().to_string());

    let out = run(with_config(dir.path(), &config, &["config", "init"])).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let template = std::fs::read_to_string(&config).unwrap();
    assert!(template.contains("# rounds = 2"), "{template}");
    // The template as written changes nothing.
    let out = run(with_config(dir.path(), &config, &["config", "show"])).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    assert!(row(&shown, "rounds").ends_with("default"), "{shown}");

    let out = run(with_config(dir.path(), &config, &["config", "init"])).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("--force"),
        "{}",
        text(&out.stderr)
    );
    std::fs::write(&config, "rounds = 4\n").unwrap();
    let out = run(with_config(
        dir.path(),
        &config,
        &["config", "init", "--force"],
    ))
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        std::fs::read_to_string(&config)
            .unwrap()
            .starts_with("# persona-sim")
    );
}

#[tokio::test]
async fn config_show_says_where_each_value_came_from_and_hides_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        "rounds = 4\ntimeout = 9\ntemperature = 0.5\napi_key = \"sk-from-file-123\"\ntheme = \"light\"\n",
    )
    .unwrap();
    let mut cmd = with_config(dir.path(), &config, &["config", "show", "--rounds", "3"]);
    cmd.env("PERSONA_SIM_TIMEOUT", "7");
    let out = run(cmd).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    assert!(
        row(&shown, "rounds").contains("3") && row(&shown, "rounds").ends_with("flag --rounds"),
        "{shown}"
    );
    assert!(
        row(&shown, "timeout").ends_with("env PERSONA_SIM_TIMEOUT"),
        "{shown}"
    );
    let file = format!("file {}", config.display());
    assert!(row(&shown, "temperature").ends_with(&file), "{shown}");
    assert!(row(&shown, "theme").contains("light"), "{shown}");
    assert!(row(&shown, "api_key").contains("<redacted>"), "{shown}");
    assert!(!shown.contains("sk-from-file-123"), "{shown}");
    assert!(
        row(&shown, "herding_threshold").ends_with("default"),
        "{shown}"
    );
}

#[tokio::test]
async fn a_bad_config_file_exits_2_naming_the_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    for (content, line, says) in [
        (
            "rounds = 2\nherding_treshold = 0.9\n",
            2,
            "did you mean `herding_threshold`",
        ),
        ("rounds = \"two\"\n", 1, "`rounds`"),
        ("model = \"m\"\ntemperature = 9.0\n", 2, "outside 0..=2"),
        ("[oops\n", 1, "config file"),
    ] {
        std::fs::write(&config, content).unwrap();
        let out = run(with_config(dir.path(), &config, &["personas", "list"])).await;
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{content}: {stderr}");
        assert!(
            stderr.contains(&format!("{}:{line}", config.display())),
            "{content}: {stderr}"
        );
        assert!(stderr.contains(says), "{content}: {stderr}");
    }
    // A missing file is the defaults.
    std::fs::remove_file(&config).unwrap();
    let out = run(with_config(dir.path(), &config, &["personas", "list"])).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[tokio::test]
async fn the_file_sets_a_run_and_flags_beat_it() {
    let server = MockServer::persona_echo(Duration::ZERO).await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "base_url = \"{}\"\nmodel = \"model-from-file\"\nrounds = 2\n",
            server.base_url
        ),
    )
    .unwrap();
    let out = run(with_config(
        dir.path(),
        &config,
        &[
            "simulate",
            "--feature",
            "Dark mode",
            "--personas",
            "1",
            "--rounds",
            "1",
        ],
    ))
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let requests = server.requests();
    assert_eq!(requests.len(), 1, "--rounds 1 beats the file's 2");
    assert_eq!(requests[0].body["model"], "model-from-file");
}

/// Each preset, pointed at the mock with `--base-url`: the key comes from
/// the provider's variable (and only there), the model is the provider's,
/// and the request goes to `/v1/chat/completions` (the only route the mock
/// records).
#[tokio::test]
async fn each_provider_sends_its_key_and_model() {
    let server = MockServer::persona_echo(Duration::ZERO).await;
    let dir = tempfile::tempdir().unwrap();
    let presets = [
        ("openai", Some("OPENAI_API_KEY"), "gpt-4o-mini"),
        ("anthropic", Some("ANTHROPIC_API_KEY"), "claude-haiku-4-5"),
        ("gemini", Some("GEMINI_API_KEY"), "gemini-2.5-flash"),
        (
            "openrouter",
            Some("OPENROUTER_API_KEY"),
            "openai/gpt-4o-mini",
        ),
        ("ollama", None, "llama3.2"),
        ("lmstudio", None, "qwen2.5-7b-instruct"),
        ("vllm", None, "Qwen/Qwen2.5-7B-Instruct"),
    ];
    for (i, (provider, key_var, model)) in presets.into_iter().enumerate() {
        let mut cmd = command(
            dir.path(),
            None,
            &[
                "simulate",
                "--provider",
                provider,
                "--base-url",
                &server.base_url,
                "--feature",
                "Dark mode",
                "--personas",
                "1",
                "--rounds",
                "1",
            ],
        );
        // A key for another provider must not be sent.
        cmd.env("OPENAI_API_KEY", "sk-openai-elsewhere");
        let key = format!("key-for-{provider}");
        if let Some(var) = key_var {
            cmd.env(var, &key);
        }
        let out = run(cmd).await;
        assert!(out.status.success(), "{provider}: {}", text(&out.stderr));
        let requests = server.requests();
        assert_eq!(requests.len(), i + 1, "{provider}");
        let request = &requests[i];
        assert_eq!(request.body["model"], model, "{provider}");
        let expected = match key_var {
            Some(_) => format!("Bearer {key}"),
            None => "Bearer".to_string(),
        };
        assert_eq!(
            request.authorization.as_deref().map(str::trim),
            Some(expected.as_str()),
            "{provider}"
        );
    }
}

#[tokio::test]
async fn a_provider_without_its_key_names_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = command(
        dir.path(),
        None,
        &["simulate", "--provider", "anthropic", "--feature", "x"],
    );
    cmd.env("OPENAI_API_KEY", "sk-openai");
    let out = run(cmd).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("ANTHROPIC_API_KEY"),
        "{}",
        text(&out.stderr)
    );
    let out = run(command(
        dir.path(),
        None,
        &["--provider", "acme", "personas", "list"],
    ))
    .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("anthropic"),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test]
async fn an_unknown_theme_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(command(
        dir.path(),
        None,
        &["--theme", "pink", "personas", "list"],
    ))
    .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("high-contrast"),
        "{}",
        text(&out.stderr)
    );
    let mut cmd = command(dir.path(), None, &["config", "show"]);
    cmd.env("PERSONA_SIM_THEME", "high-contrast");
    let out = run(cmd).await;
    assert!(
        row(&text(&out.stdout), "theme").ends_with("env PERSONA_SIM_THEME"),
        "{}",
        text(&out.stdout)
    );
}

/// Compose files leave unset variables empty: an empty or blank one is no
/// value (as before), while a blank flag is an error.
#[tokio::test]
async fn blank_variables_are_unset_but_a_blank_flag_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = command(dir.path(), None, &["config", "show"]);
    for var in [
        "OPENAI_BASE_URL",
        "OPENAI_MODEL",
        "PERSONA_SIM_PROVIDER",
        "PERSONA_SIM_THEME",
        "DATABASE_URL",
    ] {
        cmd.env(var, " ");
    }
    let out = run(cmd).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    assert!(row(&shown, "base_url").ends_with("default"), "{shown}");
    assert!(row(&shown, "provider").ends_with("default"), "{shown}");
    let out = run(command(
        dir.path(),
        None,
        &["--model", " ", "config", "show"],
    ))
    .await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
}

/// `config show` is where one looks when a run is refused: it prints every
/// setting, then the problem (exit 2).
#[tokio::test]
async fn config_show_prints_the_settings_beside_a_missing_key() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(command(
        dir.path(),
        None,
        &["--provider", "gemini", "config", "show"],
    ))
    .await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    assert!(
        row(&shown, "provider").ends_with("flag --provider"),
        "{shown}"
    );
    assert!(
        row(&shown, "herding_threshold").ends_with("default"),
        "{shown}"
    );
    assert!(
        text(&out.stderr).contains("GEMINI_API_KEY"),
        "{}",
        text(&out.stderr)
    );
}
