//! Grade notices on the other WeChat channels (`[wechat] notices`): the 一次性订阅 consent round
//! trip over HTTP (reserved one-time and bound to the browser, the openid checked), one message
//! per consent, 订阅通知's payload, the errcodes that fail a notice without retry, and the
//! dashboard's list of domain-check files. Real server on 127.0.0.1:0, fake WeChat.

mod support;

use std::time::{Duration, Instant};

use support::{Client, TestServer};
use wxgrades::service::import::jobs::JobState;
use wxgrades::service::import::plan::ImportKind;
use wxgrades::service::notices::notice_counts;
use wxgrades::store::consents::Consent;
use wxgrades::store::notices::{NewNotice, NoticeState};

use support::fake_wechat::{BIZ_SEND, ONCE_SEND};

const ONCE: &str =
    "notices = \"once\"\nonce_template_id = \"TPL-once-1\"\nnotice_rate_per_sec = 100";
const SUBSCRIBE: &str = "notices = \"subscribe\"\nsubscribe_template_id = \"TPL-sub-1\"\nsubscribe_template_fields = { courses = \"thing1\", time = \"time2\", term = \"thing3\", student_id = \"character_string4\" }\nnotice_rate_per_sec = 100";

const ROSTER: &str = "学号,姓名,身份证后六位\n2024001,张三,12345X\n2024002,李四,654321\n";
const GRADES: &str = "学号,姓名,学期,课程代码,课程名称,学分,成绩\n\
2024001,张三,2025-2026-1,MA1001,高等数学,4,95\n\
2024001,张三,2025-2026-1,CS1001,程序设计,3,89\n";

fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A server in `channel`'s config with 张三 (2024001) bound to `oZhang`.
fn server(channel: &str) -> TestServer {
    let s = TestServer::start("", channel);
    s.import("roster", ROSTER);
    s.app
        .store
        .bind("oZhang", "2024001", s.app.clock.now())
        .unwrap();
    s
}

/// The query parameter `name` of `url`, decoded.
fn param(url: &str, name: &str) -> Option<String> {
    let q = url.split_once('?')?.1.split('#').next()?;
    q.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == name).then(|| {
            let mut out = Vec::new();
            let b = v.as_bytes();
            let mut i = 0;
            while i < b.len() {
                if b[i] == b'%' && i + 2 < b.len() {
                    if let Ok(x) = u8::from_str_radix(&v[i + 1..i + 3], 16) {
                        out.push(x);
                        i += 3;
                        continue;
                    }
                }
                out.push(b[i]);
                i += 1;
            }
            String::from_utf8_lossy(&out).into_owned()
        })
    })
}

/// From the grades page, through `/notify/subscribe`, to WeChat's consent page: the URL WeChat
/// sends the browser back to (the fake answered as `openid` with `action`).
fn consent_return(s: &TestServer, c: &mut Client, openid: &str, action: &str) -> String {
    let r = c.get("/notify/subscribe");
    assert_eq!(r.status, 302, "{}", r.body);
    let to_wechat = r.location().to_string();
    s.fake.set_next_consent(openid, action);
    let r = c.follow(&r);
    assert_eq!(r.status, 302, "the consent page answers: {}", r.body);
    assert!(to_wechat.starts_with(&s.fake.url));
    r.location().to_string()
}

fn consent_of(s: &TestServer, openid: &str) -> Option<Consent> {
    s.app.store.consent(openid).unwrap()
}

#[test]
fn the_consent_link_goes_to_wechat_with_a_one_time_reserved() {
    let s = server(ONCE);
    let mut c = s.signed_in("oZhang");
    let page = c.get("/grades");
    assert_eq!(page.status, 200);
    assert!(page.body.contains("有新成绩时通知我"), "{}", page.body);
    assert!(page.body.contains("href=\"/notify/subscribe\""));
    let r = c.get("/notify/subscribe");
    assert_eq!(r.status, 302);
    let loc = r.location();
    let expected_start = format!(
        "{}/mp/subscribemsg?action=get_confirm&appid={}&scene=1&template_id=TPL-once-1&redirect_url=",
        s.fake.url,
        support::APP_ID
    );
    assert!(loc.starts_with(&expected_start), "{loc}");
    assert!(loc.ends_with("#wechat_redirect"), "{loc}");
    assert_eq!(
        param(loc, "redirect_url").unwrap(),
        format!("{}/notify/subscribed", s.url)
    );
    let reserved = param(loc, "reserved").unwrap();
    assert!(
        (16..=128).contains(&reserved.len()) && reserved.bytes().all(|b| b.is_ascii_alphanumeric()),
        "{reserved}"
    );
    // A second start gives a new value.
    let again = c.get("/notify/subscribe");
    assert_ne!(param(again.location(), "reserved").unwrap(), reserved);
    // Not signed in: through web authorization first; signed in but not bound: to /bind.
    let r = s.client().get("/notify/subscribe");
    assert_eq!(r.status, 302);
    assert!(
        r.location().starts_with("/wx/oauth/start"),
        "{}",
        r.location()
    );
    let mut stranger = s.signed_in("oNobody");
    let r = stranger.get("/notify/subscribe");
    assert_eq!((r.status, r.location()), (302, "/bind"));
    // Nothing was written by starting.
    assert_eq!(consent_of(&s, "oZhang"), None);
}

#[test]
fn confirm_records_one_consent_and_the_page_says_so() {
    let s = server(ONCE);
    let mut c = s.signed_in("oZhang");
    let back = consent_return(&s, &mut c, "oZhang", "confirm");
    assert_eq!(param(&back, "action").as_deref(), Some("confirm"));
    let r = c.get(&back);
    assert_eq!((r.status, r.location()), (303, "/grades"), "{}", r.body);
    let page = c.follow(&r);
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("已开启：有新成绩时，微信会通知你一次"),
        "{}",
        page.body
    );
    assert!(page.body.contains("有新成绩时会通知你（一次）"));
    assert!(!page.body.contains("href=\"/notify/subscribe\""));
    let consent = consent_of(&s, "oZhang").expect("recorded");
    assert_eq!(
        (
            consent.student_id.as_str(),
            consent.template_id.as_str(),
            consent.scene
        ),
        ("2024001", "TPL-once-1", 1)
    );
    // The message is shown once; the next visit has the standing line only.
    let later = c.get("/grades");
    assert!(!later.body.contains("已开启：有新成绩时，微信会通知你一次"));
    assert!(later.body.contains("有新成绩时会通知你（一次）"));
    // A second consent does not add up.
    let back = consent_return(&s, &mut c, "oZhang", "confirm");
    let r = c.get(&back);
    assert_eq!(r.status, 303);
    assert!(c.follow(&r).body.contains("你已开启过"));
}

#[test]
fn cancel_records_nothing() {
    let s = server(ONCE);
    let mut c = s.signed_in("oZhang");
    let back = consent_return(&s, &mut c, "oZhang", "cancel");
    let r = c.get(&back);
    assert_eq!((r.status, r.location()), (303, "/grades"));
    let page = c.follow(&r);
    assert!(page.body.contains("你取消了订阅"), "{}", page.body);
    assert!(page.body.contains("有新成绩时通知我"));
    assert_eq!(consent_of(&s, "oZhang"), None);
}

#[test]
fn a_replayed_reserved_is_refused_and_records_nothing() {
    let s = server(ONCE);
    let mut c = s.signed_in("oZhang");
    let back = consent_return(&s, &mut c, "oZhang", "confirm");
    assert_eq!(c.get(&back).status, 303);
    // The consent is used up (a notice went out); the same return again records nothing.
    assert!(s.app.store.remove_consent("oZhang").unwrap());
    let r = c.get(&back);
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body.contains("没有记录任何订阅"), "{}", r.body);
    assert_eq!(consent_of(&s, "oZhang"), None);
}

#[test]
fn a_return_in_another_browser_is_refused_and_records_nothing() {
    let s = server(ONCE);
    let mut mine = s.signed_in("oZhang");
    let back = consent_return(&s, &mut mine, "oZhang", "confirm");
    // The same student signed in on another browser (or someone handed the link).
    let mut other = s.signed_in("oZhang");
    let r = other.get(&back);
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(consent_of(&s, "oZhang"), None);
    // Without a session at all: sent to sign in, nothing recorded.
    let r = s.client().get(&back);
    assert_eq!(r.status, 302);
    assert_eq!(consent_of(&s, "oZhang"), None);
    // The stranger did not spend it: the browser it was issued to still can.
    assert_eq!(mine.get(&back).status, 303);
    assert!(consent_of(&s, "oZhang").is_some());
}

#[test]
fn a_return_for_another_openid_or_template_is_refused_and_records_nothing() {
    let s = server(ONCE);
    let mut c = s.signed_in("oZhang");
    let back = consent_return(&s, &mut c, "oSomeoneElse", "confirm");
    let r = c.get(&back);
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(consent_of(&s, "oZhang"), None);
    assert_eq!(consent_of(&s, "oSomeoneElse"), None);
    // A template id other than ours.
    let back = consent_return(&s, &mut c, "oZhang", "confirm");
    let forged = back.replace("template_id=TPL-once-1", "template_id=TPL-other");
    assert_ne!(forged, back);
    assert_eq!(c.get(&forged).status, 403);
    assert_eq!(consent_of(&s, "oZhang"), None);
    // A made-up reserved.
    let made_up = format!(
        "/notify/subscribed?openid=oZhang&template_id=TPL-once-1&action=confirm&scene=1&reserved={}",
        "a".repeat(32)
    );
    assert_eq!(c.get(&made_up).status, 403);
    assert_eq!(consent_of(&s, "oZhang"), None);
}

/// Upload grades as the admin page does and commit them with "notify".
fn import_with_notify(s: &TestServer, name: &str, csv: &str) -> usize {
    let job = s
        .app
        .jobs
        .submit(
            "admin",
            ImportKind::Grades,
            name,
            wxgrades::service::import::file::ImportFile::from_bytes(csv.as_bytes())
                .expect("temp file"),
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
        .commit(
            &job.id,
            true,
            generation,
            wxgrades::store::releases::Destination::Live,
        )
        .unwrap();
    wait_until("committed", Duration::from_secs(10), || {
        matches!(job.state(), JobState::Committed(_))
    });
    let JobState::Committed(record) = job.state() else {
        unreachable!()
    };
    record.notices
}

#[test]
fn one_message_per_consent_then_the_link_again() {
    let s = server(ONCE);
    let mut c = s.signed_in("oZhang");
    let back = consent_return(&s, &mut c, "oZhang", "confirm");
    assert_eq!(c.get(&back).status, 303);
    assert_eq!(import_with_notify(&s, "g1.csv", GRADES), 1);
    wait_until("sent", Duration::from_secs(10), || {
        notice_counts(&s.app).unwrap() == (0, 1, 0)
    });
    assert_eq!(s.fake.once_delivered("oZhang"), 1);
    let posts = s.fake.posts(ONCE_SEND);
    assert_eq!(posts.len(), 1);
    let p = &posts[0];
    assert_eq!(p["touser"], "oZhang");
    assert_eq!(p["template_id"], "TPL-once-1");
    assert_eq!(p["scene"], "1");
    let title = p["title"].as_str().unwrap();
    assert!(!title.is_empty() && title.chars().count() <= 15, "{title}");
    let content = p["data"]["content"]["value"].as_str().unwrap();
    assert!(content.chars().count() <= 200, "{content}");
    assert!(
        content.contains("张三") && content.contains("高等数学"),
        "{content}"
    );
    assert!(content.contains("你"), "{content}");
    assert_eq!(
        p["url"],
        format!(
            "{}/wx/oauth/start?next=%2Fgrades%3Fterm%3D2025-2026-1",
            s.url
        )
        .as_str()
    );
    // The consent is used up: the page offers the link again.
    assert_eq!(consent_of(&s, "oZhang"), None);
    let page = c.get("/grades");
    assert!(page.body.contains("有新成绩时通知我"), "{}", page.body);
    // The next release finds no consent: no message, counted as skipped, not failed.
    let more = "学号,姓名,学期,课程代码,课程名称,学分,成绩\n2024001,张三,2025-2026-1,EN1001,大学英语,3,80\n";
    assert_eq!(import_with_notify(&s, "g2.csv", more), 1);
    wait_until("skipped", Duration::from_secs(10), || {
        s.app.store.notice_counts().unwrap().skipped == 1
    });
    assert_eq!(notice_counts(&s.app).unwrap(), (0, 1, 0));
    assert_eq!(s.fake.calls(ONCE_SEND), 1);
    let skipped = s
        .app
        .store
        .notices()
        .unwrap()
        .into_iter()
        .filter(|n| n.state == NoticeState::Skipped)
        .count();
    assert_eq!(skipped, 1);
}

fn notice(openid: &str) -> NewNotice {
    NewNotice {
        openid: openid.into(),
        student_id: "2024001".into(),
        name: "张三".into(),
        terms: vec!["2025-2026-1".into()],
        courses: vec![
            "高等数学A（上）".into(),
            "大学英语读写译".into(),
            "程序设计基础".into(),
            "中国近现代史纲要".into(),
        ],
        import_id: 9,
    }
}

#[test]
fn bizsend_carries_the_configured_keys_and_the_grades_page() {
    let s = server(SUBSCRIBE);
    s.app.store.enqueue_notices(&[notice("oZhang")]).unwrap();
    s.app.notice_wake.notify();
    wait_until("sent", Duration::from_secs(10), || {
        notice_counts(&s.app).unwrap() == (0, 1, 0)
    });
    assert_eq!(s.fake.biz_delivered("oZhang"), 1);
    let p = &s.fake.posts(BIZ_SEND)[0];
    assert_eq!(p["touser"], "oZhang");
    assert_eq!(p["template_id"], "TPL-sub-1");
    assert_eq!(
        p["page"],
        format!(
            "{}/wx/oauth/start?next=%2Fgrades%3Fterm%3D2025-2026-1",
            s.url
        )
        .as_str()
    );
    let thing1 = p["data"]["thing1"]["value"].as_str().unwrap();
    assert!(
        thing1.chars().count() <= 20 && thing1.ends_with("等4门"),
        "{thing1}"
    );
    let time2 = p["data"]["time2"]["value"].as_str().unwrap();
    assert_eq!(time2.len(), "2026-11-30 18:05".len(), "{time2}");
    assert_eq!(p["data"]["thing3"]["value"], "2025-2026学年 第1学期");
    assert_eq!(p["data"]["character_string4"]["value"], "2024001");
    assert!(p.get("url").is_none() && p.get("client_msg_id").is_none());
    // The grades page has no 一次性订阅 link in this channel.
    let mut c = s.signed_in("oZhang");
    assert!(!c.get("/grades").body.contains("/notify/subscribe"));
    assert_eq!(c.get("/notify/subscribe").status, 404);
}

fn assert_failed_once(s: &TestServer, path: &str, code: i64) {
    wait_until(&format!("{code} failed"), Duration::from_secs(10), || {
        s.app
            .store
            .notices()
            .unwrap()
            .iter()
            .any(|n| n.state == NoticeState::Failed && n.errcode == Some(code))
    });
    let n = s
        .app
        .store
        .notices()
        .unwrap()
        .into_iter()
        .find(|n| n.errcode == Some(code))
        .unwrap();
    assert_eq!((n.attempts, n.failures), (1, 0), "{code}: not retried");
    assert!(s.app.store.next_due_notice(i64::MAX).unwrap().is_none());
    assert_eq!(s.fake.calls(path), 1, "{code}: one call");
}

#[test]
fn refused_not_following_and_bad_data_fail_without_retry_on_bizsend() {
    for code in [43101, 43004, 47003] {
        let s = server(SUBSCRIBE);
        s.fake.script(BIZ_SEND, &[code]);
        s.app.store.enqueue_notices(&[notice("oZhang")]).unwrap();
        assert_failed_once(&s, BIZ_SEND, code);
        assert_eq!(notice_counts(&s.app).unwrap(), (0, 0, 1));
        assert_eq!(s.fake.biz_delivered("oZhang"), 0);
    }
}

#[test]
fn refused_not_following_and_bad_data_fail_without_retry_on_the_once_channel() {
    for code in [43101, 43004, 47003] {
        let s = server(ONCE);
        let consent = Consent {
            student_id: "2024001".into(),
            template_id: "TPL-once-1".into(),
            scene: 1,
            at: s.app.clock.now(),
        };
        assert!(s.app.store.record_consent("oZhang", &consent).unwrap());
        s.fake.script(ONCE_SEND, &[code]);
        s.app.store.enqueue_notices(&[notice("oZhang")]).unwrap();
        assert_failed_once(&s, ONCE_SEND, code);
        assert_eq!(notice_counts(&s.app).unwrap(), (0, 0, 1));
        // WeChat spent no consent unless it said the student refused.
        assert_eq!(consent_of(&s, "oZhang").is_some(), code != 43101, "{code}");
    }
}

#[test]
fn the_dashboard_lists_the_verify_files() {
    let s = TestServer::start("", "");
    let dir = s.app.config.verify_dir.clone();
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("MP_verify_AbC123xyz.txt"), b"AbC123xyz").unwrap();
    std::fs::write(dir.join("notes.md"), b"not served").unwrap();
    wxgrades::service::admin::accounts::add(
        &s.app.store,
        "alice",
        "correct horse battery staple",
        s.app.clock.now(),
    )
    .unwrap();
    let mut c = s.client();
    let r = c.get("/admin/login");
    let token = Client::hidden(&r.body, "csrf_token");
    let r = c.post_form(
        "/admin/login",
        &[
            ("username", "alice"),
            ("password", "correct horse battery staple"),
            ("csrf_token", &token),
        ],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let page = c.get("/admin");
    assert_eq!(page.status, 200);
    // minijinja escapes "/" in text and attributes.
    let body = page.body.replace("&#x2f;", "/");
    assert!(body.contains("MP_verify_AbC123xyz.txt"), "{body}");
    assert!(
        body.contains(&format!(
            "{}/MP_verify_AbC123xyz.txt",
            s.app.config.public_url
        )),
        "the URL it is served at"
    );
    assert!(body.contains(">9 B<"), "the size");
    assert!(!body.contains("notes.md"));
    // And it is served there.
    let served = s.client().get("/MP_verify_AbC123xyz.txt");
    assert_eq!((served.status, served.body.as_str()), (200, "AbC123xyz"));
}

// ---------------------------------------------------------------------------------------------
// The demo simulator: its consent page and the phone
// ---------------------------------------------------------------------------------------------

/// An attribute value as the page has it, unescaped.
fn unescape(v: &str) -> String {
    v.replace("&#x2f;", "/")
        .replace("&#x27;", "'")
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The query of a simulator form: its hidden fields plus `extra`.
fn form_query(html: &str, hidden: &[&str], extra: &[(&str, &str)]) -> String {
    let enc = wxgrades::http::form::percent_encode;
    let mut parts: Vec<String> = hidden
        .iter()
        .map(|n| format!("{n}={}", enc(&unescape(&Client::hidden(html, n)))))
        .collect();
    parts.extend(extra.iter().map(|(k, v)| format!("{k}={}", enc(v))));
    parts.join("&")
}

#[test]
fn demo_consent_page_and_the_phone_show_the_once_channel() {
    use wxgrades::wechat::sim::DEMO_USERS;
    let s = TestServer::demo_with_env(&[("WXGRADES_WECHAT_NOTICES", "once")]);
    let user = DEMO_USERS[0].openid;
    s.app
        .store
        .bind(user, wxgrades::demo::HINT_STUDENT_ID, s.app.clock.now())
        .unwrap();
    let mut c = s.client();
    // Sign in on the simulated authorization page as the first demo user.
    let r = c.get("/wx/oauth/start?next=/grades");
    let page = c.follow(&r);
    assert_eq!(page.status, 200, "{}", page.body);
    let q = form_query(
        &page.body,
        &["redirect_uri", "state", "scope"],
        &[("decision", "allow"), ("openid", user)],
    );
    let r = c.get(&format!("/_sim/connect/oauth2/decide?{q}"));
    assert_eq!(r.status, 302, "{}", r.body);
    let r = c.follow(&r);
    assert_eq!(r.status, 302, "callback: {}", r.body);
    let grades = c.follow(&r);
    assert!(grades.body.contains("有新成绩时通知我"), "{}", grades.body);
    // The consent page knows who is asked (the user picked at sign-in).
    let r = c.get("/notify/subscribe");
    assert_eq!(r.status, 302);
    assert!(r
        .location()
        .contains("/_sim/mp/subscribemsg?action=get_confirm"));
    let consent = c.follow(&r);
    assert_eq!(consent.status, 200, "{}", consent.body);
    assert!(consent.body.contains("允许") && consent.body.contains("取消"));
    assert!(consent.body.contains(DEMO_USERS[0].nickname));
    assert!(!consent.body.contains(DEMO_USERS[1].nickname));
    let q = form_query(
        &consent.body,
        &["template_id", "scene", "redirect_url", "reserved"],
        &[("decision", "allow"), ("openid", user)],
    );
    let r = c.get(&format!("/_sim/mp/subscribemsg/decide?{q}"));
    assert_eq!(r.status, 302, "{}", r.body);
    assert!(r.location().contains("action=confirm"), "{}", r.location());
    let r = c.follow(&r);
    assert_eq!((r.status, r.location()), (303, "/grades"), "{}", r.body);
    assert!(c.follow(&r).body.contains("已开启"));
    assert!(s.app.store.consent(user).unwrap().is_some());

    // A notice goes out through the simulated template/subscribe and shows on the phone.
    s.app
        .store
        .enqueue_notices(&[NewNotice {
            openid: user.into(),
            student_id: wxgrades::demo::HINT_STUDENT_ID.into(),
            name: "林小雨".into(),
            terms: vec!["2025-2026-1".into()],
            courses: vec!["高等数学".into(), "线性代数".into()],
            import_id: 1,
        }])
        .unwrap();
    s.app.notice_wake.notify();
    wait_until("sent to the simulator", Duration::from_secs(10), || {
        notice_counts(&s.app).unwrap() == (0, 1, 0)
    });
    let phone = c.get(&format!("/_sim/phone?user={user}"));
    assert!(phone.body.contains("一次性订阅消息"), "{}", phone.body);
    assert!(phone.body.contains("高等数学、线性代数"), "{}", phone.body);
    // The simulator spent the consent: a second notice is refused there (43101) — and ours
    // skips it before asking.
    assert!(!s
        .app
        .sim
        .as_ref()
        .unwrap()
        .account
        .has_consent(user, "demo-once-grades"));
    assert_eq!(s.app.store.consent(user).unwrap(), None);
}

#[test]
fn demo_phone_shows_a_subscribe_notice() {
    use wxgrades::wechat::sim::DEMO_USERS;
    let s = TestServer::demo_with_env(&[("WXGRADES_WECHAT_NOTICES", "subscribe")]);
    let user = DEMO_USERS[1].openid;
    s.app
        .store
        .enqueue_notices(&[NewNotice {
            openid: user.into(),
            student_id: "20220302".into(),
            name: "张伟".into(),
            terms: vec!["2025-2026-1".into()],
            courses: vec!["高等数学".into()],
            import_id: 1,
        }])
        .unwrap();
    s.app.notice_wake.notify();
    wait_until("sent to the simulator", Duration::from_secs(10), || {
        notice_counts(&s.app).unwrap() == (0, 1, 0)
    });
    let phone = s.client().get(&format!("/_sim/phone?user={user}"));
    assert!(phone.body.contains("订阅通知"), "{}", phone.body);
    assert!(
        phone.body.contains("<dt>内容</dt><dd>高等数学</dd>"),
        "{}",
        phone.body
    );
}

#[test]
fn check_compares_the_subscribe_template_with_the_accounts() {
    use wxgrades::service::wxcheck::check_wechat;
    let s = server(SUBSCRIBE);
    let content = "课程:{{thing1.DATA}}\n时间:{{time2.DATA}}\n学期:{{thing3.DATA}}\n学号:{{character_string4.DATA}}\n";
    s.fake.set_subscribe_templates(&[("TPL-sub-1", content)]);
    let report = check_wechat(&s.app.config).expect("all is well");
    assert!(report.contains("订阅通知, template TPL-sub-1"), "{report}");
    assert!(report.contains("has every key"), "{report}");
    // A key the template does not have.
    s.fake
        .set_subscribe_templates(&[("TPL-sub-1", "课程:{{thing1.DATA}}\n时间:{{time2.DATA}}\n")]);
    let e = check_wechat(&s.app.config).unwrap_err();
    assert!(e.contains("wechat.subscribe_template_fields"), "{e}");
    assert!(e.contains("character_string4"), "{e}");
    // A template the account does not have.
    s.fake.set_subscribe_templates(&[("TPL-other", content)]);
    let e = check_wechat(&s.app.config).unwrap_err();
    assert!(
        e.contains("wechat.subscribe_template_id") && e.contains("TPL-other"),
        "{e}"
    );
}
