//! The router without sockets: constructed `Request`s against an `App` on a temporary data
//! file, checking statuses, redirects and bodies of the main routes in milliseconds.

use std::path::PathBuf;

use wxgrades::app::App;
use wxgrades::config::{self, Source};
use wxgrades::handlers::route;
use wxgrades::http::{csrf, Body, Method, Request, Response};
use wxgrades::service::import::plan::{commit, plan, ImportKind, Upload};
use wxgrades::service::session::{self, Kind};

const PUBLIC: &str = "http://wx.test";
const TOKEN: &str = "routertoken";

const ROSTER: &str = "学号,姓名,身份证后六位,班级,专业\n\
2024001,张三,12345X,计科2401,计算机科学与技术\n";
const GRADES: &str = "学号,姓名,学期,课程代码,课程名称,学分,成绩,考试性质\n\
2024001,张三,2024-2025-1,MA1001,高等数学,4,95,正常考试\n";

struct Fixture {
    app: App,
    dir: PathBuf,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn fixture() -> Fixture {
    let dir = std::env::temp_dir().join(format!(
        "wxg-router-{}-{}",
        std::process::id(),
        wxgrades::secret::random_hex::<4>()
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let toml = format!(
        "listen = \"127.0.0.1:0\"\npublic_url = \"{PUBLIC}\"\ndata = \"{}\"\n[wechat]\napp_id = \"wx0000000000000001\"\napp_secret = \"secret\"\ntoken = \"{TOKEN}\"\n[backup]\ndir = \"{}\"\n",
        dir.join("data.redb").display(),
        dir.join("backups").display(),
    );
    let cfg_path = dir.join("wxgrades.toml");
    std::fs::write(&cfg_path, toml).expect("write config");
    let cfg = config::load(Source::File(&cfg_path), &[]).expect("config");
    let app = App::new(cfg).expect("app");
    for (kind, csv) in [("roster", ROSTER), ("grades", GRADES)] {
        let up = Upload {
            kind: ImportKind::parse(kind).expect("kind"),
            file_name: "t.csv",
            bytes: csv.as_bytes(),
            replace_term: None,
        };
        let p = plan(&app.store, &app.verify_key, &up).expect("plan");
        assert!(p.errors.is_empty(), "{:?}", p.errors);
        commit(
            &app.store,
            &app.verify_key,
            &p,
            &up,
            "test",
            app.clock.now(),
            false,
            |_, _, _| Ok(0),
        )
        .expect("commit");
    }
    app.data_changed();
    Fixture { app, dir }
}

fn get(app: &App, url: &str, cookie: Option<&str>) -> Response {
    let mut req = Request::new(Method::Get, url);
    if let Some(c) = cookie {
        req.headers.push(("cookie".into(), c.into()));
    }
    route(app, &req).1
}

fn post(app: &App, url: &str, cookie: Option<&str>, form: &str) -> Response {
    let mut req = Request::new(Method::Post, url);
    req.headers.push((
        "content-type".into(),
        "application/x-www-form-urlencoded".into(),
    ));
    if let Some(c) = cookie {
        req.headers.push(("cookie".into(), c.into()));
    }
    req.body = form.as_bytes().to_vec();
    route(app, &req).1
}

fn location(r: &Response) -> &str {
    r.headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("location"))
        .map(|(_, v)| v.as_str())
        .unwrap_or("")
}

fn body(r: &Response) -> String {
    match &r.body {
        Body::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
        Body::Shared(b) => String::from_utf8_lossy(b).into_owned(),
        Body::Static(b) => String::from_utf8_lossy(b).into_owned(),
        Body::File(_) => String::new(),
    }
}

/// A signed-in student: (cookie header, session id).
fn student(app: &App, openid: &str) -> (String, String) {
    let id = session::open(app, Kind::Student, openid).expect("session");
    (format!("wxg_sid={id}"), id)
}

#[test]
fn anonymous_student_pages_go_through_sign_in() {
    let f = fixture();
    for (path, next) in [("/", "%2F"), ("/grades", "%2Fgrades"), ("/bind", "%2Fbind")] {
        let r = get(&f.app, path, None);
        assert_eq!(r.status, 302, "{path}");
        assert_eq!(
            location(&r),
            format!("/wx/oauth/start?next={next}"),
            "{path}"
        );
    }
}

#[test]
fn bind_then_grades() {
    let f = fixture();
    let (cookie, id) = student(&f.app, "o-router-1");
    let r = get(&f.app, "/", Some(&cookie));
    assert_eq!((r.status, location(&r)), (302, "/bind"));
    let r = get(&f.app, "/grades", Some(&cookie));
    assert_eq!((r.status, location(&r)), (302, "/bind"));
    let r = get(&f.app, "/bind", Some(&cookie));
    assert_eq!(r.status, 200);
    assert!(body(&r).contains("csrf_token"), "bind form without a token");

    let token = csrf::token_for(&id);
    let form =
        format!("csrf_token={token}&student_id=2024001&name=%E5%BC%A0%E4%B8%89&verify=12345X");
    let r = post(&f.app, "/bind", Some(&cookie), &form);
    assert_eq!((r.status, location(&r)), (303, "/grades"));

    let r = get(&f.app, "/grades", Some(&cookie));
    assert_eq!(r.status, 200);
    let html = body(&r);
    assert!(html.contains("高等数学") && html.contains("张三"), "{html}");
    let r = get(&f.app, "/grades?term=2030-2031-1", Some(&cookie));
    assert_eq!(r.status, 404);
}

#[test]
fn wrong_bind_values_are_refused_with_one_message() {
    let f = fixture();
    let (cookie, id) = student(&f.app, "o-router-2");
    let token = csrf::token_for(&id);
    let form = format!("csrf_token={token}&student_id=2024001&name=x&verify=000000");
    let r = post(&f.app, "/bind", Some(&cookie), &form);
    assert_eq!(r.status, 400);
    assert!(body(&r).contains("信息不匹配"));
    let incomplete = format!("csrf_token={token}&student_id=2024001");
    let r = post(&f.app, "/bind", Some(&cookie), &incomplete);
    assert_eq!(r.status, 400, "an incomplete form");
    assert!(body(&r).contains("请填写学号、姓名和验证码"));
}

#[test]
fn csrf_refusal() {
    let f = fixture();
    let (cookie, _) = student(&f.app, "o-router-3");
    let form = "csrf_token=0000&student_id=2024001&name=%E5%BC%A0%E4%B8%89&verify=12345X";
    let r = post(&f.app, "/bind", Some(&cookie), form);
    assert_eq!(r.status, 403);
    // Nothing was bound.
    let r = get(&f.app, "/grades", Some(&cookie));
    assert_eq!((r.status, location(&r)), (302, "/bind"));
}

#[test]
fn wx_verify_echoes_only_with_a_good_signature() {
    let f = fixture();
    // A timestamp inside the replay guard's window (a fixed one would be refused as stale).
    let ts = f.app.clock.now().to_string();
    let (ts, nonce) = (ts.as_str(), "abc");
    let sig = wxgrades::wechat::crypto::signature(TOKEN, ts, nonce);
    let r = get(
        &f.app,
        &format!("/wx?signature={sig}&timestamp={ts}&nonce={nonce}&echostr=hello"),
        None,
    );
    assert_eq!((r.status, body(&r).as_str()), (200, "hello"));
    let bad = "0".repeat(40);
    let r = get(
        &f.app,
        &format!("/wx?signature={bad}&timestamp={ts}&nonce={nonce}&echostr=hello"),
        None,
    );
    assert_eq!(r.status, 403);
}

#[test]
fn admin_pages_need_a_sign_in() {
    let f = fixture();
    let r = get(&f.app, "/admin/students", None);
    assert_eq!(r.status, 303);
    assert_eq!(location(&r), "/admin/login?next=%2Fadmin%2Fstudents");
    let r = get(&f.app, "/admin/login", None);
    assert_eq!(r.status, 200);
    // A forged admin cookie is no session.
    let fake = format!("wxg_admin={}", "a".repeat(64));
    let r = get(&f.app, "/admin", Some(&fake));
    assert_eq!(r.status, 303);
    // The column-mapping and presets pages too; their POSTs change nothing without a session.
    for path in ["/admin/presets", "/admin/import/0123456789ab/map"] {
        let r = get(&f.app, path, None);
        assert_eq!(r.status, 303, "{path}");
        assert!(location(&r).starts_with("/admin/login?next="), "{path}");
    }
    for path in ["/admin/presets/delete", "/admin/import/0123456789ab/map"] {
        let r = post(&f.app, path, None, "name=x");
        assert_eq!(r.status, 303, "{path}");
    }
}

#[test]
fn not_found_and_method_not_allowed() {
    let f = fixture();
    let r = get(&f.app, "/no/such/page", None);
    assert_eq!(r.status, 404);
    let r = post(&f.app, "/grades", None, "");
    assert_eq!(r.status, 404);
    let r = post(&f.app, "/logout", None, "");
    assert_eq!(r.status, 405);
    let mut req = Request::new(Method::Other, "/wx");
    req.headers.push(("content-type".into(), "text/xml".into()));
    let r = route(&f.app, &req).1;
    assert_eq!(r.status, 405);
    let r = get(&f.app, "/healthz", None);
    assert_eq!((r.status, body(&r).as_str()), (200, "ok"));
}

#[test]
fn domain_check_files_are_served_from_verify_dir_and_nothing_else() {
    let f = fixture();
    let dir = &f.app.config.verify_dir;
    std::fs::create_dir_all(dir).expect("verify_dir");
    std::fs::write(dir.join("MP_verify_Ab12.txt"), "Ab12").expect("write");
    std::fs::write(dir.join("secret.md"), "no").expect("write");
    let r = get(&f.app, "/MP_verify_Ab12.txt", None);
    assert_eq!(r.status, 200);
    assert_eq!(body(&r), "Ab12");
    assert!(r
        .headers
        .iter()
        .any(|(n, v)| n.eq_ignore_ascii_case("content-type") && v.starts_with("text/plain")));
    for path in [
        "/secret.md",
        "/MP_verify_missing.txt",
        "/..%2Fwxgrades.toml.txt",
        "/a/MP_verify_Ab12.txt",
        "/static/MP_verify_Ab12.txt",
        "/MP_verify_Ab12.txt.bak",
    ] {
        assert_eq!(get(&f.app, path, None).status, 404, "{path}");
    }
}

#[test]
fn release_and_correction_routes_need_a_sign_in() {
    let f = fixture();
    let r = get(&f.app, "/admin/releases", None);
    assert_eq!(r.status, 303);
    assert_eq!(location(&r), "/admin/login?next=%2Fadmin%2Freleases");
    for path in [
        "/admin/releases/1/publish",
        "/admin/releases/1/withdraw",
        "/admin/students/2024001/correct",
    ] {
        let r = post(&f.app, path, None, "");
        assert_eq!(r.status, 303, "{path}");
        assert_eq!(location(&r), "/admin/login", "{path}");
    }
    assert_eq!(f.app.store.grades_of("2024001").expect("grades").len(), 1);
}
