//! Persona synthesis against the mock OpenAI-compatible server: valid
//! JSON, invalid then fixed, near-duplicates refused, and a batch of 25 with
//! at most 10 requests in flight where 3 fail and 22 are kept.

mod support;

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::mpsc;

use persona_sim::llm::ChatBackend;
use persona_sim::llm::openai::OpenAiBackend;
use persona_sim::persona::{TechProficiency, builtin_panel, validate_panel};
use persona_sim::sim::synth::{MAX_ATTEMPTS, SynthEvent, synthesize_batch, synthesize_one};
use support::{MockServer, Reply, batch_index, persona_json};

fn backend(server: &MockServer) -> Arc<dyn ChatBackend> {
    Arc::new(OpenAiBackend::new(support::openai_settings(
        &server.base_url,
        Duration::from_secs(10),
    )))
}

fn wanjiru() -> Value {
    json!({"name": "Wanjiru Kamau", "age": 67, "occupation": "Retired tea farmer",
        "location": "Nyeri, Kenya", "tech_proficiency": "Low",
        "behavioral_traits": ["distrusts banking apps", "keeps cash at home", "asks her grandson"],
        "bio": "Farmed tea for forty years.", "goals": ["keep savings safe"],
        "frustrations": ["fees she does not understand"]})
}

#[tokio::test]
async fn a_brief_becomes_a_valid_persona_with_the_next_id() {
    let server = MockServer::scripted(vec![Reply::text(&wanjiru().to_string())]).await;
    let panel = builtin_panel();
    let persona = synthesize_one(
        &*backend(&server),
        "retired farmer in Kenya who distrusts banking apps",
        &panel,
    )
    .await
    .unwrap();
    assert_eq!(persona.name, "Wanjiru Kamau");
    assert_eq!(persona.id, panel.iter().map(|p| p.id).max().unwrap() + 1);
    assert_eq!(persona.tech_proficiency, TechProficiency::Low);
    assert_eq!(
        persona.extra["frustrations"],
        json!(["fees she does not understand"])
    );
    let mut all = panel.clone();
    all.push(persona);
    validate_panel(&all).unwrap();
    let sent = &server.requests()[0].body;
    assert_eq!(sent["response_format"]["json_schema"]["name"], "persona");
    let prompt = sent["messages"][1]["content"].as_str().unwrap();
    assert!(prompt.contains("distrusts banking apps"), "{prompt}");
    assert!(
        prompt.contains("Maria Lopez"),
        "existing names are listed: {prompt}"
    );
}

#[tokio::test]
async fn invalid_json_is_retried_with_the_error_fed_back() {
    let mut bad = wanjiru();
    bad["tech_proficiency"] = json!("Expert");
    let server = MockServer::scripted(vec![
        Reply::text("Sure! Wanjiru is a retired farmer who..."),
        Reply::text(&bad.to_string()),
        Reply::text(&wanjiru().to_string()),
    ])
    .await;
    let persona = synthesize_one(&*backend(&server), "retired farmer", &builtin_panel())
        .await
        .unwrap();
    assert_eq!(persona.name, "Wanjiru Kamau");
    let requests = server.requests();
    assert_eq!(requests.len(), 3);
    let second = requests[1].body["messages"].as_array().unwrap();
    assert_eq!(second[2]["role"], "assistant");
    assert!(second[2]["content"].as_str().unwrap().starts_with("Sure!"));
    let feedback = second[3]["content"].as_str().unwrap();
    assert!(feedback.contains("no JSON object"), "{feedback}");
    let third = requests[2].body["messages"].as_array().unwrap();
    let feedback = third[5]["content"].as_str().unwrap();
    assert!(feedback.contains("\"Expert\""), "{feedback}");
}

#[tokio::test]
async fn giving_up_after_three_tries_says_why() {
    let server = MockServer::start(Vec::new(), Duration::ZERO, |_| Reply::text("no")).await;
    let err = synthesize_one(&*backend(&server), "anyone", &builtin_panel())
        .await
        .unwrap_err();
    assert!(err.contains("gave up after 3 tries"), "{err}");
    assert_eq!(server.requests().len(), MAX_ATTEMPTS as usize);
}

#[tokio::test]
async fn near_duplicates_are_rejected_and_retried() {
    let panel = builtin_panel();
    let mut same_name = wanjiru();
    same_name["name"] = json!(format!("  {}  ", panel[0].name.to_uppercase()));
    let mut same_traits = wanjiru();
    same_traits["name"] = json!("Someone Else");
    same_traits["behavioral_traits"] = json!(panel[1].behavioral_traits);
    let server = MockServer::scripted(vec![
        Reply::text(&same_name.to_string()),
        Reply::text(&same_traits.to_string()),
        Reply::text(&wanjiru().to_string()),
    ])
    .await;
    let persona = synthesize_one(&*backend(&server), "anyone", &panel)
        .await
        .unwrap();
    assert_eq!(persona.name, "Wanjiru Kamau");
    let requests = server.requests();
    let feedback = requests[1].body["messages"][3]["content"].as_str().unwrap();
    assert!(
        feedback.contains(&format!("#1 {}", panel[0].name)) && feedback.contains("same name"),
        "{feedback}"
    );
    let feedback = requests[2].body["messages"][5]["content"].as_str().unwrap();
    assert!(
        feedback.contains(&format!("#2 {}", panel[1].name)),
        "{feedback}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_of_25_keeps_22_reports_3_and_never_exceeds_10_in_flight() {
    const FAILING: [usize; 3] = [5, 12, 20];
    // Slow chunks, so requests overlap and the limit is really tested.
    let server = MockServer::start(
        Vec::new(),
        Duration::from_millis(15),
        |body| match batch_index(body) {
            Some(n) if FAILING.contains(&n) => Reply::text("I would rather not."),
            _ => Reply::text(&persona_json(body).to_string()),
        },
    )
    .await;
    let panel = builtin_panel();
    let (tx, mut rx) = mpsc::channel(256);
    let task = tokio::spawn(synthesize_batch(
        backend(&server),
        "people who run small shops".into(),
        25,
        panel.clone(),
        tx,
    ));
    let mut events = Vec::new();
    while let Some(e) = rx.recv().await {
        events.push(e);
    }
    let result = task.await.unwrap();

    assert_eq!(result.accepted.len(), 22);
    let failed: Vec<usize> = result.failed.iter().map(|(i, _)| *i + 1).collect();
    assert_eq!(failed, FAILING);
    assert!(result.failed[0].1.contains("gave up after 3 tries"));
    let peak = server.max_in_flight();
    assert!(peak <= 10, "{peak} requests in flight at once");
    assert!(peak >= 5, "requests overlapped: peak {peak}");
    assert_eq!(server.requests().len(), 22 + 3 * MAX_ATTEMPTS as usize);
    // Every persona kept is valid with the panel, with fresh unique ids.
    let mut all = panel.clone();
    all.extend(result.accepted.iter().cloned());
    validate_panel(&all).unwrap();
    assert!(result.accepted.iter().all(|p| p.id > 14));
    // The asks were spread: every request named its place in the batch.
    assert!(
        server
            .requests()
            .iter()
            .all(|r| batch_index(&r.body).is_some())
    );
    let accepted = events
        .iter()
        .filter(|e| matches!(e, SynthEvent::Accepted { .. }))
        .count();
    let failed = events
        .iter()
        .filter(|e| matches!(e, SynthEvent::Failed { .. }))
        .count();
    let retried = events
        .iter()
        .filter(|e| matches!(e, SynthEvent::Retrying { .. }))
        .count();
    assert_eq!((accepted, failed, retried), (22, 3, 6));
}
