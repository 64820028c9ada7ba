//! Accessibility and layout of every page in headless Chromium, on the demo data: axe-core
//! (WCAG 2.0/2.1/2.2 A and AA) finds no serious or critical violation on the student pages at
//! 390×844 in the light and the dark colour scheme, nor on the admin pages at 1440×900; the
//! narrowest phones (320 px) keep the term title whole and the chart labels readable; the
//! import form's check box and radios sit beside their labels. Screenshots of every page go to
//! `target/screenshots/a11y-*.png` for a person to look at.

mod support;

use std::path::PathBuf;
use std::time::Duration;

use support::browser::{Browser, ColorScheme};
use support::{screenshot_path, TestServer};
use wxgrades::service::admin::accounts;

const T: Duration = Duration::from_secs(15);

/// Collects every page's report, so one run lists all that is wrong.
#[derive(Default)]
struct Findings(Vec<String>);

impl Findings {
    /// Runs axe-core on the page `b` shows and saves its screenshot as `a11y-{name}.png`.
    fn check(&mut self, b: &Browser, name: &str) {
        b.screenshot_full_page(screenshot_path(&format!("a11y-{name}.png")));
        if let Some(report) = b.accessibility_report(name) {
            self.0.push(report);
        }
    }

    fn note(&mut self, problem: String) {
        self.0.push(problem);
    }

    fn assert_none(self, checked: &str) {
        assert!(
            self.0.is_empty(),
            "{checked}: {} pages have problems:\n\n{}",
            self.0.len(),
            self.0.join("\n")
        );
    }
}

fn fixture(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
        .display()
        .to_string()
}

/// Every student-side page, in one colour scheme, on a 390×844 phone.
fn student_pages(scheme: ColorScheme, findings: &mut Findings) {
    let Some(b) = Browser::start_mobile_or_skip() else {
        return;
    };
    b.set_color_scheme(scheme);
    let s = TestServer::demo();
    let mode = scheme.name();
    let matches = b.execute(
        &format!("return window.matchMedia('(prefers-color-scheme: {mode})').matches;"),
        vec![],
    );
    assert_eq!(matches, serde_json::json!(true), "{mode} scheme emulated");

    // The simulator's consent sheet (the first page a student meets in demo mode).
    b.goto(&format!("{}/", s.url));
    b.wait_for_url("/_sim/connect/oauth2/authorize", T);
    findings.check(&b, &format!("consent-{mode}"));
    b.find("button[name=decision]").click();
    b.wait_for_url("/bind", T);
    findings.check(&b, &format!("bind-{mode}"));

    // A wrong verification code: the bind page with its error notice.
    b.find("input[name=student_id]")
        .send_keys(wxgrades::demo::HINT_STUDENT_ID);
    b.find("input[name=name]")
        .send_keys(wxgrades::demo::HINT_NAME);
    b.find("input[name=verify]").send_keys("000000");
    b.find("form button[type=submit]").click();
    b.find(".notice-error");
    findings.check(&b, &format!("bind-error-{mode}"));

    b.find("input[name=student_id]").clear();
    b.find("input[name=student_id]")
        .send_keys(wxgrades::demo::HINT_STUDENT_ID);
    b.find("input[name=name]").clear();
    b.find("input[name=name]")
        .send_keys(wxgrades::demo::HINT_NAME);
    b.find("input[name=verify]")
        .send_keys(wxgrades::demo::HINT_VERIFY);
    b.find("form button[type=submit]").click();
    b.wait_for_url("/grades", T);
    findings.check(&b, &format!("grades-newest-{mode}"));
    // Every term: many courses over many terms, two failed, one deferred (缓考), retakes.
    b.goto(&format!("{}/grades?term=all", s.url));
    b.find(".term");
    let page = b.page_source();
    assert!(
        page.contains("is-failed"),
        "the demo student has a failed course"
    );
    assert!(
        page.contains("is-status"),
        "the demo student has a status grade"
    );
    findings.check(&b, &format!("grades-{mode}"));
    b.goto(&format!("{}/grades?term=2022-2023-2", s.url));
    b.find(".term");
    findings.check(&b, &format!("grades-term-{mode}"));

    b.goto(&format!("{}/me", s.url));
    b.find("h1");
    findings.check(&b, &format!("me-{mode}"));
    b.goto(&format!("{}/unbind", s.url));
    b.find("form[action='/unbind']");
    findings.check(&b, &format!("unbind-{mode}"));

    b.goto(&format!("{}/no-such-page", s.url));
    b.find(".msg-title");
    findings.check(&b, &format!("error-404-{mode}"));
    b.goto(&format!(
        "{}/wx/oauth/callback?code=stale-code&state=not-a-state",
        s.url
    ));
    b.find(".msg-title");
    let code = b.find(".msg-code").text();
    assert!(code.contains("40"), "an OAuth error is a 4xx page: {code}");
    findings.check(&b, &format!("error-oauth-{mode}"));

    // The simulated phone, with a reply and a notice in the chat.
    b.goto(&format!("{}/_sim/phone", s.url));
    b.find("input[name=text]").send_keys("成绩");
    b.find("form.composer button[type=submit]").click();
    b.find(".bubble-row:not(.is-mine)");
    findings.check(&b, &format!("phone-{mode}"));

    // Signing out: a message page, not an error.
    b.goto(&format!("{}/logout", s.url));
    b.find(".msg-title");
    if b.page_source().contains("错误代码") {
        findings.note(format!(
            "logout-{mode}: the sign-out page shows an error code"
        ));
    }
    findings.check(&b, &format!("logout-{mode}"));
}

#[test]
fn student_pages_pass_axe_in_light_and_dark_on_a_phone() {
    let mut findings = Findings::default();
    student_pages(ColorScheme::Light, &mut findings);
    student_pages(ColorScheme::Dark, &mut findings);
    findings.assert_none("student pages at 390×844");
}

/// For each term title: its text, and on how many lines its last word ("第2学期") is laid out.
fn term_title_tails(b: &Browser) -> Vec<(String, i64)> {
    let v = b.execute(
        r#"return [...document.querySelectorAll('.term-title h2')].map((h) => {
             const n = h.firstChild;
             const at = n.data.lastIndexOf(' ') + 1;
             const r = document.createRange();
             r.setStart(n, at);
             r.setEnd(n, n.data.length);
             return [n.data, new Set([...r.getClientRects()].map((q) => Math.round(q.top))).size];
           });"#,
        vec![],
    );
    v.as_array()
        .map(|a| {
            a.iter()
                .map(|t| {
                    (
                        t[0].as_str().unwrap_or("").to_owned(),
                        t[1].as_i64().unwrap_or(-1),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_320px_phone_keeps_term_titles_whole_and_chart_labels_readable() {
    let Some(b) = Browser::start_small_phone_or_skip() else {
        return;
    };
    let s = TestServer::demo();
    support::demo_sign_in_and_bind(&b, &s.url, false);
    b.goto(&format!("{}/grades", s.url));
    let width = b.execute("return window.innerWidth;", vec![]);
    assert_eq!(width, serde_json::json!(320), "a 320 px wide viewport");
    b.screenshot_full_page(screenshot_path("a11y-grades-320.png"));

    let titles = term_title_tails(&b);
    assert!(!titles.is_empty(), "term titles shown");
    for (title, lines) in titles {
        assert_eq!(
            lines, 1,
            "{title:?}: its last word laid out on {lines} lines"
        );
    }

    let sizes = b.execute(
        r#"return [...document.querySelectorAll('.chart text')]
             .filter((t) => getComputedStyle(t).display !== 'none')
             .map((t) => [t.textContent, t.getBoundingClientRect().height]);"#,
        vec![],
    );
    let sizes = sizes.as_array().cloned().unwrap_or_default();
    assert!(!sizes.is_empty(), "the chart has labels");
    for label in &sizes {
        let height = label[1].as_f64().unwrap_or(0.0);
        // A glyph box about 1.2 em tall: 13 px or more is text of about 11 px.
        assert!(
            height >= 12.5,
            "chart label {} is only {height:.1} px tall at 320 px",
            label[0]
        );
    }
    let overlaps = b.execute(
        r#"const r = [...document.querySelectorAll('.chart text.xl')]
             .filter((t) => getComputedStyle(t).display !== 'none')
             .map((t) => t.getBoundingClientRect());
           let n = 0;
           for (let i = 1; i < r.length; i++) if (r[i].left < r[i - 1].right + 4) n++;
           return n;"#,
        vec![],
    );
    assert_eq!(
        overlaps,
        serde_json::json!(0),
        "term labels keep 4 px or more apart"
    );
}

/// Every admin page at 1440×900.
#[test]
fn admin_pages_pass_axe_on_a_desktop() {
    let Some(b) = Browser::start_or_skip() else {
        return;
    };
    b.set_viewport(1440, 900);
    let s = TestServer::demo();
    let pw = "browser-pass-1";
    accounts::add(&s.app.store, "jw", pw, s.app.clock.now()).expect("admin");
    let sid = wxgrades::demo::HINT_STUDENT_ID;
    s.app.store.bind("oDemoA11y", sid, 1).expect("bind");
    let mut findings = Findings::default();

    b.goto(&format!("{}/admin", s.url));
    b.wait_for_url("/admin/login", T);
    findings.check(&b, "admin-login");
    b.find("input[name=username]").send_keys("jw");
    b.find("input[name=password]").send_keys("wrong-password");
    b.find("form.form button[type=submit]").click();
    b.wait_for_text("用户名或密码错误", T);
    findings.check(&b, "admin-login-error");
    b.find("input[name=password]").send_keys(pw);
    b.find("form.form button[type=submit]").click();
    b.wait_for_url(|u: &str| u.ends_with("/admin"), T);
    findings.check(&b, "admin-dashboard");
    // Large counts are grouped by thousands (the demo has 14,877 grade rows).
    let tiles = b.execute(
        "return [...document.querySelectorAll('.tile-value')].map((t) => t.textContent.trim());",
        vec![],
    );
    let tiles: Vec<&str> = tiles
        .as_array()
        .map(|a| a.iter().filter_map(|t| t.as_str()).collect())
        .unwrap_or_default();
    assert!(tiles.contains(&"14,877"), "grouped counts: {tiles:?}");
    for t in &tiles {
        let ungrouped = t
            .as_bytes()
            .windows(4)
            .any(|w| w.iter().all(u8::is_ascii_digit));
        assert!(!ungrouped, "{t:?} has no thousands separator");
    }

    b.goto(&format!("{}/admin/import", s.url));
    b.find("form.import-form");
    findings.check(&b, "admin-import");
    beside_their_labels(&b, "form.import-form input[type=radio]", &mut findings);

    // An error preview, then a clean one with the notify option.
    b.find("input[name=file]")
        .upload(fixture("bad_grades_gbk.csv"));
    b.find("form.import-form button[type=submit]").click();
    b.wait_for_text("第 7 行", T);
    findings.check(&b, "admin-import-errors");
    b.goto(&format!("{}/admin/import", s.url));
    b.find("input[name=file]")
        .upload(fixture("fixed_grades_gbk.csv"));
    b.find("form.import-form button[type=submit]").click();
    b.wait_for_text("变动示例", T);
    b.find("input[name=notify]");
    findings.check(&b, "admin-import-preview");
    beside_their_labels(&b, "input[name=notify]", &mut findings);
    b.find("form[action$=commit] button[type=submit]").click();
    b.wait_for_url("/admin/imports", T);
    b.wait_for_page("the history with nothing running", T, |p| {
        !p.contains("正在写入") && p.contains("已提交")
    });
    findings.check(&b, "admin-imports");

    b.goto(&format!("{}/admin/students", s.url));
    b.find("table.grid");
    findings.check(&b, "admin-students");
    b.goto(&format!("{}/admin/students/{sid}", s.url));
    b.find("details.confirm");
    findings.check(&b, "admin-student");
    b.goto(&format!("{}/admin/courses", s.url));
    b.find("table.sortable");
    findings.check(&b, "admin-courses");
    let first = b
        .find("table.sortable tbody a")
        .attr("href")
        .expect("course link");
    b.goto(&format!("{}{first}", s.url));
    b.find("svg.hist");
    findings.check(&b, "admin-course");
    // A course with teaching classes (the demo data names none), and the unusual-only list.
    seed_teaching_classes(&s);
    b.goto(&format!("{}/admin/courses/2025-2026-1/A11Y1", s.url));
    b.wait_for_text("各教学班分数分布", T);
    findings.check(&b, "admin-course-classes");
    b.goto(&format!("{}/admin/courses?unusual=1", s.url));
    b.find("table.sortable .flag");
    findings.check(&b, "admin-courses-unusual");
    b.goto(&format!("{}/admin/accounts", s.url));
    b.find("form.inline-form select[name=role]");
    findings.check(&b, "admin-accounts");
    b.goto(&format!("{}/admin/no-such-page", s.url));
    b.find("h1");
    findings.check(&b, "admin-error-404");
    // The page for an upload over max_upload_mb (also nginx's error_page 413).
    b.goto(&format!("{}/admin/too-large", s.url));
    b.find("ul.advice");
    findings.check(&b, "admin-too-large");

    findings.assert_none("admin pages at 1440×900");
}

/// Course A11Y1 of 2025-2026-1 in two teaching classes, half of it failed (an unusual pass rate).
fn seed_teaching_classes(s: &TestServer) {
    use wxgrades::grades::{Credit, ExamKind, GradeRecord, Score, Term};
    use wxgrades::store::grades::{grade_key, grade_value, ImportBatch, ImportRecord};
    let rows = (0..12)
        .map(|i| {
            let mut r = GradeRecord {
                student_id: format!("A11Y{i:03}"),
                term: Term::parse("2025-2026-1").expect("term"),
                course_code: "A11Y1".into(),
                course_name: "无障碍测试课".into(),
                credit: Credit::parse("2").expect("credit"),
                score: Score::parse(&(30 + i * 5).to_string()).expect("score"),
                kind: ExamKind::Normal,
                name: None,
                course: Default::default(),
            };
            r.course.class_group = Some(format!("测试-0{}班", i % 2 + 1));
            (
                grade_key(&r.student_id, &r.term, &r.course_code, r.kind),
                grade_value(&r),
            )
        })
        .collect();
    let batch = ImportBatch {
        grade_upserts: rows,
        ..Default::default()
    };
    let record = ImportRecord {
        by: "test".into(),
        kind: "grades".into(),
        file_name: "a11y.csv".into(),
        result: "committed".into(),
        ..Default::default()
    };
    let generation = s.app.store.generation().expect("generation");
    s.app
        .store
        .apply_import(&batch, record, generation, |_, _| Ok(0))
        .expect("import")
        .expect("not stale");
    s.app.data_changed();
}

/// Each control matching `css` sits on the same line as its label's text, right next to it.
fn beside_their_labels(b: &Browser, css: &str, findings: &mut Findings) {
    let v = b.execute(
        r#"return [...document.querySelectorAll(arguments[0])].map((input) => {
             const label = input.closest('label');
             const box = input.getBoundingClientRect();
             const range = document.createRange();
             range.selectNodeContents(label);
             const text = [...range.getClientRects()]
               .filter((r) => r.width > 0 && (r.right <= box.left || r.left >= box.right));
             const first = text[0];
             return {
               label: label.textContent.trim(),
               width: box.width,
               gap: first ? first.left - box.right : 9999,
               middle: first ? Math.abs((first.top + first.bottom) / 2 - (box.top + box.bottom) / 2) : 9999,
             };
           });"#,
        vec![css.into()],
    );
    let controls = v.as_array().cloned().unwrap_or_default();
    assert!(!controls.is_empty(), "no control matches {css}");
    for c in controls {
        let width = c["width"].as_f64().unwrap_or(0.0);
        let gap = c["gap"].as_f64().unwrap_or(9999.0);
        let middle = c["middle"].as_f64().unwrap_or(9999.0);
        if !(width <= 24.0 && (0.0..=16.0).contains(&gap) && middle <= 8.0) {
            findings.note(format!(
                "{css} ({}) is not beside its label: box {width:.0} px wide, {gap:.0} px before \
                 the text, {middle:.0} px off its middle",
                c["label"]
            ));
        }
    }
}
