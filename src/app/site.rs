//! The application as the HTTP server sees it: [`Site`] for `App` (the router, body bounds,
//! the admin reserve, error pages, metrics), and [`start`]/[`serve`], which start the server
//! on it. They start no other thread: the caller starts the background threads once with
//! `App::start_background` and stops them after the server has stopped (see `cli::serve`).

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use super::App;
use crate::error::AppError;
use crate::handlers;
use crate::handlers::session::ADMIN_COOKIE;
use crate::http::{Body, Method, Request, Response};
use crate::server::{self, Options, Running, Site};

/// Bodies of ordinary forms and messages.
pub const SMALL_BODY: u64 = 64 * 1024;

impl Site for App {
    fn handle(&self, req: &Request) -> (&'static str, Response) {
        if req.path == "/metrics" && !metrics_on_public(self, req) {
            return (
                "metrics",
                handlers::error_response(self, &AppError::NotFound),
            );
        }
        handlers::route(self, req)
    }

    fn body_limit(&self, method: Method, path: &str) -> u64 {
        if method == Method::Post && path == "/admin/import" {
            self.config.max_upload_bytes
        } else {
            SMALL_BODY
        }
    }

    fn is_privileged(&self, req: &Request) -> bool {
        has_cookie(req, ADMIN_COOKIE)
    }

    fn too_large(&self, req: &Request, limit: u64) -> Response {
        handlers::error_page(self, &req.path, &AppError::TooLarge { limit })
    }

    fn internal_error(&self, what: &str) -> Response {
        handlers::error_response(self, &AppError::Internal(what.to_string()))
    }

    fn metrics(&self, req: &Request) -> Response {
        if req.path != "/metrics" || !matches!(req.method, Method::Get | Method::Head) {
            return Response::text(404, "not found: this listener serves /metrics only");
        }
        Response::new(
            200,
            "text/plain; version=0.0.4",
            Body::Bytes(self.metrics.render().into_bytes()),
        )
    }

    fn observe(&self, route: &'static str, status: u16, seconds: f64) {
        self.metrics.request(route, status, seconds);
    }
}

/// `/metrics` on the public listener: never when it has a listener of its own, and never to a
/// request that came through a proxy (its peer is the proxy's loopback address, whoever the
/// client is). The handler then applies its own loopback rule.
fn metrics_on_public(app: &App, req: &Request) -> bool {
    if app.config.metrics_listen.is_some() {
        return false;
    }
    let proxied = ["x-forwarded-for", "forwarded", "x-real-ip", "via"]
        .iter()
        .any(|h| req.header(h).is_some());
    app.config.metrics_public || !proxied
}

/// Whether the request carries a non-empty cookie called `name`.
fn has_cookie(req: &Request, name: &str) -> bool {
    req.headers
        .iter()
        .filter(|(k, _)| k == "cookie")
        .flat_map(|(_, v)| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .any(|(k, v)| k == name && !v.is_empty())
}

/// The server's options from the configuration.
pub fn options(app: &App) -> Options {
    let c = &app.config;
    let mut o = Options::new(c.workers, Duration::from_secs(c.idle_timeout_secs));
    o.trust_proxy = c.trust_proxy;
    o.max_connections = c.max_connections;
    o
}

/// Bind `listen` (and `metrics_listen`) from the config and [`serve`].
pub fn start(app: Arc<App>) -> Result<Running, String> {
    let listener = TcpListener::bind(&app.config.listen)
        .map_err(|e| format!("cannot listen on {}: {e}", app.config.listen))?;
    serve(app, listener)
}

/// Serve `app` on a listener bound by the caller (tests bind port 0 first, to know the port
/// that `public_url` must name), and on `metrics_listen` when configured.
pub fn serve(app: Arc<App>, listener: TcpListener) -> Result<Running, String> {
    let metrics = match app.config.metrics_listen {
        Some(addr) => Some(
            TcpListener::bind(addr)
                .map_err(|e| format!("cannot listen on {addr} (metrics_listen): {e}"))?,
        ),
        None => None,
    };
    let options = options(&app);
    server::start(listener, metrics, app, options)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_admin_cookie_marks_a_request_privileged() {
        let mut req = Request::new(Method::Post, "/admin/import");
        assert_eq!(ADMIN_COOKIE, "wxg_admin");
        assert!(!has_cookie(&req, "wxg_admin"));
        req.headers
            .push(("cookie".into(), "a=1; wxg_admin_pre=x; wxg_admin=".into()));
        assert!(!has_cookie(&req, "wxg_admin"), "empty value");
        req.headers
            .push(("cookie".into(), "b=2;wxg_admin=abc".into()));
        assert!(has_cookie(&req, "wxg_admin"));
    }
}
