//! A backend that takes a permit from a shared semaphore for every call
//! and holds it until the reply stream ends (or is dropped), so however
//! many runs share it, no more calls than the semaphore's permits are in
//! flight at once.

use std::sync::Arc;

use futures::StreamExt;
use tokio::sync::Semaphore;

use super::{BackendInfo, ChatBackend, ChatRequest, ChatStream, LlmError};

pub struct Gated {
    inner: Arc<dyn ChatBackend>,
    permits: Arc<Semaphore>,
}

impl Gated {
    pub fn new(inner: Arc<dyn ChatBackend>, permits: Arc<Semaphore>) -> Gated {
        Gated { inner, permits }
    }
}

impl ChatBackend for Gated {
    fn info(&self) -> BackendInfo {
        self.inner.info()
    }

    fn sampling(&self) -> super::Sampling {
        self.inner.sampling()
    }

    fn stream(&self, request: ChatRequest) -> ChatStream {
        let inner = self.inner.clone();
        let permits = self.permits.clone();
        Box::pin(
            futures::stream::once(async move {
                match permits.acquire_owned().await {
                    // The permit lives in the closure, so it is released
                    // when the inner stream ends or is dropped.
                    Ok(permit) => inner
                        .stream(request)
                        .map(move |item| {
                            let _held = &permit;
                            item
                        })
                        .boxed(),
                    Err(_) => futures::stream::once(async {
                        Err(LlmError::NotConfigured(
                            "the server is shutting down".into(),
                        ))
                    })
                    .boxed(),
                }
            })
            .flatten(),
        )
    }

    fn context_window(&self) -> Option<u32> {
        self.inner.context_window()
    }

    fn discover_context(&self) -> futures::future::BoxFuture<'_, Option<u32>> {
        Box::pin(async move {
            // Asking the server is a request too.
            let _permit = self.permits.acquire().await.ok();
            self.inner.discover_context().await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::ChatChunk;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Counts streams alive at once; each yields one chunk after a pause.
    struct Counting {
        now: Arc<AtomicUsize>,
        most: Arc<AtomicUsize>,
    }

    impl ChatBackend for Counting {
        fn info(&self) -> BackendInfo {
            BackendInfo {
                kind: "test",
                model: "counting".into(),
                endpoint: "memory".into(),
            }
        }
        fn stream(&self, _request: ChatRequest) -> ChatStream {
            let now = self.now.clone();
            let most = self.most.clone();
            let n = now.fetch_add(1, Ordering::SeqCst) + 1;
            most.fetch_max(n, Ordering::SeqCst);
            struct Leave(Arc<AtomicUsize>);
            impl Drop for Leave {
                fn drop(&mut self) {
                    self.0.fetch_sub(1, Ordering::SeqCst);
                }
            }
            let leave = Leave(now);
            Box::pin(futures::stream::once(async move {
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                drop(leave);
                Ok(ChatChunk::Text("x".into()))
            }))
        }
    }

    #[tokio::test]
    async fn no_more_streams_than_permits_are_alive() {
        let now = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let inner: Arc<dyn ChatBackend> = Arc::new(Counting {
            now: now.clone(),
            most: most.clone(),
        });
        let gated = Arc::new(Gated::new(inner, Arc::new(Semaphore::new(3))));
        let runs = (0..20).map(|_| {
            let gated = gated.clone();
            async move {
                let mut s = gated.stream(ChatRequest::new(Vec::new(), 10));
                while s.next().await.is_some() {}
            }
        });
        futures::future::join_all(runs).await;
        assert_eq!(most.load(Ordering::SeqCst), 3);
        assert_eq!(now.load(Ordering::SeqCst), 0);
    }
}
