//! Small pages: home, the signed-in identity page, logout, static files, health and metrics.

use minijinja::context;

use super::session;
use super::Handled;
use crate::app::App;
use crate::error::AppError;
use crate::http::{Body, Request, Response};
use crate::service::students;
use crate::views::STATIC_FILES;

/// The signed-in WeChat identity (`/me`).
pub fn whoami(app: &App, req: &Request) -> Handled {
    let student = match session::require_visitor(app, req)? {
        Ok(s) => s,
        Err(redirect) => return Ok(redirect),
    };
    let user = students::wx_user(app, &student.openid)?.unwrap_or_default();
    let short: String = student.openid.chars().take(8).collect();
    let bound = match students::binding(app, &student.openid)? {
        Some(b) => {
            let s = students::student_or_placeholder(app, &b.student_id)?;
            context! { student_id => s.student_id, name => s.name }
        }
        None => minijinja::Value::from(()),
    };
    let html = app.views.render(
        "whoami.html",
        context! {
            bound => bound,
            user => context! {
                openid_short => format!("{short}…"),
                nickname => user.nickname,
                avatar_url => user.avatar_url,
                scope => if user.updated > 0 { "snsapi_userinfo" } else { "snsapi_base" },
            },
        },
    )?;
    Ok(Response::html(200, html))
}

pub fn logout(app: &App, req: &Request) -> Handled {
    let removal = session::end_student(app, req)?;
    let html = app.views.render("signed_out.html", context! {})?;
    Ok(Response::html(200, html).with_cookie(&removal))
}

pub fn static_file(req: &Request, name: &str) -> Handled {
    let Some((_, ctype, bytes)) = STATIC_FILES.iter().find(|(n, _, _)| *n == name) else {
        return Err(AppError::NotFound);
    };
    let versioned = req.query.starts_with("v=");
    Ok(Response::new(200, ctype, Body::Static(bytes)).with_header(
        "Cache-Control",
        if versioned {
            "public, max-age=31536000, immutable"
        } else {
            "public, max-age=3600"
        },
    ))
}

/// A WeChat domain-check file from `verify_dir` (`/MP_verify_<code>.txt`), as plain text.
pub fn verify_file(app: &App, name: &str) -> Handled {
    let bytes = crate::service::verify_files::read(&app.config.verify_dir, name)
        .ok_or(AppError::NotFound)?;
    Ok(
        Response::new(200, "text/plain; charset=utf-8", Body::Bytes(bytes))
            .with_header("Cache-Control", "no-cache"),
    )
}

pub fn healthz(app: &App) -> Response {
    let dead = app.background_health.dead();
    if !dead.is_empty() {
        return Response::text(
            503,
            format!("background thread stopped: {}", dead.join(", ")),
        );
    }
    if crate::service::admin::overview::data_file_healthy(app) {
        Response::text(200, "ok")
    } else {
        Response::text(503, "data file not answering")
    }
}

pub fn metrics(app: &App, req: &Request) -> Handled {
    let loopback = req.remote.map(|ip| ip.is_loopback()).unwrap_or(false);
    if !loopback && !app.config.metrics_public {
        return Err(AppError::NotFound);
    }
    Ok(Response::new(
        200,
        "text/plain; version=0.0.4",
        Body::Bytes((app.metrics.render() + &app.pages.render_metrics()).into_bytes()),
    ))
}
