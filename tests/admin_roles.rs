//! Staff roles over real HTTP: every admin route tried with each role, GET and POST (a table of
//! routes → expected status per role, checked against the routes' declared roles and against
//! the route labels in the handlers' source, so a new route without a declared role or a row
//! here fails this test); what each role's pages show; the 403 page; audit lines naming the
//! role; the accounts page's role selector; and the course statistics (median, standard
//! deviation, excellent rate, teaching classes, unusual pass rates, CSV).

mod support;

use support::{Client, Resp, TestServer};
use wxgrades::grades::{Credit, ExamKind, GradeRecord, Score, Term};
use wxgrades::handlers::admin_roles::{least_role, ROUTE_ROLES};
use wxgrades::http::csrf;
use wxgrades::service::admin::accounts::{self, Role};
use wxgrades::service::session::{self, Kind};
use wxgrades::store::grades::{grade_key, grade_value, ImportBatch, ImportRecord};
use wxgrades::store::students::Student;
use wxgrades::store::Store;

const PW: &str = "correct-horse-9";
const TERM: &str = "2025-2026-1";

fn grade(sid: &str, code: &str, name: &str, score: &str, class: Option<&str>) -> (String, String) {
    let mut r = GradeRecord {
        student_id: sid.into(),
        term: Term::parse(TERM).expect("term"),
        course_code: code.into(),
        course_name: name.into(),
        credit: Credit::parse("2").expect("credit"),
        score: Score::parse(score).expect("score"),
        kind: ExamKind::Normal,
        name: None,
        course: Default::default(),
    };
    r.course.class_group = class.map(str::to_string);
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

/// Ten students; course MA1 in two teaching classes and one row without (scores below), and
/// five more courses so the term has a median pass rate (95 %): PE1 (all 优秀), CS1 and EN1
/// (all pass), PH1 (4 of 10 pass: below 60 %), CH1 (7 of 10: 25 points below the median).
fn seed(store: &Store) {
    let ids: Vec<String> = (1..=10).map(|i| format!("20250{i:02}")).collect();
    let students = ids
        .iter()
        .enumerate()
        .map(|(i, id)| student(id, &format!("学生{i}")))
        .collect();
    // MA1: class 01 has 95, 85, 75, 65, 55; class 02 has 100, 90, 80, 70; one without a class.
    let ma = [
        ("95", Some("高数-01班")),
        ("85", Some("高数-01班")),
        ("75", Some("高数-01班")),
        ("65", Some("高数-01班")),
        ("55", Some("高数-01班")),
        ("100", Some("高数-02班")),
        ("90", Some("高数-02班")),
        ("80", Some("高数-02班")),
        ("70", Some("高数-02班")),
        ("60", None),
    ];
    let mut grades = Vec::new();
    for (id, (score, class)) in ids.iter().zip(ma) {
        grades.push(grade(id, "MA1", "高等数学", score, class));
    }
    for (i, id) in ids.iter().enumerate() {
        grades.push(grade(id, "PE1", "体育", "优秀", None));
        grades.push(grade(id, "CS1", "程序设计", "88", None));
        grades.push(grade(id, "EN1", "英语", "78", None));
        grades.push(grade(
            id,
            "PH1",
            "物理",
            if i < 4 { "70" } else { "40" },
            None,
        ));
        grades.push(grade(
            id,
            "CH1",
            "化学",
            if i < 7 { "66" } else { "50" },
            None,
        ));
    }
    let batch = ImportBatch {
        students,
        grade_upserts: grades,
        ..Default::default()
    };
    let record = ImportRecord {
        by: "test".into(),
        kind: "grades".into(),
        file_name: "seed.csv".into(),
        result: "committed".into(),
        ..Default::default()
    };
    let generation = store.generation().expect("generation");
    store
        .apply_import(&batch, record, generation, |_, _| Ok(0))
        .expect("import")
        .expect("not stale");
}

struct Staff {
    s: TestServer,
}

/// A signed-in client of account `name`, and its CSRF token.
fn signed_in(s: &TestServer, name: &str) -> (Client, String) {
    let id = session::open(&s.app, Kind::Admin, name).expect("session");
    let mut c = s.client();
    c.cookies.insert("wxg_admin".into(), id.clone());
    (c, csrf::token_for(&id))
}

fn server() -> Staff {
    let s = TestServer::start("", "");
    let now = s.app.clock.now();
    accounts::add(&s.app.store, "boss", PW, now).expect("admin");
    accounts::add_with_role(&s.app.store, "reg", PW, Role::Registrar, now).expect("registrar");
    accounts::add_with_role(&s.app.store, "view", PW, Role::Viewer, now).expect("viewer");
    seed(&s.app.store);
    s.app.data_changed();
    Staff { s }
}

const ROLES: [(&str, Role); 3] = [
    ("boss", Role::Admin),
    ("reg", Role::Registrar),
    ("view", Role::Viewer),
];

#[derive(Clone, Copy, PartialEq)]
enum M {
    Get,
    Post,
}

/// One admin route as tried here: method, path, its label, and the status for (admin,
/// registrar, viewer).
struct Row {
    method: M,
    path: &'static str,
    label: &'static str,
    expect: [u16; 3],
}

const fn row(method: M, path: &'static str, label: &'static str, expect: [u16; 3]) -> Row {
    Row {
        method,
        path,
        label,
        expect,
    }
}

/// Every admin route but login and logout (tried last, on their own sessions).
const TABLE: &[Row] = &[
    row(M::Get, "/admin", "admin_dashboard", [200, 200, 200]),
    row(M::Get, "/admin/students", "admin_students", [200, 200, 200]),
    row(
        M::Get,
        "/admin/students/2025001",
        "admin_student",
        [200, 200, 200],
    ),
    row(M::Get, "/admin/courses", "admin_courses", [200, 200, 200]),
    row(
        M::Get,
        "/admin/courses.csv",
        "admin_courses_csv",
        [200, 200, 200],
    ),
    row(
        M::Get,
        "/admin/courses/2025-2026-1/MA1",
        "admin_course",
        [200, 200, 200],
    ),
    row(
        M::Get,
        "/admin/no-such-page",
        "admin_not_found",
        [404, 404, 404],
    ),
    row(
        M::Post,
        "/admin/students/2025001/unbind",
        "admin_unbind",
        [303, 303, 403],
    ),
    row(M::Get, "/admin/export.csv", "admin_export", [200, 200, 403]),
    row(M::Get, "/admin/import", "admin_import", [200, 200, 403]),
    // Not a multipart body: the upload form again, with its message.
    row(M::Post, "/admin/import", "admin_import", [400, 400, 403]),
    row(
        M::Get,
        "/admin/import/nojob",
        "admin_import_job",
        [404, 404, 403],
    ),
    row(
        M::Post,
        "/admin/import/nojob/commit",
        "admin_import_commit",
        [404, 404, 403],
    ),
    row(
        M::Get,
        "/admin/import/nojob/errors.csv",
        "admin_import_errors",
        [404, 404, 403],
    ),
    row(M::Get, "/admin/imports", "admin_imports", [200, 200, 403]),
    row(
        M::Get,
        "/admin/import/nojob/map",
        "admin_import_map",
        [404, 404, 403],
    ),
    row(
        M::Post,
        "/admin/import/nojob/map",
        "admin_import_map",
        [404, 404, 403],
    ),
    row(M::Get, "/admin/presets", "admin_presets", [200, 200, 403]),
    row(M::Get, "/admin/releases", "admin_releases", [200, 200, 403]),
    row(
        M::Post,
        "/admin/releases/999/publish",
        "admin_release_publish",
        [404, 404, 403],
    ),
    row(
        M::Post,
        "/admin/releases/999/withdraw",
        "admin_release_withdraw",
        [404, 404, 403],
    ),
    row(
        M::Post,
        "/admin/students/2025001/correct",
        "admin_correct",
        [400, 400, 403],
    ),
    row(
        M::Post,
        "/admin/presets/delete",
        "admin_presets_delete",
        [404, 404, 403],
    ),
    row(M::Get, "/admin/accounts", "admin_accounts", [200, 403, 403]),
    row(
        M::Post,
        "/admin/accounts/view/role",
        "admin_account_role",
        [303, 403, 403],
    ),
    row(M::Get, "/admin/backup", "admin_backup", [200, 403, 403]),
];

fn try_row(c: &mut Client, token: &str, r: &Row) -> Resp {
    match r.method {
        M::Get => c.get(r.path),
        M::Post => {
            let mut fields = vec![("csrf_token", token)];
            if r.label == "admin_account_role" {
                fields.push(("role", "viewer"));
            }
            c.post_form(r.path, &fields)
        }
    }
}

#[test]
fn every_admin_route_with_each_role() {
    let Staff { s } = server();
    let mut problems = Vec::new();
    for (i, (name, role)) in ROLES.iter().enumerate() {
        let (mut c, token) = signed_in(&s, name);
        for r in TABLE {
            // The table agrees with the declaration: allowed ⇔ not 403.
            let allowed = *role >= least_role(r.label);
            if allowed == (r.expect[i] == 403) {
                problems.push(format!(
                    "{} {}: the table says {} for {name}, the route's declared role is {}",
                    if r.method == M::Get { "GET" } else { "POST" },
                    r.path,
                    r.expect[i],
                    least_role(r.label)
                ));
            }
            let resp = try_row(&mut c, &token, r);
            if resp.status != r.expect[i] {
                problems.push(format!(
                    "{} {} as {name}: {} (expected {})",
                    if r.method == M::Get { "GET" } else { "POST" },
                    r.path,
                    resp.status,
                    r.expect[i]
                ));
            }
            if resp.status == 403 {
                // The admin error page, not the student one.
                assert!(
                    resp.body.contains("/static/admin.css") && resp.body.contains("无权访问"),
                    "{} as {name}: {}",
                    r.path,
                    resp.body
                );
                assert!(
                    resp.body.contains(role.label()),
                    "names the role: {}",
                    resp.body
                );
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));

    // Logout: every role, POST only.
    for (name, _) in ROLES {
        let (mut c, token) = signed_in(&s, name);
        let r = c.post_form("/admin/logout", &[("csrf_token", &token)]);
        assert_eq!((r.status, r.location()), (303, "/admin/login"), "{name}");
    }
}

/// Every route label in the handlers is declared (or is the sign-in itself), every declared
/// label is tried above, and each is declared once.
#[test]
fn every_route_label_is_declared_and_tried() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/handlers");
    let mut labels = std::collections::BTreeSet::new();
    for entry in std::fs::read_dir(&dir).expect("src/handlers") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|e| e != "rs") || path.ends_with("admin_roles.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("read");
        for (i, _) in text.match_indices("\"admin_") {
            let rest = &text[i + 1..];
            let end = rest.find('"').expect("closing quote");
            labels.insert(rest[..end].to_string());
        }
    }
    assert!(
        labels.contains("admin_dashboard"),
        "scan found labels: {labels:?}"
    );
    // Served before any session check: the sign-in itself, and the 413 page nginx fetches.
    let sign_in = ["admin_login", "admin_signin", "admin_too_large"];
    let declared: Vec<&str> = ROUTE_ROLES.iter().map(|(l, _)| *l).collect();
    for l in &labels {
        assert!(
            sign_in.contains(&l.as_str()) || declared.contains(&l.as_str()),
            "route {l} has no declared role: add one line to ROUTE_ROLES in src/handlers/admin_roles.rs \
             and a row to TABLE in tests/admin_roles.rs"
        );
    }
    for l in &declared {
        assert!(
            *l == "admin_logout" || TABLE.iter().any(|r| r.label == *l),
            "{l} is declared but no row of TABLE tries it"
        );
        assert!(
            labels.contains(*l),
            "{l} is declared but no handler uses it"
        );
    }
}

#[test]
fn pages_show_only_what_the_role_may_do() {
    let Staff { s } = server();
    let (mut v, _) = signed_in(&s, "view");
    let page = v.get("/admin");
    assert_eq!(page.status, 200);
    assert!(page.body.contains("（只读）"), "the role is shown");
    assert!(
        !page.body.contains("href=\"/admin/import\""),
        "{}",
        page.body
    );
    assert!(!page.body.contains("href=\"/admin/accounts\""));
    assert!(!page.body.contains("/admin/backup") && !page.body.contains("/admin/export.csv"));
    assert!(
        !page.body.contains("操作日志"),
        "the audit log is the admin's"
    );
    let page = v.get("/admin/students/2025001");
    assert!(page.body.contains("2025001") && !page.body.contains("unbind"));
    let page = v.get("/admin/courses");
    // (Links from the context are escaped: `/` is `&#x2f;`.)
    assert!(page.body.contains("courses.csv") && !page.body.contains("export.csv"));

    let (mut r, _) = signed_in(&s, "reg");
    let page = r.get("/admin");
    assert!(
        page.body.contains("href=\"/admin/import\"") && page.body.contains("/admin/export.csv")
    );
    assert!(
        !page.body.contains("href=\"/admin/accounts\"") && !page.body.contains("/admin/backup")
    );
    assert!(r.get("/admin/courses").body.contains("export.csv"));
    // Bind 2025001 so the unbind form would show: the registrar sees it, the viewer does not.
    s.app
        .store
        .bind("oStudentRoles", "2025001", s.app.clock.now())
        .expect("bind");
    assert!(r.get("/admin/students/2025001").body.contains("unbind"));
    assert!(!v.get("/admin/students/2025001").body.contains("unbind"));

    let (mut a, _) = signed_in(&s, "boss");
    let page = a.get("/admin");
    assert!(page.body.contains("href=\"/admin/accounts\"") && page.body.contains("/admin/backup"));
    assert!(page.body.contains("操作日志"));
}

#[test]
fn audit_names_the_role_and_refusals_are_recorded() {
    let Staff { s } = server();
    let (mut v, vt) = signed_in(&s, "view");
    let r = v.post_form("/admin/students/2025001/unbind", &[("csrf_token", &vt)]);
    assert_eq!(r.status, 403);
    let (mut reg, rt) = signed_in(&s, "reg");
    let r = reg.get("/admin/export.csv");
    assert_eq!(r.status, 200);
    let r = reg.post_form(
        "/admin/accounts/view/role",
        &[("csrf_token", &rt), ("role", "admin")],
    );
    assert_eq!(r.status, 403);
    assert_eq!(
        s.app
            .store
            .admin_account("view")
            .expect("read")
            .expect("view")
            .role,
        Role::Viewer,
        "nothing changed"
    );
    let ev: Vec<_> = s
        .app
        .store
        .audit_events(0, 50)
        .expect("audit")
        .into_iter()
        .map(|(_, e)| e)
        .collect();
    let has = |actor: &str, action: &str| ev.iter().any(|e| e.actor == actor && e.action == action);
    assert!(has("admin:view(viewer)", "denied"), "{ev:?}");
    assert!(has("admin:reg(registrar)", "export"), "{ev:?}");
    assert!(has("admin:reg(registrar)", "denied"), "{ev:?}");
    let denied = ev
        .iter()
        .find(|e| e.actor == "admin:view(viewer)")
        .expect("denied line");
    assert!(
        denied.detail.contains("/admin/students/2025001/unbind"),
        "{denied:?}"
    );
    // The admin reads them on the dashboard.
    let (mut a, _) = signed_in(&s, "boss");
    let page = a.get("/admin");
    assert!(
        page.body.contains("越权被拒") && page.body.contains("view(viewer)"),
        "{}",
        page.body
    );
}

#[test]
fn the_accounts_page_changes_roles_at_once_and_keeps_an_admin() {
    let Staff { s } = server();
    let (mut a, at) = signed_in(&s, "boss");
    let page = a.get("/admin/accounts");
    assert_eq!(page.status, 200);
    for name in ["boss", "reg", "view"] {
        assert!(
            page.body.contains(&format!("{name}&#x2f;role")),
            "{name}: {}",
            page.body
        );
    }
    assert!(page.body.contains("教务员"));
    assert_eq!(page.body.matches("<select name=\"role\"").count(), 3);

    // reg may import; after becoming a viewer, the next request may not.
    let (mut reg, _) = signed_in(&s, "reg");
    assert_eq!(reg.get("/admin/import").status, 200);
    let r = a.post_form(
        "/admin/accounts/reg/role",
        &[("csrf_token", &at), ("role", "viewer")],
    );
    assert_eq!((r.status, r.location()), (303, "/admin/accounts"));
    assert_eq!(reg.get("/admin/import").status, 403);
    assert!(s
        .app
        .store
        .audit_events(0, 5)
        .expect("audit")
        .iter()
        .any(|(_, e)| e.action == "role_changed" && e.detail.contains("reg：registrar → viewer")));

    // A bad role, a missing account, no CSRF token, the last admin.
    let r = a.post_form(
        "/admin/accounts/reg/role",
        &[("csrf_token", &at), ("role", "root")],
    );
    assert_eq!(r.status, 400);
    assert!(r.body.contains("角色“root”无效"), "{}", r.body);
    let r = a.post_form(
        "/admin/accounts/nobody/role",
        &[("csrf_token", &at), ("role", "viewer")],
    );
    assert_eq!(r.status, 404);
    let r = a.post_form("/admin/accounts/reg/role", &[("role", "admin")]);
    assert_eq!(r.status, 403);
    let r = a.post_form(
        "/admin/accounts/boss/role",
        &[("csrf_token", &at), ("role", "viewer")],
    );
    assert_eq!(r.status, 409);
    assert!(r.body.contains("最后一个管理员"), "{}", r.body);
    assert_eq!(
        s.app
            .store
            .admin_account("boss")
            .expect("read")
            .expect("boss")
            .role,
        Role::Admin
    );
    assert_eq!(
        s.app
            .store
            .admin_account("reg")
            .expect("read")
            .expect("reg")
            .role,
        Role::Viewer
    );
}

#[test]
fn course_statistics_per_course_and_teaching_class() {
    let Staff { s } = server();
    let (mut v, _) = signed_in(&s, "view");
    let page = v.get("/admin/courses?term=2025-2026-1&sort=code&dir=asc");
    assert_eq!(page.status, 200);
    let b = &page.body;
    // MA1: 95 85 75 65 55 100 90 80 70 60 → mean 77.5, median 77.5, sd 14.4, pass 9/10,
    // excellent 3/10 (95, 100, 90).
    let ma = b.find("高等数学").expect("MA1 listed");
    let ma_row = &b[ma..ma + b[ma..].find("</tr>").expect("row end")];
    for want in [">10<", ">77.5<", ">14.4<", ">90.0%<", ">30.0%<"] {
        assert!(ma_row.contains(want), "{want} in {ma_row}");
    }
    // PH1 (40 %) is low; CH1 (70 %) is far below the term's median (95 %); PE1 all 优秀.
    let row_of = |name: &str| {
        let i = b.find(name).unwrap_or_else(|| panic!("{name} listed"));
        b[i..i + b[i..].find("</tr>").expect("row end")].to_string()
    };
    assert!(
        row_of("物理").contains("通过率低于 60.0%"),
        "{}",
        row_of("物理")
    );
    assert!(
        row_of("化学").contains("中位数（95.0%）低 25.0 个百分点"),
        "{}",
        row_of("化学")
    );
    assert!(!row_of("程序设计").contains("通过率低于"));
    assert!(
        row_of("体育").contains(">100.0%<"),
        "excellent by level: {}",
        row_of("体育")
    );
    let only = v.get("/admin/courses?term=2025-2026-1&unusual=1");
    assert!(only.body.contains("物理") && only.body.contains("化学"));
    assert!(!only.body.contains("高等数学"), "only the unusual ones");

    let page = v.get("/admin/courses/2025-2026-1/MA1");
    assert_eq!(page.status, 200);
    for want in [
        "高数-01班",
        "高数-02班",
        "（未注明教学班）",
        "中位数",
        "标准差",
        "优秀率",
    ] {
        assert!(page.body.contains(want), "{want}");
    }
    // Class 01: 95 85 75 65 55 → mean 75.0, median 75.0, pass 80.0 %.
    let c1 = page.body.find("高数-01班").expect("class 01");
    let c1_row = &page.body[c1..c1 + page.body[c1..].find("</tr>").expect("end")];
    assert!(
        c1_row.contains(">75.0<") && c1_row.contains(">80.0%<"),
        "{c1_row}"
    );

    let csv = v.get("/admin/courses.csv?term=2025-2026-1&sort=code&dir=asc");
    assert_eq!(csv.status, 200);
    assert!(csv
        .header("content-type")
        .unwrap_or("")
        .starts_with("text/csv"));
    assert!(csv
        .header("content-disposition")
        .unwrap_or("")
        .contains("course-stats-2025-2026-1.csv"));
    let text = csv.body.trim_start_matches('\u{feff}');
    let lines: Vec<&str> = text.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert!(
        lines[0].starts_with("学期,课程代码,课程名称,教学班,人次"),
        "{}",
        lines[0]
    );
    assert!(lines.contains(
        &"2025-2026-1,MA1,高等数学,（全部）,10,10,77.5,77.5,14.4,9,90.0,3,30.0,0,0,0,0,0,1,2,2,2,3,"
    ), "{text}");
    assert!(lines.contains(
        &"2025-2026-1,MA1,高等数学,高数-01班,5,5,75.0,75.0,14.1,4,80.0,1,20.0,0,0,0,0,0,1,1,1,1,1,"
    ), "{text}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains(",PH1,") && l.ends_with("通过率低于 60.0%")),
        "{text}"
    );
    // 6 courses + MA1's 3 classes, no student ID or name.
    assert_eq!(lines.len(), 1 + 6 + 3, "{text}");
    assert!(!text.contains("2025001") && !text.contains("学生1"));
    // A bad term is refused, nothing written.
    assert_eq!(v.get("/admin/courses.csv?term=2025").status, 400);
}
