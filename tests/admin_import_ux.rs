//! The import pages staff can trust, over real HTTP: a replace-term that deletes rows is shown as
//! a danger (rows listed, count in words, a button that says what it does) and is refused
//! without its confirmation; a commit lands on a summary with its counts; an error preview has
//! 重新上传, no write tiles, a CSV error list (formula cells neutralised) and columns named by
//! header and Excel letter (on the page and in the CLI); a small file previews without a
//! progress page; an over-size upload shows the admin 413 page; counts have thousands separators.

mod support;

use support::admin_flow::{add_staff, multipart, sign_in, wait_while_busy};

use std::process::Command;

use support::{Client, Resp, TestServer};

const TERM: &str = "2025-2026-2";

/// 学号,姓名,身份证后六位 for students 2024001 … 2024005.
fn roster() -> String {
    let mut r = String::from("学号,姓名,身份证后六位\n");
    for (i, name) in ["张三", "李四", "王五", "赵六", "钱七"].iter().enumerate() {
        r.push_str(&format!("202400{},{name},12345{}\n", i + 1, i));
    }
    r
}

fn server_with(extra_top: &str, extra_wechat: &str) -> (TestServer, Client) {
    let s = TestServer::start(extra_top, extra_wechat);
    add_staff(&s, "alice");
    s.import("roster", &roster());
    let c = sign_in(&s, "alice");
    (s, c)
}

fn server() -> (TestServer, Client) {
    server_with("max_upload_mb = 1", "")
}

fn token(c: &mut Client) -> String {
    let r = c.get("/admin/import");
    assert_eq!(r.status, 200, "{}", r.body);
    Client::hidden(&r.body, "csrf_token")
}

/// Upload; returns the job path and the first page the redirect leads to.
fn upload_first_page(c: &mut Client, name: &str, bytes: &[u8], replace: &str) -> (String, Resp) {
    let t = token(c);
    let (ct, body) = multipart(
        &[
            ("csrf_token", &t),
            ("kind", "grades"),
            ("replace_term", replace),
        ],
        Some((name, bytes)),
    );
    let r = c.post_raw("/admin/import", &ct, body);
    assert_eq!(r.status, 303, "{}", r.body);
    let job = r.location().to_string();
    let first = c.get(&job);
    (job, first)
}

fn upload(c: &mut Client, name: &str, bytes: &[u8], replace: &str) -> (String, Resp) {
    let (job, _) = upload_first_page(c, name, bytes, replace);
    let r = wait_while_busy(c, &job);
    (job, r)
}

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

/// 1,205 stored rows in TERM: five students × 241 courses.
fn seed_term(s: &TestServer) {
    let mut f = String::from("学号,学期,课程代码,课程名称,学分,成绩\n");
    for sid in 1..=5 {
        for k in 0..241 {
            f.push_str(&format!(
                "202400{sid},{TERM},C{k:04},课程{k},2,{}\n",
                60 + k % 40
            ));
        }
    }
    s.import("grades", &f);
    assert_eq!(rows_in_term(s, TERM), 1205);
}

#[test]
fn replace_term_that_deletes_is_a_danger_and_needs_its_confirmation() {
    let (s, mut c) = server();
    seed_term(&s);
    // One row of the term, changed: 1 written, 1,204 deleted.
    let one = format!("学号,学期,课程代码,课程名称,学分,成绩\n2024001,{TERM},C0000,课程0,2,99\n");
    let (job, r) = upload(&mut c, "one.csv", one.as_bytes(), TERM);
    assert_eq!(r.status, 200, "{}", r.body);
    let b = &r.body;
    assert!(
        b.contains("警告：提交将删除 1,204 条 2025-2026-2 学期的成绩"),
        "a warning in words with the count grouped: {b}"
    );
    assert!(
        b.contains("tile-danger") && b.contains("将删除（2025-2026-2）"),
        "{b}"
    );
    // The rows listed: student, name, course, term, score; the first 200 and how many more.
    let listed = b.matches("（名册中没有）").count()
        + b.matches("<td>张三</td>").count()
        + b.matches("<td>李四</td>").count()
        + b.matches("<td>王五</td>").count()
        + b.matches("<td>赵六</td>").count()
        + b.matches("<td>钱七</td>").count();
    assert_eq!(listed, 200, "200 rows listed");
    assert!(b.contains("…还有 1,004 行"), "{b}");
    assert!(
        b.contains("课程1（C0001，正常考试）") && b.contains("61 分 · 2 学分"),
        "course and score of a deleted row: {b}"
    );
    // The button says what it does; the confirmation box is required.
    assert!(b.contains("删除 1,204 条并写入 1 条"), "{b}");
    assert!(
        b.contains("name=\"confirm_removals\" value=\"1\" required"),
        "{b}"
    );
    assert!(b.contains("我已核对将被删除的成绩"), "{b}");
    assert!(
        !b.contains("提交（写入"),
        "not the plain commit button: {b}"
    );

    // Without the box: refused with a message, the preview shown again, nothing deleted.
    let t = token(&mut c);
    let r = c.post_form(&format!("{job}/commit"), &[("csrf_token", &t)]);
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(
        r.body.contains("未提交：这次提交会删除 1,204 条成绩") && r.body.contains("勾选"),
        "{}",
        r.body
    );
    assert!(
        r.body.contains("删除 1,204 条并写入 1 条"),
        "the form again"
    );
    let r = c.post_form(
        &format!("{job}/commit"),
        &[("csrf_token", &t), ("confirm_removals", "yes")],
    );
    assert_eq!(r.status, 400, "only the box's own value confirms");
    assert_eq!(rows_in_term(&s, TERM), 1205, "nothing deleted");
    let refusals = s
        .app
        .store
        .audit_events(0, 50)
        .expect("audit")
        .into_iter()
        .filter(|(_, a)| a.detail.contains("未勾选删除确认") && a.detail.contains("1204"))
        .count();
    assert_eq!(refusals, 2, "each refused commit is audited");

    // With it: committed, and the history shows what was done.
    let r = c.post_form(
        &format!("{job}/commit"),
        &[("csrf_token", &t), ("confirm_removals", "1")],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.location(), "/admin/imports");
    let h = wait_while_busy(&mut c, "/admin/imports");
    assert!(
        h.body
            .contains("《one.csv》已提交 1,205 条（新增 0，修改 1，删除 1,204），未通知学生"),
        "{}",
        h.body
    );
    assert!(
        h.body.contains("<td class=\"num r\">1,205</td>"),
        "history counts grouped: {}",
        h.body
    );
    assert_eq!(rows_in_term(&s, TERM), 1);
    let audit = s.app.store.audit_events(0, 50).expect("audit");
    assert!(
        audit.iter().any(|(_, a)| a.detail.contains("删除 1204")),
        "the commit is audited with its removals"
    );
}

#[test]
fn replace_term_that_deletes_nothing_needs_no_confirmation() {
    let (s, mut c) = server();
    let f = format!("学号,学期,课程代码,课程名称,学分,成绩\n2024001,{TERM},C0000,课程0,2,99\n");
    let (job, r) = upload(&mut c, "f.csv", f.as_bytes(), TERM);
    assert!(!r.body.contains("confirm_removals"), "{}", r.body);
    assert!(!r.body.contains("警告"), "{}", r.body);
    assert!(r.body.contains("提交（写入 1 条）"), "{}", r.body);
    let t = token(&mut c);
    let r = c.post_form(&format!("{job}/commit"), &[("csrf_token", &t)]);
    assert_eq!(r.status, 303, "{}", r.body);
    wait_while_busy(&mut c, "/admin/imports");
    assert_eq!(rows_in_term(&s, TERM), 1);
}

const NOTICE_CONFIG: &str = "grades_template_id = \"TPL-grades-1\"\nnotice_rate_per_sec = 100";

#[test]
fn a_commit_lands_on_a_summary_of_what_it_wrote_and_whom_it_notified() {
    let (s, mut c) = server_with("max_upload_mb = 1", NOTICE_CONFIG);
    s.app
        .store
        .bind("oStudentA", "2024001", s.app.clock.now())
        .expect("bind");
    let f = "学号,学期,课程代码,课程名称,学分,成绩\n2024001,2025-2026-1,MA1001,高等数学,4,88\n2024002,2025-2026-1,MA1001,高等数学,4,72\n2024002,2025-2026-1,EN1001,大学英语,3,80\n";
    let (job, r) = upload(&mut c, "g.csv", f.as_bytes(), "");
    assert!(r.body.contains("name=\"notify\""), "{}", r.body);
    let t = token(&mut c);
    let r = c.post_form(
        &format!("{job}/commit"),
        &[("csrf_token", &t), ("notify", "1")],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.location(), "/admin/imports");
    let want = "《g.csv》已提交 3 条（新增 3，修改 0），已通知 1 名学生";
    let h = wait_while_busy(&mut c, "/admin/imports");
    assert!(h.body.contains(want), "{}", h.body);
    // Shown once: a later visit to the history has the row, not the banner.
    let again = c.get("/admin/imports");
    assert!(!again.body.contains(want), "{}", again.body);
    assert!(again.body.contains("g.csv"));
    // The job page says the same.
    let j = c.get(&job);
    assert!(
        j.body
            .contains("已提交 3 条（新增 3，修改 0），已通知 1 名学生（导入记录 #"),
        "{}",
        j.body
    );
}

#[test]
fn an_error_preview_offers_reupload_and_a_csv_and_names_columns_by_letter() {
    let (s, mut c) = server();
    // Columns: A 学号, B 姓名, C 学期, D 课程代码, E 课程名称, F 学分, G 成绩.
    let bad = "学号,姓名,学期,课程代码,课程名称,学分,成绩\n\
               2024001,张三,2025-2026-1,MA1001,高等数学,4,88\n\
               2024001,张三,2025-2026-1,MA1002,线性代数,3,abc\n\
               2024002,=HYPERLINK(\"http://x\"),2025-2026-1,MA1001,高等数学,4,70\n";
    let (job, r) = upload(&mut c, "成绩 错误.csv", bad.as_bytes(), "");
    assert_eq!(r.status, 200, "{}", r.body);
    let b = &r.body;
    assert!(b.contains("成绩（G 列）"), "header and letter: {b}");
    assert!(b.contains("姓名（B 列）"), "the roster name check too: {b}");
    assert!(b.contains("<td>abc</td>"), "the cell as written: {b}");
    assert!(
        b.contains("href=\"/admin/import\">重新上传</a>"),
        "重新上传: {b}"
    );
    assert!(
        !b.contains("<span class=\"tile-label\">新增</span>")
            && !b.contains("<span class=\"tile-label\">修改</span>"),
        "no write tiles when nothing will be written: {b}"
    );
    assert!(b.contains("写入（有错误，不写入）"), "{b}");
    let csv_href = format!("{job}/errors.csv");
    assert!(b.contains(&format!("href=\"{csv_href}\"")), "{b}");
    assert!(!b.contains("/commit\""), "no commit form");

    let r = c.get(&csv_href);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("content-type"), Some("text/csv; charset=utf-8"));
    let cd = r.header("content-disposition").unwrap_or_default();
    assert!(
        cd.starts_with("attachment;") && cd.contains("filename*=UTF-8''"),
        "{cd}"
    );
    let lines: Vec<&str> = r.body.split("\r\n").collect();
    assert_eq!(lines[0], "\u{feff}行,列,Excel 列,单元格内容,问题");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("3,成绩,G,abc,成绩应为0到100的数字")),
        "{lines:?}"
    );
    let name_line = lines
        .iter()
        .find(|l| l.starts_with("4,姓名,B,"))
        .unwrap_or_else(|| panic!("name error line: {lines:?}"));
    assert!(
        name_line.starts_with("4,姓名,B,\"'=HYPERLINK(\"\"http://x\"\")\","),
        "a formula is neutralised: {name_line}"
    );
    assert_eq!(
        lines.len(),
        4,
        "header, two errors, final line end: {lines:?}"
    );
    let audit = s.app.store.audit_events(0, 50).expect("audit");
    assert!(
        audit
            .iter()
            .any(|(_, a)| a.detail.contains("导入错误列表《成绩 错误.csv》：2 处")),
        "the download is audited"
    );
    // Another session (not signed in) gets no error list.
    let mut other = s.client();
    let r = other.get(&csv_href);
    assert_eq!(r.status, 303, "to the login");
    assert!(!r.body.contains("abc"));
}

#[test]
fn a_small_file_previews_without_a_progress_page() {
    let (_s, mut c) = server();
    let f = "学号,学期,课程代码,课程名称,学分,成绩\n2024001,2025-2026-1,MA1001,高等数学,4,88\n";
    let (_, first) = upload_first_page(&mut c, "small.csv", f.as_bytes(), "");
    assert_eq!(first.status, 200, "{}", first.body);
    assert!(
        !first.body.contains("http-equiv=\"refresh\""),
        "the first page is the preview, not progress: {}",
        first.body
    );
    assert!(first.body.contains("提交（写入 1 条）"), "{}", first.body);
}

#[test]
fn an_upload_over_the_limit_gets_the_admin_page_with_advice() {
    let (s, mut c) = server();
    let t = token(&mut c);
    let big = vec![b'1'; 1024 * 1024 + 10];
    let (ct, body) = multipart(
        &[("csrf_token", &t), ("kind", "grades")],
        Some(("big.csv", &big)),
    );
    let r = c.post_raw("/admin/import", &ct, body);
    assert_eq!(r.status, 413);
    for page in [r.body.clone(), {
        // The page nginx's error_page 413 fetches: no session needed, same page and status.
        let mut anyone = s.client();
        let r = anyone.get("/admin/too-large");
        assert_eq!(r.status, 413);
        r.body
    }] {
        // (The template engine writes '/' in attribute values as &#x2f;.)
        let page = page.replace("&#x2f;", "/");
        assert!(
            page.contains("/static/admin.css"),
            "the admin layout: {page}"
        );
        assert!(page.contains("文件太大：超过 1.0 MB"), "{page}");
        assert!(page.contains("拆成几个较小的文件"), "advice: split: {page}");
        assert!(
            page.contains("max_upload_mb"),
            "advice: raise the limit: {page}"
        );
        assert!(
            page.contains("href=\"/admin/import\">返回上传页面</a>"),
            "{page}"
        );
        assert!(!page.contains("返回首页"), "not the student page: {page}");
    }
    // A student-side page over its bound keeps the student page.
    let r = c.post_raw(
        "/bind",
        "application/x-www-form-urlencoded",
        vec![b'a'; 70 * 1024],
    );
    assert_eq!(r.status, 413);
    assert!(!r.body.contains("/static/admin.css"), "{}", r.body);
}

#[test]
fn the_cli_names_error_columns_by_header_and_letter() {
    let dir = support::temp_dir("ux-cli");
    let config = dir.join("wxgrades.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:18080\"\npublic_url = \"https://jw.example.edu.cn\"\ndata = \"{}\"\n\
             [wechat]\napp_id = \"{}\"\napp_secret = \"{}\"\ntoken = \"testtoken\"\n\
             [backup]\ndir = \"{}\"\n",
            dir.join("data.redb").display(),
            support::APP_ID,
            support::APP_SECRET,
            dir.join("backups").display(),
        ),
    )
    .expect("config");
    let file = dir.join("bad.csv");
    std::fs::write(
        &file,
        "学号,学期,课程代码,课程名称,学分,成绩\n2024001,2025-2026-1,MA1001,高等数学,4,abc\n",
    )
    .expect("file");
    let out = Command::new(env!("CARGO_BIN_EXE_wxgrades"))
        .args(["import", "grades"])
        .arg(&file)
        .arg("--config")
        .arg(&config)
        .env_remove("WXGRADES_CONFIG")
        .output()
        .expect("run wxgrades");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("line 2, column 成绩 (F): 成绩应为0到100的数字"),
        "{stderr}"
    );
}
