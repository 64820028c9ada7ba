//! Staged publishing (定时发布) over real HTTP: a grades commit with a 发布时间 shows
//! nothing of itself (grades page, 成绩 reply, notices) until it is published — early by
//! staff, when due by the background check, or after a restart — and a withdrawn one never
//! shows. Refusals: a past or malformed time, a POST without CSRF, a second publish.

mod support;

use support::admin_flow::{add_staff, multipart, sign_in, wait_while_busy};

use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::{Client, Resp, TestServer};
use wxgrades::service::import::plan::{commit_to, plan, ImportKind, Upload};
use wxgrades::service::notices::notice_counts;
use wxgrades::service::releases::{Destination, ReleaseState};
use wxgrades::wechat::{crypto, message};

const NOTICES: &str = "grades_template_id = \"TPL-grades-1\"\nnotice_rate_per_sec = 100";
const ROSTER: &str = "学号,姓名,身份证后六位\n2024001,张三,12345X\n2024002,李四,654321\n";
const BASE: &str =
    "学号,学期,课程代码,课程名称,学分,成绩\n2024001,2025-2026-1,MA1001,高等数学,4,88\n";
/// The staged file: a new course for 2024001 (bound) and for 2024002 (not bound).
const STAGED: &str = "学号,学期,课程代码,课程名称,学分,成绩\n2024001,2025-2026-1,MA2001,线性代数,3,91\n2024002,2025-2026-1,MA2001,线性代数,3,70\n";

/// A server with notices configured, the roster and a first grade imported, 2024001 bound
/// as oZhang, and an admin signed in.
fn server() -> (TestServer, Client) {
    let s = TestServer::start("", NOTICES);
    add_staff(&s, "alice");
    s.import("roster", ROSTER);
    s.import("grades", BASE);
    s.app
        .store
        .bind("oZhang", "2024001", s.app.clock.now())
        .expect("bind");
    let c = admin(&s);
    (s, c)
}

fn admin(s: &TestServer) -> Client {
    sign_in(s, "alice")
}

fn token(c: &mut Client, path: &str) -> String {
    let r = c.get(path);
    assert_eq!(r.status, 200, "{}", r.body);
    Client::hidden(&r.body, "csrf_token")
}

/// Upload `csv` as grades and return the job page path once the preview is ready.
fn preview(c: &mut Client, csv: &str) -> String {
    let t = token(c, "/admin/import");
    let (ct, body) = multipart(
        &[("csrf_token", &t), ("kind", "grades"), ("replace_term", "")],
        Some(("staged.csv", csv.as_bytes())),
    );
    let r = c.post_raw("/admin/import", &ct, body);
    assert_eq!(r.status, 303, "{}", r.body);
    let job = r.location().to_string();
    let r = wait_while_busy(c, &job);
    assert!(r.body.contains("name=\"publish_at\""), "{}", r.body);
    job
}

/// Commit the previewed `job` with notify and `publish_at`; returns the commit's answer.
fn commit(c: &mut Client, job: &str, publish_at: &str) -> Resp {
    let t = token(c, job);
    c.post_form(
        &format!("{job}/commit"),
        &[
            ("csrf_token", &t),
            ("notify", "1"),
            ("publish_at", publish_at),
        ],
    )
}

/// Schedule the staged file for `publish_at` and return the release id.
fn schedule(s: &TestServer, c: &mut Client, publish_at: &str) -> u64 {
    let job = preview(c, STAGED);
    let r = commit(c, &job, publish_at);
    assert_eq!(r.status, 303, "{}", r.body);
    let r = wait_while_busy(c, &job);
    assert!(
        r.body.contains("将于") && r.body.contains("发布"),
        "{}",
        r.body
    );
    let releases = s.app.store.releases(10).expect("releases");
    assert_eq!(releases.len(), 1);
    assert_eq!(releases[0].state, ReleaseState::Scheduled);
    releases[0].id
}

fn in_an_hour(s: &TestServer) -> String {
    wxgrades::clock::local_datetime(s.app.clock.now() + 3600)
}

fn has_course(s: &TestServer, sid: &str, code: &str) -> bool {
    s.app
        .store
        .grades_of(sid)
        .expect("grades")
        .iter()
        .any(|g| g.course_code == code)
}

/// The 成绩 text reply for oZhang.
fn grades_reply(s: &TestServer, msg_id: &str) -> String {
    let ts = s.app.clock.now().to_string();
    let nonce = format!("n{msg_id}");
    let path = format!(
        "/wx?signature={}&timestamp={ts}&nonce={nonce}",
        crypto::signature("testtoken", &ts, &nonce)
    );
    let body = message::text_message("gh_0123456789ab", "oZhang", 1_760_000_000, "成绩", msg_id);
    let r = s
        .client()
        .post_raw(&path, "text/xml", body.as_bytes().to_vec());
    assert_eq!(r.status, 200, "{}", r.body);
    message::parse_reply(&r.body).expect("reply").content
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// What a student sees and is sent while a release is held: nothing of it.
fn assert_nothing_visible(s: &TestServer, student: &mut Client, msg_id: &str) {
    let page = student.get("/grades?term=all");
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("高等数学"), "{}", page.body);
    assert!(!page.body.contains("线性代数"), "held course shown");
    let reply = grades_reply(s, msg_id);
    assert!(
        reply.contains("高等数学") && !reply.contains("线性代数"),
        "{reply}"
    );
    assert!(!has_course(s, "2024001", "MA2001"));
    assert!(!has_course(s, "2024002", "MA2001"));
    assert!(s.app.store.notices().expect("notices").is_empty());
    assert_eq!(s.fake.delivered_total(), 0);
}

#[test]
fn a_scheduled_release_shows_nothing_until_published_early_then_notifies_once() {
    let (s, mut c) = server();
    let mut student = s.signed_in("oZhang");
    let id = schedule(&s, &mut c, &in_an_hour(&s));
    assert_eq!(s.app.store.held_row_count(id).expect("held"), 2);
    assert_nothing_visible(&s, &mut student, "7001");

    let list = c.get("/admin/releases");
    assert_eq!(list.status, 200, "{}", list.body);
    assert!(list.body.contains("待发布") && list.body.contains(&format!("#{id}")));
    assert!(list.body.contains("立即发布") && list.body.contains("撤回"));

    // Without the CSRF token: refused, still held.
    let r = c.post_form(&format!("/admin/releases/{id}/publish"), &[]);
    assert_eq!(r.status, 403);
    assert!(!has_course(&s, "2024001", "MA2001"));

    let t = token(&mut c, "/admin/releases");
    let r = c.post_form(
        &format!("/admin/releases/{id}/publish"),
        &[("csrf_token", &t)],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(has_course(&s, "2024001", "MA2001") && has_course(&s, "2024002", "MA2001"));
    assert_eq!(s.app.store.held_row_count(id).expect("held"), 0);
    let page = student.get("/grades?term=all");
    assert!(page.body.contains("线性代数"), "{}", page.body);
    assert!(grades_reply(&s, "7002").contains("线性代数 91"));
    // Exactly one notice: the bound student; 2024002 is not bound.
    wait_until("the notice sent", || {
        notice_counts(&s.app).expect("counts") == (0, 1, 0)
    });
    assert_eq!(s.fake.delivered("oZhang"), 1);
    assert_eq!(s.fake.delivered_total(), 1);
    let r = s.app.store.release(id).expect("read").expect("release");
    assert_eq!(
        (r.state, r.published_rows, r.notices),
        (ReleaseState::Published, 2, 1)
    );
    assert_eq!(
        s.app.store.grades_of("2024002").expect("grades")[0]
            .score
            .to_string(),
        "70",
        "the release's value"
    );
    assert_eq!(r.done_by.as_deref(), Some("admin:alice"));
    let audit = s.app.store.audit_events(0, 10).expect("audit");
    assert!(audit
        .iter()
        .any(|(_, e)| e.action == "release_published" && e.actor == "admin:alice"));

    // A second publish: 409, nothing sent again.
    let t = token(&mut c, "/admin/releases");
    let r = c.post_form(
        &format!("/admin/releases/{id}/publish"),
        &[("csrf_token", &t)],
    );
    assert_eq!(r.status, 409, "{}", r.body);
    let list = c.get("/admin/releases");
    assert!(list.body.contains("已发布"), "{}", list.body);
    assert_eq!(s.app.store.notices().expect("notices").len(), 1);
}

#[test]
fn a_withdrawn_release_never_shows_and_sends_nothing() {
    let (s, mut c) = server();
    let mut student = s.signed_in("oZhang");
    let id = schedule(&s, &mut c, &in_an_hour(&s));
    let t = token(&mut c, "/admin/releases");
    let r = c.post_form(
        &format!("/admin/releases/{id}/withdraw"),
        &[("csrf_token", &t)],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(s.app.store.held_row_count(id).expect("held"), 0);
    let r = s.app.store.release(id).expect("read").expect("release");
    assert_eq!(r.state, ReleaseState::Withdrawn);
    // Even when its time comes, nothing is published.
    s.app.clock.advance(7200);
    assert_eq!(
        wxgrades::service::releases::publish_due(&s.app, &s.app.notice_wake),
        0
    );
    assert_nothing_visible(&s, &mut student, "7101");
    let t = token(&mut c, "/admin/releases");
    let r = c.post_form(
        &format!("/admin/releases/{id}/publish"),
        &[("csrf_token", &t)],
    );
    assert_eq!(r.status, 409, "{}", r.body);
    let list = c.get("/admin/releases");
    assert!(list.body.contains("已撤回"), "{}", list.body);
    let audit = s.app.store.audit_events(0, 10).expect("audit");
    assert!(audit.iter().any(|(_, e)| e.action == "release_withdrawn"));
}

#[test]
fn a_due_release_is_published_by_the_background_check() {
    let (s, mut c) = server();
    let mut student = s.signed_in("oZhang");
    let id = schedule(&s, &mut c, &in_an_hour(&s));
    assert_nothing_visible(&s, &mut student, "7201");
    // An hour later (the clock moved, not waited for), the publisher thread publishes it.
    s.app.clock.advance(3601);
    wait_until("the release published", || {
        has_course(&s, "2024001", "MA2001")
    });
    wait_until("the notice sent", || s.fake.delivered("oZhang") == 1);
    let r = s.app.store.release(id).expect("read").expect("release");
    assert_eq!(r.state, ReleaseState::Published);
    assert_eq!(r.done_by.as_deref(), Some("schedule"));
    let page = student.get("/grades?term=all");
    assert!(page.body.contains("线性代数"), "{}", page.body);
    assert_eq!(s.fake.delivered_total(), 1);
}

#[test]
fn a_release_due_while_the_server_was_down_is_published_after_a_restart() {
    let (s, mut c) = server();
    let id = schedule(&s, &mut c, &in_an_hour(&s));
    let cfg = s.app.config.clone();
    let mut s = s;
    if let Some(r) = s.running.take() {
        r.shutdown();
    }
    if let Some(b) = s.background.take() {
        b.stop_and_join();
    }
    let fake = std::mem::replace(
        &mut s.fake,
        support::FakeWeChat::start(support::APP_ID, support::APP_SECRET),
    );
    let dir = s.dir.clone();
    drop(c);
    drop(s);
    // The new process starts two hours later: the release is overdue.
    let app = Arc::new(wxgrades::app::App::new(cfg).expect("reopen"));
    app.clock.advance(7200);
    assert!(!app
        .store
        .grades_of("2024001")
        .expect("grades")
        .iter()
        .any(|g| g.course_code == "MA2001"));
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let running = wxgrades::app::site::serve(app.clone(), listener).expect("serve");
    let background = wxgrades::app::App::start_background(&app, false);
    let s = TestServer {
        url: format!("http://{}", running.addr),
        running: Some(running),
        background: Some(background),
        app,
        fake,
        dir,
    };
    wait_until("the overdue release published", || {
        has_course(&s, "2024001", "MA2001")
    });
    let r = s.app.store.release(id).expect("read").expect("release");
    assert_eq!((r.state, r.notices), (ReleaseState::Published, 1));
    wait_until("the notice sent", || s.fake.delivered("oZhang") == 1);
}

#[test]
fn a_past_or_malformed_publish_time_is_refused_and_nothing_is_written() {
    let (s, mut c) = server();
    let job = preview(&mut c, STAGED);
    let past = wxgrades::clock::local_datetime(s.app.clock.now() - 120);
    let r = commit(&mut c, &job, &past);
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("已经过去"), "{}", r.body);
    let r = commit(&mut c, &job, "明天早上");
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(
        r.body.contains("发布时间") && r.body.contains("格式"),
        "{}",
        r.body
    );
    assert!(s.app.store.releases(10).expect("releases").is_empty());
    assert!(!has_course(&s, "2024001", "MA2001"));
    // The same preview still commits, now (no 发布时间): live at once.
    let r = commit(&mut c, &job, "");
    assert_eq!(r.status, 303, "{}", r.body);
    wait_while_busy(&mut c, &job);
    assert!(has_course(&s, "2024001", "MA2001"));
    assert!(s.app.store.releases(10).expect("releases").is_empty());
}

#[test]
fn the_store_publishes_only_scheduled_releases_and_restores_removals() {
    // A held `--replace-term` removal takes effect only when published.
    let s = TestServer::start("", "");
    s.import("roster", ROSTER);
    s.import("grades", BASE);
    let up = Upload {
        kind: ImportKind::Grades,
        file_name: "replace.csv",
        bytes: STAGED.as_bytes(),
        replace_term: Some(wxgrades::grades::Term::parse("2025-2026-1").expect("term")),
    };
    let p = plan(&s.app.store, &s.app.verify_key, &up).expect("plan");
    assert_eq!(p.removed, 1);
    let now = s.app.clock.now();
    let held = Destination::Held {
        publish_at: now + 60,
    };
    let done = commit_to(
        &s.app.store,
        &s.app.verify_key,
        &p,
        &up,
        "test",
        now,
        false,
        held,
        |_, _, _| Ok(0),
    )
    .expect("commit");
    assert_eq!(done.record.publish_at, Some(now + 60));
    assert!(has_course(&s, "2024001", "MA1001"), "removal held");
    let r =
        wxgrades::service::releases::publish(&s.app, &s.app.notice_wake, done.record.id, "test")
            .expect("publish");
    assert_eq!(r.published_rows, 3);
    assert!(!has_course(&s, "2024001", "MA1001"), "removal published");
    assert!(has_course(&s, "2024001", "MA2001"));
    // A roster cannot be held.
    let roster = Upload {
        kind: ImportKind::Roster,
        file_name: "r.csv",
        bytes: ROSTER.as_bytes(),
        replace_term: None,
    };
    let p = plan(&s.app.store, &s.app.verify_key, &roster).expect("plan");
    let e = commit_to(
        &s.app.store,
        &s.app.verify_key,
        &p,
        &roster,
        "test",
        now,
        false,
        held,
        |_, _, _| Ok(0),
    );
    assert!(e.is_err());
    assert!(wxgrades::service::releases::publish(&s.app, &s.app.notice_wake, 999, "test").is_err());
    // The last possible id is no overflow.
    assert_eq!(s.app.store.held_row_count(u64::MAX).expect("count"), 0);
    assert!(wxgrades::service::releases::withdraw(&s.app, u64::MAX, "test").is_err());
}

#[test]
fn a_refused_publish_time_shows_the_preview_again_with_its_commit_form() {
    let (s, mut c) = server();
    let job = preview(&mut c, STAGED);
    let r = commit(&mut c, &job, "明天早上");
    assert_eq!(r.status, 400, "{}", r.body);
    // The preview page, the reason in its alert, and the commit form still there.
    assert!(r.body.contains("role=\"alert\""), "{}", r.body);
    assert!(
        r.body.contains("明天早上") && r.body.contains("格式"),
        "{}",
        r.body
    );
    assert!(r.body.contains("name=\"publish_at\""), "{}", r.body);
    assert!(r.body.contains(&format!("{job}/commit")), "{}", r.body);
    assert!(s.app.store.releases(10).expect("releases").is_empty());
}
