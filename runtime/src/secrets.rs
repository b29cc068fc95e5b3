//! Where `secret("NAME")` values come from: the encrypted secrets store
//! under `AOS_HOME` first, then the environment.
//!
//! The store is one file, `AOS_HOME/secrets.json`: each value sealed with
//! ChaCha20-Poly1305 (the `ring` AEAD, a fresh random nonce per write, the
//! secret's name as associated data so that a value cannot be moved to
//! another name). The 256-bit key is `AOS_SECRET_KEY` (64 hex digits) or
//! the file `AOS_HOME/secret.key`, created with mode 0600 on first use.
//! Writes take an advisory lock and replace the file by rename, so a reader
//! (a run resolving a secret) always sees the old value or the new one:
//! `aosc secret set` rotates a value without stopping anything.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};

/// The shortest secret accepted: a shorter one would be found inside
/// unrelated text, and redacting it there corrupts that text (issue 17,
/// finding 4).
pub const MIN_SECRET_CHARS: usize = 8;

/// Why a secret could not be had or kept.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("secret `{name}` is {len} characters long: secrets shorter than {MIN_SECRET_CHARS} characters cannot be redacted safely (they occur inside unrelated text), so they are refused")]
    TooShort { name: String, len: usize },
    #[error("`{0}` is not a valid secret name: use letters, digits and `_` (e.g. SMTP_PASSWORD)")]
    BadName(String),
    #[error("AOS_SECRET_KEY must be 64 hex digits (a 256-bit key), e.g. from `openssl rand -hex 32`")]
    BadKey,
    #[error("secret `{0}` cannot be decrypted with this key (AOS_SECRET_KEY or AOS_HOME/secret.key): was it set with another key?")]
    Undecryptable(String),
    #[error("the secrets store `{path}`: {why}")]
    Io { path: String, why: String },
}

fn io_err(path: &Path, e: impl std::fmt::Display) -> SecretError {
    SecretError::Io { path: path.display().to_string(), why: e.to_string() }
}

/// Checks that `value` is long enough to be redacted safely.
pub fn check_length(name: &str, value: &str) -> Result<(), SecretError> {
    let len = value.chars().count();
    if len < MIN_SECRET_CHARS {
        return Err(SecretError::TooShort { name: name.into(), len });
    }
    Ok(())
}

/// A place secret values come from.
pub trait SecretSource: Send + Sync {
    /// The value of `name`, `None` when this source has none.
    fn get(&self, name: &str) -> Result<Option<String>, SecretError>;
}

/// The process environment.
pub struct Environment;

impl SecretSource for Environment {
    fn get(&self, name: &str) -> Result<Option<String>, SecretError> {
        Ok(std::env::var(name).ok())
    }
}

/// Fixed values (tests, embedders).
#[derive(Default)]
pub struct Fixed(pub BTreeMap<String, String>);

impl SecretSource for Fixed {
    fn get(&self, name: &str) -> Result<Option<String>, SecretError> {
        Ok(self.0.get(name).cloned())
    }
}

/// The first source that has a value wins.
pub struct Chain(pub Vec<std::sync::Arc<dyn SecretSource>>);

impl SecretSource for Chain {
    fn get(&self, name: &str) -> Result<Option<String>, SecretError> {
        for s in &self.0 {
            if let Some(v) = s.get(name)? {
                return Ok(Some(v));
            }
        }
        Ok(None)
    }
}

#[derive(Serialize, Deserialize, Default)]
struct File {
    version: u32,
    secrets: BTreeMap<String, Sealed>,
}

#[derive(Serialize, Deserialize, Clone)]
struct Sealed {
    /// Hex of the nonce.
    nonce: String,
    /// Hex of the ciphertext and its tag.
    sealed: String,
    updated_at: String,
    /// 1 on the first `set`, one more on each rotation.
    generation: u64,
}

/// A secret as listed (never its value).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Listed {
    pub name: String,
    pub updated_at: String,
    pub generation: u64,
}

/// The encrypted secrets store of one `AOS_HOME`.
pub struct SecretStore {
    home: PathBuf,
}

impl SecretStore {
    pub fn new(home: &Path) -> SecretStore {
        SecretStore { home: home.to_path_buf() }
    }

    fn path(&self) -> PathBuf {
        self.home.join("secrets.json")
    }

    fn key_path(&self) -> PathBuf {
        self.home.join("secret.key")
    }

    /// The key: `AOS_SECRET_KEY`, else the key file (created on first use
    /// when `create` allows it).
    fn key(&self, create: bool) -> Result<Option<LessSafeKey>, SecretError> {
        let bytes = match std::env::var("AOS_SECRET_KEY") {
            Ok(hex_key) if !hex_key.trim().is_empty() => hex::decode(hex_key.trim()).map_err(|_| SecretError::BadKey)?,
            _ => {
                let path = self.key_path();
                match std::fs::read_to_string(&path) {
                    Ok(text) => hex::decode(text.trim()).map_err(|_| io_err(&path, "not a hex key"))?,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => self.create_key_file(&path)?,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                    Err(e) => return Err(io_err(&path, e)),
                }
            }
        };
        if bytes.len() != 32 {
            return Err(SecretError::BadKey);
        }
        let unbound = UnboundKey::new(&CHACHA20_POLY1305, &bytes).map_err(|_| SecretError::BadKey)?;
        Ok(Some(LessSafeKey::new(unbound)))
    }

    fn create_key_file(&self, path: &Path) -> Result<Vec<u8>, SecretError> {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::create_dir_all(&self.home).map_err(|e| io_err(&self.home, e))?;
        let mut key = [0u8; 32];
        SystemRandom::new().fill(&mut key).map_err(|_| io_err(path, "no randomness"))?;
        match std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path) {
            Ok(mut f) => {
                f.write_all(hex::encode(key).as_bytes()).and_then(|()| f.sync_all()).map_err(|e| io_err(path, e))?;
                Ok(key.to_vec())
            }
            // Another process created it first: use its key.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let text = std::fs::read_to_string(path).map_err(|e| io_err(path, e))?;
                hex::decode(text.trim()).map_err(|_| io_err(path, "not a hex key"))
            }
            Err(e) => Err(io_err(path, e)),
        }
    }

    fn read(&self) -> Result<File, SecretError> {
        let path = self.path();
        match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text).map_err(|e| io_err(&path, e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(File { version: 1, ..File::default() }),
            Err(e) => Err(io_err(&path, e)),
        }
    }

    /// Runs `change` on the file under the store's lock, then replaces it.
    fn update<T>(&self, change: impl FnOnce(&mut File) -> Result<T, SecretError>) -> Result<T, SecretError> {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::create_dir_all(&self.home).map_err(|e| io_err(&self.home, e))?;
        let lock_path = self.home.join("secrets.json.lock");
        let lock = std::fs::OpenOptions::new().create(true).truncate(false).write(true).mode(0o600).open(&lock_path).map_err(|e| io_err(&lock_path, e))?;
        lock.lock().map_err(|e| io_err(&lock_path, e))?;
        let mut file = self.read()?;
        let out = change(&mut file)?;
        let path = self.path();
        let tmp = self.home.join(format!("secrets.json.{}.tmp", std::process::id()));
        let text = serde_json::to_string_pretty(&file).map_err(|e| io_err(&path, e))?;
        let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp).map_err(|e| io_err(&tmp, e))?;
        f.write_all(text.as_bytes()).and_then(|()| f.sync_all()).map_err(|e| io_err(&tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| io_err(&path, e))?;
        Ok(out)
    }

    /// Sets (or rotates) `name`. Returns its generation.
    pub fn set(&self, name: &str, value: &str) -> Result<u64, SecretError> {
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(SecretError::BadName(name.into()));
        }
        check_length(name, value)?;
        let key = self.key(true)?.ok_or(SecretError::BadKey)?;
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new().fill(&mut nonce).map_err(|_| io_err(&self.path(), "no randomness"))?;
        let mut buf = value.as_bytes().to_vec();
        key.seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(name.as_bytes()), &mut buf)
            .map_err(|_| io_err(&self.path(), "encryption failed"))?;
        self.update(|f| {
            let generation = f.secrets.get(name).map_or(1, |s| s.generation + 1);
            f.secrets.insert(
                name.to_string(),
                Sealed { nonce: hex::encode(nonce), sealed: hex::encode(&buf), updated_at: crate::ids::rfc3339(crate::ids::now_ms()), generation },
            );
            Ok(generation)
        })
    }

    /// Removes `name`; whether it was there.
    pub fn remove(&self, name: &str) -> Result<bool, SecretError> {
        self.update(|f| Ok(f.secrets.remove(name).is_some()))
    }

    /// The names held, with when each was last set.
    pub fn list(&self) -> Result<Vec<Listed>, SecretError> {
        Ok(self
            .read()?
            .secrets
            .into_iter()
            .map(|(name, s)| Listed { name, updated_at: s.updated_at, generation: s.generation })
            .collect())
    }
}

impl SecretSource for SecretStore {
    fn get(&self, name: &str) -> Result<Option<String>, SecretError> {
        let file = self.read()?;
        let Some(s) = file.secrets.get(name) else { return Ok(None) };
        let key = self.key(false)?.ok_or_else(|| SecretError::Undecryptable(name.into()))?;
        let nonce: [u8; NONCE_LEN] = hex::decode(&s.nonce)
            .ok()
            .and_then(|n| n.try_into().ok())
            .ok_or_else(|| SecretError::Undecryptable(name.into()))?;
        let mut buf = hex::decode(&s.sealed).map_err(|_| SecretError::Undecryptable(name.into()))?;
        let plain = key
            .open_in_place(Nonce::assume_unique_for_key(nonce), Aad::from(name.as_bytes()), &mut buf)
            .map_err(|_| SecretError::Undecryptable(name.into()))?;
        String::from_utf8(plain.to_vec()).map(Some).map_err(|_| SecretError::Undecryptable(name.into()))
    }
}

/// The sources of a runtime at `home`: the store, then the environment.
pub fn default_source(home: &Path) -> std::sync::Arc<dyn SecretSource> {
    std::sync::Arc::new(Chain(vec![std::sync::Arc::new(SecretStore::new(home)), std::sync::Arc::new(Environment)]))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn set_get_rotate_remove_with_a_key_file() {
        let dir = tempfile::tempdir().unwrap();
        let st = SecretStore::new(dir.path());
        assert_eq!(st.get("API_TOKEN").unwrap(), None);
        assert_eq!(st.set("API_TOKEN", "first-value-123").unwrap(), 1);
        assert_eq!(st.get("API_TOKEN").unwrap().as_deref(), Some("first-value-123"));
        assert_eq!(st.set("API_TOKEN", "second-value-456").unwrap(), 2);
        assert_eq!(st.get("API_TOKEN").unwrap().as_deref(), Some("second-value-456"));
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("secret.key")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let on_disk = std::fs::read(dir.path().join("secrets.json")).unwrap();
        assert!(!String::from_utf8_lossy(&on_disk).contains("second-value-456"));
        assert_eq!(st.list().unwrap().iter().map(|l| l.name.as_str()).collect::<Vec<_>>(), ["API_TOKEN"]);
        assert!(st.remove("API_TOKEN").unwrap());
        assert!(!st.remove("API_TOKEN").unwrap());
        assert_eq!(st.get("API_TOKEN").unwrap(), None);
    }

    #[test]
    fn short_values_and_bad_names_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let st = SecretStore::new(dir.path());
        assert!(matches!(st.set("PW", "e"), Err(SecretError::TooShort { len: 1, .. })));
        assert!(matches!(st.set("bad name", "long-enough-value"), Err(SecretError::BadName(_))));
    }

    #[test]
    fn a_value_moved_to_another_name_or_another_key_does_not_open() {
        let dir = tempfile::tempdir().unwrap();
        let st = SecretStore::new(dir.path());
        st.set("A_NAME", "value-of-a-123").unwrap();
        let path = dir.path().join("secrets.json");
        let text = std::fs::read_to_string(&path).unwrap().replace("\"A_NAME\"", "\"B_NAME\"");
        std::fs::write(&path, text).unwrap();
        assert!(matches!(st.get("B_NAME"), Err(SecretError::Undecryptable(_))));
        st.set("C_NAME", "value-of-c-123").unwrap();
        std::fs::write(dir.path().join("secret.key"), hex::encode([7u8; 32])).unwrap();
        assert!(matches!(st.get("C_NAME"), Err(SecretError::Undecryptable(_))));
    }
}
