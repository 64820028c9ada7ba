//! Slowing down guesses at one target (a student ID, an admin account name) without ever
//! locking it: a lock per target is a weapon, since anyone can type a victim's student ID or
//! the admin's name wrongly five times (issue 11, item 7). Lock-outs are kept for what an
//! attacker owns — their own WeChat user, their own (client address, name) pair — and the
//! target only sets a pace.
//!
//! Rule: after [`FREE_FAILURES`] failures at a target within the window, each client ("actor":
//! a WeChat openid, a client address) must wait after *its own* last failure at that target
//! before trying it again: 1 s, 2 s, 4 s … up to [`MAX_DELAY_SECS`], doubling with the target's
//! failures. A client that has not failed at the target is never made to wait, so a stranger's
//! failures cannot keep the real student or admin out; a guesser is held to one try per
//! [`MAX_DELAY_SECS`] per client address or WeChat user, on top of the locks those get.
//!
//! In memory and bounded: at most [`MAX_TARGETS`] targets and [`MAX_ACTORS`] actors per
//! target (the oldest forgotten); a restart forgets everything, like the lock-outs.

use std::collections::HashMap;
use std::sync::Mutex;

/// Failures at one target before any pacing.
pub const FREE_FAILURES: u32 = 5;
/// The longest wait between two tries of one client at one target.
pub const MAX_DELAY_SECS: i64 = 60;
/// Targets remembered at most.
pub const MAX_TARGETS: usize = 100_000;
/// Clients remembered per target at most.
pub const MAX_ACTORS: usize = 256;

struct Target {
    failures: u32,
    first: i64,
    /// Each client's last failure at this target.
    last: HashMap<String, i64>,
}

/// Failures per target, and who failed when.
pub struct Pacer {
    window: i64,
    targets: Mutex<HashMap<String, Target>>,
}

impl Pacer {
    /// Failures are counted within `window` seconds of the first one.
    pub fn new(window: i64) -> Pacer {
        Pacer {
            window,
            targets: Mutex::new(HashMap::new()),
        }
    }

    /// The wait after a client's failure once the target has `failures`.
    pub fn delay(failures: u32) -> i64 {
        if failures < FREE_FAILURES {
            return 0;
        }
        let doublings = (failures - FREE_FAILURES).min(16);
        (1i64 << doublings).min(MAX_DELAY_SECS)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Target>> {
        self.targets.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `Err(until)` while `actor` must wait before trying `target` again.
    pub fn check(&self, target: &str, actor: &str, now: i64) -> Result<(), i64> {
        let m = self.lock();
        let Some(t) = m.get(target).filter(|t| t.first + self.window > now) else {
            return Ok(());
        };
        match t.last.get(actor) {
            Some(last) if *last + Self::delay(t.failures) > now => {
                Err(*last + Self::delay(t.failures))
            }
            _ => Ok(()),
        }
    }

    /// Count a failure of `actor` at `target`.
    pub fn fail(&self, target: &str, actor: &str, now: i64) {
        let mut m = self.lock();
        if m.len() >= MAX_TARGETS && !m.contains_key(target) {
            m.retain(|_, t| t.first + self.window > now);
            if m.len() >= MAX_TARGETS {
                // Still full of live targets: forget the oldest tenth.
                let mut firsts: Vec<i64> = m.values().map(|t| t.first).collect();
                firsts.sort_unstable();
                let cut = firsts[firsts.len() / 10];
                m.retain(|_, t| t.first > cut);
            }
        }
        let t = m.entry(target.to_string()).or_insert(Target {
            failures: 0,
            first: now,
            last: HashMap::new(),
        });
        if t.first + self.window <= now {
            *t = Target {
                failures: 0,
                first: now,
                last: HashMap::new(),
            };
        }
        t.failures = t.failures.saturating_add(1);
        if t.last.len() >= MAX_ACTORS && !t.last.contains_key(actor) {
            if let Some(oldest) = t
                .last
                .iter()
                .min_by_key(|(_, at)| **at)
                .map(|(a, _)| a.clone())
            {
                t.last.remove(&oldest);
            }
        }
        t.last.insert(actor.to_string(), now);
    }

    /// Forget `target` (after a success).
    pub fn reset(&self, target: &str) {
        self.lock().remove(target);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_and_are_capped() {
        assert_eq!(Pacer::delay(0), 0);
        assert_eq!(Pacer::delay(FREE_FAILURES - 1), 0);
        assert_eq!(Pacer::delay(FREE_FAILURES), 1);
        assert_eq!(Pacer::delay(FREE_FAILURES + 3), 8);
        assert_eq!(Pacer::delay(FREE_FAILURES + 10), MAX_DELAY_SECS);
        assert_eq!(Pacer::delay(u32::MAX), MAX_DELAY_SECS);
    }

    #[test]
    fn a_strangers_failures_never_make_the_owner_wait() {
        let p = Pacer::new(900);
        for i in 0..20 {
            p.fail("s:2024001", "oStranger", 100 + i);
        }
        assert!(p.check("s:2024001", "oOwner", 120).is_ok());
        // The stranger is slowed down at that target …
        assert_eq!(
            p.check("s:2024001", "oStranger", 120),
            Err(119 + MAX_DELAY_SECS)
        );
        // … and not elsewhere.
        assert!(p.check("s:2024002", "oStranger", 120).is_ok());
        // The owner's own mistake then costs them a wait, never a lock.
        p.fail("s:2024001", "oOwner", 121);
        assert_eq!(
            p.check("s:2024001", "oOwner", 122),
            Err(121 + MAX_DELAY_SECS)
        );
        assert!(p.check("s:2024001", "oOwner", 121 + MAX_DELAY_SECS).is_ok());
    }

    #[test]
    fn below_the_free_failures_nobody_waits_and_the_window_forgets() {
        let p = Pacer::new(900);
        for i in 0..(FREE_FAILURES - 1) {
            p.fail("t", "a", 100 + i as i64);
            assert!(p.check("t", "a", 100 + i as i64).is_ok());
        }
        p.fail("t", "a", 110);
        assert!(p.check("t", "a", 110).is_err());
        assert!(p.check("t", "a", 100 + 900).is_ok(), "the window passed");
        p.reset("t");
        assert!(p.check("t", "a", 111).is_ok());
    }

    #[test]
    fn memory_is_bounded() {
        let p = Pacer::new(900);
        for i in 0..(MAX_ACTORS + 10) {
            p.fail("t", &format!("a{i}"), 100);
        }
        assert!(p.lock().get("t").map(|t| t.last.len()).unwrap_or(0) <= MAX_ACTORS);
        for i in 0..(MAX_TARGETS + 10) {
            p.fail(&format!("t{i}"), "a", 100 + (i as i64) / 1000);
        }
        assert!(p.lock().len() <= MAX_TARGETS);
    }
}
