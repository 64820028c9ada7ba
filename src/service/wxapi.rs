//! Calls to WeChat's `cgi-bin` API with the process's basic access_token: the token cached in
//! the data file (META `wechat_access_token`), the ctx's clock, and errcodes counted for
//! `/metrics`.

use serde_json::Value;

use crate::service::Ctx;
use crate::store::Store;
use crate::wechat::client::WxError;
use crate::wechat::token::{CachedToken, TokenEnv};

/// META key of the cached basic access_token.
pub const TOKEN_KEY: &str = "wechat_access_token";

/// The token cache of a process that has the data file open.
pub struct StoreTokenEnv<'a> {
    pub store: &'a Store,
    pub now: &'a dyn Fn() -> i64,
}

impl TokenEnv for StoreTokenEnv<'_> {
    fn now(&self) -> i64 {
        (self.now)()
    }

    fn load(&self) -> Option<CachedToken> {
        match self.store.meta_get(TOKEN_KEY) {
            Ok(Some(bytes)) => match serde_json::from_slice(&bytes) {
                Ok(t) => Some(t),
                Err(e) => {
                    log::warn!("ignoring the cached access_token: {e}");
                    None
                }
            },
            Ok(None) => None,
            Err(e) => {
                log::warn!("cannot read the cached access_token: {e}");
                None
            }
        }
    }

    fn save(&self, token: &CachedToken) {
        let saved = serde_json::to_vec(token)
            .map_err(|e| e.to_string())
            .and_then(|b| {
                self.store
                    .meta_set(TOKEN_KEY, &b)
                    .map_err(|e| e.to_string())
            });
        if let Err(e) = saved {
            log::warn!("cannot cache the access_token in the data file: {e}");
        }
    }
}

fn with_env<T>(ctx: &Ctx, f: impl FnOnce(&StoreTokenEnv<'_>) -> T) -> T {
    let now = || ctx.clock.now();
    let env = StoreTokenEnv {
        store: &ctx.store,
        now: &now,
    };
    f(&env)
}

/// A valid basic access_token.
pub fn access_token(ctx: &Ctx) -> Result<String, WxError> {
    with_env(ctx, |env| ctx.tokens.get(&ctx.wx, env)).inspect_err(|e| count_error(ctx, e))
}

/// Run `call` with the access_token (refreshed once on 40001/40014/42001, -1 retried).
pub fn call<T>(ctx: &Ctx, call: impl FnMut(&str) -> Result<T, WxError>) -> Result<T, WxError> {
    with_env(ctx, |env| ctx.tokens.call(&ctx.wx, env, call)).inspect_err(|e| count_error(ctx, e))
}

/// POST `body` to `{api_base}{path}?access_token=…`.
pub fn post(ctx: &Ctx, path: &str, body: &Value) -> Result<Value, WxError> {
    call(ctx, |token| {
        ctx.wx.post_json(path, &[("access_token", token)], body)
    })
}

/// GET `{api_base}{path}?access_token=…`.
pub fn get(ctx: &Ctx, path: &str) -> Result<Value, WxError> {
    call(ctx, |token| {
        ctx.wx.get_json(path, &[("access_token", token)])
    })
}

/// Fetch a fresh token now and cache it (`wxgrades check`).
pub fn prove_credentials(ctx: &Ctx) -> Result<CachedToken, WxError> {
    with_env(ctx, |env| ctx.tokens.refresh_now(&ctx.wx, env)).inspect_err(|e| count_error(ctx, e))
}

fn count_error(ctx: &Ctx, e: &WxError) {
    let label = match e.errcode() {
        Some(code) => code.to_string(),
        None if e.is_timeout() => "timeout".to_string(),
        None => "transport".to_string(),
    };
    ctx.metrics.event("wechat_error", label);
}

/// How a command (`check`, `menu push`) reached the token cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheUse {
    /// The data file was open: the token was read from and kept in it.
    DataFile,
    /// The data file does not exist yet: nothing was cached.
    NoDataFile,
    /// The running server holds the data file: nothing was cached.
    HeldByServer,
}

/// Run `f` with a WeChat client, the token single-flight and a token cache, for a command run
/// outside the server: the data file's cache when it exists and is free (it is never created
/// here), an uncached one otherwise.
pub fn for_command<T>(
    config: &crate::config::Config,
    f: impl FnOnce(
        &crate::wechat::client::WxClient,
        &crate::wechat::token::AccessTokens,
        &dyn TokenEnv,
    ) -> T,
) -> Result<(T, CacheUse), crate::store::StoreError> {
    use crate::store::StoreError;
    use crate::wechat::client::WxClient;
    use crate::wechat::token::{AccessTokens, Detached};
    let client = WxClient::new(
        &config.wechat.api_base,
        &config.wechat.app_id,
        &config.wechat.app_secret,
        config.wechat.timeout_secs,
    );
    let tokens = AccessTokens::new(config.wechat.token_api);
    if config.data.exists() {
        match Store::open(&config.data) {
            Ok(store) => {
                let now = || Detached.now();
                let env = StoreTokenEnv {
                    store: &store,
                    now: &now,
                };
                return Ok((f(&client, &tokens, &env), CacheUse::DataFile));
            }
            Err(StoreError::Locked(_)) => {
                return Ok((f(&client, &tokens, &Detached), CacheUse::HeldByServer))
            }
            Err(e) => return Err(e),
        }
    }
    Ok((f(&client, &tokens, &Detached), CacheUse::NoDataFile))
}
