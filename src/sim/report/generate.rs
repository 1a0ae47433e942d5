//! The model call: asks for the report, streams it out as events, and
//! reads the reply.

use futures::StreamExt;
use tokio::sync::mpsc;

use crate::llm::{
    ChatBackend, ChatChunk, ChatMessage, ChatRequest, FinishReason, LlmError, Purpose, Usage,
};
use crate::sim::debate::{SimEvent, Turn};
use crate::sim::prompts::CHARS_PER_TOKEN;

use super::Report;
use super::check::{check_against, usable};
use super::parse::{parse_cut_report, parse_report};
use super::prompt::{REPORT_SYSTEM, report_prompt, report_schema};

/// Reply cap for a report from a hosted model.
const REPORT_MAX_TOKENS: u32 = 1500;
/// Reply cap on a small local model (2,048-token context).
const LOCAL_REPORT_MAX_TOKENS: u32 = 400;

/// Asks the model for the report and streams it out as events. Returns the
/// report, or `None` (after a `ReportFailed` event) when the call failed.
pub async fn generate_report(
    backend: &dyn ChatBackend,
    feature: &str,
    turns: &[Turn],
    tx: &mpsc::Sender<SimEvent>,
) -> Option<Report> {
    let _ = tx.send(SimEvent::ReportStarted).await;
    let small = backend.discover_context().await;
    let max_tokens = if small.is_some() {
        LOCAL_REPORT_MAX_TOKENS
    } else {
        REPORT_MAX_TOKENS
    };
    let budget = small.map(|ctx| {
        let overhead = (REPORT_SYSTEM.len() / CHARS_PER_TOKEN) as u32 + max_tokens + 48;
        ctx.saturating_sub(overhead) as usize * CHARS_PER_TOKEN
    });
    let messages = vec![
        ChatMessage::system(REPORT_SYSTEM),
        ChatMessage::user(report_prompt(feature, turns, budget)),
    ];
    let began = std::time::Instant::now();
    // The backend degrades the format when the server does not take the
    // schema (`llm::structured`); the reply is read leniently either way.
    let mut request = ChatRequest::new(messages, max_tokens);
    request.json_schema = Some(report_schema());
    request.purpose = Purpose::Report;
    let reply = match stream_text(backend, request, tx).await {
        Ok(reply) => reply,
        Err(error) => return report_failed(tx, error, began).await,
    };
    let cut = reply.finish == Some(FinishReason::Length);
    tracing::info!(target: "llm", latency_ms = began.elapsed().as_millis() as u64, chars = reply.text.len(), cut, "report finished");
    let mut report = if cut {
        parse_cut_report(&reply.text, turns.len())
    } else {
        parse_report(&reply.text, turns.len())
    };
    report.usage = reply.usage;
    check_against(&mut report, turns);
    if !usable(&report) {
        // Never "completed" with nothing in it: the face offers to retry.
        let mut message = "the model's report held no summary and no usable finding".to_string();
        if !report.notes.is_empty() {
            message.push_str(&format!(" ({})", report.notes.join(" ")));
        }
        tracing::warn!(target: "llm", %message, "report not usable");
        let _ = tx.send(SimEvent::ReportFailed { message }).await;
        return None;
    }
    let _ = tx
        .send(SimEvent::ReportReady {
            report: Box::new(report.clone()),
        })
        .await;
    Some(report)
}

async fn report_failed(
    tx: &mpsc::Sender<SimEvent>,
    error: LlmError,
    began: std::time::Instant,
) -> Option<Report> {
    tracing::warn!(target: "llm", latency_ms = began.elapsed().as_millis() as u64, %error, "report failed");
    let _ = tx
        .send(SimEvent::ReportFailed {
            message: error.to_string(),
        })
        .await;
    None
}

/// The whole reply, its usage and why it ended.
struct StreamedReply {
    text: String,
    usage: Option<Usage>,
    finish: Option<FinishReason>,
}

async fn stream_text(
    backend: &dyn ChatBackend,
    request: ChatRequest,
    tx: &mpsc::Sender<SimEvent>,
) -> Result<StreamedReply, LlmError> {
    let mut stream = backend.stream(request);
    let mut reply = StreamedReply {
        text: String::new(),
        usage: None,
        finish: None,
    };
    while let Some(item) = stream.next().await {
        match item {
            Ok(ChatChunk::Text(piece)) => {
                reply.text.push_str(&piece);
                let _ = tx.send(SimEvent::ReportToken { text: piece }).await;
            }
            Ok(ChatChunk::Usage(u)) => {
                *reply.usage.get_or_insert_default() += u;
                let _ = tx
                    .send(SimEvent::ReportUsage {
                        prompt_tokens: u.prompt_tokens,
                        completion_tokens: u.completion_tokens,
                    })
                    .await;
            }
            Ok(ChatChunk::Finish(reason)) => reply.finish = Some(reason),
            Ok(ChatChunk::Model(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(reply)
}
