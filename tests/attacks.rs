//! Service-level attacks of issue 11 (items 1, 2 and 7), performed over real sockets on
//! 127.0.0.1, bounded in count and time: each shows the attack failing and the legitimate flow
//! still working.
//!
//! 1. A signed `/wx` URL seen once (an access log) replayed with a forged body; old and future
//!    timestamps; plain bodies in safe mode.
//! 2. A flood of unauthenticated `/wx/oauth/start` writing to the data file; the Back button
//!    after sign-out (issue 13).
//! 3. Lock-outs as a weapon: a stranger's failures locking a student's binding, or the admin's
//!    sign-in from every other address.

mod support;

use std::time::{Duration, Instant};

use support::{Client, Login, Resp, TestServer};
use wxgrades::service::admin::accounts;
use wxgrades::wechat::crypto::{self, MessageCipher};
use wxgrades::wechat::message;

const TOKEN: &str = "testtoken";
const ACCOUNT: &str = "gh_0123456789ab";
/// The EncodingAESKey of Tencent's WXBizMsgCrypt sample.
const KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";

const ROSTER: &str = "学号,姓名,身份证后六位\n2024001,张三,12345X\n2024002,李四,654321\n";
const GRADES: &str = "学号,姓名,学期,课程代码,课程名称,学分,成绩,考试性质\n\
2024001,张三,2024-2025-1,MA1001,高等数学,4,95,正常考试\n";

// ---------------------------------------------------------------------------------------------
// 1. /wx replay
// ---------------------------------------------------------------------------------------------

fn signed_url(ts: i64, nonce: &str) -> String {
    format!(
        "/wx?signature={}&timestamp={ts}&nonce={nonce}&openid=oAttacker",
        crypto::signature(TOKEN, &ts.to_string(), nonce)
    )
}

fn post_wx(s: &TestServer, path: &str, body: &str) -> Resp {
    s.client()
        .post_raw(path, "text/xml", body.as_bytes().to_vec())
}

fn text(from: &str, content: &str, msg_id: &str) -> String {
    message::text_message(ACCOUNT, from, 1_760_000_000, content, msg_id)
}

#[test]
fn a_signed_wx_url_replayed_with_a_forged_body_is_refused() {
    let s = TestServer::start("", "");
    s.import("roster", ROSTER);
    s.import("grades", GRADES);
    s.app
        .store
        .bind("oVictim", "2024001", s.app.clock.now())
        .unwrap();
    let now = s.app.clock.now();

    // The attacker's own message, as WeChat delivers it; its URL lands in an access log.
    let url = signed_url(now, "1234567890");
    let r = post_wx(&s, &url, &text("oAttacker", "成绩", "1"));
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("还没有绑定"), "{}", r.body);

    // The same URL with a forged body naming another follower: refused, no grades.
    let forged = text("oVictim", "成绩", "2");
    let r = post_wx(&s, &url, &forged);
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(!r.body.contains("张三") && !r.body.contains("高等数学"));
    // WeChat's own retry of the first delivery (same URL, same body) is still answered.
    let r = post_wx(&s, &url, &text("oAttacker", "成绩", "1"));
    assert_eq!(r.status, 200, "{}", r.body);

    // A correctly signed URL whose timestamp is old or in the future: refused.
    for ts in [now - 301, now + 301, now - 86_400 * 365] {
        let r = post_wx(&s, &signed_url(ts, &format!("n{ts}")), &forged);
        assert_eq!(r.status, 403, "timestamp {ts}: {}", r.body);
    }
    // The GET echo check: once only, and never with an old timestamp.
    let mut c = s.client();
    let echo = format!("{}&echostr=77889900", signed_url(now, "echo1"));
    assert_eq!(c.get(&echo).status, 200);
    assert_eq!(c.get(&echo).status, 403, "a replayed echo URL");
    let old = format!("{}&echostr=1", signed_url(now - 1000, "echo2"));
    assert_eq!(c.get(&old).status, 403);
    let metrics = s.app.metrics.render();
    assert!(
        metrics.contains("wxgrades_wx_messages_total{kind=\"replay\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("wxgrades_wx_messages_total{kind=\"stale\"} 4"),
        "{metrics}"
    );

    // Fresh signed messages are still answered, the victim's own included.
    let r = post_wx(&s, &signed_url(now, "fresh-1"), &forged);
    assert_eq!(r.status, 200);
    assert!(r.body.contains("张三同学"), "{}", r.body);
    let r = post_wx(
        &s,
        &signed_url(now + 2, "fresh-2"),
        &text("oAttacker", "帮助", "3"),
    );
    assert_eq!(r.status, 200);
}

fn safe_url(ts: i64, nonce: &str, encrypted: &str) -> String {
    let ts = ts.to_string();
    format!(
        "/wx?signature={}&timestamp={ts}&nonce={nonce}&encrypt_type=aes&msg_signature={}",
        crypto::signature(TOKEN, &ts, nonce),
        crypto::msg_signature(TOKEN, &ts, nonce, encrypted)
    )
}

#[test]
fn safe_mode_refuses_plain_bodies_and_compatible_mode_takes_both() {
    let cipher = MessageCipher::new(KEY, support::APP_ID).unwrap();
    // A key set and no message_mode: safe.
    let s = TestServer::start("", &format!("encoding_aes_key = \"{KEY}\""));
    let now = s.app.clock.now();
    let r = post_wx(&s, &signed_url(now, "p1"), &text("oVictim", "成绩", "10"));
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body.contains("safe"), "{}", r.body);
    let inner = text("oSafe", "绑定", "11");
    let enc = cipher.encrypt(&inner, *b"0123456789abcdef");
    let r = post_wx(
        &s,
        &safe_url(now, "s1", &enc),
        &message::envelope(ACCOUNT, &enc),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        message::parse_encrypted_reply(&r.body).is_ok(),
        "{}",
        r.body
    );
    // The same signed URL again with another (re-encrypted) body: a replay.
    let enc2 = cipher.encrypt(&inner, *b"fedcba9876543210");
    let r = post_wx(
        &s,
        &safe_url(now, "s1", &enc2),
        &message::envelope(ACCOUNT, &enc2),
    );
    assert_eq!(r.status, 403, "{}", r.body);
    drop(s);

    let s = TestServer::start(
        "",
        &format!("encoding_aes_key = \"{KEY}\"\nmessage_mode = \"compatible\""),
    );
    let now = s.app.clock.now();
    let r = post_wx(&s, &signed_url(now, "p2"), &text("oPlain", "绑定", "12"));
    assert_eq!(r.status, 200, "{}", r.body);
    let r = post_wx(
        &s,
        &safe_url(now, "s2", &enc),
        &message::envelope(ACCOUNT, &enc),
    );
    assert_eq!(r.status, 200, "{}", r.body);
}

// ---------------------------------------------------------------------------------------------
// 2. OAuth states without writes
// ---------------------------------------------------------------------------------------------

/// Size and modification time of the data file.
fn data_file_stamp(s: &TestServer) -> (u64, std::time::SystemTime) {
    let m = std::fs::metadata(s.dir.join("data.redb")).expect("data file");
    (m.len(), m.modified().expect("mtime"))
}

#[test]
fn two_thousand_oauth_starts_write_nothing_to_the_data_file() {
    let s = TestServer::start("", "");
    // A sign-in begun before the flood, in a browser of its own.
    let mut early = s.client();
    let r = early.get("/wx/oauth/start?next=/me");
    assert_eq!(r.status, 302);
    let before = data_file_stamp(&s);

    let started = Instant::now();
    let mut same_browser = s.client();
    for i in 0..2000 {
        // Half from one browser that keeps its cookie, half from cookie-less clients.
        let r = if i % 2 == 0 {
            same_browser.get("/wx/oauth/start?next=/grades")
        } else {
            s.client().get(&format!("/wx/oauth/start?next=/x{i}"))
        };
        assert_eq!(r.status, 302, "request {i}: {}", r.body);
        assert!(started.elapsed() < Duration::from_secs(120), "too slow");
    }
    assert_eq!(
        data_file_stamp(&s),
        before,
        "the data file changed under unauthenticated requests"
    );
    // Memory stays bounded: one browser holds only its newest few states.
    assert!(s.app.oauth.states.len() <= 1000 + wxgrades::service::oauth_states::PER_BROWSER + 1);

    // The sign-in begun before the flood completes, and a new one works too.
    s.fake.set_next_login(Login::user("oEarly"));
    let r = early.follow(&r);
    assert_eq!(r.status, 302, "fake authorize");
    let r = early.follow(&r);
    assert_eq!(r.status, 302, "callback: {}", r.body);
    assert_eq!(r.location(), "/me");
    assert!(early.cookies.contains_key("wxg_sid"));
    let c = s.signed_in("oAfter");
    assert!(c.cookies.contains_key("wxg_sid"));
}

#[test]
fn after_sign_out_the_old_callback_url_signs_nobody_in() {
    let s = TestServer::start("", "");
    let mut c = s.client();
    s.fake.set_next_login(Login::user("oShared"));
    let r = c.get("/wx/oauth/start?next=/me");
    let r = c.follow(&r);
    let callback = r.location().to_string();
    let r = c.get(&callback);
    assert_eq!(r.status, 302, "{}", r.body);
    let exchanges = s
        .fake
        .log()
        .iter()
        .filter(|l| l.contains("/sns/oauth2/access_token"))
        .count();
    assert_eq!(exchanges, 1);
    // Before sign-out, a second hit is the double-callback rule: in again, no second exchange.
    let r = c.get(&callback);
    assert_eq!(r.status, 302, "{}", r.body);
    assert_eq!(r.location(), "/me");

    let r = c.get("/logout");
    assert_eq!(r.status, 200);
    assert!(!c.cookies.contains_key("wxg_sid"));
    // The Back button on a shared phone: the old callback URL again.
    let r = c.get(&callback);
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(
        !c.cookies.contains_key("wxg_sid"),
        "signed the next person in"
    );
    let r = c.get("/me");
    assert_eq!(r.status, 302, "signed out stays signed out");
    let exchanges_after = s
        .fake
        .log()
        .iter()
        .filter(|l| l.contains("/sns/oauth2/access_token"))
        .count();
    assert_eq!(exchanges_after, 1, "no code spent again");
    // Signing in afresh works.
    assert!(s.signed_in("oShared").cookies.contains_key("wxg_sid"));
}

// ---------------------------------------------------------------------------------------------
// 3. Lock-outs as a weapon
// ---------------------------------------------------------------------------------------------

fn bind(c: &mut Client, sid: &str, name: &str, verify: &str) -> Resp {
    let page = c.get("/bind");
    assert_eq!(page.status, 200, "{}", page.body);
    let token = Client::hidden(&page.body, "csrf_token");
    c.post_form(
        "/bind",
        &[
            ("student_id", sid),
            ("name", name),
            ("verify", verify),
            ("csrf_token", &token),
        ],
    )
}

#[test]
fn a_strangers_wrong_attempts_do_not_stop_the_student_binding() {
    let s = TestServer::start("", "");
    s.import("roster", ROSTER);
    // One stranger, 20 wrong tries at 2024001: they lock only their own WeChat.
    let mut stranger = s.signed_in("oStranger");
    let statuses: Vec<u16> = (0..20)
        .map(|i| {
            bind(
                &mut stranger,
                "2024001",
                "张三",
                &format!("00000{}", i % 10),
            )
            .status
        })
        .collect();
    assert!(statuses[..4].iter().all(|&c| c == 400), "{statuses:?}");
    assert!(statuses[4..].iter().all(|&c| c == 429), "{statuses:?}");
    // Four more strangers, five wrong tries each.
    for k in 0..4 {
        let mut c = s.signed_in(&format!("oStranger{k}"));
        for _ in 0..5 {
            let st = bind(&mut c, "2024001", "张三", "999999").status;
            assert!(st == 400 || st == 429, "{st}");
        }
    }
    // The student, from their own WeChat, binds at once.
    let mut owner = s.signed_in("oOwner");
    let r = bind(&mut owner, "2024001", "张三", "12345X");
    assert_eq!(r.status, 303, "{}", r.body);
    let binding = s.app.store.binding("oOwner").unwrap().expect("bound");
    assert_eq!(binding.student_id, "2024001");
    // The first stranger stays locked, even with the right values of another student.
    assert_eq!(bind(&mut stranger, "2024002", "李四", "654321").status, 429);
}

fn try_login(c: &mut Client, user: &str, password: &str, from: &str) -> Resp {
    let r = c.get("/admin/login");
    assert_eq!(r.status, 200, "{}", r.body);
    let token = Client::hidden(&r.body, "csrf_token");
    c.post_form_with_header(
        "/admin/login",
        &[
            ("username", user),
            ("password", password),
            ("csrf_token", &token),
        ],
        Some(("X-Forwarded-For", from)),
    )
}

const PW: &str = "correct horse battery staple";

#[test]
fn wrong_admin_passwords_from_one_client_do_not_lock_out_another() {
    let s = TestServer::start("trust_proxy = true", "");
    accounts::add(&s.app.store, "alice", PW, s.app.clock.now()).expect("alice");
    let mut attacker = s.client();
    let statuses: Vec<u16> = (0..20)
        .map(|_| try_login(&mut attacker, "alice", "guess-guess", "203.0.113.9").status)
        .collect();
    assert!(statuses[..4].iter().all(|&c| c == 401), "{statuses:?}");
    assert_eq!(statuses[19], 429, "{statuses:?}");
    // The attacker's client stays locked even with the right password.
    assert_eq!(
        try_login(&mut attacker, "alice", PW, "203.0.113.9").status,
        429
    );
    // The real admin, behind the same proxy from another address, signs in.
    let mut admin = s.client();
    let r = try_login(&mut admin, "alice", PW, "198.51.100.7");
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(admin.cookies.contains_key("wxg_admin"));
}

#[test]
fn without_trust_proxy_a_forged_forwarded_for_does_not_escape_the_lock() {
    let s = TestServer::start("", "");
    accounts::add(&s.app.store, "alice", PW, s.app.clock.now()).expect("alice");
    let mut attacker = s.client();
    let statuses: Vec<u16> = (0..6)
        .map(|i| {
            try_login(
                &mut attacker,
                "alice",
                "guess-guess",
                &format!("10.0.0.{i}"),
            )
            .status
        })
        .collect();
    assert_eq!(statuses[..4], [401, 401, 401, 401], "{statuses:?}");
    assert_eq!(statuses[4..], [429, 429], "{statuses:?}");
}
