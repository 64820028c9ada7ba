//! The student pages' data features over real HTTP (issue 13): the 必修-only GPA and score
//! components, rank within class (computed after each committed import), notices on/off per
//! student (skipped when an import writes notices), and 我的数据 (privacy notice, download as
//! JSON and CSV, audited deletion, the sweep of old sign-ins).

mod support;

use support::student_data::{import_job, row, seed};
use support::{Client, TestServer};
use wxgrades::grades::ExamKind;
use wxgrades::service::import::plan::ImportKind;

const ROSTER: &str = "学号,姓名,身份证后六位,班级,专业\n\
2024001,张三,12345X,计科2401,计算机科学与技术\n\
2024002,李四,654321,计科2401,计算机科学与技术\n\
2024003,王五,111111,计科2401,计算机科学与技术\n\
2024004,赵六,222222,软工2401,软件工程\n";

const NOTICE_CONFIG: &str = "grades_template_id = \"TPL-grades-1\"\nnotice_rate_per_sec = 100";

/// HTML text with minijinja's escapes of `/`, quotes and `&` turned back.
fn unescape(html: &str) -> String {
    html.replace("&#x2f;", "/")
        .replace("&#x27;", "'")
        .replace("&quot;", "\"")
        .replace("&amp;", "&")
}

fn bound(s: &TestServer, openid: &str, sid: &str, name: &str, verify: &str) -> Client {
    let mut c = s.signed_in(openid);
    let page = c.get("/bind");
    assert_eq!(page.status, 200, "{}", page.body);
    let token = Client::hidden(&page.body, "csrf_token");
    let r = c.post_form(
        "/bind",
        &[
            ("student_id", sid),
            ("name", name),
            ("verify", verify),
            ("csrf_token", &token),
        ],
    );
    assert_eq!((r.status, r.location()), (303, "/grades"), "{}", r.body);
    c
}

#[test]
fn compulsory_gpa_and_score_components_show_on_the_grades_page() {
    let s = TestServer::start("", "");
    s.import("roster", ROSTER);
    // Without 课程性质 anywhere: no 必修 figure, no components.
    s.import(
        "grades",
        "学号,学期,课程代码,课程名称,学分,成绩\n2024002,2024-2025-1,MA1001,高等数学,4,95\n",
    );
    let mut li = bound(&s, "oLi", "2024002", "李四", "654321");
    let plain = li.get("/grades");
    assert_eq!(plain.status, 200);
    assert!(!plain.body.contains("必修绩点"), "{}", plain.body);
    assert!(!plain.body.contains("<details class=\"course-parts\""));

    // 高数 4cr 95 (4.0) 必修 with components; 英语 3cr 58 then 补考 86 (3.7) 必修课; 艺术 2cr 61
    // (1.0) 选修. 必修 GPA: (16 + 11.1) / 7 = 3.871… → 3.87. Overall: 29.1 / 9 = 3.233… → 3.23.
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
                "必修课",
                &[],
            ),
            row(
                "EN1001",
                "大学英语",
                "3",
                "86",
                ExamKind::Makeup,
                "必修课",
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
    let mut c = bound(&s, "oZhang", "2024001", "张三", "12345x");
    let r = c.get("/grades");
    assert_eq!(r.status, 200, "{}", r.body);
    let html = unescape(&r.body);
    assert!(
        html.contains(
            "<span class=\"stat-value\">3.87</span><span class=\"stat-label\">必修绩点</span>"
        ),
        "{html}"
    );
    assert!(
        html.contains(
            "<span class=\"stat-value\">3.23</span><span class=\"stat-label\">总绩点</span>"
        ),
        "{html}"
    );
    // Components: inside a <details> of 高等数学's row, label and value each; no script.
    let at = html
        .find("<details class=\"course-parts\">")
        .expect("a details element");
    let details = &html[at..at + html[at..].find("</details>").unwrap()];
    assert!(details.contains("<summary"), "{details}");
    assert!(details.contains("高等数学"), "{details}");
    for (l, v) in [("平时", "92"), ("期中", "90"), ("期末", "97")] {
        assert!(
            details.contains(&format!("<dt>{l}</dt><dd class=\"num\">{v}</dd>")),
            "{details}"
        );
    }
    assert_eq!(html.matches("<details class=\"course-parts\">").count(), 1);
    assert!(!html.contains("<script"), "{html}");
    assert!(html.contains("tag-nature\">选修</span>"), "{html}");
    assert!(
        html.contains("必修绩点只计算课程性质为“必修”的课程"),
        "{html}"
    );
}

#[test]
fn rank_within_class_is_computed_at_import_and_shows_only_the_students_own_place() {
    let s = TestServer::start("[grades]\nrank = \"class\"\n", "");
    import_job(&s, ImportKind::Roster, ROSTER, false);
    // 张三 and 李四 4.00 (tie), 王五 2.00 in 计科2401; 赵六 1.00 alone in 软工2401.
    let grades = "学号,学期,课程代码,课程名称,学分,成绩\n\
2024001,2024-2025-1,MA1001,高等数学,4,95\n\
2024002,2024-2025-1,MA1001,高等数学,4,92\n\
2024003,2024-2025-1,MA1001,高等数学,4,70\n\
2024004,2024-2025-1,MA1001,高等数学,4,60\n";
    import_job(&s, ImportKind::Grades, grades, false);
    let page = |c: &mut Client| unescape(&c.get("/grades").body);
    let mut zhang = bound(&s, "oZhang", "2024001", "张三", "12345x");
    let mut li = bound(&s, "oLi", "2024002", "李四", "654321");
    let mut wang = bound(&s, "oWang", "2024003", "王五", "111111");
    let mut zhao = bound(&s, "oZhao", "2024004", "赵六", "222222");
    let place = |html: &str| {
        let at = html.find("<p class=\"rank\">").expect("a rank line");
        html[at..at + html[at..].find("</p>").unwrap()].to_string()
    };
    let want = |p: u32, of: u32| {
        format!("班级排名 <b>第 <span class=\"num\">{p}</span> / <span class=\"num\">{of}</span> 名</b>")
    };
    assert!(place(&page(&mut zhang)).contains(&want(1, 3)));
    assert!(place(&page(&mut li)).contains(&want(1, 3)));
    let w = page(&mut wang);
    assert!(place(&w).contains(&want(3, 3)), "{w}");
    // Nothing of the others: no names, IDs or GPAs of classmates.
    for other in ["张三", "李四", "2024001", "2024002", "4.00"] {
        assert!(!w.contains(other), "王五's page shows {other}");
    }
    assert!(place(&page(&mut zhao)).contains(&want(1, 1)));

    // A roster import that moves 王五 to 软工2401 recomputes: 王五 2.00 before 赵六 1.00.
    import_job(
        &s,
        ImportKind::Roster,
        "学号,姓名,身份证后六位,班级\n2024003,王五,111111,软工2401\n",
        false,
    );
    assert!(place(&page(&mut wang)).contains(&want(1, 2)));
    assert!(place(&page(&mut zhao)).contains(&want(2, 2)));
    assert!(place(&page(&mut zhang)).contains(&want(1, 2)));
}

#[test]
fn rank_is_off_by_default() {
    let s = TestServer::start("", "");
    import_job(&s, ImportKind::Roster, ROSTER, false);
    import_job(
        &s,
        ImportKind::Grades,
        "学号,学期,课程代码,课程名称,学分,成绩\n2024001,2024-2025-1,MA1001,高等数学,4,95\n",
        false,
    );
    let mut c = bound(&s, "oZhang", "2024001", "张三", "12345x");
    let r = c.get("/grades");
    assert_eq!(r.status, 200);
    assert!(r.body.contains("高等数学"), "{}", r.body);
    assert!(!r.body.contains("排名"), "{}", r.body);
    assert_eq!(s.app.store.rank("2024001").unwrap(), None);
}

#[test]
fn a_student_who_turns_notices_off_gets_none_at_the_next_import() {
    let s = TestServer::start("", NOTICE_CONFIG);
    s.import("roster", ROSTER);
    let mut zhang = bound(&s, "oZhang", "2024001", "张三", "12345x");
    let _li = bound(&s, "oLi", "2024002", "李四", "654321");
    let page = zhang.get("/grades");
    assert!(page.body.contains("已开启"), "{}", page.body);
    let token = Client::hidden(&page.body, "csrf_token");
    assert_eq!(Client::hidden(&page.body, "notices"), "off");

    // Without the CSRF token: refused, nothing changed.
    let r = zhang.post_form("/grades/notices", &[("notices", "off")]);
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(s.app.store.notices_on("oZhang").unwrap());
    // Another browser's token (李四's session) does not work for 张三's session either.
    let r = zhang.post_form(
        "/grades/notices",
        &[("notices", "off"), ("csrf_token", "0123456789abcdef")],
    );
    assert_eq!(r.status, 403);
    assert!(s.app.store.notices_on("oZhang").unwrap());

    let r = zhang.post_form(
        "/grades/notices",
        &[("notices", "off"), ("csrf_token", &token)],
    );
    assert_eq!((r.status, r.location()), (303, "/grades"), "{}", r.body);
    let page = zhang.get("/grades");
    assert!(page.body.contains("已关闭"), "{}", page.body);
    assert!(page.body.contains("开启通知"), "{}", page.body);
    assert_eq!(Client::hidden(&page.body, "notices"), "on");

    let grades = "学号,学期,课程代码,课程名称,学分,成绩\n\
2024001,2024-2025-1,MA1001,高等数学,4,95\n\
2024002,2024-2025-1,MA1001,高等数学,4,92\n";
    let record = import_job(&s, ImportKind::Grades, grades, true);
    assert_eq!(record.notices, 1);
    let openids: Vec<String> = s
        .app
        .store
        .notices()
        .unwrap()
        .into_iter()
        .map(|n| n.openid)
        .collect();
    assert_eq!(openids, vec!["oLi".to_string()]);

    // Back on: the next import notifies both.
    let r = zhang.post_form(
        "/grades/notices",
        &[("notices", "on"), ("csrf_token", &token)],
    );
    assert_eq!(r.status, 303);
    let again = "学号,学期,课程代码,课程名称,学分,成绩\n\
2024001,2024-2025-2,PH1001,大学物理,2,80\n\
2024002,2024-2025-2,PH1001,大学物理,2,81\n";
    assert_eq!(import_job(&s, ImportKind::Grades, again, true).notices, 2);
    // A value other than on/off is a clear 400.
    let r = zhang.post_form(
        "/grades/notices",
        &[("notices", "maybe"), ("csrf_token", &token)],
    );
    assert_eq!(r.status, 400);
    assert!(s.app.store.notices_on("oZhang").unwrap());
}

#[test]
fn the_bind_page_carries_the_privacy_notice_from_the_config_or_the_default() {
    let s = TestServer::start("", "");
    let mut c = s.signed_in("oNew");
    let r = c.get("/bind");
    assert_eq!(r.status, 200);
    assert!(r.body.contains("个人信息说明"), "{}", r.body);
    assert!(r.body.contains("登录记录保存 180 天"), "{}", r.body);
    assert!(r.body.contains("学院教务老师或学校教务处"), "{}", r.body);
    assert!(!r.body.contains('您'));

    let s = TestServer::start(
        "[privacy]\nnotice = \"本校只保存绑定关系。\"\ncontact = \"教务处 010-12345678\"\nkeep_signins_days = 30\n",
        "",
    );
    let mut c = s.signed_in("oNew");
    let r = c.get("/bind");
    assert!(r.body.contains("本校只保存绑定关系。"), "{}", r.body);
    assert!(r.body.contains("教务处 010-12345678"), "{}", r.body);
    assert!(!r.body.contains("登录记录保存 180 天"), "{}", r.body);
}

#[test]
fn my_data_downloads_everything_held_and_deletes_binding_and_wechat_data() {
    let s = TestServer::start("", "");
    s.import("roster", ROSTER);
    s.import(
        "grades",
        "学号,学期,课程代码,课程名称,学分,成绩\n2024001,2024-2025-1,MA1001,高等数学,4,95\n2024001,2024-2025-1,EN1001,大学英语,3,80\n",
    );
    let mut c = bound(&s, "oZhang", "2024001", "张三", "12345x");
    let me = unescape(&c.get("/me").body);
    assert!(me.contains("href=\"/me/data\""), "{me}");
    assert!(unescape(&c.get("/grades").body).contains("href=\"/me/data\""));

    // A grade notice sent to this WeChat, and one to another student's.
    let notice = |openid: &str, sid: &str| wxgrades::store::notices::NewNotice {
        openid: openid.into(),
        student_id: sid.into(),
        name: String::new(),
        terms: vec!["2024-2025-1".into()],
        courses: vec!["高等数学".into()],
        import_id: 1,
    };
    s.app
        .store
        .enqueue_notices(&[notice("oZhang", "2024001"), notice("oLi", "2024002")])
        .unwrap();
    let page = c.get("/me/data");
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("2024001"), "{}", page.body);
    assert!(page.body.contains("我确认删除"));
    assert!(!page.body.contains('您'));

    let j = c.get("/me/data.json");
    assert_eq!(j.status, 200);
    assert!(j
        .header("content-type")
        .unwrap_or("")
        .starts_with("application/json"));
    assert!(j
        .header("content-disposition")
        .unwrap_or("")
        .contains("attachment"));
    let v: serde_json::Value = serde_json::from_str(&j.body).expect("JSON");
    assert_eq!(v["绑定"]["学号"], "2024001");
    assert_eq!(v["微信"]["openid"], "oZhang");
    assert_eq!(v["名单信息"]["姓名"], "张三");
    assert_eq!(v["成绩"].as_array().unwrap().len(), 2);
    assert!(!v["登录记录"].as_array().unwrap().is_empty());
    assert_eq!(v["绑定记录"][0]["操作"], "绑定");
    assert_eq!(v["成绩通知记录"].as_array().unwrap().len(), 1);
    assert_eq!(v["成绩通知记录"][0]["课程"][0], "高等数学");
    assert!(
        !j.body.contains("12345"),
        "the verification value never leaves: {}",
        j.body
    );

    let csv = c.get("/me/data.csv");
    assert_eq!(csv.status, 200);
    assert!(csv
        .header("content-type")
        .unwrap_or("")
        .starts_with("text/csv"));
    assert!(
        csv.body.starts_with("\u{feff}类别,时间,项目,内容\r\n"),
        "{}",
        csv.body
    );
    assert!(csv.body.contains("绑定,"), "{}", csv.body);
    assert!(
        csv.body.contains("高等数学（正常考试）,95；4 学分"),
        "{}",
        csv.body
    );
    assert!(csv.body.contains("登录记录,"), "{}", csv.body);

    // Delete: CSRF and the confirmation are required; refused requests change nothing.
    let token = Client::hidden(&page.body, "csrf_token");
    let r = c.post_form("/me/data/delete", &[("confirm", "yes")]);
    assert_eq!(r.status, 403);
    let r = c.post_form("/me/data/delete", &[("csrf_token", &token)]);
    assert_eq!(r.status, 400);
    assert!(r.body.contains("什么都没有删除"), "{}", r.body);
    assert!(s.app.store.binding("oZhang").unwrap().is_some());

    let r = c.post_form(
        "/me/data/delete",
        &[("csrf_token", &token), ("confirm", "yes")],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("已删除你的绑定和微信数据"), "{}", r.body);
    let store = &s.app.store;
    assert!(store.binding("oZhang").unwrap().is_none());
    assert!(store.bound_openid("2024001").unwrap().is_none());
    assert!(store.wx_user("oZhang").unwrap().is_none());
    assert!(store.signins("oZhang", 10).unwrap().is_empty());
    let notices = store.notices().unwrap();
    assert_eq!(notices.len(), 1, "only the other student's notice is left");
    assert_eq!(notices[0].openid, "oLi");
    // The grades and the roster entry stay: they are the school's.
    assert_eq!(store.grades_of("2024001").unwrap().len(), 2);
    assert!(store.student("2024001").unwrap().is_some());
    // Audited, with the student ID and no more of the openid than its start.
    let audit = store.audit_events(0, 10).unwrap();
    let ev = audit
        .iter()
        .map(|(_, e)| e)
        .find(|e| e.detail.contains("学生本人删除"))
        .expect("an audit event");
    assert!(ev.detail.contains("2024001"), "{}", ev.detail);
    assert_eq!(ev.actor, "student");
    // The browser is signed out: its old session no longer opens the grades.
    let r = c.get("/grades");
    assert_eq!(r.status, 302, "{}", r.body);
    assert!(
        r.location().starts_with("/wx/oauth/start"),
        "{}",
        r.location()
    );
}

#[test]
fn the_housekeeping_sweep_drops_sign_ins_past_keep_signins_days() {
    let s = TestServer::start("[privacy]\nkeep_signins_days = 2\n", "");
    let _old = s.signed_in("oOld");
    assert_eq!(s.app.store.signins("oOld", 10).unwrap().len(), 1);
    s.app.clock.advance(86_400);
    let _new = s.signed_in("oNew");
    wxgrades::service::session::purge(&s.app);
    assert_eq!(
        s.app.store.signins("oOld", 10).unwrap().len(),
        1,
        "1 day old: kept"
    );
    s.app.clock.advance(86_400 + 60);
    wxgrades::service::session::purge(&s.app);
    assert!(
        s.app.store.signins("oOld", 10).unwrap().is_empty(),
        "2 days old: dropped"
    );
    assert_eq!(
        s.app.store.signins("oNew", 10).unwrap().len(),
        1,
        "1 day old: kept"
    );
}

#[test]
fn the_command_line_import_recomputes_ranks() {
    let dir = support::temp_dir("cli-rank");
    let config = dir.join("wxgrades.toml");
    std::fs::write(
        &config,
        format!(
            "public_url = \"http://127.0.0.1:18080\"\ndata = \"{}\"\n[grades]\nrank = \"class\"\n\
             [wechat]\napp_id = \"{}\"\napp_secret = \"{}\"\ntoken = \"testtoken\"\n",
            dir.join("data.redb").display(),
            support::APP_ID,
            support::APP_SECRET,
        ),
    )
    .unwrap();
    let roster = dir.join("roster.csv");
    std::fs::write(&roster, ROSTER).unwrap();
    let grades = dir.join("grades.csv");
    std::fs::write(
        &grades,
        "学号,学期,课程代码,课程名称,学分,成绩\n\
2024001,2024-2025-1,MA1001,高等数学,4,70\n\
2024002,2024-2025-1,MA1001,高等数学,4,95\n",
    )
    .unwrap();
    for (kind, file) in [("roster", &roster), ("grades", &grades)] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_wxgrades"))
            .args(["import", kind])
            .arg(file)
            .arg("--config")
            .arg(&config)
            .env_remove("WXGRADES_CONFIG")
            .output()
            .expect("run wxgrades");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        if kind == "grades" {
            let said = String::from_utf8_lossy(&out.stdout);
            assert!(
                said.contains("ranks recomputed: 2 students ranked"),
                "{said}"
            );
        }
    }
    let store = wxgrades::store::Store::open(&dir.join("data.redb")).unwrap();
    let place = |sid: &str| store.rank(sid).unwrap().map(|r| (r.place, r.of));
    assert_eq!(place("2024002"), Some((1, 2)));
    assert_eq!(place("2024001"), Some((2, 2)));
    assert_eq!(place("2024003"), None, "no grades, no place");
}

#[test]
fn the_housekeeping_sweep_deletes_log_files_past_keep_logs_days() {
    let logs = support::temp_dir("logs");
    let log_file = logs.join("wxgrades.log");
    let s = TestServer::start(
        &format!(
            "log_file = \"{}\"\n[privacy]\nkeep_logs_days = 2\n",
            log_file.display()
        ),
        "",
    );
    let day = |days_ago: i64| wxgrades::clock::china_date(s.app.clock.now() - days_ago * 86_400);
    let dated = |days_ago: i64| logs.join(format!("wxgrades.log.{}", day(days_ago)));
    for f in [log_file.clone(), dated(1), dated(4), logs.join("keep.txt")] {
        std::fs::write(&f, "x\n").expect("write");
    }
    let foreign = logs.join(format!("wxgrades.log.{}.gz", day(4)));
    std::fs::write(&foreign, "x\n").expect("write");
    wxgrades::service::session::purge(&s.app);
    assert!(!dated(4).exists(), "4 days old: deleted");
    assert!(dated(1).exists(), "yesterday: kept");
    assert!(log_file.exists() && foreign.exists() && logs.join("keep.txt").exists());
    let yesterday = dated(1);
    s.app.clock.advance(2 * 86_400);
    wxgrades::service::session::purge(&s.app);
    assert!(!yesterday.exists(), "3 days old now: deleted");
    assert!(log_file.exists() && foreign.exists() && logs.join("keep.txt").exists());
}
