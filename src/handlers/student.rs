//! Student pages: `/`, `/bind`, `/unbind`, `/grades`. Each goes through the session guard.

use minijinja::{context, Value};

use super::session::{self, Visitor};
use super::Handled;
use crate::app::App;
use crate::error::AppError;
use crate::grades::{CourseLine, Term, Transcript};
use crate::http::form::Form;
use crate::http::{csrf, Request, Response};
use crate::service::students::{self, BindOutcome, BindRefusal};

/// The session, or the response that sends the visitor through web authorization.
macro_rules! signed_in {
    ($app:expr, $req:expr) => {
        match session::require_visitor($app, $req)? {
            Ok(s) => s,
            Err(redirect) => return Ok(redirect),
        }
    };
}

pub fn home(app: &App, req: &Request) -> Handled {
    let v = signed_in!(app, req);
    let to = if students::binding(app, &v.openid)?.is_some() {
        "/grades"
    } else {
        "/bind"
    };
    Ok(Response::redirect(302, to))
}

fn user_ctx(app: &App, openid: &str) -> Result<Value, AppError> {
    Ok(match students::wx_user(app, openid)? {
        Some(u) if u.nickname.is_some() || u.avatar_url.is_some() => {
            context! { nickname => u.nickname, avatar_url => u.avatar_url }
        }
        _ => Value::from(()),
    })
}

fn demo_hint(app: &App) -> Value {
    if app.config.demo {
        context! { student_id => crate::demo::HINT_STUDENT_ID, name => crate::demo::HINT_NAME, verify => crate::demo::HINT_VERIFY }
    } else {
        Value::from(())
    }
}

fn bind_page(
    app: &App,
    v: &Visitor,
    status: u16,
    error: Option<&str>,
    locked_until: Option<&str>,
    sid: &str,
    name: &str,
) -> Handled {
    let html = app.views.render(
        "bind.html",
        context! {
            csrf_token => csrf::token_for(&v.session_id),
            error => error,
            locked_until => locked_until,
            values => context! { student_id => sid, name => name },
            demo_hint => demo_hint(app),
            user => user_ctx(app, &v.openid)?,
        },
    )?;
    Ok(Response::html(status, html))
}

pub fn bind_form(app: &App, req: &Request) -> Handled {
    let v = signed_in!(app, req);
    if students::binding(app, &v.openid)?.is_some() {
        return Ok(Response::redirect(303, "/grades"));
    }
    bind_page(app, &v, 200, None, None, "", "")
}

/// The bind form, parsed in one step: values trimmed and cut to 64 characters.
struct BindForm {
    student_id: String,
    name: String,
    verify: String,
}

impl BindForm {
    fn parse(form: &Form) -> BindForm {
        let field = |name| {
            let value = form.get(name).unwrap_or_default();
            value.trim().chars().take(64).collect::<String>()
        };
        BindForm {
            student_id: field("student_id"),
            name: field("name"),
            verify: form.get("verify").unwrap_or_default().to_string(),
        }
    }

    fn complete(&self) -> bool {
        !self.student_id.is_empty() && !self.name.is_empty() && !self.verify.trim().is_empty()
    }
}

/// Check CSRF token and Origin of a student form.
fn check_form(app: &App, req: &Request, v: &Visitor) -> Result<Form, AppError> {
    let form = req.form();
    if !csrf::post_ok(
        req,
        &app.config.public_url,
        form.get("csrf_token"),
        &v.session_id,
    ) {
        return Err(AppError::Csrf);
    }
    Ok(form)
}

pub fn bind_submit(app: &App, req: &Request) -> Handled {
    let Some(v) = session::visitor(app, req)? else {
        return Ok(session::sign_in_redirect("/bind"));
    };
    let form = BindForm::parse(&check_form(app, req, &v)?);
    let (sid, name) = (&form.student_id, &form.name);
    if !form.complete() {
        return bind_page(
            app,
            &v,
            400,
            Some("请填写学号、姓名和验证码。"),
            None,
            sid,
            name,
        );
    }
    let (outcome, changed) = app.students.bind(app, &v.openid, sid, name, &form.verify)?;
    app.changed(changed);
    match outcome {
        BindOutcome::Bound | BindOutcome::AlreadyBound => Ok(Response::redirect(303, "/grades")),
        BindOutcome::Refused(BindRefusal::Wrong) => bind_page(
            app,
            &v,
            400,
            Some("信息不匹配，请核对学号、姓名和验证码后重试。"),
            None,
            sid,
            name,
        ),
        BindOutcome::Refused(BindRefusal::Locked(until)) => {
            let msg = format!("尝试次数过多，请于 {until} 后再试。");
            bind_page(app, &v, 429, Some(&msg), Some(&until), sid, name)
                .map(|r| r.with_header("Retry-After", "900"))
        }
        BindOutcome::Refused(BindRefusal::TakenByOther) => Err(AppError::Conflict(
            "该学号已绑定其他微信账号。如非本人操作，请携带学生证联系教务处解除绑定。".into(),
        )),
    }
}

pub fn unbind_form(app: &App, req: &Request) -> Handled {
    let v = signed_in!(app, req);
    let Some(b) = students::binding(app, &v.openid)? else {
        return Ok(Response::redirect(303, "/bind"));
    };
    let s = students::student_or_placeholder(app, &b.student_id)?;
    let html = app.views.render(
        "unbind.html",
        context! { csrf_token => csrf::token_for(&v.session_id), student => context! { student_id => s.student_id, name => s.name } },
    )?;
    Ok(Response::html(200, html))
}

pub fn unbind_submit(app: &App, req: &Request) -> Handled {
    let Some(v) = session::visitor(app, req)? else {
        return Ok(session::sign_in_redirect("/unbind"));
    };
    check_form(app, req, &v)?;
    app.changed(students::unbind(app, &v.openid)?);
    Ok(Response::redirect(303, "/bind"))
}

pub fn grades(app: &App, req: &Request) -> Handled {
    let v = signed_in!(app, req);
    let Some(binding) = students::binding(app, &v.openid)? else {
        return Ok(Response::redirect(302, "/bind"));
    };
    let term = match req.query_param("term").filter(|t| !t.is_empty()) {
        None => None,
        Some(t) => match Term::parse(&t) {
            Ok(t) => Some(t),
            Err(_) => return Err(no_such_term()),
        },
    };
    // Everything the page shows: the student's data (generation), the term, and who is looking
    // (their nickname and avatar as of this session's sign-in).
    let key = format!(
        "grades|{}|{}|{}",
        term.as_ref().map(|t| t.as_str()).unwrap_or(""),
        v.openid,
        v.since
    );
    let generation = app.generation();
    let encoding = super::page_encoding(req);
    if let Some(page) = app
        .pages
        .get(generation, &binding.student_id, &key, encoding)
    {
        return Ok(super::page_response(encoding, page));
    }
    let (student, t) = students::summary(app, &binding.student_id)?;
    if let Some(term) = &term {
        if t.term(term).is_none() {
            return Err(no_such_term());
        }
    }
    let ctx = grades_context(&t, term.as_ref());
    let html = app.views.render(
        "grades.html",
        context! {
            student => context! { student_id => student.student_id, name => student.name, class => student.class, major => student.major },
            user => user_ctx(app, &v.openid)?,
            ..ctx
        },
    )?;
    let page = app
        .pages
        .put(generation, &binding.student_id, key, html, encoding);
    Ok(super::page_response(encoding, page))
}

fn no_such_term() -> AppError {
    AppError::NotFoundWith {
        heading: "该学期暂无成绩",
        message: "所选学期没有您的成绩，可能尚未发布。".into(),
        link: ("/grades", "查看全部学期"),
    }
}

/// The grades page's data, in the shape `grades.html` expects.
pub fn grades_context(t: &Transcript, selected: Option<&Term>) -> Value {
    let mut term_links = vec![
        context! { term => "", label => "全部", url => "/grades", selected => selected.is_none() },
    ];
    for ts in &t.terms {
        term_links.push(context! {
            term => ts.term.as_str(),
            label => short_label(&ts.term),
            url => format!("/grades?term={}", ts.term.as_str()),
            selected => selected == Some(&ts.term),
        });
    }
    // Courses failed and not (yet) passed by a later attempt: what the student still has to do.
    let all = || t.terms.iter().flat_map(|ts| ts.courses.iter());
    let passed: std::collections::HashSet<&str> = all()
        .filter(|c| c.passed)
        .map(|c| c.course_code.as_str())
        .collect();
    let outstanding: std::collections::HashSet<&str> = all()
        .filter(|c| c.failed && !passed.contains(c.course_code.as_str()))
        .map(|c| c.course_code.as_str())
        .collect();
    let failed_count = outstanding.len();
    let terms: Vec<Value> = t
        .terms
        .iter()
        .filter(|ts| selected.is_none_or(|s| *s == ts.term))
        .map(|ts| {
            let courses: Vec<Value> = ts.courses.iter().map(course_line).collect();
            context! {
                term => ts.term.as_str(),
                label => ts.term.label(),
                gpa => ts.gpa.map(|g| g.to_string()).unwrap_or_else(|| "—".into()),
                credits => ts.credits_attempted.to_string(),
                courses => courses,
            }
        })
        .collect();
    context! {
        summary => context! {
            overall_gpa => t.overall_gpa.map(|g| g.to_string()).unwrap_or_else(|| "—".into()),
            credits_earned => t.credits_earned.to_string(),
            terms_count => t.terms.len(),
            failed_count => failed_count,
        },
        term_links => term_links,
        terms => terms,
        chart => chart(t),
    }
}

/// One course of a transcript, as the student and admin pages show it.
pub fn course_line(c: &CourseLine) -> Value {
    context! {
        code => c.course_code,
        name => c.course_name,
        credit => c.credit.to_string(),
        score => c.score.to_string(),
        grade_point => c.grade_point.map(points).unwrap_or_else(|| "—".into()),
        kind => c.kind.label(),
        is_normal_kind => c.kind == crate::grades::ExamKind::Normal,
        failed => c.failed,
        status => !c.failed && !c.passed,
    }
}

/// A grade point in hundredths as text: "3.7", "4.0".
fn points(h: u32) -> String {
    if h.is_multiple_of(10) {
        format!("{}.{}", h / 100, (h % 100) / 10)
    } else {
        format!("{}.{:02}", h / 100, h % 100)
    }
}

/// "2023-2024-1" → "23-24-1".
fn short_label(t: &Term) -> String {
    let s = t.as_str();
    match (s.get(2..4), s.get(7..9), s.get(10..)) {
        (Some(a), Some(b), Some(n)) => format!("{a}-{b}-{n}"),
        _ => s.to_string(),
    }
}

/// The term-GPA line chart, oldest term on the left; None with fewer than two graded terms.
fn chart(t: &Transcript) -> Value {
    let graded: Vec<(&Term, u32)> = t
        .terms
        .iter()
        .rev()
        .filter_map(|ts| ts.gpa.map(|g| (&ts.term, g.hundredths())))
        .collect();
    if graded.len() < 2 {
        return Value::from(());
    }
    let (w, h) = (340.0_f64, 124.0_f64);
    let (left, right, top, bottom) = (44.0, 20.0, 20.0, 24.0);
    let max = 400.0_f64.max(graded.iter().map(|(_, g)| *g as f64).fold(0.0, f64::max));
    let y_of = |g: f64| top + (h - top - bottom) * (1.0 - g / max);
    let step = (w - left - right) / (graded.len() - 1) as f64;
    let mut path = String::new();
    let mut pts = Vec::new();
    for (i, (term, g)) in graded.iter().enumerate() {
        let x = left + step * i as f64;
        let y = y_of(*g as f64);
        path.push_str(&format!("{}{x:.1} {y:.1}", if i == 0 { "M" } else { " L" }));
        pts.push(context! { x => format!("{x:.1}"), y => format!("{y:.1}"), label => short_label(term), gpa => format!("{}.{:02}", g / 100, g % 100) });
    }
    let ticks: Vec<Value> = (0..=4)
        .map(|i| {
            let g = max * i as f64 / 4.0;
            context! { y => format!("{:.1}", y_of(g)), label => format!("{:.1}", g / 100.0) }
        })
        .collect();
    context! { width => w as i64, height => h as i64, path => path, points => pts, y_ticks => ticks }
}
