//! Cost of a whole frame (every pane, the hint and status lines, and the
//! open dialogs), drawn through ratatui's `TestBackend` at 120×40 after a
//! 200-turn debate:
//!
//! - `frame/steady`: nothing changed since the last frame;
//! - `frame/token`: one token appended to the streaming turn, then a frame
//!   (what the event loop does per batch of tokens);
//! - `frame/help`: the same with the help overlay open.
//!
//! It uses only `App::new`, `App::update`, `App::on_sim_event` and
//! `ui::draw`, so the same file measures older versions too.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

use persona_sim::llm::BackendInfo;
use persona_sim::persona::builtin_panel;
use persona_sim::sim::debate::SimEvent;
use persona_sim::tui::action::Action;
use persona_sim::tui::app::App;
use persona_sim::tui::ui;

const TURNS: usize = 200;
/// Tokens in a streamed turn (the default cap is 300).
const TOKENS_PER_TURN: usize = 256;

/// An app in the middle of a long debate: `TURNS` finished turns and one
/// streaming.
fn app_mid_debate() -> App {
    let panel = builtin_panel();
    let info = BackendInfo {
        kind: "openai",
        model: "gpt-4o-mini".into(),
        endpoint: "http://127.0.0.1:1/v1".into(),
    };
    let mut app = App::new(panel.clone(), Some(info), 50, 300);
    app.update(Action::ListToggleAll);
    app.update(Action::Paste("Offline mode for field workers".into()));
    assert!(app.update(Action::StartDebate).is_some());
    for turn in 0..=TURNS {
        let p = &panel[turn % panel.len()];
        app.on_sim_event(SimEvent::TurnStarted {
            turn,
            round: (turn / panel.len()) as u32 + 1,
            persona_id: p.id,
            speaker: p.name.clone(),
            question: None,
        });
        app.on_sim_event(SimEvent::Token {
            turn,
            text: "I would use it on the night shift when the signal drops, but only \
                   if my edits sync without asking me twice. "
                .repeat(3),
        });
        if turn < TURNS {
            app.on_sim_event(SimEvent::TurnEnded {
                turn,
                finish_reason: Default::default(),
                stance: None,
            });
        }
    }
    app
}

fn bench_frame(c: &mut Criterion) {
    let mut group = c.benchmark_group("frame");
    let mut terminal = Terminal::new(TestBackend::new(120, 40)).unwrap();

    let mut app = app_mid_debate();
    terminal.draw(|f| ui::draw(f, &mut app)).unwrap();
    group.bench_function("steady", |b| {
        b.iter(|| {
            terminal.draw(|f| ui::draw(f, black_box(&mut app))).unwrap();
        })
    });

    // A new turn every TOKENS_PER_TURN tokens, as in a debate, so the
    // streaming turn stays a realistic length.
    let (mut turn, mut tokens) = (TURNS, 0);
    group.bench_function("token", |b| {
        b.iter(|| {
            if tokens == TOKENS_PER_TURN {
                app.on_sim_event(SimEvent::TurnEnded {
                    turn,
                    finish_reason: Default::default(),
                    stance: None,
                });
                turn += 1;
                tokens = 0;
                app.on_sim_event(SimEvent::TurnStarted {
                    turn,
                    round: 1,
                    persona_id: 1,
                    speaker: "Maria Lopez".into(),
                    question: None,
                });
            }
            tokens += 1;
            app.on_sim_event(SimEvent::Token {
                turn,
                text: " sync".into(),
            });
            terminal.draw(|f| ui::draw(f, black_box(&mut app))).unwrap();
        })
    });

    app.update(Action::ToggleHelp);
    group.bench_function("help", |b| {
        b.iter(|| {
            terminal.draw(|f| ui::draw(f, black_box(&mut app))).unwrap();
        })
    });
    group.finish();
}

criterion_group!(benches, bench_frame);
criterion_main!(benches);
