//! The official account over real HTTP: the `/wx` message endpoint (plain and safe mode,
//! refusals, hostile XML, retries), the basic access_token against a fake WeChat, grade
//! notices (including a kill -9 of the real binary while sending), `check` and `menu push`.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::{metric, wait_until, Resp, TestServer, APP_ID, APP_SECRET};
use wxgrades::service::import::jobs::JobState;
use wxgrades::service::import::plan::ImportKind;
use wxgrades::service::notices::{notice_counts, TEMPLATE_SEND};
use wxgrades::service::releases::Destination;
use wxgrades::service::wxapi;
use wxgrades::store::notices::{NewNotice, NoticeState};
use wxgrades::store::Store;
use wxgrades::wechat::crypto::{self, MessageCipher};
use wxgrades::wechat::message;

const TOKEN: &str = "testtoken";
/// The EncodingAESKey of Tencent's WXBizMsgCrypt sample (WxJava, EasyWeChat test suites).
const VECTOR_KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
const ACCOUNT: &str = "gh_0123456789ab";

static NONCES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// The current time and a nonce not used before in this run: `/wx` refuses timestamps outside
/// ±300 s and a signed URL used again with another body.
fn fresh(nonce: &str) -> (String, String) {
    let n = NONCES.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    (
        wxgrades::clock::unix_now().to_string(),
        format!("{nonce}x{n}"),
    )
}

/// A fresh signed `/wx` URL (see [`fresh`]).
fn signed(nonce: &str) -> String {
    let (ts, nonce) = fresh(nonce);
    signed_at(&ts, &nonce)
}

fn signed_at(ts: &str, nonce: &str) -> String {
    format!(
        "/wx?signature={}&timestamp={ts}&nonce={nonce}",
        crypto::signature(TOKEN, ts, nonce)
    )
}

fn post_wx(s: &TestServer, path: &str, body: &str) -> Resp {
    s.client()
        .post_raw(path, "text/xml", body.as_bytes().to_vec())
}

fn text(from: &str, content: &str, msg_id: &str) -> String {
    message::text_message(ACCOUNT, from, 1_760_000_000, content, msg_id)
}

fn reply_content(r: &Resp) -> String {
    assert_eq!(r.status, 200, "{}", r.body);
    message::parse_reply(&r.body)
        .unwrap_or_else(|e| panic!("reply not well-formed ({e}): {}", r.body))
        .content
}

/// A safe-mode POST: (path with query, body).
fn safe_post(key: &str, appid: &str, inner: &str, nonce: &str) -> (String, String) {
    let c = MessageCipher::new(key, appid).unwrap();
    let encrypted = c.encrypt(inner, *b"0123456789abcdef");
    safe_post_raw(&encrypted, nonce)
}

fn safe_post_raw(encrypted: &str, nonce: &str) -> (String, String) {
    let (ts, nonce) = fresh(nonce);
    let ms = crypto::msg_signature(TOKEN, &ts, &nonce, encrypted);
    (
        format!(
            "{}&encrypt_type=aes&msg_signature={ms}",
            signed_at(&ts, &nonce)
        ),
        message::envelope(ACCOUNT, encrypted),
    )
}

// ---------------------------------------------------------------------------------------------
// The message endpoint
// ---------------------------------------------------------------------------------------------

/// Upload grades as the admin page does and commit them with "notify"; the import record.
fn import_with_notify(
    s: &TestServer,
    name: &str,
    csv: &str,
) -> wxgrades::store::grades::ImportRecord {
    let job = s
        .app
        .jobs
        .submit(
            "admin",
            ImportKind::Grades,
            name,
            wxgrades::service::import::file::ImportFile::from_bytes(csv.as_bytes()).unwrap(),
            None,
            s.app.clock.now(),
        )
        .unwrap();
    wait_until("planned", Duration::from_secs(10), || {
        matches!(job.state(), JobState::Planned)
    });
    let generation = job.plan().unwrap().generation;
    s.app
        .jobs
        .commit(&job.id, true, generation, Destination::Live)
        .unwrap();
    wait_until("committed", Duration::from_secs(10), || {
        matches!(job.state(), JobState::Committed(_))
    });
    let JobState::Committed(record) = job.state() else {
        unreachable!()
    };
    *record
}

#[test]
fn get_echoes_echostr_only_with_the_right_signature() {
    let s = TestServer::start("", "");
    let mut c = s.client();
    let r = c.get(&format!("{}&echostr=5837397749891934985", signed("xxxxxx")));
    assert_eq!(r.status, 200);
    assert_eq!(r.body, "5837397749891934985");
    let wrong = format!(
        "/wx?signature={}&timestamp=1409304348&nonce=xxxxxx&echostr=1",
        crypto::signature("othertoken", "1409304348", "xxxxxx")
    );
    assert_eq!(c.get(&wrong).status, 403);
    assert_eq!(c.get("/wx?echostr=1").status, 403);
    // Upper-case hex is not what WeChat sends: refused.
    let upper = signed("2")
        .to_uppercase()
        .replace("/WX?SIGNATURE", "/wx?signature");
    assert_eq!(c.get(&format!("{upper}&echostr=1")).status, 403);
    // A POST with a bad signature is refused before the body is looked at.
    let r = post_wx(&s, "/wx?signature=0&timestamp=1&nonce=2", "not xml");
    assert_eq!(r.status, 403);
}

#[test]
fn text_commands_and_events_get_their_replies() {
    let s = TestServer::start("", "");
    let bind_link = format!("{}/wx/oauth/start?next=%2Fbind", s.url);

    for (i, cmd) in ["成绩", "查成绩", "cj", " CJ "].iter().enumerate() {
        let r = post_wx(&s, &signed("n1"), &text("oUnbound", cmd, &format!("10{i}")));
        let reply = message::parse_reply(&r.body).unwrap();
        assert_eq!(reply.to_user, "oUnbound");
        assert_eq!(reply.from_user, ACCOUNT);
        assert!(
            reply.content.contains("还没有绑定"),
            "{cmd}: {}",
            reply.content
        );
        assert!(reply.content.contains(&bind_link), "{}", reply.content);
    }
    let c = reply_content(&post_wx(
        &s,
        &signed("n1"),
        &text("oUnbound", "绑定", "201"),
    ));
    assert!(c.contains(&bind_link), "{c}");
    let c = reply_content(&post_wx(
        &s,
        &signed("n1"),
        &text("oUnbound", "解绑", "202"),
    ));
    assert!(c.contains("无需解绑"), "{c}");
    let c = reply_content(&post_wx(
        &s,
        &signed("n1"),
        &text("oUnbound", "你好", "203"),
    ));
    assert!(
        c.contains("没有看懂“你好”") && c.contains("发送“成绩”"),
        "{c}"
    );

    let event =
        |e: &str, key: Option<&str>, t: i64| message::event_message(ACCOUNT, "oUnbound", t, e, key);
    let c = reply_content(&post_wx(
        &s,
        &signed("n1"),
        &event("subscribe", Some(""), 1),
    ));
    assert!(c.contains("欢迎使用"), "{c}");
    let c = reply_content(&post_wx(
        &s,
        &signed("n1"),
        &event("CLICK", Some("GRADES"), 2),
    ));
    assert!(c.contains("还没有绑定") && c.contains(&bind_link), "{c}");
    for (i, (e, k)) in [
        ("CLICK", Some("OTHER")),
        ("VIEW", Some("x")),
        ("unsubscribe", None),
    ]
    .into_iter()
    .enumerate()
    {
        let r = post_wx(&s, &signed("n1"), &event(e, k, 10 + i as i64));
        assert_eq!((r.status, r.body.as_str()), (200, "success"), "{e}");
    }
    // Other message types get the help.
    let image = text("oUnbound", "", "301").replace("<![CDATA[text]]>", "<![CDATA[image]]>");
    assert!(reply_content(&post_wx(&s, &signed("n1"), &image)).contains("发送“成绩”"));
}

#[test]
fn safe_mode_end_to_end_with_the_public_vector_key() {
    let s = TestServer::start("", &format!("encoding_aes_key = \"{VECTOR_KEY}\""));
    let inner = text("oSafeUser", "成绩", "4242");
    let (path, body) = safe_post(VECTOR_KEY, APP_ID, &inner, "1320562132");
    let r = post_wx(&s, &path, &body);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        !r.body.contains("oSafeUser"),
        "the reply went out in clear: {}",
        r.body
    );
    let enc = message::parse_encrypted_reply(&r.body).unwrap();
    assert!(crypto::verify_msg_signature(
        &enc.msg_signature,
        TOKEN,
        &enc.timestamp,
        &enc.nonce,
        &enc.encrypt
    ));
    let plain = MessageCipher::new(VECTOR_KEY, APP_ID)
        .unwrap()
        .decrypt(&enc.encrypt)
        .unwrap();
    let reply = message::parse_reply(&plain).unwrap();
    assert_eq!(reply.to_user, "oSafeUser");
    assert!(reply.content.contains("/wx/oauth/start?next=%2Fbind"));

    // Nothing to say in safe mode: plain `success`.
    let inner = message::event_message(ACCOUNT, "oSafeUser", 5, "VIEW", Some("x"));
    let (path, body) = safe_post(VECTOR_KEY, APP_ID, &inner, "77");
    let r = post_wx(&s, &path, &body);
    assert_eq!((r.status, r.body.as_str()), (200, "success"));
}

#[test]
fn tampered_safe_mode_requests_are_refused() {
    let s = TestServer::start("", &format!("encoding_aes_key = \"{VECTOR_KEY}\""));
    let inner = text("oX", "成绩", "1");
    let nonce = "99";
    let cipher = MessageCipher::new(VECTOR_KEY, APP_ID).unwrap();
    let good = cipher.encrypt(&inner, *b"aaaabbbbccccdddd");

    // Control: the untampered request is answered.
    let (path, body) = safe_post_raw(&good, nonce);
    assert_eq!(post_wx(&s, &path, &body).status, 200);

    // Plain signature wrong.
    let bad_sig = path.replacen("signature=", "signature=0", 1);
    assert_eq!(post_wx(&s, &bad_sig, &body).status, 403);

    // msg_signature wrong, or missing.
    let i = path.find("msg_signature=").unwrap() + "msg_signature=".len();
    let mut wrong_ms = path.clone();
    wrong_ms.replace_range(i..i + 1, if &path[i..i + 1] == "a" { "b" } else { "a" });
    assert_eq!(post_wx(&s, &wrong_ms, &body).status, 403);
    let no_ms = path[..path.find("&msg_signature").unwrap()].to_string();
    assert_eq!(post_wx(&s, &no_ms, &body).status, 403);

    // The ciphertext changed without re-signing: msg_signature catches it before decryption.
    let mut raw = base64_decode(&good);
    let n = raw.len();
    raw[n - 17] ^= 0x40; // flips the last plaintext byte: the padding value
    let bad_padding = base64_encode(&raw);
    let (_, body2) = safe_post_raw(&bad_padding, nonce);
    assert_eq!(
        post_wx(&s, &safe_post_raw(&good, nonce).0, &body2).status,
        403
    );
    // Re-signed (as only a holder of the token could): decryption refuses the padding.
    let (p2, b2) = safe_post_raw(&bad_padding, nonce);
    let r = post_wx(&s, &p2, &b2);
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("padding"), "{}", r.body);

    // Not base64, signed and unsigned.
    let not_b64 = format!("@@{}", &good[2..]);
    let (p3, b3) = safe_post_raw(&not_b64, nonce);
    let r = post_wx(&s, &p3, &b3);
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("base64"), "{}", r.body);
    assert_eq!(post_wx(&s, &safe_post_raw(&good, nonce).0, &b3).status, 403);

    // Encrypted for another AppID (and correctly signed): 403.
    let (p4, b4) = safe_post(VECTOR_KEY, "wxb11529c136998cb6", &inner, nonce);
    let r = post_wx(&s, &p4, &b4);
    assert_eq!(r.status, 403, "{}", r.body);

    // Malformed envelope, and a well-signed envelope whose inner XML is malformed.
    assert_eq!(
        post_wx(&s, &safe_post_raw(&good, nonce).0, "<xml><Encrypt>").status,
        400
    );
    let (p5, b5) = safe_post(VECTOR_KEY, APP_ID, "<xml><MsgType>text", nonce);
    assert_eq!(post_wx(&s, &p5, &b5).status, 400);
    // An encrypt_type we do not know.
    let p6 = format!("{}&encrypt_type=rot13", signed(nonce));
    assert_eq!(post_wx(&s, &p6, &inner).status, 400);
}

#[test]
fn safe_mode_without_a_key_is_400_but_compatible_mode_is_read() {
    let s = TestServer::start("", "");
    let inner = text("oCompat", "绑定", "5");
    let (path, body) = safe_post(VECTOR_KEY, APP_ID, &inner, "5");
    let r = post_wx(&s, &path, &body);
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("encoding_aes_key"), "{}", r.body);
    // Compatible mode: the plain fields travel beside <Encrypt>.
    let enc = message::parse_envelope(&body).unwrap().encrypt;
    let compat = inner.replace(
        "</xml>",
        &format!("<Encrypt><![CDATA[{enc}]]></Encrypt></xml>"),
    );
    let (path, _) = safe_post(VECTOR_KEY, APP_ID, &inner, "5");
    let r = post_wx(&s, &path, &compat);
    assert!(reply_content(&r).contains("/wx/oauth/start?next=%2Fbind"));
}

#[test]
fn hostile_xml_is_refused_and_nothing_is_fetched_or_expanded() {
    let s = TestServer::start("", "");
    let xxe = format!(
        "<?xml version=\"1.0\"?><!DOCTYPE xml [<!ENTITY x SYSTEM \"{}/xxe-probe\">]><xml><ToUserName>a</ToUserName><FromUserName>oEvil</FromUserName><CreateTime>1</CreateTime><MsgType>text</MsgType><Content>&x;</Content><MsgId>1</MsgId></xml>",
        s.fake.url
    );
    let r = post_wx(&s, &signed("6"), &xxe);
    assert_eq!(r.status, 400, "{}", r.body);
    let laughs = "<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\"><!ENTITY lol2 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\"><!ENTITY lol3 \"&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;\"><!ENTITY lol4 \"&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;\">]><xml><ToUserName>a</ToUserName><FromUserName>oEvil</FromUserName><CreateTime>1</CreateTime><MsgType>text</MsgType><Content>&lol4;</Content><MsgId>2</MsgId></xml>";
    let started = Instant::now();
    let r = post_wx(&s, &signed("6"), laughs);
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(!r.body.contains("lollol"));
    assert!(started.elapsed() < Duration::from_secs(2));
    // An entity without a DOCTYPE is refused too.
    let undeclared = text("oEvil", "x", "3").replace("<![CDATA[x]]>", "&ext;");
    assert_eq!(post_wx(&s, &signed("6"), &undeclared).status, 400);
    assert!(s.fake.log().is_empty(), "the fake saw: {:?}", s.fake.log());
    // Not XML at all, and a body over 64 KiB.
    assert_eq!(post_wx(&s, &signed("6"), "hello").status, 400);
    let huge = text("oEvil", &"长".repeat(30_000), "4");
    assert_eq!(post_wx(&s, &signed("6"), &huge).status, 413);
}

#[test]
fn cdata_breakers_in_user_text_stay_well_formed() {
    let s = TestServer::start(
        "",
        &format!("encoding_aes_key = \"{VECTOR_KEY}\"\nmessage_mode = \"compatible\""),
    );
    let nasty = "a]]><b>&lt;</xml><![CDATA[x";
    let r = post_wx(&s, &signed("2"), &text("oNasty", nasty, "77"));
    let c = reply_content(&r);
    assert!(c.contains(nasty), "{c}");
    // The same through safe mode.
    let (path, body) = safe_post(VECTOR_KEY, APP_ID, &text("oNasty", nasty, "78"), "4");
    let r = post_wx(&s, &path, &body);
    let enc = message::parse_encrypted_reply(&r.body).unwrap();
    let plain = MessageCipher::new(VECTOR_KEY, APP_ID)
        .unwrap()
        .decrypt(&enc.encrypt)
        .unwrap();
    assert!(message::parse_reply(&plain)
        .unwrap()
        .content
        .contains(nasty));
}

#[test]
fn a_message_delivered_three_times_is_answered_once() {
    let s = TestServer::start("", "");
    let path = signed("7");
    let msg = text("oRetry", "成绩", "6400000000000000001");
    let replies: Vec<String> = (0..3).map(|_| post_wx(&s, &path, &msg).body).collect();
    assert!(replies[0].starts_with("<xml>"), "{}", replies[0]);
    assert!(replies.iter().all(|r| *r == replies[0]), "{replies:?}");
    assert_eq!(metric(&s, "wxgrades_wx_messages_total{kind=\"text\"}"), 1);
    assert_eq!(
        metric(&s, "wxgrades_wx_messages_total{kind=\"duplicate\"}"),
        2
    );

    // Retries that overlap (WeChat gave up waiting on the first) get the same answer too.
    let msg = text("oRetry", "绑定", "6400000000000000002");
    let path = signed("7b");
    let s = Arc::new(s);
    let handles: Vec<_> = (0..3)
        .map(|_| {
            let (s, path, msg) = (s.clone(), path.clone(), msg.clone());
            std::thread::spawn(move || post_wx(&s, &path, &msg).body)
        })
        .collect();
    let replies: Vec<String> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert!(replies.iter().all(|r| *r == replies[0]), "{replies:?}");
    assert_eq!(metric(&s, "wxgrades_wx_messages_total{kind=\"text\"}"), 2);
    assert_eq!(
        metric(&s, "wxgrades_wx_messages_total{kind=\"duplicate\"}"),
        4
    );

    // Events: same sender and CreateTime is the same event; another second is a new one.
    let ev = message::event_message(ACCOUNT, "oRetry", 1_760_000_100, "CLICK", Some("GRADES"));
    let path = signed("7c");
    let a = post_wx(&s, &path, &ev).body;
    let b = post_wx(&s, &path, &ev).body;
    assert_eq!(a, b);
    assert_eq!(
        metric(&s, "wxgrades_wx_messages_total{kind=\"event_click\"}"),
        1
    );
    let ev2 = message::event_message(ACCOUNT, "oRetry", 1_760_000_101, "CLICK", Some("GRADES"));
    post_wx(&s, &signed("7d"), &ev2);
    assert_eq!(
        metric(&s, "wxgrades_wx_messages_total{kind=\"event_click\"}"),
        2
    );
}

const ROSTER: &str = "学号,姓名,身份证后六位\n2024001,张三,12345X\n2024002,李四,654321\n";
const GRADES: &str = "学号,姓名,学期,课程代码,课程名称,学分,成绩,考试性质\n\
2024001,张三,2024-2025-1,MA1001,高等数学,4,95,正常考试\n\
2024001,张三,2024-2025-2,CS1001,程序设计,3,89.5,正常考试\n\
2024001,张三,2024-2025-2,EN1001,大学英语,3,82,重修\n\
2024001,张三,2024-2025-2,PH1001,大学物理,2,缺考,正常考试\n";

#[test]
fn bound_students_get_their_latest_grades_and_other_replies() {
    let s = TestServer::start("", "");
    s.import("roster", ROSTER);
    s.import("grades", GRADES);
    s.app
        .store
        .bind("oZhang", "2024001", s.app.clock.now())
        .unwrap();
    s.app
        .store
        .bind("oLi", "2024002", s.app.clock.now())
        .unwrap();
    let grades_link = format!("{}/wx/oauth/start?next=%2Fgrades", s.url);

    let c = reply_content(&post_wx(&s, &signed("9"), &text("oZhang", "成绩", "501")));
    assert!(c.contains("张三同学（2024001）"), "{c}");
    assert!(c.contains("2024-2025学年 第2学期"), "{c}");
    assert!(
        c.contains("· 程序设计 89.5") && c.contains("· 大学英语［重修］ 82"),
        "{c}"
    );
    assert!(c.contains("· 大学物理 缺考（未通过）"), "{c}");
    assert!(!c.contains("高等数学"), "only the latest term: {c}");
    // (3×3.7 + 3×3.3) / 6 = 3.50; overall (4×4.0 + 3×3.7 + 3×3.3) / 10 = 3.70
    assert!(c.contains("学期绩点 3.50 · 总绩点 3.70"), "{c}");
    assert!(c.contains(&grades_link), "{c}");
    // The menu button says the same.
    let ev = message::event_message(ACCOUNT, "oZhang", 1_760_000_301, "CLICK", Some("GRADES"));
    assert_eq!(reply_content(&post_wx(&s, &signed("9"), &ev)), c);

    let c = reply_content(&post_wx(&s, &signed("9"), &text("oZhang", "绑定", "502")));
    assert!(
        c.contains("已绑定学号 2024001") && c.contains(&grades_link),
        "{c}"
    );
    let c = reply_content(&post_wx(&s, &signed("9"), &text("oZhang", "解绑", "503")));
    assert!(c.contains("/wx/oauth/start?next=%2Funbind"), "{c}");
    let c = reply_content(&post_wx(&s, &signed("9"), &text("oZhang", "hello", "504")));
    assert!(
        c.contains("张三同学你好") && c.contains("没有看懂“hello”"),
        "{c}"
    );
    // Bound, but no grades yet.
    let c = reply_content(&post_wx(&s, &signed("9"), &text("oLi", "cj", "505")));
    assert!(c.contains("李四同学，暂时还没有你的成绩"), "{c}");
}

#[test]
fn an_import_with_notify_writes_one_notice_per_bound_student_and_sends_it() {
    let s = TestServer::start("", NOTICE_CONFIG);
    s.import("roster", ROSTER);
    s.import("grades", GRADES);
    s.app
        .store
        .bind("oZhang", "2024001", s.app.clock.now())
        .unwrap();
    // 2024001 gets a changed grade and a new course; 2024002 (not bound) a new course.
    let update = "学号,学期,课程代码,课程名称,学分,成绩\n\
2024001,2025-2026-1,MA2001,线性代数,3,88\n\
2024001,2024-2025-2,CS1001,程序设计,3,91\n\
2024002,2025-2026-1,MA2001,线性代数,3,70\n";
    let record = import_with_notify(&s, "update.csv", update);
    assert_eq!(record.notices, 1);
    wait_until("sent", Duration::from_secs(10), || {
        notice_counts(&s.app).unwrap() == (0, 1, 0)
    });
    assert_eq!(s.fake.delivered("oZhang"), 1);
    assert_eq!(s.fake.delivered_total(), 1);
    let p = &s.fake.posts(TEMPLATE_SEND)[0];
    assert_eq!(
        p["data"]["keyword1"]["value"],
        "2025-2026学年 第1学期等2个学期"
    );
    let courses = p["data"]["keyword2"]["value"].as_str().unwrap();
    assert!(
        courses.contains("线性代数") && courses.contains("程序设计"),
        "{courses}"
    );
    let n = &s.app.store.notices().unwrap()[0];
    assert_eq!((n.import_id, n.name.as_str()), (record.id, "张三"));
}

#[test]
fn an_import_with_notify_but_no_template_writes_no_notice() {
    let s = TestServer::start("", "");
    s.import("roster", ROSTER);
    s.app
        .store
        .bind("oZhang", "2024001", s.app.clock.now())
        .unwrap();
    let record = import_with_notify(&s, "g.csv", GRADES);
    assert_eq!(record.notices, 0);
    assert!(s.app.store.notices().unwrap().is_empty());
}

// ---------------------------------------------------------------------------------------------
// The basic access_token
// ---------------------------------------------------------------------------------------------

#[test]
fn thirty_two_threads_cause_one_token_fetch() {
    let s = Arc::new(TestServer::start("", ""));
    s.fake.set_cgi_delay(Duration::from_millis(300));
    let barrier = Arc::new(std::sync::Barrier::new(32));
    let handles: Vec<_> = (0..32)
        .map(|_| {
            let (s, barrier) = (s.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                wxapi::access_token(&s.app)
            })
        })
        .collect();
    let tokens: Vec<String> = handles
        .into_iter()
        .map(|h| h.join().unwrap().unwrap())
        .collect();
    assert!(tokens.iter().all(|t| t == "basic-token-1"), "{tokens:?}");
    assert_eq!(s.fake.calls("/cgi-bin/stable_token"), 1);
    assert_eq!(s.fake.calls("/cgi-bin/token"), 0);
    // The request was the stable_token one, with our credentials.
    let posted = s.fake.posts("/cgi-bin/stable_token");
    assert_eq!(posted[0]["appid"], APP_ID);
    assert_eq!(posted[0]["secret"], APP_SECRET);
    assert_eq!(posted[0]["grant_type"], "client_credential");
    assert_eq!(posted[0]["force_refresh"], false);
}

#[test]
fn a_refused_token_is_refreshed_once_and_the_call_retried_once() {
    let s = TestServer::start("", "");
    let body = serde_json::json!({"touser": "oA", "template_id": "T", "data": {}});
    assert!(wxapi::post(&s.app, TEMPLATE_SEND, &body).is_ok());
    assert_eq!(s.fake.calls("/cgi-bin/stable_token"), 1);

    s.fake.script(TEMPLATE_SEND, &[40001]);
    assert!(wxapi::post(&s.app, TEMPLATE_SEND, &body).is_ok());
    assert_eq!(s.fake.calls("/cgi-bin/stable_token"), 2);
    assert_eq!(s.fake.calls(TEMPLATE_SEND), 3);
    let log = s.fake.log();
    let sends: Vec<&String> = log
        .iter()
        .filter(|l| l.starts_with(TEMPLATE_SEND))
        .collect();
    assert!(sends[1].contains("access_token=basic-token-1"));
    assert!(sends[2].contains("access_token=basic-token-2"));

    // Refused twice in a row: one refresh, one retry, then the error.
    s.fake.script(TEMPLATE_SEND, &[42001, 40014]);
    let e = wxapi::post(&s.app, TEMPLATE_SEND, &body).unwrap_err();
    assert_eq!(e.errcode(), Some(40014));
    assert_eq!(s.fake.calls("/cgi-bin/stable_token"), 3);
    assert_eq!(s.fake.calls(TEMPLATE_SEND), 5);
}

#[test]
fn the_token_is_refreshed_ahead_of_expiry_and_survives_a_restart() {
    let s = TestServer::start("", "");
    assert_eq!(wxapi::access_token(&s.app).unwrap(), "basic-token-1");
    // 7200 s tokens are refreshed 300 s before they expire.
    s.app.clock.advance(7200 - 300 - 30);
    assert_eq!(wxapi::access_token(&s.app).unwrap(), "basic-token-1");
    assert_eq!(s.fake.calls("/cgi-bin/stable_token"), 1);
    s.app.clock.advance(31);
    assert_eq!(wxapi::access_token(&s.app).unwrap(), "basic-token-2");
    assert_eq!(s.fake.calls("/cgi-bin/stable_token"), 2);

    // A new process on the same data file uses the cached token.
    let cfg = s.app.config.clone();
    let offset = 7200 - 300 + 1;
    let fake_calls = s.fake.calls("/cgi-bin/stable_token");
    let url = s.url.clone();
    let mut s = s;
    if let Some(r) = s.running.take() {
        r.shutdown();
    }
    let fake = std::mem::replace(&mut s.fake, support::FakeWeChat::start(APP_ID, APP_SECRET));
    drop(s);
    let app = wxgrades::app::App::new(cfg).expect("reopen");
    app.clock.advance(offset);
    assert_eq!(wxapi::access_token(&app).unwrap(), "basic-token-2");
    assert_eq!(fake.calls("/cgi-bin/stable_token"), fake_calls);
    let _ = url;
}

#[test]
fn busy_is_retried_and_quota_is_reported() {
    let s = TestServer::start("", "");
    s.fake.script("/cgi-bin/stable_token", &[-1, -1]);
    assert_eq!(wxapi::access_token(&s.app).unwrap(), "basic-token-1");
    assert_eq!(s.fake.calls("/cgi-bin/stable_token"), 3);

    let body = serde_json::json!({"touser": "oA", "template_id": "T", "data": {}});
    s.fake.script(TEMPLATE_SEND, &[-1]);
    assert!(wxapi::post(&s.app, TEMPLATE_SEND, &body).is_ok());
    s.fake.script(TEMPLATE_SEND, &[45009]);
    let e = wxapi::post(&s.app, TEMPLATE_SEND, &body).unwrap_err();
    assert!(e.is_quota());
    assert!(e.to_string().contains("daily API quota"), "{e}");
    // Busy for ever: bounded retries, then the error.
    s.fake.script(TEMPLATE_SEND, &[-1, -1, -1, -1, -1, -1]);
    let e = wxapi::post(&s.app, TEMPLATE_SEND, &body).unwrap_err();
    assert!(e.is_busy());
    assert!(metric(&s, "wxgrades_wechat_errors_total{errcode=\"45009\"}") >= 1);
}

#[test]
fn classic_token_api_is_used_when_configured() {
    let s = TestServer::start("", "token_api = \"classic\"");
    assert_eq!(wxapi::access_token(&s.app).unwrap(), "basic-token-1");
    assert_eq!(s.fake.calls("/cgi-bin/token"), 1);
    assert_eq!(s.fake.calls("/cgi-bin/stable_token"), 0);
    let log = s.fake.log();
    assert!(log[0].contains("grant_type=client_credential"));
    assert!(log[0].contains(&format!("appid={APP_ID}")));
}

// ---------------------------------------------------------------------------------------------
// Grade notices
// ---------------------------------------------------------------------------------------------

const NOTICE_CONFIG: &str = "grades_template_id = \"TPL-grades-1\"\ngrades_template_fields = { first = \"first\", term = \"keyword1\", courses = \"keyword2\", count = \"keyword3\", student_id = \"keyword4\" }\nnotice_rate_per_sec = 100";

fn notice(openid: &str, import_id: u64) -> NewNotice {
    NewNotice {
        openid: openid.into(),
        student_id: format!("S{openid}"),
        name: String::new(),
        terms: vec!["2025-2026-1".into()],
        courses: vec!["高等数学".into(), "大学英语".into()],
        import_id,
    }
}

#[test]
fn notices_are_sent_with_the_configured_template() {
    let s = TestServer::start("", NOTICE_CONFIG);
    let ids = s
        .app
        .store
        .enqueue_notices(&[notice("oN1", 1), notice("oN2", 1), notice("oN3", 1)])
        .unwrap();
    assert_eq!(ids.len(), 3);
    s.app.notice_wake.notify();
    wait_until("3 sent", Duration::from_secs(10), || {
        notice_counts(&s.app).unwrap() == (0, 3, 0)
    });
    for o in ["oN1", "oN2", "oN3"] {
        assert_eq!(s.fake.delivered(o), 1);
    }
    // The admin dashboard shows the same counts.
    assert_eq!(wxgrades::service::admin::notice_counts(&s.app), (0, 3, 0));
    let posts = s.fake.posts(TEMPLATE_SEND);
    let p = posts.iter().find(|p| p["touser"] == "oN2").unwrap();
    assert_eq!(p["template_id"], "TPL-grades-1");
    assert_eq!(
        p["url"],
        format!("{}/wx/oauth/start?next=%2Fgrades", s.url).as_str()
    );
    assert_eq!(p["data"]["keyword1"]["value"], "2025-2026学年 第1学期");
    assert_eq!(p["data"]["keyword2"]["value"], "高等数学、大学英语");
    assert_eq!(p["data"]["keyword3"]["value"], "2");
    assert_eq!(p["data"]["keyword4"]["value"], "SoN2");
    assert!(p["data"]["first"]["value"]
        .as_str()
        .unwrap()
        .contains("成绩"));
    assert!(p["client_msg_id"]
        .as_str()
        .unwrap()
        .starts_with("wxgrades-"));
    let stored = s.app.store.notices().unwrap();
    assert!(stored
        .iter()
        .all(|n| n.state == NoticeState::Sent && n.msg_id.is_some() && n.attempts == 1));
    assert!(metric(&s, "wxgrades_notices_total{result=\"sent\"}") == 3);
}

#[test]
fn permanent_failures_are_recorded_and_transient_ones_retried() {
    let s = TestServer::start("", NOTICE_CONFIG);
    s.fake.script(TEMPLATE_SEND, &[43004]);
    s.app.store.enqueue_notices(&[notice("oGone", 2)]).unwrap();
    wait_until("failed", Duration::from_secs(10), || {
        notice_counts(&s.app).unwrap() == (0, 0, 1)
    });
    assert_eq!(s.fake.calls(TEMPLATE_SEND), 1);
    let n = &s.app.store.notices().unwrap()[0];
    assert_eq!((n.state, n.errcode), (NoticeState::Failed, Some(43004)));
    assert!(n.error.as_deref().unwrap().contains("does not follow"));

    // A transient failure (-1 on every quick retry): kept pending, tried again later.
    s.fake.script(TEMPLATE_SEND, &[-1, -1, -1, -1]);
    s.app.store.enqueue_notices(&[notice("oLater", 2)]).unwrap();
    wait_until("first try over", Duration::from_secs(15), || {
        s.app
            .store
            .notices()
            .unwrap()
            .iter()
            .any(|n| n.openid == "oLater" && n.failures == 1 && n.state == NoticeState::Pending)
    });
    assert_eq!(s.fake.delivered("oLater"), 0);
    assert_eq!(notice_counts(&s.app).unwrap(), (1, 0, 1));
    s.app.clock.advance(16);
    wait_until("sent on retry", Duration::from_secs(10), || {
        notice_counts(&s.app).unwrap() == (0, 1, 1)
    });
    assert_eq!(s.fake.delivered("oLater"), 1);
    let n = s
        .app
        .store
        .notices()
        .unwrap()
        .into_iter()
        .find(|n| n.openid == "oLater")
        .unwrap();
    assert_eq!((n.attempts, n.failures), (2, 1));
}

#[test]
fn the_job_finished_event_updates_the_notice() {
    let s = TestServer::start("", NOTICE_CONFIG);
    s.app
        .store
        .enqueue_notices(&[notice("oBlock", 3), notice("oFine", 3)])
        .unwrap();
    wait_until("sent", Duration::from_secs(10), || {
        notice_counts(&s.app).unwrap() == (0, 2, 0)
    });
    let notices = s.app.store.notices().unwrap();
    let finish = |openid: &str, status: &str| {
        let n = notices.iter().find(|n| n.openid == openid).unwrap();
        format!(
            "<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName><FromUserName><![CDATA[{openid}]]></FromUserName><CreateTime>1760000200</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[TEMPLATESENDJOBFINISH]]></Event><MsgID>{}</MsgID><Status><![CDATA[{status}]]></Status></xml>",
            n.msg_id.unwrap()
        )
    };
    let path = signed("8");
    for _ in 0..3 {
        let r = post_wx(&s, &path, &finish("oBlock", "failed:user block"));
        assert_eq!((r.status, r.body.as_str()), (200, "success"));
    }
    // Same CreateTime, another notice: a different event (keyed by MsgID), not a retry.
    post_wx(&s, &signed("8b"), &finish("oFine", "success"));
    assert_eq!(notice_counts(&s.app).unwrap(), (0, 1, 1));
    let after = s.app.store.notices().unwrap();
    let blocked = after.iter().find(|n| n.openid == "oBlock").unwrap();
    assert_eq!(blocked.state, NoticeState::Failed);
    assert_eq!(blocked.delivery.as_deref(), Some("failed:user block"));
    let fine = after.iter().find(|n| n.openid == "oFine").unwrap();
    assert_eq!(fine.delivery.as_deref(), Some("success"));
}

#[test]
fn without_a_template_id_nothing_is_sent() {
    let s = TestServer::start("", "");
    assert!(!wxgrades::service::notices::enabled(&s.app.config));
    s.app.store.enqueue_notices(&[notice("oWait", 4)]).unwrap();
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(s.fake.calls(TEMPLATE_SEND), 0);
    assert_eq!(notice_counts(&s.app).unwrap(), (1, 0, 0));
}

// ---------------------------------------------------------------------------------------------
// The real binary: kill -9 while sending; check; menu
// ---------------------------------------------------------------------------------------------

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn write_config(dir: &Path, fake_url: &str, extra_wechat: &str) -> (PathBuf, PathBuf) {
    let port = free_port();
    let data = dir.join("data.redb");
    let cfg = dir.join("wxgrades.toml");
    let toml = format!(
        "listen = \"127.0.0.1:{port}\"\npublic_url = \"http://127.0.0.1:{port}\"\ndata = \"{}\"\nworkers = 4\n[wechat]\napp_id = \"{APP_ID}\"\napp_secret = \"{APP_SECRET}\"\ntoken = \"{TOKEN}\"\napi_base = \"{fake_url}\"\nopen_base = \"{fake_url}\"\ntimeout_secs = 5\n{extra_wechat}\n[backup]\ndir = \"{}\"\n",
        data.display(),
        dir.join("backups").display()
    );
    std::fs::write(&cfg, toml).unwrap();
    (cfg, data)
}

fn wxgrades(args: &[&str], cfg: &Path, log: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_wxgrades"));
    c.args(args)
        .arg("--config")
        .arg(cfg)
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).unwrap());
    c
}

struct Proc(Option<Child>);

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(c) = &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[test]
fn outbox_survives_kill_9_and_delivers_every_notice_once() {
    let fake = support::FakeWeChat::start(APP_ID, APP_SECRET);
    let dir = support::temp_dir("kill9");
    let (cfg, data) = write_config(
        &dir,
        &fake.url,
        "grades_template_id = \"TPL-grades-1\"\nnotice_rate_per_sec = 50",
    );
    let openids: Vec<String> = (0..8).map(|i| format!("oKill{i}")).collect();
    {
        let store = Store::open(&data).unwrap();
        let batch: Vec<NewNotice> = openids.iter().map(|o| notice(o, 9)).collect();
        store.enqueue_notices(&batch).unwrap();
    }
    // WeChat receives the third notice and, before it answers, the server is killed.
    fake.hold_template_send(3);
    fake.set_cgi_delay(Duration::from_millis(100));
    let log1 = dir.join("first.log");
    let mut first = Proc(Some(wxgrades(&["serve"], &cfg, &log1).spawn().unwrap()));
    wait_until(
        "the third notice held at WeChat",
        Duration::from_secs(30),
        || fake.holding(),
    );
    if let Some(c) = &mut first.0 {
        c.kill().unwrap(); // SIGKILL
        c.wait().unwrap();
    }
    first.0 = None;
    // WeChat goes on and delivers the message it had received.
    fake.release();
    wait_until("WeChat done with it", Duration::from_secs(10), || {
        fake.delivered_total() == 3
    });

    let log2 = dir.join("second.log");
    let mut second = Proc(Some(wxgrades(&["serve"], &cfg, &log2).spawn().unwrap()));
    let all = openids.len();
    wait_until("every notice delivered", Duration::from_secs(60), || {
        fake.delivered_total() >= all
    });
    // Stop gracefully (SIGTERM) so the last outcome is recorded, then read the data file.
    let pid = second.0.as_ref().unwrap().id().to_string();
    let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(killed.success());
    let started = Instant::now();
    loop {
        if let Some(c) = &mut second.0 {
            if c.try_wait().unwrap().is_some() {
                break;
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "server did not stop"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    second.0 = None;

    for o in &openids {
        assert_eq!(
            fake.delivered(o),
            1,
            "{o} got {} notices",
            fake.delivered(o)
        );
    }
    let suppressed = fake.state.lock().unwrap().suppressed;
    let store = Store::open(&data).unwrap();
    let counts = store.notice_counts().unwrap();
    let logs = || {
        format!(
            "{}\n---\n{}",
            std::fs::read_to_string(&log1).unwrap_or_default(),
            std::fs::read_to_string(&log2).unwrap_or_default()
        )
    };
    assert_eq!(
        (counts.pending, counts.sent, counts.failed),
        (0, all as u64, 0),
        "{}",
        logs()
    );
    let notices = store.notices().unwrap();
    assert!(notices.iter().all(|n| n.state == NoticeState::Sent));
    // The notice on the wire at the kill was sent again (same client_msg_id) and WeChat
    // delivered it once.
    let in_doubt: u32 = notices.iter().map(|n| n.in_doubt).sum();
    assert_eq!(in_doubt, 1, "{}", logs());
    assert_eq!(suppressed, 1, "{}", logs());
    assert!(logs().contains("cut short"));
}

#[test]
fn check_proves_the_credentials_and_menu_push_publishes() {
    let fake = support::FakeWeChat::start(APP_ID, APP_SECRET);
    let dir = support::temp_dir("check");
    let (cfg, data) = write_config(&dir, &fake.url, "");
    let log = dir.join("check.log");
    let out = wxgrades(&["check"], &cfg, &log).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        std::fs::read_to_string(&log).unwrap()
    );
    assert!(stdout.contains("WeChat credentials OK"), "{stdout}");
    assert_eq!(fake.calls("/cgi-bin/stable_token"), 1);
    assert!(!data.exists(), "check created the data file");

    fake.script("/cgi-bin/stable_token", &[40125]);
    let out = wxgrades(&["check"], &cfg, &log).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = std::fs::read_to_string(&log).unwrap();
    assert!(
        err.contains("40125") && err.contains("invalid AppSecret"),
        "{err}"
    );
    assert!(err.contains("app_secret"), "{err}");

    let out = wxgrades(&["menu", "show"], &cfg, &log).output().unwrap();
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(shown.contains("/wx/oauth/start?next=%2Fgrades"), "{shown}");

    let out = wxgrades(&["menu", "push"], &cfg, &log).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        std::fs::read_to_string(&log).unwrap()
    );
    assert!(stdout.contains("WeChat accepted the menu"), "{stdout}");
    let menu = fake.state.lock().unwrap().menu.clone().unwrap();
    assert_eq!(menu["button"][0]["type"], "view");

    fake.script("/cgi-bin/menu/create", &[40055]);
    let out = wxgrades(&["menu", "push"], &cfg, &log).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = std::fs::read_to_string(&log).unwrap();
    assert!(err.contains("40055") && err.contains("domain"), "{err}");
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}

fn base64_encode(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(b)
}

// ---------------------------------------------------------------------------------------------
// Demo mode: the simulator's cgi-bin API and the phone page
// ---------------------------------------------------------------------------------------------

fn phone_send(c: &mut support::Client, user: &str, fields: &[(&str, &str)]) -> Resp {
    let page = c.get(&format!("/_sim/phone?user={user}"));
    assert_eq!(page.status, 200, "{}", page.body);
    let token = support::Client::hidden(&page.body, "csrf_token");
    let mut all = vec![("csrf_token", token.as_str()), ("user", user)];
    all.extend_from_slice(fields);
    c.post_form("/_sim/phone/send", &all)
}

#[test]
fn demo_phone_talks_to_the_account_through_the_real_endpoint() {
    use wxgrades::wechat::sim::DEMO_USERS;
    let s = TestServer::demo();
    assert!(
        !s.app.config.wechat.encoding_aes_key.is_empty(),
        "demo runs safe mode"
    );
    let user = DEMO_USERS[0].openid;
    let mut c = s.client();

    let r = phone_send(&mut c, user, &[("text", "成绩")]);
    assert_eq!(r.status, 303, "{}", r.body);
    let page = c.get(&format!("/_sim/phone?user={user}"));
    assert!(page.body.contains("成绩</p>"), "{}", page.body);
    assert!(page.body.contains("还没有绑定学号"), "{}", page.body);
    // The link in the reply is a link on the phone.
    // (minijinja escapes `/` in attributes as &#x2f;.)
    let attr = |u: &str| u.replace('/', "&#x2f;");
    let bind_href = attr(&format!("{}/wx/oauth/start?next=%2Fbind", s.url));
    assert!(
        page.body
            .contains(&format!("<a href=\"{bind_href}\">去绑定学号</a>")),
        "{}",
        page.body
    );
    // The menu: VIEW buttons link through web authorization, the CLICK button posts its key.
    let grades_href = attr(&format!("{}/wx/oauth/start?next=%2Fgrades", s.url));
    assert!(page.body.contains(&grades_href));
    assert!(page.body.contains("name=\"key\" value=\"GRADES\""));
    // The request went through /wx, encrypted.
    assert!(
        s.app
            .metrics
            .render()
            .contains("route=\"wx_message\",status=\"200\""),
        "{}",
        s.app.metrics.render()
    );

    // Bound: the grades come back, by text and by the menu button.
    s.app
        .store
        .bind(user, wxgrades::demo::HINT_STUDENT_ID, s.app.clock.now())
        .unwrap();
    phone_send(&mut c, user, &[("key", "GRADES")]);
    let page = c.get(&format!("/_sim/phone?user={user}"));
    assert!(
        page.body.contains("林小雨同学（20220301）"),
        "{}",
        page.body
    );
    assert!(page.body.contains("学期绩点"), "{}", page.body);

    // Another demo user's phone is empty.
    let other = c.get(&format!("/_sim/phone?user={}", DEMO_USERS[1].openid));
    assert!(!other.body.contains("林小雨同学"));
    assert!(other.body.contains("还没有消息"));

    // CSRF: a wrong token, or no cookie, is refused and nothing is sent.
    let before = metric(&s, "wxgrades_wx_messages_total{kind=\"text\"}");
    let r = c.post_form(
        "/_sim/phone/send",
        &[("csrf_token", "0000"), ("user", user), ("text", "成绩")],
    );
    assert_eq!(r.status, 403);
    let mut stranger = s.client();
    let token = support::Client::hidden(&page.body, "csrf_token");
    let r = stranger.post_form(
        "/_sim/phone/send",
        &[("csrf_token", &token), ("user", user), ("text", "成绩")],
    );
    assert_eq!(r.status, 403);
    assert_eq!(
        metric(&s, "wxgrades_wx_messages_total{kind=\"text\"}"),
        before
    );
}

#[test]
fn demo_notices_and_menu_go_through_the_simulated_cgi_bin() {
    use wxgrades::wechat::sim::DEMO_USERS;
    let s = TestServer::demo();
    let user = DEMO_USERS[1].openid;
    assert_eq!(
        s.app.config.wechat.grades_template_id,
        "demo-grades-released"
    );

    // The menu, published to the simulator with the production code.
    let answer = wxgrades::service::menu::push(&s.app).unwrap();
    assert_eq!(answer["errcode"], 0);
    let token = wxapi::access_token(&s.app).unwrap();
    let mut c = s.client();
    let got = c.get(&format!("/_sim/cgi-bin/menu/get?access_token={token}"));
    assert!(got.body.contains("\"GRADES\""), "{}", got.body);
    let bad = c.get("/_sim/cgi-bin/menu/get?access_token=nope");
    assert!(bad.body.contains("40001"));

    s.app
        .store
        .enqueue_notices(&[NewNotice {
            openid: user.into(),
            student_id: "20220302".into(),
            name: "张伟".into(),
            terms: vec!["2025-2026-1".into()],
            courses: vec!["高等数学".into(), "线性代数".into()],
            import_id: 1,
        }])
        .unwrap();
    s.app.notice_wake.notify();
    wait_until("sent to the simulator", Duration::from_secs(10), || {
        notice_counts(&s.app).unwrap() == (0, 1, 0)
    });
    let page = c.get(&format!("/_sim/phone?user={user}"));
    assert!(page.body.contains("成绩发布通知"), "{}", page.body);
    assert!(page.body.contains("2025-2026学年 第1学期"), "{}", page.body);
    assert!(page.body.contains("高等数学、线性代数"), "{}", page.body);
    assert!(
        page.body.contains("<dt>姓名</dt><dd>张伟</dd>"),
        "{}",
        page.body
    );
    // The simulator then reports the delivery, as WeChat does, to /wx.
    wait_until("job finished", Duration::from_secs(10), || {
        s.app.store.notices().unwrap()[0].delivery.as_deref() == Some("success")
    });
}

#[test]
fn a_notice_whose_sends_keep_being_cut_short_is_given_up() {
    let fake = support::FakeWeChat::start(APP_ID, APP_SECRET);
    let dir = support::temp_dir("cutshort");
    let (cfg_path, data) = write_config(&dir, &fake.url, "grades_template_id = \"TPL\"");
    {
        let store = Store::open(&data).unwrap();
        store.enqueue_notices(&[notice("oLoop", 5)]).unwrap();
        // Three processes died while sending it.
        for _ in 0..3 {
            store.claim_notice(1, 0).unwrap().unwrap();
        }
    }
    let cfg = wxgrades::config::load(wxgrades::config::Source::File(&cfg_path), &[]).unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let s = TestServer::start_with(cfg, listener, fake, dir);
    wait_until("given up", Duration::from_secs(10), || {
        notice_counts(&s.app).unwrap() == (0, 0, 1)
    });
    assert_eq!(s.fake.calls(TEMPLATE_SEND), 0);
    let n = &s.app.store.notices().unwrap()[0];
    assert!(n.error.as_deref().unwrap().contains("cut short"), "{n:?}");
}
