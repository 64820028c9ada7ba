//! Grade corrections (成绩更正) over real HTTP from the admin student page: the history with
//! old and new value, reason, who and when; 已更正 on the student's page; the reason
//! required and a bad score named, nothing changed then; the notice only when asked; audited.

mod support;

use support::admin_flow::{add_staff, sign_in};

use std::time::{Duration, Instant};

use support::{Client, Resp, TestServer};
use wxgrades::service::notices::notice_counts;

const ROSTER: &str = "学号,姓名,身份证后六位\n2024001,张三,12345X\n";
const GRADES: &str = "学号,学期,课程代码,课程名称,学分,成绩\n2024001,2025-2026-1,MA1001,高等数学,4,58\n2024001,2025-2026-1,EN1001,大学英语,3,80\n";
const ROW: &str = "2025-2026-1|normal|MA1001";

fn server() -> (TestServer, Client) {
    let s = TestServer::start(
        "",
        "grades_template_id = \"TPL-grades-1\"\nnotice_rate_per_sec = 100",
    );
    add_staff(&s, "alice");
    s.import("roster", ROSTER);
    s.import("grades", GRADES);
    s.app
        .store
        .bind("oZhang", "2024001", s.app.clock.now())
        .expect("bind");
    let c = sign_in(&s, "alice");
    (s, c)
}

fn correct(c: &mut Client, row: &str, score: &str, reason: &str, notify: bool) -> Resp {
    let page = c.get("/admin/students/2024001");
    assert_eq!(page.status, 200, "{}", page.body);
    let t = Client::hidden(&page.body, "csrf_token");
    let mut fields = vec![
        ("csrf_token", t.as_str()),
        ("row", row),
        ("score", score),
        ("reason", reason),
    ];
    if notify {
        fields.push(("notify", "1"));
    }
    c.post_form("/admin/students/2024001/correct", &fields)
}

fn score(s: &TestServer, code: &str) -> String {
    s.app
        .store
        .grades_of("2024001")
        .expect("grades")
        .into_iter()
        .find(|g| g.course_code == code)
        .map(|g| g.score.to_string())
        .unwrap_or_default()
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_correction_is_kept_in_the_history_and_marked_for_the_student() {
    let (s, mut c) = server();
    let mut student = s.signed_in("oZhang");
    let before = student.get("/grades");
    assert!(before.body.contains("58") && !before.body.contains("已更正"));

    let page = c.get("/admin/students/2024001");
    assert!(
        page.body.contains("成绩更正") && page.body.contains(ROW),
        "{}",
        page.body
    );
    let r = correct(&mut c, ROW, "62", "阅卷登分错误，经任课教师核实", false);
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(score(&s, "MA1001"), "62");
    assert_eq!(score(&s, "EN1001"), "80", "other rows untouched");

    let page = c.get("/admin/students/2024001");
    assert!(
        page.body.contains("阅卷登分错误，经任课教师核实"),
        "{}",
        page.body
    );
    assert!(page.body.contains("alice"));
    assert!(
        page.body
            .contains("<td class=\"r num\">58</td><td class=\"r num\">62</td>"),
        "{}",
        page.body
    );
    assert!(page.body.contains("已更正"));

    // The student's page (cached before) shows the new score, marked.
    let after = student.get("/grades");
    assert!(after.body.contains("已更正"), "{}", after.body);
    assert!(after.body.contains(">62<"), "{}", after.body);
    // Not asked to notify: no notice.
    assert!(s.app.store.notices().expect("notices").is_empty());
    let audit = s.app.store.audit_events(0, 10).expect("audit");
    assert!(audit.iter().any(|(_, e)| e.action == "grade_corrected"
        && e.actor == "admin:alice"
        && e.detail.contains("58 → 62")));

    // A later import of the row replaces the corrected score; the mark goes, the history stays.
    s.import(
        "grades",
        "学号,学期,课程代码,课程名称,学分,成绩\n2024001,2025-2026-1,MA1001,高等数学,4,70\n",
    );
    let again = student.get("/grades");
    assert!(
        again.body.contains(">70<") && !again.body.contains("已更正"),
        "{}",
        again.body
    );
    let page = c.get("/admin/students/2024001");
    assert!(page.body.contains("阅卷登分错误，经任课教师核实"));
}

#[test]
fn a_correction_with_notify_sends_one_notice() {
    let (s, mut c) = server();
    let r = correct(&mut c, ROW, "及格", "补登平时成绩", true);
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(score(&s, "MA1001"), "及格");
    wait_until("the notice sent", || {
        notice_counts(&s.app).expect("counts") == (0, 1, 0)
    });
    assert_eq!(s.fake.delivered("oZhang"), 1);
    let page = c.get("/admin/students/2024001");
    assert!(page.body.contains("已通知"), "{}", page.body);
}

#[test]
fn reason_required_and_bad_scores_are_named_and_change_nothing() {
    let (s, mut c) = server();
    let r = correct(&mut c, ROW, "62", "   ", false);
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("请填写更正原因"), "{}", r.body);
    let r = correct(&mut c, ROW, "101", "录入错误", false);
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(
        r.body.contains("新成绩") && r.body.contains("101"),
        "{}",
        r.body
    );
    let r = correct(&mut c, ROW, "abc", "录入错误", false);
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("abc"), "{}", r.body);
    let r = correct(&mut c, ROW, "58", "录入错误", false);
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("与原成绩相同"), "{}", r.body);
    let r = correct(&mut c, "2025-2026-1|normal|NOPE", "60", "录入错误", false);
    assert_eq!(r.status, 400, "{}", r.body);
    let r = correct(&mut c, "garbage", "60", "录入错误", false);
    assert_eq!(r.status, 400, "{}", r.body);
    let long = "很".repeat(201);
    let r = correct(&mut c, ROW, "60", &long, false);
    assert_eq!(r.status, 400, "{}", r.body);
    // Without the CSRF token: 403.
    let r = c.post_form(
        "/admin/students/2024001/correct",
        &[("row", ROW), ("score", "60"), ("reason", "x")],
    );
    assert_eq!(r.status, 403);
    assert_eq!(score(&s, "MA1001"), "58");
    assert!(s
        .app
        .store
        .corrections_of("2024001")
        .expect("corrections")
        .is_empty());
    assert!(s.app.store.notices().expect("notices").is_empty());
}

#[test]
fn a_refused_correction_shows_the_form_again_with_what_was_typed() {
    let (s, mut c) = server();
    let r = correct(&mut c, ROW, "101", "阅卷登分错误，经任课教师核实", true);
    assert_eq!(r.status, 400, "{}", r.body);
    // The student page itself, the reason at the form, nothing typed lost.
    assert!(r.body.contains("id=\"corrections\""), "{}", r.body);
    assert!(
        r.body.contains("role=\"alert\" id=\"correct-error\"") && r.body.contains("101"),
        "{}",
        r.body
    );
    assert!(
        r.body.contains("value=\"阅卷登分错误，经任课教师核实\""),
        "{}",
        r.body
    );
    assert!(r.body.contains("value=\"101\""), "{}", r.body);
    assert!(
        r.body
            .contains(&format!("<option value=\"{ROW}\" selected>")),
        "{}",
        r.body
    );
    assert!(
        r.body.contains("name=\"notify\" value=\"1\" checked"),
        "{}",
        r.body
    );
    // A fresh token on the page: fixing the score and sending again works.
    let t = Client::hidden(&r.body, "csrf_token");
    let r = c.post_form(
        "/admin/students/2024001/correct",
        &[
            ("csrf_token", t.as_str()),
            ("row", ROW),
            ("score", "61"),
            ("reason", "阅卷登分错误，经任课教师核实"),
        ],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(score(&s, "MA1001"), "61");
}
