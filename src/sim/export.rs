//! A session written out for people (Markdown) or programs (JSON).

use std::path::{Path, PathBuf};

use super::session::{Session, session_markdown};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// Readable transcript and report.
    Md,
    /// The session file itself.
    Json,
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("{0}: the file name must end in .md or .json")]
    UnknownExtension(PathBuf),
    #[error(transparent)]
    Write(#[from] crate::atomic_file::WriteError),
}

impl ExportFormat {
    /// The names a user types (`--format md`).
    pub const NAMES: [&str; 2] = ["md", "json"];

    pub fn extension(self) -> &'static str {
        match self {
            ExportFormat::Md => "md",
            ExportFormat::Json => "json",
        }
    }

    /// From a name the user typed: md, markdown or json, any case.
    pub fn from_name(name: &str) -> Option<ExportFormat> {
        match name.to_ascii_lowercase().as_str() {
            "md" | "markdown" => Some(ExportFormat::Md),
            "json" => Some(ExportFormat::Json),
            _ => None,
        }
    }

    /// From a file name's extension (.md / .markdown / .json).
    pub fn from_path(path: &Path) -> Option<ExportFormat> {
        ExportFormat::from_name(path.extension()?.to_str()?)
    }
}

/// The session as text in `format`.
pub fn export_text(session: &Session, format: ExportFormat) -> String {
    match format {
        ExportFormat::Md => session_markdown(session),
        ExportFormat::Json => {
            let mut text = serde_json::to_string_pretty(session).expect("sessions serialise");
            text.push('\n');
            text
        }
    }
}

/// Writes a session atomically as Markdown or JSON, chosen by the file's
/// extension.
pub fn write_export(session: &Session, file: &Path) -> Result<(), ExportError> {
    let format = ExportFormat::from_path(file)
        .ok_or_else(|| ExportError::UnknownExtension(file.to_path_buf()))?;
    crate::atomic_file::write(file, &export_text(session, format))?;
    Ok(())
}

/// Writes the session into `dir` as `<id>.<ext>` and returns the path.
pub fn export_to_dir(
    session: &Session,
    dir: &Path,
    format: ExportFormat,
) -> Result<PathBuf, ExportError> {
    let path = dir.join(format!("{}.{}", session.id, format.extension()));
    crate::atomic_file::write(&path, &export_text(session, format))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_by_name_and_extension() {
        assert_eq!(ExportFormat::from_name("MD"), Some(ExportFormat::Md));
        assert_eq!(ExportFormat::from_name("markdown"), Some(ExportFormat::Md));
        assert_eq!(
            ExportFormat::from_path(Path::new("a.JSON")),
            Some(ExportFormat::Json)
        );
        assert_eq!(ExportFormat::from_path(Path::new("a.txt")), None);
        assert_eq!(ExportFormat::from_path(Path::new("noext")), None);
        for name in ExportFormat::NAMES {
            assert!(ExportFormat::from_name(name).is_some());
        }
    }
}
