//! What the panel holds, read-only: `personas list`, `show`, `search` and
//! `stats` (the aligned table and the text stats with bars).

use std::io::{self, Write};

use unicode_width::UnicodeWidthStr;

use super::{load, position};
use crate::cli::write_table;
use crate::persona::Persona;
use crate::persona::search::{self, Query};
use crate::persona::stats::{self, Count, PanelStats};
use crate::persona::store::StorePaths;
use crate::text::truncate;

/// `personas list`: an aligned table.
pub fn table(panel: &[Persona], out: &mut impl Write) -> io::Result<()> {
    let rows: Vec<[String; 5]> = panel
        .iter()
        .map(|p| {
            [
                p.id.to_string(),
                p.name.clone(),
                p.occupation.clone(),
                p.location.clone(),
                p.tech_proficiency.to_string(),
            ]
        })
        .collect();
    write_table(out, ["ID", "NAME", "OCCUPATION", "LOCATION", "TECH"], &rows)
}

/// `personas show ID`: the persona as pretty JSON.
pub(super) fn show(id: u32, paths: &StorePaths, out: &mut impl Write) -> anyhow::Result<()> {
    let loaded = load(paths)?;
    let persona = &loaded.personas[position(&loaded.personas, id, "")?];
    writeln!(out, "{}", serde_json::to_string_pretty(persona)?)?;
    Ok(())
}

/// `personas search WORDS…`: the matching personas as a table, or a note
/// on stderr when none matches.
pub(super) fn search(
    words: &[String],
    paths: &StorePaths,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let loaded = load(paths)?;
    let text = query_text(words);
    let found: Vec<Persona> = search::filter(&loaded.personas, &Query::parse(&text))
        .into_iter()
        .map(|i| loaded.personas[i].clone())
        .collect();
    if found.is_empty() {
        eprintln!("no persona matches {text:?} (of {})", loaded.personas.len());
    } else {
        table(&found, out)?;
    }
    Ok(())
}

/// `personas stats [--json]`.
pub(super) fn stats(json: bool, paths: &StorePaths, out: &mut impl Write) -> anyhow::Result<()> {
    let stats = stats::stats(&load(paths)?.personas);
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&stats)?)?;
    } else {
        write!(out, "{}", stats_text(&stats))?;
    }
    Ok(())
}

/// The words of `search` as one query, as if typed into the TUI's search
/// box: `search nurse low` and `search "nurse low"` are the same query; a
/// phrase is written with its own quotes (`search '"ICU nurse"'`).
fn query_text(words: &[String]) -> String {
    words.join(" ")
}

const BAR_WIDTH: usize = 20;
const LABEL_WIDTH: usize = 28;
/// Rows shown per list in the text stats.
const TOP: usize = 10;

/// `personas stats`: readable text with small bars.
pub fn stats_text(stats: &PanelStats) -> String {
    let mut text = format!(
        "{} persona{}\n",
        stats.total,
        if stats.total == 1 { "" } else { "s" }
    );
    if stats.total == 0 {
        return text;
    }
    // Bars are shares of the panel; `distinct` is how many labels there are
    // in all (`rows` may be cut already).
    let total = stats.total;
    let section = |text: &mut String, title: String, rows: &[Count], distinct: usize| {
        text.push_str(&format!("\n{title}\n"));
        let shown = &rows[..rows.len().min(TOP)];
        let width = shown
            .iter()
            .map(|c| truncate(&c.name, LABEL_WIDTH).width())
            .max()
            .unwrap_or(0);
        for row in shown {
            let label = truncate(&row.name, LABEL_WIDTH);
            let pad = " ".repeat(width - label.width());
            text.push_str(&format!(
                "  {label}{pad}  {} {:>3}  {:>3.0}%\n",
                bar(row.count, total),
                row.count,
                row.count as f64 * 100.0 / total as f64
            ));
        }
        if distinct > shown.len() {
            text.push_str(&format!("  … {} more\n", distinct - shown.len()));
        }
    };
    section(
        &mut text,
        "Tech proficiency".into(),
        &stats.by_proficiency,
        stats.by_proficiency.len(),
    );
    section(
        &mut text,
        format!("Countries ({})", stats.by_country.len()),
        &stats.by_country,
        stats.by_country.len(),
    );
    section(
        &mut text,
        format!("Occupations ({})", stats.by_occupation.len()),
        &stats.by_occupation,
        stats.by_occupation.len(),
    );
    section(
        &mut text,
        format!("Traits ({} distinct)", stats.distinct_traits),
        &stats.top_traits,
        stats.distinct_traits,
    );
    match &stats.ages {
        Some(ages) => {
            let title = if ages.unknown > 0 {
                format!("Ages ({} without an age)", ages.unknown)
            } else {
                "Ages".into()
            };
            section(&mut text, title, &ages.buckets, ages.buckets.len());
        }
        None => text.push_str("\nAges: none given\n"),
    }
    let d = &stats.diversity;
    text.push_str(&format!(
        "\nDiversity\n  {} countries, {} occupations, proficiency evenness {:.2} (0 = all one level, 1 = equal thirds)\n",
        d.countries, d.occupations, d.proficiency_evenness
    ));
    text
}

/// `count` of `total` as a bar of [`BAR_WIDTH`] cells (at least one cell
/// when `count` is not 0).
fn bar(count: usize, total: usize) -> String {
    let filled = (count * BAR_WIDTH + total / 2)
        .checked_div(total)
        .unwrap_or(0)
        .clamp(usize::from(count > 0 && total > 0), BAR_WIDTH);
    format!("{}{}", "█".repeat(filled), "·".repeat(BAR_WIDTH - filled))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::persona::builtin_panel;
    use crate::persona::stats::stats;
    use std::collections::HashSet;

    #[test]
    fn list_is_an_aligned_table() {
        let mut out = Vec::new();
        table(&builtin_panel()[..2], &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("ID  NAME"));
        let col = lines[0].find("OCCUPATION").unwrap();
        assert_eq!(&lines[1][col..col + 3], "ICU");
    }

    #[test]
    fn search_words_are_one_query() {
        let words = |w: &[&str]| query_text(&w.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(words(&["nurse", "low"]), "nurse low");
        assert_eq!(words(&["nurse low"]), "nurse low");
        assert_eq!(words(&["\"ICU nurse\"", "prof:m"]), "\"ICU nurse\" prof:m");
        let panel = builtin_panel();
        let found = |text: &str| search::filter(&panel, &Query::parse(text)).len();
        assert_eq!(found(&words(&["\"ICU nurse\""])), 1);
        assert_eq!(
            found(&words(&["\"nurse ICU\""])),
            0,
            "a phrase keeps its order"
        );
    }

    #[test]
    fn stats_text_has_bars_and_every_section() {
        let text = stats_text(&stats(&builtin_panel()));
        assert!(text.starts_with("14 personas\n"), "{text}");
        for title in [
            "Tech proficiency",
            "Countries (",
            "Occupations (",
            "Traits (",
            "Ages",
            "Diversity",
        ] {
            assert!(text.contains(&format!("\n{title}")), "{title}: {text}");
        }
        let low = text
            .lines()
            .find(|l| l.trim_start().starts_with("Low "))
            .unwrap();
        assert!(low.contains('█') && low.contains('%'), "{low}");
        // Rows of a section line their bars up.
        let levels: Vec<&str> = text
            .lines()
            .filter(|l| {
                ["  Low ", "  Medium ", "  High "]
                    .iter()
                    .any(|p| l.starts_with(p))
            })
            .collect();
        assert_eq!(levels.len(), 3);
        let columns: HashSet<usize> = levels.iter().map(|l| l.find(['█', '·']).unwrap()).collect();
        assert_eq!(columns.len(), 1, "{levels:?}");
        assert_eq!(stats_text(&stats(&[])), "0 personas\n");
    }

    #[test]
    fn bars_and_labels_fit() {
        assert_eq!(bar(0, 4), "·".repeat(BAR_WIDTH));
        assert_eq!(bar(4, 4), "█".repeat(BAR_WIDTH));
        assert_eq!(bar(1, 1000).chars().filter(|&c| c == '█').count(), 1);
        assert_eq!(
            bar(1, 2).chars().filter(|&c| c == '█').count(),
            BAR_WIDTH / 2
        );
        assert_eq!(truncate("short", 10), "short");
        let cut = truncate("東京都の看護師と医師", 9);
        assert!(cut.width() <= 9 && cut.ends_with('…'), "{cut}");
    }
}
