//! Personas for the unit tests of this module.

use super::{Persona, TechProficiency};

/// A valid persona with the given id and texts, Medium, no traits, no age.
pub fn persona(id: u32, name: &str, occupation: &str, location: &str) -> Persona {
    Persona {
        id,
        name: name.into(),
        occupation: occupation.into(),
        location: location.into(),
        tech_proficiency: TechProficiency::Medium,
        behavioral_traits: Vec::new(),
        age: None,
        extra: Default::default(),
    }
}

pub fn with_traits(mut p: Persona, traits: &[&str]) -> Persona {
    p.behavioral_traits = traits.iter().map(|t| t.to_string()).collect();
    p
}

/// A valid panel with ids 1..=n.
pub fn panel(n: u32) -> Vec<Persona> {
    (1..=n)
        .map(|id| Persona {
            id,
            name: format!("Person {id}"),
            occupation: "Tester".into(),
            location: "Lisbon, Portugal".into(),
            tech_proficiency: TechProficiency::Medium,
            behavioral_traits: vec!["curious".into(); id as usize % 5],
            age: Some(30),
            extra: Default::default(),
        })
        .collect()
}
