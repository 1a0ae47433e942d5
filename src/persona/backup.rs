//! Manual backups and restore: the seed's "Manual Backup Trigger"
//! (timestamped copies beside the panel file), listing them, and replacing
//! the panel file with a backup while keeping the replaced one.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::panel_to_json;
use super::store::{
    FileState, PanelLock, StoreError, StorePaths, free_path, read_panel_file, read_panel_text,
    read_state, write_beside,
};

/// The timestamp in manual backup and replaced-file names.
const STAMP: &str = "%Y%m%d-%H%M%S";

/// `personas` for `personas.json`: what the backup names start with.
fn stem(paths: &StorePaths) -> String {
    paths
        .main
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "personas".into())
}

/// The seed's "Manual Backup Trigger": copies the panel file, which must be
/// a valid panel, to `NAME_backup_YYYYMMDD-HHMMSS.json` beside it (with
/// `-1`, `-2`… when that name is taken) and returns the new file's path.
/// The rolling `NAME_backup.json` is not touched.
pub fn backup_now(paths: &StorePaths) -> Result<PathBuf, StoreError> {
    let (_, text) = read_panel_text(&paths.main)?;
    let stamp = chrono::Local::now().format(STAMP);
    let stem = stem(paths);
    let dest = free_path(|n| {
        paths
            .main
            .with_file_name(format!("{stem}_backup_{stamp}{n}.json"))
    });
    write_beside(paths, &dest, &text)?;
    tracing::info!(target: "store", path = %dest.display(), "manual backup written");
    Ok(dest)
}

/// The timestamped backups beside the panel file, newest first (by the time
/// in their names, then by their `-N` suffix).
pub fn timestamped_backups(paths: &StorePaths) -> Result<Vec<PathBuf>, StoreError> {
    let dir = paths
        .main
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => {
            return Err(StoreError::Read {
                path: dir.to_path_buf(),
                error,
            });
        }
    };
    let prefix = format!("{}_backup_", stem(paths));
    let mut found: Vec<((String, u32), PathBuf)> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let key = backup_key(name.strip_prefix(&prefix)?.strip_suffix(".json")?)?;
            Some((key, e.path()))
        })
        .collect();
    found.sort_by(|a, b| b.0.cmp(&a.0));
    Ok(found.into_iter().map(|(_, path)| path).collect())
}

/// "20250102-030405" or "20250102-030405-2" → (stamp, n), for sorting.
fn backup_key(rest: &str) -> Option<(String, u32)> {
    let (stamp, n) = match rest.get(15..) {
        Some("") => (rest, 0),
        Some(suffix) => (&rest[..15], suffix.strip_prefix('-')?.parse().ok()?),
        None => return None,
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let (date, time) = stamp.split_once('-')?;
    (date.len() == 8 && time.len() == 6 && digits(date) && digits(time))
        .then(|| (stamp.to_string(), n))
}

/// What `restore` restores when no file is named: the newest timestamped
/// backup, else the rolling backup; `None` when there is neither.
pub fn default_restore_source(paths: &StorePaths) -> Result<Option<PathBuf>, StoreError> {
    if let Some(newest) = timestamped_backups(paths)?.into_iter().next() {
        return Ok(Some(newest));
    }
    Ok(paths.backup.exists().then(|| paths.backup.clone()))
}

/// What [`restore_from`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct RestoreOutcome {
    /// Personas now in the panel file.
    pub restored: usize,
    /// How many personas the replaced file held; `None` when it was missing
    /// or not a valid panel.
    pub replaced: Option<usize>,
    /// Where the replaced file was kept (`NAME.json.replaced-<stamp>`);
    /// `None` when there was no panel file.
    pub kept_as: Option<PathBuf>,
}

/// Replaces the panel file with the panel in `from`, which must be valid
/// (nothing is touched otherwise). The replaced file is copied, byte for
/// byte even if corrupt, to `NAME.json.replaced-YYYYMMDD-HHMMSS` first; if it
/// was a valid panel it also becomes the rolling backup, as after any save,
/// so restoring the rolling backup twice swaps back. Done under the panel
/// lock; a running TUI sees the restored panel through its watcher.
pub fn restore_from(paths: &StorePaths, from: &Path) -> Result<RestoreOutcome, StoreError> {
    let panel = read_panel_file(from)?;
    let _lock = PanelLock::acquire(paths)?;
    let current = read_state(&paths.main)?;
    let kept_as = if matches!(current, FileState::Missing) {
        None
    } else {
        let stamp = chrono::Local::now().format(STAMP);
        let aside =
            free_path(|n| PathBuf::from(format!("{}.replaced-{stamp}{n}", paths.main.display())));
        fs::copy(&paths.main, &aside).map_err(|error| StoreError::Write {
            path: aside.clone(),
            error,
        })?;
        Some(aside)
    };
    let replaced = match &current {
        FileState::Good(old, text) => {
            write_beside(paths, &paths.backup, text)?;
            Some(old.len())
        }
        _ => None,
    };
    write_beside(paths, &paths.main, &panel_to_json(&panel))?;
    tracing::info!(target: "store", from = %from.display(), count = panel.len(), "panel restored");
    Ok(RestoreOutcome {
        restored: panel.len(),
        replaced,
        kept_as,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::persona::store::{LoadSource, load};
    use crate::persona::testing::panel;
    use crate::persona::{builtin_panel, parse_panel};

    fn paths(dir: &tempfile::TempDir) -> StorePaths {
        StorePaths::for_file(dir.path().join("personas.json"))
    }

    fn names_in(dir: &tempfile::TempDir) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn manual_backups_are_timestamped_copies_and_never_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let p = paths(&dir);
        load(&p).unwrap();
        crate::persona::store::tests::put(&p, panel(3));
        let first = backup_now(&p).unwrap();
        let second = backup_now(&p).unwrap();
        assert_ne!(first, second);
        for path in [&first, &second] {
            assert_eq!(path.parent(), Some(dir.path()));
            assert_eq!(
                fs::read_to_string(path).unwrap(),
                fs::read_to_string(&p.main).unwrap()
            );
        }
        let name = first.file_name().unwrap().to_string_lossy().into_owned();
        let rest = name
            .strip_prefix("personas_backup_")
            .and_then(|r| r.strip_suffix(".json"))
            .unwrap();
        assert!(backup_key(rest).is_some(), "{name}");
        // The rolling backup is not touched.
        assert_eq!(
            parse_panel(&fs::read_to_string(&p.backup).unwrap()).unwrap(),
            builtin_panel()
        );
        let listed = timestamped_backups(&p).unwrap();
        assert_eq!(listed.len(), 2);
        assert!(listed.contains(&first) && listed.contains(&second));
    }

    #[test]
    fn backups_sort_newest_first_and_ignore_other_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = StorePaths::for_file(dir.path().join("team.json"));
        for name in [
            "team_backup_20240101-000000.json",
            "team_backup_20250101-000000-2.json",
            "team_backup_20250101-000000.json",
            "team_backup_20250101-000000-10.json",
            "team_backup.json",
            "team_backup_2025.json",
            "team_backup_20250101-00000x.json",
            "personas_backup_20990101-000000.json",
            "team_backup_20260101-000000.json.tmp",
        ] {
            fs::write(dir.path().join(name), "[]").unwrap();
        }
        let names: Vec<String> = timestamped_backups(&p)
            .unwrap()
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            [
                "team_backup_20250101-000000-10.json",
                "team_backup_20250101-000000-2.json",
                "team_backup_20250101-000000.json",
                "team_backup_20240101-000000.json",
            ]
        );
        assert_eq!(
            default_restore_source(&p).unwrap(),
            Some(dir.path().join("team_backup_20250101-000000-10.json"))
        );
    }

    #[test]
    fn the_default_restore_source_falls_back_to_the_rolling_backup() {
        let dir = tempfile::tempdir().unwrap();
        let p = paths(&dir);
        assert_eq!(default_restore_source(&p).unwrap(), None);
        let missing = StorePaths::for_file(dir.path().join("no/such/dir/personas.json"));
        assert_eq!(default_restore_source(&missing).unwrap(), None);
        fs::write(&p.backup, "[]").unwrap();
        assert_eq!(default_restore_source(&p).unwrap(), Some(p.backup.clone()));
    }

    #[test]
    fn backup_of_a_missing_or_corrupt_panel_is_refused_with_the_file_named() {
        let dir = tempfile::tempdir().unwrap();
        let p = paths(&dir);
        let err = backup_now(&p).unwrap_err().to_string();
        assert!(
            err.contains("personas.json") && err.contains("no such file"),
            "{err}"
        );
        fs::write(&p.main, "[{").unwrap();
        let err = backup_now(&p).unwrap_err().to_string();
        assert!(
            err.contains("personas.json is not a valid persona panel"),
            "{err}"
        );
        assert_eq!(names_in(&dir), ["personas.json"]);
    }

    #[test]
    fn restore_keeps_the_replaced_file_and_makes_it_the_backup() {
        let dir = tempfile::tempdir().unwrap();
        let p = paths(&dir);
        load(&p).unwrap();
        crate::persona::store::tests::put(&p, panel(3));
        let old_text = fs::read_to_string(&p.main).unwrap();
        let source = dir.path().join("elsewhere.json");
        fs::write(
            &source,
            format!("{{\"personas\": {}}}", panel_to_json(&panel(5))),
        )
        .unwrap();
        let outcome = restore_from(&p, &source).unwrap();
        assert_eq!((outcome.restored, outcome.replaced), (5, Some(3)));
        let kept = outcome.kept_as.unwrap();
        assert!(
            kept.to_string_lossy().contains("personas.json.replaced-"),
            "{kept:?}"
        );
        assert_eq!(fs::read_to_string(&kept).unwrap(), old_text);
        assert_eq!(fs::read_to_string(&p.backup).unwrap(), old_text);
        assert_eq!(
            fs::read_to_string(&p.main).unwrap(),
            panel_to_json(&panel(5))
        );
        let loaded = load(&p).unwrap();
        assert_eq!(
            (loaded.source, loaded.personas),
            (LoadSource::File, panel(5))
        );
        // Restoring the rolling backup swaps back.
        restore_from(&p, &p.backup).unwrap();
        assert_eq!(read_panel_file(&p.main).unwrap(), panel(3));
        assert_eq!(read_panel_file(&p.backup).unwrap(), panel(5));
    }

    #[test]
    fn restore_from_an_invalid_file_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let p = paths(&dir);
        write_beside(&p, &p.main, &panel_to_json(&panel(2))).unwrap();
        let bad = dir.path().join("bad.json");
        fs::write(&bad, r#"[{"id": 1, "name": ""}]"#).unwrap();
        let err = restore_from(&p, &bad).unwrap_err().to_string();
        assert!(
            err.contains("bad.json is not a valid persona panel") && err.contains("record 1"),
            "{err}"
        );
        let err = restore_from(&p, &dir.path().join("gone.json"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("gone.json"), "{err}");
        assert_eq!(names_in(&dir), ["bad.json", "personas.json"]);
    }

    #[test]
    fn restore_over_a_corrupt_or_missing_panel() {
        let dir = tempfile::tempdir().unwrap();
        let p = paths(&dir);
        let source = dir.path().join("good.json");
        fs::write(&source, panel_to_json(&panel(2))).unwrap();
        let outcome = restore_from(&p, &source).unwrap();
        assert_eq!(
            outcome,
            RestoreOutcome {
                restored: 2,
                replaced: None,
                kept_as: None
            }
        );
        fs::write(&p.main, "garbage").unwrap();
        let outcome = restore_from(&p, &source).unwrap();
        assert_eq!(outcome.replaced, None);
        assert_eq!(
            fs::read_to_string(outcome.kept_as.unwrap()).unwrap(),
            "garbage"
        );
        assert!(
            !p.backup.exists(),
            "a corrupt file never becomes the backup"
        );
        assert_eq!(read_panel_file(&p.main).unwrap(), panel(2));
    }
}
