//! Staged publishing (定时发布) in headless Chromium on the demo data: the student binds;
//! staff upload a grade for them and commit it with a 发布时间 and notify; the student sees
//! nothing of it and no notice is written; staff press 立即发布 on /admin/releases; the
//! student sees the grade and exactly one notice is sent. axe-core checks the release list and
//! the admin student page with its correction form.

mod support;

use std::time::{Duration, Instant};

use serde_json::json;
use support::browser::Browser;
use support::{screenshot_path, TestServer};
use wxgrades::service::admin::accounts;
use wxgrades::service::notices::notice_counts;

const T: Duration = Duration::from_secs(15);
const COURSE: &str = "量子计算导论";

#[test]
fn a_scheduled_grade_stays_hidden_until_published_then_one_notice_goes_out() {
    let Some(b) = Browser::start_or_skip() else {
        return;
    };
    let s = TestServer::demo();
    accounts::add(&s.app.store, "jw", "browser-pass-1", s.app.clock.now()).expect("admin");
    support::demo_sign_in_and_bind(&b, &s.url, false);
    let notices_before = s.app.store.notices().expect("notices").len();

    let file = s.dir.join("staged.csv");
    std::fs::write(
        &file,
        format!(
            "学号,学期,课程代码,课程名称,学分,成绩\n{},2025-2026-1,QC9001,{COURSE},2,93\n",
            wxgrades::demo::HINT_STUDENT_ID
        ),
    )
    .expect("write csv");

    b.goto(&format!("{}/admin/import", s.url));
    b.wait_for_url("/admin/login", T);
    b.find("input[name=username]").send_keys("jw");
    b.find("input[name=password]").send_keys("browser-pass-1");
    b.find("form.form button[type=submit]").click();
    b.wait_for_url("/admin/import", T);
    b.find("input[name=file]")
        .upload(file.display().to_string());
    b.find("form.import-form button[type=submit]").click();
    b.wait_for_text("变动示例", T);
    // An hour from now, as the datetime-local field holds it.
    let at = wxgrades::clock::local_datetime(s.app.clock.now() + 3600).replace(' ', "T");
    b.execute(
        "document.querySelector('input[name=publish_at]').value = arguments[0];",
        vec![json!(at)],
    );
    b.find("input[name=notify]").click();
    b.screenshot(screenshot_path("release-commit.png"));
    b.find("form[action$=commit] button[type=submit]").click();
    b.wait_for_url("/admin/imports", T);
    b.wait_for_page("the import committed as a scheduled release", T, |p| {
        p.contains("staged.csv") && p.contains("定时发布") && !p.contains("正在写入")
    });

    // The student sees nothing of it, and no notice was written.
    b.goto(&format!("{}/grades?term=all", s.url));
    b.wait_for_text("学期绩点", T);
    assert!(!b.page_source().contains(COURSE), "held grade shown");
    assert_eq!(
        s.app.store.notices().expect("notices").len(),
        notices_before
    );

    // Staff publish it early.
    b.goto(&format!("{}/admin/releases", s.url));
    b.wait_for_text("待发布", T);
    assert!(b.page_source().contains("staged.csv"));
    b.screenshot(screenshot_path("releases-scheduled.png"));
    b.assert_accessible("/admin/releases with a scheduled release");
    b.find("form[action$=publish] button[type=submit]").click();
    b.wait_for_page("the release marked 已发布", T, |p| {
        p.contains("已发布") && !p.contains("action=\"/admin/releases/")
    });
    b.screenshot(screenshot_path("releases-published.png"));

    b.goto(&format!("{}/grades?term=all", s.url));
    b.wait_for_text(COURSE, T);
    b.screenshot(screenshot_path("release-student.png"));
    b.goto(&format!(
        "{}/admin/students/{}",
        s.url,
        wxgrades::demo::HINT_STUDENT_ID
    ));
    b.wait_for_text("成绩更正", T);
    b.screenshot_full_page(screenshot_path("admin-student-corrections.png"));
    b.assert_accessible("the admin student page with the correction form");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (pending, sent, _) = notice_counts(&s.app).expect("counts");
        if pending == 0 && sent as usize == notices_before + 1 {
            break;
        }
        assert!(Instant::now() < deadline, "the notice was not sent");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        s.app.store.notices().expect("notices").len(),
        notices_before + 1,
        "exactly one notice"
    );
}
