//! Our own request and response values. Handlers see only these; `server.rs` is the one place
//! that converts to and from tiny_http, so every handler can be tested without a socket.

pub mod cookie;
pub mod csrf;
pub mod form;
pub mod multipart;
pub mod next;

use std::net::IpAddr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Post,
    Other,
}

/// A request with its body already read (within the bound decided for its route).
#[derive(Debug, Clone)]
pub struct Request {
    pub method: Method,
    /// The path as received, still percent-encoded, without the query string.
    pub path: String,
    /// The raw query string, without `?`.
    pub query: String,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// A large body the server received into an unnamed temporary file (positioned at its
    /// start); `body` is then empty. Only the admin upload's bound admits one.
    pub body_file: Option<std::sync::Arc<std::fs::File>>,
    /// The client's address (from X-Forwarded-For when `trust_proxy`).
    pub remote: Option<IpAddr>,
}

impl Request {
    pub fn new(method: Method, url: &str) -> Request {
        let (path, query) = match url.split_once('?') {
            Some((p, q)) => (p, q),
            None => (url, ""),
        };
        Request {
            method,
            path: path.to_string(),
            query: query.to_string(),
            headers: Vec::new(),
            body: Vec::new(),
            body_file: None,
            remote: None,
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n == "cookie")
            .find_map(|(_, v)| cookie::get_cookie(v, name))
    }

    /// The first value of a query parameter, percent-decoded.
    pub fn query_param(&self, name: &str) -> Option<String> {
        form::parse_urlencoded(&self.query)
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }

    /// The URL-encoded form in the body (empty when the body is something else).
    pub fn form(&self) -> form::Form {
        let is_form = self
            .header("content-type")
            .map(|ct| ct.starts_with("application/x-www-form-urlencoded"))
            .unwrap_or(false);
        if !is_form {
            return form::Form::default();
        }
        form::Form(form::parse_urlencoded(&String::from_utf8_lossy(&self.body)))
    }

    /// Whether the client takes gzip-encoded bodies.
    pub fn accepts_gzip(&self) -> bool {
        self.header("accept-encoding")
            .map(|v| {
                v.split(',').any(|e| {
                    e.trim()
                        .split(';')
                        .next()
                        .is_some_and(|n| n.trim().eq_ignore_ascii_case("gzip"))
                })
            })
            .unwrap_or(false)
    }

    /// The path and query as a local URL, for `next=` round trips.
    pub fn path_and_query(&self) -> String {
        if self.query.is_empty() {
            self.path.clone()
        } else {
            format!("{}?{}", self.path, self.query)
        }
    }
}

/// A response body.
#[derive(Debug)]
pub enum Body {
    Bytes(Vec<u8>),
    /// Bytes shared with a cache, sent without copying.
    Shared(std::sync::Arc<[u8]>),
    Static(&'static [u8]),
    File(std::fs::File),
}

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Body,
}

impl Response {
    pub fn new(status: u16, content_type: &str, body: Body) -> Response {
        Response {
            status,
            headers: vec![("Content-Type".into(), content_type.into())],
            body,
        }
    }

    pub fn html(status: u16, html: String) -> Response {
        Response::new(
            status,
            "text/html; charset=utf-8",
            Body::Bytes(html.into_bytes()),
        )
        .with_header("Cache-Control", "no-store")
    }

    pub fn text(status: u16, text: impl Into<String>) -> Response {
        Response::new(
            status,
            "text/plain; charset=utf-8",
            Body::Bytes(text.into().into_bytes()),
        )
        .with_header("Cache-Control", "no-store")
    }

    pub fn json(status: u16, value: &serde_json::Value) -> Response {
        Response::new(
            status,
            "application/json; charset=utf-8",
            Body::Bytes(value.to_string().into_bytes()),
        )
        .with_header("Cache-Control", "no-store")
    }

    /// A redirect to `location` (302, 303 ...). Body empty.
    pub fn redirect(status: u16, location: &str) -> Response {
        Response {
            status,
            headers: vec![
                ("Location".into(), location.into()),
                ("Cache-Control".into(), "no-store".into()),
            ],
            body: Body::Bytes(Vec::new()),
        }
    }

    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Response {
        self.headers.push((name.to_string(), value.into()));
        self
    }

    pub fn with_cookie(self, c: &cookie::SetCookie) -> Response {
        self.with_header("Set-Cookie", c.to_header_value())
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as bytes, when it is in memory (tests and metrics).
    pub fn body_bytes(&self) -> &[u8] {
        match &self.body {
            Body::Bytes(b) => b,
            Body::Static(b) => b,
            Body::Shared(b) => b,
            Body::File(_) => &[],
        }
    }
}
