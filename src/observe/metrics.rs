//! The metrics, with the seed's names (`app_requests_total`,
//! `app_response_time_seconds`, `app_heartbeat`) plus what an operator of
//! an LLM app needs. Each `Metrics` has its own Registry (never the global
//! default), so tests and several instances never collide.

use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prometheus::{
    Encoder, Gauge, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts,
    Registry, TextEncoder,
};

use crate::sim::debate::Outcome;

/// How often the heartbeat gauge is refreshed.
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(5);

/// Response-time buckets in seconds: LLM calls run from a second to minutes.
const LATENCY_BUCKETS: &[f64] = &[0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0];
const FIRST_TOKEN_BUCKETS: &[f64] = &[0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0];
/// HTTP API buckets in seconds: a cached read is well under a millisecond,
/// a locked change of a big panel tens of milliseconds, an import seconds.
const HTTP_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// The API's main (route, method, status) label sets, exported as 0 from
/// the first scrape so a rate or ratio over them is defined before the
/// first request. `route` is always the route pattern, never the raw path.
pub const HTTP_INITIAL_SERIES: &[(&str, &str, &str)] = &[
    ("/v1/personas", "GET", "200"),
    ("/v1/personas", "GET", "401"),
    ("/v1/personas", "GET", "429"),
    ("/v1/personas", "POST", "201"),
    ("/v1/personas", "POST", "422"),
    ("/v1/personas/{id}", "GET", "200"),
    ("/v1/personas/{id}", "GET", "404"),
    ("/v1/personas/{id}", "PATCH", "200"),
    ("/v1/personas/{id}", "DELETE", "204"),
    ("/v1/personas/search", "GET", "200"),
    ("/v1/personas/stats", "GET", "200"),
    ("/v1/personas/export", "GET", "200"),
    ("/v1/personas/import", "POST", "200"),
    ("unmatched", "GET", "404"),
];

/// The operation an LLM call serves (the `endpoint` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    GenerateResponse,
    GenerateFeedbackReport,
    SynthesizePersona,
}

impl Endpoint {
    pub const ALL: [Endpoint; 3] = [
        Endpoint::GenerateResponse,
        Endpoint::GenerateFeedbackReport,
        Endpoint::SynthesizePersona,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Endpoint::GenerateResponse => "generate_response",
            Endpoint::GenerateFeedbackReport => "generate_feedback_report",
            Endpoint::SynthesizePersona => "synthesize_persona",
        }
    }
}

pub struct Metrics {
    registry: Registry,
    pub requests: IntCounterVec,
    pub response_time: HistogramVec,
    pub heartbeat: Gauge,
    pub tokens: IntCounterVec,
    pub first_token: HistogramVec,
    pub debates_started: IntCounter,
    pub debates_finished: IntCounterVec,
    pub personas: IntGauge,
    pub personas_created: IntCounter,
    /// HTTP connections accepted and closed at once: the server was full.
    pub http_connections_shed: IntCounter,
    /// HTTP connections being served.
    pub http_connections_open: IntGauge,
    /// API requests by route pattern, method and status.
    pub http_requests: IntCounterVec,
    /// API request durations by route pattern and method.
    pub http_request_duration: HistogramVec,
    /// Every metric's name, in registration order (see [`Metrics::names`]).
    names: Vec<String>,
    health: Mutex<HealthProblems>,
}

#[derive(Debug, Default)]
struct HealthProblems {
    store: Option<String>,
    backend: Option<String>,
}

/// What `/health` reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    pub degraded: bool,
    pub reasons: Vec<String>,
    /// The persona store's problem, if it has one.
    pub store: Option<String>,
    /// The LLM backend's problem, if it has one.
    pub backend: Option<String>,
}

impl Metrics {
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "app_requests_total",
                "LLM requests by operation and outcome",
            ),
            &["endpoint", "status"],
        )
        .expect("valid metric");
        let response_time = HistogramVec::new(
            HistogramOpts::new(
                "app_response_time_seconds",
                "Duration of LLM requests, from the call to the last token",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["endpoint"],
        )
        .expect("valid metric");
        let heartbeat =
            Gauge::new("app_heartbeat", "Unix time of the last heartbeat").expect("valid metric");
        let tokens = IntCounterVec::new(
            Opts::new("app_llm_tokens_total", "Tokens reported by the LLM server"),
            &["backend", "model", "direction"],
        )
        .expect("valid metric");
        let first_token = HistogramVec::new(
            HistogramOpts::new(
                "app_llm_time_to_first_token_seconds",
                "Time from the call to the first token",
            )
            .buckets(FIRST_TOKEN_BUCKETS.to_vec()),
            &["backend", "model"],
        )
        .expect("valid metric");
        let debates_started =
            IntCounter::new("app_debates_started_total", "Debates started").expect("valid metric");
        let debates_finished = IntCounterVec::new(
            Opts::new(
                "app_debates_finished_total",
                "Debates ended, by how they ended",
            ),
            &["outcome"],
        )
        .expect("valid metric");
        let personas =
            IntGauge::new("app_personas", "Personas in the store").expect("valid metric");
        let personas_created = IntCounter::new(
            "app_personas_created_total",
            "Personas created (by hand, import or synthesis)",
        )
        .expect("valid metric");
        let http_connections_shed = IntCounter::new(
            "app_http_connections_shed_total",
            "HTTP connections closed at accept because the server was at its connection cap",
        )
        .expect("valid metric");
        let http_connections_open =
            IntGauge::new("app_http_connections_open", "HTTP connections being served")
                .expect("valid metric");
        let http_requests = IntCounterVec::new(
            Opts::new(
                "app_http_requests_total",
                "HTTP API requests by route pattern, method and status",
            ),
            &["route", "method", "status"],
        )
        .expect("valid metric");
        let http_request_duration = HistogramVec::new(
            HistogramOpts::new(
                "app_http_request_duration_seconds",
                "HTTP API request duration, from the request to the response head",
            )
            .buckets(HTTP_BUCKETS.to_vec()),
            &["route", "method"],
        )
        .expect("valid metric");
        // The error-rate alert and the dashboard read these from the first
        // scrape, before any LLM call.
        for endpoint in Endpoint::ALL {
            for status in ["success", "error"] {
                requests.with_label_values(&[endpoint.label(), status]);
            }
            response_time.with_label_values(&[endpoint.label()]);
        }
        for (route, method, status) in HTTP_INITIAL_SERIES {
            http_requests.with_label_values(&[*route, *method, *status]);
            http_request_duration.with_label_values(&[*route, *method]);
        }
        let mut names = Vec::new();
        for collector in [
            Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(response_time.clone()),
            Box::new(heartbeat.clone()),
            Box::new(tokens.clone()),
            Box::new(first_token.clone()),
            Box::new(debates_started.clone()),
            Box::new(debates_finished.clone()),
            Box::new(personas.clone()),
            Box::new(personas_created.clone()),
            Box::new(http_connections_shed.clone()),
            Box::new(http_connections_open.clone()),
            Box::new(http_requests.clone()),
            Box::new(http_request_duration.clone()),
        ] {
            names.extend(collector.desc().iter().map(|d| d.fq_name.clone()));
            registry
                .register(collector)
                .expect("each metric registered once");
        }
        let metrics = Metrics {
            registry,
            requests,
            response_time,
            heartbeat,
            tokens,
            first_token,
            debates_started,
            debates_finished,
            personas,
            personas_created,
            http_connections_shed,
            http_connections_open,
            http_requests,
            http_request_duration,
            names,
            health: Mutex::new(HealthProblems::default()),
        };
        metrics.beat();
        metrics
    }

    /// The name of every metric in the registry, whether or not it has a
    /// sample yet (a histogram's `_bucket`, `_sum` and `_count` series share
    /// its name). The dashboard test charts each of these.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The connection counters an HTTP server updates.
    pub fn connections(&self) -> ConnectionMetrics {
        ConnectionMetrics {
            shed: self.http_connections_shed.clone(),
            open: self.http_connections_open.clone(),
        }
    }

    /// Sets the heartbeat to now.
    pub fn beat(&self) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64();
        self.heartbeat.set(now.floor());
    }

    pub fn debate_finished(&self, outcome: Outcome) {
        let label = match outcome {
            Outcome::Completed => "completed",
            Outcome::Failed => "failed",
            Outcome::Cancelled => "cancelled",
            Outcome::BudgetReached => "budget_reached",
        };
        self.debates_finished.with_label_values(&[label]).inc();
    }

    /// One API request: `route` is the matched route pattern (or
    /// `unmatched`), never the raw path, so ids do not grow the label set.
    pub fn http_request(&self, route: &str, method: &str, status: u16, elapsed: Duration) {
        self.http_requests
            .with_label_values(&[route, method, status.to_string().as_str()])
            .inc();
        self.http_request_duration
            .with_label_values(&[route, method])
            .observe(elapsed.as_secs_f64());
    }

    /// The Prometheus text format.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buf)
            .expect("text encoding into memory cannot fail");
        String::from_utf8(buf).expect("the text format is UTF-8")
    }

    /// `None` clears the store problem.
    pub fn set_store_problem(&self, problem: Option<String>) {
        self.health.lock().expect("health lock").store = problem;
    }

    /// Set when the last LLM call could not reach the server; cleared by
    /// the next call that does.
    pub fn set_backend_problem(&self, problem: Option<String>) {
        self.health.lock().expect("health lock").backend = problem;
    }

    pub fn health(&self) -> Health {
        let problems = self.health.lock().expect("health lock");
        let reasons: Vec<String> = [
            problems
                .store
                .as_ref()
                .map(|p| format!("store not writable: {p}")),
            problems
                .backend
                .as_ref()
                .map(|p| format!("backend unreachable on the last call: {p}")),
        ]
        .into_iter()
        .flatten()
        .collect();
        Health {
            degraded: !reasons.is_empty(),
            reasons,
            store: problems.store.clone(),
            backend: problems.backend.clone(),
        }
    }
}

/// What an HTTP server counts of its connections (handles to the metrics
/// of a [`Metrics`], or [`ConnectionMetrics::detached`] ones).
#[derive(Clone)]
pub struct ConnectionMetrics {
    pub shed: IntCounter,
    pub open: IntGauge,
}

impl ConnectionMetrics {
    /// Counters in no registry, for a server whose counts nobody scrapes.
    pub fn detached() -> ConnectionMetrics {
        Metrics::new().connections()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_metric_is_exported_with_the_seed_names() {
        let m = Metrics::new();
        m.requests
            .with_label_values(&["generate_response", "success"])
            .inc();
        m.response_time
            .with_label_values(&["generate_response"])
            .observe(1.5);
        m.tokens
            .with_label_values(&["openai", "gpt-4o-mini", "in"])
            .inc_by(42);
        m.first_token
            .with_label_values(&["openai", "gpt-4o-mini"])
            .observe(0.3);
        m.debates_started.inc();
        m.debate_finished(Outcome::BudgetReached);
        m.personas.set(14);
        let text = m.render();
        for needle in [
            "app_requests_total{endpoint=\"generate_response\",status=\"success\"} 1",
            "app_response_time_seconds_bucket{endpoint=\"generate_response\",le=\"2.5\"} 1",
            "# TYPE app_heartbeat gauge",
            "app_llm_tokens_total{backend=\"openai\",direction=\"in\",model=\"gpt-4o-mini\"} 42",
            "app_llm_time_to_first_token_seconds_count{backend=\"openai\",model=\"gpt-4o-mini\"} 1",
            "app_debates_started_total 1",
            "app_debates_finished_total{outcome=\"budget_reached\"} 1",
            "app_personas 14",
            "app_personas_created_total 0",
            // From the first scrape, before any connection.
            "app_http_connections_shed_total 0",
            "app_http_connections_open 0",
            "app_http_requests_total{method=\"GET\",route=\"/v1/personas\",status=\"200\"} 0",
            "app_http_request_duration_seconds_count{method=\"GET\",route=\"/v1/personas/{id}\"} 0",
            // Every LLM endpoint and outcome, before any call.
            "app_requests_total{endpoint=\"generate_response\",status=\"error\"} 0",
            "app_requests_total{endpoint=\"generate_feedback_report\",status=\"success\"} 0",
            "app_requests_total{endpoint=\"synthesize_persona\",status=\"error\"} 0",
            "app_response_time_seconds_count{endpoint=\"generate_feedback_report\"} 0",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in\n{text}");
        }
        for name in m.names() {
            assert!(
                text.contains(&format!("# TYPE {name} ")),
                "{name} is not exported"
            );
        }
        // Two instances never collide (no global registry).
        let _other = Metrics::new();
    }

    #[test]
    fn http_requests_are_counted_by_route_pattern() {
        let m = Metrics::new();
        m.http_request("/v1/personas/{id}", "GET", 200, Duration::from_micros(300));
        m.http_request("/v1/personas/{id}", "GET", 200, Duration::from_millis(3));
        let text = m.render();
        for needle in [
            "app_http_requests_total{method=\"GET\",route=\"/v1/personas/{id}\",status=\"200\"} 2",
            "app_http_request_duration_seconds_bucket{method=\"GET\",route=\"/v1/personas/{id}\",le=\"0.0005\"} 1",
            "app_http_request_duration_seconds_bucket{method=\"GET\",route=\"/v1/personas/{id}\",le=\"0.005\"} 2",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in\n{text}");
        }
    }

    #[test]
    fn health_degrades_with_reasons_and_recovers() {
        let m = Metrics::new();
        assert!(!m.health().degraded);
        m.set_backend_problem(Some("connection refused".into()));
        m.set_store_problem(Some("read-only file system".into()));
        let h = m.health();
        assert!(h.degraded);
        assert_eq!(h.reasons.len(), 2);
        assert!(h.reasons[0].contains("store not writable"));
        m.set_backend_problem(None);
        m.set_store_problem(None);
        assert!(!m.health().degraded);
    }
}
