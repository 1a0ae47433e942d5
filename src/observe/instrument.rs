//! The seed's `instrumented` decorator as a backend wrapper: every LLM call
//! through it is counted (`app_requests_total`), timed
//! (`app_response_time_seconds`, time to first token), its tokens added up,
//! and logged with its latency, with a WARN when it is slow.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures::Stream;

use crate::llm::{
    BackendInfo, ChatBackend, ChatChunk, ChatRequest, ChatStream, LlmError, Purpose, Usage,
};

use super::metrics::{Endpoint, Metrics};

pub struct Instrumented {
    inner: Arc<dyn ChatBackend>,
    /// `None` in short-lived commands that serve no metrics: calls are
    /// still logged.
    metrics: Option<Arc<Metrics>>,
    slow_call: Duration,
}

impl Instrumented {
    pub fn wrap(
        inner: Arc<dyn ChatBackend>,
        metrics: Option<Arc<Metrics>>,
        slow_call: Duration,
    ) -> Arc<dyn ChatBackend> {
        Arc::new(Instrumented {
            inner,
            metrics,
            slow_call,
        })
    }
}

fn endpoint(purpose: Purpose) -> Endpoint {
    match purpose {
        Purpose::Turn => Endpoint::GenerateResponse,
        Purpose::Report => Endpoint::GenerateFeedbackReport,
        Purpose::Synthesis => Endpoint::SynthesizePersona,
    }
}

impl ChatBackend for Instrumented {
    fn info(&self) -> BackendInfo {
        self.inner.info()
    }

    fn sampling(&self) -> crate::llm::Sampling {
        self.inner.sampling()
    }

    fn context_window(&self) -> Option<u32> {
        self.inner.context_window()
    }

    fn discover_context(&self) -> futures::future::BoxFuture<'_, Option<u32>> {
        self.inner.discover_context()
    }

    fn stream(&self, request: ChatRequest) -> ChatStream {
        let endpoint = endpoint(request.purpose);
        let info = self.inner.info();
        Box::pin(Measured {
            inner: self.inner.stream(request),
            metrics: self.metrics.clone(),
            endpoint,
            info,
            slow_call: self.slow_call,
            started: Instant::now(),
            first_token: None,
            usage: Usage::default(),
            ended: false,
        })
    }
}

struct Measured {
    inner: ChatStream,
    metrics: Option<Arc<Metrics>>,
    endpoint: Endpoint,
    info: BackendInfo,
    slow_call: Duration,
    started: Instant,
    first_token: Option<Duration>,
    usage: Usage,
    ended: bool,
}

impl Measured {
    fn finish(&mut self, error: Option<&LlmError>) {
        self.ended = true;
        let elapsed = self.started.elapsed();
        let endpoint = self.endpoint.label();
        let status = if error.is_some() { "error" } else { "success" };
        if let Some(metrics) = &self.metrics {
            metrics
                .requests
                .with_label_values(&[endpoint, status])
                .inc();
            metrics
                .response_time
                .with_label_values(&[endpoint])
                .observe(elapsed.as_secs_f64());
        }
        let latency_ms = elapsed.as_millis() as u64;
        let first_token_ms = self
            .first_token
            .map_or("none".to_string(), |d| d.as_millis().to_string());
        let (prompt, completion) = (self.usage.prompt_tokens, self.usage.completion_tokens);
        match error {
            Some(e) => {
                let unreachable =
                    matches!(e, LlmError::Connect { .. } | LlmError::FirstTokenTimeout(_));
                if unreachable && let Some(metrics) = &self.metrics {
                    metrics.set_backend_problem(Some(e.to_string()));
                }
                tracing::warn!(target: "llm", endpoint, model = %self.info.model, latency_ms, error = %e, "llm call failed");
            }
            None => {
                if let Some(metrics) = &self.metrics {
                    metrics.set_backend_problem(None);
                }
                if elapsed > self.slow_call {
                    tracing::warn!(target: "llm", endpoint, model = %self.info.model, latency_ms, %first_token_ms, prompt, completion, slow_after_ms = self.slow_call.as_millis() as u64, "slow llm call");
                } else {
                    tracing::info!(target: "llm", endpoint, model = %self.info.model, latency_ms, %first_token_ms, prompt, completion, "llm call");
                }
            }
        }
    }
}

impl Stream for Measured {
    type Item = Result<ChatChunk, LlmError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        let item = match this.inner.as_mut().poll_next(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(item) => item,
        };
        match &item {
            Some(Ok(ChatChunk::Text(_))) if this.first_token.is_none() => {
                let waited = this.started.elapsed();
                this.first_token = Some(waited);
                if let Some(metrics) = &this.metrics {
                    metrics
                        .first_token
                        .with_label_values(&[this.info.kind, &this.info.model])
                        .observe(waited.as_secs_f64());
                }
            }
            Some(Ok(ChatChunk::Usage(u))) => {
                this.usage += *u;
                if let Some(metrics) = &this.metrics {
                    for (direction, n) in [("in", u.prompt_tokens), ("out", u.completion_tokens)] {
                        metrics
                            .tokens
                            .with_label_values(&[this.info.kind, &this.info.model, direction])
                            .inc_by(n as u64);
                    }
                }
            }
            Some(Err(e)) if !this.ended => {
                let e = e.clone();
                this.finish(Some(&e));
            }
            None if !this.ended => this.finish(None),
            _ => {}
        }
        Poll::Ready(item)
    }
}

impl Drop for Measured {
    fn drop(&mut self) {
        if !self.ended {
            // Dropped mid-reply: a cancel or a turn cut at another speaker.
            tracing::debug!(target: "llm", endpoint = self.endpoint.label(), latency_ms = self.started.elapsed().as_millis() as u64, "llm call dropped before the end");
        }
    }
}
