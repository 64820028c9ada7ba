//! Verification values (e.g. the last six of the ID card) are stored only as HMAC-SHA256 under
//! a key kept in a file beside the data file (`<data>.key`), never in it: a stolen data file
//! alone cannot be brute-forced over the small space of six-character values, and a roster of
//! 50 000 students still hashes in milliseconds.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use std::path::{Path, PathBuf};

use crate::secret;

pub struct VerifyKey {
    key: [u8; 32],
}

impl std::fmt::Debug for VerifyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("VerifyKey(<redacted>)")
    }
}

/// The key file that belongs to a data file.
pub fn key_path(data: &Path) -> PathBuf {
    let mut s = data.as_os_str().to_owned();
    s.push(".key");
    PathBuf::from(s)
}

impl VerifyKey {
    /// Read the key file beside `data`, or create it (mode 0600) when there is none.
    pub fn load_or_create(data: &Path) -> Result<VerifyKey, String> {
        let path = key_path(data);
        match std::fs::read_to_string(&path) {
            Ok(text) => Self::parse(text.trim()).ok_or_else(|| {
                format!(
                    "{}: not a wxgrades key file (64 hex digits expected)",
                    path.display()
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = secret::random_bytes::<32>();
                let hex = secret::hex(&key);
                write_private(&path, hex.as_bytes())
                    .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
                Ok(VerifyKey { key })
            }
            Err(e) => Err(format!("cannot read {}: {e}", path.display())),
        }
    }

    fn parse(hex: &str) -> Option<VerifyKey> {
        if hex.len() != 64 {
            return None;
        }
        let mut key = [0u8; 32];
        for (i, k) in key.iter_mut().enumerate() {
            *k = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
        }
        Some(VerifyKey { key })
    }

    #[cfg(test)]
    pub fn for_tests() -> VerifyKey {
        VerifyKey { key: [7u8; 32] }
    }

    /// The stored form of a student's verification value (trimmed, letters upper-cased).
    pub fn hash(&self, student_id: &str, value: &str) -> String {
        let mut mac = match <Hmac<Sha256> as KeyInit>::new_from_slice(&self.key) {
            Ok(m) => m,
            // HMAC accepts keys of any length; this branch cannot be reached.
            Err(_) => return String::new(),
        };
        mac.update(b"wxgrades-verify-v1\x1f");
        mac.update(student_id.as_bytes());
        mac.update(b"\x1f");
        mac.update(normalize(value).as_bytes());
        format!("v1:{}", secret::hex(&mac.finalize().into_bytes()))
    }

    /// Whether `value` matches the stored hash, in constant time.
    pub fn matches(&self, student_id: &str, value: &str, stored: &str) -> bool {
        secret::constant_time_eq(self.hash(student_id, value).as_bytes(), stored.as_bytes())
    }
}

fn normalize(v: &str) -> String {
    v.trim().to_uppercase()
}

#[cfg(unix)]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        if !dir.as_os_str().is_empty() {
            std::fs::create_dir_all(dir)?;
        }
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

#[cfg(not(unix))]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_keyed_normalised_and_per_student() {
        let k = VerifyKey::for_tests();
        let h = k.hash("2021001", "12345x");
        assert!(k.matches("2021001", " 12345X ", &h));
        assert!(!k.matches("2021002", "12345X", &h));
        assert!(!k.matches("2021001", "123456", &h));
        assert!(!h.contains("12345"));
    }

    #[test]
    fn key_file_roundtrip() {
        let d = std::env::temp_dir().join(format!("wxg-key-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        let data = d.join("x.redb");
        let a = VerifyKey::load_or_create(&data).unwrap();
        let b = VerifyKey::load_or_create(&data).unwrap();
        assert_eq!(a.hash("1", "2"), b.hash("1", "2"));
        std::fs::write(key_path(&data), "junk").unwrap();
        assert!(VerifyKey::load_or_create(&data).is_err());
    }
}
