//! Describing a panel (`personas stats`, the stats pane): counts by
//! proficiency, country, occupation and trait, age buckets, and how diverse
//! the panel is. No terminal code and no I/O.

use std::collections::HashMap;

use serde::Serialize;

use super::search::{fold, level_index};
use super::{Persona, TechProficiency};

/// How many traits [`PanelStats::top_traits`] keeps.
pub const TOP_TRAITS: usize = 20;

/// A label and how many personas have it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Count {
    pub name: String,
    pub count: usize,
}

/// Ages grouped into buckets: `<25`, `25-34`, `35-44`, `45-54`, `55-64`,
/// `65+` (always all six, in that order), plus personas without an age.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AgeStats {
    pub buckets: Vec<Count>,
    pub unknown: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Diversity {
    /// Distinct countries (case-insensitive).
    pub countries: usize,
    /// Distinct occupations (case-insensitive).
    pub occupations: usize,
    /// Shannon evenness of the proficiency mix over the three levels: 0 when
    /// everyone shares one level (or the panel is empty), 1 for equal thirds.
    pub proficiency_evenness: f64,
}

/// A description of a panel (`personas stats`). Lists are sorted by count,
/// most common first, then by name; labels are grouped case-insensitively
/// and shown with the first spelling seen.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PanelStats {
    pub total: usize,
    /// Low, Medium, High: always all three, in that order.
    pub by_proficiency: Vec<Count>,
    /// Country = the last comma-separated part of the location.
    pub by_country: Vec<Count>,
    pub by_occupation: Vec<Count>,
    /// The [`TOP_TRAITS`] most common traits (each counted once per persona).
    pub top_traits: Vec<Count>,
    /// Distinct traits in the whole panel.
    pub distinct_traits: usize,
    /// `None` when no persona has an age.
    pub ages: Option<AgeStats>,
    pub diversity: Diversity,
}

/// Counts labels case-insensitively, remembering the first spelling.
#[derive(Default)]
struct Tally {
    counts: HashMap<String, (String, usize)>,
}

impl Tally {
    fn add(&mut self, label: &str) {
        let label = label.trim();
        if label.is_empty() {
            return;
        }
        self.add_keyed(&fold(label), label);
    }

    fn add_keyed(&mut self, key: &str, label: &str) {
        match self.counts.get_mut(key) {
            Some((_, count)) => *count += 1,
            None => {
                self.counts.insert(key.to_string(), (label.to_string(), 1));
            }
        }
    }

    fn len(&self) -> usize {
        self.counts.len()
    }

    fn sorted(self) -> Vec<Count> {
        let mut rows: Vec<(String, String, usize)> = self
            .counts
            .into_iter()
            .map(|(key, (name, count))| (key, name, count))
            .collect();
        rows.sort_by(|a, b| b.2.cmp(&a.2).then_with(|| a.0.cmp(&b.0)));
        rows.into_iter()
            .map(|(_, name, count)| Count { name, count })
            .collect()
    }
}

/// The country part of a location: "Tulsa, Oklahoma, USA" → "USA",
/// "Singapore" → "Singapore".
pub fn country_of(location: &str) -> &str {
    location
        .rsplit(',')
        .map(str::trim)
        .find(|part| !part.is_empty())
        .unwrap_or_else(|| location.trim())
}

const AGE_BUCKETS: [(&str, u32); 6] = [
    ("<25", 25),
    ("25-34", 35),
    ("35-44", 45),
    ("45-54", 55),
    ("55-64", 65),
    ("65+", u32::MAX),
];

pub fn stats(panel: &[Persona]) -> PanelStats {
    let mut levels = [0usize; 3];
    let mut countries = Tally::default();
    let mut occupations = Tally::default();
    let mut traits = Tally::default();
    let mut ages = [0usize; AGE_BUCKETS.len()];
    let mut unknown_age = 0;
    // This persona's trait keys, to count each trait once per persona.
    let mut seen: Vec<String> = Vec::new();
    for p in panel {
        levels[level_index(p.tech_proficiency)] += 1;
        countries.add(country_of(&p.location));
        occupations.add(&p.occupation);
        seen.clear();
        for t in &p.behavioral_traits {
            let t = t.trim();
            let key = fold(t);
            if !t.is_empty() && !seen.contains(&key) {
                traits.add_keyed(&key, t);
                seen.push(key);
            }
        }
        match p.age {
            Some(age) => {
                ages[AGE_BUCKETS
                    .iter()
                    .position(|&(_, below)| age < below)
                    .unwrap()] += 1
            }
            None => unknown_age += 1,
        }
    }

    let total = panel.len();
    let evenness = if total == 0 {
        0.0
    } else {
        let entropy: f64 = levels
            .iter()
            .filter(|&&n| n > 0)
            .map(|&n| {
                let p = n as f64 / total as f64;
                -p * p.ln()
            })
            .sum();
        (entropy / (TechProficiency::ALL.len() as f64).ln()).clamp(0.0, 1.0)
    };
    let diversity = Diversity {
        countries: countries.len(),
        occupations: occupations.len(),
        proficiency_evenness: evenness,
    };
    let distinct_traits = traits.len();
    let mut top_traits = traits.sorted();
    top_traits.truncate(TOP_TRAITS);
    PanelStats {
        total,
        by_proficiency: TechProficiency::ALL
            .iter()
            .zip(levels)
            .map(|(level, count)| Count {
                name: level.to_string(),
                count,
            })
            .collect(),
        by_country: countries.sorted(),
        by_occupation: occupations.sorted(),
        top_traits,
        distinct_traits,
        ages: (unknown_age < total).then(|| AgeStats {
            buckets: AGE_BUCKETS
                .iter()
                .zip(ages)
                .map(|(&(name, _), count)| Count {
                    name: name.to_string(),
                    count,
                })
                .collect(),
            unknown: unknown_age,
        }),
        diversity,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::persona::builtin_panel;
    use crate::persona::testing::{persona, with_traits};

    #[test]
    fn stats_of_the_builtin_panel() {
        let stats = stats(&builtin_panel());
        assert_eq!(stats.total, 14);
        let levels: Vec<(&str, usize)> = stats
            .by_proficiency
            .iter()
            .map(|c| (c.name.as_str(), c.count))
            .collect();
        assert_eq!(levels, [("Low", 4), ("Medium", 5), ("High", 5)]);
        // Every country once: ties are sorted by name.
        let countries: Vec<&str> = stats.by_country.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(countries.len(), 14);
        assert_eq!(countries[0], "Brazil");
        assert!(countries.contains(&"USA"), "{countries:?}");
        assert!(countries.contains(&"Singapore"));
        assert!(countries.contains(&"United Arab Emirates"));
        // (case-insensitively: "United Arab Emirates" before "USA").
        assert!(
            countries
                .windows(2)
                .all(|w| w[0].to_lowercase() < w[1].to_lowercase()),
            "{countries:?}"
        );
        assert_eq!(stats.diversity.countries, 14);
        assert_eq!(stats.diversity.occupations, 14);
        let e = stats.diversity.proficiency_evenness;
        assert!(e > 0.98 && e <= 1.0, "{e}");
        let ages = stats.ages.unwrap();
        assert_eq!(ages.unknown, 0);
        let buckets: Vec<usize> = ages.buckets.iter().map(|c| c.count).collect();
        // 20 24 | 27 29 33 | 35 38 39 41 44 | 54 | 58 61 | 72
        assert_eq!(buckets, [2, 3, 5, 1, 2, 1]);
        assert_eq!(buckets.iter().sum::<usize>(), 14);
    }

    #[test]
    fn stats_sort_group_and_bucket() {
        let mut panel = vec![
            with_traits(
                persona(1, "A", "Nurse", "Madrid, Spain"),
                &["Early adopter", "pragmatic", "PRAGMATIC "],
            ),
            with_traits(
                persona(2, "B", "nurse", "Seville,  Spain "),
                &["early adopter"],
            ),
            with_traits(persona(3, "C", "Baker", "Lyon, France"), &["pragmatic"]),
            with_traits(persona(4, "D", "Teacher", "Singapore"), &["zen"]),
            persona(5, "E", "Baker", "Paris, France,"),
            persona(6, "F", "Teacher", "Berlin, Germany"),
        ];
        panel[0].age = Some(24);
        panel[1].age = Some(25);
        panel[2].age = Some(65);
        panel[3].age = Some(64);
        let s = stats(&panel);
        let pairs = |v: &[Count]| -> Vec<(String, usize)> {
            v.iter().map(|c| (c.name.clone(), c.count)).collect()
        };
        let p = |v: &[(&str, usize)]| -> Vec<(String, usize)> {
            v.iter().map(|&(n, c)| (n.to_string(), c)).collect()
        };
        assert_eq!(
            pairs(&s.by_country),
            p(&[
                ("France", 2),
                ("Spain", 2),
                ("Germany", 1),
                ("Singapore", 1)
            ])
        );
        assert_eq!(
            pairs(&s.by_occupation),
            p(&[("Baker", 2), ("Nurse", 2), ("Teacher", 2)])
        );
        // Grouped case-insensitively, first spelling shown, once per persona.
        assert_eq!(
            pairs(&s.top_traits),
            p(&[("Early adopter", 2), ("pragmatic", 2), ("zen", 1)])
        );
        assert_eq!(s.distinct_traits, 3);
        let ages = s.ages.unwrap();
        assert_eq!(
            pairs(&ages.buckets),
            p(&[
                ("<25", 1),
                ("25-34", 1),
                ("35-44", 0),
                ("45-54", 0),
                ("55-64", 1),
                ("65+", 1)
            ])
        );
        assert_eq!(ages.unknown, 2);
        // Everyone Medium: no evenness at all.
        assert_eq!(s.diversity.proficiency_evenness, 0.0);
        assert_eq!((s.diversity.countries, s.diversity.occupations), (4, 3));

        // Two levels, half and half: between 0 and 1.
        panel[0].tech_proficiency = TechProficiency::Low;
        panel[1].tech_proficiency = TechProficiency::Low;
        panel[2].tech_proficiency = TechProficiency::Low;
        let e = stats(&panel).diversity.proficiency_evenness;
        assert!((e - 2f64.ln() / 3f64.ln()).abs() < 1e-12, "{e}");
        // Equal thirds: exactly even.
        panel[4].tech_proficiency = TechProficiency::High;
        panel[5].tech_proficiency = TechProficiency::High;
        panel[2].tech_proficiency = TechProficiency::Medium;
        let e = stats(&panel).diversity.proficiency_evenness;
        assert!((e - 1.0).abs() < 1e-12, "{e}");
    }

    #[test]
    fn stats_of_nothing() {
        let s = stats(&[]);
        assert_eq!(s.total, 0);
        assert_eq!(s.by_proficiency.len(), 3);
        assert!(s.by_proficiency.iter().all(|c| c.count == 0));
        assert_eq!(s.ages, None);
        assert_eq!(s.diversity.proficiency_evenness, 0.0);
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["ages"], serde_json::Value::Null);
        assert_eq!(json["by_proficiency"][2]["name"], "High");
    }

    #[test]
    fn country_parsing() {
        assert_eq!(country_of("Madrid, Spain"), "Spain");
        assert_eq!(country_of("Tulsa, Oklahoma, USA"), "USA");
        assert_eq!(country_of("Singapore"), "Singapore");
        assert_eq!(country_of("  Singapore "), "Singapore");
        assert_eq!(country_of("Paris, France, "), "France");
    }
}
