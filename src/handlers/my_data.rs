//! 我的数据 (`/me/data`): what is held about the signed-in student, its download as JSON
//! (`/me/data.json`) or CSV (`/me/data.csv`), and the deletion of their binding and WeChat data
//! (`POST /me/data/delete`, CSRF and a ticked confirmation; then the browser is signed out).

use minijinja::context;

use super::session::{self, Visitor};
use super::Handled;
use crate::app::App;
use crate::clock::local_datetime;
use crate::error::AppError;
use crate::http::Body;
use crate::http::{csrf, Request, Response};
use crate::service::privacy;

fn require(app: &App, req: &Request) -> Result<Result<Visitor, Response>, AppError> {
    session::require_visitor(app, req)
}

/// The page: what is held, the two downloads, and the delete form.
pub fn page(app: &App, req: &Request) -> Handled {
    let v = match require(app, req)? {
        Ok(v) => v,
        Err(redirect) => return Ok(redirect),
    };
    render(app, &v, 200, None)
}

fn render(app: &App, v: &Visitor, status: u16, error: Option<&str>) -> Handled {
    let d = privacy::my_data(app, &v.openid)?;
    let short: String = v.openid.chars().take(8).collect();
    let html = app.views.render(
        "my_data.html",
        context! {
            csrf_token => csrf::token_for(&v.session_id),
            error => error,
            openid_short => format!("{short}…"),
            nickname => d.wx_user.as_ref().and_then(|u| u.nickname.clone()),
            bound => d.binding.as_ref().map(|b| context! {
                student_id => b.student_id,
                since => local_datetime(b.bound_at),
            }),
            grades => d.grades.len(),
            signins => d.signins.len(),
            notices => d.notices.len(),
            notices_on => d.notices_on,
            keep_days => app.config.privacy.keep_signins_days,
            contact => privacy::contact(&app.config),
        },
    )?;
    Ok(Response::html(status, html))
}

fn download(app: &App, req: &Request, csv: bool) -> Handled {
    let v = match require(app, req)? {
        Ok(v) => v,
        Err(redirect) => return Ok(redirect),
    };
    let d = privacy::my_data(app, &v.openid)?;
    let stamp = crate::clock::stamp(app.clock.now());
    let (ctype, ext, bytes) = if csv {
        ("text/csv; charset=utf-8", "csv", d.to_csv().into_bytes())
    } else {
        let text = serde_json::to_string_pretty(&d.to_json())
            .map_err(|e| AppError::Internal(format!("export: {e}")))?;
        ("application/json; charset=utf-8", "json", text.into_bytes())
    };
    Ok(Response::new(200, ctype, Body::Bytes(bytes))
        .with_header("Cache-Control", "no-store")
        .with_header(
            "Content-Disposition",
            format!("attachment; filename=\"my-data-{stamp}.{ext}\""),
        ))
}

pub fn json(app: &App, req: &Request) -> Handled {
    download(app, req, false)
}

pub fn csv(app: &App, req: &Request) -> Handled {
    download(app, req, true)
}

/// Delete the binding and WeChat data, after the CSRF check and the ticked confirmation; the
/// browser is signed out and told what happened.
pub fn delete(app: &App, req: &Request) -> Handled {
    let Some(v) = session::visitor(app, req)? else {
        return Ok(session::sign_in_redirect("/me/data"));
    };
    let form = session::student_post(app, req, &v)?;
    if form.get("confirm") != Some("yes") {
        return render(
            app,
            &v,
            400,
            Some("请先勾选“我确认删除”，再点删除。什么都没有删除。"),
        );
    }
    app.changed(privacy::delete_my_data(app, &v.openid, req.remote)?);
    let removal = session::end_student(app, req)?;
    let html = app.views.render("data_deleted.html", context! {})?;
    Ok(Response::html(200, html).with_cookie(&removal))
}
