//! A download server on 127.0.0.1: the model mirror for the fetch tests
//! and the end-to-end offline-model test.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::routing::get;

/// Serves `/model` with `body`; with `cut`, breaks the connection halfway.
pub async fn serve(body: Vec<u8>, cut: bool) -> String {
    let app = axum::Router::new().route(
        "/model",
        get(move || {
            let body = body.clone();
            async move {
                let half = body.len() / 2;
                let chunks: Vec<Result<Bytes, std::io::Error>> = if cut {
                    vec![
                        Ok(Bytes::from(body[..half].to_vec())),
                        Err(std::io::Error::other("cut")),
                    ]
                } else {
                    body.chunks(4096)
                        .map(|c| Ok(Bytes::from(c.to_vec())))
                        .collect()
                };
                let stream =
                    futures::StreamExt::then(futures::stream::iter(chunks), |c| async move {
                        if c.is_err() {
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                        c
                    });
                axum::response::Response::builder()
                    .header("content-length", body.len())
                    .body(Body::from_stream(stream))
                    .unwrap()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/model")
}
