//! The admin import flow over real HTTP: upload (multipart) → progress → preview with every
//! error → commit once → history; and the refusals (CSRF, size, double and stale commits).

mod support;

use support::admin_flow::{add_staff, multipart, sign_in, wait_while_busy};

use support::{Client, Resp, TestServer};

const ROSTER: &str = "学号,姓名,身份证后六位\n2024001,张三,12345X\n2024002,李四,654321\n";

fn server() -> (TestServer, Client) {
    let s = TestServer::start("max_upload_mb = 1", "");
    add_staff(&s, "alice");
    s.import("roster", ROSTER);
    let c = sign_in(&s, "alice");
    (s, c)
}

fn token(c: &mut Client) -> String {
    let r = c.get("/admin/import");
    assert_eq!(r.status, 200, "{}", r.body);
    Client::hidden(&r.body, "csrf_token")
}

/// Upload and follow to the job page until it leaves the "planning" state.
fn upload(c: &mut Client, kind: &str, name: &str, bytes: &[u8], replace: &str) -> (String, Resp) {
    let t = token(c);
    let (ct, body) = multipart(
        &[
            ("csrf_token", &t),
            ("kind", kind),
            ("replace_term", replace),
        ],
        Some((name, bytes)),
    );
    let r = c.post_raw("/admin/import", &ct, body);
    assert_eq!(r.status, 303, "{}", r.body);
    let job = r.location().to_string();
    (job.clone(), wait_while_busy(c, &job))
}

fn score_of(s: &TestServer, sid: &str, code: &str) -> Option<String> {
    s.app
        .store
        .grades_of(sid)
        .unwrap()
        .into_iter()
        .find(|g| g.course_code == code)
        .map(|g| g.score.to_string())
}

const GRADES: &str = "学号,姓名,学期,课程代码,课程名称,学分,成绩\n2024001,张三,2025-2026-1,MA1001,高等数学,4,88\n2024002,李四,2025-2026-1,MA1001,高等数学,4,72\n";

#[test]
fn upload_preview_errors_then_fixed_file_commit_and_history() {
    let (s, mut c) = server();
    // A GBK file with one bad row: the preview names line and column; nothing is written.
    let bad = "学号,姓名,学期,课程代码,课程名称,学分,成绩\n2024001,张三,2025-2026-1,MA1001,高等数学,abc,88\n2024002,李四,2025-2026-1,MA1001,高等数学,4,72\n";
    let gbk = encoding_rs::GBK.encode(bad).0.into_owned();
    let (job, r) = upload(&mut c, "grades", "成绩.csv", &gbk, "");
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.body.contains("第 2 行") && r.body.contains("学分"),
        "{}",
        r.body
    );
    assert!(r.body.contains("GBK"));
    assert!(!r.body.contains("/commit\""), "no commit form with errors");
    let t = token(&mut c);
    let refused = c.post_form(&format!("{job}/commit"), &[("csrf_token", &t)]);
    assert_eq!(refused.status, 409);
    assert_eq!(score_of(&s, "2024001", "MA1001"), None);
    // The fixed file previews clean and commits once.
    let (job, r) = upload(
        &mut c,
        "grades",
        "成绩.csv",
        encoding_rs::GBK.encode(GRADES).0.as_ref(),
        "",
    );
    assert!(
        r.body.contains("新增") && r.body.contains("/commit"),
        "{}",
        r.body
    );
    assert_eq!(
        score_of(&s, "2024001", "MA1001"),
        None,
        "a preview writes nothing"
    );
    let r = c.post_form(&format!("{job}/commit"), &[("csrf_token", &t)]);
    assert_eq!(r.status, 303);
    assert_eq!(r.location(), "/admin/imports");
    let h = wait_while_busy(&mut c, "/admin/imports");
    assert!(
        h.body.contains("成绩.csv") && h.body.contains("已提交"),
        "{}",
        h.body
    );
    assert_eq!(score_of(&s, "2024001", "MA1001").as_deref(), Some("88"));
    // Committed once: the same preview again is refused and changes nothing.
    let again = c.post_form(&format!("{job}/commit"), &[("csrf_token", &t)]);
    assert_eq!(again.status, 409);
    let imports = s.app.store.imports(0, 100).unwrap();
    assert_eq!(
        imports.iter().filter(|r| r.result == "committed").count(),
        2,
        "roster + grades"
    );
    assert!(
        imports.iter().any(|r| r.result.contains("错误")),
        "the refused upload is in the history"
    );
}

#[test]
fn a_preview_of_data_that_changed_since_is_refused() {
    let (s, mut c) = server();
    let (job, _) = upload(&mut c, "grades", "g.csv", GRADES.as_bytes(), "");
    // Someone commits another import meanwhile.
    s.import(
        "grades",
        "学号,学期,课程代码,课程名称,学分,成绩\n2024001,2025-2026-1,PE1001,体育,1,优秀\n",
    );
    let t = token(&mut c);
    let r = c.post_form(&format!("{job}/commit"), &[("csrf_token", &t)]);
    assert_eq!(r.status, 409, "{}", r.body);
    assert_eq!(score_of(&s, "2024001", "MA1001"), None);
}

#[test]
fn upload_without_csrf_token_is_refused_and_stores_nothing() {
    let (s, mut c) = server();
    let (ct, body) = multipart(&[("kind", "grades")], Some(("g.csv", GRADES.as_bytes())));
    assert_eq!(c.post_raw("/admin/import", &ct, body).status, 403);
    let (ct, body) = multipart(
        &[("kind", "grades"), ("csrf_token", "0000")],
        Some(("g.csv", GRADES.as_bytes())),
    );
    assert_eq!(c.post_raw("/admin/import", &ct, body).status, 403);
    assert_eq!(
        s.app.store.imports(0, 10).unwrap().len(),
        1,
        "the roster only"
    );
}

#[test]
fn upload_over_the_bound_is_413_and_stores_nothing() {
    let (s, mut c) = server();
    let t = token(&mut c);
    let mut big = GRADES.as_bytes().to_vec();
    big.resize(1024 * 1024 + 10, b'\n');
    let (ct, body) = multipart(
        &[("csrf_token", &t), ("kind", "grades")],
        Some(("big.csv", &big)),
    );
    let r = c.post_raw("/admin/import", &ct, body);
    assert_eq!(r.status, 413);
    assert!(r.body.contains("1.0 MB"), "{}", r.body);
    assert_eq!(s.app.store.imports(0, 10).unwrap().len(), 1);
    assert_eq!(c.get("/admin").status, 200, "the server goes on");
}

#[test]
fn unreadable_file_and_missing_column_get_clear_messages() {
    let (_s, mut c) = server();
    let (_, r) = upload(
        &mut c,
        "grades",
        "x.csv",
        &[0u8, 159, 146, 150, 0, 1, 2],
        "",
    );
    assert!(r.body.contains("无法读取"), "{}", r.body);
    let (_, r) = upload(
        &mut c,
        "grades",
        "x.csv",
        "学号,成绩\n2024001,90\n".as_bytes(),
        "",
    );
    assert!(
        r.body.contains("学期"),
        "names the missing column: {}",
        r.body
    );
    let t = token(&mut c);
    let (ct, body) = multipart(
        &[
            ("csrf_token", &t),
            ("kind", "grades"),
            ("replace_term", "2025-2026-9"),
        ],
        Some(("x.csv", GRADES.as_bytes())),
    );
    let r = c.post_raw("/admin/import", &ct, body);
    assert_eq!(r.status, 400);
    assert!(r.body.contains("替换学期"));
}

/// Registrar exports uploaded unedited through the page: the preview names the layout, the
/// container and the skipped void rows; the commit stores exactly the rows the CLI test expects.
#[test]
fn registrar_exports_upload_unedited_with_layout_named_in_the_preview() {
    let (s, mut c) = server();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/registrar");
    for (file, layout, container, sid, rows) in [
        (
            "xinzhengfang.xlsx",
            "新正方 成绩导出",
            "XLSX",
            "2025010102",
            vec![
                "2025-2026-1 B1100012 52 正常考试",
                "2025-2026-1 B1100012 61 补考",
                "2025-2026-2 B1100021 缓考 正常考试",
            ],
        ),
        (
            "jiuzhengfang.xls",
            "旧正方 成绩导出",
            "网页表格（HTML，GBK",
            "2024020202",
            vec![
                "2024-2025-1 0210032 62 补考",
                "2024-2025-1 0210032 缺考 正常考试",
            ],
        ),
        (
            "qiangzhi.xls",
            "强智 成绩导出",
            "旧版Excel .xls",
            "2023030302",
            vec!["2025-2026-1 08010025 免修 正常考试"],
        ),
    ] {
        let bytes = std::fs::read(dir.join(file)).expect("fixture");
        let (job, r) = upload(&mut c, "grades", file, &bytes, "");
        assert_eq!(r.status, 200, "{}", r.body);
        assert!(
            r.body.contains("识别为") && r.body.contains(layout) && r.body.contains(container),
            "{file}: {}",
            r.body
        );
        assert!(r.body.contains("/commit"), "{file}: {}", r.body);
        if file == "xinzhengfang.xlsx" {
            assert!(r.body.contains("跳过的行"), "{}", r.body);
        }
        let t = token(&mut c);
        let r = c.post_form(&format!("{job}/commit"), &[("csrf_token", &t)]);
        assert_eq!(r.status, 303, "{file}");
        wait_while_busy(&mut c, "/admin/imports");
        let mut stored: Vec<String> = s
            .app
            .store
            .grades_of(sid)
            .unwrap()
            .into_iter()
            .map(|g| format!("{} {} {} {}", g.term, g.course_code, g.score, g.kind))
            .collect();
        stored.sort();
        let mut rows = rows;
        rows.sort();
        assert_eq!(stored, rows, "{file}");
    }
}
