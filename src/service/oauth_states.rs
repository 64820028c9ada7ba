//! The one-time states of web authorization, kept in memory: `/wx/oauth/start` is open to
//! anyone, so it must not write to the data file (issue 11, item 2).
//!
//! A state is bound to one browser (the hash of its `wxg_b` cookie), good for [`STATE_TTL`]
//! seconds, and used once: after a successful exchange it remembers the openid, so a second hit
//! from the same browser (WeChat, a proxy or the Back button calling again) signs in without a
//! second exchange — until that browser signs out, which kills all its states (issue 13: a
//! shared phone must not sign the next person in). Memory is bounded: at most
//! [`PER_BROWSER`] live states per browser and [`TOTAL`] in all; beyond either the oldest go
//! (that browser's sign-in then says "登录已失效" and starts again). A restart forgets all
//! states, which costs a student one more tap.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

/// A state is good for this long after `/wx/oauth/start`.
pub const STATE_TTL: i64 = 600;
/// Live states one browser may hold (several tabs, a double tap).
pub const PER_BROWSER: usize = 8;
/// Live states in all (a state with its `next` is at most about 1.3 KB).
pub const TOTAL: usize = 20_000;

/// What a state remembers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingState {
    /// Hash of the browser's binding cookie.
    pub browser: [u8; 32],
    pub next: String,
    pub scope: String,
    pub created: i64,
    /// Set once the code was exchanged: the openid it gave.
    pub completed_openid: Option<String>,
    /// The hash of the session the last sign-in through this state opened.
    session: Option<[u8; 32]>,
}

impl PendingState {
    pub fn new(browser: [u8; 32], next: String, scope: String, created: i64) -> PendingState {
        PendingState {
            browser,
            next,
            scope,
            created,
            completed_openid: None,
            session: None,
        }
    }
}

#[derive(Default)]
struct Inner {
    states: HashMap<String, PendingState>,
    /// (created, state) in the order issued; entries of states already gone are skipped.
    order: VecDeque<(i64, String)>,
    /// Live states of each browser, oldest first.
    by_browser: HashMap<[u8; 32], VecDeque<String>>,
}

impl Inner {
    fn remove(&mut self, state: &str) -> Option<PendingState> {
        let st = self.states.remove(state)?;
        if let Some(list) = self.by_browser.get_mut(&st.browser) {
            list.retain(|s| s != state);
            if list.is_empty() {
                self.by_browser.remove(&st.browser);
            }
        }
        Some(st)
    }

    fn expire(&mut self, now: i64) {
        while let Some((created, _)) = self.order.front() {
            if *created + STATE_TTL > now && self.states.len() < TOTAL {
                break;
            }
            if let Some((created, s)) = self.order.pop_front() {
                if self.states.get(&s).is_some_and(|st| st.created == created) {
                    self.remove(&s);
                }
            }
        }
        // States removed out of order leave stale entries behind: compact now and then.
        if self.order.len() > 2 * TOTAL {
            let states = &self.states;
            self.order.retain(|(_, s)| states.contains_key(s));
        }
    }
}

/// The live states of this process.
#[derive(Default)]
pub struct OAuthStates {
    inner: Mutex<Inner>,
}

impl OAuthStates {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Keep a new state (dropping that browser's oldest beyond [`PER_BROWSER`], and the oldest
    /// of all beyond [`TOTAL`]).
    pub fn insert(&self, state: String, st: PendingState) {
        let mut m = self.lock();
        m.expire(st.created);
        let old = m.by_browser.get(&st.browser).and_then(|list| {
            (list.len() >= PER_BROWSER)
                .then(|| list.front().cloned())
                .flatten()
        });
        if let Some(old) = old {
            m.remove(&old);
        }
        m.remove(&state);
        m.by_browser
            .entry(st.browser)
            .or_default()
            .push_back(state.clone());
        m.order.push_back((st.created, state.clone()));
        m.states.insert(state, st);
    }

    /// The live state `state`, if it has not expired at `now`.
    pub fn get(&self, state: &str, now: i64) -> Option<PendingState> {
        let mut m = self.lock();
        m.expire(now);
        m.states.get(state).cloned()
    }

    /// Record that `state` signed `openid` in with the session whose hash is `session`. Returns
    /// false when the state is gone (expired, dropped, or its browser signed out meanwhile).
    pub fn complete(&self, state: &str, openid: &str, session: [u8; 32]) -> bool {
        let mut m = self.lock();
        match m.states.get_mut(state) {
            Some(st) => {
                st.completed_openid = Some(openid.to_string());
                st.session = Some(session);
                true
            }
            None => false,
        }
    }

    /// A browser signed out of the session whose hash is `session`: every state of the browser
    /// that opened it dies, so its old callback URLs sign nobody in again.
    pub fn signed_out(&self, session: &[u8; 32]) {
        let mut m = self.lock();
        let browsers: Vec<[u8; 32]> = m
            .states
            .values()
            .filter(|st| st.session.as_ref() == Some(session))
            .map(|st| st.browser)
            .collect();
        for b in browsers {
            let states: Vec<String> = m
                .by_browser
                .get(&b)
                .map(|l| l.iter().cloned().collect())
                .unwrap_or_default();
            for s in states {
                m.remove(&s);
            }
        }
    }

    /// Live states now (tests, metrics).
    pub fn len(&self) -> usize {
        self.lock().states.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(browser: u8, created: i64) -> PendingState {
        PendingState::new([browser; 32], "/".into(), "snsapi_base".into(), created)
    }

    #[test]
    fn states_expire_after_the_ttl() {
        let s = OAuthStates::default();
        s.insert("a".into(), st(1, 100));
        assert!(s.get("a", 100 + STATE_TTL - 1).is_some());
        assert!(s.get("a", 100 + STATE_TTL).is_none());
        assert!(s.is_empty());
    }

    #[test]
    fn each_browser_keeps_only_its_newest_states() {
        let s = OAuthStates::default();
        for i in 0..(PER_BROWSER + 3) {
            s.insert(format!("b{i}"), st(1, 100));
        }
        s.insert("other".into(), st(2, 100));
        assert_eq!(s.len(), PER_BROWSER + 1);
        assert!(s.get("b0", 100).is_none() && s.get("b2", 100).is_none());
        assert!(s.get("b3", 100).is_some());
        assert!(
            s.get("other", 100).is_some(),
            "another browser is untouched"
        );
    }

    #[test]
    fn the_total_is_capped_oldest_first() {
        let s = OAuthStates::default();
        for i in 0..(TOTAL + 50) {
            // Every request a new browser, as a flood without cookies looks.
            let mut b = [0u8; 32];
            b[..8].copy_from_slice(&(i as u64).to_be_bytes());
            s.insert(
                format!("s{i}"),
                PendingState::new(b, "/".into(), "snsapi_base".into(), 100),
            );
        }
        assert!(s.len() <= TOTAL);
        assert!(s.get("s0", 100).is_none());
        assert!(s.get(&format!("s{}", TOTAL + 49), 100).is_some());
    }

    #[test]
    fn completion_is_remembered_and_sign_out_kills_the_browsers_states() {
        let s = OAuthStates::default();
        s.insert("a".into(), st(1, 100));
        s.insert("b".into(), st(1, 101));
        s.insert("c".into(), st(2, 101));
        assert!(s.complete("a", "oStudent", [9; 32]));
        assert_eq!(
            s.get("a", 102).and_then(|x| x.completed_openid).as_deref(),
            Some("oStudent")
        );
        s.signed_out(&[8; 32]);
        assert_eq!(s.len(), 3, "another session's sign-out changes nothing");
        s.signed_out(&[9; 32]);
        assert!(s.get("a", 102).is_none() && s.get("b", 102).is_none());
        assert!(s.get("c", 102).is_some(), "another browser keeps its state");
        assert!(!s.complete("a", "oStudent", [9; 32]), "gone for good");
    }
}
