//! Secrets in one place: random tokens, hashing of stored secrets, and constant-time comparison.

use sha2::{Digest, Sha256};

/// `n` random bytes from the operating system. Panics only if the OS has no randomness at all,
/// which no input can cause.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    if let Err(e) = getrandom::fill(&mut b) {
        // Without an OS random source no secret can be made safely: stop rather than go on.
        panic!("the operating system gave no random bytes: {e}");
    }
    b
}

/// A random token of `N` bytes as lower-case hex (letters and digits only, fit for OAuth `state`).
pub fn random_hex<const N: usize>() -> String {
    hex(&random_bytes::<N>())
}

pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// SHA-256 of `parts` joined with a separator that cannot occur in them by accident.
pub fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            h.update([0x1f]);
        }
        h.update(p);
    }
    h.finalize().into()
}

/// Compare two byte strings in time that depends only on their lengths (the one comparison
/// of secrets in the crate: tokens, signatures, hashes).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.ct_eq(b).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_hex_and_distinct() {
        let a = random_hex::<16>();
        let b = random_hex::<16>();
        assert_eq!(a.len(), 32);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, b);
    }

    #[test]
    fn eq() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert_eq!(hex(&[0, 255, 16]), "00ff10");
    }
}
