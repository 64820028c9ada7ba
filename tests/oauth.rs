//! Web authorization end to end over real HTTP: the real server and a fake WeChat.

mod support;

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use support::{Client, Login, Resp, TestServer, APP_ID};
use wxgrades::http::form::{parse_urlencoded, percent_encode};

const EXCHANGE: &str = "/sns/oauth2/access_token";
const USERINFO: &str = "/sns/userinfo";

/// The query parameters of a URL (the fragment left out), decoded.
fn query(url: &str) -> Vec<(String, String)> {
    let url = url.split('#').next().unwrap_or("");
    let q = url.split_once('?').map(|(_, q)| q).unwrap_or("");
    parse_urlencoded(q)
}

fn param(url: &str, name: &str) -> Option<String> {
    query(url)
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

/// `/wx/oauth/start?…` → the authorize redirect → the fake's redirect to our callback.
/// Returns the callback URL (with code and state).
fn to_callback(c: &mut Client, start: &str) -> String {
    let r = c.get(start);
    assert_eq!(r.status, 302, "start: {}", r.body);
    let r = c.follow(&r);
    assert_eq!(r.status, 302, "fake authorize: {}", r.body);
    let callback = r.location().to_string();
    assert!(
        callback.contains("/wx/oauth/callback?"),
        "fake authorize sent us to {callback}"
    );
    callback
}

/// The path of an absolute URL on our server, so a client can call it.
fn local(s: &TestServer, url: &str) -> String {
    match url.find("/wx/oauth/") {
        Some(i) => format!("{}{}", s.url, &url[i..]),
        None => panic!("not one of our URLs: {url}"),
    }
}

fn session_cookie_set(r: &Resp) -> bool {
    r.set_cookies().iter().any(|c| c.starts_with("wxg_sid="))
}

/// HTML text with the entities minijinja's autoescape writes turned back into characters.
fn unescape(html: &str) -> String {
    html.replace("&#x2f;", "/")
        .replace("&#x27;", "'")
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// A friendly error page: the status, a Chinese heading, and a retry link through sign-in.
fn assert_error_page(r: &Resp, status: u16) {
    assert_eq!(r.status, status, "{}", r.body);
    assert!(
        r.header("content-type")
            .unwrap_or("")
            .starts_with("text/html"),
        "{:?}",
        r.headers
    );
    assert!(r.body.contains("<h1"), "{}", r.body);
    assert!(
        unescape(&r.body).contains("href=\"/wx/oauth/start?next=/\""),
        "no retry link: {}",
        r.body
    );
    assert!(
        !session_cookie_set(r),
        "a session was created: {:?}",
        r.headers
    );
}

/// The visitor has a session: `/` sends them on to binding (nobody here is bound).
fn assert_signed_in(c: &mut Client) {
    let r = c.get("/");
    assert_eq!(r.status, 302, "{}", r.body);
    assert_eq!(r.location(), "/bind");
    assert_eq!(c.get("/bind").status, 200);
}

/// The visitor has no session: `/` sends them through web authorization.
fn assert_signed_out(c: &mut Client) {
    let r = c.get("/");
    assert_eq!(r.status, 302, "{}", r.body);
    assert_eq!(r.location(), "/wx/oauth/start?next=%2F");
}

#[test]
fn base_scope_signs_in_and_returns_to_next() {
    let s = TestServer::start("", "");
    let mut c = s.client();
    s.fake.set_next_login(Login::user("oUser1"));
    let r = c.get("/wx/oauth/start?next=/grades%3Fterm%3D2025-2026-1");
    assert_eq!(r.status, 302);
    let r = c.follow(&r);
    let r = c.follow(&r);
    assert_eq!(r.status, 302, "{}", r.body);
    assert_eq!(r.location(), "/grades?term=2025-2026-1");
    assert!(c.cookies.contains_key("wxg_sid"));
    assert_eq!(s.fake.calls(EXCHANGE), 1);
    // snsapi_base: no nickname asked for, none shown.
    assert_eq!(s.fake.calls(USERINFO), 0);
    assert_signed_in(&mut c);
    let r = c.get("/me");
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("微信用户"), "{}", r.body);
    assert!(r.body.contains("仅识别身份"), "{}", r.body);
    assert!(!r.body.contains("测试同学"));
}

#[test]
fn userinfo_scope_stores_and_shows_the_nickname() {
    // Asked for by the link ...
    let s = TestServer::start("", "");
    let mut c = s.client();
    s.fake.set_next_login(Login::user("oNick1"));
    let cb = to_callback(&mut c, "/wx/oauth/start?next=/&scope=snsapi_userinfo");
    let authorize = s
        .fake
        .log()
        .into_iter()
        .find(|u| u.starts_with("/connect/oauth2/authorize"))
        .expect("authorize call");
    assert_eq!(
        param(&authorize, "scope").as_deref(),
        Some("snsapi_userinfo")
    );
    let r = c.get(&cb);
    assert_eq!(r.status, 302, "{}", r.body);
    assert_eq!(r.location(), "/");
    assert_eq!(s.fake.calls(EXCHANGE), 1);
    assert_eq!(s.fake.calls(USERINFO), 1);
    let user = s.app.store.wx_user("oNick1").unwrap().expect("stored user");
    assert_eq!(user.nickname.as_deref(), Some("测试同学"));
    // The signed-in landing page (binding, for a newcomer) and the identity page show it.
    let r = c.get("/");
    assert_eq!(r.location(), "/bind");
    let r = c.follow(&r);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("将绑定到微信「测试同学」"), "{}", r.body);
    let r = c.get("/me");
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("<h1>测试同学</h1>"), "{}", r.body);
    assert!(r.body.contains("昵称与头像"), "{}", r.body);

    // ... or by the configuration.
    let s = TestServer::start("", "scope = \"snsapi_userinfo\"");
    let mut c = s.client();
    s.fake.set_next_login(Login::user("oNick2"));
    s.fake.state.lock().unwrap().nickname = "小林".into();
    let r = c.get("/wx/oauth/start?next=/");
    assert_eq!(
        param(r.location(), "scope").as_deref(),
        Some("snsapi_userinfo")
    );
    let r = c.follow(&r);
    let r = c.follow(&r);
    assert_eq!(r.status, 302, "{}", r.body);
    let r = c.get("/bind");
    assert!(r.body.contains("将绑定到微信「小林」"), "{}", r.body);
}

#[test]
fn authorize_url_is_exactly_wechats_format() {
    let s = TestServer::start("", "");
    let mut c = s.client();
    let r = c.get("/wx/oauth/start?next=/grades");
    assert_eq!(r.status, 302);
    let loc = r.location();
    let state = param(loc, "state").expect("state");
    assert!(!state.is_empty() && state.len() <= 128, "{state}");
    assert!(state.bytes().all(|b| b.is_ascii_alphanumeric()), "{state}");
    let redirect_uri = percent_encode(&format!("{}/wx/oauth/callback", s.url));
    assert!(redirect_uri.starts_with("http%3A%2F%2F127.0.0.1%3A"));
    let expected = format!(
        "{}/connect/oauth2/authorize?appid={APP_ID}&redirect_uri={redirect_uri}&response_type=code&scope=snsapi_base&state={state}&connect_redirect=1#wechat_redirect",
        s.fake.url
    );
    assert_eq!(loc, expected);

    // Each start makes a fresh state.
    let r2 = c.get("/wx/oauth/start?next=/grades");
    assert_ne!(param(r2.location(), "state"), Some(state));
}

#[test]
fn state_missing_or_forged_is_refused() {
    let s = TestServer::start("", "");
    let mut c = s.client();
    s.fake.set_next_login(Login::user("oUser1"));
    let cb = to_callback(&mut c, "/wx/oauth/start?next=/");
    let code = param(&cb, "code").expect("code");
    for bad in [
        format!("/wx/oauth/callback?code={code}"),
        format!("/wx/oauth/callback?code={code}&state="),
        format!("/wx/oauth/callback?code={code}&state=0123456789abcdef0123456789abcdef"),
        format!("/wx/oauth/callback?code={code}&state=..%2F..%2Fetc"),
        format!("/wx/oauth/callback?code={code}&state={}", "a".repeat(200)),
    ] {
        let r = c.get(&bad);
        assert_error_page(&r, 400);
    }
    assert_eq!(s.fake.calls(EXCHANGE), 0, "no code may be spent");
    assert_signed_out(&mut c);
    // Nothing half-done: the genuine callback still works.
    let r = c.get(&cb);
    assert_eq!(r.status, 302, "{}", r.body);
    assert_eq!(s.fake.calls(EXCHANGE), 1);
}

#[test]
fn state_from_another_browser_is_refused() {
    let s = TestServer::start("", "");
    let mut victim = s.client();
    s.fake.set_next_login(Login::user("oVictim"));
    let cb = to_callback(&mut victim, "/wx/oauth/start?next=/");

    // Another browser (no cookies) ...
    let mut other = s.client();
    assert_error_page(&other.get(&cb), 400);
    // ... and another browser that has a binding cookie of its own.
    let _ = other.get("/wx/oauth/start?next=/");
    assert!(other.cookies.contains_key("wxg_b"));
    assert_error_page(&other.get(&cb), 400);
    assert_eq!(s.fake.calls(EXCHANGE), 0);
    assert_signed_out(&mut other);

    let r = victim.get(&cb);
    assert_eq!(r.status, 302, "{}", r.body);
}

#[test]
fn expired_state_is_refused() {
    let s = TestServer::start("", "");
    let mut c = s.client();
    s.fake.set_next_login(Login::user("oUser1"));
    let cb = to_callback(&mut c, "/wx/oauth/start?next=/");
    s.app.clock.advance(601);
    assert_error_page(&c.get(&cb), 400);
    assert_eq!(s.fake.calls(EXCHANGE), 0);
    assert_signed_out(&mut c);

    // Just inside the ten minutes is fine.
    s.fake.set_next_login(Login::user("oUser1"));
    let cb = to_callback(&mut c, "/wx/oauth/start?next=/");
    s.app.clock.advance(590);
    assert_eq!(c.get(&cb).status, 302);
}

#[test]
fn state_replayed_after_success_from_another_browser_is_refused() {
    let s = TestServer::start("", "");
    let mut c = s.client();
    s.fake.set_next_login(Login::user("oUser1"));
    let cb = to_callback(&mut c, "/wx/oauth/start?next=/");
    assert_eq!(c.get(&cb).status, 302);
    assert_eq!(s.fake.calls(EXCHANGE), 1);

    let mut attacker = s.client();
    let r = attacker.get(&cb);
    assert_error_page(&r, 400);
    assert_eq!(s.fake.calls(EXCHANGE), 1);
    assert!(!attacker.cookies.contains_key("wxg_sid"));
    assert_signed_out(&mut attacker);
}

#[test]
fn next_must_be_a_local_path() {
    let s = TestServer::start("", "");
    let attacks = [
        "//evil.com",
        "https://evil.com",
        "/\\evil.com",
        "/%2F%2Fevil.com",
        "javascript:alert(1)",
        "/%5Cevil.com",
        "\\\\evil.com",
        "/\r\nLocation: https://evil.com",
    ];
    let mut raw: Vec<String> = attacks
        .iter()
        .map(|a| format!("next={}", percent_encode(a)))
        .collect();
    // The same attacks as a careless link would carry them, not encoded again.
    raw.push("next=//evil.com".into());
    raw.push("next=/%2F%2Fevil.com".into());
    raw.push("next=https://evil.com/".into());
    raw.push("next=".into());
    raw.push(String::new());
    for (i, q) in raw.iter().enumerate() {
        let mut c = s.client();
        s.fake.set_next_login(Login::user(&format!("oNext{i}")));
        let cb = to_callback(&mut c, &format!("/wx/oauth/start?{q}"));
        let r = c.get(&cb);
        assert_eq!(r.status, 302, "{q}: {}", r.body);
        assert_eq!(r.location(), "/", "{q}");
    }

    // A local path keeps its query string.
    let mut c = s.client();
    s.fake.set_next_login(Login::user("oLegit"));
    let next = "/grades?term=2025-2026-1&x=a%20b";
    let cb = to_callback(
        &mut c,
        &format!("/wx/oauth/start?next={}", percent_encode(next)),
    );
    let r = c.get(&cb);
    assert_eq!(r.status, 302, "{}", r.body);
    assert_eq!(r.location(), next);
}

#[test]
fn refusal_without_code_is_403_with_a_retry_link() {
    let s = TestServer::start("", "");
    let mut c = s.client();
    // No login programmed: the fake's user refuses, as WeChat does (state, no code).
    let cb = to_callback(&mut c, "/wx/oauth/start?next=/grades");
    assert!(param(&cb, "code").is_none(), "{cb}");
    assert!(param(&cb, "state").is_some(), "{cb}");
    let r = c.get(&cb);
    assert_error_page(&r, 403);
    assert!(r.body.contains("拒绝"), "{}", r.body);
    assert_eq!(s.fake.calls(EXCHANGE), 0);
    assert_signed_out(&mut c);
}

#[test]
fn bad_codes_are_400_and_other_wechat_errors_502() {
    let s = TestServer::start("", "");
    for (errcode, status) in [(40029, 400), (40163, 400), (42003, 400), (-1, 502)] {
        let mut c = s.client();
        let mut login = Login::user("oUser1");
        login.errcode = Some(errcode);
        s.fake.set_next_login(login);
        let cb = to_callback(&mut c, "/wx/oauth/start?next=/");
        let r = c.get(&cb);
        assert_error_page(&r, status);
        assert_signed_out(&mut c);
    }
    assert_eq!(s.fake.calls(EXCHANGE), 4);
    // A code the fake never issued: WeChat's own 40029.
    let mut c = s.client();
    s.fake.set_next_login(Login::user("oUser1"));
    let cb = to_callback(&mut c, "/wx/oauth/start?next=/");
    let state = param(&cb, "state").unwrap();
    let r = c.get(&format!("/wx/oauth/callback?code=nosuchcode&state={state}"));
    assert_error_page(&r, 400);
}

#[test]
fn slow_wechat_gives_504_in_time_and_others_are_served_meanwhile() {
    let s = TestServer::start("", "");
    let timeout = s.app.config.wechat.timeout_secs;
    assert_eq!(timeout, 1);
    let mut c = s.client();
    let mut login = Login::user("oSlow");
    login.delay = Duration::from_secs(3);
    s.fake.set_next_login(login);
    let cb = to_callback(&mut c, "/wx/oauth/start?next=/");

    let started = Instant::now();
    let waiting = std::thread::spawn(move || {
        let r = c.get(&cb);
        (r, Instant::now())
    });
    // While the callback waits on WeChat, the server answers others at once.
    let deadline = Instant::now() + Duration::from_secs(5);
    while s.fake.calls(EXCHANGE) == 0 {
        assert!(Instant::now() < deadline, "the code exchange never started");
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut other = s.client();
    let asked = Instant::now();
    let h = other.get("/healthz");
    let answered = Instant::now();
    assert_eq!(h.status, 200);
    assert!(
        answered - asked < Duration::from_millis(500),
        "healthz took {:?} while a callback waited on WeChat",
        answered - asked
    );
    let page = other.get("/static/app.css");
    assert_eq!(page.status, 200);

    let (r, done) = waiting.join().expect("callback thread");
    assert!(
        done > answered,
        "healthz was not served while the callback waited"
    );
    assert_error_page(&r, 504);
    let took = done - started;
    assert!(
        took <= Duration::from_secs(timeout + 1),
        "the 504 page took {took:?}"
    );
}

#[test]
fn snapshot_user_is_403_and_gets_no_session() {
    let s = TestServer::start("", "");
    let mut c = s.client();
    let mut login = Login::user("oFakeSnapshotOpenid");
    login.snapshot = true;
    s.fake.set_next_login(login);
    let cb = to_callback(&mut c, "/wx/oauth/start?next=/");
    let r = c.get(&cb);
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body.contains("微信"), "{}", r.body);
    assert!(!session_cookie_set(&r));
    assert_signed_out(&mut c);
    assert!(s
        .app
        .store
        .wx_user("oFakeSnapshotOpenid")
        .unwrap()
        .is_none());
    // Calling again does not turn it into a sign-in.
    let r = c.get(&cb);
    assert!(!session_cookie_set(&r));
    assert_signed_out(&mut c);
}

#[test]
fn double_callback_goes_to_next_twice_and_exchanges_once() {
    let s = TestServer::start("", "");
    let mut c = s.client();
    s.fake.set_next_login(Login::user("oTwice"));
    let cb = to_callback(&mut c, "/wx/oauth/start?next=/grades%3Fterm%3D2025-2026-1");
    let first = c.get(&cb);
    assert_eq!(first.status, 302, "{}", first.body);
    assert_eq!(first.location(), "/grades?term=2025-2026-1");
    let second = c.get(&cb);
    assert_eq!(second.status, 302, "{}", second.body);
    assert_eq!(second.location(), "/grades?term=2025-2026-1");
    assert!(session_cookie_set(&second));
    assert_eq!(s.fake.calls(EXCHANGE), 1);
    assert_signed_in(&mut c);
}

#[test]
fn concurrent_double_callbacks_exchange_once_each() {
    let s = TestServer::start("", "");
    // Two browsers, each with its callback URL hit twice at the same moment.
    let mut browsers = Vec::new();
    for who in ["oCon1", "oCon2"] {
        let mut c = s.client();
        let mut login = Login::user(who);
        login.delay = Duration::from_millis(300);
        s.fake.set_next_login(login);
        let cb = to_callback(&mut c, "/wx/oauth/start?next=/grades");
        browsers.push((c, cb));
    }
    let barrier = Arc::new(Barrier::new(4));
    let mut threads = Vec::new();
    for (c, cb) in &browsers {
        for _ in 0..2 {
            let mut tab = s.client();
            tab.cookies = c.cookies.clone();
            let (cb, barrier) = (cb.clone(), barrier.clone());
            threads.push(std::thread::spawn(move || {
                barrier.wait();
                let r = tab.get(&cb);
                (r, tab)
            }));
        }
    }
    for t in threads {
        let (r, mut tab) = t.join().expect("callback thread");
        assert_eq!(r.status, 302, "{}", r.body);
        assert_eq!(r.location(), "/grades");
        assert_signed_in(&mut tab);
    }
    assert_eq!(s.fake.calls(EXCHANGE), 2);
}

#[test]
fn session_expires_after_a_week() {
    let s = TestServer::start("", "");
    let mut c = s.signed_in("oWeek");
    assert_signed_in(&mut c);
    s.app.clock.advance(6 * 24 * 3600);
    // A six-day-old session is good.
    assert_signed_in(&mut c);
    s.app.clock.advance(2 * 24 * 3600);
    let r = c.get("/");
    assert_eq!(r.status, 302);
    assert_eq!(r.location(), "/wx/oauth/start?next=%2F");
    // Through web authorization again, and back.
    s.fake.set_next_login(Login::user("oWeek"));
    let r = c.follow(&r);
    assert_eq!(r.status, 302);
    let r = c.follow(&r);
    let r = c.follow(&r);
    assert_eq!(r.status, 302, "{}", r.body);
    assert_eq!(r.location(), "/");
    assert_signed_in(&mut c);
}

#[test]
fn logout_ends_the_session() {
    let s = TestServer::start("", "");
    let mut c = s.signed_in("oBye");
    let sid = c.cookies.get("wxg_sid").cloned().expect("session cookie");
    assert_signed_in(&mut c);
    let r = c.get("/logout");
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.set_cookies()
            .iter()
            .any(|v| v.starts_with("wxg_sid=;") && v.contains("Max-Age=0")),
        "{:?}",
        r.headers
    );
    assert!(!c.cookies.contains_key("wxg_sid"));
    assert_signed_out(&mut c);
    // The old id is dead on the server too, not only forgotten by the browser.
    c.cookies.insert("wxg_sid".into(), sid);
    assert_signed_out(&mut c);
}

fn cookie_named<'a>(r: &'a Resp, name: &str) -> &'a str {
    r.set_cookies()
        .into_iter()
        .find(|c| c.starts_with(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name} cookie in {:?}", r.headers))
}

fn attributes(cookie: &str) -> Vec<String> {
    cookie
        .split(';')
        .skip(1)
        .map(|a| a.trim().to_ascii_lowercase())
        .collect()
}

#[test]
fn cookies_are_httponly_lax_and_secure_only_over_https() {
    // http public_url: no Secure.
    let s = TestServer::start("", "");
    let mut c = s.client();
    s.fake.set_next_login(Login::user("oCookie"));
    let r = c.get("/wx/oauth/start?next=/");
    let b = attributes(cookie_named(&r, "wxg_b"));
    let r = c.follow(&r);
    let r = c.follow(&r);
    let sid = attributes(cookie_named(&r, "wxg_sid"));
    for a in [&b, &sid] {
        assert!(a.contains(&"httponly".to_string()), "{a:?}");
        assert!(a.contains(&"samesite=lax".to_string()), "{a:?}");
        assert!(!a.contains(&"secure".to_string()), "{a:?}");
    }
    let out = c.get("/logout");
    assert!(!attributes(cookie_named(&out, "wxg_sid")).contains(&"secure".to_string()));

    // https public_url (TLS ends at the proxy in front): Secure on every cookie.
    let s = TestServer::start_custom(Some("https://jw.example.edu.cn"), "", "", |_| {});
    let mut c = s.client();
    s.fake.set_next_login(Login::user("oCookie"));
    let r = c.get("/wx/oauth/start?next=/");
    assert_eq!(
        param(r.location(), "redirect_uri").as_deref(),
        Some("https://jw.example.edu.cn/wx/oauth/callback")
    );
    let b = attributes(cookie_named(&r, "wxg_b"));
    let r = c.follow(&r);
    let cb = local(&s, r.location());
    let r = c.get(&cb);
    assert_eq!(r.status, 302, "{}", r.body);
    let sid = attributes(cookie_named(&r, "wxg_sid"));
    for a in [&b, &sid] {
        assert!(a.contains(&"httponly".to_string()), "{a:?}");
        assert!(a.contains(&"samesite=lax".to_string()), "{a:?}");
        assert!(a.contains(&"secure".to_string()), "{a:?}");
    }
    let out = c.get("/logout");
    let removal = attributes(cookie_named(&out, "wxg_sid"));
    assert!(removal.contains(&"secure".to_string()), "{removal:?}");
    assert!(removal.contains(&"httponly".to_string()), "{removal:?}");
}
