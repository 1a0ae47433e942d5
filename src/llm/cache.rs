//! A response cache in front of any backend (`--cache DIR`, off by
//! default): a reply is kept under a key made of everything that decides it
//! (the backend, model and endpoint, the sampling settings, the messages,
//! the token limit and the response schema), so the same request is
//! answered again without a server, chunk for chunk. `sessions rerun`
//! repeats a saved session this way with no server at all
//! ([`CachedBackend::offline`]).
//!
//! A content-addressed folder of JSON files: one file per request, written
//! atomically once the reply finished; a reply that failed or was cut off
//! by the caller (dropping the stream) is not kept. A file that does not
//! read is a miss, never an error.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::StreamExt;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{
    BackendInfo, ChatBackend, ChatChunk, ChatRequest, ChatStream, FinishReason, LlmError, Sampling,
    Usage,
};

/// One recorded piece of a reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Piece {
    Text { text: String },
    Usage { usage: Usage },
    Finish { reason: FinishReason },
    Model { model: String },
}

impl From<&ChatChunk> for Piece {
    fn from(chunk: &ChatChunk) -> Piece {
        match chunk {
            ChatChunk::Text(text) => Piece::Text { text: text.clone() },
            ChatChunk::Usage(usage) => Piece::Usage { usage: *usage },
            ChatChunk::Finish(reason) => Piece::Finish {
                reason: reason.clone(),
            },
            ChatChunk::Model(model) => Piece::Model {
                model: model.clone(),
            },
        }
    }
}

impl From<Piece> for ChatChunk {
    fn from(piece: Piece) -> ChatChunk {
        match piece {
            Piece::Text { text } => ChatChunk::Text(text),
            Piece::Usage { usage } => ChatChunk::Usage(usage),
            Piece::Finish { reason } => ChatChunk::Finish(reason),
            Piece::Model { model } => ChatChunk::Model(model),
        }
    }
}

/// What a cache file holds.
#[derive(Debug, Serialize, Deserialize)]
struct Entry {
    /// The model that answered, for a person reading the folder.
    model: String,
    pieces: Vec<Piece>,
}

pub struct CachedBackend {
    /// `None`: offline, a miss is an error.
    inner: Option<Arc<dyn ChatBackend>>,
    info: BackendInfo,
    sampling: Sampling,
    /// Offline: the context size the recorded run planned its prompts for.
    context: Option<u32>,
    dir: PathBuf,
}

impl CachedBackend {
    /// Answers from `dir` when it can, else asks `inner` and keeps the reply.
    pub fn new(inner: Arc<dyn ChatBackend>, dir: &Path) -> CachedBackend {
        CachedBackend {
            info: inner.info(),
            sampling: inner.sampling(),
            context: None,
            inner: Some(inner),
            dir: dir.to_path_buf(),
        }
    }

    /// Answers only from `dir`, as the backend `info` with `sampling` and
    /// `context` did (so the prompts and keys are the ones its replies were
    /// kept under).
    pub fn offline(
        info: BackendInfo,
        sampling: Sampling,
        context: Option<u32>,
        dir: &Path,
    ) -> CachedBackend {
        CachedBackend {
            inner: None,
            info,
            sampling,
            context,
            dir: dir.to_path_buf(),
        }
    }

    /// The key of a request: a hex SHA-256 of everything that decides the reply.
    pub fn key(&self, request: &ChatRequest) -> String {
        let mut identity = serde_json::json!({
            "kind": self.info.kind,
            "model": self.info.model,
            "endpoint": self.info.endpoint,
            "temperature": self.sampling.temperature,
            "seed": self.sampling.seed,
            "messages": request.messages,
            "max_tokens": request.max_tokens,
            "schema": request.json_schema.as_ref().map(|s| (&s.name, &s.schema)),
        });
        // Only added when set, so other requests keep the keys they had.
        if request.attempt > 0 {
            identity["attempt"] = request.attempt.into();
        }
        if let Some(names) = &request.names {
            identity["names"] = serde_json::json!(names);
        }
        let digest = Sha256::digest(identity.to_string().as_bytes());
        digest.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn path(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.json"))
    }

    fn read(&self, key: &str) -> Option<Entry> {
        let text = std::fs::read_to_string(self.path(key)).ok()?;
        match serde_json::from_str(&text) {
            Ok(entry) => Some(entry),
            Err(e) => {
                tracing::warn!(target: "llm", key, error = %e, "cache file does not read; asking again");
                None
            }
        }
    }
}

impl ChatBackend for CachedBackend {
    fn info(&self) -> BackendInfo {
        self.info.clone()
    }

    fn sampling(&self) -> Sampling {
        self.sampling
    }

    fn context_window(&self) -> Option<u32> {
        match &self.inner {
            Some(inner) => inner.context_window(),
            None => self.context,
        }
    }

    fn discover_context(&self) -> futures::future::BoxFuture<'_, Option<u32>> {
        match &self.inner {
            Some(inner) => inner.discover_context(),
            None => Box::pin(std::future::ready(self.context)),
        }
    }

    fn stream(&self, request: ChatRequest) -> ChatStream {
        let key = self.key(&request);
        if let Some(entry) = self.read(&key) {
            tracing::debug!(target: "llm", key, "answered from the cache");
            let chunks: Vec<Result<ChatChunk, LlmError>> =
                entry.pieces.into_iter().map(|p| Ok(p.into())).collect();
            return Box::pin(futures::stream::iter(chunks));
        }
        let Some(inner) = self.inner.clone() else {
            let message = format!(
                "this request is not in the cache ({}): the run differs from the one recorded, \
                 or its replies were not cached",
                self.path(&key).display()
            );
            return Box::pin(futures::stream::iter([Err(LlmError::Model(message))]));
        };
        let path = self.path(&key);
        let model = self.info.model.clone();
        let mut upstream = inner.stream(request);
        Box::pin(async_stream_tee(move |tx| async move {
            let mut pieces = Vec::new();
            while let Some(item) = upstream.next().await {
                if let Ok(chunk) = &item {
                    pieces.push(Piece::from(chunk));
                }
                let failed = item.is_err();
                if tx.send(item).await.is_err() {
                    return; // the caller dropped the stream: not kept
                }
                if failed {
                    return;
                }
            }
            let entry = Entry { model, pieces };
            let text = serde_json::to_string(&entry).expect("entries serialise");
            if let Err(e) = crate::atomic_file::write(&path, &text) {
                tracing::warn!(target: "llm", path = %path.display(), error = %e, "reply not cached");
            }
        }))
    }
}

/// A stream fed by a task: what `produce` sends arrives in order; the task
/// stops when the stream is dropped (its sends fail).
fn async_stream_tee<F, Fut>(produce: F) -> impl futures::Stream<Item = Result<ChatChunk, LlmError>>
where
    F: FnOnce(tokio::sync::mpsc::Sender<Result<ChatChunk, LlmError>>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    tokio::spawn(produce(tx));
    futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::ChatMessage;
    use std::sync::atomic::{AtomicUsize, Ordering};

    struct Counting {
        calls: AtomicUsize,
        fail: bool,
    }

    impl ChatBackend for Counting {
        fn info(&self) -> BackendInfo {
            BackendInfo {
                kind: "test",
                model: "m".into(),
                endpoint: "memory".into(),
            }
        }
        fn sampling(&self) -> Sampling {
            Sampling {
                temperature: Some(0.3),
                seed: Some(7),
            }
        }
        fn stream(&self, _request: ChatRequest) -> ChatStream {
            let n = self.calls.fetch_add(1, Ordering::SeqCst);
            let mut chunks = vec![
                Ok(ChatChunk::Text(format!("reply {n} "))),
                Ok(ChatChunk::Text("done".into())),
                Ok(ChatChunk::Usage(Usage {
                    prompt_tokens: 3,
                    completion_tokens: 2,
                })),
                Ok(ChatChunk::Finish(FinishReason::Stop)),
            ];
            if self.fail {
                chunks.push(Err(LlmError::EndedEarly));
            }
            Box::pin(futures::stream::iter(chunks))
        }
    }

    async fn collect(stream: ChatStream) -> Vec<Result<ChatChunk, String>> {
        stream.map(|r| r.map_err(|e| e.to_string())).collect().await
    }

    fn request(text: &str) -> ChatRequest {
        ChatRequest::new(vec![ChatMessage::user(text)], 50)
    }

    #[tokio::test]
    async fn the_same_request_is_answered_again_without_the_backend() {
        let dir = tempfile::tempdir().unwrap();
        let inner = Arc::new(Counting {
            calls: AtomicUsize::new(0),
            fail: false,
        });
        let cached = CachedBackend::new(inner.clone(), dir.path());
        let first = collect(cached.stream(request("hi"))).await;
        // The file is written when the reply ends; give the task a moment.
        for _ in 0..100 {
            if std::fs::read_dir(dir.path()).unwrap().count() == 1 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        let again = collect(cached.stream(request("hi"))).await;
        assert_eq!(first, again);
        assert_eq!(inner.calls.load(Ordering::SeqCst), 1);
        // Another request is another key.
        collect(cached.stream(request("other"))).await;
        assert_eq!(inner.calls.load(Ordering::SeqCst), 2);
        // Offline, with the same identity: answered; a new request is a
        // clear error naming the cache.
        let offline = CachedBackend::offline(inner.info(), inner.sampling(), None, dir.path());
        assert_eq!(collect(offline.stream(request("hi"))).await, first);
        let missing = collect(offline.stream(request("never asked"))).await;
        assert!(
            missing[0]
                .as_ref()
                .unwrap_err()
                .contains("not in the cache")
        );
        // Another seed is another key.
        let reseeded = CachedBackend::offline(
            inner.info(),
            Sampling {
                temperature: Some(0.3),
                seed: Some(8),
            },
            None,
            dir.path(),
        );
        assert!(collect(reseeded.stream(request("hi"))).await[0].is_err());
        // A turn asked again is another key too.
        let retry = ChatRequest {
            attempt: 1,
            ..request("hi")
        };
        assert_ne!(cached.key(&retry), cached.key(&request("hi")));
    }

    #[tokio::test]
    async fn a_failed_reply_is_not_kept() {
        let dir = tempfile::tempdir().unwrap();
        let inner = Arc::new(Counting {
            calls: AtomicUsize::new(0),
            fail: true,
        });
        let cached = CachedBackend::new(inner.clone(), dir.path());
        let got = collect(cached.stream(request("hi"))).await;
        assert!(got.last().unwrap().is_err());
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
