//! Names a GGUF model for the status line: by its file's name when that
//! names the model ("SmolLM2-135M-Instruct.Q4_1", which also says the
//! quantisation), else by the name in its header (`general.name`), so a
//! file saved as `model.gguf` does not show as "model". Only the metadata
//! before the tensors is read.

use std::io::{BufReader, Read};
use std::path::Path;

/// The header holds the tokenizer's vocabulary too; a name past this many
/// bytes is not worth the read.
const MAX_HEADER: u64 = 16 << 20;

/// What the status line calls the model at `path`.
pub fn display_name(path: &Path) -> String {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let Some(header) = read_header(path) else {
        return if stem.is_empty() {
            "model".into()
        } else {
            stem
        };
    };
    let names_it = |word: &Option<String>| {
        word.as_deref()
            .is_some_and(|w| !w.is_empty() && stem.to_lowercase().contains(&w.to_lowercase()))
    };
    match header.name {
        Some(name) if !names_it(&header.basename) => name,
        _ if stem.is_empty() => "model".into(),
        _ => stem,
    }
}

/// The naming keys of a GGUF header.
#[derive(Debug, Default, PartialEq)]
struct Header {
    /// `general.name`: "Meta Llama 3.1 8B Instruct".
    name: Option<String>,
    /// `general.basename`: "smollm2".
    basename: Option<String>,
}

fn read_header(path: &Path) -> Option<Header> {
    let file = std::fs::File::open(path).ok()?;
    read_names(&mut BufReader::new(file).take(MAX_HEADER))
}

fn read_names(r: &mut impl Read) -> Option<Header> {
    let mut magic = [0; 4];
    r.read_exact(&mut magic).ok()?;
    if &magic != b"GGUF" {
        return None;
    }
    let version = u32_of(r)?;
    if version < 2 {
        return None;
    }
    let _tensors = u64_of(r)?;
    let entries = u64_of(r)?;
    let mut header = Header::default();
    for _ in 0..entries {
        let key = string_of(r)?;
        let kind = u32_of(r)?;
        let slot = match key.as_str() {
            "general.name" => &mut header.name,
            "general.basename" => &mut header.basename,
            _ => {
                skip_value(r, kind)?;
                continue;
            }
        };
        if kind != STRING {
            skip_value(r, kind)?;
            continue;
        }
        *slot = Some(string_of(r)?.trim().to_string()).filter(|n| !n.is_empty());
        if header.name.is_some() && header.basename.is_some() {
            break;
        }
    }
    Some(header)
}

const STRING: u32 = 8;
const ARRAY: u32 = 9;

fn u32_of(r: &mut impl Read) -> Option<u32> {
    let mut b = [0; 4];
    r.read_exact(&mut b).ok()?;
    Some(u32::from_le_bytes(b))
}

fn u64_of(r: &mut impl Read) -> Option<u64> {
    let mut b = [0; 8];
    r.read_exact(&mut b).ok()?;
    Some(u64::from_le_bytes(b))
}

fn string_of(r: &mut impl Read) -> Option<String> {
    let len = u64_of(r)?;
    if len > MAX_HEADER {
        return None;
    }
    let mut bytes = Vec::with_capacity(len as usize);
    r.take(len).read_to_end(&mut bytes).ok()?;
    (bytes.len() as u64 == len).then(|| String::from_utf8_lossy(&bytes).into_owned())
}

/// The size of a fixed-size value type, `None` for strings and arrays.
fn fixed_size(kind: u32) -> Option<u64> {
    match kind {
        0 | 1 | 7 => Some(1),
        2 | 3 => Some(2),
        4..=6 => Some(4),
        10..=12 => Some(8),
        _ => None,
    }
}

fn skip(r: &mut impl Read, n: u64) -> Option<()> {
    (std::io::copy(&mut r.take(n), &mut std::io::sink()).ok()? == n).then_some(())
}

fn skip_value(r: &mut impl Read, kind: u32) -> Option<()> {
    match kind {
        STRING => {
            let len = u64_of(r)?;
            skip(r, len)
        }
        ARRAY => {
            let item = u32_of(r)?;
            let count = u64_of(r)?;
            match fixed_size(item) {
                Some(size) => skip(r, size.checked_mul(count)?),
                None => (0..count).try_for_each(|_| skip_value(r, item)),
            }
        }
        _ => skip(r, fixed_size(kind)?),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn string(s: &str) -> Vec<u8> {
        let mut v = (s.len() as u64).to_le_bytes().to_vec();
        v.extend(s.as_bytes());
        v
    }

    fn header(entries: &[(&str, u32, Vec<u8>)]) -> Vec<u8> {
        let mut v = b"GGUF".to_vec();
        v.extend(3u32.to_le_bytes());
        v.extend(0u64.to_le_bytes());
        v.extend((entries.len() as u64).to_le_bytes());
        for (key, kind, value) in entries {
            v.extend(string(key));
            v.extend(kind.to_le_bytes());
            v.extend(value);
        }
        v
    }

    #[test]
    fn names_are_found_after_values_of_every_shape() {
        let mut tokens = STRING.to_le_bytes().to_vec();
        tokens.extend(2u64.to_le_bytes());
        tokens.extend(string("<s>"));
        tokens.extend(string("hello"));
        let mut scores = 6u32.to_le_bytes().to_vec();
        scores.extend(3u64.to_le_bytes());
        scores.extend([0; 12]);
        let bytes = header(&[
            ("general.architecture", STRING, string("llama")),
            ("llama.context_length", 4, 8192u32.to_le_bytes().to_vec()),
            ("general.flag", 7, vec![1]),
            ("tokenizer.ggml.tokens", ARRAY, tokens),
            ("tokenizer.ggml.scores", ARRAY, scores),
            ("general.size", 10, 7u64.to_le_bytes().to_vec()),
            (
                "general.name",
                STRING,
                string(" Meta Llama 3.1 8B Instruct "),
            ),
            ("general.basename", STRING, string("Meta-Llama-3.1")),
        ]);
        let dir = tempfile::tempdir().unwrap();
        // A file called "model": named by its header.
        let generic = dir.path().join("model.gguf");
        std::fs::write(&generic, &bytes).unwrap();
        assert_eq!(display_name(&generic), "Meta Llama 3.1 8B Instruct");
        // A file whose name names the model (and its quantisation): kept.
        let named = dir.path().join("Meta-Llama-3.1-8B-Instruct-Q4_K_M.gguf");
        std::fs::write(&named, &bytes).unwrap();
        assert_eq!(display_name(&named), "Meta-Llama-3.1-8B-Instruct-Q4_K_M");
    }

    #[test]
    fn without_a_readable_name_the_file_names_the_model() {
        let bytes = header(&[("general.architecture", STRING, string("llama"))]);
        assert_eq!(read_names(&mut bytes.as_slice()), Some(Header::default()));
        let named = header(&[("general.name", STRING, string("X"))]);
        assert_eq!(read_names(&mut &named[..named.len() - 1]), None);
        assert_eq!(read_names(&mut &b"PK\x03\x04 not a model"[..]), None);
        assert_eq!(display_name(Path::new("/no/such/model.gguf")), "model");
        assert_eq!(display_name(Path::new("/no/such/tiny-7b.gguf")), "tiny-7b");
    }
}
