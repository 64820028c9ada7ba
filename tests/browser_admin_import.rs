//! The admin upload in headless Chromium on the demo data: sign in, upload a GBK CSV with one
//! bad row and read its error, upload the fixed file, commit, see it in the history; then the
//! student sees the new grade on their phone.

mod support;

use std::path::PathBuf;
use std::time::Duration;
use support::browser::Browser;
use support::{screenshot_path, TestServer};
use wxgrades::service::admin::accounts;

fn fixture(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
        .display()
        .to_string()
}

const T: Duration = Duration::from_secs(15);

#[test]
fn admin_uploads_bad_then_fixed_gbk_file_commits_and_the_student_sees_it() {
    let Some(b) = Browser::start_or_skip() else {
        return;
    };
    let s = TestServer::demo();
    accounts::add(&s.app.store, "jw", "browser-pass-1", s.app.clock.now()).expect("admin");

    b.goto(&format!("{}/admin/import", s.url));
    b.wait_for_url("/admin/login", T);
    b.find("input[name=username]").send_keys("jw");
    b.find("input[name=password]").send_keys("browser-pass-1");
    b.find("form.form button[type=submit]").click();
    b.wait_for_url("/admin/import", T);

    // The bad file: one error, with its line and column, and no commit button.
    b.find("input[name=file]")
        .upload(fixture("bad_grades_gbk.csv"));
    b.find("form.import-form button[type=submit]").click();
    b.wait_for_text("第 7 行", T);
    let page = b.page_source();
    assert!(
        page.contains("学分") && page.contains("GBK"),
        "names the column and the encoding"
    );
    assert!(
        b.try_find("form[action$=commit] button").is_none(),
        "no commit with errors"
    );
    b.screenshot(screenshot_path("admin-import-errors.png"));

    // The fixed file: a clean preview with one change for 林小雨, committed.
    b.goto(&format!("{}/admin/import", s.url));
    b.find("input[name=file]")
        .upload(fixture("fixed_grades_gbk.csv"));
    b.find("form.import-form button[type=submit]").click();
    b.wait_for_text("变动示例", T);
    assert!(b.page_source().contains("机器学习"));
    b.screenshot(screenshot_path("admin-import-preview.png"));
    b.find("form[action$=commit] button[type=submit]").click();
    b.wait_for_url("/admin/imports", T);
    // The history refreshes itself while the commit is written; wait for one whole page with
    // nothing running whose row for the file says committed.
    b.wait_for_page("the fixed file's row marked 已提交", T, |p| {
        let row = p.find("fixed_grades_gbk.csv").map(|at| &p[at..]);
        let row = row.map(|r| &r[..r.find("</tr>").unwrap_or(r.len())]);
        !p.contains("正在写入") && row.is_some_and(|r| r.contains("已提交"))
    });
    b.screenshot(screenshot_path("admin-imports.png"));

    // The student signs in on the simulated WeChat, binds, and sees 91 for 机器学习.
    support::demo_sign_in_and_bind(&b, &s.url, false);
    b.goto(&format!("{}/grades?term=2025-2026-1", s.url));
    let g = b.page_source();
    let at = g.find("机器学习").expect("the course is listed");
    assert!(
        g[at..].chars().take(400).collect::<String>().contains("91"),
        "the new grade is shown"
    );
    assert!(g.contains("3.37"), "the term GPA moved from 3.22 to 3.37");
}
