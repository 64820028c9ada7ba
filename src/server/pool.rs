//! The worker pool: a fixed number of threads on tiny_http's `recv()`, each turning one request
//! into our `Request`, calling the site's handler (a panic becomes the 500 page, not a dead
//! worker) and writing its `Response` back through tiny_http. Requests come only from the
//! connection guard over the private Unix socket, checked and with their whole body (a large
//! one as the file the guard received it into, `spool.rs`), so a worker never waits on a client.

use std::io::{Cursor, Read};
use std::net::{IpAddr, SocketAddr};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{reply, Shared, PEER_HEADER, SPOOL_HEADER};
use crate::http::{Body, Method, Request, Response};

/// How often an idle worker looks at the stop flag.
const POLL: Duration = Duration::from_millis(100);
/// After a stop, workers wait this long at most for connections still being answered.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// One worker: serve requests until the server stops and no connection needs us any more.
pub fn worker(server: &tiny_http::Server, shared: &Arc<Shared>) {
    let mut stop_seen: Option<Instant> = None;
    loop {
        if shared.stopping.load(Ordering::SeqCst) {
            let since = *stop_seen.get_or_insert_with(Instant::now);
            if shared.live.load(Ordering::SeqCst) == 0 || since.elapsed() > STOP_GRACE {
                return;
            }
        }
        match server.recv_timeout(POLL) {
            Ok(Some(rq)) => serve_one(rq, shared),
            Ok(None) => {}
            Err(e) => {
                if !shared.stopping.load(Ordering::SeqCst) {
                    shared.listener_died(&format!("the worker pool's accept loop ended: {e}"));
                }
                return;
            }
        }
    }
}

fn method_of(m: &tiny_http::Method) -> Method {
    match m {
        tiny_http::Method::Get => Method::Get,
        tiny_http::Method::Head => Method::Head,
        tiny_http::Method::Post => Method::Post,
        _ => Method::Other,
    }
}

fn serve_one(mut rq: tiny_http::Request, shared: &Arc<Shared>) {
    let started = Instant::now();
    let method = method_of(rq.method());
    let mut req = Request::new(method, rq.url());
    let mut peer: Option<SocketAddr> = None;
    req.headers = Vec::with_capacity(rq.headers().len());
    for h in rq.headers() {
        let name = h.field.as_str().as_str().to_ascii_lowercase();
        if name == PEER_HEADER {
            peer = h.value.as_str().parse().ok();
        } else if name == SPOOL_HEADER {
            req.body_file = shared.spools.take(h.value.as_str()).map(Arc::new);
        } else {
            req.headers.push((name, h.value.as_str().to_string()));
        }
    }
    req.remote = client_ip(shared.options.trust_proxy, &req, peer);
    if let Some(n) = rq.body_length() {
        // The guard checked the length against the route's bound and sent the whole body.
        let mut buf = Vec::with_capacity(n.min(1024 * 1024));
        if rq.as_reader().take(n as u64).read_to_end(&mut buf).is_ok() {
            req.body = buf;
        }
    }
    let handled = catch_unwind(AssertUnwindSafe(|| shared.site.handle(&req)));
    let (route, resp) = match handled {
        Ok(r) => r,
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            log::error!(
                "handler panicked on {} {}: {what}",
                method_name(method),
                req.path
            );
            ("panic", shared.site.internal_error(&what))
        }
    };
    let status = resp.status;
    let _ = rq.respond(to_tiny(resp));
    log_line(&req, status, started);
    shared
        .site
        .observe(route, status, started.elapsed().as_secs_f64());
}

/// The client: the guard's peer, or with `trust_proxy` the last X-Forwarded-For entry.
fn client_ip(trust_proxy: bool, req: &Request, peer: Option<SocketAddr>) -> Option<IpAddr> {
    if trust_proxy {
        if let Some(ip) = req
            .header("x-forwarded-for")
            .and_then(|v| v.rsplit(',').next())
            .and_then(|s| s.trim().parse().ok())
        {
            return Some(ip);
        }
    }
    peer.map(|a| a.ip())
}

pub fn log_line(req: &Request, status: u16, started: Instant) {
    // The path only: query strings carry OAuth codes and states.
    let path: String = req.path.chars().take(200).collect();
    log::info!(
        "{} {} {} {:.1}ms",
        method_name(req.method),
        path,
        status,
        started.elapsed().as_secs_f64() * 1000.0
    );
}

fn method_name(m: Method) -> &'static str {
    match m {
        Method::Get => "GET",
        Method::Head => "HEAD",
        Method::Post => "POST",
        Method::Other => "OTHER",
    }
}

type TinyResponse = tiny_http::Response<Box<dyn Read + Send>>;

fn to_tiny(mut resp: Response) -> TinyResponse {
    reply::secure_page(&mut resp);
    let (reader, len): (Box<dyn Read + Send>, Option<usize>) = match resp.body {
        Body::Bytes(b) => {
            let n = b.len();
            (Box::new(Cursor::new(b)), Some(n))
        }
        Body::Static(b) => (Box::new(Cursor::new(b)), Some(b.len())),
        Body::Shared(b) => {
            let n = b.len();
            (Box::new(Cursor::new(b)), Some(n))
        }
        Body::File(f) => {
            let n = f.metadata().ok().map(|m| m.len() as usize);
            (Box::new(f), n)
        }
    };
    let headers = resp
        .headers
        .iter()
        .filter_map(|(k, v)| tiny_http::Header::from_bytes(k.as_bytes(), v.as_bytes()).ok())
        .collect();
    // A known length goes out as Content-Length whatever its size (tiny_http would switch to
    // chunked at 32 KiB, costing the client a chunk parser and us the framing).
    let r = tiny_http::Response::new(
        tiny_http::StatusCode(resp.status),
        headers,
        reader,
        len,
        None,
    );
    if len.is_some() {
        r.with_chunked_threshold(usize::MAX)
    } else {
        r
    }
}
