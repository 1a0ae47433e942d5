//! The spectator server (`serve::live`) over a real debate: the mock
//! OpenAI server streams it, the session runner publishes it to a `Feed`,
//! viewers read `/live/events` over loopback.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use persona_sim::serve::live::{self, CONTENT_SECURITY_POLICY, LiveServer};
use persona_sim::sim::debate::{Moderation, SimEvent};
use persona_sim::sim::live::{Feed, MAX_QUESTION_CHARS, QUESTIONS_PER_WINDOW};
use persona_sim::sim::session::event_json;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use support::live::{client, config, is_done, kind, read_events, run_into, stance_mock};

const WAIT: Duration = Duration::from_secs(30);

async fn serve(feed: &Arc<Feed>, token: Option<&str>) -> (LiveServer, String) {
    let server = live::start(
        "127.0.0.1:0".parse().unwrap(),
        feed.clone(),
        token.map(str::to_string),
    )
    .await
    .unwrap();
    let base = format!("http://{}", server.addr());
    (server, base)
}

fn lines(events: &[SimEvent]) -> Vec<Value> {
    events
        .iter()
        .map(|e| serde_json::from_str(&event_json(e)).unwrap())
        .collect()
}

fn assert_consecutive(received: &[(u64, Value)]) {
    for pair in received.windows(2) {
        assert_eq!(pair[1].0, pair[0].0 + 1, "ids must be consecutive");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_is_self_contained_under_a_strict_policy() {
    let feed = Arc::new(Feed::new());
    let (_server, base) = serve(&feed, None).await;
    let http = client();
    let page = http.get(format!("{base}/live")).send().await.unwrap();
    assert_eq!(page.status().as_u16(), 200);
    let headers = page.headers().clone();
    assert_eq!(headers["content-security-policy"], CONTENT_SECURITY_POLICY);
    assert!(CONTENT_SECURITY_POLICY.starts_with("default-src 'none'; script-src 'self';"));
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = page.text().await.unwrap();
    assert!(html.contains(r#"src="/live/page.js""#), "{html}");
    assert!(html.contains(r#"href="/live/page.css""#));
    assert!(html.contains(r#"class="page""#) && html.contains(r#"data-questions="off""#));
    for path in ["/live/page.js", "/live/page.css"] {
        let asset = http.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(asset.status().as_u16(), 200, "{path}");
        assert_eq!(asset.headers()["x-content-type-options"], "nosniff");
        let text = asset.text().await.unwrap();
        for body in [&html, &text] {
            assert!(
                !body.contains("http://") && !body.contains("https://") && !body.contains("//cdn"),
                "{path}: loads nothing from elsewhere"
            );
        }
        assert!(!text.contains("innerHTML"), "{path}: data is never markup");
    }
    let overlay = http
        .get(format!("{base}/live?overlay=1"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(overlay.contains(r#"class="overlay""#));
    let config = http
        .get(format!("{base}/live/config"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        config.json::<Value>().await.unwrap(),
        json!({"questions": false})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_joiner_reads_from_debate_started_and_last_event_id_resumes_right_after() {
    let mock = stance_mock(Duration::ZERO).await;
    let feed = Arc::new(Feed::new());
    let (_server, base) = serve(&feed, None).await;
    let events = run_into(&feed, &mock, &config("Dark mode", 3, 1)).await;
    let expected = lines(&events);
    let url = format!("{base}/live/events");
    let http = client();

    let all = read_events(&http, &url, None, is_done, WAIT).await;
    assert_eq!(kind(&all[0].1), "debate_started");
    assert_eq!(all[0].1["feature"], "Dark mode");
    assert_eq!(all[0].1["personas"].as_array().unwrap().len(), 3);
    assert_consecutive(&all);
    let got: Vec<Value> = all.iter().map(|(_, v)| v.clone()).collect();
    assert_eq!(got, expected, "every event, in order, as published");

    let after = all[5].0;
    let rest = read_events(&http, &url, Some(after), is_done, WAIT).await;
    assert_eq!(rest[0].0, after + 1, "resumes right after the id");
    assert_eq!(rest, all[6..].to_vec());
    let by_query = read_events(
        &http,
        &format!("{url}?last_event_id={after}"),
        None,
        is_done,
        WAIT,
    )
    .await;
    assert_eq!(by_query, all[6..].to_vec(), "?last_event_id= works too");

    let bad = http
        .get(&url)
        .header("last-event-id", "soon")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status().as_u16(), 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_debate_starts_the_stream_over() {
    let mock = stance_mock(Duration::ZERO).await;
    let feed = Arc::new(Feed::new());
    let (_server, base) = serve(&feed, None).await;
    let url = format!("{base}/live/events");
    let http = client();
    run_into(&feed, &mock, &config("First feature", 2, 1)).await;
    let first = read_events(&http, &url, None, is_done, WAIT).await;
    let second = run_into(&feed, &mock, &config("Second feature", 2, 1)).await;
    let fresh = read_events(&http, &url, None, is_done, WAIT).await;
    assert_eq!(fresh[0].1["feature"], "Second feature");
    assert_eq!(fresh[0].0, first.last().unwrap().0 + 1, "ids keep growing");
    assert_eq!(fresh.len(), second.len(), "nothing of the first debate");
    // A viewer of the first debate reconnecting lands at the second's start.
    let resumed = read_events(&http, &url, Some(first[3].0), is_done, WAIT).await;
    assert_eq!(resumed, fresh);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_token_every_data_route_needs_it() {
    let (feed, _queue) = Feed::with_questions();
    let feed = Arc::new(feed);
    let (server, base) = serve(&feed, Some("s3cret")).await;
    assert_eq!(
        server.url(Some("s3cret")),
        format!("{base}/live?token=s3cret")
    );
    let http = client();
    for path in [
        "/live",
        "/live/events",
        "/live/config",
        "/live?token=wrong",
        "/live?token=",
    ] {
        let response = http.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 401, "{path}");
        assert_eq!(response.headers()["x-content-type-options"], "nosniff");
        let text = response.text().await.unwrap();
        assert!(text.contains("viewer token"), "{path}: {text}");
    }
    let post = http
        .post(format!("{base}/live/questions"))
        .header("content-type", "application/json")
        .body(r#"{"text":"hi"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(post.status().as_u16(), 401);
    let page = http
        .get(format!("{base}/live?token=s3cret"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status().as_u16(), 200);
    let stream = http
        .get(format!("{base}/live/events?token=s3cret"))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status().as_u16(), 200);
    // The script and style hold no data: open, so the page can load them.
    let script = http
        .get(format!("{base}/live/page.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(script.status().as_u16(), 200);
    let post = http
        .post(format!("{base}/live/questions?token=s3cret"))
        .header("content-type", "application/json")
        .body(r#"{"text":"hi"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(post.status().as_u16(), 202);
}

async fn ask(
    http: &reqwest::Client,
    base: &str,
    content_type: &str,
    body: String,
) -> (u16, Option<String>, Value) {
    let response = http
        .post(format!("{base}/live/questions"))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let retry = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    let text = response.text().await.unwrap();
    (
        status,
        retry,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn question(text: &str) -> String {
    json!({ "text": text }).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn questions_are_checked_rate_limited_and_queued_for_the_moderator() {
    let (feed, mut queue) = Feed::with_questions();
    let feed = Arc::new(feed);
    let (_server, base) = serve(&feed, None).await;
    let http = client();
    let page = http
        .get(format!("{base}/live"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains(r#"data-questions="on""#));

    let (status, _, body) = ask(
        &http,
        &base,
        "application/json",
        question("Will it work offline?"),
    )
    .await;
    assert_eq!(
        (status, body.clone()),
        (202, json!({"id": 1, "status": "queued"}))
    );
    assert_eq!(queue.try_next().unwrap().text, "Will it work offline?");

    let too_long = "x".repeat(MAX_QUESTION_CHARS + 1);
    let (status, _, body) = ask(&http, &base, "application/json", question(&too_long)).await;
    assert_eq!(status, 422, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("280"));
    let (status, _, body) = ask(
        &http,
        &base,
        "application/json",
        question(&"y".repeat(5000)),
    )
    .await;
    assert_eq!(status, 413, "{body}");
    let (status, _, _) = ask(&http, &base, "application/json", "{not json".into()).await;
    assert_eq!(status, 400);
    let (status, _, body) = ask(
        &http,
        &base,
        "application/json",
        json!({"q": 1}).to_string(),
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(body["error"]["details"][0]["path"], "text");
    let (status, _, _) = ask(&http, &base, "text/plain", question("sneaky form")).await;
    assert_eq!(status, 415, "a plain form from another site is refused");
    let (status, _, _) = ask(&http, &base, "application/json", question("   ")).await;
    assert_eq!(status, 422);

    for n in 2..=QUESTIONS_PER_WINDOW {
        let (status, _, _) = ask(
            &http,
            &base,
            "application/json",
            question(&format!("question {n}")),
        )
        .await;
        assert_eq!(status, 202);
    }
    let (status, retry, body) =
        ask(&http, &base, "application/json", question("one too many")).await;
    assert_eq!(status, 429, "{body}");
    let seconds: u64 = retry.expect("Retry-After").parse().unwrap();
    assert!((1..=60).contains(&seconds));
    assert_eq!(body["error"]["code"], "rate_limited");

    let off = Arc::new(Feed::new());
    let (_off_server, off_base) = serve(&off, None).await;
    let (status, _, body) = ask(&http, &off_base, "application/json", question("anyone?")).await;
    assert_eq!(status, 404);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("--live-questions")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_injection_probe_stays_plain_text_from_the_post_to_the_stream() {
    let (feed, mut queue) = Feed::with_questions();
    let feed = Arc::new(feed);
    let (_server, base) = serve(&feed, None).await;
    let http = client();
    let mock = stance_mock(Duration::ZERO).await;
    run_into(&feed, &mock, &config("Probe", 1, 1)).await;
    for probe in ["<script>alert(1)</script>", "<img src=x onerror=alert(1)>"] {
        let (status, _, _) = ask(&http, &base, "application/json", question(probe)).await;
        assert_eq!(status, 202);
        let queued = queue.try_next().unwrap();
        assert_eq!(queued.text, probe, "kept as the text it is, not rewritten");
        feed.publish(&SimEvent::Moderated(Moderation::Asked {
            turn: 9,
            text: queued.text,
            audience: true,
        }));
    }
    let url = format!("{base}/live/events");
    let got = read_events(
        &http,
        &url,
        None,
        |e| e["action"] == "asked" && e["text"].as_str().unwrap().starts_with("<img"),
        WAIT,
    )
    .await;
    let asked: Vec<&Value> = got
        .iter()
        .map(|(_, e)| e)
        .filter(|e| e["action"] == "asked")
        .collect();
    assert_eq!(asked.len(), 2);
    assert_eq!(asked[0]["text"], "<script>alert(1)</script>");
    assert_eq!(asked[0]["audience"], true);
}

/// What one viewer checked while reading: events, whether ids were
/// consecutive, and a digest of the data in order (no copies kept, so the
/// readers do not weigh on the memory measured).
#[derive(Debug, PartialEq, Eq)]
struct Watched {
    events: usize,
    consecutive: bool,
    digest: [u8; 32],
}

async fn watch_to_the_end(http: reqwest::Client, url: String) -> (Watched, Instant) {
    let mut response = http.get(&url).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let mut buffer = String::new();
    let mut hash = Sha256::new();
    let mut events = 0;
    let mut consecutive = true;
    let mut last_id: Option<u64> = None;
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(Ok(Some(chunk))) = tokio::time::timeout(left, response.chunk()).await else {
            break;
        };
        buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let id = block
                .lines()
                .find_map(|l| l.strip_prefix("id:"))
                .map(|v| v.trim().parse::<u64>().unwrap());
            let data = block
                .lines()
                .find_map(|l| l.strip_prefix("data:"))
                .map(str::trim);
            if let (Some(id), Some(data)) = (id, data) {
                consecutive &= last_id.is_none_or(|last| id == last + 1);
                last_id = Some(id);
                hash.update(data.as_bytes());
                hash.update(b"\n");
                events += 1;
                if data.contains(r#""event":"done""#) {
                    return (
                        Watched {
                            events,
                            consecutive,
                            digest: hash.finalize().into(),
                        },
                        Instant::now(),
                    );
                }
            }
        }
    }
    panic!("viewer did not see the debate end within 120 s ({events} events)");
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_viewers_get_every_event_in_order_and_a_stalled_one_slows_nobody() {
    const VIEWERS: usize = 100;
    let mock = support::MockServer::start(Vec::new(), Duration::from_millis(1), |body| {
        // Long replies, so the stalled viewer's socket fills up for sure.
        match support::live::stance_reply(body) {
            support::Reply::Stream { pieces, usage } => {
                let mut long: Vec<String> = Vec::new();
                for _ in 0..12 {
                    long.extend(pieces[..pieces.len() - 6].iter().cloned());
                }
                long.extend(pieces[pieces.len() - 6..].iter().cloned());
                support::Reply::Stream {
                    pieces: long,
                    usage,
                }
            }
            other => other,
        }
    })
    .await;
    let feed = Arc::new(Feed::new());
    let (server, base) = serve(&feed, None).await;
    let url = format!("{base}/live/events");
    let rss_before = rss_kib();

    // The stalled viewer: asks for the stream with a tiny receive buffer
    // and never reads a byte.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stalled = socket.connect(server.addr()).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(
        &mut stalled,
        format!(
            "GET /live/events HTTP/1.1\r\nhost: {}\r\n\r\n",
            server.addr()
        )
        .as_bytes(),
    )
    .await
    .unwrap();

    let viewers: Vec<_> = (0..VIEWERS)
        .map(|_| tokio::spawn(watch_to_the_end(client(), url.clone())))
        .collect();
    // Most viewers connect before the debate starts; any later one reads
    // it from its start all the same.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = Instant::now();
    let events = run_into(&feed, &mock, &config("Shared shopping lists", 14, 2)).await;
    let debate_ended = Instant::now();
    let mut expected = Sha256::new();
    for e in &events {
        expected.update(event_json(e).as_bytes());
        expected.update(b"\n");
    }
    let expected = Watched {
        events: events.len(),
        consecutive: true,
        digest: expected.finalize().into(),
    };
    let mut last_finish = debate_ended;
    for viewer in viewers {
        let (watched, finished) = tokio::time::timeout(Duration::from_secs(60), viewer)
            .await
            .expect("a viewer finishes")
            .unwrap();
        assert_eq!(watched, expected, "every viewer: every event, in order");
        last_finish = last_finish.max(finished);
    }
    let rss_after = rss_kib();
    let lag = last_finish.duration_since(debate_ended);
    eprintln!(
        "live load: {VIEWERS} viewers + 1 stalled; {} events each; debate {:.2?}; last viewer done {:.0?} after the debate; RSS {} KiB before, {} KiB after (+{} KiB)",
        events.len(),
        debate_ended.duration_since(started),
        lag,
        rss_before,
        rss_after,
        rss_after.saturating_sub(rss_before)
    );
    assert!(
        events.len() > 2000,
        "a long enough debate: {}",
        events.len()
    );
    assert!(
        lag < Duration::from_secs(5),
        "viewers finished {lag:?} after the debate"
    );
    assert!(
        rss_after.saturating_sub(rss_before) < 64 * 1024,
        "RSS grew from {rss_before} KiB to {rss_after} KiB"
    );

    // The stalled viewer still gets everything, in order, once it reads.
    let mut raw = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let until = Instant::now() + Duration::from_secs(20);
    while Instant::now() < until && !String::from_utf8_lossy(&raw).contains(r#""event":"done""#) {
        match tokio::time::timeout(
            Duration::from_secs(5),
            tokio::io::AsyncReadExt::read(&mut stalled, &mut buf),
        )
        .await
        {
            Ok(Ok(n)) if n > 0 => raw.extend_from_slice(&buf[..n]),
            _ => break,
        }
    }
    let text = String::from_utf8_lossy(&raw);
    assert!(
        text.contains(r#""event":"done""#),
        "the stalled viewer catches up"
    );
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_taken_port_or_a_bad_address_stops_the_binary_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let mock = stance_mock(Duration::ZERO).await;
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let live_flag = format!("--live={addr}");
    let output = support::binary::run(support::binary::command(
        dir.path(),
        Some(&mock.base_url),
        &["simulate", "--feature", "Dark mode", &live_flag],
    ))
    .await;
    let stderr = support::binary::text(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("--live") && stderr.contains(&addr),
        "names the flag and the address: {stderr}"
    );
    assert!(mock.requests().is_empty(), "no debate ran");

    let output = support::binary::run(support::binary::command(
        dir.path(),
        Some(&mock.base_url),
        &["simulate", "--feature", "Dark mode", "--live", "here:there"],
    ))
    .await;
    let stderr = support::binary::text(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "a usage error: {stderr}");
    assert!(stderr.contains("not an address"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_with_live_shows_an_api_debate_on_the_page() {
    let dir = tempfile::tempdir().unwrap();
    let mock = stance_mock(Duration::ZERO).await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let live_flag = format!("--live=127.0.0.1:{port}");
    let server = support::serve::Server::start_with(
        dir.path(),
        support::serve::Start {
            llm: Some(&mock.base_url),
            flags: vec![&live_flag],
            ..Default::default()
        },
    );
    let http = client();
    let started = http
        .post(format!("{}/v1/debates", server.base))
        .bearer_auth(&server.key)
        .header("content-type", "application/json")
        .body(json!({"feature": "API on stage", "persona_ids": [1, 2], "rounds": 1}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(started.status().as_u16(), 202);
    let events = read_events(
        &http,
        &format!("http://127.0.0.1:{port}/live/events"),
        None,
        is_done,
        WAIT,
    )
    .await;
    assert_eq!(events[0].1["feature"], "API on stage");
    assert!(is_done(&events.last().unwrap().1), "{events:?}");
    assert_consecutive(&events);
}
