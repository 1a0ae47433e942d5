//! What a call costs: OpenAI list prices and the estimate from usage.

/// OpenAI list prices in US dollars per million tokens (input, output), for
/// the cost estimate. Dated snapshots ("gpt-4o-mini-2024-07-18") match by
/// prefix, the longest first. Unknown models show tokens only.
pub const PRICES_PER_MILLION: &[(&str, f64, f64)] = &[
    ("gpt-4o-mini", 0.15, 0.60),
    ("gpt-4o", 2.50, 10.00),
    ("gpt-4.1-nano", 0.10, 0.40),
    ("gpt-4.1-mini", 0.40, 1.60),
    ("gpt-4.1", 2.00, 8.00),
    ("gpt-5-nano", 0.05, 0.40),
    ("gpt-5-mini", 0.25, 2.00),
    ("gpt-5", 1.25, 10.00),
    ("o4-mini", 1.10, 4.40),
    ("o3-mini", 1.10, 4.40),
    ("gpt-3.5-turbo", 0.50, 1.50),
];

/// Estimated cost in dollars, for a known OpenAI model.
pub fn estimate_cost(model: &str, usage: crate::llm::Usage) -> Option<f64> {
    let (_, input, output) = PRICES_PER_MILLION
        .iter()
        .filter(|(name, _, _)| model.starts_with(name))
        .max_by_key(|(name, _, _)| name.len())?;
    Some((usage.prompt_tokens as f64 * input + usage.completion_tokens as f64 * output) / 1e6)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn cost_uses_the_longest_matching_model_name() {
        let usage = crate::llm::Usage {
            prompt_tokens: 1_000_000,
            completion_tokens: 1_000_000,
        };
        assert_eq!(estimate_cost("gpt-4o-mini-2024-07-18", usage), Some(0.75));
        assert_eq!(estimate_cost("gpt-4o", usage), Some(12.5));
        assert_eq!(estimate_cost("llama3.2", usage), None);
    }
}
