//! The student pages this part added or changed, in headless Chromium at 390×844 in the light
//! and the dark colour scheme: the bind page with its privacy notice, the grades page with the
//! 必修 GPA, rank, notice switch and score components (closed and opened), and 我的数据. axe-core
//! finds no serious or critical violation on any of them, and the selected term chip is fully
//! in view. Screenshots go to `target/screenshots/data-*.png` for a person to look at.

mod support;

use std::time::Duration;

use support::browser::{Browser, ColorScheme};
use support::fake_wechat::Login;
use support::student_data::{import_job, row, seed};
use support::{screenshot_path, TestServer};
use wxgrades::grades::ExamKind;
use wxgrades::service::import::plan::ImportKind;

const T: Duration = Duration::from_secs(15);

const ROSTER: &str = "学号,姓名,身份证后六位,班级,专业\n\
2024001,张三,12345X,计科2401,计算机科学与技术\n\
2024002,李四,654321,计科2401,计算机科学与技术\n";

const GRADES: &str = "学号,学期,课程代码,课程名称,学分,成绩\n\
2024001,2022-2023-1,PE1001,体育,1,88\n\
2024001,2022-2023-2,PH1001,大学物理,3,76\n\
2024001,2023-2024-1,CS1001,程序设计,3,91\n\
2024001,2023-2024-2,CS2001,数据结构,3,84\n\
2024002,2023-2024-1,CS1001,程序设计,3,93\n";

fn server() -> TestServer {
    let s = TestServer::start("[grades]\nrank = \"class\"\n", "");
    import_job(&s, ImportKind::Roster, ROSTER, false);
    seed(
        &s,
        &[
            row(
                "MA1001",
                "高等数学",
                "4",
                "95",
                ExamKind::Normal,
                "必修",
                &[("平时", "92"), ("期中", "90"), ("期末", "97")],
            ),
            row(
                "EN1001",
                "大学英语",
                "3",
                "58",
                ExamKind::Normal,
                "必修",
                &[("平时", "70"), ("期末", "52")],
            ),
            row(
                "EN1001",
                "大学英语",
                "3",
                "86",
                ExamKind::Makeup,
                "必修",
                &[],
            ),
            row(
                "AR1001",
                "艺术鉴赏",
                "2",
                "61",
                ExamKind::Normal,
                "选修",
                &[],
            ),
        ],
    );
    // The last import runs the rank recompute over everything.
    import_job(&s, ImportKind::Grades, GRADES, false);
    s
}

/// Run axe on what `b` shows, save its screenshot, and collect the report.
fn check(b: &Browser, name: &str, findings: &mut Vec<String>) {
    b.screenshot_full_page(screenshot_path(&format!("data-{name}.png")));
    if let Some(report) = b.accessibility_report(name) {
        findings.push(report);
    }
}

/// Whether the selected chip lies fully inside the viewport, with its rectangle for messages.
fn selected_chip_in_view(b: &Browser) -> (bool, String) {
    let v = b.execute(
        r#"const c = document.querySelector('.chip.is-on');
           if (!c) { return [false, 'no selected chip']; }
           const r = c.getBoundingClientRect();
           const ok = r.left >= 0 && r.right <= window.innerWidth && r.width > 0;
           return [ok, `${c.textContent}: ${r.left}..${r.right} of ${window.innerWidth}`];"#,
        vec![],
    );
    (
        v[0].as_bool().unwrap_or(false),
        v[1].as_str().unwrap_or("").to_string(),
    )
}

fn pages(scheme: ColorScheme, findings: &mut Vec<String>) {
    let Some(b) = Browser::start_mobile_or_skip() else {
        return;
    };
    b.set_color_scheme(scheme);
    let mode = scheme.name();
    let s = server();
    s.fake.set_next_login(Login::user("oZhang"));
    b.goto(&format!("{}/wx/oauth/start?next=/bind", s.url));
    b.wait_for_url("/bind", T);
    b.find(".privacy");
    check(&b, &format!("bind-{mode}"), findings);

    b.find("input[name=student_id]").send_keys("2024001");
    b.find("input[name=name]").send_keys("张三");
    b.find("input[name=verify]").send_keys("12345X");
    b.find("form[action='/bind'] button[type=submit]").click();
    b.wait_for_url("/grades", T);
    b.find(".rank");
    let html = b.page_source();
    assert!(html.contains("必修绩点"), "the 必修 GPA is shown");
    check(&b, &format!("grades-{mode}"), findings);
    let (ok, rect) = selected_chip_in_view(&b);
    if !ok {
        findings.push(format!(
            "grades-{mode}: selected chip not fully in view ({rect})"
        ));
    }

    // An older term selected: its chip is in view too, and so is 全部.
    b.goto(&format!("{}/grades?term=2022-2023-1", s.url));
    b.find(".term");
    let (ok, rect) = selected_chip_in_view(&b);
    if !ok {
        findings.push(format!(
            "grades-old-term-{mode}: selected chip not fully in view ({rect})"
        ));
    }
    b.goto(&format!("{}/grades?term=all", s.url));
    b.find(".term");
    let (ok, rect) = selected_chip_in_view(&b);
    if !ok {
        findings.push(format!(
            "grades-all-{mode}: 全部 not fully in view ({rect})"
        ));
    }
    // Score components open on a tap, without script.
    b.find("details.course-parts > summary").click();
    b.find("details.course-parts[open] .parts");
    check(&b, &format!("grades-parts-open-{mode}"), findings);

    // The notice switch: off, and the page says so.
    b.find("form[action='/grades/notices'] button[type=submit]")
        .click();
    b.wait_for_text("已关闭", T);
    check(&b, &format!("grades-notices-off-{mode}"), findings);

    b.goto(&format!("{}/me/data", s.url));
    b.find("form[action='/me/data/delete']");
    check(&b, &format!("my-data-{mode}"), findings);
    // Deleting without ticking the box is stopped by the browser (required), so post it ticked.
    b.find("input[name=confirm]").click();
    b.find("form[action='/me/data/delete'] button[type=submit]")
        .click();
    b.wait_for_text("已删除你的绑定和微信数据", T);
    check(&b, &format!("data-deleted-{mode}"), findings);
}

#[test]
fn student_data_pages_pass_axe_in_light_and_dark_on_a_phone() {
    let mut findings = Vec::new();
    pages(ColorScheme::Light, &mut findings);
    pages(ColorScheme::Dark, &mut findings);
    assert!(
        findings.is_empty(),
        "{} problems:\n\n{}",
        findings.len(),
        findings.join("\n")
    );
}
