//! The admin pages under `/admin`: the router of the area, login and logout, the dashboard,
//! students (search, detail, unbind), the CSV export and the backup download (courses are
//! `admin_courses`, accounts `admin_accounts`). Every page but the login takes an `Admin`
//! (and every POST an `AdminPost`), which only a verified session (and a checked CSRF token)
//! can produce, and only after `admin_roles::grant` allowed its role the route. Errors show an
//! admin-styled page.

use std::io::{Seek, SeekFrom};

use minijinja::{context, Value};
use serde::Serialize;

use super::session::{self as web_session, AdminPost};
use super::{admin_accounts, admin_courses, admin_roles, Handled};
use crate::app::App;
use crate::error::AppError;
use crate::grades::{transcript, Term};
use crate::http::form::{percent_decode, percent_encode};
use crate::http::{Body, Method, Request, Response};
use crate::service::admin::accounts::Role;
use crate::service::admin::audit::{self, Action};
use crate::service::admin::auth::{self, Admin, Login};
use crate::service::admin::{self as admin_svc, backup, export, local_datetime, overview};
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

/// A matched admin route's handler, run once the account's role was checked.
type Run<'a> = Box<dyn FnOnce(Admin) -> Handled + 'a>;

fn dispatch(app: &App, req: &Request) -> (&'static str, Handled) {
    let get = matches!(req.method, Method::Get | Method::Head);
    let post = req.method == Method::Post;
    let rest = req.path.strip_prefix("/admin").unwrap_or("");
    let segs: Vec<&str> = match rest {
        "" | "/" => Vec::new(),
        r => r[1..].split('/').collect(),
    };
    if segs.as_slice() == ["too-large"] && get {
        // The page nginx's `error_page 413` shows (deploy/nginx.conf): no session needed.
        return (
            "admin_too_large",
            super::admin_import::too_large_page(app, app.config.max_upload_bytes),
        );
    }
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
    // Each arm names the route (its label declares its role in `admin_roles::ROUTE_ROLES`;
    // undeclared means admin-only) and what runs once the role is granted.
    let (label, run): (&'static str, Run) = match segs.as_slice() {
        [] if get => ("admin_dashboard", Box::new(|a| dashboard(app, &a))),
        ["logout"] if post => ("admin_logout", Box::new(|a| posted(app, req, a, logout))),
        ["students"] if get => ("admin_students", Box::new(|a| students(app, &a, req))),
        ["students", id] if get => (
            "admin_student",
            Box::new(|a| student(app, &a, &percent_decode(id), None)),
        ),
        ["students", id, "unbind"] if post => (
            "admin_unbind",
            Box::new(|a| {
                posted(app, req, a, |app, req, p| {
                    unbind(app, req, p, &percent_decode(id))
                })
            }),
        ),
        ["courses"] if get => (
            "admin_courses",
            Box::new(|a| admin_courses::courses(app, &a, req)),
        ),
        ["courses.csv"] if get => (
            "admin_courses_csv",
            Box::new(|a| admin_courses::courses_csv(app, &a, req)),
        ),
        ["courses", term, code] if get => (
            "admin_course",
            Box::new(|a| {
                admin_courses::course(app, &a, &percent_decode(term), &percent_decode(code))
            }),
        ),
        ["export.csv"] if get => ("admin_export", Box::new(|a| export_csv(app, &a, req))),
        ["backup"] if get => ("admin_backup", Box::new(|a| backup_download(app, &a, req))),
        ["accounts"] if get => (
            "admin_accounts",
            Box::new(|a| admin_accounts::list(app, &a, req)),
        ),
        ["accounts", name, "role"] if post => (
            "admin_account_role",
            Box::new(|a| {
                posted(app, req, a, |app, req, p| {
                    admin_accounts::set_role(app, req, p, &percent_decode(name))
                })
            }),
        ),
        ["import"] if get => (
            "admin_import",
            Box::new(|a| super::admin_import::form(app, &a, req)),
        ),
        ["import"] if post => (
            "admin_import",
            Box::new(|a| super::admin_import::upload(app, &a, req)),
        ),
        ["import", id] if get => (
            "admin_import_job",
            Box::new(|a| super::admin_import::job(app, &a, id)),
        ),
        ["import", id, "errors.csv"] if get => (
            "admin_import_errors",
            Box::new(|a| super::admin_import::errors_csv(app, &a, req, id)),
        ),
        ["import", id, "map"] if get => (
            "admin_import_map",
            Box::new(|a| super::admin_import_map::form(app, &a, req, id)),
        ),
        ["import", id, "map"] if post => (
            "admin_import_map",
            Box::new(|a| {
                posted(app, req, a, |app, req, p| {
                    super::admin_import_map::submit(app, req, p, id)
                })
            }),
        ),
        ["presets"] if get => (
            "admin_presets",
            Box::new(|a| super::admin_import_map::list(app, &a)),
        ),
        ["presets", "delete"] if post => (
            "admin_presets_delete",
            Box::new(|a| posted(app, req, a, super::admin_import_map::delete)),
        ),
        ["import", id, "commit"] if post => (
            "admin_import_commit",
            Box::new(|a| {
                posted(app, req, a, |app, req, p| {
                    super::admin_import::commit(app, req, p, id)
                })
            }),
        ),
        ["releases"] if get => (
            "admin_releases",
            Box::new(|a| super::admin_releases::list(app, &a)),
        ),
        ["releases", id, "publish"] if post => (
            "admin_release_publish",
            Box::new(|a| {
                posted(app, req, a, |app, req, p| {
                    super::admin_releases::publish(app, req, p, id)
                })
            }),
        ),
        ["releases", id, "withdraw"] if post => (
            "admin_release_withdraw",
            Box::new(|a| {
                posted(app, req, a, |app, req, p| {
                    super::admin_releases::withdraw(app, req, p, id)
                })
            }),
        ),
        ["students", id, "correct"] if post => (
            "admin_correct",
            Box::new(|a| {
                posted(app, req, a, |app, req, p| {
                    super::admin_corrections::correct(app, req, p, &percent_decode(id))
                })
            }),
        ),
        ["imports"] if get => (
            "admin_imports",
            Box::new(|a| super::admin_import::history(app, &a, req)),
        ),
        _ => ("admin_not_found", Box::new(|_| Err(AppError::NotFound))),
    };
    match admin_roles::grant(app, req, admin, label) {
        Ok(admin) => (label, run(admin)),
        Err(e) => (label, Err(e)),
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
            // What the role may do, so a page shows only those links and buttons.
            role_label => admin.map(|a| a.role().label()),
            may => context! {
                registrar => admin.is_some_and(|a| a.may(Role::Registrar)),
                admin => admin.is_some_and(|a| a.may(Role::Admin)),
            },
            ..ctx
        },
    )?;
    Ok(Response::html(status, html).with_header("X-Frame-Options", "DENY"))
}

/// The admin layout's error page (`handlers::error_page` decides when), or None when it
/// cannot be rendered.
pub(super) fn error_page(app: &App, e: &AppError) -> Option<Response> {
    if let AppError::TooLarge { limit } = e {
        return super::admin_import::too_large_page(app, *limit).ok();
    }
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
        context! {
            status => p.status,
            heading => heading,
            message => p.message,
            advice => Vec::<String>::new(),
            link => p.link.map(|(href, label)| context! { href => href, label => label }),
        },
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
            notices => context! { pending => pending, sent => sent, failed => failed, skipped => o.notices_skipped },
            data_size => crate::error::human_size(o.data_size),
            data_path => o.data_path,
            last_backup => last_backup,
            backup_every => every,
            backup_dir => app.config.backup.dir.display().to_string(),
            // Staff names, addresses and failed sign-ins: the admin role's only.
            audit => if admin.may(Role::Admin) { audit_lines(app, 20)? } else { Vec::new() },
            verify_files => o.verify_files.iter().map(|(name, bytes)| context! {
                name => name,
                size => crate::error::human_size(*bytes),
                url => format!("{}/{name}", app.config.public_url),
            }).collect::<Vec<_>>(),
            verify_dir => app.config.verify_dir.display().to_string(),
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

/// The admin student page; with `retry`, a correction that was refused: its error shown at the
/// form and what staff typed kept, status 400.
pub(super) fn student(
    app: &App,
    admin: &Admin,
    id: &str,
    retry: Option<super::admin_corrections::Retry>,
) -> Handled {
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
    let status = if retry.is_some() { 400 } else { 200 };
    let corrections = super::admin_corrections::panel(app, id, &rows, retry)?;
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
        status,
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
