//! Replay defence for the message endpoint (`/wx`): a signed URL is good for one delivery only,
//! and only within [`WINDOW_SECS`] of its `timestamp`.
//!
//! The plain `signature` covers (token, timestamp, nonce) and never the body, so anyone who saw
//! one signed URL (an access log) could otherwise send it again with any body. [`ReplayGuard`]
//! refuses a `timestamp` more than [`WINDOW_SECS`] away from our clock, and remembers every
//! (timestamp, nonce) it let through, with a digest of the body, for as long as that timestamp
//! is inside the window. The same pair again with the *same* POST body is let through
//! (WeChat's own retries of one delivery; the message inbox answers those once, and whoever can
//! send that body already knows the answer); with another body, or any repeat of a GET (the
//! `echostr` check, [`ReplayGuard::admit_once`]), it is a replay and refused.
//!
//! Memory is bounded by [`CAPACITY`]: when full, the oldest entries go, and the highest
//! timestamp among those forgotten becomes a floor — a request at or below it is refused — so
//! a forgotten pair can never be replayed. Only requests whose signature was already checked
//! reach the guard, so only WeChat (or a replayer of a real URL) fills it.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

/// A `timestamp` further than this from our clock (either way) is refused.
pub const WINDOW_SECS: i64 = 300;
/// At most this many (timestamp, nonce) pairs are remembered.
pub const CAPACITY: usize = 100_000;
/// Longest nonce remembered (WeChat's are about 10 digits).
const MAX_NONCE: usize = 128;

/// Why a signed request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replay {
    /// The timestamp is not a number, or is outside the window.
    Stale,
    /// This (timestamp, nonce) was already used with another body.
    Repeated,
}

impl Replay {
    pub fn message(self) -> &'static str {
        match self {
            Replay::Stale => "timestamp outside the accepted window",
            Replay::Repeated => "this signed URL was already used",
        }
    }
}

#[derive(Default)]
struct Seen {
    /// (timestamp, nonce) → body digest (`None`: no repeat at all).
    digests: HashMap<(i64, String), Option<[u8; 32]>>,
    /// Pairs in the order they were first seen, with when (our clock).
    order: VecDeque<(i64, (i64, String))>,
    /// Timestamps at or below this are refused (a pair that was forgotten early had it).
    floor: i64,
}

impl Seen {
    /// Drop pairs whose timestamps left the window, and the oldest beyond `max_len`.
    fn expire(&mut self, now: i64, max_len: usize) {
        while let Some((seen_at, _)) = self.order.front() {
            // A timestamp stays acceptable for at most 2 × WINDOW after we first see it.
            let expired = *seen_at + 2 * WINDOW_SECS < now;
            if !expired && self.order.len() <= max_len {
                break;
            }
            let Some((_, key)) = self.order.pop_front() else {
                break;
            };
            if !expired {
                self.floor = self.floor.max(key.0);
            }
            self.digests.remove(&key);
        }
    }
}

/// The (timestamp, nonce) pairs seen within the window. One per process.
pub struct ReplayGuard {
    capacity: usize,
    seen: Mutex<Seen>,
}

impl Default for ReplayGuard {
    fn default() -> Self {
        ReplayGuard::with_capacity(CAPACITY)
    }
}

impl ReplayGuard {
    pub fn with_capacity(capacity: usize) -> ReplayGuard {
        ReplayGuard {
            capacity: capacity.max(1),
            seen: Mutex::new(Seen::default()),
        }
    }

    /// Let a request whose signature checked out through once: `timestamp` within the window
    /// of `now`, and (`timestamp`, `nonce`) not seen before with another `body`. Call it only
    /// after the signature was verified.
    pub fn admit(&self, timestamp: &str, nonce: &str, body: &[u8], now: i64) -> Result<(), Replay> {
        let digest = crate::secret::sha256(&[b"wxgrades-wx-body", body]);
        self.admit_digest(timestamp, nonce, Some(digest), now)
    }

    /// Like [`admit`](Self::admit), but the pair is refused on any second use.
    pub fn admit_once(&self, timestamp: &str, nonce: &str, now: i64) -> Result<(), Replay> {
        self.admit_digest(timestamp, nonce, None, now)
    }

    fn admit_digest(
        &self,
        timestamp: &str,
        nonce: &str,
        digest: Option<[u8; 32]>,
        now: i64,
    ) -> Result<(), Replay> {
        let ts = parse_timestamp(timestamp).ok_or(Replay::Stale)?;
        if (ts - now).abs() > WINDOW_SECS || nonce.len() > MAX_NONCE {
            return Err(Replay::Stale);
        }
        let mut s = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        s.expire(now, self.capacity);
        if ts <= s.floor {
            return Err(Replay::Stale);
        }
        let key = (ts, nonce.to_string());
        match s.digests.get(&key) {
            Some(Some(d)) if digest.is_some_and(|g| crate::secret::constant_time_eq(d, &g)) => {
                Ok(())
            }
            Some(_) => Err(Replay::Repeated),
            None => {
                s.expire(now, self.capacity - 1);
                if ts <= s.floor {
                    return Err(Replay::Stale);
                }
                s.digests.insert(key.clone(), digest);
                s.order.push_back((now, key));
                Ok(())
            }
        }
    }

    /// Pairs remembered now (tests, metrics).
    pub fn len(&self) -> usize {
        self.seen
            .lock()
            .map(|s| s.digests.len())
            .unwrap_or_default()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Decimal seconds, at most 12 digits (no sign, no spaces).
fn parse_timestamp(s: &str) -> Option<i64> {
    if s.is_empty() || s.len() > 12 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_760_000_000;

    #[test]
    fn window_both_ways() {
        let g = ReplayGuard::default();
        assert_eq!(g.admit(&(NOW - 300).to_string(), "a", b"x", NOW), Ok(()));
        assert_eq!(g.admit(&(NOW + 300).to_string(), "b", b"x", NOW), Ok(()));
        for bad in [
            (NOW - 301).to_string(),
            (NOW + 301).to_string(),
            "1".into(),
            "".into(),
            "-5".into(),
            " 1760000000".into(),
            "99999999999999999999".into(),
        ] {
            assert_eq!(g.admit(&bad, "c", b"x", NOW), Err(Replay::Stale), "{bad}");
        }
    }

    #[test]
    fn same_pair_same_body_is_a_retry_another_body_a_replay() {
        let g = ReplayGuard::default();
        let ts = NOW.to_string();
        assert_eq!(g.admit(&ts, "n1", b"<xml>a</xml>", NOW), Ok(()));
        assert_eq!(g.admit(&ts, "n1", b"<xml>a</xml>", NOW + 5), Ok(()));
        assert_eq!(
            g.admit(&ts, "n1", b"<xml>forged</xml>", NOW + 6),
            Err(Replay::Repeated)
        );
        // Another nonce, or another timestamp, is another request.
        assert_eq!(g.admit(&ts, "n2", b"<xml>forged</xml>", NOW), Ok(()));
        assert_eq!(
            g.admit(&(NOW + 1).to_string(), "n1", b"<xml>b</xml>", NOW),
            Ok(())
        );
        assert_eq!(g.len(), 3);
    }

    #[test]
    fn admit_once_refuses_any_repeat() {
        let g = ReplayGuard::default();
        let ts = NOW.to_string();
        assert_eq!(g.admit_once(&ts, "e", NOW), Ok(()));
        assert_eq!(g.admit_once(&ts, "e", NOW), Err(Replay::Repeated));
        assert_eq!(g.admit(&ts, "e", b"", NOW), Err(Replay::Repeated));
    }

    #[test]
    fn entries_expire_with_the_window() {
        let g = ReplayGuard::default();
        let ts = NOW.to_string();
        assert_eq!(g.admit(&ts, "n", b"a", NOW), Ok(()));
        // Once the timestamp is outside the window, the pair is refused as stale anyway …
        assert_eq!(g.admit(&ts, "n", b"b", NOW + 301), Err(Replay::Stale));
        // … and forgetting it later costs nothing.
        assert_eq!(
            g.admit(&(NOW + 700).to_string(), "m", b"a", NOW + 700),
            Ok(())
        );
        assert_eq!(g.len(), 1, "the old pair was dropped");
    }

    #[test]
    fn memory_is_capped_and_forgotten_pairs_stay_refused() {
        let g = ReplayGuard::with_capacity(100);
        for i in 0..1000 {
            let ts = (NOW - 200 + i / 10).to_string();
            assert_eq!(g.admit(&ts, &format!("n{i}"), b"a", NOW), Ok(()), "{i}");
            assert!(g.len() <= 100);
        }
        // The first pairs were forgotten: replaying one, even with its own body, is refused.
        assert_eq!(
            g.admit(&(NOW - 200).to_string(), "n0", b"other", NOW),
            Err(Replay::Stale)
        );
        // A fresh request still gets in.
        assert_eq!(g.admit(&(NOW + 1).to_string(), "new", b"a", NOW), Ok(()));
    }

    #[test]
    fn long_nonces_are_refused_not_stored() {
        let g = ReplayGuard::default();
        let long = "9".repeat(MAX_NONCE + 1);
        assert_eq!(
            g.admit(&NOW.to_string(), &long, b"a", NOW),
            Err(Replay::Stale)
        );
        assert!(g.is_empty());
    }
}
