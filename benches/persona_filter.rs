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
use persona_sim::persona::{Persona, TechProficiency};

const SIZES: [usize; 2] = [10_000, 100_000];

const FIRST: [&str; 16] = [
    "Maria", "Kwame", "Priya", "Tom", "Aiko", "Robert", "Fatima", "Lucas", "Ingrid", "Daniel",
    "Chloe", "Giuseppe", "Mei", "Sarah", "Élodie", "Søren",
];
const LAST: [&str; 16] = [
    "Lopez", "Mensah", "Raman", "Becker", "Tanaka", "Hayes", "Al-Sayed", "Oliveira", "Larsen",
    "Okafor", "Martin", "Russo", "Lin", "O'Connor", "Durand", "Nielsen",
];
const OCCUPATIONS: [&str; 20] = [
    "ICU nurse",
    "Night nurse",
    "Cocoa farmer",
    "Senior backend engineer",
    "Plumber",
    "University student",
    "Retired teacher",
    "Procurement manager",
    "Delivery rider",
    "Product manager",
    "Maths teacher",
    "Accessibility consultant",
    "Restaurant owner",
    "Data analyst",
    "Bookkeeper",
    "Pharmacist",
    "Bus driver",
    "Graphic designer",
    "Social worker",
    "Electrician",
];
const LOCATIONS: [&str; 16] = [
    "Madrid, Spain",
    "Kumasi, Ghana",
    "Bengaluru, India",
    "Leipzig, Germany",
    "Osaka, Japan",
    "Tulsa, Oklahoma, USA",
    "Dubai, United Arab Emirates",
    "São Paulo, Brazil",
    "Oslo, Norway",
    "Lagos, Nigeria",
    "Montréal, Canada",
    "Naples, Italy",
    "Singapore",
    "Cork, Ireland",
    "Lyon, France",
    "Aarhus, Denmark",
];
const TRAITS: [&str; 24] = [
    "time-poor on twelve-hour shifts",
    "values reliability over novelty",
    "distrusts banking apps",
    "uses a basic Android phone with prepaid data",
    "reads the privacy policy",
    "automates everything she can",
    "impatient with slow or bloated tools",
    "sceptical of subscriptions",
    "early adopter",
    "cares about visual polish",
    "asks a grandchild for help",
    "worried about scams",
    "compares vendors in spreadsheets",
    "price-sensitive",
    "thinks in metrics and funnels",
    "pushes back on scope creep",
    "works around unreliable power",
    "pragmatic",
    "uses a screen reader daily",
    "decides on gut feeling",
    "wants exports and APIs",
    "budget-conscious",
    "hates being upsold",
    "follows every tutorial",
];
const BIOS: [&str; 8] = [
    "Grew up in a small town and moved to the city for work.",
    "Juggles two jobs and a long commute.",
    "Volunteers at the local library on weekends.",
    "Has used the same phone for five years.",
    "Runs a neighbourhood chat group.",
    "Learned to code from online videos.",
    "Cares for an elderly parent.",
    "Travels a lot and is often offline.",
];
const RARE_TRAIT: &str = "collects antique barometers";

/// Small deterministic generator (an LCG): the same panel every run.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) % n as u64) as usize
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

fn panel(n: usize) -> Vec<Persona> {
    let mut rng = Lcg(0x5EED_F00D_9E37_79B9);
    (0..n)
        .map(|i| {
            let mut traits: Vec<String> = (0..3 + rng.below(3))
                .map(|_| rng.pick(&TRAITS).to_string())
                .collect();
            if i % 5_000 == 2_500 {
                traits.push(RARE_TRAIT.into());
            }
            let mut extra = std::collections::BTreeMap::new();
            extra.insert("bio".to_string(), rng.pick(&BIOS).into());
            if rng.below(2) == 0 {
                extra.insert(
                    "goals".to_string(),
                    serde_json::json!([rng.pick(&TRAITS), rng.pick(&BIOS)]),
                );
            }
            Persona {
                id: i as u32 + 1,
                name: format!("{} {}", rng.pick(&FIRST), rng.pick(&LAST)),
                occupation: rng.pick(&OCCUPATIONS).into(),
                location: rng.pick(&LOCATIONS).into(),
                tech_proficiency: [
                    TechProficiency::Low,
                    TechProficiency::Medium,
                    TechProficiency::High,
                ][rng.below(3)],
                behavioral_traits: traits,
                age: (rng.below(10) > 0).then(|| 18 + rng.below(70) as u32),
                extra,
            }
        })
        .collect()
}

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
