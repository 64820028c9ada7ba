//! The WeChat API client (ureq, blocking): web-authorization calls, with timeouts from the
//! config and WeChat's errcodes turned into typed errors. Never logs a URL: they carry secrets.

use serde::Deserialize;
use serde_json::Value;

use crate::config::TokenApi;
use std::fmt;
use std::time::Duration;

/// A failed call to WeChat.
#[derive(Debug, Clone, PartialEq)]
pub enum WxError {
    /// WeChat answered with a non-zero errcode.
    Api { errcode: i64, errmsg: String },
    /// No complete answer within `timeout_secs`.
    Timeout,
    /// Could not connect or the connection broke.
    Network(String),
    /// An answer that is not what the API promises.
    BadResponse(String),
}

impl fmt::Display for WxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WxError::Api { errcode, errmsg } => {
                write!(
                    f,
                    "WeChat errcode {errcode} ({})",
                    errcode_meaning(*errcode).unwrap_or(errmsg)
                )
            }
            WxError::Timeout => f.write_str("WeChat did not answer in time"),
            WxError::Network(m) => write!(f, "cannot reach WeChat: {m}"),
            WxError::BadResponse(m) => write!(f, "unexpected answer from WeChat: {m}"),
        }
    }
}

impl std::error::Error for WxError {}

impl WxError {
    pub fn errcode(&self) -> Option<i64> {
        match self {
            WxError::Api { errcode, .. } => Some(*errcode),
            _ => None,
        }
    }
    pub fn is_timeout(&self) -> bool {
        matches!(self, WxError::Timeout)
    }
    /// The OAuth code is invalid, used, expired or missing.
    pub fn is_bad_code(&self) -> bool {
        matches!(self.errcode(), Some(40029 | 40163 | 42003 | 41008))
    }
    /// The basic access_token is invalid, not the latest, or expired.
    pub fn is_bad_token(&self) -> bool {
        matches!(self.errcode(), Some(40001 | 40014 | 42001))
    }
    /// WeChat is busy (-1): worth retrying after a pause.
    pub fn is_busy(&self) -> bool {
        self.errcode() == Some(-1)
    }
    /// A call quota is used up: 45009 (daily) or 45011 (per minute). Retrying at once only
    /// burns more of it.
    pub fn is_quota(&self) -> bool {
        matches!(self.errcode(), Some(45009 | 45011))
    }
}

/// What an errcode means, for operators reading logs and `wxgrades check`.
pub fn errcode_meaning(code: i64) -> Option<&'static str> {
    Some(match code {
        -1 => "system busy, retry later",
        40001 => "invalid credential: AppSecret wrong or access_token not the latest",
        40003 => "invalid openid",
        40013 => "invalid AppID",
        40014 => "invalid access_token",
        40029 => "invalid OAuth code",
        40037 => "invalid template_id",
        40125 => "invalid AppSecret",
        40163 => "OAuth code already used",
        40164 => "caller IP not in the account's IP whitelist",
        41008 => "missing OAuth code",
        42001 => "access_token expired",
        42003 => "OAuth code expired",
        43004 => "user does not follow the account",
        43101 => "user refuses messages",
        45009 => "daily API quota reached",
        45011 => "API called too often (per-minute quota)",
        40016 | 40023 => "menu: too many or too few buttons",
        40017 | 40024 => "menu: invalid button type",
        40018 | 40025 => "menu: button name too long",
        40019 | 40026 => "menu: button key too long",
        40020 | 40027 => "menu: button URL too long",
        40054 | 40055 => {
            "menu: a button URL's domain is not allowed (set the JS/web domain in the account settings)"
        }
        47003 => "template argument invalid",
        48001 => "API not authorized for this account",
        _ => return None,
    })
}

/// The answer of `sns/oauth2/access_token` and `sns/oauth2/refresh_token`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct OAuthToken {
    pub access_token: String,
    #[serde(default)]
    pub expires_in: i64,
    #[serde(default)]
    pub refresh_token: String,
    pub openid: String,
    #[serde(default)]
    pub scope: String,
    #[serde(default)]
    pub unionid: Option<String>,
    #[serde(default)]
    pub is_snapshotuser: Option<i64>,
}

/// The answer of `sns/userinfo`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct UserInfo {
    pub openid: String,
    #[serde(default)]
    pub nickname: Option<String>,
    #[serde(default)]
    pub headimgurl: Option<String>,
    #[serde(default)]
    pub unionid: Option<String>,
}

/// A basic access_token as WeChat issued it (`cgi-bin/token` or `cgi-bin/stable_token`).
#[derive(Clone, PartialEq, Deserialize)]
pub struct IssuedToken {
    pub access_token: String,
    #[serde(default)]
    pub expires_in: i64,
}

impl fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedToken")
            .field("access_token", &"<redacted>")
            .field("expires_in", &self.expires_in)
            .finish()
    }
}

/// A blocking client for one official account.
pub struct WxClient {
    agent: ureq::Agent,
    api_base: String,
    app_id: String,
    app_secret: String,
}

impl fmt::Debug for WxClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WxClient")
            .field("api_base", &self.api_base)
            .field("app_id", &self.app_id)
            .finish_non_exhaustive()
    }
}

const MAX_ANSWER: u64 = 1024 * 1024;

impl WxClient {
    pub fn new(api_base: &str, app_id: &str, app_secret: &str, timeout_secs: u64) -> WxClient {
        let t = Duration::from_secs(timeout_secs);
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(t))
            .timeout_connect(Some(t))
            .http_status_as_error(false)
            .user_agent("wxgrades")
            .build()
            .into();
        WxClient {
            agent,
            api_base: api_base.trim_end_matches('/').to_string(),
            app_id: app_id.to_string(),
            app_secret: app_secret.to_string(),
        }
    }

    pub fn app_id(&self) -> &str {
        &self.app_id
    }

    /// GET `{api_base}{path}` with the query pairs; the JSON answer with errcode checked.
    pub fn get_json(&self, path: &str, query: &[(&str, &str)]) -> Result<Value, WxError> {
        let mut req = self.agent.get(format!("{}{}", self.api_base, path));
        for (k, v) in query {
            req = req.query(*k, *v);
        }
        let resp = req.call().map_err(transport_error)?;
        read_answer(resp)
    }

    /// POST JSON to `{api_base}{path}` with the query pairs; the JSON answer with errcode checked.
    pub fn post_json(
        &self,
        path: &str,
        query: &[(&str, &str)],
        body: &Value,
    ) -> Result<Value, WxError> {
        let mut req = self
            .agent
            .post(format!("{}{}", self.api_base, path))
            .header("Content-Type", "application/json; charset=utf-8");
        for (k, v) in query {
            req = req.query(*k, *v);
        }
        let resp = req.send(body.to_string()).map_err(transport_error)?;
        read_answer(resp)
    }

    /// Exchange a web-authorization code (once) for the user's openid and token.
    pub fn exchange_code(&self, code: &str) -> Result<OAuthToken, WxError> {
        let v = self.get_json(
            "/sns/oauth2/access_token",
            &[
                ("appid", &self.app_id),
                ("secret", &self.app_secret),
                ("code", code),
                ("grant_type", "authorization_code"),
            ],
        )?;
        decode(v)
    }

    pub fn refresh_oauth(&self, refresh_token: &str) -> Result<OAuthToken, WxError> {
        let v = self.get_json(
            "/sns/oauth2/refresh_token",
            &[
                ("appid", &self.app_id),
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
            ],
        )?;
        decode(v)
    }

    pub fn userinfo(&self, access_token: &str, openid: &str) -> Result<UserInfo, WxError> {
        let v = self.get_json(
            "/sns/userinfo",
            &[
                ("access_token", access_token),
                ("openid", openid),
                ("lang", "zh_CN"),
            ],
        )?;
        decode(v)
    }

    /// Fetch a basic access_token. `Stable` asks `cgi-bin/stable_token` (the same token while it
    /// is valid, unless `force_refresh`); `Classic` asks `cgi-bin/token` (a new token each time,
    /// which retires the previous one after 5 minutes). Callers cache the answer: see
    /// `wechat::token`.
    pub fn fetch_basic_token(
        &self,
        api: TokenApi,
        force_refresh: bool,
    ) -> Result<IssuedToken, WxError> {
        let v = match api {
            TokenApi::Stable => self.post_json(
                "/cgi-bin/stable_token",
                &[],
                &serde_json::json!({
                    "grant_type": "client_credential",
                    "appid": self.app_id,
                    "secret": self.app_secret,
                    "force_refresh": force_refresh,
                }),
            )?,
            TokenApi::Classic => self.get_json(
                "/cgi-bin/token",
                &[
                    ("grant_type", "client_credential"),
                    ("appid", &self.app_id),
                    ("secret", &self.app_secret),
                ],
            )?,
        };
        let t: IssuedToken = decode(v)?;
        if t.access_token.is_empty() {
            return Err(WxError::BadResponse("empty access_token".into()));
        }
        Ok(t)
    }

    /// Whether a web-authorization access_token is still valid for `openid`.
    pub fn check_oauth(&self, access_token: &str, openid: &str) -> Result<bool, WxError> {
        match self.get_json(
            "/sns/auth",
            &[("access_token", access_token), ("openid", openid)],
        ) {
            Ok(_) => Ok(true),
            Err(WxError::Api {
                errcode: 40003 | 40014 | 42001,
                ..
            }) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

fn decode<T: for<'de> Deserialize<'de>>(v: Value) -> Result<T, WxError> {
    serde_json::from_value(v).map_err(|e| WxError::BadResponse(e.to_string()))
}

fn transport_error(e: ureq::Error) -> WxError {
    match e {
        ureq::Error::Timeout(_) => WxError::Timeout,
        ureq::Error::Io(io)
            if io.kind() == std::io::ErrorKind::TimedOut
                || io.kind() == std::io::ErrorKind::WouldBlock =>
        {
            WxError::Timeout
        }
        other => WxError::Network(strip_query(&other.to_string())),
    }
}

/// Error texts may quote the URL; its query carries secrets.
fn strip_query(s: &str) -> String {
    match s.find('?') {
        Some(i) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

fn read_answer(mut resp: ureq::http::Response<ureq::Body>) -> Result<Value, WxError> {
    let status = resp.status().as_u16();
    let text = resp
        .body_mut()
        .with_config()
        .limit(MAX_ANSWER)
        .read_to_string()
        .map_err(transport_error)?;
    if status != 200 {
        return Err(WxError::BadResponse(format!("HTTP status {status}")));
    }
    let v: Value =
        serde_json::from_str(&text).map_err(|e| WxError::BadResponse(format!("not JSON: {e}")))?;
    match v.get("errcode").and_then(Value::as_i64) {
        Some(0) | None => Ok(v),
        Some(code) => Err(WxError::Api {
            errcode: code,
            errmsg: v
                .get("errmsg")
                .and_then(Value::as_str)
                .unwrap_or("")
                .chars()
                .take(200)
                .collect(),
        }),
    }
}
