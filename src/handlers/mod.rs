//! The router: one match from (method, path) to a handler, and the one place an `AppError`
//! becomes a response page ([`error_page`]: the admin layout under `/admin`, the student
//! layout elsewhere). Handlers are thin: parse, call a service, render.

pub mod admin;
pub mod admin_accounts;
pub mod admin_corrections;
pub mod admin_courses;
pub mod admin_import;
pub mod admin_import_map;
pub mod admin_releases;
pub mod admin_roles;
pub mod my_data;
pub mod notify;
pub mod oauth;
pub mod pages;
pub mod session;
pub mod sim;
pub mod student;
pub mod wx;

use minijinja::context;

use crate::app::App;
use crate::error::AppError;
use crate::http::{Method, Request, Response};

type Handled = Result<Response, AppError>;

/// Route a request; returns a route label (for metrics) and the response.
pub fn route(app: &App, req: &Request) -> (&'static str, Response) {
    let (label, result) = dispatch(app, req);
    let resp = match result {
        Ok(r) => r,
        Err(e) => {
            if e.status() >= 500 {
                log::error!("{} {}: {e}", label, req.path);
            }
            error_page(app, &req.path, &e)
        }
    };
    (label, resp)
}

fn dispatch(app: &App, req: &Request) -> (&'static str, Handled) {
    use Method::*;
    let path = req.path.as_str();
    let get = matches!(req.method, Get | Head);
    let post = req.method == Post;
    match path {
        "/" if get => ("home", student::home(app, req)),
        "/bind" if get => ("bind", student::bind_form(app, req)),
        "/bind" if post => ("bind", student::bind_submit(app, req)),
        "/unbind" if get => ("unbind", student::unbind_form(app, req)),
        "/unbind" if post => ("unbind", student::unbind_submit(app, req)),
        "/grades" if get => ("grades", student::grades(app, req)),
        "/grades/notices" if post => ("grades_notices", student::notices_submit(app, req)),
        "/me" if get => ("me", pages::whoami(app, req)),
        "/notify/subscribe" if get => ("notify_subscribe", notify::subscribe(app, req)),
        "/notify/subscribed" if get => ("notify_subscribed", notify::subscribed(app, req)),
        "/me/data" if get => ("my_data", my_data::page(app, req)),
        "/me/data.json" if get => ("my_data_download", my_data::json(app, req)),
        "/me/data.csv" if get => ("my_data_download", my_data::csv(app, req)),
        "/me/data/delete" if post => ("my_data_delete", my_data::delete(app, req)),
        "/wx/oauth/start" if get => ("oauth_start", oauth::start(app, req)),
        "/wx/oauth/callback" if get => ("oauth_callback", oauth::callback(app, req)),
        "/logout" if get => ("logout", pages::logout(app, req)),
        "/wx" if get => ("wx_verify", Ok(wx::verify(app, req))),
        "/wx" if post => ("wx_message", Ok(wx::message(app, req))),
        "/healthz" if get => ("healthz", Ok(pages::healthz(app))),
        "/metrics" if get => ("metrics", pages::metrics(app, req)),
        p if get && p.starts_with("/static/") => {
            ("static", pages::static_file(req, &p["/static/".len()..]))
        }
        p if p.starts_with("/_sim") && app.sim.is_some() => ("sim", sim::route(app, req)),
        p if get && p.ends_with(".txt") && p.rfind('/') == Some(0) => {
            ("verify_file", pages::verify_file(app, &p[1..]))
        }
        "/wx" if !get && !post => (
            "method",
            Ok(Response::text(405, "method not allowed").with_header("Allow", "GET, POST")),
        ),
        p if is_admin(p) => admin::route(app, req),
        "/" | "/wx/oauth/start" | "/wx/oauth/callback" | "/logout" | "/healthz" | "/metrics"
            if !get =>
        {
            (
                "method",
                Ok(Response::text(405, "method not allowed").with_header("Allow", "GET, HEAD")),
            )
        }
        _ => ("not_found", Err(AppError::NotFound)),
    }
}

/// Which encoding of a cached page `req` takes.
pub fn page_encoding(req: &Request) -> crate::page_cache::Encoding {
    if req.accepts_gzip() {
        crate::page_cache::Encoding::Gzip
    } else {
        crate::page_cache::Encoding::Identity
    }
}

/// A page from the cache, in the encoding it was asked for (see [`page_encoding`]).
pub fn page_response(
    encoding: crate::page_cache::Encoding,
    body: std::sync::Arc<[u8]>,
) -> Response {
    use crate::http::Body;
    let r = Response::new(200, "text/html; charset=utf-8", Body::Shared(body))
        .with_header("Vary", "Accept-Encoding")
        .with_header("Cache-Control", "no-store");
    match encoding {
        crate::page_cache::Encoding::Gzip => r.with_header("Content-Encoding", "gzip"),
        crate::page_cache::Encoding::Identity => r,
    }
}

/// The error page for `e` on `path`, with the right status: the admin layout under `/admin`,
/// the student layout elsewhere.
pub fn error_page(app: &App, path: &str, e: &AppError) -> Response {
    if is_admin(path) {
        if let Some(r) = admin::error_page(app, e) {
            return r;
        }
    }
    error_response(app, e)
}

fn is_admin(path: &str) -> bool {
    path == "/admin" || path.starts_with("/admin/")
}

/// The friendly error page for `e` in the student layout, with the right status.
pub fn error_response(app: &App, e: &AppError) -> Response {
    let page = e.page();
    let html = app.views.render(
        "error.html",
        context! {
            status => page.status,
            heading => page.heading,
            message => page.message,
            retry_url => page.link.map(|l| l.0),
            retry_label => page.link.map(|l| l.1),
        },
    );
    let mut resp = match html {
        Ok(h) => Response::html(page.status, h),
        Err(err) => {
            log::error!("error page failed to render: {err}");
            Response::text(page.status, page.heading)
        }
    };
    if let AppError::TooMany { .. } = e {
        resp = resp.with_header("Retry-After", "900");
    }
    resp
}
