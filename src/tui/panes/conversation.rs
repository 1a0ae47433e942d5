//! The conversation view. Each entry caches its wrapped lines for the current
//! width and a prefix sum of entry heights locates the first visible line by
//! binary search, so a frame costs what is visible, not the whole debate.
//! Only entries whose text changed (in practice the streaming tail) are
//! re-wrapped. Turns are Markdown: each is parsed when it is wrapped, never
//! per frame; `m` shows the raw text instead.

use ratatui::buffer::Buffer;
use ratatui::layout::{Margin, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{
    Block, Borders, Scrollbar, ScrollbarOrientation, ScrollbarState, StatefulWidget, Widget,
};

use unicode_width::UnicodeWidthStr;

use crate::llm::Usage;
use crate::text::truncate;
use crate::tui::theme;

#[derive(Debug, Clone, PartialEq)]
pub enum EntryKind {
    /// A persona's turn.
    Turn {
        speaker: String,
        subtitle: String,
        round: u32,
        color: Color,
        streaming: bool,
        /// Cut short by an error or a cancel.
        cut: bool,
        /// Ended at its token limit: the text stops short.
        cut_off: bool,
        /// Tokens of this turn.
        tokens: Option<Usage>,
        /// The tokens are an estimate (the server sent no usage).
        estimated: bool,
    },
    /// A line from the app itself (debate header, cancel note).
    Info,
    Error,
}

#[derive(Debug, Clone)]
pub struct Entry {
    pub kind: EntryKind,
    pub text: String,
    wrapped: Option<Vec<Line<'static>>>,
}

impl Entry {
    pub fn new(kind: EntryKind, text: impl Into<String>) -> Self {
        Entry {
            kind,
            text: text.into(),
            wrapped: None,
        }
    }

    fn wrap(&self, width: u16, raw: bool) -> Vec<Line<'static>> {
        let body_width = (width as usize).saturating_sub(2).max(1);
        let mut lines = Vec::new();
        let body_style = match &self.kind {
            EntryKind::Turn { .. } => Style::new(),
            EntryKind::Info => theme::info(),
            EntryKind::Error => theme::error(),
        };
        if let EntryKind::Turn {
            speaker,
            subtitle,
            round,
            color,
            cut,
            tokens,
            estimated,
            ..
        } = &self.kind
        {
            // Name, round and tokens always show; the occupation gets what
            // is left.
            let name = truncate(speaker, width as usize);
            let round = format!(" · round {round}");
            let cut_note = if *cut { " (cut off)" } else { "" };
            let approx = if *estimated { "≈" } else { "" };
            let tokens_note = tokens
                .map(|t| {
                    format!(
                        " · {approx}{}↑ {approx}{}↓",
                        t.prompt_tokens, t.completion_tokens
                    )
                })
                .unwrap_or_default();
            let room = (width as usize).saturating_sub(
                name.width() + round.width() + cut_note.width() + tokens_note.width() + 3,
            );
            let mut header = vec![
                Span::styled(name, theme::speaker(*color)),
                Span::styled(round, theme::dim()),
            ];
            if room > 1 && !subtitle.is_empty() {
                header.push(Span::styled(
                    format!(" · {}", truncate(subtitle, room)),
                    theme::dim(),
                ));
            }
            if *cut {
                header.push(Span::styled(cut_note, theme::error()));
            }
            let used: usize = header.iter().map(|s| s.width()).sum();
            if used + tokens_note.width() <= width as usize {
                header.push(Span::styled(tokens_note, theme::dim()));
            }
            lines.push(Line::from(header));
        }
        let indent = if matches!(self.kind, EntryKind::Turn { .. }) {
            "  "
        } else {
            ""
        };
        let text = if self.text.trim().is_empty() {
            match &self.kind {
                EntryKind::Turn {
                    streaming: true, ..
                } => "thinking…",
                _ => "",
            }
        } else {
            self.text.trim_start()
        };
        let placeholder = self.text.trim().is_empty();
        let markdown = !raw && !placeholder && matches!(self.kind, EntryKind::Turn { .. });
        if markdown {
            lines.extend(crate::tui::markdown::to_lines(
                text,
                width as usize,
                body_style,
                indent,
            ));
        }
        for paragraph in text.split('\n').filter(|_| !markdown) {
            if paragraph.trim().is_empty() {
                if !lines.is_empty() && !placeholder {
                    lines.push(Line::default());
                }
                continue;
            }
            for piece in textwrap::wrap(paragraph, body_width) {
                let style = if placeholder {
                    theme::dim()
                } else {
                    body_style
                };
                lines.push(Line::from(vec![
                    Span::raw(indent),
                    Span::styled(piece.into_owned(), style),
                ]));
            }
        }
        if let EntryKind::Turn {
            streaming: true, ..
        } = self.kind
            && let Some(last) = lines.last_mut()
        {
            last.spans.push(Span::styled("▌", theme::caret()));
        }
        // A turn that ended at its token limit says so where its text stops.
        if let EntryKind::Turn {
            cut_off: true,
            streaming: false,
            ..
        } = self.kind
        {
            let mark = crate::sim::debate::CUT_OFF_MARK;
            match lines.last_mut() {
                Some(last) if !placeholder && last.width() + mark.width() <= width as usize => {
                    last.spans.push(Span::styled(mark, theme::warn()));
                }
                _ => lines.push(Line::from(vec![
                    Span::raw(indent),
                    Span::styled(mark.trim_start(), theme::warn()),
                ])),
            }
        }
        lines.push(Line::default());
        lines
    }
}

#[derive(Debug, Default)]
pub struct ConversationView {
    entries: Vec<Entry>,
    /// Width the caches were built for.
    width: u16,
    /// prefix[i] = total height of entries[..i]; len = entries.len() + 1
    /// once laid out.
    prefix: Vec<usize>,
    /// Entries from here on need layout.
    stale_from: usize,
    /// Following the tail (new tokens scroll the view) or reading history.
    follow: bool,
    /// An entry to bring to the top at the next render (once laid out).
    jump: Option<usize>,
    /// The entry last jumped to, its header shown reversed.
    highlight: Option<usize>,
    /// Turns as their raw text, not rendered Markdown.
    raw: bool,
    top: usize,
    viewport: usize,
}

impl ConversationView {
    pub fn new() -> Self {
        ConversationView {
            follow: true,
            prefix: vec![0],
            ..Default::default()
        }
    }

    /// Empties the view (to show another session).
    pub fn clear(&mut self) {
        *self = ConversationView::new();
    }

    /// Scrolls so that this entry is at the top (applied at the next render).
    pub fn jump_to(&mut self, index: usize) {
        self.jump = Some(index);
        self.highlight = Some(index);
        self.follow = false;
    }

    pub fn push(&mut self, entry: Entry) -> usize {
        self.entries.push(entry);
        self.entries.len() - 1
    }

    pub fn append_text(&mut self, index: usize, text: &str) {
        self.entries[index].text.push_str(text);
        self.touch(index);
    }

    /// Changes an entry's kind (e.g. streaming finished) and re-wraps it.
    pub fn update_kind(&mut self, index: usize, f: impl FnOnce(&mut EntryKind)) {
        f(&mut self.entries[index].kind);
        self.touch(index);
    }

    fn touch(&mut self, index: usize) {
        self.entries[index].wrapped = None;
        self.stale_from = self.stale_from.min(index);
    }

    /// Raw text or rendered Markdown: every entry is wrapped again.
    pub fn set_raw(&mut self, raw: bool) {
        if self.raw != raw {
            self.raw = raw;
            self.width = 0;
        }
    }

    /// The entry `y` copies: the one last jumped to (from the report) while
    /// its header is in view, else the one at the bottom of the view.
    pub fn focus_entry(&self) -> Option<usize> {
        let in_view = |index: usize| {
            self.prefix
                .get(index)
                .is_some_and(|&start| start >= self.top && start < self.top + self.viewport)
        };
        self.highlight
            .filter(|&i| in_view(i))
            .or_else(|| self.bottom_entry())
    }

    pub fn raw(&self) -> bool {
        self.raw
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The entry whose lines are at the bottom of the view after the last
    /// render (the newest one while following).
    pub fn bottom_entry(&self) -> Option<usize> {
        if self.entries.is_empty() {
            return None;
        }
        let bottom = (self.top + self.viewport).min(self.total_height());
        let index = self
            .prefix
            .partition_point(|&p| p < bottom)
            .saturating_sub(1);
        Some(index.min(self.entries.len() - 1))
    }

    pub fn is_following(&self) -> bool {
        self.follow
    }

    /// Lines above the viewport, after the last render.
    pub fn top(&self) -> usize {
        self.top
    }

    fn max_top(&self) -> usize {
        self.total_height().saturating_sub(self.viewport)
    }

    pub fn total_height(&self) -> usize {
        *self.prefix.last().unwrap_or(&0)
    }

    pub fn scroll_up(&mut self, lines: usize) {
        if self.follow {
            self.top = self.max_top();
        }
        self.follow = false;
        self.top = self.top.saturating_sub(lines);
    }

    pub fn scroll_down(&mut self, lines: usize) {
        if self.follow {
            return;
        }
        self.top = (self.top + lines).min(self.max_top());
        if self.top >= self.max_top() {
            self.follow = true;
        }
    }

    pub fn page_up(&mut self) {
        self.scroll_up(self.viewport.saturating_sub(1).max(1));
    }

    pub fn page_down(&mut self) {
        self.scroll_down(self.viewport.saturating_sub(1).max(1));
    }

    pub fn scroll_to_top(&mut self) {
        self.follow = false;
        self.top = 0;
    }

    pub fn follow_tail(&mut self) {
        self.follow = true;
    }

    /// Brings entry wrapping and the height prefix sums up to date.
    fn layout(&mut self, width: u16) {
        if width != self.width {
            self.width = width;
            for e in &mut self.entries {
                e.wrapped = None;
            }
            self.stale_from = 0;
        }
        self.prefix.truncate(self.stale_from + 1);
        for i in self.stale_from..self.entries.len() {
            let entry = &mut self.entries[i];
            if entry.wrapped.is_none() {
                entry.wrapped = Some(entry.wrap(width, self.raw));
            }
            let height = entry.wrapped.as_ref().map_or(0, Vec::len);
            self.prefix.push(self.prefix[i] + height);
        }
        self.stale_from = self.entries.len();
    }

    pub fn render(&mut self, area: Rect, buf: &mut Buffer, focused: bool) {
        let mut title = vec![Span::raw(" Conversation ")];
        if !self.follow {
            title.push(Span::styled(" ↑ scrolled · End follows ", theme::key()));
        }
        let block = Block::default()
            .borders(Borders::ALL)
            .border_style(theme::border(focused))
            .title(Line::from(title));
        let inner = block.inner(area);
        block.render(area, buf);
        if inner.width < 3 || inner.height == 0 {
            return;
        }
        // Leave the last column for the scrollbar.
        let text_width = inner.width - 1;
        self.layout(text_width);
        self.viewport = inner.height as usize;
        if let Some(index) = self.jump.take()
            && let Some(&top) = self.prefix.get(index)
        {
            self.top = top;
        }
        if self.follow {
            self.top = self.max_top();
        }
        self.top = self.top.min(self.max_top());

        if self.entries.is_empty() {
            let hint = "Select personas, describe a feature, then press F5 (or Ctrl-R) to start the debate.";
            let lines = textwrap::wrap(hint, text_width as usize);
            for (row, l) in lines.iter().enumerate().take(inner.height as usize) {
                buf.set_string(inner.x, inner.y + row as u16, l, theme::dim());
            }
            return;
        }

        // First entry whose lines reach the top of the view.
        let first = self
            .prefix
            .partition_point(|&p| p <= self.top)
            .saturating_sub(1);
        let mut skip = self.top - self.prefix[first];
        let mut row = 0usize;
        'entries: for (index, entry) in self.entries.iter().enumerate().skip(first) {
            let lines = entry.wrapped.as_deref().unwrap_or(&[]);
            for (n, line) in lines.iter().enumerate().skip(skip) {
                if row >= self.viewport {
                    break 'entries;
                }
                let y = inner.y + row as u16;
                buf.set_line(inner.x, y, line, text_width);
                if n == 0 && self.highlight == Some(index) {
                    let header = Rect::new(inner.x, y, text_width, 1);
                    buf.set_style(header, Style::new().add_modifier(Modifier::REVERSED));
                }
                row += 1;
            }
            skip = 0;
        }

        let max_top = self.max_top();
        if max_top > 0 {
            let mut state = ScrollbarState::new(max_top).position(self.top);
            Scrollbar::new(ScrollbarOrientation::VerticalRight).render(
                area.inner(Margin {
                    vertical: 1,
                    horizontal: 0,
                }),
                buf,
                &mut state,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn turn(text: &str) -> Entry {
        Entry::new(
            EntryKind::Turn {
                speaker: "Ana".into(),
                subtitle: "Nurse".into(),
                round: 1,
                color: Color::Cyan,
                streaming: false,
                cut: false,
                cut_off: false,
                tokens: None,
                estimated: false,
            },
            text,
        )
    }

    fn rendered(view: &mut ConversationView, w: u16, h: u16) -> Vec<String> {
        let area = Rect::new(0, 0, w, h);
        let mut buf = Buffer::empty(area);
        view.render(area, &mut buf, false);
        (0..h)
            .map(|y| {
                (0..w)
                    .map(|x| buf[(x, y)].symbol().to_string())
                    .collect::<String>()
            })
            .collect()
    }

    #[test]
    fn follows_the_tail_and_keeps_position_when_scrolled_back() {
        let mut view = ConversationView::new();
        for i in 0..30 {
            view.push(turn(&format!("message number {i}")));
        }
        let screen = rendered(&mut view, 40, 10);
        assert!(screen.iter().any(|l| l.contains("message number 29")));
        view.page_up();
        let top_before = view.top();
        let idx = view.push(turn("new arrival"));
        view.append_text(idx, " grows");
        let screen = rendered(&mut view, 40, 10);
        assert_eq!(view.top(), top_before, "reading position is kept");
        assert!(!screen.iter().any(|l| l.contains("new arrival")));
        assert!(screen[0].contains("scrolled"));
        view.page_down();
        view.page_down();
        view.page_down();
        let screen = rendered(&mut view, 40, 10);
        assert!(view.is_following());
        assert!(screen.iter().any(|l| l.contains("new arrival grows")));
    }

    #[test]
    fn only_changed_entries_are_rewrapped() {
        let mut view = ConversationView::new();
        for i in 0..5 {
            view.push(turn(&format!("m{i}")));
        }
        rendered(&mut view, 30, 10);
        assert!(view.entries.iter().all(|e| e.wrapped.is_some()));
        view.append_text(4, " more");
        assert!(view.entries[..4].iter().all(|e| e.wrapped.is_some()));
        assert!(view.entries[4].wrapped.is_none());
        rendered(&mut view, 30, 10);
        assert_eq!(view.prefix.len(), 6);
        assert_eq!(view.total_height(), 5 * 3);
    }

    #[test]
    fn jump_brings_an_entry_to_the_top_and_stops_following() {
        let mut view = ConversationView::new();
        for i in 0..30 {
            view.push(turn(&format!("message number {i}")));
        }
        rendered(&mut view, 40, 10);
        view.jump_to(5);
        let screen = rendered(&mut view, 40, 10);
        assert!(!view.is_following());
        assert!(screen[1].starts_with("│Ana"), "{screen:?}");
        assert!(screen[2].contains("message number 5"), "{screen:?}");
    }

    #[test]
    fn the_focus_entry_is_the_jumped_one_while_in_view_else_the_bottom_one() {
        let mut view = ConversationView::new();
        for i in 0..30 {
            view.push(turn(&format!("message number {i}")));
        }
        rendered(&mut view, 40, 10);
        assert_eq!(view.focus_entry(), Some(29), "following: the newest");
        view.jump_to(5);
        rendered(&mut view, 40, 10);
        assert_eq!(view.focus_entry(), Some(5));
        view.page_down();
        view.page_down();
        rendered(&mut view, 40, 10);
        // 3 lines a turn, 8 rows, pages of 7: the top is at line 15 + 14;
        // the bottom row is line 36, turn 12's header. Turn 5 is out of view.
        assert_eq!(view.top(), 29);
        assert_eq!(view.focus_entry(), Some(12));
    }

    #[test]
    fn markdown_turns_render_and_raw_shows_the_marks() {
        let mut view = ConversationView::new();
        view.push(turn("**bold** and `code`"));
        let screen = rendered(&mut view, 40, 6);
        assert!(screen[2].contains("  bold and code"), "{screen:?}");
        view.set_raw(true);
        let screen = rendered(&mut view, 40, 6);
        assert!(screen[2].contains("  **bold** and `code`"), "{screen:?}");
    }

    #[test]
    fn long_text_wraps_to_width_and_resize_rewraps() {
        let mut view = ConversationView::new();
        view.push(turn(&"word ".repeat(40)));
        rendered(&mut view, 30, 40);
        let narrow = view.total_height();
        rendered(&mut view, 60, 40);
        assert!(view.total_height() < narrow);
    }
}
