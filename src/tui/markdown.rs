//! Markdown (what models write: bold, italics, inline code, headings,
//! lists, code blocks, tables, quotes) to ratatui lines wrapped to a width,
//! styled from the theme.
//!
//! pulldown-cmark parses (CommonMark with tables, strikethrough and task
//! lists); the drawing is here. Text still streaming in is parsed the same
//! way: an unclosed `**` or backtick is plain text until it closes, an
//! unclosed code fence is a code block to the end. A single newline stays
//! a line break, as models mean it. Callers cache the lines
//! (the conversation per turn), so a frame never parses.

use pulldown_cmark::{Event, HeadingLevel, Options, Parser, Tag, TagEnd};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

use crate::text::truncate;
use crate::tui::theme;

/// A run of text in one style; `"\n"` alone is a hard line break.
type Run = (String, Style);

/// `text` as lines at most `width` columns wide, each starting with
/// `indent`, in `base` style where Markdown says nothing else.
pub fn to_lines(text: &str, width: usize, base: Style, indent: &str) -> Vec<Line<'static>> {
    let mut r = Renderer {
        width: width.max(indent.width() + 4),
        base,
        indent: indent.to_string(),
        ..Default::default()
    };
    let options =
        Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TASKLISTS;
    for event in Parser::new_ext(text, options) {
        r.event(event);
    }
    r.flush();
    if r.table.is_some() {
        r.end_table();
    }
    r.out
}

#[derive(Default)]
struct Table {
    rows: Vec<Vec<String>>,
    head_rows: usize,
}

#[derive(Default)]
struct Renderer {
    width: usize,
    base: Style,
    indent: String,
    out: Vec<Line<'static>>,
    /// Inline text of the block being read.
    runs: Vec<Run>,
    /// Modifiers and styles of the open inline tags.
    styles: Vec<Style>,
    /// Open lists: the next number of an ordered one.
    lists: Vec<Option<u64>>,
    /// The bullet or number of the item just opened, for its first line.
    item_mark: Option<String>,
    quotes: usize,
    heading: Option<HeadingLevel>,
    code: Option<String>,
    table: Option<Table>,
    /// A blank line goes before the next block.
    gap: bool,
}

impl Renderer {
    fn style(&self) -> Style {
        self.styles
            .iter()
            .fold(self.base, |style, patch| style.patch(*patch))
    }

    fn push_text(&mut self, text: &str, style: Style) {
        if let Some(table) = &mut self.table {
            if let Some(cell) = table.rows.last_mut().and_then(|r| r.last_mut()) {
                cell.push_str(text);
            }
            return;
        }
        self.runs.push((text.to_string(), style));
    }

    /// Leading columns: the indent, quote bars and list nesting.
    fn prefix(&self, first_line: bool) -> Vec<Span<'static>> {
        let mut spans = vec![Span::raw(self.indent.clone())];
        for _ in 0..self.quotes {
            spans.push(Span::styled("▎ ", theme::md_mark()));
        }
        let depth = self.lists.len().saturating_sub(1);
        if !self.lists.is_empty() {
            let mark_width = self.item_mark_width();
            let pad = " ".repeat(depth * 2);
            match (&self.item_mark, first_line) {
                (Some(mark), true) => {
                    spans.push(Span::raw(pad));
                    spans.push(Span::styled(mark.clone(), theme::md_mark()));
                }
                _ => spans.push(Span::raw(format!("{pad}{}", " ".repeat(mark_width)))),
            }
        }
        spans
    }

    fn item_mark_width(&self) -> usize {
        self.item_mark.as_deref().map_or(2, UnicodeWidthStr::width)
    }

    fn block_start(&mut self) {
        self.flush();
        if self.gap && self.lists.is_empty() && !self.out.is_empty() {
            self.out.push(Line::default());
        }
        self.gap = false;
    }

    /// Wraps the inline text read so far into lines.
    fn flush(&mut self) {
        if self.runs.iter().all(|(t, _)| t.trim().is_empty()) {
            self.runs.clear();
            return;
        }
        let runs = std::mem::take(&mut self.runs);
        let first = self.prefix(true);
        let rest = self.prefix(false);
        self.out.extend(wrap_runs(&runs, self.width, first, rest));
        // The item's mark is on its first line; what follows is indented.
        if self.item_mark.is_some() {
            self.item_mark = Some(" ".repeat(self.item_mark_width()));
        }
    }

    fn event(&mut self, event: Event) {
        match event {
            Event::Start(tag) => self.start(tag),
            Event::End(tag) => self.end(tag),
            Event::Text(text) => {
                if let Some(code) = &mut self.code {
                    code.push_str(&text);
                } else {
                    let style = self.style();
                    self.push_text(&text, style);
                }
            }
            Event::Code(code) => {
                let style = self.style().patch(theme::md_code());
                self.push_text(&code, style);
            }
            Event::InlineMath(t)
            | Event::DisplayMath(t)
            | Event::Html(t)
            | Event::InlineHtml(t) => {
                let style = self.style();
                self.push_text(&t, style);
            }
            Event::FootnoteReference(name) => {
                let style = self.style();
                self.push_text(&format!("[^{name}]"), style);
            }
            // Models mean a line break by a newline: keep the reply's lines.
            Event::SoftBreak | Event::HardBreak => {
                if self.table.is_none() {
                    self.runs.push(("\n".into(), self.base));
                }
            }
            Event::Rule => {
                self.block_start();
                let used: usize = self.prefix(false).iter().map(Span::width).sum();
                let mut line = self.prefix(false);
                line.push(Span::styled(
                    "─".repeat(self.width.saturating_sub(used).min(40)),
                    theme::md_mark(),
                ));
                self.out.push(Line::from(line));
                self.gap = true;
            }
            Event::TaskListMarker(done) => {
                let style = self.style();
                self.push_text(if done { "[x] " } else { "[ ] " }, style);
            }
        }
    }

    fn start(&mut self, tag: Tag) {
        match tag {
            Tag::Paragraph => self.block_start_unless_item(),
            Tag::Heading { level, .. } => {
                self.block_start();
                self.heading = Some(level);
                self.styles.push(theme::md_heading(level as u8));
            }
            Tag::BlockQuote(_) => {
                self.block_start();
                self.quotes += 1;
            }
            Tag::CodeBlock(_) => {
                self.block_start_unless_item();
                self.code = Some(String::new());
            }
            Tag::List(start) => {
                if self.lists.is_empty() {
                    self.block_start();
                } else {
                    self.flush();
                }
                self.lists.push(start);
            }
            Tag::Item => {
                self.flush();
                let mark = match self.lists.last_mut() {
                    Some(Some(n)) => {
                        let mark = format!("{n}. ");
                        *n += 1;
                        mark
                    }
                    _ => "• ".to_string(),
                };
                self.item_mark = Some(mark);
            }
            Tag::Table(_) => {
                self.block_start();
                self.table = Some(Table::default());
            }
            Tag::TableHead | Tag::TableRow => {
                if let Some(table) = &mut self.table {
                    table.rows.push(Vec::new());
                }
            }
            Tag::TableCell => {
                if let Some(row) = self.table.as_mut().and_then(|t| t.rows.last_mut()) {
                    row.push(String::new());
                }
            }
            Tag::Emphasis => self
                .styles
                .push(Style::new().add_modifier(Modifier::ITALIC)),
            Tag::Strong => self.styles.push(Style::new().add_modifier(Modifier::BOLD)),
            Tag::Strikethrough => self
                .styles
                .push(Style::new().add_modifier(Modifier::CROSSED_OUT)),
            Tag::Link { .. } | Tag::Image { .. } => self.styles.push(theme::md_link()),
            Tag::Superscript | Tag::Subscript => self.styles.push(Style::new()),
            Tag::HtmlBlock
            | Tag::FootnoteDefinition(_)
            | Tag::DefinitionList
            | Tag::DefinitionListTitle
            | Tag::DefinitionListDefinition
            | Tag::MetadataBlock(_) => self.block_start_unless_item(),
        }
    }

    fn block_start_unless_item(&mut self) {
        if self.lists.is_empty() {
            self.block_start();
        } else {
            self.flush();
        }
    }

    fn end(&mut self, tag: TagEnd) {
        match tag {
            TagEnd::Paragraph
            | TagEnd::HtmlBlock
            | TagEnd::FootnoteDefinition
            | TagEnd::DefinitionList
            | TagEnd::DefinitionListTitle
            | TagEnd::DefinitionListDefinition
            | TagEnd::MetadataBlock(_) => {
                self.flush();
                self.gap = true;
            }
            TagEnd::Heading(_) => {
                self.flush();
                self.styles.pop();
                self.heading = None;
                self.gap = true;
            }
            TagEnd::BlockQuote(_) => {
                self.flush();
                self.quotes = self.quotes.saturating_sub(1);
                self.gap = true;
            }
            TagEnd::CodeBlock => self.end_code(),
            TagEnd::List(_) => {
                self.flush();
                self.lists.pop();
                self.item_mark = None;
                self.gap = true;
            }
            TagEnd::Item => {
                self.flush();
                self.item_mark = None;
            }
            TagEnd::Table => self.end_table(),
            TagEnd::TableHead => {
                if let Some(table) = &mut self.table {
                    table.head_rows = table.rows.len();
                }
            }
            TagEnd::TableRow | TagEnd::TableCell => {}
            TagEnd::Emphasis
            | TagEnd::Strong
            | TagEnd::Strikethrough
            | TagEnd::Link
            | TagEnd::Image
            | TagEnd::Superscript
            | TagEnd::Subscript => {
                self.styles.pop();
            }
        }
    }

    /// Code keeps its lines and spaces; a line too long is cut into pieces.
    fn end_code(&mut self) {
        let Some(code) = self.code.take() else {
            return;
        };
        let mut prefix = self.prefix(false);
        prefix.push(Span::styled("│ ", theme::md_mark()));
        let used: usize = prefix.iter().map(Span::width).sum();
        let room = self.width.saturating_sub(used).max(1);
        for line in code.trim_end_matches('\n').split('\n') {
            for piece in split_at_width(line, room) {
                let mut spans = prefix.clone();
                spans.push(Span::styled(piece, self.base.patch(theme::md_code())));
                self.out.push(Line::from(spans));
            }
        }
        self.gap = true;
    }

    /// Columns as wide as their widest cell, the widest cut first when the
    /// table does not fit.
    fn end_table(&mut self) {
        let Some(table) = self.table.take() else {
            return;
        };
        let columns = table.rows.iter().map(Vec::len).max().unwrap_or(0);
        if columns == 0 {
            return;
        }
        let mut widths = vec![1usize; columns];
        for row in &table.rows {
            for (i, cell) in row.iter().enumerate() {
                widths[i] = widths[i].max(cell.trim().width());
            }
        }
        let prefix = self.prefix(false);
        let used: usize = prefix.iter().map(Span::width).sum();
        let room = self.width.saturating_sub(used + 3 * (columns - 1));
        while widths.iter().sum::<usize>() > room {
            let (widest, &w) = widths
                .iter()
                .enumerate()
                .max_by_key(|(_, w)| **w)
                .expect("columns > 0");
            if w <= 3 {
                break;
            }
            widths[widest] = w - 1;
        }
        for (n, row) in table.rows.iter().enumerate() {
            let header = n < table.head_rows;
            let style = if header {
                self.base.add_modifier(Modifier::BOLD)
            } else {
                self.base
            };
            let mut spans = prefix.clone();
            for (i, width) in widths.iter().enumerate() {
                if i > 0 {
                    spans.push(Span::styled(" │ ", theme::md_mark()));
                }
                let cell = row.get(i).map_or("", |c| c.trim());
                let text = truncate(cell, *width);
                let pad = width.saturating_sub(text.width());
                spans.push(Span::styled(format!("{text}{}", " ".repeat(pad)), style));
            }
            self.out.push(Line::from(spans));
            if header && n + 1 == table.head_rows {
                let mut rule = prefix.clone();
                let cells: Vec<String> = widths.iter().map(|w| "─".repeat(*w)).collect();
                rule.push(Span::styled(cells.join("─┼─"), theme::md_mark()));
                self.out.push(Line::from(rule));
            }
        }
        self.gap = true;
    }
}

/// Cuts `text` into pieces at most `width` columns wide.
fn split_at_width(text: &str, width: usize) -> Vec<String> {
    let mut pieces = vec![String::new()];
    let mut used = 0;
    for c in text.chars() {
        let w = c.width().unwrap_or(0);
        if used + w > width && used > 0 {
            pieces.push(String::new());
            used = 0;
        }
        pieces.last_mut().expect("never empty").push(c);
        used += w;
    }
    pieces
}

/// Greedy word wrap of styled runs; whitespace between words is one space,
/// dropped at the start of a line; a word wider than the line is cut.
fn wrap_runs(
    runs: &[Run],
    width: usize,
    first: Vec<Span<'static>>,
    rest: Vec<Span<'static>>,
) -> Vec<Line<'static>> {
    let mut lines = Vec::new();
    let mut line = first;
    let mut used: usize = line.iter().map(Span::width).sum();
    let rest_width: usize = rest.iter().map(Span::width).sum();
    let mut at_start = true;
    let mut space: Option<Style> = None;
    fn push(line: &mut Vec<Span<'static>>, text: &str, style: Style) {
        match line.last_mut() {
            Some(last) if last.style == style && !last.content.is_empty() => {
                last.content.to_mut().push_str(text)
            }
            _ => line.push(Span::styled(text.to_string(), style)),
        }
    }
    let new_line = |line: &mut Vec<Span<'static>>, used: &mut usize, lines: &mut Vec<_>| {
        lines.push(Line::from(std::mem::replace(line, rest.clone())));
        *used = rest_width;
    };
    for (text, style) in runs {
        if text == "\n" {
            new_line(&mut line, &mut used, &mut lines);
            at_start = true;
            space = None;
            continue;
        }
        for (is_space, word) in words(text) {
            if is_space {
                if !at_start {
                    space = Some(*style);
                }
                continue;
            }
            let w = word.width();
            let gap = usize::from(space.is_some());
            if !at_start && used + gap + w > width {
                new_line(&mut line, &mut used, &mut lines);
            } else if let Some(space_style) = space {
                push(&mut line, " ", space_style);
                used += 1;
            }
            space = None;
            if used + w <= width {
                push(&mut line, word, *style);
                used += w;
            } else {
                // Wider than a whole line: cut it.
                let room = width.saturating_sub(used).max(1);
                let first_piece: String = take_width(word, room);
                push(&mut line, &first_piece, *style);
                let mut left = &word[first_piece.len()..];
                while !left.is_empty() {
                    new_line(&mut line, &mut used, &mut lines);
                    let room = width.saturating_sub(used).max(1);
                    let piece = take_width(left, room);
                    push(&mut line, &piece, *style);
                    used += piece.width();
                    left = &left[piece.len()..];
                }
            }
            at_start = false;
        }
    }
    lines.push(Line::from(line));
    lines
}

/// The longest start of `text` at most `width` columns wide (at least one
/// character).
fn take_width(text: &str, width: usize) -> String {
    let mut out = String::new();
    let mut used = 0;
    for c in text.chars() {
        let w = c.width().unwrap_or(0);
        if used + w > width && !out.is_empty() {
            break;
        }
        out.push(c);
        used += w;
    }
    out
}

/// Words and the whitespace between them, in order.
fn words(text: &str) -> impl Iterator<Item = (bool, &str)> {
    let mut rest = text;
    std::iter::from_fn(move || {
        let first = rest.chars().next()?;
        let is_space = first.is_whitespace();
        let end = rest
            .char_indices()
            .find(|(_, c)| c.is_whitespace() != is_space)
            .map_or(rest.len(), |(i, _)| i);
        let (piece, tail) = rest.split_at(end);
        rest = tail;
        Some((is_space, piece))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(lines: &[Line]) -> Vec<String> {
        lines.iter().map(|l| l.to_string()).collect()
    }

    fn find<'a>(lines: &'a [Line], word: &str) -> &'a Span<'a> {
        lines
            .iter()
            .flat_map(|l| l.spans.iter())
            .find(|s| s.content.contains(word))
            .unwrap_or_else(|| panic!("{word} not in {:?}", text(lines)))
    }

    #[test]
    fn inline_styles_drop_their_marks() {
        let lines = to_lines("Plain **bold** and *it* and `code`.", 80, Style::new(), "");
        assert_eq!(text(&lines), ["Plain bold and it and code."]);
        assert!(
            find(&lines, "bold")
                .style
                .add_modifier
                .contains(Modifier::BOLD)
        );
        assert!(
            find(&lines, "it")
                .style
                .add_modifier
                .contains(Modifier::ITALIC)
        );
        assert_eq!(find(&lines, "code").style.fg, theme::md_code().fg);
    }

    #[test]
    fn an_unclosed_mark_while_streaming_is_plain_text() {
        let lines = to_lines("I **strongly dis", 80, Style::new(), "  ");
        assert_eq!(text(&lines), ["  I **strongly dis"]);
        let lines = to_lines("```rust\nfn main() {", 80, Style::new(), "");
        assert_eq!(text(&lines), ["│ fn main() {"]);
    }

    #[test]
    fn lists_wrap_under_their_text_and_number_themselves() {
        let md = "- one two three four five six\n- b\n  - nested\n\n1. first\n2. second";
        let lines = to_lines(md, 16, Style::new(), "");
        assert_eq!(
            text(&lines),
            [
                "• one two three",
                "  four five six",
                "• b",
                "  • nested",
                "",
                "1. first",
                "2. second",
            ]
        );
    }

    #[test]
    fn headings_paragraphs_and_code_blocks_are_separated() {
        let md = "# Title\nSome text.\nSame paragraph.\n\n```\nlet x = 1;\n```\nAfter.";
        let lines = to_lines(md, 40, Style::new(), "");
        assert_eq!(
            text(&lines),
            [
                "Title",
                "",
                "Some text.",
                "Same paragraph.",
                "",
                "│ let x = 1;",
                "",
                "After."
            ]
        );
        assert!(
            find(&lines, "Title")
                .style
                .add_modifier
                .contains(Modifier::BOLD)
        );
    }

    #[test]
    fn tables_align_and_shrink_to_the_width() {
        let md = "| Persona | Stance |\n|---|---|\n| Maria | for |\n| Kwame Mensah | against |";
        let lines = to_lines(md, 80, Style::new(), "");
        assert_eq!(
            text(&lines),
            [
                "Persona      │ Stance ",
                "─────────────┼────────",
                "Maria        │ for    ",
                "Kwame Mensah │ against",
            ]
        );
        let narrow = to_lines(md, 15, Style::new(), "");
        assert!(
            narrow.iter().all(|l| l.width() <= 15),
            "{:?}",
            text(&narrow)
        );
    }

    #[test]
    fn long_words_are_cut_and_no_line_exceeds_the_width() {
        let md = format!("short {} end", "x".repeat(50));
        let lines = to_lines(&md, 20, Style::new(), "  ");
        assert!(lines.iter().all(|l| l.width() <= 20), "{:?}", text(&lines));
        assert_eq!(text(&lines).concat().matches('x').count(), 50);
    }

    #[test]
    fn quotes_and_hard_breaks() {
        let lines = to_lines("> quoted  \nnext\nthird", 40, Style::new(), "");
        assert_eq!(text(&lines), ["▎ quoted", "▎ next", "▎ third"]);
    }
}
