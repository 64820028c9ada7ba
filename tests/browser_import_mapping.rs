//! A registrar file no layout reads, in headless Chromium on the demo data: upload → 指定列对应
//! (axe-core on the mapping page) → choose each column, name a preset → preview → commit →
//! the same header row uploaded again is recognised as the preset without being asked; the
//! presets page passes axe-core too.

mod support;

use std::time::Duration;
use support::browser::Browser;
use support::{screenshot_path, temp_dir, TestServer};
use wxgrades::service::admin::accounts;

const T: Duration = Duration::from_secs(15);

const UNKNOWN: &str = "XH,XM,XNXQDM,KCH,KCMC,XF,ZCJ,KCXZ\n2099001,测试甲,2025-2026-1,MAP101,映射课程,2,83,必修课\n2099002,测试乙,2025-2026-1,MAP101,映射课程,2,77,必修课\n";

fn upload(b: &Browser, url: &str, file: &std::path::Path) {
    b.goto(&format!("{url}/admin/import"));
    b.find("input[name=file]").upload(file);
    b.find("form.import-form button[type=submit]").click();
}

#[test]
fn unknown_layout_mapped_committed_and_recognised_next_time() {
    let Some(b) = Browser::start_or_skip() else {
        return;
    };
    let s = TestServer::demo();
    accounts::add(&s.app.store, "jw", "browser-pass-1", s.app.clock.now()).expect("admin");
    let dir = temp_dir("browser-map");
    let file = dir.join("教务导出.csv");
    std::fs::write(&file, UNKNOWN).expect("write file");

    b.goto(&format!("{}/admin/import", s.url));
    b.wait_for_url("/admin/login", T);
    b.find("input[name=username]").send_keys("jw");
    b.find("input[name=password]").send_keys("browser-pass-1");
    b.find("form.form button[type=submit]").click();
    b.wait_for_url("/admin/import", T);

    upload(&b, &s.url, &file);
    b.wait_for_text("没有识别出这个文件的列", T);
    b.find("a[href$='/map']").click();
    b.wait_for_url("/map", T);
    b.wait_for_text("每一项在哪一列", T);
    b.assert_accessible("the column-mapping page");
    b.screenshot(screenshot_path("admin-import-map.png"));

    for (field, header) in [
        ("student_id", "XH"),
        ("name", "XM"),
        ("term", "XNXQDM"),
        ("course_code", "KCH"),
        ("course_name", "KCMC"),
        ("credit", "XF"),
        ("score", "ZCJ"),
        ("nature", "KCXZ"),
    ] {
        // Choose the option as a user would: by its visible text ("C 列：XNXQDM").
        b.find(&format!("#f_{field} option[value='{header}']"))
            .click();
    }
    b.find("#preset_name").send_keys("浏览器预设");
    b.find("form[method=post][action$='/map'] button[type=submit]")
        .click();
    b.wait_for_text("预设 浏览器预设", T);
    let page = b.page_source();
    assert!(page.contains("课程性质 ← KCXZ"), "the mapping is shown");
    b.find("form[action$=commit] button[type=submit]").click();
    b.wait_for_url("/admin/imports", T);
    b.wait_for_page("the file's row marked 已提交", T, |p| {
        let row = p.find("教务导出.csv").map(|at| &p[at..]);
        let row = row.map(|r| &r[..r.find("</tr>").unwrap_or(r.len())]);
        !p.contains("正在写入") && row.is_some_and(|r| r.contains("已提交"))
    });
    let stored = s.app.store.grades_of("2099001").expect("grades");
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].course.nature.as_deref(), Some("必修课"));

    // The same layout again: recognised as the preset, no mapping asked for.
    let again = dir.join("教务导出-第二次.csv");
    std::fs::write(&again, UNKNOWN.replace(",83,", ",85,")).expect("write file");
    upload(&b, &s.url, &again);
    b.wait_for_text("识别为", T);
    let page = b.page_source();
    assert!(page.contains("预设 浏览器预设"), "recognised as the preset");
    assert!(!page.contains("没有识别出这个文件的列"));
    assert!(b.try_find("form[action$=commit] button").is_some());

    b.goto(&format!("{}/admin/presets", s.url));
    b.wait_for_text("浏览器预设", T);
    b.assert_accessible("the presets page");
    b.screenshot(screenshot_path("admin-presets.png"));
}
