//! The admin pages under `/admin`: login and logout, the dashboard, students (search, detail,
//! unbind), courses (statistics and histograms), the CSV export and the backup download.
//! Every page but the login takes an `Admin` (and every POST an `AdminPost`), which only a
//! verified session (and a checked CSRF token) can produce. Errors show an admin-styled page.
//!
//! Over 600 lines because every admin page's view model is shaped here; the next page added
//! should split the file by area (students, courses, export) rather than grow it.

use std::io::{Seek, SeekFrom};

use minijinja::{context, Value};
use serde::Serialize;

use super::session::{self as web_session, AdminPost};
use super::Handled;
use crate::app::App;
use crate::error::AppError;
use crate::grades::{transcript, Term};
use crate::http::form::{percent_decode, percent_encode};
use crate::http::{Body, Method, Request, Response};
use crate::service::admin::audit::{self, Action};
use crate::service::admin::auth::{self, Admin, Login};
use crate::service::admin::{self as admin_svc, backup, export, local_datetime, overview, stats};
use crate::service::ratelimit::clock_time;
use crate::service::session::Kind;
use crate::service::students;

/// Rows per page of long lists.
pub(crate) const PAGE: usize = 50;

/// Route a request under `/admin` (the caller matched the prefix). Errors go back to
/// `handlers::route`, which turns them into the admin error page.
pub fn route(app: &App, req: &Request) -> (&'static str, Handled) {
    dispatch(app, req)
}

fn dispatch(app: &App, req: &Request) -> (&'static str, Handled) {
    let get = matches!(req.method, Method::Get | Method::Head);
    let post = req.method == Method::Post;
    let rest = req.path.strip_prefix("/admin").unwrap_or("");
    let segs: Vec<&str> = match rest {
        "" | "/" => Vec::new(),
        r => r[1..].split('/').collect(),
    };
    if segs.as_slice() == ["login"] {
        return match (get, post) {
            (true, _) => ("admin_login", login_page(app, req)),
            (_, true) => ("admin_login", login_submit(app, req)),
            _ => ("method", Err(AppError::NotFound)),
        };
    }
    let admin = match web_session::admin(app, req) {
        Ok(Some(a)) => a,
        Ok(None) => return ("admin_signin", Ok(to_login(req))),
        Err(e) => return ("admin", Err(e)),
    };
    match segs.as_slice() {
        [] if get => ("admin_dashboard", dashboard(app, &admin)),
        ["logout"] if post => ("admin_logout", posted(app, req, admin, logout)),
        ["students"] if get => ("admin_students", students(app, &admin, req)),
        ["students", id] if get => ("admin_student", student(app, &admin, &percent_decode(id))),
        ["students", id, "unbind"] if post => (
            "admin_unbind",
            posted(app, req, admin, |app, req, p| {
                unbind(app, req, p, &percent_decode(id))
            }),
        ),
        ["courses"] if get => ("admin_courses", courses(app, &admin, req)),
        ["courses", term, code] if get => (
            "admin_course",
            course(app, &admin, &percent_decode(term), &percent_decode(code)),
        ),
        ["export.csv"] if get => ("admin_export", export_csv(app, &admin, req)),
        ["backup"] if get => ("admin_backup", backup_download(app, &admin, req)),
        ["import"] if get => ("admin_import", super::admin_import::form(app, &admin, req)),
        ["import"] if post => (
            "admin_import",
            super::admin_import::upload(app, &admin, req),
        ),
        ["import", id] if get => (
            "admin_import_job",
            super::admin_import::job(app, &admin, id),
        ),
        ["import", id, "commit"] if post => (
            "admin_import_commit",
            posted(app, req, admin, |app, req, p| {
                super::admin_import::commit(app, req, p, id)
            }),
        ),
        ["releases"] if get => ("admin_releases", super::admin_releases::list(app, &admin)),
        ["releases", id, "publish"] if post => (
            "admin_release_publish",
            posted(app, req, admin, |app, req, p| {
                super::admin_releases::publish(app, req, p, id)
            }),
        ),
        ["releases", id, "withdraw"] if post => (
            "admin_release_withdraw",
            posted(app, req, admin, |app, req, p| {
                super::admin_releases::withdraw(app, req, p, id)
            }),
        ),
        ["students", id, "correct"] if post => (
            "admin_correct",
            posted(app, req, admin, |app, req, p| {
                super::admin_corrections::correct(app, req, p, &percent_decode(id))
            }),
        ),
        ["imports"] if get => (
            "admin_imports",
            super::admin_import::history(app, &admin, req),
        ),
        _ => ("admin_not_found", Err(AppError::NotFound)),
    }
}

/// Verify a POST's CSRF token and Origin, then run `f`.
pub(crate) fn posted(
    app: &App,
    req: &Request,
    admin: Admin,
    f: impl FnOnce(&App, &Request, &AdminPost) -> Handled,
) -> Handled {
    let post = AdminPost::verify(app, req, admin)?;
    f(app, req, &post)
}

/// Render an admin page: `ctx` plus what the layout needs.
pub(crate) fn page(
    app: &App,
    status: u16,
    template: &str,
    admin: Option<&Admin>,
    nav: &str,
    ctx: Value,
) -> Handled {
    let html = app.views.render(
        template,
        context! {
            admin_name => admin.map(|a| a.name().to_string()),
            csrf_token => admin.map(web_session::admin_csrf_token),
            nav => nav,
            ..ctx
        },
    )?;
    Ok(Response::html(status, html).with_header("X-Frame-Options", "DENY"))
}

/// The admin layout's error page (`handlers::error_page` decides when), or None when it
/// cannot be rendered.
pub(super) fn error_page(app: &App, e: &AppError) -> Option<Response> {
    let p = e.page();
    let heading = match e {
        AppError::NotFound => "页面不存在",
        _ => p.heading,
    };
    page(
        app,
        p.status,
        "admin/error.html",
        None,
        "",
        context! { status => p.status, heading => heading, message => p.message },
    )
    .ok()
}

// ---------------------------------------------------------------------------------------------
// Login
// ---------------------------------------------------------------------------------------------

fn to_login(req: &Request) -> Response {
    if req.method == Method::Post {
        return Response::redirect(303, "/admin/login");
    }
    Response::redirect(
        303,
        &format!(
            "/admin/login?next={}",
            percent_encode(&req.path_and_query())
        ),
    )
}

/// A local admin path to go to after login (not the login page itself), or None.
fn safe_next(next: &str) -> Option<String> {
    crate::http::next::local_path_within(next, "/admin", "/admin/login")
}

fn login_form(
    app: &App,
    status: u16,
    username: &str,
    next: &str,
    message: Option<String>,
) -> Handled {
    let (token, pre) = web_session::login_token(app);
    let resp = page(
        app,
        status,
        "admin/login.html",
        None,
        "login",
        context! {
            login_token => token,
            username => username,
            next => safe_next(next).unwrap_or_default(),
            message => message,
        },
    )?;
    Ok(resp.with_cookie(&pre))
}

fn login_page(app: &App, req: &Request) -> Handled {
    let next = req.query_param("next").unwrap_or_default();
    if web_session::admin(app, req)?.is_some() {
        return Ok(Response::redirect(
            303,
            &safe_next(&next).unwrap_or_else(|| "/admin".into()),
        ));
    }
    login_form(app, 200, "", &next, None)
}

/// The login form, parsed in one step.
struct LoginForm {
    csrf_token: String,
    username: String,
    password: String,
    next: String,
}

impl LoginForm {
    fn parse(form: &crate::http::form::Form) -> LoginForm {
        let field = |name| form.get(name).unwrap_or_default().to_string();
        LoginForm {
            csrf_token: field("csrf_token"),
            username: field("username").trim().to_string(),
            password: field("password"),
            next: field("next"),
        }
    }
}

fn login_submit(app: &App, req: &Request) -> Handled {
    let form = LoginForm::parse(&req.form());
    web_session::check_login_post(app, req, Some(&form.csrf_token))?;
    let (username, next) = (form.username.as_str(), form.next.as_str());
    match auth::login(app, &app.admin, username, &form.password, req.remote)? {
        Login::Success(id) => Ok(Response::redirect(
            303,
            &safe_next(next).unwrap_or_else(|| "/admin".into()),
        )
        .with_cookie(&web_session::cookie(app, Kind::Admin, &id))),
        Login::Wrong => login_form(app, 401, username, next, Some("用户名或密码错误。".into())),
        Login::Locked(until) => {
            let wait = (until - app.clock.now()).max(1);
            let resp = login_form(
                app,
                429,
                username,
                next,
                Some(format!(
                    "登录失败次数过多，已暂时锁定。请于 {} 后再试。",
                    clock_time(until)
                )),
            )?;
            Ok(resp.with_header("Retry-After", wait.to_string()))
        }
    }
}

fn logout(app: &App, req: &Request, post: &AdminPost) -> Handled {
    auth::logout(app, post.admin(), req.remote)?;
    let removal = web_session::removal(app, Kind::Admin);
    Ok(Response::redirect(303, "/admin/login").with_cookie(&removal))
}

// ---------------------------------------------------------------------------------------------
// Dashboard
// ---------------------------------------------------------------------------------------------

#[derive(Serialize)]
struct AuditLine {
    at: String,
    actor: String,
    action: String,
    detail: String,
    ip: String,
    warn: bool,
}

fn audit_lines(app: &App, limit: usize) -> Result<Vec<AuditLine>, AppError> {
    Ok(overview::audit_events(app, limit)?
        .into_iter()
        .map(|e| {
            let action = Action::from_code(&e.action);
            AuditLine {
                at: local_datetime(e.at),
                actor: e
                    .actor
                    .strip_prefix("admin:")
                    .or_else(|| e.actor.strip_prefix("?:"))
                    .unwrap_or(&e.actor)
                    .to_string(),
                action: action.map(|a| a.label().to_string()).unwrap_or(e.action),
                detail: e.detail,
                ip: e.ip.unwrap_or_default(),
                warn: action.is_some_and(|a| a.is_warning()),
            }
        })
        .collect())
}

fn dashboard(app: &App, admin: &Admin) -> Handled {
    let o = overview::overview(app)?;
    let stats = overview::stats(app, &app.admin)?;
    let last_import = o.last_import.map(|r| {
        context! {
            at => local_datetime(r.at),
            by => r.by.strip_prefix("admin:").unwrap_or(&r.by).to_string(),
            kind => if r.kind == "roster" { "名单" } else { "成绩" },
            file_name => r.file_name,
            added => r.added,
            changed => r.changed,
            result => r.result,
        }
    });
    let (pending, sent, failed) = o.notices;
    let last_backup = o.last_backup.map(|b| {
        context! {
            at => local_datetime(b.at),
            kind => match b.kind.as_str() { "snapshot" => "定时快照", "download" => "网页下载", _ => "命令行" },
            size => crate::error::human_size(b.bytes),
        }
    });
    let every = app.config.backup.every_hours;
    page(
        app,
        200,
        "admin/dashboard.html",
        Some(admin),
        "dashboard",
        context! {
            students => o.students,
            bound => o.bound,
            rows => stats.rows,
            terms => stats.terms.clone(),
            term_links => stats.terms.iter().map(|t| context! {
                term => t,
                href => format!("/admin/courses?term={}", percent_encode(t)),
            }).collect::<Vec<_>>(),
            courses => stats.courses.len(),
            last_import => last_import,
            notices => context! { pending => pending, sent => sent, failed => failed },
            data_size => crate::error::human_size(o.data_size),
            data_path => o.data_path,
            last_backup => last_backup,
            backup_every => every,
            backup_dir => app.config.backup.dir.display().to_string(),
            audit => audit_lines(app, 20)?,
        },
    )
}

// ---------------------------------------------------------------------------------------------
// Students
// ---------------------------------------------------------------------------------------------

pub(crate) fn page_number(req: &Request) -> usize {
    req.query_param("page")
        .and_then(|p| p.trim().parse::<usize>().ok())
        .filter(|p| *p >= 1 && *p <= 1_000_000)
        .unwrap_or(1)
}

/// Pagination for a template: current page, page count, and the links.
pub(crate) fn pager(page: usize, total: usize, base: &str) -> Value {
    let pages = total.div_ceil(PAGE).max(1);
    let sep = if base.contains('?') { '&' } else { '?' };
    let link = |p: usize| format!("{base}{sep}page={p}");
    context! {
        page => page,
        pages => pages,
        total => total,
        prev => (page > 1).then(|| link(page - 1)),
        next => (page < pages).then(|| link(page + 1)),
    }
}

fn students(app: &App, admin: &Admin, req: &Request) -> Handled {
    let q: String = req
        .query_param("q")
        .unwrap_or_default()
        .trim()
        .chars()
        .take(64)
        .collect();
    let page_no = page_number(req);
    let (list, total) = overview::students_page(app, &q, (page_no - 1) * PAGE, PAGE)?;
    let rows: Vec<Value> = list
        .into_iter()
        .map(|l| {
            context! {
                student_id => l.student.student_id.clone(),
                href => format!("/admin/students/{}", percent_encode(&l.student.student_id)),
                name => l.student.name,
                class => l.student.class,
                major => l.student.major,
                bound => l.bound,
            }
        })
        .collect();
    let base = if q.is_empty() {
        "/admin/students".to_string()
    } else {
        format!("/admin/students?q={}", percent_encode(&q))
    };
    page(
        app,
        200,
        "admin/students.html",
        Some(admin),
        "students",
        context! { q => q, rows => rows, pager => pager(page_no, total, &base) },
    )
}

fn hundredths(h: u64, decimals: usize) -> String {
    format!("{:.*}", decimals, h as f64 / 100.0)
}

fn student(app: &App, admin: &Admin, id: &str) -> Handled {
    let Some(overview::StudentRecord {
        info,
        rows,
        openid,
        bound_at,
        events,
    }) = overview::student(app, id)?
    else {
        return Err(AppError::NotFound);
    };
    let bound_at = bound_at.map(local_datetime);
    let events: Vec<Value> = events
        .into_iter()
        .map(|e| {
            context! {
                at => local_datetime(e.at),
                action => if e.action == "bind" { "绑定" } else { "解绑" },
                openid => e.openid,
                by => if e.by == "student" { "学生本人".to_string() } else {
                    e.by.strip_prefix("admin:").map(|n| format!("管理员 {n}")).unwrap_or(e.by.clone())
                },
            }
        })
        .collect();
    let t = transcript(&rows, &app.config.scale);
    let corrections = super::admin_corrections::panel(app, id, &rows)?;
    let corrected = crate::service::corrections::corrected_rows(app, id)?;
    let terms: Vec<Value> = t
        .terms
        .iter()
        .map(|s| {
            let courses: Vec<Value> = s
                .courses
                .iter()
                .map(|c| {
                    let marked = corrected.contains(&s.term, c.kind, &c.course_code, &c.score);
                    super::student::course_line(c, marked)
                })
                .collect();
            context! {
                term => s.term.as_str(),
                label => s.term.label(),
                gpa => s.gpa.map(|g| g.to_string()),
                credits_earned => s.credits_earned.to_string(),
                credits_attempted => s.credits_attempted.to_string(),
                courses => courses,
            }
        })
        .collect();
    page(
        app,
        200,
        "admin/student.html",
        Some(admin),
        "students",
        context! {
            student_id => id,
            unbind_action => format!("/admin/students/{}/unbind", percent_encode(id)),
            student => info.map(|s| context! { name => s.name, class => s.class, major => s.major, college => s.college, cohort => s.cohort }),
            openid => openid,
            bound_at => bound_at,
            events => events,
            terms => terms,
            overall_gpa => t.overall_gpa.map(|g| g.to_string()),
            credits_earned => t.credits_earned.to_string(),
            rows => rows.len(),
            corrections => corrections,
        },
    )
}

fn unbind(app: &App, req: &Request, post: &AdminPost, id: &str) -> Handled {
    app.changed(students::unbind_by_admin(
        app,
        id,
        &post.admin().actor(),
        req.remote,
    )?);
    Ok(Response::redirect(
        303,
        &format!("/admin/students/{}", percent_encode(id)),
    ))
}

// ---------------------------------------------------------------------------------------------
// Courses
// ---------------------------------------------------------------------------------------------

fn course_href(c: &stats::CourseStat) -> String {
    format!(
        "/admin/courses/{}/{}",
        percent_encode(&c.term),
        percent_encode(&c.course_code)
    )
}

fn course_line(c: &stats::CourseStat) -> Value {
    context! {
        term => c.term,
        code => c.course_code,
        name => c.course_name,
        href => course_href(c),
        count => c.count,
        mean => c.mean_hundredths().map(|m| hundredths(m, 1)),
        pass => c.pass_basis_points().map(|p| hundredths(p, 1)),
        low_pass => c.pass_basis_points().is_some_and(|p| p < 6000),
    }
}

/// The sortable columns of the course list.
const SORTS: [&str; 6] = ["term", "code", "name", "count", "mean", "pass"];

fn courses(app: &App, admin: &Admin, req: &Request) -> Handled {
    let stats = overview::stats(app, &app.admin)?;
    let term = req.query_param("term").filter(|t| !t.is_empty());
    if let Some(t) = &term {
        Term::parse(t).map_err(AppError::BadRequest)?;
    }
    let sort = req
        .query_param("sort")
        .filter(|s| SORTS.contains(&s.as_str()))
        .unwrap_or_else(|| "term".into());
    let default_desc = matches!(sort.as_str(), "term" | "count" | "mean" | "pass");
    let desc = match req.query_param("dir").as_deref() {
        Some("asc") => false,
        Some("desc") => true,
        _ => default_desc,
    };
    let mut list: Vec<&stats::CourseStat> = stats
        .courses
        .iter()
        .filter(|c| term.as_deref().is_none_or(|t| c.term == t))
        .collect();
    // Stable sorts: the secondary order (term desc, code) comes from the cache.
    match sort.as_str() {
        "code" => list.sort_by(|a, b| a.course_code.cmp(&b.course_code)),
        "name" => list.sort_by(|a, b| a.course_name.cmp(&b.course_name)),
        "count" => list.sort_by_key(|c| c.count),
        "mean" => list.sort_by_key(|c| c.mean_hundredths()),
        "pass" => list.sort_by_key(|c| c.pass_basis_points()),
        _ => list.sort_by(|a, b| a.term.cmp(&b.term)),
    }
    if desc {
        list.reverse();
    }
    let total = list.len();
    let page_no = page_number(req);
    let rows: Vec<Value> = list
        .iter()
        .skip((page_no - 1) * PAGE)
        .take(PAGE)
        .map(|c| course_line(c))
        .collect();
    let term_q = term
        .as_deref()
        .map(|t| format!("term={}&", percent_encode(t)))
        .unwrap_or_default();
    let headers: Vec<Value> = SORTS
        .iter()
        .map(|s| {
            let active = *s == sort;
            let next_dir = if active {
                if desc {
                    "asc"
                } else {
                    "desc"
                }
            } else if matches!(*s, "term" | "count" | "mean" | "pass") {
                "desc"
            } else {
                "asc"
            };
            context! {
                key => *s,
                href => format!("/admin/courses?{term_q}sort={s}&dir={next_dir}"),
                active => active,
                arrow => if active { if desc { "▼" } else { "▲" } } else { "" },
            }
        })
        .collect();
    let base = format!(
        "/admin/courses?{term_q}sort={sort}&dir={}",
        if desc { "desc" } else { "asc" }
    );
    let export_href = match &term {
        Some(t) => format!("/admin/export.csv?term={}", percent_encode(t)),
        None => "/admin/export.csv".into(),
    };
    page(
        app,
        200,
        "admin/courses.html",
        Some(admin),
        "courses",
        context! {
            term => term,
            terms => stats.terms.clone(),
            rows => rows,
            headers => headers,
            pager => pager(page_no, total, &base),
            export_href => export_href,
        },
    )
}

/// Bars of the score histogram, laid out for an inline SVG.
#[derive(Serialize)]
struct Bar {
    x: u64,
    y: u64,
    width: u64,
    height: u64,
    label: String,
    count: u64,
    fail: bool,
}

const CHART_W: u64 = 640;
const CHART_H: u64 = 220;
const CHART_TOP: u64 = 20;
const CHART_BOTTOM: u64 = 24;

fn histogram_bars(hist: &[u64; 10]) -> Vec<Bar> {
    let max = hist.iter().copied().max().unwrap_or(0).max(1);
    let slot = CHART_W / 10;
    let plot = CHART_H - CHART_TOP - CHART_BOTTOM;
    hist.iter()
        .enumerate()
        .map(|(i, &n)| {
            let height = n * plot / max;
            let lo = i * 10;
            Bar {
                x: i as u64 * slot + 6,
                y: CHART_TOP + plot - height,
                width: slot - 12,
                height,
                label: if i == 9 {
                    "90–100".into()
                } else {
                    format!("{lo}–{}", lo + 9)
                },
                count: n,
                fail: i < 6,
            }
        })
        .collect()
}

fn course(app: &App, admin: &Admin, term: &str, code: &str) -> Handled {
    let stats = overview::stats(app, &app.admin)?;
    let Some(c) = stats.course(term, code) else {
        return Err(AppError::NotFound);
    };
    page(
        app,
        200,
        "admin/course.html",
        Some(admin),
        "courses",
        context! {
            c => course_line(c),
            term_href => format!("/admin/courses?term={}", percent_encode(term)),
            term_label => Term::parse(term).map(|t| t.label()).unwrap_or_else(|_| term.to_string()),
            numeric => c.numeric,
            passed => c.passed,
            decided => c.decided,
            bars => histogram_bars(&c.histogram),
            chart => context! { width => CHART_W, height => CHART_H, base => CHART_H - CHART_BOTTOM },
        },
    )
}

// ---------------------------------------------------------------------------------------------
// Export and backup
// ---------------------------------------------------------------------------------------------

fn export_csv(app: &App, admin: &Admin, req: &Request) -> Handled {
    let term = req.query_param("term").filter(|t| !t.trim().is_empty());
    let term = match term {
        Some(t) => Some(Term::parse(&t).map_err(AppError::BadRequest)?),
        None => None,
    };
    let term = term.as_ref().map(|t| t.as_str());
    let mut file = tempfile::tempfile()
        .map_err(|e| AppError::Internal(format!("export: temporary file: {e}")))?;
    let rows = {
        let mut w = std::io::BufWriter::new(&mut file);
        export::export(app, term, &mut w)?
    };
    file.seek(SeekFrom::Start(0))
        .map_err(|e| AppError::Internal(format!("export: {e}")))?;
    audit::note(
        app,
        &admin.actor(),
        Action::Export,
        &format!("{}：{rows} 行", term.unwrap_or("全部学期")),
        req.remote,
    );
    Ok(
        Response::new(200, "text/csv; charset=utf-8", Body::File(file))
            .with_header(
                "Content-Disposition",
                format!("attachment; filename=\"{}\"", export::file_name(term)),
            )
            .with_header("Cache-Control", "no-store"),
    )
}

fn backup_download(app: &App, admin: &Admin, _req: &Request) -> Handled {
    let (file, _bytes) = backup::snapshot_for_download(app, &admin.actor())?;
    let name = format!("wxgrades-{}.redb", admin_svc::stamp(app.clock.now()));
    Ok(
        Response::new(200, "application/octet-stream", Body::File(file))
            .with_header(
                "Content-Disposition",
                format!("attachment; filename=\"{name}\""),
            )
            .with_header("Cache-Control", "no-store"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_layout() {
        let mut h = [0u64; 10];
        h[9] = 4;
        h[5] = 2;
        let bars = histogram_bars(&h);
        assert_eq!(bars.len(), 10);
        assert_eq!(bars[9].height, CHART_H - CHART_TOP - CHART_BOTTOM);
        assert_eq!(bars[5].height * 2, bars[9].height);
        assert_eq!(bars[0].height, 0);
        assert_eq!(bars[0].y, CHART_H - CHART_BOTTOM);
        assert_eq!(bars[9].label, "90–100");
        assert!(bars[5].fail && !bars[6].fail);
    }
}
