//! Logs go to a file (never to the terminal the UI draws on), one line per
//! event with its component as the target (`store`, `debate`, `llm`,
//! `session`, `synth`, `metrics`). The live file is always `app.log`; at the
//! first write of a new day the old one becomes `app.log.YYYY-MM-DD`, and
//! only the newest `KEEP_DAYS` of those are kept.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use chrono::{Local, NaiveDate};
use tracing_subscriber::EnvFilter;

/// Rotated files kept beside the live one.
pub const KEEP_DAYS: usize = 14;

/// HTTP client crates are capped at INFO whatever the level: their DEBUG
/// and TRACE lines can carry request headers, and so the API key.
const QUIET_HTTP: &[&str] = &["hyper=info", "hyper_util=info", "reqwest=info", "h2=info"];

/// A file that rotates daily: writes go to `path`; when the day changes the
/// file is renamed to `path.YYYY-MM-DD` (the day it was written) first.
pub struct DailyFile {
    path: PathBuf,
    file: File,
    day: NaiveDate,
}

impl DailyFile {
    pub fn open(path: &Path) -> io::Result<DailyFile> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        // A file left from an earlier day rotates at the first write.
        let day = file
            .metadata()
            .and_then(|m| m.modified())
            .map(|t| chrono::DateTime::<Local>::from(t).date_naive())
            .unwrap_or_else(|_| Local::now().date_naive());
        Ok(DailyFile {
            path: path.to_path_buf(),
            file,
            day,
        })
    }

    /// Rotates if `today` is a new day.
    fn roll(&mut self, today: NaiveDate) -> io::Result<()> {
        if today == self.day {
            return Ok(());
        }
        let mut rotated = self.path.clone().into_os_string();
        rotated.push(format!(".{}", self.day.format("%Y-%m-%d")));
        if self.file.metadata()?.len() > 0 {
            fs::rename(&self.path, &rotated)?;
        }
        self.file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        self.day = today;
        self.prune();
        Ok(())
    }

    /// Deletes rotated files beyond the newest `KEEP_DAYS`.
    fn prune(&self) {
        let (Some(dir), Some(name)) = (self.path.parent(), self.path.file_name()) else {
            return;
        };
        let prefix = format!("{}.", name.to_string_lossy());
        let Ok(entries) = fs::read_dir(if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        }) else {
            return;
        };
        let mut rotated: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .map(|n| n.to_string_lossy())
                    .and_then(|n| n.strip_prefix(&prefix).map(str::to_string))
                    .is_some_and(|date| NaiveDate::parse_from_str(&date, "%Y-%m-%d").is_ok())
            })
            .collect();
        rotated.sort();
        let excess = rotated.len().saturating_sub(KEEP_DAYS);
        for old in &rotated[..excess] {
            let _ = fs::remove_file(old);
        }
    }

    fn write_on(&mut self, today: NaiveDate, buf: &[u8]) -> io::Result<usize> {
        self.roll(today)?;
        self.file.write(buf)
    }
}

impl Write for DailyFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_on(Local::now().date_naive(), buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// Starts file logging. The level is `level` (from `--log-level`), else
/// `RUST_LOG`, else `info`. Keep the guard alive until exit: it flushes.
pub fn init(
    path: &Path,
    level: Option<&str>,
) -> anyhow::Result<tracing_appender::non_blocking::WorkerGuard> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(dir)
        .with_context(|| format!("cannot create the log directory {}", dir.display()))?;
    let file = DailyFile::open(path)
        .with_context(|| format!("cannot open the log file {}", path.display()))?;
    let (writer, guard) = tracing_appender::non_blocking(file);
    let mut filter = match level {
        Some(level) => EnvFilter::new(level),
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
    };
    for directive in QUIET_HTTP {
        filter = filter.add_directive(directive.parse().expect("valid directive"));
    }
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(false)
        .init();
    Ok(guard)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, d).unwrap()
    }

    #[test]
    fn a_new_day_rotates_the_file_and_old_ones_are_pruned() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.log");
        let mut log = DailyFile::open(&path).unwrap();
        log.day = day(1);
        log.write_on(day(1), b"first day\n").unwrap();
        log.write_on(day(2), b"second day\n").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "second day\n");
        assert_eq!(
            fs::read_to_string(dir.path().join("app.log.2026-11-01")).unwrap(),
            "first day\n"
        );
        for d in 3..=20 {
            log.write_on(day(d), b"x\n").unwrap();
        }
        let rotated = fs::read_dir(dir.path())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with("app.log.")
            })
            .count();
        assert_eq!(rotated, KEEP_DAYS);
        assert!(!dir.path().join("app.log.2026-11-01").exists());
        assert!(dir.path().join("app.log.2026-11-19").exists());
    }
}
