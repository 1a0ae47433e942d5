//! API keys for the `serve` face: made by `persona-sim keys create`, shown
//! once, stored only as a SHA-256 hash in a private file in the data folder
//! (`api_keys.json`, 0600). A key is 32 random bytes, so a plain hash is
//! enough (no salt or slow hash is needed against guessing).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Keys start with this, so a leaked one is recognisable.
const PREFIX: &str = "psk_";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyRecord {
    pub name: String,
    /// SHA-256 of the key, hex.
    pub hash: String,
    /// The key's first characters, to tell keys apart in a list.
    pub shown: String,
    pub created: chrono::DateTime<chrono::Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read {path}: {error}")]
    Read { path: PathBuf, error: String },
    #[error(transparent)]
    Write(#[from] crate::atomic_file::WriteError),
    #[error("a key named {0:?} exists already (revoke it first, or choose another name)")]
    NameTaken(String),
    #[error("no active key named {0:?}")]
    NoSuchKey(String),
    #[error("a key name must be 1-64 letters, digits, '-', '_' or '.'")]
    BadName,
    #[error("no random numbers from the OS: {0}")]
    Random(String),
    #[error(transparent)]
    Db(#[from] crate::db::DbError),
}

/// The key file of a data folder.
#[derive(Debug, Clone)]
pub struct KeyStore {
    pub path: PathBuf,
}

impl KeyStore {
    pub fn in_dir(data_dir: &Path) -> KeyStore {
        KeyStore {
            path: data_dir.join("api_keys.json"),
        }
    }

    /// Every key, revoked ones too; none when there is no file yet.
    pub fn list(&self) -> Result<Vec<KeyRecord>, KeyError> {
        let text = match crate::atomic_file::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(self.read_error(e.to_string())),
        };
        serde_json::from_str(&text).map_err(|e| self.read_error(e.to_string()))
    }

    fn read_error(&self, error: String) -> KeyError {
        KeyError::Read {
            path: self.path.clone(),
            error,
        }
    }

    /// The active keys.
    pub fn active(&self) -> Result<Vec<KeyRecord>, KeyError> {
        Ok(self
            .list()?
            .into_iter()
            .filter(|k| k.revoked.is_none())
            .collect())
    }

    /// Makes a key named `name`; returns the key itself, which is not
    /// stored anywhere.
    pub fn create(&self, name: &str) -> Result<String, KeyError> {
        let (key, record) = new_key(name)?;
        let mut keys = self.list()?;
        if keys.iter().any(|k| k.name == name && k.revoked.is_none()) {
            return Err(KeyError::NameTaken(name.into()));
        }
        keys.push(record);
        self.save(&keys)?;
        Ok(key)
    }

    /// Revokes the active key named `name`.
    pub fn revoke(&self, name: &str) -> Result<(), KeyError> {
        let mut keys = self.list()?;
        let key = keys
            .iter_mut()
            .find(|k| k.name == name && k.revoked.is_none())
            .ok_or_else(|| KeyError::NoSuchKey(name.into()))?;
        key.revoked = Some(chrono::Utc::now());
        self.save(&keys)
    }

    fn save(&self, keys: &[KeyRecord]) -> Result<(), KeyError> {
        let text = serde_json::to_string_pretty(keys).expect("keys serialise");
        crate::atomic_file::write(&self.path, &text)?;
        Ok(())
    }
}

/// A new key named `name` and its record (the key itself is never kept).
pub fn new_key(name: &str) -> Result<(String, KeyRecord), KeyError> {
    let valid = |c: char| c.is_ascii_alphanumeric() || "-_.".contains(c);
    if name.is_empty() || name.len() > 64 || !name.chars().all(valid) {
        return Err(KeyError::BadName);
    }
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| KeyError::Random(e.to_string()))?;
    let key = format!("{PREFIX}{}", hex(&bytes));
    let record = KeyRecord {
        name: name.into(),
        hash: hash(&key),
        shown: format!("{}…", &key[..PREFIX.len() + 6]),
        created: chrono::Utc::now(),
        revoked: None,
    };
    Ok((key, record))
}

/// Where the keys are: the data folder's file, or the database (several
/// servers share it).
#[derive(Clone)]
pub enum Keys {
    File(KeyStore),
    Postgres(crate::db::Db),
}

impl Keys {
    /// Where they are, for messages.
    pub fn describe(&self) -> String {
        match self {
            Keys::File(store) => store.path.display().to_string(),
            Keys::Postgres(db) => format!("the database at {}", db.at()),
        }
    }

    /// Every key, revoked ones too, oldest first.
    pub async fn list(&self) -> Result<Vec<KeyRecord>, KeyError> {
        match self {
            Keys::File(store) => store.list(),
            Keys::Postgres(db) => Ok(crate::db::keys::list(db).await?),
        }
    }

    /// The active keys.
    pub async fn active(&self) -> Result<Vec<KeyRecord>, KeyError> {
        let mut keys = self.list().await?;
        keys.retain(|k| k.revoked.is_none());
        Ok(keys)
    }

    /// See [`KeyStore::create`].
    pub async fn create(&self, name: &str) -> Result<String, KeyError> {
        match self {
            Keys::File(store) => store.create(name),
            Keys::Postgres(db) => {
                let (key, record) = new_key(name)?;
                crate::db::keys::insert(db, &record).await?;
                Ok(key)
            }
        }
    }

    /// See [`KeyStore::revoke`].
    pub async fn revoke(&self, name: &str) -> Result<(), KeyError> {
        match self {
            Keys::File(store) => store.revoke(name),
            Keys::Postgres(db) => crate::db::keys::revoke(db, name).await,
        }
    }
}

/// The name of the active key `key` is, if any. Compares every hash in
/// full (no early exit), so timing tells nothing about near misses.
pub fn check(active: &[KeyRecord], key: &str) -> Option<String> {
    let wanted = hash(key);
    let mut found = None;
    for record in active {
        let same = record
            .hash
            .bytes()
            .zip(wanted.bytes())
            .fold(record.hash.len() ^ wanted.len(), |acc, (a, b)| {
                acc | usize::from(a ^ b)
            })
            == 0;
        if same && found.is_none() {
            found = Some(record.name.clone());
        }
    }
    found
}

fn hash(key: &str) -> String {
    hex(&Sha256::digest(key.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_shown_once_stored_as_a_hash_and_can_be_revoked() {
        let dir = tempfile::tempdir().unwrap();
        let store = KeyStore::in_dir(dir.path());
        let key = store.create("ci").unwrap();
        assert!(key.starts_with("psk_") && key.len() == 4 + 64, "{key}");
        let text = std::fs::read_to_string(&store.path).unwrap();
        assert!(!text.contains(&key[4..]), "the key itself is not stored");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&store.path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let active = store.active().unwrap();
        assert_eq!(check(&active, &key).as_deref(), Some("ci"));
        assert_eq!(check(&active, "psk_wrong"), None);
        assert!(matches!(store.create("ci"), Err(KeyError::NameTaken(_))));
        assert!(matches!(store.create("no spaces"), Err(KeyError::BadName)));
        store.revoke("ci").unwrap();
        assert_eq!(check(&store.active().unwrap(), &key), None);
        assert!(matches!(store.revoke("ci"), Err(KeyError::NoSuchKey(_))));
        // The name is free again once revoked.
        let again = store.create("ci").unwrap();
        assert_ne!(again, key);
        assert_eq!(store.list().unwrap().len(), 2);
    }
}
