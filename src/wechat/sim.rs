//! The WeChat simulator of demo mode: demo users, the codes and tokens it issues, and the
//! answers of the `sns/*` API. Served under `/_sim/` by `handlers::sim`, and reached by the
//! product through its ordinary HTTP client, so demo mode runs the production code path.

use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Mutex;

use crate::config::Config;
use crate::secret;
use crate::wechat::sim_account::SimAccount;

/// A WeChat user of the simulator.
pub struct DemoUser {
    pub openid: &'static str,
    pub nickname: &'static str,
    pub color: &'static str,
}

pub const DEMO_USERS: &[DemoUser] = &[
    DemoUser {
        openid: "oDemo_LinXiaoyu_0001",
        nickname: "林小雨",
        color: "#07c160",
    },
    DemoUser {
        openid: "oDemo_ZhangWei_00002",
        nickname: "张伟",
        color: "#10aeff",
    },
    DemoUser {
        openid: "oDemo_WangFang_00003",
        nickname: "王芳",
        color: "#fa9d3b",
    },
    DemoUser {
        openid: "oDemo_ChenChen_00004",
        nickname: "陈晨",
        color: "#a66bff",
    },
];

/// How long a code lives unused, as at WeChat.
const CODE_TTL_SECS: u64 = 300;

struct Code {
    openid: String,
    scope: String,
    issued: std::time::Instant,
    used: bool,
}

pub struct Simulator {
    app_id: String,
    app_secret: String,
    public_url: String,
    codes: Mutex<HashMap<String, Code>>,
    /// web access_token → (openid, scope)
    tokens: Mutex<HashMap<String, (String, String)>>,
    /// The official account: `cgi-bin/*` and the demo users' phones.
    pub account: SimAccount,
}

/// A simulated API answer: errcode errors are JSON too, as at WeChat.
pub type SimAnswer = Value;

fn error(code: i64, msg: &str) -> Value {
    json!({"errcode": code, "errmsg": msg})
}

impl Simulator {
    pub fn new(config: &Config) -> Simulator {
        Simulator {
            app_id: config.wechat.app_id.clone(),
            app_secret: config.wechat.app_secret.clone(),
            public_url: config.public_url.clone(),
            codes: Mutex::new(HashMap::new()),
            tokens: Mutex::new(HashMap::new()),
            account: SimAccount::new(config),
        }
    }

    pub fn app_id(&self) -> &str {
        &self.app_id
    }

    pub fn user(openid: &str) -> Option<&'static DemoUser> {
        DEMO_USERS.iter().find(|u| u.openid == openid)
    }

    /// Whether WeChat would accept this redirect_uri for the account (same domain).
    pub fn redirect_allowed(&self, redirect_uri: &str) -> bool {
        redirect_uri.starts_with(&format!("{}/", self.public_url))
    }

    /// The user agreed: issue a single-use code.
    pub fn issue_code(&self, openid: &str, scope: &str) -> String {
        let code = secret::random_hex::<16>();
        if let Ok(mut m) = self.codes.lock() {
            m.retain(|_, c| c.issued.elapsed().as_secs() < CODE_TTL_SECS * 2);
            m.insert(
                code.clone(),
                Code {
                    openid: openid.to_string(),
                    scope: scope.to_string(),
                    issued: std::time::Instant::now(),
                    used: false,
                },
            );
        }
        code
    }

    /// `sns/oauth2/access_token`.
    pub fn exchange(&self, appid: &str, secret_given: &str, code: &str) -> SimAnswer {
        if appid != self.app_id {
            return error(40013, "invalid appid");
        }
        if !secret::constant_time_eq(secret_given.as_bytes(), self.app_secret.as_bytes()) {
            return error(40125, "invalid appsecret");
        }
        let Ok(mut codes) = self.codes.lock() else {
            return error(-1, "system error");
        };
        let Some(c) = codes.get_mut(code) else {
            return error(40029, "invalid code");
        };
        if c.used {
            return error(40163, "code been used");
        }
        if c.issued.elapsed().as_secs() >= CODE_TTL_SECS {
            return error(42003, "code expired");
        }
        c.used = true;
        let token = secret::random_hex::<24>();
        if let Ok(mut t) = self.tokens.lock() {
            t.insert(token.clone(), (c.openid.clone(), c.scope.clone()));
        }
        json!({
            "access_token": token,
            "expires_in": 7200,
            "refresh_token": secret::random_hex::<24>(),
            "openid": c.openid,
            "scope": c.scope,
        })
    }

    /// `sns/userinfo`.
    pub fn userinfo(&self, access_token: &str, openid: &str) -> SimAnswer {
        let known = self
            .tokens
            .lock()
            .ok()
            .and_then(|t| t.get(access_token).cloned());
        match known {
            Some((o, scope)) if o == openid && scope == "snsapi_userinfo" => {
                let nickname = Self::user(openid).map(|u| u.nickname).unwrap_or("微信用户");
                json!({
                    "openid": openid,
                    "nickname": nickname,
                    "headimgurl": format!("{}/_sim/avatar/{}.svg", self.public_url, openid),
                })
            }
            Some((o, _)) if o == openid => error(48001, "api unauthorized (scope is snsapi_base)"),
            _ => error(40014, "invalid access_token"),
        }
    }

    /// `sns/auth`.
    pub fn check(&self, access_token: &str, openid: &str) -> SimAnswer {
        let ok = self
            .tokens
            .lock()
            .ok()
            .and_then(|t| t.get(access_token).map(|(o, _)| o == openid))
            .unwrap_or(false);
        if ok {
            error(0, "ok")
        } else {
            error(40003, "invalid openid")
        }
    }
}

/// A round avatar with the user's first character, as SVG.
pub fn avatar_svg(openid: &str) -> String {
    let (initial, color) = match Simulator::user(openid) {
        Some(u) => (u.nickname.chars().next().unwrap_or('微'), u.color),
        None => ('微', "#888888"),
    };
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 64 64\"><rect width=\"64\" height=\"64\" rx=\"8\" fill=\"{color}\"/><text x=\"32\" y=\"42\" font-size=\"30\" text-anchor=\"middle\" fill=\"#fff\" font-family=\"sans-serif\">{initial}</text></svg>"
    )
}
