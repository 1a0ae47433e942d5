//! The operations files in assets/: the Grafana dashboard queries every
//! metric the app exports, and the Prometheus configs (the one-machine
//! prometheus.yml and compose.yaml's prometheus-compose.yml) and alert rules pass
//! `promtool check` (and the alerts fire, or stay quiet, on synthetic series
//! under `promtool test rules`).
//!
//! promtool comes from Debian's `prometheus` package, which `.ci/run`
//! installs; the tests never install it. Without it on PATH the promtool
//! tests print "skipped: promtool is missing (...)" and pass, except in CI
//! (`CI` set), where they fail.

mod support;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use persona_sim::observe::metrics::Metrics;
use serde_json::Value;

const ALERTS: &[&str] = &[
    "PersonaSimHighErrorRate",
    "PersonaSimDown",
    "PersonaSimHeartbeatStale",
    "PersonaSimSlowResponses",
    "PersonaSimSlowFirstToken",
    "PersonaSimApiServerErrors",
];

fn assets() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("assets")
}

fn read_asset(name: &str) -> String {
    let path = assets().join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

fn dashboard() -> Value {
    serde_json::from_str(&read_asset("grafana-dashboard.json"))
        .expect("assets/grafana-dashboard.json is valid JSON")
}

/// (panel title, expr) for every query of every panel.
fn dashboard_exprs(dashboard: &Value) -> Vec<(String, String)> {
    let panels = dashboard["panels"]
        .as_array()
        .expect("dashboard has panels");
    let mut exprs = Vec::new();
    for panel in panels {
        let title = panel["title"].as_str().unwrap_or("<untitled>").to_string();
        let targets = panel["targets"]
            .as_array()
            .unwrap_or_else(|| panic!("panel {title:?} has no targets"));
        for target in targets {
            let expr = target["expr"].as_str().unwrap_or_default().trim();
            exprs.push((title.clone(), expr.to_string()));
        }
    }
    exprs
}

/// Every metric the app exports, from its registry: a new metric fails
/// `dashboard_charts_every_exported_metric` until a panel charts it.
fn exported_metrics() -> Vec<String> {
    let names = Metrics::new().names().to_vec();
    assert!(!names.is_empty(), "the registry names its metrics");
    names
}

/// The `app_*` series names an expression or rules file mentions.
fn app_series(text: &str) -> Vec<&str> {
    text.match_indices("app_")
        .filter(|(at, _)| !text[..*at].chars().next_back().is_some_and(is_ident))
        .map(|(at, _)| {
            let rest = &text[at..];
            let end = rest.find(|c| !is_ident(c)).unwrap_or(rest.len());
            &rest[..end]
        })
        .collect()
}

/// Whether `series` is an exported metric or one of a histogram's series.
fn is_exported(series: &str, metrics: &[String]) -> bool {
    metrics.iter().any(|m| {
        series == m
            || ["_bucket", "_count", "_sum"]
                .iter()
                .any(|suffix| series.strip_suffix(suffix) == Some(m.as_str()))
    })
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

/// Whether `expr` queries `metric` itself (or its histogram series), not
/// merely a longer name that starts with it: `app_personas` must not be
/// satisfied by `app_personas_created_total`.
fn queries_metric(expr: &str, metric: &str) -> bool {
    expr.match_indices(metric).any(|(at, _)| {
        let before = expr[..at].chars().next_back();
        let rest = &expr[at + metric.len()..];
        let rest = ["_bucket", "_count", "_sum"]
            .iter()
            .find_map(|suffix| rest.strip_prefix(suffix))
            .unwrap_or(rest);
        !before.is_some_and(is_ident) && !rest.chars().next().is_some_and(is_ident)
    })
}

#[test]
fn metric_matching_respects_name_boundaries() {
    assert!(queries_metric("sum(app_personas)", "app_personas"));
    assert!(!queries_metric(
        "increase(app_personas_created_total[1d])",
        "app_personas"
    ));
    assert!(queries_metric(
        "rate(app_response_time_seconds_bucket[5m])",
        "app_response_time_seconds"
    ));
    assert!(!queries_metric("my_app_heartbeat", "app_heartbeat"));
}

#[test]
fn dashboard_declares_prometheus_input_and_identity() {
    let dash = dashboard();
    let inputs = dash["__inputs"].as_array().expect("__inputs is an array");
    assert!(
        inputs.iter().any(|i| i["name"] == "DS_PROMETHEUS"
            && i["type"] == "datasource"
            && i["pluginId"] == "prometheus"),
        "__inputs must declare DS_PROMETHEUS as a prometheus datasource: {inputs:#?}"
    );
    assert_eq!(dash["uid"], "persona-sim");
    assert!(dash["title"].as_str().is_some_and(|t| !t.is_empty()));
    let schema = dash["schemaVersion"]
        .as_u64()
        .expect("schemaVersion is a number");
    assert!(
        (36..=41).contains(&schema),
        "schemaVersion {schema} is out of the expected range"
    );
}

#[test]
fn every_dashboard_panel_queries_prometheus() {
    let dash = dashboard();
    let panels = dash["panels"].as_array().expect("dashboard has panels");
    assert!(!panels.is_empty());
    let mut ids = HashSet::new();
    for panel in panels {
        let title = panel["title"].as_str().unwrap_or("<untitled>");
        let id = panel["id"].as_u64().expect("panel id is a number");
        assert!(ids.insert(id), "panel id {id} ({title:?}) is not unique");
        assert!(
            panel["gridPos"]["w"].is_u64() && panel["gridPos"]["h"].is_u64(),
            "panel {title:?} has no gridPos"
        );
        assert_eq!(
            panel["datasource"]["uid"], "${DS_PROMETHEUS}",
            "panel {title:?} must use the DS_PROMETHEUS input"
        );
        let targets = panel["targets"]
            .as_array()
            .unwrap_or_else(|| panic!("panel {title:?} has no targets"));
        assert!(!targets.is_empty(), "panel {title:?} has no targets");
        for target in targets {
            let expr = target["expr"].as_str().unwrap_or_default();
            assert!(
                !expr.trim().is_empty(),
                "panel {title:?} has a target without a PromQL expr: {target}"
            );
            assert!(
                target["refId"].as_str().is_some_and(|r| !r.is_empty()),
                "panel {title:?} has a target without a refId"
            );
        }
    }
    assert!(
        panels
            .iter()
            .any(|p| p["type"] == "stat" && p["targets"][0]["expr"] == "time() - app_heartbeat"),
        "a stat panel shows the heartbeat age"
    );
}

#[test]
fn dashboard_charts_every_exported_metric() {
    let exprs = dashboard_exprs(&dashboard());
    let missing: Vec<String> = exported_metrics()
        .into_iter()
        .filter(|metric| !exprs.iter().any(|(_, expr)| queries_metric(expr, metric)))
        .collect();
    assert!(
        missing.is_empty(),
        "no dashboard panel queries {missing:?}; the queries are:\n{exprs:#?}"
    );
}

#[test]
fn dashboard_and_alerts_query_only_exported_metrics() {
    // The other direction: a renamed or removed metric leaves no query
    // pointing at a series that no longer exists.
    let metrics = exported_metrics();
    let dashboard = dashboard_exprs(&dashboard());
    let alerts = read_asset("alerts.yml");
    let queried = dashboard
        .iter()
        .map(|(title, expr)| (format!("dashboard panel {title:?}"), expr.as_str()))
        .chain([("assets/alerts.yml".to_string(), alerts.as_str())]);
    let mut unknown = Vec::new();
    let mut seen = 0;
    for (place, text) in queried {
        for series in app_series(text) {
            seen += 1;
            if !is_exported(series, &metrics) {
                unknown.push(format!("{place}: {series}"));
            }
        }
    }
    assert!(seen > 0, "the queries name app_* series");
    assert!(
        unknown.is_empty(),
        "not exported by the app (exported: {metrics:?}):\n{}",
        unknown.join("\n")
    );
}

#[test]
fn series_names_are_read_whole() {
    assert_eq!(
        app_series("rate(app_response_time_seconds_bucket[5m]) / my_app_x + app_heartbeat"),
        vec!["app_response_time_seconds_bucket", "app_heartbeat"]
    );
    let metrics = vec!["app_response_time_seconds".to_string()];
    assert!(is_exported("app_response_time_seconds_sum", &metrics));
    assert!(!is_exported("app_response_time_secs", &metrics));
}

#[test]
fn alert_rules_name_every_alert_with_severity_and_annotations() {
    let text = read_asset("alerts.yml");
    assert!(text.contains("- name: persona-sim"), "group persona-sim");
    for alert in ALERTS {
        assert!(
            text.contains(&format!("- alert: {alert}\n")),
            "assets/alerts.yml has no alert {alert}"
        );
    }
    // Each rule, from its `- alert:` line to the next, carries a severity
    // and both annotations.
    let rules: Vec<&str> = text.split("- alert: ").skip(1).collect();
    assert_eq!(rules.len(), ALERTS.len(), "one rule per alert");
    for rule in rules {
        let name = rule.lines().next().unwrap_or_default();
        for key in ["expr:", "for:", "severity:", "summary:", "description:"] {
            assert!(rule.contains(key), "alert {name} has no {key}");
        }
    }
    for metric in [
        "app_requests_total",
        "app_heartbeat",
        "app_response_time_seconds_bucket",
        "app_llm_time_to_first_token_seconds_bucket",
        r#"up{job="persona-sim"}"#,
        "app_http_requests_total",
    ] {
        assert!(text.contains(metric), "no alert uses {metric}");
    }
}

#[test]
fn scrape_config_targets_the_default_metrics_port() {
    let text = read_asset("prometheus.yml");
    for needle in [
        "job_name: persona-sim",
        "127.0.0.1:8000",
        "metrics_path: /metrics",
        "scrape_interval: 15s",
        "- alerts.yml",
        "--metrics-port",
        "PROMETHEUS_PORT",
        "--metrics-bind",
    ] {
        assert!(
            text.contains(needle),
            "assets/prometheus.yml lacks {needle:?}"
        );
    }
}

// ---------------------------------------------------------------- promtool

fn describe(output: &Output) -> String {
    format!(
        "{}\n--- stdout ---\n{}--- stderr ---\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// promtool from PATH: skipped without it, except in CI (see
/// `support::needs`).
fn promtool() -> Option<PathBuf> {
    support::needs::tool(
        "promtool",
        "install Debian's prometheus package; .ci/run does",
    )
}

/// Runs promtool in `dir` and fails the test with its output unless it
/// succeeds; returns its stdout and stderr.
fn run_promtool(promtool: &Path, dir: &Path, args: &[&str]) -> String {
    let output = Command::new(promtool)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("run {}: {e}", promtool.display()));
    let text = describe(&output);
    assert!(
        output.status.success(),
        "`promtool {}` in {} failed: {text}",
        args.join(" "),
        dir.display()
    );
    text
}

#[test]
fn alert_rules_pass_promtool_check() {
    let Some(promtool) = promtool() else { return };
    let out = run_promtool(&promtool, &assets(), &["check", "rules", "alerts.yml"]);
    assert!(
        out.contains(&format!("SUCCESS: {} rules found", ALERTS.len())),
        "{out}"
    );
}

#[test]
fn scrape_configs_pass_promtool_check() {
    let Some(promtool) = promtool() else { return };
    // The one-machine config and compose.yaml's. rule_files resolves
    // relative to the config file, so this also checks that alerts.yml is
    // found and valid.
    for config in ["prometheus.yml", "prometheus-compose.yml"] {
        let out = run_promtool(&promtool, &assets(), &["check", "config", config]);
        assert!(
            out.contains("SUCCESS: 1 rule files found"),
            "{config}: {out}"
        );
    }
}

#[test]
fn dashboard_queries_are_valid_promql() {
    let Some(promtool) = promtool() else { return };
    // promtool has no query linter of its own; one recording rule per
    // dashboard query gets every expr through its PromQL parser.
    let exprs = dashboard_exprs(&dashboard());
    let mut rules = String::from("groups:\n  - name: dashboard-queries\n    rules:\n");
    for (i, (title, expr)) in exprs.iter().enumerate() {
        // A JSON string is a valid YAML double-quoted scalar.
        rules += &format!(
            "      # {title}\n      - record: dashboard:query_{i}\n        expr: {}\n",
            serde_json::to_string(expr).unwrap()
        );
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("dashboard-rules.yml"), &rules).unwrap();
    let out = run_promtool(
        &promtool,
        dir.path(),
        &["check", "rules", "dashboard-rules.yml"],
    );
    assert!(
        out.contains(&format!("SUCCESS: {} rules found", exprs.len())),
        "{out}\n{rules}"
    );
}

/// `promtool test rules` input: on the unhealthy series every alert fires
/// (checked through the ALERTS series, so the annotation wording stays free
/// to change); on the healthy series none does.
fn alert_unit_tests(alerts_yml: &Path) -> String {
    let rule_file = serde_json::to_string(&alerts_yml.display().to_string()).unwrap();
    let quiet: String = ALERTS
        .iter()
        .map(|alert| {
            format!("      - eval_time: 20m\n        alertname: {alert}\n        exp_alerts: []\n")
        })
        .collect();
    format!(
        r#"rule_files:
  - {rule_file}
evaluation_interval: 1m
tests:
  # Broken: a third of requests fail, the target is down, the heartbeat is
  # stuck at 0, responses take 1-30s and first tokens 1-20s.
  - interval: 1m
    input_series:
      - series: 'app_requests_total{{job="persona-sim",endpoint="generate_response",status="success"}}'
        values: '0+60x30'
      - series: 'app_requests_total{{job="persona-sim",endpoint="generate_response",status="error"}}'
        values: '0+30x30'
      - series: 'up{{job="persona-sim",instance="127.0.0.1:8000"}}'
        values: '0x30'
      - series: 'app_heartbeat{{job="persona-sim"}}'
        values: '0x30'
      - series: 'app_response_time_seconds_bucket{{job="persona-sim",endpoint="generate_response",le="1"}}'
        values: '0x30'
      - series: 'app_response_time_seconds_bucket{{job="persona-sim",endpoint="generate_response",le="30"}}'
        values: '0+10x30'
      - series: 'app_response_time_seconds_bucket{{job="persona-sim",endpoint="generate_response",le="+Inf"}}'
        values: '0+10x30'
      - series: 'app_llm_time_to_first_token_seconds_bucket{{job="persona-sim",backend="openai",model="gpt-4o-mini",le="1"}}'
        values: '0x30'
      - series: 'app_llm_time_to_first_token_seconds_bucket{{job="persona-sim",backend="openai",model="gpt-4o-mini",le="20"}}'
        values: '0+10x30'
      - series: 'app_llm_time_to_first_token_seconds_bucket{{job="persona-sim",backend="openai",model="gpt-4o-mini",le="+Inf"}}'
        values: '0+10x30'
      - series: 'app_http_requests_total{{job="persona-sim",route="/v1/personas/{{id}}",method="GET",status="200"}}'
        values: '0+60x30'
      - series: 'app_http_requests_total{{job="persona-sim",route="/v1/personas/{{id}}",method="GET",status="503"}}'
        values: '0+30x30'
    promql_expr_test:
      - expr: count by (alertname, severity) (ALERTS{{alertstate="firing"}})
        eval_time: 20m
        exp_samples:
          - labels: '{{alertname="PersonaSimHighErrorRate",severity="warning"}}'
            value: 1
          - labels: '{{alertname="PersonaSimDown",severity="critical"}}'
            value: 1
          - labels: '{{alertname="PersonaSimHeartbeatStale",severity="warning"}}'
            value: 1
          - labels: '{{alertname="PersonaSimSlowResponses",severity="warning"}}'
            value: 1
          - labels: '{{alertname="PersonaSimSlowFirstToken",severity="warning"}}'
            value: 1
          - labels: '{{alertname="PersonaSimApiServerErrors",severity="warning"}}'
            value: 1
      # Still pending until its `for` has passed.
      - expr: count by (alertname) (ALERTS{{alertname="PersonaSimSlowResponses",alertstate="pending"}})
        eval_time: 8m
        exp_samples:
          - labels: '{{alertname="PersonaSimSlowResponses"}}'
            value: 1

  # Healthy: 1% errors, up, the heartbeat keeps time, everything under 1s.
  - interval: 1m
    input_series:
      - series: 'app_requests_total{{job="persona-sim",endpoint="generate_response",status="success"}}'
        values: '0+99x30'
      - series: 'app_requests_total{{job="persona-sim",endpoint="generate_response",status="error"}}'
        values: '0+1x30'
      - series: 'up{{job="persona-sim",instance="127.0.0.1:8000"}}'
        values: '1x30'
      - series: 'app_heartbeat{{job="persona-sim"}}'
        values: '0+60x30'
      - series: 'app_response_time_seconds_bucket{{job="persona-sim",endpoint="generate_response",le="1"}}'
        values: '0+10x30'
      - series: 'app_response_time_seconds_bucket{{job="persona-sim",endpoint="generate_response",le="+Inf"}}'
        values: '0+10x30'
      - series: 'app_llm_time_to_first_token_seconds_bucket{{job="persona-sim",backend="openai",model="gpt-4o-mini",le="1"}}'
        values: '0+10x30'
      - series: 'app_llm_time_to_first_token_seconds_bucket{{job="persona-sim",backend="openai",model="gpt-4o-mini",le="+Inf"}}'
        values: '0+10x30'
      - series: 'app_http_requests_total{{job="persona-sim",route="/v1/personas/{{id}}",method="GET",status="200"}}'
        values: '0+999x30'
      - series: 'app_http_requests_total{{job="persona-sim",route="/v1/personas/{{id}}",method="GET",status="503"}}'
        values: '0+1x30'
    alert_rule_test:
{quiet}"#
    )
}

#[test]
fn alert_rules_fire_on_bad_series_and_not_on_good_ones() {
    let Some(promtool) = promtool() else { return };
    let dir = tempfile::tempdir().unwrap();
    let tests = alert_unit_tests(&assets().join("alerts.yml"));
    std::fs::write(dir.path().join("alerts_test.yml"), &tests).unwrap();
    let out = run_promtool(&promtool, dir.path(), &["test", "rules", "alerts_test.yml"]);
    assert!(out.contains("SUCCESS"), "{out}\n{tests}");
}
