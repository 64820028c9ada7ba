//! Failure counting with lock-out, for binding and admin login: after `max_failures` failures
//! within `window` seconds a key is locked for `lock` seconds. In memory: a restart forgets
//! failures, which costs an attacker nothing they could not get by waiting.

use std::collections::HashMap;
use std::sync::Mutex;

pub struct Limiter {
    max_failures: u32,
    window: i64,
    lock: i64,
    state: Mutex<HashMap<String, Entry>>,
}

#[derive(Clone, Copy)]
struct Entry {
    failures: u32,
    first: i64,
    locked_until: i64,
}

impl Limiter {
    pub fn new(max_failures: u32, window: i64, lock: i64) -> Limiter {
        Limiter {
            max_failures,
            window,
            lock,
            state: Mutex::new(HashMap::new()),
        }
    }

    /// `Err(until)` while `key` is locked.
    pub fn check(&self, key: &str, now: i64) -> Result<(), i64> {
        let m = self.state.lock().unwrap_or_else(|p| p.into_inner());
        match m.get(key) {
            Some(e) if e.locked_until > now => Err(e.locked_until),
            _ => Ok(()),
        }
    }

    /// Count a failure; returns `Some(until)` when this failure locked the key.
    pub fn fail(&self, key: &str, now: i64) -> Option<i64> {
        let mut m = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if m.len() > 100_000 {
            m.retain(|_, e| e.locked_until > now || e.first + self.window > now);
        }
        let e = m.entry(key.to_string()).or_insert(Entry {
            failures: 0,
            first: now,
            locked_until: 0,
        });
        if e.first + self.window <= now || (e.locked_until != 0 && e.locked_until <= now) {
            *e = Entry {
                failures: 0,
                first: now,
                locked_until: 0,
            };
        }
        e.failures += 1;
        if e.failures >= self.max_failures {
            e.locked_until = now + self.lock;
            return Some(e.locked_until);
        }
        None
    }

    /// Forget the failures of `key` (after a success).
    pub fn reset(&self, key: &str) {
        let mut m = self.state.lock().unwrap_or_else(|p| p.into_inner());
        m.remove(key);
    }
}

pub use crate::clock::clock_time;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_after_max_and_unlocks_after_window() {
        let l = Limiter::new(5, 900, 900);
        for i in 0..4 {
            assert_eq!(l.fail("k", 100 + i), None);
            assert!(l.check("k", 100 + i).is_ok());
        }
        assert_eq!(l.fail("k", 104), Some(1004));
        assert_eq!(l.check("k", 500), Err(1004));
        assert!(l.check("k", 1004).is_ok());
        assert_eq!(l.fail("k", 1005), None, "a fresh window after the lock");
        assert!(l.check("other", 500).is_ok());
    }

    #[test]
    fn reset_forgets() {
        let l = Limiter::new(2, 900, 900);
        l.fail("k", 1);
        l.reset("k");
        assert_eq!(l.fail("k", 2), None);
    }

    #[test]
    fn clock() {
        assert_eq!(clock_time(0), "08:00");
        assert_eq!(clock_time(16 * 3600 + 30 * 60), "00:30");
    }
}
