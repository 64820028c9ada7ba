//! Our `Response` written straight to a socket, for the answers the connection guard gives
//! itself (refusals, the metrics listener) without a worker; and the headers every page carries,
//! shared with the worker pool.

use std::io::{Read, Write};

use crate::http::{Body, Response};

/// Sent with every page: no scripts at all (the pages have none), no framing, styles and
/// forms only from us, images from us or https (WeChat avatars), no sniffing, and no
/// Referer (with its query string) to other sites.
const PAGE_SECURITY_HEADERS: [(&str, &str); 4] = [
    (
        "Content-Security-Policy",
        "default-src 'self'; script-src 'none'; style-src 'self'; img-src 'self' https: data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    ),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "same-origin"),
    ("X-Frame-Options", "DENY"),
];

/// Add the page headers to an HTML response that lacks them.
pub fn secure_page(resp: &mut Response) {
    if resp
        .header("content-type")
        .is_some_and(|t| t.starts_with("text/html"))
    {
        for (k, v) in PAGE_SECURITY_HEADERS {
            if resp.header(k).is_none() {
                resp.headers.push((k.to_string(), v.to_string()));
            }
        }
    }
}

/// The standard reason phrase (only for the statuses we send).
pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        302 => "Found",
        304 => "Not Modified",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Payload Too Large",
        414 => "URI Too Long",
        417 => "Expectation Failed",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Status",
    }
}

/// Write `resp` to `w` as HTTP/1.1; `close` adds `Connection: close`; `head_only` omits the body
/// (HEAD). Framing headers in `resp` are ignored: the length is ours to state.
pub fn write(
    w: &mut impl Write,
    mut resp: Response,
    close: bool,
    head_only: bool,
) -> std::io::Result<()> {
    secure_page(&mut resp);
    let mut body: Box<dyn Read> = match resp.body {
        Body::Bytes(b) => Box::new(std::io::Cursor::new(b)),
        Body::Static(b) => Box::new(b),
        Body::Shared(b) => Box::new(std::io::Cursor::new(b)),
        Body::File(f) => Box::new(f),
    };
    // Files are read whole only here, which serves nothing large (refusals and metrics).
    let mut bytes = Vec::new();
    body.read_to_end(&mut bytes)?;
    let mut head = format!("HTTP/1.1 {} {}\r\n", resp.status, reason(resp.status));
    for (k, v) in &resp.headers {
        let framing = ["content-length", "transfer-encoding", "connection"]
            .iter()
            .any(|f| k.eq_ignore_ascii_case(f));
        let clean = |s: &str| s.bytes().all(|b| b == b'\t' || (0x20..0x7f).contains(&b));
        if !framing && clean(k) && clean(v) {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
    }
    head.push_str(&format!("Content-Length: {}\r\n", bytes.len()));
    if close {
        head.push_str("Connection: close\r\n");
    }
    head.push_str("\r\n");
    let mut out = head.into_bytes();
    if !head_only {
        out.extend_from_slice(&bytes);
    }
    w.write_all(&out)?;
    w.flush()
}
