//! The admin pages over real HTTP (sign-in, lock-out, CSRF, unbind, export, backup during an
//! import) and the operator's commands run as the real binary (admin accounts, backup, restore,
//! export).

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use support::{Client, TestServer};
use wxgrades::grades::{Credit, ExamKind, GradeRecord, Score, Term};
use wxgrades::service::admin::{accounts, auth};
use wxgrades::store::grades::{grade_key, grade_value, ImportBatch, ImportRecord};
use wxgrades::store::students::Student;
use wxgrades::store::Store;

const PW: &str = "correct-horse-9";

fn record() -> ImportRecord {
    ImportRecord {
        by: "test".into(),
        kind: "grades".into(),
        file_name: "seed.csv".into(),
        result: "committed".into(),
        ..Default::default()
    }
}

fn grade(sid: &str, term: &str, code: &str, name: &str, score: &str) -> (String, String) {
    let r = GradeRecord {
        student_id: sid.into(),
        term: Term::parse(term).expect("term"),
        course_code: code.into(),
        course_name: name.into(),
        credit: Credit::parse("2").expect("credit"),
        score: Score::parse(score).expect("score"),
        kind: ExamKind::Normal,
        name: None,
        course: Default::default(),
    };
    (
        grade_key(&r.student_id, &r.term, &r.course_code, r.kind),
        grade_value(&r),
    )
}

fn student(sid: &str, name: &str) -> (String, Vec<u8>) {
    let s = Student {
        student_id: sid.into(),
        name: name.into(),
        verify: "hashed".into(),
        class: Some("计科1班".into()),
        major: None,
        college: None,
        cohort: None,
    };
    (sid.into(), serde_json::to_vec(&s).expect("json"))
}

/// Write students and grade rows in one import.
fn seed(store: &Store, students: Vec<(String, Vec<u8>)>, grades: Vec<(String, String)>) {
    let batch = ImportBatch {
        students,
        grade_upserts: grades,
        ..Default::default()
    };
    let generation = store.generation().expect("generation");
    store
        .apply_import(&batch, record(), generation, |_, _| Ok(0))
        .expect("import")
        .expect("not stale");
}

fn server_with_admin() -> TestServer {
    let s = TestServer::start("", "");
    accounts::add(&s.app.store, "alice", PW, s.app.clock.now()).expect("add alice");
    s
}

fn try_login(c: &mut Client, user: &str, password: &str) -> support::Resp {
    let r = c.get("/admin/login");
    assert_eq!(r.status, 200, "{}", r.body);
    let token = Client::hidden(&r.body, "csrf_token");
    c.post_form(
        "/admin/login",
        &[
            ("username", user),
            ("password", password),
            ("csrf_token", &token),
        ],
    )
}

fn login(s: &TestServer) -> Client {
    let mut c = s.client();
    let r = try_login(&mut c, "alice", PW);
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.location(), "/admin");
    c
}

/// The CSRF token of the signed-in admin, read from a page.
fn token(c: &mut Client) -> String {
    let r = c.get("/admin");
    assert_eq!(r.status, 200, "{}", r.body);
    Client::hidden(&r.body, "csrf_token")
}

/// A form POST with an extra header; its status.
fn post_with_header(
    c: &mut Client,
    path: &str,
    fields: &[(&str, &str)],
    header: (&str, &str),
) -> u16 {
    c.post_form_with_header(path, fields, Some(header)).status
}

/// GET with the client's cookies, the body as bytes.
fn get_bytes(c: &mut Client, path: &str) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let r = c.get(path);
    (r.status, r.headers, r.bytes)
}

fn audit_actions(store: &Store) -> Vec<String> {
    store
        .audit_events(0, 1000)
        .expect("audit")
        .into_iter()
        .map(|(_, e)| e.action)
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Sign-in
// ---------------------------------------------------------------------------------------------

#[test]
fn admin_pages_need_a_session_and_login_sets_a_strict_cookie() {
    let s = server_with_admin();
    let mut c = s.client();
    for path in [
        "/admin",
        "/admin/students",
        "/admin/backup",
        "/admin/export.csv",
    ] {
        let r = c.get(path);
        assert_eq!(r.status, 303, "{path}");
        assert!(r.location().starts_with("/admin/login?next="), "{path}");
    }
    let r = c.get("/admin/login");
    let pre = r
        .set_cookies()
        .into_iter()
        .find(|v| v.starts_with("wxg_admin_pre="))
        .expect("pre-login cookie")
        .to_string();
    assert!(
        pre.contains("Path=/admin") && pre.contains("SameSite=Strict") && pre.contains("HttpOnly")
    );

    let r = try_login(&mut c, "alice", PW);
    assert_eq!(r.status, 303, "{}", r.body);
    let cookie = r
        .set_cookies()
        .into_iter()
        .find(|v| v.starts_with("wxg_admin="))
        .expect("admin cookie")
        .to_string();
    let value = cookie["wxg_admin=".len()..].split(';').next().unwrap_or("");
    assert_eq!(value.len(), 64, "256-bit id in hex");
    assert!(cookie.contains("; Path=/admin"), "{cookie}");
    assert!(cookie.contains("; HttpOnly"), "{cookie}");
    assert!(cookie.contains("; SameSite=Strict"), "{cookie}");
    assert!(
        !cookie.contains("Secure"),
        "plain http: no Secure ({cookie})"
    );
    // Stored hashed: the id itself is nowhere in the data file's session table.
    let r = c.get("/admin");
    assert_eq!(r.status, 200);
    assert!(r.body.contains("概览") && r.body.contains("alice"));
    let r = c.get("/admin/login");
    assert_eq!(r.status, 303, "signed in: the login page sends on");

    // A made-up or student cookie is no admin session.
    let mut other = s.client();
    other.cookies.insert("wxg_admin".into(), "ab".repeat(32));
    assert_eq!(other.get("/admin").status, 303);

    // Logout needs the token, then ends the session for good.
    let t = token(&mut c);
    let old = c.cookies.get("wxg_admin").cloned().unwrap_or_default();
    assert_eq!(c.post_form("/admin/logout", &[]).status, 403);
    let r = c.post_form("/admin/logout", &[("csrf_token", &t)]);
    assert_eq!(r.status, 303);
    assert_eq!(r.location(), "/admin/login");
    assert!(!c.cookies.contains_key("wxg_admin"));
    let mut replay = s.client();
    replay.cookies.insert("wxg_admin".into(), old);
    assert_eq!(replay.get("/admin").status, 303);
    let actions = audit_actions(&s.app.store);
    assert!(actions.contains(&"login".to_string()), "{actions:?}");
    assert!(actions.contains(&"logout".to_string()), "{actions:?}");
}

#[test]
fn login_form_without_its_token_or_from_another_site_is_refused() {
    let s = server_with_admin();
    let mut c = s.client();
    let r = c.get("/admin/login");
    let t = Client::hidden(&r.body, "csrf_token");
    let fields = [("username", "alice"), ("password", PW)];
    assert_eq!(c.post_form("/admin/login", &fields).status, 403);
    let wrong = [
        ("username", "alice"),
        ("password", PW),
        ("csrf_token", "0000"),
    ];
    assert_eq!(c.post_form("/admin/login", &wrong).status, 403);
    // The token belongs to the pre-login cookie: another browser cannot use it.
    let mut stranger = s.client();
    let with_t = [
        ("username", "alice"),
        ("password", PW),
        ("csrf_token", t.as_str()),
    ];
    assert_eq!(stranger.post_form("/admin/login", &with_t).status, 403);
    assert_eq!(
        post_with_header(
            &mut c,
            "/admin/login",
            &with_t,
            ("Origin", "https://evil.example")
        ),
        403
    );
    assert!(!c.cookies.contains_key("wxg_admin"));
    // None of that counted as a failed password.
    assert!(audit_actions(&s.app.store).is_empty());
    assert_eq!(c.post_form("/admin/login", &with_t).status, 303);
}

#[test]
fn wrong_passwords_lock_the_account_until_the_lock_expires() {
    let s = server_with_admin();
    accounts::add(&s.app.store, "bob", PW, 0).expect("bob");
    let mut c = s.client();
    for i in 1..auth::ACCOUNT_MAX_FAILURES {
        let r = try_login(&mut c, "alice", "not-the-password");
        assert_eq!(r.status, 401, "failure {i}");
        assert!(r.body.contains("用户名或密码错误"));
        assert!(r.body.contains("name=\"password\""), "the form again");
    }
    let r = try_login(&mut c, "alice", "not-the-password");
    assert_eq!(r.status, 429);
    assert!(r.body.contains("后再试"), "says when to retry");
    let retry: i64 = r
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .expect("Retry-After");
    assert!(retry > 0 && retry <= auth::LOCK_SECS);
    // Locked: even the right password is refused, without a session.
    let r = try_login(&mut c, "alice", PW);
    assert_eq!(r.status, 429);
    assert!(!c.cookies.contains_key("wxg_admin"));
    // Another account from the same address is not locked.
    let mut b = s.client();
    assert_eq!(try_login(&mut b, "bob", PW).status, 303);

    s.app.clock.advance(auth::LOCK_SECS + 1);
    let r = try_login(&mut c, "alice", PW);
    assert_eq!(r.status, 303, "the lock expired: {}", r.body);
    let actions = audit_actions(&s.app.store);
    assert!(actions.contains(&"login_failed".to_string()));
    assert!(actions.contains(&"login_locked".to_string()));
}

#[test]
fn one_address_failing_over_many_names_is_locked() {
    let s = server_with_admin();
    let mut c = s.client();
    let mut last = 0;
    for i in 0..auth::ADDRESS_MAX_FAILURES {
        last = try_login(&mut c, &format!("nobody{i}"), "guess-guess-guess").status;
    }
    assert_eq!(last, 429);
    assert_eq!(try_login(&mut c, "alice", PW).status, 429);
    s.app.clock.advance(auth::LOCK_SECS + 1);
    assert_eq!(try_login(&mut c, "alice", PW).status, 303);
}

#[test]
fn idle_sessions_end() {
    let s = server_with_admin();
    let mut c = login(&s);
    s.app.clock.advance(auth::IDLE_SECS - 60);
    assert_eq!(c.get("/admin").status, 200, "still within the idle time");
    s.app.clock.advance(auth::IDLE_SECS - 60);
    assert_eq!(c.get("/admin").status, 200, "each request extends it");
    s.app.clock.advance(auth::IDLE_SECS + 1);
    assert_eq!(c.get("/admin").status, 303, "idle too long");
}

// ---------------------------------------------------------------------------------------------
// CSRF on admin forms; students
// ---------------------------------------------------------------------------------------------

#[test]
fn unbind_without_a_good_token_or_from_another_site_is_403_and_changes_nothing() {
    let s = server_with_admin();
    let store = &s.app.store;
    seed(store, vec![student("2021001", "张三")], vec![]);
    store.bind("oStudent1", "2021001", 100).expect("bind");
    let mut c = login(&s);
    let page = c.get("/admin/students/2021001");
    assert_eq!(page.status, 200);
    assert!(page.body.contains("已绑定") && page.body.contains("oStudent1"));
    let t = Client::hidden(&page.body, "csrf_token");
    let path = "/admin/students/2021001/unbind";

    assert_eq!(c.post_form(path, &[]).status, 403, "no token");
    assert_eq!(
        c.post_form(path, &[("csrf_token", "deadbeef")]).status,
        403,
        "wrong token"
    );
    // A token of another admin session is wrong for this one.
    let mut other = login(&s);
    let other_t = token(&mut other);
    assert_eq!(c.post_form(path, &[("csrf_token", &other_t)]).status, 403);
    assert_eq!(
        post_with_header(
            &mut c,
            path,
            &[("csrf_token", &t)],
            ("Origin", "https://evil.example")
        ),
        403,
        "another site"
    );
    assert_eq!(
        store.bound_openid("2021001").expect("read"),
        Some("oStudent1".into()),
        "still bound"
    );

    let r = c.post_form(path, &[("csrf_token", &t)]);
    assert_eq!(r.status, 303);
    assert_eq!(r.location(), "/admin/students/2021001");
    assert_eq!(store.bound_openid("2021001").expect("read"), None);
    let ev = store.bind_events("2021001", 1).expect("events");
    assert_eq!(ev[0].action, "unbind");
    assert_eq!(ev[0].by, "admin:alice");
    assert!(audit_actions(store).contains(&"unbind".to_string()));
    let page = c.get("/admin/students/2021001");
    assert!(page.body.contains("未绑定微信") && page.body.contains("管理员 alice"));
}

#[test]
fn dashboard_students_and_courses_show_the_data() {
    let s = server_with_admin();
    let store = &s.app.store;
    let mut students = vec![student("2021001", "张三"), student("2021002", "李四")];
    for i in 0..60 {
        students.push(student(&format!("2030{i:03}"), &format!("学生{i}")));
    }
    seed(
        store,
        students,
        vec![
            grade("2021001", "2025-2026-1", "MA101", "高等数学", "95"),
            grade("2021002", "2025-2026-1", "MA101", "高等数学", "55"),
            grade("2021001", "2025-2026-1", "PE1", "体育", "优秀"),
            grade("2021001", "2024-2025-2", "CS1", "程序设计", "72.5"),
        ],
    );
    store.bind("oA", "2021001", 1).expect("bind");
    let mut c = login(&s);

    let r = c.get("/admin");
    assert_eq!(r.status, 200);
    for want in [
        "62",
        "成绩记录",
        "2025-2026-1",
        "2024-2025-2",
        "seed.csv",
        "尚无备份",
    ] {
        assert!(r.body.contains(want), "dashboard lacks {want}");
    }

    let r = c.get("/admin/students?q=%E5%BC%A0"); // 张
    assert!(r.body.contains("2021001") && !r.body.contains("2021002"));
    let r = c.get("/admin/students?q=20210");
    assert!(r.body.contains("2021001") && r.body.contains("2021002"));
    let r = c.get("/admin/students");
    assert!(r.body.contains("第 1 / 2 页"), "62 students, 50 a page");
    let r = c.get("/admin/students?page=2");
    assert!(r.body.contains("2030059") && !r.body.contains("2021001"));

    let r = c.get("/admin/students/2021001");
    assert!(r.body.contains("高等数学") && r.body.contains("程序设计") && r.body.contains("4.0"));
    assert_eq!(c.get("/admin/students/9999999").status, 404);

    let r = c.get("/admin/courses?term=2025-2026-1&sort=mean&dir=desc");
    assert_eq!(r.status, 200);
    assert!(r.body.contains("75.0"), "mean of 95 and 55");
    assert!(r.body.contains("50.0%"), "pass rate of MA101");
    assert!(!r.body.contains("CS1"), "other term filtered out");
    let r = c.get("/admin/courses?sort=code&dir=asc");
    let (cs, ma) = (r.body.find(">CS1<"), r.body.find(">MA101<"));
    assert!(cs.is_some() && ma.is_some() && cs < ma, "sorted by code");
    assert_eq!(c.get("/admin/courses?term=bad").status, 400);

    let r = c.get("/admin/courses/2025-2026-1/MA101");
    assert_eq!(r.status, 200);
    assert!(r.body.contains("<svg") && r.body.contains("90–100"));
    assert_eq!(r.body.matches("<rect").count(), 10);
    assert_eq!(c.get("/admin/courses/2025-2026-1/NOPE").status, 404);
    assert_eq!(c.get("/admin/nothing-here").status, 404);
}

// ---------------------------------------------------------------------------------------------
// Export and backup
// ---------------------------------------------------------------------------------------------

#[test]
fn export_csv_has_bom_import_headers_quoting_and_neutralised_cells() {
    let s = server_with_admin();
    seed(
        &s.app.store,
        vec![student("2021001", "张三")],
        vec![
            grade(
                "2021001",
                "2025-2026-1",
                "F1",
                "=HYPERLINK(\"http://x\")",
                "90",
            ),
            grade("2021001", "2025-2026-1", "F2", "+cmd", "80"),
            grade("2021001", "2025-2026-1", "F3", "@SUM(A1)", "70"),
            grade("2021001", "2025-2026-1", "F4", "-2+3", "60"),
            grade("2021001", "2025-2026-1", "F5", "数学, 上", "合格"),
            grade("2021001", "2024-2025-1", "OLD", "旧课", "88"),
        ],
    );
    let mut c = login(&s);
    let (status, headers, body) = get_bytes(&mut c, "/admin/export.csv");
    assert_eq!(status, 200);
    let h = |n: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(n))
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    assert!(h("content-type").starts_with("text/csv"));
    assert!(h("content-disposition").starts_with("attachment;"));
    assert!(body.starts_with(b"\xEF\xBB\xBF"), "UTF-8 BOM");
    let text = String::from_utf8(body[3..].to_vec()).expect("utf-8");
    let lines: Vec<&str> = text.split("\r\n").collect();
    assert_eq!(
        lines[0],
        "学号,姓名,学期,课程代码,课程名称,学分,成绩,考试性质"
    );
    assert!(
        lines.contains(
            &"2021001,张三,2025-2026-1,F1,\"'=HYPERLINK(\"\"http://x\"\")\",2,90,正常考试"
        ),
        "{lines:?}"
    );
    assert!(lines.contains(&"2021001,张三,2025-2026-1,F2,'+cmd,2,80,正常考试"));
    assert!(lines.contains(&"2021001,张三,2025-2026-1,F3,'@SUM(A1),2,70,正常考试"));
    assert!(lines.contains(&"2021001,张三,2025-2026-1,F4,'-2+3,2,60,正常考试"));
    assert!(lines.contains(&"2021001,张三,2025-2026-1,F5,\"数学, 上\",2,合格,正常考试"));
    assert_eq!(lines.len(), 8, "header, 6 rows, empty after the last CRLF");

    let (_, headers, body) = get_bytes(&mut c, "/admin/export.csv?term=2024-2025-1");
    let text = String::from_utf8_lossy(&body);
    assert!(text.contains("OLD") && !text.contains("F1"));
    assert!(headers
        .iter()
        .any(|(_, v)| v.contains("grades-2024-2025-1.csv")));
    assert_eq!(c.get("/admin/export.csv?term=2024").status, 400);
    assert!(audit_actions(&s.app.store).contains(&"export".to_string()));
}

#[test]
fn exported_csv_imports_back_with_nothing_to_change() {
    use wxgrades::service::import::plan::{plan, ImportKind, Upload};
    let s = server_with_admin();
    s.import(
        "roster",
        "学号,姓名,身份证后六位\n2021001,张三,123456\n2021002,李四,65432X\n",
    );
    s.import(
        "grades",
        "学号,学期,课程代码,课程名称,学分,成绩,考试性质\n\
         2021001,2025-2026-1,MA101,\"高等数学, 上\",4.5,89.5,正常考试\n\
         2021001,2025-2026-1,PE1,\"体育\"\"一\"\"\",1,优秀,正常考试\n\
         2021002,2024-2025-2,MA101,高等数学,4,缺考,补考\n\
         2021002,2024-2025-2,EN1,英语,2.25,合格,重修\n",
    );
    let mut c = login(&s);
    let (status, _, body) = get_bytes(&mut c, "/admin/export.csv");
    assert_eq!(status, 200);
    let p = plan(
        &s.app.store,
        &s.app.verify_key,
        &Upload {
            kind: ImportKind::Grades,
            file_name: "grades.csv",
            bytes: &body,
            replace_term: None,
        },
    )
    .expect("plan");
    assert!(p.errors.is_empty(), "{:?}", p.errors);
    assert_eq!(p.rows_read, 4);
    assert_eq!((p.added, p.changed, p.unchanged), (0, 0, 4));
    assert!(p.unknown_students.is_empty());
}

#[test]
fn backup_taken_during_a_big_import_holds_the_state_before_or_after_never_a_mix() {
    let s = server_with_admin();
    let before: Vec<(String, String)> = (0..1000)
        .map(|i| grade(&format!("1{i:06}"), "2024-2025-1", "C0", "课", "80"))
        .collect();
    seed(&s.app.store, vec![], before);
    let mut c = login(&s);

    let big: Vec<(String, String)> = (0..200_000)
        .map(|i| grade(&format!("2{i:06}"), "2025-2026-1", "C1", "课", "70"))
        .collect();
    let app = s.app.clone();
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let done2 = done.clone();
    let importer = std::thread::spawn(move || {
        let batch = ImportBatch {
            grade_upserts: big,
            ..Default::default()
        };
        let r = app.store.apply_import(&batch, record(), 1, |_, _| Ok(0));
        done2.store(true, std::sync::atomic::Ordering::SeqCst);
        r.map(|o| o.is_some())
    });

    let dir = support::temp_dir("backups");
    let mut counts = Vec::new();
    let mut i = 0;
    loop {
        let finished = done.load(std::sync::atomic::Ordering::SeqCst);
        let (status, headers, body) = get_bytes(&mut c, "/admin/backup");
        assert_eq!(status, 200);
        assert!(headers
            .iter()
            .any(|(k, v)| k.eq_ignore_ascii_case("content-disposition")
                && v.starts_with("attachment;")
                && v.contains(".redb")));
        let path = dir.join(format!("b{i}.redb"));
        std::fs::write(&path, &body).expect("write backup");
        let copy = Store::open(&path).expect("backup opens");
        let rows = copy.grade_count().expect("count");
        let generation = copy.generation().expect("generation");
        counts.push((rows, generation));
        i += 1;
        if finished {
            break;
        }
    }
    assert!(importer.join().expect("import thread").expect("import"));
    for (rows, generation) in &counts {
        assert!(
            (*rows, *generation) == (1000, 1) || (*rows, *generation) == (201_000, 2),
            "a backup held {rows} rows at generation {generation}: {counts:?}"
        );
    }
    assert_eq!(
        counts.last().map(|c| c.0),
        Some(201_000),
        "the last one is after"
    );
    eprintln!("backups taken: {counts:?}");
    let actions = audit_actions(&s.app.store);
    assert!(actions.contains(&"backup".to_string()));
}

// ---------------------------------------------------------------------------------------------
// The command line
// ---------------------------------------------------------------------------------------------

struct Cli {
    dir: PathBuf,
    config: PathBuf,
    data: PathBuf,
}

impl Cli {
    fn new(name: &str) -> Cli {
        let dir = support::temp_dir(name);
        let data = dir.join("data.redb");
        let config = dir.join("wxgrades.toml");
        std::fs::write(
            &config,
            format!(
                "listen = \"127.0.0.1:9\"\npublic_url = \"https://jw.example.edu.cn\"\ndata = \"{}\"\n[wechat]\napp_id = \"{}\"\napp_secret = \"{}\"\ntoken = \"testtoken\"\n[backup]\ndir = \"{}\"\n",
                data.display(),
                support::APP_ID,
                support::APP_SECRET,
                dir.join("backups").display()
            ),
        )
        .expect("config");
        Cli { dir, config, data }
    }

    fn run(&self, args: &[&str], stdin: &str) -> (i32, String, String) {
        run_with(&self.config, args, stdin)
    }
}

fn run_with(config: &Path, args: &[&str], stdin: &str) -> (i32, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_wxgrades"))
        .args(args)
        .arg("--config")
        .arg(config)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run wxgrades");
    if let Some(mut i) = child.stdin.take() {
        let _ = std::io::Write::write_all(&mut i, stdin.as_bytes());
    }
    let out = child.wait_with_output().expect("wait");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn cli_admin_add_list_passwd_remove() {
    let cli = Cli::new("cli-admin");
    let (code, _, err) = cli.run(&["admin", "add", "alice", "--password-stdin"], "short\n");
    assert_eq!(code, 1);
    assert!(err.contains("too short"), "{err}");
    let (code, out, err) = cli.run(
        &["admin", "add", "alice", "--password-stdin"],
        "long-enough-pass\n",
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("alice"));
    let (code, _, err) = cli.run(
        &["admin", "add", "alice", "--password-stdin"],
        "another-pass-1\n",
    );
    assert_eq!(code, 1);
    assert!(err.contains("exists already"), "{err}");
    let (code, _, err) = cli.run(&["admin", "add", "bob"], "");
    assert_eq!(code, 1, "no terminal for the prompt");
    assert!(err.contains("--password-stdin"), "{err}");
    let (code, _, _) = cli.run(
        &["admin", "add", "bad name", "--password-stdin"],
        "long-enough-pass\n",
    );
    assert_eq!(code, 1);

    let (code, out, _) = cli.run(&["admin", "list"], "");
    assert_eq!(code, 0);
    assert!(out.starts_with("alice\t"), "{out}");

    let (code, _, err) = cli.run(
        &["admin", "passwd", "alice", "--password-stdin"],
        "a-new-password\r\n",
    );
    assert_eq!(code, 0, "{err}");
    {
        let store = Store::open(&cli.data).expect("open");
        let a = store.admin_account("alice").expect("read").expect("alice");
        assert!(a.password_hash.starts_with("$argon2id$"));
        assert!(accounts::verify_password(
            "a-new-password",
            &a.password_hash
        ));
        assert!(!accounts::verify_password(
            "long-enough-pass",
            &a.password_hash
        ));
        let actions = audit_actions(&store);
        assert!(
            actions.contains(&"account_added".into())
                && actions.contains(&"password_changed".into())
        );
    }
    let (code, _, err) = cli.run(
        &["admin", "passwd", "carol", "--password-stdin"],
        "a-new-password\n",
    );
    assert_eq!(code, 1);
    assert!(err.contains("no admin named"), "{err}");

    let (code, _, _) = cli.run(&["admin", "remove", "alice"], "");
    assert_eq!(code, 0);
    let (_, out, _) = cli.run(&["admin", "list"], "");
    assert!(out.contains("no admins"), "{out}");
    let (code, _, _) = cli.run(&["admin", "remove", "alice"], "");
    assert_eq!(code, 1);
    let (code, _, _) = cli.run(&["admin", "frobnicate"], "");
    assert_eq!(code, 2, "bad usage");
    let (code, _, _) = cli.run(&["admin", "list", "--bogus"], "");
    assert_eq!(code, 2, "unknown option");
}

#[test]
fn cli_refuses_clearly_while_the_server_holds_the_data_file() {
    let s = server_with_admin();
    let config = s.dir.join("wxgrades.toml");
    let (code, _, err) = run_with(&config, &["admin", "list"], "");
    assert_eq!(code, 1);
    assert!(err.contains("in use by another process"), "{err}");
    let (code, _, err) = run_with(&config, &["backup", "/tmp/never-written.redb"], "");
    assert_eq!(code, 1);
    assert!(
        err.contains("/admin/backup") && err.contains("snapshot"),
        "{err}"
    );
    let (code, _, err) = run_with(&config, &["export", "grades"], "");
    assert_eq!(code, 1);
    assert!(err.contains("/admin/export.csv"), "{err}");
    let snap = s.dir.join("snap.redb");
    s.app.store.write_snapshot(&snap).expect("snapshot");
    let (code, _, err) = run_with(&config, &["restore", snap.to_str().unwrap_or("")], "");
    assert_eq!(code, 1);
    assert!(err.contains("Stop the server"), "{err}");
}

#[test]
fn cli_backup_then_restore_refuses_truncated_and_foreign_files_and_checks_a_good_one() {
    let cli = Cli::new("cli-restore");
    {
        let store = Store::open(&cli.data).expect("open");
        seed(
            &store,
            vec![student("2021001", "张三")],
            vec![grade("2021001", "2025-2026-1", "MA101", "高等数学", "90")],
        );
    }
    let snap = cli.dir.join("snap.redb");
    let (code, out, err) = cli.run(&["backup", snap.to_str().unwrap_or("")], "");
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("wrote"), "{out}");
    let (code, _, err) = cli.run(&["backup", cli.data.to_str().unwrap_or("")], "");
    assert_eq!(code, 1, "not onto the data file itself");
    assert!(err.contains("data file itself"), "{err}");

    let (code, out, err) = cli.run(&["restore", "--check", snap.to_str().unwrap_or("")], "");
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("a good backup") && out.contains("1 grade rows"),
        "{out}"
    );

    // Change the data after the backup, so a restore is visible.
    {
        let store = Store::open(&cli.data).expect("open");
        seed(
            &store,
            vec![],
            vec![grade("2021001", "2025-2026-2", "X", "新课", "60")],
        );
    }
    let data_before = std::fs::read(&cli.data).expect("read data");

    let snap_bytes = std::fs::read(&snap).expect("read snap");
    let truncated = cli.dir.join("truncated.redb");
    std::fs::write(&truncated, &snap_bytes[..snap_bytes.len() / 2]).expect("write");
    let foreign = cli.dir.join("foreign.redb");
    std::fs::write(&foreign, "学号,姓名\n2021001,张三\n").expect("write");
    let missing = cli.dir.join("missing.redb");
    for bad in [&truncated, &foreign, &missing] {
        let (code, _, err) = cli.run(&["restore", bad.to_str().unwrap_or("")], "");
        assert_eq!(code, 1, "{}: {err}", bad.display());
        assert!(err.contains("cannot be restored"), "{err}");
        let (code, _, _) = cli.run(&["restore", "--check", bad.to_str().unwrap_or("")], "");
        assert_eq!(code, 1);
        assert!(
            std::fs::read(&cli.data).expect("read data") == data_before,
            "data file untouched after refusing {}",
            bad.display()
        );
    }

    let (code, out, err) = cli.run(&["restore", snap.to_str().unwrap_or("")], "");
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("kept as"), "{out}");
    let store = Store::open(&cli.data).expect("open restored");
    assert_eq!(store.grade_count().expect("count"), 1, "the backup's state");
    assert!(audit_actions(&store).contains(&"restore".into()));
    drop(store);
    let kept: Vec<PathBuf> = std::fs::read_dir(&cli.dir)
        .expect("dir")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().contains("data.redb.replaced-"))
        .collect();
    assert_eq!(kept.len(), 1);
    assert!(
        std::fs::read(&kept[0]).expect("read kept") == data_before,
        "the replaced file is kept unchanged"
    );
    let leftovers: Vec<PathBuf> = std::fs::read_dir(&cli.dir)
        .expect("dir")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn cli_export_writes_bom_csv_with_neutralised_cells() {
    let cli = Cli::new("cli-export");
    {
        let store = Store::open(&cli.data).expect("open");
        seed(
            &store,
            vec![student("2021001", "张三")],
            vec![
                grade("2021001", "2025-2026-1", "F1", "=1+1", "90"),
                grade("2021001", "2024-2025-1", "OLD", "旧课", "88"),
            ],
        );
    }
    let out_file = cli.dir.join("out.csv");
    let (code, _, err) = cli.run(
        &[
            "export",
            "grades",
            "--term",
            "2025-2026-1",
            "-o",
            out_file.to_str().unwrap_or(""),
        ],
        "",
    );
    assert_eq!(code, 0, "{err}");
    let bytes = std::fs::read(&out_file).expect("read");
    assert!(bytes.starts_with(b"\xEF\xBB\xBF"));
    let text = String::from_utf8_lossy(&bytes[3..]).into_owned();
    assert_eq!(
        text,
        "学号,姓名,学期,课程代码,课程名称,学分,成绩,考试性质\r\n2021001,张三,2025-2026-1,F1,'=1+1,2,90,正常考试\r\n"
    );
    let (code, out, _) = cli.run(&["export", "grades"], "");
    assert_eq!(code, 0);
    assert!(out.contains("OLD") && out.contains("F1"));
    let (code, _, err) = cli.run(&["export", "grades", "--term", "2025"], "");
    assert_eq!(code, 1);
    assert!(err.contains("--term"), "{err}");
    let (code, _, _) = cli.run(&["export"], "");
    assert_eq!(code, 2);
}

/// A pre-login cookie planted in the browser (say through a sibling domain) is never taken
/// over: the form comes with a fresh one, and a login posted with the planted value and the
/// token computed from it is refused.
#[test]
fn a_planted_pre_login_cookie_is_replaced_and_useless() {
    let s = server_with_admin();
    let planted = "ab".repeat(32);
    let mut c = s.client();
    c.cookies
        .insert("wxg_admin_pre".to_string(), planted.clone());
    let r = c.get("/admin/login");
    assert_eq!(r.status, 200);
    let fresh = r
        .set_cookies()
        .into_iter()
        .find(|v| v.starts_with("wxg_admin_pre="))
        .expect("a fresh pre-login cookie")
        .to_string();
    assert!(!fresh.contains(&planted), "{fresh}");

    // The attacker's forged form: their planted value and the token that belongs to it.
    let mut forged = s.client();
    forged
        .cookies
        .insert("wxg_admin_pre".to_string(), planted.clone());
    let token = wxgrades::http::csrf::token_for(&planted);
    let before = forged.get("/admin/login");
    assert_ne!(Client::hidden(&before.body, "csrf_token"), token);
    forged
        .cookies
        .insert("wxg_admin_pre".to_string(), planted.clone());
    let r = forged.post_form(
        "/admin/login",
        &[
            ("username", "alice"),
            ("password", PW),
            ("csrf_token", &token),
        ],
    );
    assert_eq!(r.status, 403, "{}", r.body);
}
