//! The one place that touches the real terminal: raw mode, the alternate
//! screen, paste, mouse and keyboard flags on the way in; all of it undone on
//! the way out, on error, on panic and on SIGHUP/SIGTERM/SIGINT.
//!
//! The terminal can also go away under the app (a dropped SSH connection, a
//! killed tmux): the first write that fails marks it lost. From then on
//! writes to it are dropped, and stdout and stderr, where they were that
//! terminal, point at /dev/null, so no later print (ratatui's `Terminal`
//! drop, the default panic hook, a logging crate) can fail and panic.

use std::fmt;
use std::io::{self, IsTerminal, Stdout, Write};
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;
use crossterm::event::{
    DisableBracketedPaste, DisableMouseCapture, EnableBracketedPaste, EnableMouseCapture,
    KeyboardEnhancementFlags, PopKeyboardEnhancementFlags, PushKeyboardEnhancementFlags,
};
use crossterm::terminal::{
    BeginSynchronizedUpdate, EndSynchronizedUpdate, EnterAlternateScreen, LeaveAlternateScreen,
};
use crossterm::{cursor, execute};
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;

use super::app::App;
use super::ui;

static KEYBOARD_ENHANCED: AtomicBool = AtomicBool::new(false);
static MOUSE_CAPTURED: AtomicBool = AtomicBool::new(false);
/// A write to the terminal failed: it is gone.
static LOST: AtomicBool = AtomicBool::new(false);
/// Whether stdout / stderr were the terminal when the app took it.
static STDOUT_TTY: AtomicBool = AtomicBool::new(false);
static STDERR_TTY: AtomicBool = AtomicBool::new(false);

/// Why the TUI ended; [`Ending::exit_code`] is the process's exit code.
#[derive(Debug)]
pub enum Ending {
    /// `q`, Ctrl-C (a key in raw mode) and the like.
    Quit,
    Signal(QuitSignal),
    /// Writing to or reading from the terminal failed: it is gone.
    TerminalLost(io::Error),
}

impl Ending {
    /// 0 for a quit; 128 + the signal's number for a signal (129 SIGHUP,
    /// 130 SIGINT, 143 SIGTERM), as a shell reports a signal death; 74
    /// (`EX_IOERR`) when the terminal failed.
    pub fn exit_code(&self) -> u8 {
        match self {
            Ending::Quit => 0,
            Ending::Signal(QuitSignal::Hangup) => 129,
            Ending::Signal(QuitSignal::Interrupt) => 130,
            Ending::Signal(QuitSignal::Terminate) => 143,
            Ending::TerminalLost(_) => 74,
        }
    }
}

impl fmt::Display for Ending {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ending::Quit => f.write_str("quit"),
            Ending::Signal(QuitSignal::Hangup) => f.write_str("SIGHUP: the terminal hung up"),
            Ending::Signal(QuitSignal::Interrupt) => f.write_str("SIGINT"),
            Ending::Signal(QuitSignal::Terminate) => f.write_str("SIGTERM"),
            Ending::TerminalLost(e) => write!(f, "the terminal is gone: {e}"),
        }
    }
}

/// Whether the terminal has been found gone.
pub fn terminal_lost() -> bool {
    LOST.load(Ordering::SeqCst)
}

/// Marks the terminal gone (once): writes to it are dropped from now on,
/// and stdout and stderr, if they were the terminal, go to /dev/null.
pub fn mark_lost() {
    if LOST.swap(true, Ordering::SeqCst) {
        return;
    }
    #[cfg(unix)]
    {
        use std::os::fd::AsRawFd;
        let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") else {
            return;
        };
        for (fd, was_tty) in [(1, &STDOUT_TTY), (2, &STDERR_TTY)] {
            if was_tty.load(Ordering::SeqCst) {
                // SAFETY: dup2 on descriptors this process owns; the old
                // description (the dead terminal) is closed for `fd` only.
                unsafe { libc::dup2(null.as_raw_fd(), fd) };
            }
        }
    }
}

/// Stdout as the terminal: the first failed write marks the terminal lost
/// (and still fails, so the loop learns of it); later writes succeed
/// without doing anything.
pub struct TtyOut(Stdout);

impl TtyOut {
    fn new() -> TtyOut {
        TtyOut(io::stdout())
    }

    fn checked<T>(result: io::Result<T>) -> io::Result<T> {
        if let Err(e) = &result
            && e.kind() != io::ErrorKind::Interrupted
        {
            mark_lost();
        }
        result
    }
}

impl Write for TtyOut {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if terminal_lost() {
            return Ok(buf.len());
        }
        Self::checked(self.0.write(buf))
    }

    fn flush(&mut self) -> io::Result<()> {
        if terminal_lost() {
            return Ok(());
        }
        Self::checked(self.0.flush())
    }
}

/// One frame: the screen, then the theme's last pass (NO_COLOR drops the
/// colours left). Tests draw with this too.
pub fn draw_frame(frame: &mut ratatui::Frame, app: &mut App) {
    ui::draw(frame, app);
    super::theme::finish_frame(frame.buffer_mut());
}

/// Owns the terminal; restores it on drop, and a panic hook restores it on
/// panic before the message is printed.
pub struct TerminalGuard {
    terminal: Terminal<CrosstermBackend<TtyOut>>,
}

impl TerminalGuard {
    pub fn enter(mouse: bool) -> anyhow::Result<Self> {
        STDOUT_TTY.store(io::stdout().is_terminal(), Ordering::SeqCst);
        STDERR_TTY.store(io::stderr().is_terminal(), Ordering::SeqCst);
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore_terminal();
            tracing::error!(target: "app", "panic: {info}");
            // The default hook ignores a failed write to stderr; and once
            // the terminal is lost, stderr is /dev/null.
            previous(info);
        }));
        crossterm::terminal::enable_raw_mode().context("cannot switch the terminal to raw mode")?;
        let mut stdout = TtyOut::new();
        let setup = (|| -> io::Result<()> {
            execute!(
                stdout,
                EnterAlternateScreen,
                EnableBracketedPaste,
                cursor::Hide
            )?;
            if mouse {
                execute!(stdout, EnableMouseCapture)?;
                MOUSE_CAPTURED.store(true, Ordering::SeqCst);
            }
            // Lets terminals with the kitty protocol report Ctrl-Enter.
            if matches!(
                crossterm::terminal::supports_keyboard_enhancement(),
                Ok(true)
            ) {
                execute!(
                    stdout,
                    PushKeyboardEnhancementFlags(
                        KeyboardEnhancementFlags::DISAMBIGUATE_ESCAPE_CODES
                    )
                )?;
                KEYBOARD_ENHANCED.store(true, Ordering::SeqCst);
            }
            Ok(())
        })();
        if let Err(e) = setup {
            restore_terminal();
            return Err(e).context("cannot set up the terminal");
        }
        // crossterm honours NO_COLOR by writing every colour change as an
        // empty SGR, `ESC [ m`, which resets all attributes: the reverse
        // video of the cursor and the selection vanished with the colours.
        // The theme drops colours itself (see theme.rs), so crossterm is told
        // to write them as they come (only resets are left).
        crossterm::style::force_color_output(true);
        let terminal =
            Terminal::new(CrosstermBackend::new(stdout)).inspect_err(|_| restore_terminal())?;
        Ok(TerminalGuard { terminal })
    }

    /// Draws one frame inside a synchronized update, so terminals never
    /// show a half-drawn frame. An error means the terminal is gone.
    pub fn draw(&mut self, app: &mut App) -> io::Result<()> {
        execute!(self.terminal.backend_mut(), BeginSynchronizedUpdate)?;
        let result = self
            .terminal
            .draw(|frame| draw_frame(frame, app))
            .map(|_| ());
        execute!(self.terminal.backend_mut(), EndSynchronizedUpdate)?;
        result
    }

    /// Writes bytes for the terminal itself (an OSC 52 copy) between
    /// frames, through the handle frames go through.
    pub fn write_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        let out = self.terminal.backend_mut();
        out.write_all(bytes)?;
        out.flush()
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore_terminal();
    }
}

/// Safe to call more than once; writes nothing to a lost terminal (and a
/// write that fails marks it lost), so it cannot hang or fail on a dead one.
fn restore_terminal() {
    let mut stdout = TtyOut::new();
    if KEYBOARD_ENHANCED.swap(false, Ordering::SeqCst) {
        let _ = execute!(stdout, PopKeyboardEnhancementFlags);
    }
    if MOUSE_CAPTURED.swap(false, Ordering::SeqCst) {
        let _ = execute!(stdout, DisableMouseCapture);
    }
    let _ = execute!(
        stdout,
        DisableBracketedPaste,
        LeaveAlternateScreen,
        cursor::Show
    );
    let _ = stdout.flush();
    // Fails at once (EIO) on a hung-up terminal.
    let _ = crossterm::terminal::disable_raw_mode();
}

/// A signal that ends the app like `q`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuitSignal {
    /// The terminal went away (e.g. a dropped SSH connection).
    Hangup,
    Interrupt,
    Terminate,
}

/// The signals that end the app like `q`: SIGHUP, SIGINT (raw mode turns
/// Ctrl-C into a key, so only `kill -INT` sends it) and SIGTERM. Elsewhere,
/// none.
pub struct QuitSignals {
    #[cfg(unix)]
    hangup: tokio::signal::unix::Signal,
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl QuitSignals {
    pub fn new() -> io::Result<QuitSignals> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(QuitSignals {
                hangup: signal(SignalKind::hangup())?,
                interrupt: signal(SignalKind::interrupt())?,
                terminate: signal(SignalKind::terminate())?,
            })
        }
        #[cfg(not(unix))]
        Ok(QuitSignals {})
    }

    pub async fn recv(&mut self) -> QuitSignal {
        #[cfg(unix)]
        tokio::select! {
            _ = self.hangup.recv() => QuitSignal::Hangup,
            _ = self.interrupt.recv() => QuitSignal::Interrupt,
            _ = self.terminate.recv() => QuitSignal::Terminate,
        }
        #[cfg(not(unix))]
        std::future::pending().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_say_why_the_app_ended() {
        let codes: Vec<u8> = [
            Ending::Quit,
            Ending::Signal(QuitSignal::Hangup),
            Ending::Signal(QuitSignal::Interrupt),
            Ending::Signal(QuitSignal::Terminate),
            Ending::TerminalLost(io::ErrorKind::BrokenPipe.into()),
        ]
        .iter()
        .map(Ending::exit_code)
        .collect();
        assert_eq!(codes, [0, 129, 130, 143, 74]);
        let lost = Ending::TerminalLost(io::Error::from_raw_os_error(5));
        assert!(lost.to_string().starts_with("the terminal is gone: "));
    }
}
