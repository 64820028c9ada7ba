//! Web authorization (网页授权) rules: the local-path check on `next`, the authorize URL in
//! exactly WeChat's parameter order, one-time states bound to a browser (kept in memory by
//! `oauth_states`, never in the data file), and the callback that exchanges a code once and
//! opens a session. [`OAuth`] is the service's state.

use crate::config::Scope;
use crate::error::{AppError, OAuthFailure};
use crate::secret;
use crate::service::locks::KeyedLocks;
use crate::service::oauth_states::{OAuthStates, PendingState};
use crate::service::session;
use crate::service::Ctx;
use crate::store::auth::WxUser;
use crate::url::percent_encode;

/// A state is good for this long after `/wx/oauth/start`.
pub const STATE_TTL: i64 = crate::service::oauth_states::STATE_TTL;
/// The cookie that binds states to a browser.
pub const BROWSER_COOKIE: &str = "wxg_b";

/// The web-authorization service's state: the pending states (in memory) and one lock per
/// state, so that a double callback waits for the first instead of spending the code twice.
#[derive(Default)]
pub struct OAuth {
    pub states: OAuthStates,
    locks: KeyedLocks,
}

/// The authorize URL, parameters in the order WeChat's pattern check demands.
pub fn authorize_url(
    open_base: &str,
    app_id: &str,
    redirect_uri: &str,
    scope: Scope,
    state: &str,
) -> String {
    format!(
        "{open_base}/connect/oauth2/authorize?appid={app_id}&redirect_uri={}&response_type=code&scope={}&state={state}&connect_redirect=1#wechat_redirect",
        percent_encode(redirect_uri),
        scope.as_str()
    )
}

/// The outcome of `/wx/oauth/start`.
pub struct Started {
    pub location: String,
    /// A new browser-binding cookie value to set, when the browser had none.
    pub new_browser_cookie: Option<String>,
}

/// Begin web authorization; `next` is where to return afterwards, already checked to be a
/// local path (`http::next`), `/` when absent.
pub fn start(
    ctx: &Ctx,
    oauth: &OAuth,
    next: Option<String>,
    scope_raw: Option<&str>,
    browser_cookie: Option<&str>,
) -> Result<Started, AppError> {
    let next = next.unwrap_or_else(|| "/".to_string());
    let scope = match scope_raw {
        Some("snsapi_userinfo") => Scope::UserInfo,
        _ => ctx.config.wechat.scope,
    };
    let (browser, new_cookie) = match browser_cookie.filter(|c| is_token(c)) {
        Some(c) => (c.to_string(), None),
        None => {
            let c = secret::random_hex::<32>();
            (c.clone(), Some(c))
        }
    };
    let state = secret::random_hex::<16>();
    oauth.states.insert(
        state.clone(),
        PendingState::new(
            browser_hash(&browser),
            next,
            scope.as_str().to_string(),
            ctx.clock.now(),
        ),
    );
    let redirect_uri = format!("{}/wx/oauth/callback", ctx.config.public_url);
    Ok(Started {
        location: authorize_url(
            &ctx.config.wechat.open_base,
            &ctx.config.wechat.app_id,
            &redirect_uri,
            scope,
            &state,
        ),
        new_browser_cookie: new_cookie,
    })
}

/// The outcome of a successful callback: where to go and the new session's secret id.
pub struct SignedIn {
    pub next: String,
    pub session_id: String,
}

pub fn callback(
    ctx: &Ctx,
    oauth: &OAuth,
    code: Option<&str>,
    state: Option<&str>,
    browser_cookie: Option<&str>,
) -> Result<SignedIn, AppError> {
    let Some(state) = state.filter(|s| {
        !s.is_empty() && s.len() <= 128 && s.chars().all(|c| c.is_ascii_alphanumeric())
    }) else {
        ctx.metrics.event("oauth", "bad_state");
        return Err(AppError::OAuth(OAuthFailure::BadState));
    };
    let code = match code.filter(|c| !c.is_empty()) {
        Some(c) if c.len() <= 512 => c,
        Some(_) => return Err(AppError::OAuth(OAuthFailure::BadCode)),
        None => {
            // "You refused" only to the browser that asked, while its state is alive; a refusal
            // opened later or elsewhere is a sign-in that has expired.
            if live_state(ctx, &oauth.states, state, browser_cookie).is_none() {
                ctx.metrics.event("oauth", "bad_state");
                return Err(AppError::OAuth(OAuthFailure::BadState));
            }
            ctx.metrics.event("oauth", "refused");
            return Err(AppError::OAuth(OAuthFailure::Refused));
        }
    };
    // One callback per state at a time: a double callback waits for the first, then finds it
    // completed instead of spending the code a second time.
    oauth.locks.with(state, || {
        callback_locked(ctx, &oauth.states, code, state, browser_cookie)
    })
}

fn callback_locked(
    ctx: &Ctx,
    states: &OAuthStates,
    code: &str,
    state: &str,
    browser_cookie: Option<&str>,
) -> Result<SignedIn, AppError> {
    let now = ctx.clock.now();
    let Some(st) = live_state(ctx, states, state, browser_cookie) else {
        ctx.metrics.event("oauth", "bad_state");
        return Err(AppError::OAuth(OAuthFailure::BadState));
    };
    if let Some(openid) = &st.completed_openid {
        // WeChat, a proxy or the back button called again: no second exchange.
        ctx.metrics.event("oauth", "repeat");
        let session_id = session::open(ctx, session::Kind::Student, openid)?;
        states.complete(state, openid, session::hash(&session_id));
        return Ok(SignedIn {
            next: st.next,
            session_id,
        });
    }
    let token = match ctx.wx.exchange_code(code) {
        Ok(t) => t,
        Err(e) => {
            ctx.metrics.event(
                "wechat_error",
                e.errcode().map(|c| c.to_string()).unwrap_or_else(|| {
                    if e.is_timeout() {
                        "timeout".into()
                    } else {
                        "transport".into()
                    }
                }),
            );
            if e.is_bad_code() {
                ctx.metrics.event("oauth", "bad_code");
                return Err(AppError::OAuth(OAuthFailure::BadCode));
            }
            log::warn!("OAuth code exchange failed: {e}");
            ctx.metrics.event("oauth", "wechat_error");
            return Err(AppError::WeChat(e));
        }
    };
    if token.is_snapshotuser == Some(1) {
        ctx.metrics.event("oauth", "snapshot");
        return Err(AppError::OAuth(OAuthFailure::Snapshot));
    }
    if token.openid.is_empty() || token.openid.len() > 128 {
        return Err(AppError::WeChat(
            crate::wechat::client::WxError::BadResponse("no openid".into()),
        ));
    }
    let user = if token
        .scope
        .split(',')
        .any(|s| s.trim() == "snsapi_userinfo")
    {
        match ctx.wx.userinfo(&token.access_token, &token.openid) {
            Ok(info) => Some(WxUser {
                nickname: info
                    .nickname
                    .filter(|n| !n.is_empty())
                    .map(|n| n.chars().take(64).collect()),
                avatar_url: info
                    .headimgurl
                    .filter(|u| u.starts_with("https://") || u.starts_with("http://")),
                unionid: info.unionid.or(token.unionid.clone()),
                updated: now,
            }),
            Err(e) => {
                // Signing in does not depend on the nickname: go on without it.
                log::warn!("userinfo failed, signing in without nickname: {e}");
                None
            }
        }
    } else {
        None
    };
    let session_id = secret::random_hex::<32>();
    let s = session::student_record(&token.openid, now);
    ctx.store.complete_login(
        &token.openid,
        &session::hash(&session_id),
        &s,
        user.as_ref(),
    )?;
    // The callback holds this state's lock: nobody completed it meanwhile. If it is gone (its
    // browser signed out in between), the sign-in still stands but cannot be repeated.
    states.complete(state, &token.openid, session::hash(&session_id));
    ctx.metrics.event("oauth", "ok");
    Ok(SignedIn {
        next: st.next,
        session_id,
    })
}

/// The state, when it exists, was started by this browser (its cookie) and has not expired.
fn live_state(
    ctx: &Ctx,
    states: &OAuthStates,
    state: &str,
    browser_cookie: Option<&str>,
) -> Option<PendingState> {
    let now = ctx.clock.now();
    let st = states.get(state, now)?;
    let same_browser = browser_cookie
        .filter(|c| is_token(c))
        .map(|c| secret::constant_time_eq(&browser_hash(c), &st.browser))
        .unwrap_or(false);
    if !same_browser || now - st.created >= STATE_TTL || now < st.created - 60 {
        return None;
    }
    Some(st)
}

fn browser_hash(cookie: &str) -> [u8; 32] {
    secret::sha256(&[b"wxgrades-browser", cookie.as_bytes()])
}

fn is_token(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorize_url_is_exact() {
        let u = authorize_url(
            "https://open.weixin.qq.com",
            "wx520c15f417810387",
            "https://jw.example.edu.cn/wx/oauth/callback",
            Scope::Base,
            "abc123",
        );
        assert_eq!(
            u,
            "https://open.weixin.qq.com/connect/oauth2/authorize?appid=wx520c15f417810387&redirect_uri=https%3A%2F%2Fjw.example.edu.cn%2Fwx%2Foauth%2Fcallback&response_type=code&scope=snsapi_base&state=abc123&connect_redirect=1#wechat_redirect"
        );
    }
}
