//! A fake WeChat API server for integration tests: tiny_http on 127.0.0.1:0, answering the
//! `connect/oauth2/authorize`, `sns/*` and `cgi-bin/*` calls the product makes, with
//! behaviour the test programs (errcodes, delays, snapshot users) and counters it reads back.

#![allow(dead_code)]

use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the fake does when a code is exchanged.
#[derive(Clone, Debug)]
pub struct Login {
    pub openid: String,
    pub scope: String,
    pub snapshot: bool,
    /// Answer this errcode instead of a token.
    pub errcode: Option<i64>,
    /// Wait this long before answering.
    pub delay: Duration,
}

impl Login {
    pub fn user(openid: &str) -> Login {
        Login {
            openid: openid.into(),
            scope: "snsapi_base".into(),
            snapshot: false,
            errcode: None,
            delay: Duration::ZERO,
        }
    }
}

#[derive(Default)]
pub struct State {
    /// The login the next authorize issues a code for.
    pub next_login: Option<Login>,
    /// code → (login, used)
    pub codes: HashMap<String, (Login, bool)>,
    /// Calls per path.
    pub calls: HashMap<String, usize>,
    /// Every request's path and query, in order.
    pub log: Vec<String>,
    /// Bodies POSTed, per path.
    pub posts: HashMap<String, Vec<Value>>,
    /// Errcodes to answer, in order, per path (then normal answers).
    pub scripted: HashMap<String, Vec<i64>>,
    /// Delay before answering any cgi-bin call.
    pub cgi_delay: Duration,
    pub token_counter: usize,
    pub nickname: String,
    /// Template messages delivered, per touser (a repeated client_msg_id is not delivered
    /// again, as at WeChat: one message per openid + client_msg_id within 10 minutes).
    pub delivered: HashMap<String, usize>,
    /// (touser, client_msg_id) → msgid of the message sent for it.
    pub client_msg_ids: HashMap<(String, String), u64>,
    /// Template sends answered as duplicates of an earlier client_msg_id.
    pub suppressed: usize,
    pub msgid_counter: u64,
    /// The last menu created.
    pub menu: Option<Value>,
    /// Hold the template send with this number (1-based) until `release` (at most 30 s):
    /// WeChat has the request and has not answered yet.
    pub hold_send: Option<usize>,
    /// A send is being held now.
    pub holding: bool,
    /// Who answers the next 一次性订阅 consent page, and how (`confirm` or `cancel`); none:
    /// the page answers 404 (the test did not expect it).
    pub next_consent: Option<(String, String)>,
    /// Consents WeChat holds, per (openid, template_id): each allows one message.
    pub consents: HashMap<(String, String), usize>,
    /// 一次性订阅消息 delivered, per touser.
    pub once_delivered: HashMap<String, usize>,
    /// 订阅通知 delivered, per touser.
    pub biz_delivered: HashMap<String, usize>,
    /// The account's 订阅通知 templates (`wxaapi/newtmpl/gettemplate`'s `data`).
    pub sub_templates: Vec<Value>,
}

/// The 一次性订阅消息 and 订阅通知 endpoints.
pub const ONCE_SEND: &str = "/cgi-bin/message/template/subscribe";
pub const BIZ_SEND: &str = "/cgi-bin/message/subscribe/bizsend";

pub struct FakeWeChat {
    pub url: String,
    pub state: Arc<Mutex<State>>,
    server: Arc<tiny_http::Server>,
    pub app_id: String,
    pub app_secret: String,
}

impl Drop for FakeWeChat {
    fn drop(&mut self) {
        self.server.unblock();
    }
}

impl FakeWeChat {
    pub fn start(app_id: &str, app_secret: &str) -> FakeWeChat {
        Self::start_with_threads(app_id, app_secret, 8)
    }

    /// With `threads` answering threads (a slow fake needs many to serve many at once).
    pub fn start_with_threads(app_id: &str, app_secret: &str, threads: usize) -> FakeWeChat {
        let server =
            Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("fake WeChat cannot listen"));
        let port = server.server_addr().to_ip().expect("ip listener").port();
        let state = Arc::new(Mutex::new(State {
            nickname: "测试同学".into(),
            ..State::default()
        }));
        let fake = FakeWeChat {
            url: format!("http://127.0.0.1:{port}"),
            state: state.clone(),
            server: server.clone(),
            app_id: app_id.into(),
            app_secret: app_secret.into(),
        };
        let (id, secret) = (app_id.to_string(), app_secret.to_string());
        // Several threads, so a slow answer does not hold the others.
        for _ in 0..threads {
            let server = server.clone();
            let state = state.clone();
            let (id, secret) = (id.clone(), secret.clone());
            std::thread::spawn(move || {
                while let Ok(mut rq) = server.recv() {
                    let mut body = String::new();
                    let _ = std::io::Read::read_to_string(rq.as_reader(), &mut body);
                    let (status, headers, text) = answer(&state, &id, &secret, rq.url(), &body);
                    let mut resp = tiny_http::Response::from_string(text).with_status_code(status);
                    for (k, v) in headers {
                        if let Ok(h) = tiny_http::Header::from_bytes(k.as_bytes(), v.as_bytes()) {
                            resp.add_header(h);
                        }
                    }
                    let _ = rq.respond(resp);
                }
            });
        }
        fake
    }

    pub fn set_next_login(&self, login: Login) {
        self.state.lock().unwrap().next_login = Some(login);
    }

    pub fn calls(&self, path: &str) -> usize {
        self.state
            .lock()
            .unwrap()
            .calls
            .get(path)
            .copied()
            .unwrap_or(0)
    }

    pub fn log(&self) -> Vec<String> {
        self.state.lock().unwrap().log.clone()
    }

    pub fn script(&self, path: &str, errcodes: &[i64]) {
        self.state
            .lock()
            .unwrap()
            .scripted
            .insert(path.into(), errcodes.to_vec());
    }

    pub fn posts(&self, path: &str) -> Vec<Value> {
        self.state
            .lock()
            .unwrap()
            .posts
            .get(path)
            .cloned()
            .unwrap_or_default()
    }

    /// Template messages delivered to `touser`.
    pub fn delivered(&self, touser: &str) -> usize {
        self.state
            .lock()
            .unwrap()
            .delivered
            .get(touser)
            .copied()
            .unwrap_or(0)
    }

    /// Template messages delivered to anyone.
    pub fn delivered_total(&self) -> usize {
        self.state.lock().unwrap().delivered.values().sum()
    }

    /// Hold the `n`-th template send (1-based) until [`release`](Self::release).
    pub fn hold_template_send(&self, n: usize) {
        self.state.lock().unwrap().hold_send = Some(n);
    }

    /// Whether a held template send is waiting.
    pub fn holding(&self) -> bool {
        self.state.lock().unwrap().holding
    }

    pub fn release(&self) {
        self.state.lock().unwrap().hold_send = None;
    }

    pub fn set_cgi_delay(&self, d: Duration) {
        self.state.lock().unwrap().cgi_delay = d;
    }

    /// The next 一次性订阅 consent page is answered by `openid` with `action`.
    pub fn set_next_consent(&self, openid: &str, action: &str) {
        self.state.lock().unwrap().next_consent = Some((openid.into(), action.into()));
    }

    /// The account's 订阅通知 templates: (priTmplId, content).
    pub fn set_subscribe_templates(&self, templates: &[(&str, &str)]) {
        self.state.lock().unwrap().sub_templates = templates
            .iter()
            .map(|(id, content)| json!({"priTmplId": id, "title": "成绩发布通知", "content": content, "example": "", "type": 2}))
            .collect();
    }

    /// 一次性订阅消息 delivered to `touser`.
    pub fn once_delivered(&self, touser: &str) -> usize {
        let st = self.state.lock().unwrap();
        st.once_delivered.get(touser).copied().unwrap_or(0)
    }

    /// 订阅通知 delivered to `touser`.
    pub fn biz_delivered(&self, touser: &str) -> usize {
        let st = self.state.lock().unwrap();
        st.biz_delivered.get(touser).copied().unwrap_or(0)
    }

    /// Issue a code for `login` directly (as if the user had agreed), without the authorize hop.
    pub fn issue_code(&self, login: Login) -> String {
        let mut st = self.state.lock().unwrap();
        let code = format!("code{}", st.codes.len() + 1);
        st.codes.insert(code.clone(), (login, false));
        code
    }
}

fn query_map(url: &str) -> HashMap<String, String> {
    let q = url.split_once('?').map(|(_, q)| q).unwrap_or("");
    let q = q.split('#').next().unwrap_or("");
    q.split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), decode(v)))
        .collect()
}

fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn err(code: i64) -> Value {
    let errmsg = match code {
        // WeChat names the caller's address; `wxgrades check` prints it.
        40164 => {
            "invalid ip 203.0.113.7 ipv6 ::ffff:203.0.113.7, not in whitelist rid: fake".into()
        }
        _ => format!("fake error {code}"),
    };
    json!({"errcode": code, "errmsg": errmsg})
}

type Answer = (u16, Vec<(String, String)>, String);

fn ok_json(v: Value) -> Answer {
    (
        200,
        vec![("Content-Type".into(), "application/json".into())],
        v.to_string(),
    )
}

fn answer(state: &Mutex<State>, app_id: &str, secret: &str, url: &str, body: &str) -> Answer {
    let path = url.split('?').next().unwrap_or("").to_string();
    let q = query_map(url);
    let (scripted, cgi_delay) = {
        let mut st = state.lock().unwrap();
        *st.calls.entry(path.clone()).or_default() += 1;
        st.log.push(url.to_string());
        if !body.is_empty() {
            let v: Value = serde_json::from_str(body).unwrap_or(Value::String(body.to_string()));
            st.posts.entry(path.clone()).or_default().push(v);
        }
        let scripted = st.scripted.get_mut(&path).and_then(|v| {
            if v.is_empty() {
                None
            } else {
                Some(v.remove(0))
            }
        });
        (scripted, st.cgi_delay)
    };
    if path.starts_with("/cgi-bin/") && !cgi_delay.is_zero() {
        std::thread::sleep(cgi_delay);
    }
    if path == "/cgi-bin/message/template/send" {
        let nth = state.lock().unwrap().posts.get(&path).map_or(0, Vec::len);
        let started = std::time::Instant::now();
        loop {
            let mut st = state.lock().unwrap();
            if st.hold_send != Some(nth) || started.elapsed() > Duration::from_secs(30) {
                st.holding = false;
                break;
            }
            st.holding = true;
            drop(st);
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    if let Some(code) = scripted {
        return ok_json(err(code));
    }
    match path.as_str() {
        "/connect/oauth2/authorize" => {
            let redirect = q.get("redirect_uri").cloned().unwrap_or_default();
            let state_param = q.get("state").cloned().unwrap_or_default();
            let mut st = state.lock().unwrap();
            let Some(mut login) = st.next_login.clone() else {
                // The user refuses.
                return (
                    302,
                    vec![("Location".into(), format!("{redirect}?state={state_param}"))],
                    String::new(),
                );
            };
            login.scope = q.get("scope").cloned().unwrap_or(login.scope);
            let code = format!("code{}", st.codes.len() + 1);
            st.codes.insert(code.clone(), (login, false));
            (
                302,
                vec![(
                    "Location".into(),
                    format!("{redirect}?code={code}&state={state_param}"),
                )],
                String::new(),
            )
        }
        "/sns/oauth2/access_token" => {
            if q.get("appid").map(String::as_str) != Some(app_id)
                || q.get("secret").map(String::as_str) != Some(secret)
            {
                return ok_json(err(40125));
            }
            let code = q.get("code").cloned().unwrap_or_default();
            let found = {
                let mut st = state.lock().unwrap();
                match st.codes.get_mut(&code) {
                    None => None,
                    Some((login, used)) => {
                        let was_used = *used;
                        *used = true;
                        Some((login.clone(), was_used))
                    }
                }
            };
            let Some((login, was_used)) = found else {
                return ok_json(err(40029));
            };
            if !login.delay.is_zero() {
                std::thread::sleep(login.delay);
            }
            if was_used {
                return ok_json(err(40163));
            }
            if let Some(code) = login.errcode {
                return ok_json(err(code));
            }
            let mut v = json!({
                "access_token": format!("webtoken-{}", login.openid),
                "expires_in": 7200,
                "refresh_token": "refresh-secret",
                "openid": login.openid,
                "scope": login.scope,
            });
            if login.snapshot {
                v["is_snapshotuser"] = json!(1);
            }
            ok_json(v)
        }
        "/sns/userinfo" => {
            let openid = q.get("openid").cloned().unwrap_or_default();
            if q.get("access_token") != Some(&format!("webtoken-{openid}")) {
                return ok_json(err(40014));
            }
            let nickname = state.lock().unwrap().nickname.clone();
            ok_json(
                json!({"openid": openid, "nickname": nickname, "headimgurl": "https://thirdwx.qlogo.cn/mmopen/avatar/132"}),
            )
        }
        "/sns/auth" => ok_json(err(0)),
        "/cgi-bin/token" | "/cgi-bin/stable_token" => {
            let mut st = state.lock().unwrap();
            st.token_counter += 1;
            ok_json(
                json!({"access_token": format!("basic-token-{}", st.token_counter), "expires_in": 7200}),
            )
        }
        "/cgi-bin/message/template/send" => {
            if !q
                .get("access_token")
                .is_some_and(|t| t.starts_with("basic-token-"))
            {
                return ok_json(err(40014));
            }
            let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
            let touser = v["touser"].as_str().unwrap_or("").to_string();
            if touser.is_empty() || v["template_id"].as_str().unwrap_or("").is_empty() {
                return ok_json(err(47001));
            }
            let mut st = state.lock().unwrap();
            if let Some(cid) = v["client_msg_id"].as_str() {
                let key = (touser.clone(), cid.to_string());
                if let Some(msgid) = st.client_msg_ids.get(&key).copied() {
                    st.suppressed += 1;
                    return ok_json(json!({"errcode": 0, "errmsg": "ok", "msgid": msgid}));
                }
                st.msgid_counter += 1;
                let msgid = 200228332 + st.msgid_counter;
                st.client_msg_ids.insert(key, msgid);
                *st.delivered.entry(touser).or_default() += 1;
                return ok_json(json!({"errcode": 0, "errmsg": "ok", "msgid": msgid}));
            }
            st.msgid_counter += 1;
            let msgid = 200228332 + st.msgid_counter;
            *st.delivered.entry(touser).or_default() += 1;
            ok_json(json!({"errcode": 0, "errmsg": "ok", "msgid": msgid}))
        }
        "/mp/subscribemsg" => {
            let consent = state.lock().unwrap().next_consent.take();
            let Some((openid, action)) = consent else {
                return (404, vec![], "no consent expected".into());
            };
            if q.get("appid").map(String::as_str) != Some(app_id)
                || q.get("action").map(String::as_str) != Some("get_confirm")
            {
                return (400, vec![], "bad consent link".into());
            }
            let template_id = q.get("template_id").cloned().unwrap_or_default();
            if action == "confirm" {
                let mut st = state.lock().unwrap();
                // Repeated consents in one scene do not add up.
                st.consents.insert((openid.clone(), template_id.clone()), 1);
            }
            let redirect = q.get("redirect_url").cloned().unwrap_or_default();
            let enc = |v: &str| wxgrades::http::form::percent_encode(v);
            let location = format!(
                "{redirect}?openid={}&template_id={}&action={action}&scene={}&reserved={}",
                enc(&openid),
                enc(&template_id),
                enc(q.get("scene").map(String::as_str).unwrap_or("")),
                enc(q.get("reserved").map(String::as_str).unwrap_or("")),
            );
            (302, vec![("Location".into(), location)], String::new())
        }
        "/wxaapi/newtmpl/gettemplate" => {
            if !q
                .get("access_token")
                .is_some_and(|t| t.starts_with("basic-token-"))
            {
                return ok_json(err(40014));
            }
            let data = state.lock().unwrap().sub_templates.clone();
            ok_json(json!({"errcode": 0, "errmsg": "ok", "data": data}))
        }
        ONCE_SEND => {
            if !q
                .get("access_token")
                .is_some_and(|t| t.starts_with("basic-token-"))
            {
                return ok_json(err(40014));
            }
            let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
            let touser = v["touser"].as_str().unwrap_or("").to_string();
            let template_id = v["template_id"].as_str().unwrap_or("").to_string();
            let title = v["title"].as_str().unwrap_or("");
            let content = v["data"]["content"]["value"].as_str().unwrap_or("");
            if touser.is_empty()
                || template_id.is_empty()
                || v["scene"].as_str().is_none_or(str::is_empty)
                || title.is_empty()
                || title.chars().count() > 15
                || content.is_empty()
                || content.chars().count() > 200
            {
                return ok_json(err(47003));
            }
            let mut st = state.lock().unwrap();
            match st.consents.remove(&(touser.clone(), template_id)) {
                Some(_) => {
                    *st.once_delivered.entry(touser).or_default() += 1;
                    ok_json(err(0))
                }
                None => ok_json(err(43101)),
            }
        }
        BIZ_SEND => {
            if !q
                .get("access_token")
                .is_some_and(|t| t.starts_with("basic-token-"))
            {
                return ok_json(err(40014));
            }
            let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
            let touser = v["touser"].as_str().unwrap_or("").to_string();
            let fits = v["data"].as_object().is_some_and(|d| {
                !d.is_empty()
                    && d.iter().all(|(k, item)| {
                        let value = item["value"].as_str().unwrap_or("");
                        let max = if k.starts_with("thing") { 20 } else { 32 };
                        !value.is_empty() && value.chars().count() <= max
                    })
            });
            if touser.is_empty() || v["template_id"].as_str().unwrap_or("").is_empty() || !fits {
                return ok_json(err(47003));
            }
            let mut st = state.lock().unwrap();
            st.msgid_counter += 1;
            let msgid = 300228332 + st.msgid_counter;
            *st.biz_delivered.entry(touser).or_default() += 1;
            ok_json(json!({"errcode": 0, "errmsg": "ok", "msgid": msgid}))
        }
        "/cgi-bin/menu/create" => {
            let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
            if v["button"]
                .as_array()
                .is_none_or(|b| b.is_empty() || b.len() > 3)
            {
                return ok_json(err(40016));
            }
            state.lock().unwrap().menu = Some(v);
            ok_json(err(0))
        }
        _ => (404, vec![], "not found".into()),
    }
}
