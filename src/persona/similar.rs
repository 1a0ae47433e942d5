//! Near-duplicate detection: whether a synthesised persona is too close to
//! one already in the panel.

use std::collections::HashSet;
use std::fmt;

use super::Persona;

/// The Jaccard similarity from which two trait sets count as near-duplicates,
/// as a fraction (numerator, denominator) so it is compared in integers.
const SIMILAR_TRAITS: (usize, usize) = (4, 5);

/// Why a candidate persona looks like one already in the panel.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum DuplicateReason {
    /// Names equal ignoring case and surrounding whitespace (accents count).
    SameName,
    /// Jaccard similarity (0..=1) of the two trait sets, at least 0.8.
    SimilarTraits(f32),
}

impl fmt::Display for DuplicateReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DuplicateReason::SameName => f.write_str("same name"),
            DuplicateReason::SimilarTraits(j) => {
                // Rounded, but never "100%" unless the sets are equal.
                let percent = (j * 100.0).round();
                let percent = if *j < 1.0 { percent.min(99.0) } else { percent };
                write!(f, "traits {percent:.0}% alike")
            }
        }
    }
}

/// The panel persona `candidate` most looks like, if any: a persona with the
/// same name wins (the first one); otherwise the one whose traits are most
/// alike (Jaccard of the lowercased, trimmed trait sets ≥ 0.8, both sets with
/// at least two traits). `candidate` itself is skipped if it is in `panel`
/// (by address, not id: a synthesised candidate may reuse an id).
pub fn near_duplicate<'a>(
    candidate: &Persona,
    panel: &'a [Persona],
) -> Option<(&'a Persona, DuplicateReason)> {
    let others = || panel.iter().filter(|p| !std::ptr::eq(*p, candidate));
    let name = candidate.name.trim().to_lowercase();
    if let Some(p) = others().find(|p| p.name.trim().to_lowercase() == name) {
        return Some((p, DuplicateReason::SameName));
    }
    let traits = trait_set(candidate);
    if traits.len() < 2 {
        return None;
    }
    let mut best: Option<(&Persona, usize, usize)> = None;
    for p in others() {
        let theirs = trait_set(p);
        if theirs.len() < 2 {
            continue;
        }
        let common = traits.intersection(&theirs).count();
        let union = traits.len() + theirs.len() - common;
        // common / union >= SIMILAR_TRAITS; strictly better than the best.
        let better = best.is_none_or(|(_, c, u)| common * u > c * union);
        let (num, den) = SIMILAR_TRAITS;
        if common * den >= union * num && better {
            best = Some((p, common, union));
        }
    }
    best.map(|(p, common, union)| {
        (
            p,
            DuplicateReason::SimilarTraits(common as f32 / union as f32),
        )
    })
}

fn trait_set(p: &Persona) -> HashSet<String> {
    p.behavioral_traits
        .iter()
        .map(|t| t.trim().to_lowercase())
        .filter(|t| !t.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::persona::builtin_panel;
    use crate::persona::testing::{persona, with_traits};

    #[test]
    fn near_duplicates_by_name() {
        let panel = builtin_panel();
        let candidate = persona(99, "  maria LOPEZ ", "Pilot", "Quito, Ecuador");
        let (found, reason) = near_duplicate(&candidate, &panel).unwrap();
        assert_eq!((found.id, reason), (1, DuplicateReason::SameName));
        assert_eq!(reason.to_string(), "same name");
        // Accents are not folded.
        let accented = persona(99, "María López", "Pilot", "Quito, Ecuador");
        assert_eq!(near_duplicate(&accented, &panel), None);
        // Non-ASCII case is.
        let mut panel = panel;
        panel.push(persona(50, "Élodie Durand", "Nurse", "Lyon, France"));
        let shouted = persona(99, "ÉLODIE DURAND", "Pilot", "Quito, Ecuador");
        assert_eq!(near_duplicate(&shouted, &panel).unwrap().0.id, 50);
    }

    #[test]
    fn near_duplicates_by_traits() {
        let base = [
            "early adopter",
            "price-sensitive",
            "reads reviews",
            "night owl",
            "hates ads",
        ];
        let panel = vec![
            with_traits(persona(1, "A", "X", "Y"), &base[..4]),
            with_traits(persona(2, "B", "X", "Y"), &base),
            with_traits(persona(3, "C", "X", "Y"), &["early adopter", "pragmatic"]),
            with_traits(persona(4, "D", "X", "Y"), &["loner"]),
        ];
        let candidate = |traits: &[&str]| with_traits(persona(9, "Z", "X", "Y"), traits);

        // Same four traits as A (case and spaces aside): 4/4; B is 4/5.
        let same = candidate(&[
            " Early Adopter",
            "PRICE-SENSITIVE",
            "reads reviews",
            "night owl",
        ]);
        let (found, reason) = near_duplicate(&same, &panel).unwrap();
        assert_eq!((found.id, reason), (1, DuplicateReason::SimilarTraits(1.0)));
        assert_eq!(reason.to_string(), "traits 100% alike");

        // B's five plus one: 5/6 with B, 4/6 with A.
        let mut six = base.to_vec();
        six.push("gardener");
        let (found, reason) = near_duplicate(&candidate(&six), &panel).unwrap();
        assert_eq!(found.id, 2);
        assert_eq!(reason.to_string(), "traits 83% alike");
        // Exactly 0.8 is enough: four of B's five (A has only three of them).
        let (found, reason) = near_duplicate(&candidate(&base[1..]), &panel).unwrap();
        assert_eq!(found.id, 2);
        assert_eq!(reason.to_string(), "traits 80% alike");
    }

    #[test]
    fn clear_non_duplicates() {
        let panel = vec![
            with_traits(persona(3, "C", "X", "Y"), &["early adopter", "pragmatic"]),
            with_traits(persona(4, "D", "X", "Y"), &["loner"]),
        ];
        let candidate = |traits: &[&str]| with_traits(persona(9, "Z", "X", "Y"), traits);
        // 2 of 3 alike: below 0.8.
        let close = candidate(&["early adopter", "pragmatic", "cyclist"]);
        assert_eq!(near_duplicate(&close, &panel), None);
        // One trait is too few to judge, on either side.
        assert_eq!(near_duplicate(&candidate(&["early adopter"]), &panel), None);
        assert_eq!(near_duplicate(&candidate(&["loner"]), &panel), None);
        // A different name and different traits.
        let builtin = builtin_panel();
        let stranger = with_traits(
            persona(
                99,
                "Zed Quill",
                "Lighthouse keeper",
                "Tórshavn, Faroe Islands",
            ),
            &["collects barometers", "writes letters by hand"],
        );
        assert_eq!(near_duplicate(&stranger, &builtin), None);
        // A panel member is not its own duplicate.
        for p in &builtin {
            assert_eq!(near_duplicate(p, &builtin), None, "{}", p.name);
        }
        assert_eq!(
            DuplicateReason::SimilarTraits(0.9).to_string(),
            "traits 90% alike"
        );
        assert_eq!(
            DuplicateReason::SimilarTraits(0.999).to_string(),
            "traits 99% alike"
        );
    }
}
