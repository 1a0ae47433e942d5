//! Cost of one change to a shared panel file, as every face makes it
//! (`store::change`): take the lock, read and parse the file as it is now,
//! apply the operation, write the previous file as the backup and the new
//! one (each atomically, fsynced), release the lock.
//!
//! - `add/N`: a new persona on a panel of N.
//! - `edit/N`: one field of one persona on a panel of N.
//!
//! Run in a temp folder on the machine's disk; fsync dominates small panels.

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};

use persona_sim::persona::ops;
use persona_sim::persona::store::{StorePaths, change};

#[path = "support/panel.rs"]
mod support_panel;

use support_panel::panel;

const SIZES: [usize; 3] = [1_000, 10_000, 100_000];

fn bench_change(c: &mut Criterion) {
    let mut group = c.benchmark_group("panel_change");
    group.sample_size(10);
    for n in SIZES {
        let dir = tempfile::tempdir().unwrap();
        let paths = StorePaths::for_file(dir.path().join("personas.json"));
        let start = panel(n);
        change(&paths, |p| {
            *p = start.clone();
            Ok::<_, ()>(())
        })
        .unwrap()
        .unwrap();
        let template = start[0].clone();
        group.bench_with_input(BenchmarkId::new("add", n), &n, |b, _| {
            b.iter(|| {
                let mut new = template.clone();
                new.id = 0;
                change(&paths, |p| ops::add(p, new)).unwrap().unwrap()
            })
        });
        let mut i = 0u64;
        group.bench_with_input(BenchmarkId::new("edit", n), &n, |b, _| {
            b.iter(|| {
                i += 1;
                let set = [("occupation".to_string(), format!("Edited {i}"))];
                change(&paths, |p| ops::update(p, 1, &set))
                    .unwrap()
                    .unwrap()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_change);
criterion_main!(benches);
