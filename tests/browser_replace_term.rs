//! The replace-term confirmation in headless Chromium on the demo data, at 1440×900: a one-row
//! file with 替换学期 shows the rows it would delete as a danger; the button says what it does;
//! the browser will not submit without the confirmation box, and the server refuses a form
//! without it too; ticked, the commit lands on its summary and the term holds one row. axe-core
//! finds no serious or critical violation on the danger preview, the refusal and the summary.

mod support;

use std::time::Duration;

use support::browser::Browser;
use support::{screenshot_path, TestServer};
use wxgrades::service::admin::accounts;

const T: Duration = Duration::from_secs(15);

fn rows_in_term(s: &TestServer, term: &str) -> usize {
    let mut n = 0;
    s.app
        .store
        .for_each_grade(|k, _| {
            if k.split('\u{1f}').nth(1) == Some(term) {
                n += 1;
            }
            Ok(())
        })
        .expect("grades");
    n
}

#[test]
fn a_replace_term_that_deletes_rows_needs_its_confirmation() {
    let Some(b) = Browser::start_or_skip() else {
        return;
    };
    b.set_viewport(1440, 900);
    let s = TestServer::demo();
    accounts::add(&s.app.store, "jw", "browser-pass-1", s.app.clock.now()).expect("admin");

    // One row of the demo student's newest term, with another score.
    let sid = wxgrades::demo::HINT_STUDENT_ID;
    let mut rows = s.app.store.grades_of(sid).expect("grades");
    rows.sort_by_key(|g| std::cmp::Reverse(g.term));
    let g = rows.first().expect("the demo student has grades").clone();
    let term = g.term.as_str().to_string();
    let before = rows_in_term(&s, &term);
    assert!(before > 1, "the demo term has rows to delete");
    let file = s.dir.join("one-row.csv");
    std::fs::write(
        &file,
        format!(
            "学号,学期,课程代码,课程名称,学分,成绩\n{sid},{term},{},{},{},{}\n",
            g.course_code,
            g.course_name,
            g.credit,
            if g.score.to_string() == "77" {
                "78"
            } else {
                "77"
            }
        ),
    )
    .expect("write the file");

    b.goto(&format!("{}/admin/import", s.url));
    b.wait_for_url("/admin/login", T);
    b.find("input[name=username]").send_keys("jw");
    b.find("input[name=password]").send_keys("browser-pass-1");
    b.find("form.form button[type=submit]").click();
    b.wait_for_url("/admin/import", T);

    b.find("input[name=file]").upload(&file);
    b.find("input[name=replace_term]").send_keys(&term);
    b.find("form.import-form button[type=submit]").click();
    b.wait_for_text("我已核对将被删除的成绩", T);
    let job_url = b.current_url();
    let removed = before - 1;
    let grouped = wxgrades::views::thousands(&removed.to_string());
    let danger = b.find("section.danger");
    assert!(danger.is_displayed());
    let text = danger.text();
    assert!(
        text.contains(&format!("警告：提交将删除 {grouped} 条 {term} 学期的成绩")),
        "{text}"
    );
    let listed = b.find_all("section.danger tbody tr").len();
    assert_eq!(listed, removed.min(200), "the deleted rows are listed");
    let button = b.find("form[action$=commit] button[type=submit]");
    assert_eq!(button.text(), format!("删除 {grouped} 条并写入 1 条"));
    b.screenshot_full_page(screenshot_path("replace-term-preview.png"));
    b.assert_accessible("the replace-term preview");

    // Unticked: the browser keeps the form (the box is required) …
    button.click();
    let missing = b.execute(
        "return document.querySelector('input[name=confirm_removals]').validity.valueMissing;",
        vec![],
    );
    assert_eq!(missing, serde_json::json!(true));
    assert_eq!(b.current_url(), job_url, "not submitted");
    // … and a form sent without it anyway is refused by the server.
    b.execute(
        "document.querySelector('input[name=confirm_removals]').removeAttribute('required');",
        vec![],
    );
    b.find("form[action$=commit] button[type=submit]").click();
    b.wait_for_text("未提交：这次提交会删除", T);
    assert_eq!(rows_in_term(&s, &term), before, "nothing deleted");
    b.screenshot_full_page(screenshot_path("replace-term-refused.png"));
    b.assert_accessible("the refused replace-term commit");

    // Ticked: committed, and the history says what was done.
    b.find("input[name=confirm_removals]").click();
    b.find("form[action$=commit] button[type=submit]").click();
    b.wait_for_url("/admin/imports", T);
    let want = format!(
        "已提交 {} 条",
        wxgrades::views::thousands(&before.to_string())
    );
    b.wait_for_page("the commit's summary", T, |p| {
        !p.contains("正在写入") && p.contains(&want)
    });
    assert!(b.page_source().contains(&format!("删除 {grouped}")));
    b.screenshot_full_page(screenshot_path("replace-term-committed.png"));
    b.assert_accessible("the history with the commit's summary");
    assert_eq!(rows_in_term(&s, &term), 1);
}
