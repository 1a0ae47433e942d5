//! The report as Markdown, and the evidence lines the faces share.

use std::fmt::Write as _;

use super::{Report, ReportFormat, Stance};

/// The report as Markdown (for exports).
pub fn report_markdown(report: &Report) -> String {
    let mut md = String::new();
    let missing = "*(not given)*";
    if report.partial {
        md.push_str("> Partial report: the debate did not finish, or the reply was cut (see the notes).\n\n");
    }
    for note in &report.notes {
        let _ = writeln!(md, "> Note: {note}");
    }
    if !report.notes.is_empty() {
        md.push('\n');
    }
    if report.format == ReportFormat::PlainText {
        md.push_str(report.text.as_deref().unwrap_or(""));
        md.push('\n');
        return md;
    }
    let _ = writeln!(
        md,
        "### Summary\n\n{}\n",
        report.summary.as_deref().unwrap_or(missing)
    );
    if !report.personas.is_empty() {
        md.push_str(
            "### Personas\n\n| Persona | Stance | Interest | Reason |\n| --- | --- | --- | --- |\n",
        );
        for p in &report.personas {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} |",
                cell(p.name.as_deref().unwrap_or(missing)),
                p.stance.map(Stance::label).unwrap_or(missing),
                p.interest
                    .map(|i| format!("{i}/10"))
                    .unwrap_or_else(|| missing.into()),
                cell(p.reason.as_deref().unwrap_or(missing)),
            );
        }
        md.push('\n');
    }
    for (title, points) in [
        ("Top concerns", &report.concerns),
        ("Top requests", &report.requests),
    ] {
        if points.is_empty() {
            continue;
        }
        let _ = writeln!(md, "### {title}\n");
        for p in points {
            let _ = writeln!(
                md,
                "- {}{}",
                p.text,
                match evidence(p.count, &p.personas, &p.turns) {
                    e if e.is_empty() => e,
                    e => format!(" — {e}"),
                }
            );
        }
        md.push('\n');
    }
    if !report.insights.is_empty() {
        md.push_str("### Actionable insights\n\n");
        for (n, i) in report.insights.iter().enumerate() {
            let _ = write!(md, "{}. **{}**", n + 1, sentence(&i.change));
            if let Some(why) = &i.why {
                let _ = write!(md, " Why: {}", sentence(why));
            }
            if let Some(helps) = &i.helps {
                let _ = write!(md, " Helps: {}", sentence(helps));
            }
            if !i.turns.is_empty() {
                let _ = write!(md, " Evidence: {}.", turn_list(&i.turns));
            }
            md.push('\n');
        }
        md.push('\n');
    }
    md
}

/// "3 personas (Ana, Bo) · T2, T5", or "" when the model gave nothing.
pub fn evidence(count: Option<u32>, personas: &[String], turns: &[usize]) -> String {
    let mut parts = Vec::new();
    match (count, personas.is_empty()) {
        (Some(c), true) => parts.push(format!("{c} persona{}", if c == 1 { "" } else { "s" })),
        (Some(c), false) => parts.push(format!(
            "{c} persona{} ({})",
            if c == 1 { "" } else { "s" },
            personas.join(", ")
        )),
        (None, false) => parts.push(personas.join(", ")),
        (None, true) => {}
    }
    if !turns.is_empty() {
        parts.push(turn_list(turns));
    }
    parts.join(" · ")
}

pub fn turn_list(turns: &[usize]) -> String {
    turns
        .iter()
        .map(|t| format!("T{t}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Ends the text with a full stop unless it has its own punctuation.
fn sentence(text: &str) -> String {
    let text = text.trim();
    if text.ends_with(['.', '!', '?']) {
        text.to_string()
    } else {
        format!("{text}.")
    }
}

fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::report::parse_report;

    #[test]
    fn markdown_marks_missing_fields() {
        let r = parse_report(r#"{"personas":[{"name":"Ana"}]}"#, 1);
        let md = report_markdown(&r);
        assert!(
            md.contains("| Ana | *(not given)* | *(not given)* |"),
            "{md}"
        );
        assert!(md.contains("### Summary\n\n*(not given)*"), "{md}");
    }
}
