//! Cost of searching a large panel, as the persona search box does on every
//! keystroke: the `SearchIndex` is built once per panel change, then
//! `filter` runs per keystroke and must feel instant.
//!
//! - `filter_two_words/N`: "nurse low" (common words, AND-ed).
//! - `filter_rare/N`: "barometers", found in one persona in 5,000.
//! - `filter_one_letter/N`: "s", the first keystroke: almost everything
//!   matches, the worst case for the word-start check.
//! - `index_build/N`: `SearchIndex::new` (once per panel change).
//! - `stats/10000`: `stats` for `personas stats`.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};

use persona_sim::persona::search::{Query, SearchIndex};
use persona_sim::persona::stats::stats;
#[path = "support/panel.rs"]
mod support_panel;

use persona_sim::persona::Persona;
use support_panel::panel;

const SIZES: [usize; 2] = [10_000, 100_000];

fn bench_filter(c: &mut Criterion) {
    let queries = [
        ("filter_two_words", "nurse low"),
        ("filter_rare", "barometers"),
        ("filter_one_letter", "s"),
    ];
    let panels: Vec<(usize, Vec<Persona>)> = SIZES.iter().map(|&n| (n, panel(n))).collect();

    for (group_name, text) in queries {
        let query = Query::parse(text);
        let mut group = c.benchmark_group(group_name);
        for (n, panel) in &panels {
            let index = SearchIndex::new(panel);
            let found = index.filter(panel, &query).len();
            assert!(found > 0 && found < *n, "{text:?} finds {found} of {n}");
            group.bench_with_input(BenchmarkId::from_parameter(n), panel, |b, panel| {
                b.iter(|| black_box(index.filter(black_box(panel), black_box(&query))));
            });
        }
        group.finish();
    }

    let mut build = c.benchmark_group("index_build");
    for (n, panel) in &panels {
        build.bench_with_input(BenchmarkId::from_parameter(n), panel, |b, panel| {
            b.iter(|| black_box(SearchIndex::new(black_box(panel))));
        });
    }
    build.finish();

    let mut group = c.benchmark_group("stats");
    let (n, panel) = &panels[0];
    group.bench_with_input(BenchmarkId::from_parameter(n), panel, |b, panel| {
        b.iter(|| black_box(stats(black_box(panel))));
    });
    group.finish();
}

criterion_group!(benches, bench_filter);
criterion_main!(benches);
