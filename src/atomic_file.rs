//! Crash-safe file replacement and safe reading, shared by every store
//! (personas, sessions, exports): a reader or a crash sees the old file or
//! the new one, never a truncated one; a FIFO, device or folder where a file
//! should be is an error, never a hang; a symlink is written through.
//!
//! Who may read what: [`write`] makes private files (0600, folders 0700),
//! for sessions and exports; [`write_keeping`] keeps an existing file's
//! mode, owner and group, for a panel file a team shares on purpose.

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, thiserror::Error)]
// The io error is named `error`, not `source`, so an error chain (`{:#}`)
// does not print the reason twice.
#[error("cannot write {path}: {error}")]
pub struct WriteError {
    pub path: PathBuf,
    pub error: io::Error,
}

/// Writes `text` to `path` as a private file (0600; missing folders 0700).
pub fn write(path: &Path, text: &str) -> Result<(), WriteError> {
    replace(path, text, Access::Private)
}

/// Writes `text` to `path`, keeping the mode, owner and group the file has;
/// a new file takes those of `like` when it exists (a panel's backup and
/// lock file follow the panel), else the process's default (the umask).
pub fn write_keeping(path: &Path, text: &str, like: &Path) -> Result<(), WriteError> {
    replace(path, text, Access::Keep(like))
}

enum Access<'a> {
    Private,
    Keep(&'a Path),
}

fn replace(path: &Path, text: &str, access: Access) -> Result<(), WriteError> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let err = |error| WriteError {
        path: path.to_path_buf(),
        error,
    };
    // A symlinked file is written through: the link stays, its target changes.
    let target = resolve_links(path).map_err(err)?;
    let existing = match fs::metadata(&target) {
        Ok(meta) if !meta.is_file() => return Err(err(not_a_file(&meta))),
        Ok(meta) => Some(meta),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(err(e)),
    };
    let dir = parent(&target);
    create_private_dir(dir).map_err(err)?;
    let template = match (&access, existing) {
        (Access::Private, _) => None,
        (Access::Keep(_), Some(meta)) => Some(meta),
        (Access::Keep(like), None) => fs::metadata(like).ok().filter(|m| m.is_file()),
    };
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(
        ".{name}.tmp-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let mut file = create_new(&tmp, matches!(access, Access::Private))?;
        if let Some(meta) = &template {
            copy_access(&file, meta)?;
        }
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        fs::rename(&tmp, &target)?;
        #[cfg(unix)]
        fs::File::open(dir)?.sync_all()?;
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map_err(err)
}

/// Reads a regular file as UTF-8 text. A FIFO, device or folder is an error
/// at once (it is opened without blocking, then checked), never a hang.
pub fn read_to_string(path: &Path) -> io::Result<String> {
    let mut options = fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK);
    }
    let mut file = options.open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(not_a_file(&meta));
    }
    let mut text = String::with_capacity(meta.len() as usize);
    file.read_to_string(&mut text)?;
    Ok(text)
}

/// Creates `dir` and its missing parents as private folders (0700).
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

/// Makes files and folders this process creates without an explicit mode
/// (logs, folders made by libraries) private: umask 077. Returns the umask
/// it replaced, which a new shared panel file still follows (see
/// [`write_keeping`]). Called once, at start, by the composition root.
pub fn private_by_default() {
    #[cfg(unix)]
    {
        // SAFETY: umask only swaps the process's file-creation mask.
        let previous = unsafe { libc::umask(0o077) };
        USER_UMASK.store(previous as u32, Ordering::Relaxed);
    }
}

/// The user's umask from before [`private_by_default`] (022 until then).
#[cfg(unix)]
static USER_UMASK: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0o022);

fn create_new(path: &Path, private: bool) -> io::Result<fs::File> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // A shared file with no template follows the user's own umask, not
        // the private one this process runs under.
        let mode = if private {
            0o600
        } else {
            0o666 & !USER_UMASK.load(Ordering::Relaxed)
        };
        options.mode(mode);
        let file = options.open(path)?;
        if !private {
            use std::os::unix::fs::PermissionsExt;
            file.set_permissions(fs::Permissions::from_mode(mode))?;
        }
        Ok(file)
    }
    #[cfg(not(unix))]
    {
        let _ = private;
        options.open(path)
    }
}

/// Gives `file` the mode, owner and group of `meta`, as far as this user
/// may: a group the user is not in, or another owner, is left as it is.
fn copy_access(file: &fs::File, meta: &fs::Metadata) -> io::Result<()> {
    file.set_permissions(meta.permissions())?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if std::os::unix::fs::fchown(file, Some(meta.uid()), Some(meta.gid())).is_err() {
            let _ = std::os::unix::fs::fchown(file, None, Some(meta.gid()));
        }
        // chown may clear set-id bits; the mode is set again after it.
        file.set_permissions(meta.permissions())?;
    }
    Ok(())
}

/// `path` with symlinks followed to the file they name (which may not exist
/// yet); a loop of links is an error.
pub fn resolve_links(path: &Path) -> io::Result<PathBuf> {
    let mut current = path.to_path_buf();
    for _ in 0..40 {
        match fs::symlink_metadata(&current) {
            Ok(meta) if meta.file_type().is_symlink() => {
                let target = fs::read_link(&current)?;
                current = parent(&current).join(target);
            }
            Ok(_) => return Ok(current),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(current),
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::other("too many levels of symbolic links"))
}

fn parent(path: &Path) -> &Path {
    path.parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

fn not_a_file(meta: &fs::Metadata) -> io::Error {
    let kind = file_kind(meta);
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("it is {kind}, not a regular file"),
    )
}

fn file_kind(meta: &fs::Metadata) -> &'static str {
    let t = meta.file_type();
    if t.is_dir() {
        return "a folder";
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return "a FIFO (named pipe)";
        }
        if t.is_char_device() || t.is_block_device() {
            return "a device";
        }
        if t.is_socket() {
            return "a socket";
        }
    }
    "not a regular file"
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(unix)]
    use std::os::unix::fs::PermissionsExt;

    #[cfg(unix)]
    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn replaces_the_file_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("a.json");
        write(&path, "one").unwrap();
        write(&path, "two").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "two");
        let names: Vec<_> = fs::read_dir(path.parent().unwrap()).unwrap().collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn a_failed_write_names_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("file");
        fs::write(&blocker, "x").unwrap();
        let e = write(&blocker.join("inside.json"), "x").unwrap_err();
        assert!(e.to_string().contains("inside.json"), "{e}");
    }

    #[cfg(unix)]
    #[test]
    fn private_files_are_0600_in_0700_folders() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sessions").join("deep").join("s.json");
        write(&path, "x").unwrap();
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().unwrap()), 0o700);
        assert_eq!(mode(&dir.path().join("sessions")), 0o700);
        // A private file stays private even if someone loosened it.
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        write(&path, "y").unwrap();
        assert_eq!(mode(&path), 0o600);
    }

    #[cfg(unix)]
    #[test]
    fn a_shared_file_keeps_its_mode_and_a_new_one_follows_its_model() {
        let dir = tempfile::tempdir().unwrap();
        let panel = dir.path().join("team.json");
        fs::write(&panel, "[]").unwrap();
        fs::set_permissions(&panel, fs::Permissions::from_mode(0o664)).unwrap();
        write_keeping(&panel, "[1]", &panel).unwrap();
        assert_eq!(mode(&panel), 0o664);
        assert_eq!(fs::read_to_string(&panel).unwrap(), "[1]");
        let backup = dir.path().join("team_backup.json");
        write_keeping(&backup, "[]", &panel).unwrap();
        assert_eq!(mode(&backup), 0o664);
        fs::set_permissions(&panel, fs::Permissions::from_mode(0o640)).unwrap();
        write_keeping(&backup, "[2]", &panel).unwrap();
        assert_eq!(mode(&backup), 0o664, "an existing file keeps its own");
    }

    #[cfg(unix)]
    #[test]
    fn a_symlink_is_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real").join("team.json");
        fs::create_dir_all(real.parent().unwrap()).unwrap();
        fs::write(&real, "old").unwrap();
        let link = dir.path().join("personas.json");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        write_keeping(&link, "new", &link).unwrap();
        assert!(
            fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(fs::read_to_string(&real).unwrap(), "new");
        // A relative link, to a file not there yet.
        let rel = dir.path().join("rel.json");
        std::os::unix::fs::symlink("real/other.json", &rel).unwrap();
        write(&rel, "made").unwrap();
        assert_eq!(
            fs::read_to_string(dir.path().join("real/other.json")).unwrap(),
            "made"
        );
        // A loop is an error, not a hang.
        let a = dir.path().join("a");
        std::os::unix::fs::symlink("b", &a).unwrap();
        std::os::unix::fs::symlink("a", dir.path().join("b")).unwrap();
        assert!(
            write(&a, "x")
                .unwrap_err()
                .to_string()
                .contains("symbolic links")
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_fifo_or_folder_in_place_is_an_error_not_a_hang() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("personas.json");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid C string and mode.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let e = read_to_string(&fifo).unwrap_err();
        assert!(e.to_string().contains("FIFO"), "{e}");
        let e = write(&fifo, "x").unwrap_err().to_string();
        assert!(e.contains("FIFO") && e.contains("personas.json"), "{e}");
        let folder = dir.path().join("folder.json");
        fs::create_dir(&folder).unwrap();
        assert!(
            write(&folder, "x")
                .unwrap_err()
                .to_string()
                .contains("folder")
        );
        assert!(read_to_string(&folder).is_err());
    }
}
