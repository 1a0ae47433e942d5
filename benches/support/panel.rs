//! A large, varied panel for the benchmarks: names, occupations, places,
//! traits and bios drawn by a fixed-seed generator, so every run measures
//! the same panel.

use persona_sim::persona::{Persona, TechProficiency};

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

pub fn panel(n: usize) -> Vec<Persona> {
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
