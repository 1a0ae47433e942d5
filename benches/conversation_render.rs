//! Cost of one conversation-pane frame, short and long debates alike: the
//! view caches wrapped lines, so a frame should cost what is visible, not the
//! whole transcript.
//!
//! - `render_steady/N`: nothing changed since the last frame.
//! - `render_streaming/N`: one token appended to the streaming last entry,
//!   then a frame (what the event loop does for every token).

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Color;

use persona_sim::tui::panes::conversation::{ConversationView, Entry, EntryKind};

const WIDTH: u16 = 100;
const HEIGHT: u16 = 40;
const SIZES: [usize; 2] = [20, 2_000];
/// Tokens streamed into one turn before the view is rebuilt (a long turn:
/// the default cap is 300 tokens), so the streaming entry stays realistic.
const TOKENS_PER_TURN: u64 = 256;

const SPEAKERS: [(&str, &str, Color); 5] = [
    ("Maria Lopez", "ICU nurse", Color::Cyan),
    (
        "Kwame Mensah",
        "Cocoa farmer and cooperative treasurer",
        Color::Yellow,
    ),
    ("Priya Raman", "Senior backend engineer", Color::Magenta),
    (
        "Tom Becker",
        "Owner of a small plumbing business",
        Color::Green,
    ),
    ("Chloe Martin", "Accessibility consultant", Color::LightRed),
];

const SENTENCES: [&str; 24] = [
    "Offline mode would save me from re-typing notes when the basement wards lose signal.",
    "I worry about what happens when two people edit the same record while disconnected.",
    "Honestly, I would only use it if it works on my old phone.",
    "Sync conflicts are where this gets hard, and the spec says nothing about them.",
    "Who pays for the extra storage on the device?",
    "My customers call me from places with no coverage, so yes, this matters.",
    "If it needs a tutorial, half of my staff will never turn it on.",
    "The screen reader has to announce when you are offline, not just show a grey icon.",
    "I like it, but I would want a clear indicator of what has not been sent yet.",
    "Last-write-wins is fine for notes and dangerous for medication doses.",
    "We tried something similar at my last job and the support tickets doubled.",
    "Can I choose which data stays on the phone?",
    "A cooperative meeting happens once a month, in a village with one bar of signal, \
     so the treasurer's ledger must work without a network for days at a time.",
    "That is a reasonable point.",
    "I disagree with the previous speaker: a queue of pending changes is simple enough.",
    "Battery life matters more to me than any of this.",
    "Please make the sync status visible without opening a menu.",
    "Would the app tell me when it finally uploaded everything?",
    "From a procurement view, I need an audit trail of who changed what and when, even if \
     the change was made on a plane.",
    "Colour alone must never carry the offline state.",
    "Students share devices a lot, so cached data needs a lock.",
    "It sounds useful, but I would pay for it only if it saves me an hour a week.",
    "The first version could be read-only offline, which avoids conflicts entirely.",
    "Let us not forget people who never go offline: the feature must not slow them down.",
];

/// Small deterministic generator: the same debate every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// 2-4 sentences, sometimes split into two paragraphs.
fn message(rng: &mut Rng) -> String {
    let count = 2 + rng.below(3);
    let mut text = String::new();
    for i in 0..count {
        if i > 0 {
            text.push_str(if rng.below(6) == 0 { "\n\n" } else { " " });
        }
        text.push_str(SENTENCES[rng.below(SENTENCES.len())]);
    }
    text
}

/// A debate of `messages` turns whose last turn is still streaming, laid out
/// once (caches warm) by a first render.
fn debate(messages: usize, area: Rect, buf: &mut Buffer) -> (ConversationView, usize) {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut view = ConversationView::new();
    view.push(Entry::new(
        EntryKind::Info,
        "── Debate: Offline mode for the field app · 5 personas · many rounds ──",
    ));
    let mut last = 0;
    for i in 0..messages {
        let (speaker, subtitle, color) = SPEAKERS[i % SPEAKERS.len()];
        last = view.push(Entry::new(
            EntryKind::Turn {
                speaker: speaker.into(),
                subtitle: subtitle.into(),
                round: (i / SPEAKERS.len()) as u32 + 1,
                color,
                streaming: i + 1 == messages,
                cut: false,
                cut_off: false,
                tokens: None,
                estimated: false,
            },
            message(&mut rng),
        ));
    }
    assert!(view.is_following());
    view.render(area, buf, false);
    view.render(area, buf, false);
    // Following the tail: the last line of the last entry is on screen.
    let viewport = HEIGHT as usize - 2;
    assert_eq!(view.top(), view.total_height().saturating_sub(viewport));
    (view, last)
}

const TOKENS: [&str; 8] = [
    " the", " sync", " queue", ",", " and", " offline", " edits", ".",
];

fn bench_render(c: &mut Criterion) {
    let area = Rect::new(0, 0, WIDTH, HEIGHT);

    let mut steady = c.benchmark_group("render_steady");
    for &n in &SIZES {
        steady.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, &n| {
            let mut buf = Buffer::empty(area);
            let (mut view, _) = debate(n, area, &mut buf);
            b.iter(|| {
                buf.reset();
                view.render(black_box(area), &mut buf, false);
                black_box(&buf);
            });
        });
    }
    steady.finish();

    let mut streaming = c.benchmark_group("render_streaming");
    for &n in &SIZES {
        streaming.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, &n| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                let mut done = 0;
                while done < iters {
                    // Fresh, warmed view per turn (not timed).
                    let mut buf = Buffer::empty(area);
                    let (mut view, last) = debate(n, area, &mut buf);
                    let batch = TOKENS_PER_TURN.min(iters - done);
                    let start = Instant::now();
                    for t in 0..batch {
                        view.append_text(last, TOKENS[t as usize % TOKENS.len()]);
                        buf.reset();
                        view.render(black_box(area), &mut buf, false);
                        black_box(&buf);
                    }
                    total += start.elapsed();
                    done += batch;
                }
                total
            });
        });
    }
    streaming.finish();
}

criterion_group!(benches, bench_render);
criterion_main!(benches);
