//! The basic access_token (普通 access_token) of the official account: one token for the
//! process, cached with its expiry where [`TokenEnv`] keeps it (the data file, so a restart does
//! not refresh), refreshed [`REFRESH_AHEAD_SECS`] before it expires by exactly one thread while
//! the others wait (single flight: a mutex-guarded slot and a condition variable; the network
//! call is made with the mutex released and never inside a redb write transaction).
//!
//! Errors: a call refused with 40001/40014/42001 expires only the token that failed, and is
//! retried once with a fresh one; errcode -1 (busy) is retried a few times with a growing pause;
//! quota errors (45009, 45011) are returned at once (retrying burns more quota), recognisable
//! with [`WxError::is_quota`].

use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

use crate::config::TokenApi;
use crate::wechat::client::{WxClient, WxError};

/// Refresh this long before WeChat's expiry.
pub const REFRESH_AHEAD_SECS: i64 = 300;
/// Pauses before the retries of a call answered with errcode -1 (system busy).
const BUSY_BACKOFF_MS: [u64; 3] = [200, 500, 1000];
/// Longest a waiter sleeps before looking at the slot again (the fetch itself is bounded by the
/// client's timeout; this only guards against a lost wake-up).
const WAIT_SLICE: Duration = Duration::from_secs(5);

/// A token with its absolute expiry (Unix seconds), as cached.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct CachedToken {
    /// The account the token belongs to: a cache written for another AppID is ignored.
    pub app_id: String,
    pub token: String,
    pub expires_at: i64,
}

impl fmt::Debug for CachedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachedToken")
            .field("app_id", &self.app_id)
            .field("token", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// Where the token is kept across restarts, and what time it is.
pub trait TokenEnv {
    fn now(&self) -> i64;
    /// The cached token, if any (errors are the implementation's to log; `None` then).
    fn load(&self) -> Option<CachedToken>;
    /// Keep `token` (errors are the implementation's to log: the token still works in memory).
    fn save(&self, token: &CachedToken);
}

/// A [`TokenEnv`] that keeps nothing: for commands that cannot open the data file.
pub struct Detached;

impl TokenEnv for Detached {
    fn now(&self) -> i64 {
        crate::clock::unix_now()
    }
    fn load(&self) -> Option<CachedToken> {
        None
    }
    fn save(&self, _: &CachedToken) {}
}

#[derive(Default)]
struct Slot {
    /// The cache was read from the env (once per process).
    loaded: bool,
    current: Option<CachedToken>,
    /// A thread is fetching a new token now.
    fetching: bool,
    /// Incremented when a fetch ends; a waiter that sees it change knows its fetch is over.
    round: u64,
    /// Why the last fetch failed (handed to the threads that waited for it).
    last_error: Option<WxError>,
    /// The last token WeChat refused: if the stable API hands it back, force a refresh once.
    refused: Option<String>,
}

/// The process's basic access_token.
pub struct AccessTokens {
    api: TokenApi,
    slot: Mutex<Slot>,
    done: Condvar,
}

/// Resets the slot if the fetching thread unwinds, so that waiters are not left waiting.
struct FetchGuard<'a> {
    tokens: &'a AccessTokens,
    armed: bool,
}

impl Drop for FetchGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            let mut s = self.tokens.lock();
            s.fetching = false;
            s.round += 1;
            s.last_error = Some(WxError::BadResponse("token fetch aborted".into()));
            self.tokens.done.notify_all();
        }
    }
}

impl AccessTokens {
    pub fn new(api: TokenApi) -> AccessTokens {
        AccessTokens {
            api,
            slot: Mutex::new(Slot::default()),
            done: Condvar::new(),
        }
    }

    pub fn api(&self) -> TokenApi {
        self.api
    }

    fn lock(&self) -> MutexGuard<'_, Slot> {
        self.slot.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A valid token: the cached one, or a new one fetched by this thread or another.
    pub fn get(&self, client: &WxClient, env: &dyn TokenEnv) -> Result<String, WxError> {
        let mut s = self.lock();
        if !s.loaded {
            s.current = env.load().filter(|t| t.app_id == client.app_id());
            s.loaded = true;
        }
        let mut waited_for: Option<u64> = None;
        loop {
            let now = env.now();
            if let Some(t) = &s.current {
                if t.expires_at - REFRESH_AHEAD_SECS > now {
                    return Ok(t.token.clone());
                }
                // Inside the refresh window but still valid while another thread refreshes:
                // no need to wait for it.
                if s.fetching && t.expires_at > now + 5 {
                    return Ok(t.token.clone());
                }
            }
            if let Some(round) = waited_for {
                if s.round != round {
                    // The fetch we waited for is over and left no usable token.
                    return Err(s.last_error.clone().unwrap_or_else(|| {
                        WxError::BadResponse("no access_token after refresh".into())
                    }));
                }
            }
            if s.fetching {
                waited_for.get_or_insert(s.round);
                s = self
                    .done
                    .wait_timeout(s, WAIT_SLICE)
                    .map(|(g, _)| g)
                    .unwrap_or_else(|p| p.into_inner().0);
                continue;
            }
            // This thread fetches.
            s.fetching = true;
            let refused = s.refused.clone();
            drop(s);
            let mut guard = FetchGuard {
                tokens: self,
                armed: true,
            };
            let result = self.fetch(client, env, refused.as_deref());
            if let Ok(t) = &result {
                env.save(t);
            }
            guard.armed = false;
            let mut s = self.lock();
            s.fetching = false;
            s.round += 1;
            let out = match result {
                Ok(t) => {
                    let token = t.token.clone();
                    s.current = Some(t);
                    s.last_error = None;
                    s.refused = None;
                    Ok(token)
                }
                Err(e) => {
                    s.last_error = Some(e.clone());
                    Err(e)
                }
            };
            self.done.notify_all();
            return out;
        }
    }

    /// Fetch a token now, whatever the cache holds (`wxgrades check` proves the credentials
    /// with it), and keep it. Waits for a fetch already under way instead of starting another.
    pub fn refresh_now(
        &self,
        client: &WxClient,
        env: &dyn TokenEnv,
    ) -> Result<CachedToken, WxError> {
        {
            let mut s = self.lock();
            s.loaded = true;
            if !s.fetching {
                if let Some(t) = &mut s.current {
                    t.expires_at = 0;
                }
            }
        }
        self.get(client, env)?;
        self.lock()
            .current
            .clone()
            .ok_or_else(|| WxError::BadResponse("no access_token".into()))
    }

    /// WeChat refused `token` (40001/40014/42001): expire it, unless another thread already
    /// replaced it.
    pub fn invalidate(&self, token: &str, env: &dyn TokenEnv) {
        let mut s = self.lock();
        let expired = match &mut s.current {
            Some(t) if t.token == token && t.expires_at != 0 => {
                t.expires_at = 0;
                Some(t.clone())
            }
            _ => None,
        };
        if let Some(t) = expired {
            s.refused = Some(token.to_string());
            drop(s);
            env.save(&t);
        }
    }

    /// Run `call` with a valid token: refused with 40001/40014/42001 → that token is expired and
    /// the call retried once with a fresh one; -1 → retried after a pause, a few times.
    pub fn call<T>(
        &self,
        client: &WxClient,
        env: &dyn TokenEnv,
        mut call: impl FnMut(&str) -> Result<T, WxError>,
    ) -> Result<T, WxError> {
        let mut refreshed = false;
        let mut busy = 0usize;
        loop {
            let token = self.get(client, env)?;
            match call(&token) {
                Err(e) if e.is_bad_token() && !refreshed => {
                    log::warn!("WeChat refused the access_token ({e}); fetching a new one");
                    refreshed = true;
                    self.invalidate(&token, env);
                }
                Err(e) if e.is_busy() && busy < BUSY_BACKOFF_MS.len() => {
                    std::thread::sleep(Duration::from_millis(BUSY_BACKOFF_MS[busy]));
                    busy += 1;
                }
                other => return other,
            }
        }
    }

    /// One fetch from WeChat, with -1 retried; `refused` is the token just refused, if any.
    fn fetch(
        &self,
        client: &WxClient,
        env: &dyn TokenEnv,
        refused: Option<&str>,
    ) -> Result<CachedToken, WxError> {
        let mut busy = 0usize;
        let mut force = false;
        loop {
            let started = env.now();
            match client.fetch_basic_token(self.api, force) {
                Ok(t) => {
                    if self.api == TokenApi::Stable && !force && refused == Some(&*t.access_token) {
                        // The stable API returns the same token while WeChat thinks it valid;
                        // this one was just refused, so ask for a new one (at most once).
                        log::warn!("stable_token returned the refused token; forcing a refresh");
                        force = true;
                        continue;
                    }
                    let lifetime = if t.expires_in > 0 { t.expires_in } else { 7200 };
                    log::info!(
                        "fetched a new WeChat access_token (valid {lifetime} s, {})",
                        match self.api {
                            TokenApi::Stable => "stable_token",
                            TokenApi::Classic => "token",
                        }
                    );
                    return Ok(CachedToken {
                        app_id: client.app_id().to_string(),
                        token: t.access_token,
                        expires_at: started + lifetime,
                    });
                }
                Err(e) if e.is_busy() && busy < BUSY_BACKOFF_MS.len() => {
                    std::thread::sleep(Duration::from_millis(BUSY_BACKOFF_MS[busy]));
                    busy += 1;
                }
                Err(e) => {
                    log::warn!("cannot fetch the WeChat access_token: {e}");
                    return Err(e);
                }
            }
        }
    }
}
