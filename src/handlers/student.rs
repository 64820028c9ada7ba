//! Student pages: `/`, `/bind`, `/unbind`, `/grades` and its notice switch
//! (`POST /grades/notices`). Each goes through the session guard.

use minijinja::{context, Value};

use super::session::{self, Visitor};
use super::Handled;
use crate::app::App;
use crate::config::RankScope;
use crate::error::AppError;
use crate::grades::{AverageAttempt, AverageRules, CourseLine, FiveLevel, Term, Transcript};
use crate::http::cookie::{SameSite, SetCookie};
use crate::http::form::Form;
use crate::http::{csrf, Request, Response};
use crate::service::corrections::Corrected;
use crate::service::students::{self, BindOutcome, BindRefusal};
use crate::service::{privacy, rank};

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
    (sid, name): (&str, &str),
    unbound: bool,
) -> Handled {
    let html = app.views.render(
        "bind.html",
        context! {
            csrf_token => csrf::token_for(&v.session_id),
            error => error,
            locked_until => locked_until,
            values => context! { student_id => sid, name => name },
            demo_hint => demo_hint(app),
            unbound => unbound,
            user => user_ctx(app, &v.openid)?,
            privacy => context! { notice => privacy::notice(&app.config), contact => privacy::contact(&app.config) },
        },
    )?;
    Ok(Response::html(status, html))
}

pub fn bind_form(app: &App, req: &Request) -> Handled {
    let v = signed_in!(app, req);
    if students::binding(app, &v.openid)?.is_some() {
        return Ok(Response::redirect(303, "/grades"));
    }
    // Just unbound: say so once, then forget it.
    if req.cookie(FLASH_COOKIE) == Some(UNBOUND) {
        return bind_page(app, &v, 200, None, None, ("", ""), true)
            .map(|r| r.with_cookie(&flash_cookie(app, "", 0)));
    }
    bind_page(app, &v, 200, None, None, ("", ""), false)
}

/// A one-time notice for the bind form, carried across the redirect after unbinding.
const FLASH_COOKIE: &str = "wxg_flash";
const UNBOUND: &str = "unbound";

fn flash_cookie(app: &App, value: &str, max_age: i64) -> SetCookie {
    SetCookie {
        name: FLASH_COOKIE.into(),
        value: value.into(),
        path: "/bind".into(),
        max_age: Some(max_age),
        http_only: true,
        secure: app.config.https(),
        same_site: SameSite::Lax,
    }
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

pub fn bind_submit(app: &App, req: &Request) -> Handled {
    let Some(v) = session::visitor(app, req)? else {
        return Ok(session::sign_in_redirect("/bind"));
    };
    let form = BindForm::parse(&session::student_post(app, req, &v)?);
    let (sid, name) = (form.student_id.as_str(), form.name.as_str());
    if !form.complete() {
        return bind_page(
            app,
            &v,
            400,
            Some("请填写学号、姓名和验证码。"),
            None,
            (sid, name),
            false,
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
            (sid, name),
            false,
        ),
        BindOutcome::Refused(BindRefusal::Locked(until)) => {
            let msg = format!("尝试次数过多，请于 {until} 后再试。");
            bind_page(app, &v, 429, Some(&msg), Some(&until), (sid, name), false)
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
    session::student_post(app, req, &v)?;
    app.changed(students::unbind(app, &v.openid)?);
    Ok(Response::redirect(303, "/bind").with_cookie(&flash_cookie(app, UNBOUND, 60)))
}

/// The student's own place for the page ("班级排名 第 3 / 30 名"), or none.
fn rank_context(app: &App, student_id: &str) -> Result<Value, AppError> {
    let scope = match app.config.rank {
        RankScope::None => return Ok(Value::from(())),
        RankScope::Class => "班级",
        RankScope::Major => "专业",
    };
    Ok(match rank::rank_of(app, student_id)? {
        Some(r) => context! { scope => scope, place => r.place, of => r.of },
        None => Value::from(()),
    })
}

/// Turn grade notices on or off for this WeChat (`notices=on|off`), then back to the grades page.
pub fn notices_submit(app: &App, req: &Request) -> Handled {
    let Some(v) = session::visitor(app, req)? else {
        return Ok(session::sign_in_redirect("/grades"));
    };
    let form = session::student_post(app, req, &v)?;
    let on = match form.get("notices") {
        Some("on") => true,
        Some("off") => false,
        _ => return Err(AppError::BadRequest("notices: expected on or off".into())),
    };
    match students::set_notices(app, &v.openid, on)? {
        Some(changed) => {
            app.changed(changed);
            Ok(Response::redirect(303, "/grades"))
        }
        None => Ok(Response::redirect(303, "/bind")),
    }
}

/// Which terms the grades page shows, from `?term=`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Shown {
    /// No `term`: the newest term the student has grades in, alone.
    Newest,
    /// `term=all`: every term, newest first.
    All,
    /// One term the student has grades in.
    Term(Term),
    /// A term the student has no grades in, or not a term at all: an empty state (404).
    Missing,
}

impl Shown {
    /// From the raw `term` parameter; a well-formed term is checked against the transcript later.
    fn parse(raw: Option<&str>) -> Shown {
        match raw.map(str::trim).filter(|t| !t.is_empty()) {
            None => Shown::Newest,
            Some("all") => Shown::All,
            Some(t) => Term::parse(t).map_or(Shown::Missing, Shown::Term),
        }
    }

    /// The cache key part; `None` for pages not cached (the empty state).
    fn key(&self) -> Option<String> {
        match self {
            Shown::Newest => Some("newest".into()),
            Shown::All => Some("all".into()),
            Shown::Term(t) => Some(t.as_str().to_string()),
            Shown::Missing => None,
        }
    }
}

pub fn grades(app: &App, req: &Request) -> Handled {
    let v = signed_in!(app, req);
    // Before anything is read: a page rendered from data read before a drop is not kept.
    let stamp = app.pages.stamp();
    let Some(binding) = students::binding(app, &v.openid)? else {
        return Ok(Response::redirect(302, "/bind"));
    };
    let mut shown = Shown::parse(req.query_param("term").as_deref());
    let notice = super::notify::grades_notice(app, req, &v)?;
    // Everything the page shows: the student's data (generation), the terms, who is looking
    // (their nickname and avatar as of this session's sign-in), and the notices offer. The
    // page carries this session's CSRF token (the notice switch), so the token is part of the
    // key too.
    let csrf_token = csrf::token_for(&v.session_id);
    let key = shown.key().filter(|_| !notice.flash_shown).map(|k| {
        format!(
            "grades|{k}|{}|{}|{}|{csrf_token}",
            v.openid, v.since, notice.key
        )
    });
    let generation = app.page_epoch();
    let encoding = super::page_encoding(req);
    if let Some(key) = &key {
        if let Some(page) = app
            .pages
            .get(generation, &binding.student_id, key, encoding)
        {
            return Ok(with_cookie(
                super::page_response(encoding, page),
                notice.clear,
            ));
        }
    }
    let view = students::grades_view(app, &binding.student_id)?;
    if let Shown::Term(term) = &shown {
        if view.transcript.term(term).is_none() {
            shown = Shown::Missing;
        }
    }
    let student = &view.student;
    let ctx = grades_context(&view.transcript, &shown, &view.corrected);
    let html = app.views.render(
        "grades.html",
        context! {
            student => context! { student_id => student.student_id, name => student.name, class => student.class, major => student.major },
            user => user_ctx(app, &v.openid)?,
            average => view.average.map(|a| a.to_string()).unwrap_or_else(|| "—".into()),
            average_rule => average_rule(&app.config.average),
            notify => notice.context,
            compulsory_gpa => view.compulsory_gpa.map(|g| g.map(|g| g.to_string()).unwrap_or_else(|| "—".into())),
            rank => rank_context(app, &binding.student_id)?,
            notices_on => students::notices_on(app, &v.openid)?,
            csrf_token => csrf_token,
            ..ctx
        },
    )?;
    if shown == Shown::Missing {
        // The empty state, inside the grades page, with links to the terms there are.
        return Ok(with_cookie(Response::html(404, html), notice.clear));
    }
    let Some(key) = key else {
        return Ok(with_cookie(Response::html(200, html), notice.clear));
    };
    let page = app
        .pages
        .put(generation, stamp, &binding.student_id, key, html, encoding);
    Ok(with_cookie(
        super::page_response(encoding, page),
        notice.clear,
    ))
}

fn with_cookie(resp: Response, cookie: Option<SetCookie>) -> Response {
    match cookie {
        Some(c) => resp.with_cookie(&c),
        None => resp,
    }
}

/// The grades page's data, in the shape `grades.html` expects.
pub fn grades_context(t: &Transcript, shown: &Shown, corrected: &Corrected) -> Value {
    let newest = t.terms.first().map(|ts| &ts.term);
    let is_selected = |term: &Term| match shown {
        Shown::Newest => newest == Some(term),
        Shown::Term(s) => s == term,
        Shown::All | Shown::Missing => false,
    };
    let mut term_links = vec![
        context! { term => "all", label => "全部", url => "/grades?term=all", selected => *shown == Shown::All },
    ];
    for ts in &t.terms {
        term_links.push(context! {
            term => ts.term.as_str(),
            label => short_label(&ts.term),
            full_label => ts.term.label(),
            url => format!("/grades?term={}", ts.term.as_str()),
            selected => is_selected(&ts.term),
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
        .filter(|ts| *shown == Shown::All || is_selected(&ts.term))
        .map(|ts| {
            let courses: Vec<Value> = ts
                .courses
                .iter()
                .map(|c| {
                    course_line(
                        c,
                        corrected.contains(&ts.term, c.kind, &c.course_code, &c.score),
                    )
                })
                .collect();
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
        has_grades => !t.terms.is_empty(),
        missing => *shown == Shown::Missing,
        term_links => term_links,
        terms => terms,
        chart => chart(t),
    }
}

/// How the 加权平均分 is counted, in words for the page's help.
fn average_rule(rules: &AverageRules) -> Value {
    let attempt = match rules.attempt {
        AverageAttempt::Best => "历次考试中成绩最好的一次",
        AverageAttempt::First => "第一次有成绩的考试",
    };
    let levels: Vec<String> = FiveLevel::ALL
        .iter()
        .map(|l| {
            let h = rules.levels.of(*l);
            match h % 100 {
                0 => format!("{} {}", l.label(), h / 100),
                f => format!("{} {}.{:02}", l.label(), h / 100, f),
            }
        })
        .collect();
    context! { attempt => attempt, levels => levels.join("、") }
}

/// One course of a transcript, as the student and admin pages show it; `corrected`: staff
/// corrected its score (成绩更正), marked 已更正.
pub fn course_line(c: &CourseLine, corrected: bool) -> Value {
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
        nature => c.facts.nature,
        components => c.facts.components.iter().map(|(label, value)| context! { label => label, value => value }).collect::<Vec<_>>(),
        corrected => corrected,
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
