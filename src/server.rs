//! The HTTP server: a tiny_http listener and a fixed pool of workers on `recv()`. The only place
//! that knows tiny_http. It decides each body's bound before reading it, turns a handler panic
//! into a 500 page, writes one log line per request, and guards against tiny_http's weak spots
//! (no socket timeouts, whole-length allocation when an unread body is dropped).

use std::io::{Cursor, Read};
use std::net::{SocketAddr, TcpListener};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::app::App;
use crate::handlers;
use crate::http::{Body, Method, Request, Response};

/// Bodies of ordinary forms and messages.
pub const SMALL_BODY: u64 = 64 * 1024;
/// An over-bound body up to this much past its bound is read and thrown away, so a browser
/// sees our 413 page instead of a reset connection.
const DRAIN_CAP: u64 = 64 * 1024 * 1024;
/// At most this many over-bound uploads are drained at once.
const MAX_DRAINERS: usize = 16;

/// A running server.
pub struct Running {
    pub addr: SocketAddr,
    pub app: Arc<App>,
    server: Arc<tiny_http::Server>,
    workers: Vec<JoinHandle<()>>,
    /// Background threads that end with the server (the grade-notice sender).
    background: Vec<JoinHandle<()>>,
    stopping: Arc<AtomicBool>,
    /// Set when the listener died (not by our own shutdown).
    pub listener_failed: Arc<AtomicBool>,
}

/// Bind `config.listen` and start the workers.
pub fn start(app: Arc<App>) -> Result<Running, String> {
    let listener = TcpListener::bind(&app.config.listen)
        .map_err(|e| format!("cannot listen on {}: {e}", app.config.listen))?;
    start_on(app, listener)
}

/// Start the workers on a listener bound by the caller (tests bind port 0 first, to know the
/// port that `public_url` must name).
pub fn start_on(app: Arc<App>, listener: TcpListener) -> Result<Running, String> {
    let addr = listener
        .local_addr()
        .map_err(|e| format!("cannot read the listening address: {e}"))?;
    let listener_fd = raw_fd(&listener);
    conn_guard::no_delay(listener_fd);
    let server = tiny_http::Server::from_listener(listener, None)
        .map_err(|e| format!("cannot start the HTTP server: {e}"))?;
    let server = Arc::new(server);
    let stopping = Arc::new(AtomicBool::new(false));
    let listener_failed = Arc::new(AtomicBool::new(false));
    let drainers = Arc::new(AtomicUsize::new(0));

    crate::server::conn_guard::spawn(
        addr.port(),
        listener_fd,
        Duration::from_secs(app.config.idle_timeout_secs),
        stopping.clone(),
    );

    crate::service::import::jobs::spawn_worker(app.clone());
    let mut workers = Vec::with_capacity(app.config.workers);
    for i in 0..app.config.workers {
        let server = server.clone();
        let app = app.clone();
        let stopping = stopping.clone();
        let failed = listener_failed.clone();
        let drainers = drainers.clone();
        let h = std::thread::Builder::new()
            .name(format!("worker-{i}"))
            .spawn(move || worker(&server, &app, &stopping, &failed, &drainers))
            .map_err(|e| format!("cannot start worker thread: {e}"))?;
        workers.push(h);
    }
    let background = crate::service::notices::spawn_sender(app.clone(), stopping.clone())
        .into_iter()
        .collect();
    Ok(Running {
        addr,
        app,
        server,
        workers,
        background,
        stopping,
        listener_failed,
    })
}

impl Running {
    /// Stop accepting, let in-flight requests finish, join the workers.
    pub fn shutdown(self) {
        self.stopping.store(true, Ordering::SeqCst);
        for _ in 0..self.workers.len() {
            self.server.unblock();
        }
        for w in self.workers.into_iter().chain(self.background) {
            let _ = w.join();
        }
    }

    /// A handle that asks the server to stop (for signal handlers and the listener watchdog).
    pub fn stopper(&self) -> Stopper {
        Stopper {
            server: self.server.clone(),
            stopping: self.stopping.clone(),
            workers: self.workers.len(),
        }
    }

    /// Block until every worker has ended (after a `Stopper::stop`).
    pub fn wait(self) {
        for w in self.workers.into_iter().chain(self.background) {
            let _ = w.join();
        }
    }
}

#[derive(Clone)]
pub struct Stopper {
    server: Arc<tiny_http::Server>,
    stopping: Arc<AtomicBool>,
    workers: usize,
}

impl Stopper {
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        for _ in 0..self.workers {
            self.server.unblock();
        }
    }
}

fn worker(
    server: &tiny_http::Server,
    app: &App,
    stopping: &AtomicBool,
    failed: &AtomicBool,
    drainers: &Arc<AtomicUsize>,
) {
    loop {
        if stopping.load(Ordering::SeqCst) {
            return;
        }
        match server.recv() {
            Ok(rq) => serve_one(app, rq, drainers),
            Err(e) => {
                if stopping.load(Ordering::SeqCst) {
                    return;
                }
                if e.to_string() == "thread unblocked" {
                    continue;
                }
                // The accept loop has ended (e.g. out of file descriptors): the port is closed
                // for good. Stop so that the supervisor restarts us.
                log::error!("the listener failed: {e}; stopping so that the service manager restarts wxgrades");
                failed.store(true, Ordering::SeqCst);
                stopping.store(true, Ordering::SeqCst);
                for _ in 0..64 {
                    server.unblock();
                }
                return;
            }
        }
    }
}

/// The body bound for a route, decided before reading.
fn body_limit(app: &App, method: Method, path: &str) -> u64 {
    if method == Method::Post && path == "/admin/import" {
        app.config.max_upload_bytes
    } else {
        SMALL_BODY
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

fn serve_one(app: &App, mut rq: tiny_http::Request, drainers: &Arc<AtomicUsize>) {
    let started = Instant::now();
    let method = method_of(rq.method());
    let mut req = Request::new(method, rq.url());
    req.headers = rq
        .headers()
        .iter()
        .map(|h| {
            (
                h.field.as_str().as_str().to_ascii_lowercase(),
                h.value.as_str().to_string(),
            )
        })
        .collect();
    req.remote = client_ip(app, &rq, &req);
    let limit = body_limit(app, method, &req.path);

    if let Some(declared) = rq.body_length() {
        if declared as u64 > limit {
            reject_oversized(app, rq, req, limit, declared as u64, drainers, started);
            return;
        }
    }
    if method == Method::Post || rq.body_length().is_some() {
        let mut buf = Vec::new();
        let read = rq.as_reader().take(limit + 1).read_to_end(&mut buf);
        match read {
            Ok(_) if buf.len() as u64 > limit => {
                // Chunked and over the bound. A chunked body has no whole-length drop cost.
                let resp =
                    handlers::error_response(app, &crate::error::AppError::TooLarge { limit });
                finish(app, rq, &req, "too_large", resp, started);
                return;
            }
            Ok(_) => req.body = buf,
            Err(_) => {
                let resp = Response::text(408, "request body not received in time")
                    .with_header("Connection", "close");
                finish(app, rq, &req, "slow_body", resp, started);
                return;
            }
        }
    }

    let (route, resp) = match catch_unwind(AssertUnwindSafe(|| handlers::route(app, &req))) {
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
            (
                "panic",
                handlers::error_response(app, &crate::error::AppError::Internal(what)),
            )
        }
    };
    finish(app, rq, &req, route, resp, started);
}

/// Answer 413 to a request whose declared body is over its bound, without ever letting
/// tiny_http allocate the whole declared length (it does when an unread body is dropped).
fn reject_oversized(
    app: &App,
    rq: tiny_http::Request,
    req: Request,
    limit: u64,
    declared: u64,
    drainers: &Arc<AtomicUsize>,
    started: Instant,
) {
    let resp = handlers::error_response(app, &crate::error::AppError::TooLarge { limit })
        .with_header("Connection", "close");
    log_line(&req, resp.status, started);
    app.metrics
        .request("too_large", 413, started.elapsed().as_secs_f64());
    let can_drain = declared <= limit.saturating_add(DRAIN_CAP)
        && drainers.fetch_add(1, Ordering::SeqCst) < MAX_DRAINERS;
    if can_drain {
        // Read and discard the body on a thread of its own (bounded in number), then answer.
        let count = drainers.clone();
        let spawned = std::thread::Builder::new()
            .name("drain".into())
            .spawn(move || {
                let mut rq = rq;
                let mut sink = std::io::sink();
                let copied = std::io::copy(&mut rq.as_reader().take(declared), &mut sink);
                match copied {
                    Ok(n) if n == declared => {
                        let _ = rq.respond(to_tiny(resp));
                    }
                    _ => abandon(rq, resp),
                }
                count.fetch_sub(1, Ordering::SeqCst);
            });
        if spawned.is_err() {
            drainers.fetch_sub(1, Ordering::SeqCst);
        }
    } else {
        if declared <= limit.saturating_add(DRAIN_CAP) {
            drainers.fetch_sub(1, Ordering::SeqCst);
        }
        abandon(rq, resp);
    }
}

/// Write `resp` and give up the connection without dropping the unread body: the socket is
/// released when the client closes it or the idle timeout ends it. Used only for bodies too
/// large, or too slow, to drain.
fn abandon(rq: tiny_http::Request, resp: Response) {
    let mut stream = rq.upgrade("close", to_tiny(resp));
    let _ = std::io::Write::flush(&mut stream);
    std::mem::forget(stream);
}

fn finish(
    app: &App,
    rq: tiny_http::Request,
    req: &Request,
    route: &'static str,
    resp: Response,
    started: Instant,
) {
    let status = resp.status;
    let _ = rq.respond(to_tiny(resp));
    log_line(req, status, started);
    app.metrics
        .request(route, status, started.elapsed().as_secs_f64());
}

fn log_line(req: &Request, status: u16, started: Instant) {
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

fn client_ip(app: &App, rq: &tiny_http::Request, req: &Request) -> Option<std::net::IpAddr> {
    if app.config.trust_proxy {
        if let Some(ip) = req
            .header("x-forwarded-for")
            .and_then(|v| v.rsplit(',').next())
            .and_then(|s| s.trim().parse().ok())
        {
            return Some(ip);
        }
    }
    rq.remote_addr().map(|a| a.ip())
}

type TinyResponse = tiny_http::Response<Box<dyn Read + Send>>;

fn to_tiny(resp: Response) -> TinyResponse {
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

#[cfg(unix)]
fn raw_fd(l: &TcpListener) -> i32 {
    use std::os::fd::AsRawFd;
    l.as_raw_fd()
}

#[cfg(not(unix))]
fn raw_fd(_: &TcpListener) -> i32 {
    -1
}

pub mod conn_guard {
    //! Read and write timeouts on accepted connections. tiny_http sets none and gives no hook,
    //! so this thread finds our accepted sockets (local port = our port, not the listener
    //! itself) among the process's descriptors and sets them; a silent or stalled client then
    //! frees its thread after `timeout`.

    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    pub fn spawn(port: u16, listener_fd: i32, timeout: Duration, stopping: Arc<AtomicBool>) {
        let _ = std::thread::Builder::new()
            .name("conn-guard".into())
            .spawn(move || {
                let mut done: std::collections::HashSet<(i32, String)> = Default::default();
                while !stopping.load(Ordering::Relaxed) {
                    sweep(port, listener_fd, timeout, &mut done);
                    std::thread::sleep(Duration::from_millis(200));
                }
            });
    }

    #[cfg(target_os = "linux")]
    fn sweep(
        port: u16,
        listener_fd: i32,
        timeout: Duration,
        done: &mut std::collections::HashSet<(i32, String)>,
    ) {
        use std::mem::ManuallyDrop;
        use std::net::TcpStream;
        use std::os::fd::FromRawFd;
        let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
            return;
        };
        let mut seen = std::collections::HashSet::new();
        for entry in dir.flatten() {
            let Some(fd) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<i32>().ok())
            else {
                continue;
            };
            if fd == listener_fd {
                continue;
            }
            let Ok(target) = std::fs::read_link(entry.path()) else {
                continue;
            };
            let target = target.to_string_lossy().to_string();
            if !target.starts_with("socket:") {
                continue;
            }
            let key = (fd, target);
            seen.insert(key.clone());
            if done.contains(&key) {
                continue;
            }
            // SAFETY: the descriptor is only borrowed: ManuallyDrop never closes it. If it was
            // closed and reused meanwhile, the calls below fail or touch another socket of ours,
            // which is harmless.
            let s = ManuallyDrop::new(unsafe { TcpStream::from_raw_fd(fd) });
            let ours =
                s.local_addr().map(|a| a.port() == port).unwrap_or(false) && s.peer_addr().is_ok();
            if ours {
                let _ = s.set_nodelay(true);
                let _ = s.set_read_timeout(Some(timeout));
                let _ = s.set_write_timeout(Some(timeout));
            }
            done.insert(key);
        }
        done.retain(|k| seen.contains(k));
    }

    /// TCP_NODELAY on the listening socket, which accepted sockets inherit on Linux: responses
    /// are written in pieces, and Nagle's algorithm against the client's delayed ACK would add
    /// 40 ms to each.
    #[cfg(target_os = "linux")]
    pub fn no_delay(listener_fd: i32) {
        use std::mem::ManuallyDrop;
        use std::net::TcpStream;
        use std::os::fd::FromRawFd;
        // SAFETY: borrowed only (never closed); setsockopt(TCP_NODELAY) is valid on a listener.
        let s = ManuallyDrop::new(unsafe { TcpStream::from_raw_fd(listener_fd) });
        let _ = s.set_nodelay(true);
    }

    #[cfg(not(target_os = "linux"))]
    pub fn no_delay(_: i32) {}

    #[cfg(not(target_os = "linux"))]
    fn sweep(_: u16, _: i32, _: Duration, _: &mut std::collections::HashSet<(i32, String)>) {}
}
