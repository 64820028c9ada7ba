//! The HTTP server: a tiny_http listener and a fixed pool of workers on `recv()`. The only place
//! that knows tiny_http. It decides each body's bound before reading it, turns a handler panic
//! into a 500 page, writes one log line per request, and guards against tiny_http's weak spots
//! (no socket timeouts, whole-length allocation when an unread body is dropped).

use std::io::{Cursor, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::app::App;
use crate::handlers;
use crate::http::{Body, Method, Request, Response};
use crate::server::conn_guard::Guard;

/// Bodies of ordinary forms and messages.
pub const SMALL_BODY: u64 = 64 * 1024;
/// An over-bound body up to this much past its bound is read and thrown away, so a browser
/// sees our 413 page instead of a reset connection.
const DRAIN_CAP: u64 = 64 * 1024 * 1024;
/// At most this many over-bound uploads are drained at once.
const MAX_DRAINERS: usize = 16;

/// What answers a request: the router in production (`handlers::route`).
pub type Handler = fn(&App, &Request) -> (&'static str, Response);

/// What the workers share besides the `App`.
struct Shared {
    /// Over-bound uploads being drained now.
    drainers: AtomicUsize,
    guard: Arc<Guard>,
    handler: Handler,
    /// Requests whose body is still on the wire go to the body readers, so that a client that
    /// stalls its body holds a body reader, never a worker that serves pages.
    bodies: SyncSender<BodyJob>,
}

/// A request handed to a body reader: it reads the body, then handles the request.
struct BodyJob {
    rq: tiny_http::Request,
    req: Request,
    limit: u64,
    started: Instant,
}

/// A running server.
pub struct Running {
    pub addr: SocketAddr,
    pub app: Arc<App>,
    server: Arc<tiny_http::Server>,
    workers: Vec<JoinHandle<()>>,
    /// Background threads that end with the server (the grade-notice sender).
    background: crate::app::Background,
    stopping: Arc<AtomicBool>,
    /// Set when the listener died (not by our own shutdown).
    pub listener_failed: Arc<AtomicBool>,
}

/// Bind `config.listen` and start the workers.
pub fn start(app: Arc<App>) -> Result<Running, String> {
    let listener = TcpListener::bind(&app.config.listen)
        .map_err(|e| format!("cannot listen on {}: {e}", app.config.listen))?;
    // Timed snapshots into backup.dir (not in demo mode, where the data is sample data).
    let timed_backups = !app.config.demo;
    start_full(app, listener, handlers::route, timed_backups)
}

/// Start the workers on a listener bound by the caller (tests bind port 0 first, to know the
/// port that `public_url` must name).
pub fn start_on(app: Arc<App>, listener: TcpListener) -> Result<Running, String> {
    start_with_handler(app, listener, handlers::route)
}

/// `start_on` with another handler (the server's own tests).
pub fn start_with_handler(
    app: Arc<App>,
    listener: TcpListener,
    handler: Handler,
) -> Result<Running, String> {
    start_full(app, listener, handler, false)
}

fn start_full(
    app: Arc<App>,
    listener: TcpListener,
    handler: Handler,
    timed_backups: bool,
) -> Result<Running, String> {
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

    let guard = Arc::new(Guard::new(
        addr,
        listener_fd,
        Duration::from_secs(app.config.idle_timeout_secs),
    ));
    conn_guard::spawn(guard.clone(), stopping.clone());
    // Body readers: enough that a few stalled clients do not hold up real uploads and
    // messages; a queue as long again, beyond which a request is told to come back (503).
    let readers = (app.config.workers / 2).clamp(4, 32);
    let (bodies, body_queue) = sync_channel::<BodyJob>(readers);
    let shared = Arc::new(Shared {
        drainers: AtomicUsize::new(0),
        guard,
        handler,
        bodies,
    });

    let mut workers = Vec::with_capacity(app.config.workers);
    for i in 0..app.config.workers {
        let server = server.clone();
        let app = app.clone();
        let stopping = stopping.clone();
        let failed = listener_failed.clone();
        let shared = shared.clone();
        let h = std::thread::Builder::new()
            .name(format!("worker-{i}"))
            .spawn(move || worker(&server, &app, &stopping, &failed, &shared))
            .map_err(|e| format!("cannot start worker thread: {e}"))?;
        workers.push(h);
    }
    let body_queue = Arc::new(Mutex::new(body_queue));
    for i in 0..readers {
        let (app, stopping, shared, queue) = (
            app.clone(),
            stopping.clone(),
            shared.clone(),
            body_queue.clone(),
        );
        let h = std::thread::Builder::new()
            .name(format!("body-{i}"))
            .spawn(move || body_reader(&app, &stopping, &shared, &queue))
            .map_err(|e| format!("cannot start body reader thread: {e}"))?;
        workers.push(h);
    }
    let background = App::start_background(&app, timed_backups);
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
        for w in self.workers {
            let _ = w.join();
        }
        self.background.stop_and_join();
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
        for w in self.workers {
            let _ = w.join();
        }
        self.background.stop_and_join();
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
    shared: &Arc<Shared>,
) {
    loop {
        if stopping.load(Ordering::SeqCst) {
            return;
        }
        let next = match server.try_recv() {
            Ok(Some(rq)) => Ok(rq),
            Ok(None) => {
                let _idle = shared.guard.idle_worker();
                server.recv()
            }
            Err(e) => Err(e),
        };
        match next {
            Ok(rq) => serve_one(app, rq, shared),
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

fn serve_one(app: &App, mut rq: tiny_http::Request, shared: &Arc<Shared>) {
    let guard = &shared.guard;
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
            reject_oversized(app, rq, req, limit, declared as u64, shared, started);
            return;
        }
    }
    // tiny_http has already read bodies of up to 1 KiB (without `Expect: 100-continue`);
    // anything else is still on the wire and goes to a body reader.
    let expects_continue = req.header("expect").is_some();
    let on_the_wire = match rq.body_length() {
        Some(n) => n > 1024 || (n > 0 && expects_continue),
        None => req.header("transfer-encoding").is_some(),
    };
    if on_the_wire {
        let job = BodyJob {
            rq,
            req,
            limit,
            started,
        };
        match shared.bodies.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(job)) => {
                // Every body reader is busy: say so at once rather than queue behind them.
                let resp = Response::text(503, "busy: try again in a moment")
                    .with_header("Retry-After", "5");
                log_line(&job.req, 503, job.started);
                app.metrics
                    .request("busy", 503, job.started.elapsed().as_secs_f64());
                refuse_undrained(job.rq, resp, guard);
            }
            Err(TrySendError::Disconnected(job)) => read_body_and_handle(app, job, shared),
        }
        return;
    }
    if method == Method::Post || rq.body_length().is_some() {
        // Already in memory: reading cannot block.
        let mut buf = Vec::new();
        if rq.as_reader().take(limit + 1).read_to_end(&mut buf).is_ok() && buf.len() as u64 <= limit
        {
            req.body = buf;
        }
    }
    handle(app, rq, req, shared, started);
}

/// A body reader: takes requests whose body is still on the wire, reads it, handles them.
fn body_reader(
    app: &App,
    stopping: &AtomicBool,
    shared: &Arc<Shared>,
    queue: &Mutex<Receiver<BodyJob>>,
) {
    while !stopping.load(Ordering::SeqCst) {
        // One reader at a time waits on the queue, the others on the lock; the short wait lets
        // each see `stopping` soon after a shutdown (32 readers stop within a second).
        let job = {
            let Ok(q) = queue.lock() else { return };
            q.recv_timeout(Duration::from_millis(20))
        };
        match job {
            Ok(job) => read_body_and_handle(app, job, shared),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

fn read_body_and_handle(app: &App, job: BodyJob, shared: &Arc<Shared>) {
    let BodyJob {
        mut rq,
        mut req,
        limit,
        started,
    } = job;
    let guard = &shared.guard;
    let mut buf = Vec::new();
    let reading = guard.reading(rq.remote_addr().copied());
    let read = rq.as_reader().take(limit + 1).read_to_end(&mut buf);
    drop(reading);
    match read {
        Ok(_) if buf.len() as u64 > limit => {
            // Chunked and over the bound. A chunked body has no whole-length drop cost.
            let resp = handlers::error_response(app, &crate::error::AppError::TooLarge { limit });
            finish(app, rq, &req, "too_large", resp, started);
            return;
        }
        Ok(_) if rq.body_length().is_some_and(|n| buf.len() < n) => {
            // The connection ended (or was shut down for idling) before the whole body.
            slow_body(app, rq, &req, guard, started);
            return;
        }
        Ok(_) => req.body = buf,
        Err(_) => {
            slow_body(app, rq, &req, guard, started);
            return;
        }
    }
    handle(app, rq, req, shared, started);
}

/// Run the handler (a panic becomes the 500 page) and answer.
fn handle(app: &App, rq: tiny_http::Request, req: Request, shared: &Arc<Shared>, started: Instant) {
    let guard = &shared.guard;
    let method = req.method;
    let busy = guard.busy(rq.remote_addr().copied());
    let handled = catch_unwind(AssertUnwindSafe(|| (shared.handler)(app, &req)));
    drop(busy);
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
            (
                "panic",
                handlers::error_response(app, &crate::error::AppError::Internal(what)),
            )
        }
    };
    finish(app, rq, &req, route, resp, started);
}

/// A body that did not arrive in time (or at all): answer 408 and end the connection. Its read
/// side is shut first, so that tiny_http's drop of the unread rest returns at once instead of
/// waiting out another timeout on this worker.
fn slow_body(app: &App, rq: tiny_http::Request, req: &Request, guard: &Guard, started: Instant) {
    guard.shutdown_peer(rq.remote_addr().copied(), Shutdown::Read);
    let resp = Response::text(408, "request body not received in time");
    finish(app, rq, req, "slow_body", resp, started);
}

/// Answer 413 to a request whose declared body is over its bound, without ever letting
/// tiny_http allocate the whole declared length (it does when an unread body is dropped).
fn reject_oversized(
    app: &App,
    rq: tiny_http::Request,
    req: Request,
    limit: u64,
    declared: u64,
    shared: &Arc<Shared>,
    started: Instant,
) {
    let resp = handlers::error_response(app, &crate::error::AppError::TooLarge { limit });
    log_line(&req, resp.status, started);
    app.metrics
        .request("too_large", 413, started.elapsed().as_secs_f64());
    if declared > limit.saturating_add(DRAIN_CAP) {
        abandon(rq, resp, &shared.guard);
        return;
    }
    if shared.drainers.fetch_add(1, Ordering::SeqCst) >= MAX_DRAINERS {
        shared.drainers.fetch_sub(1, Ordering::SeqCst);
        refuse_undrained(rq, resp, &shared.guard);
        return;
    }
    // Read and discard the body on a thread of its own (bounded in number), then answer, so
    // that a browser sees the 413 page instead of a reset connection.
    let shared_ = shared.clone();
    let spawned = std::thread::Builder::new()
        .name("drain".into())
        .spawn(move || {
            let mut rq = rq;
            let mut sink = std::io::sink();
            let reading = shared_.guard.reading(rq.remote_addr().copied());
            let copied = std::io::copy(&mut rq.as_reader().take(declared), &mut sink);
            drop(reading);
            match copied {
                Ok(n) if n == declared => {
                    let _ = rq.respond(to_tiny(resp));
                }
                // The client stalled (its socket was shut for idling) or left.
                _ => refuse_undrained(rq, resp, &shared_.guard),
            }
            shared_.drainers.fetch_sub(1, Ordering::SeqCst);
        });
    if spawned.is_err() {
        shared.drainers.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Answer a request whose body (at most DRAIN_CAP past its bound) was not read: shut the read
/// side first, so that tiny_http's drop of the unread rest finds end-of-file at once instead
/// of waiting on the client.
fn refuse_undrained(rq: tiny_http::Request, resp: Response, guard: &Guard) {
    guard.shutdown_peer(rq.remote_addr().copied(), Shutdown::Read);
    let _ = rq.respond(to_tiny(resp));
}

/// Write `resp` and give up the connection without dropping the unread body. Used only for
/// bodies too large to drain. tiny_http writes no body and no length in this
/// mode, so the body goes out here and the shutdown of the socket marks its end. The request's
/// reader is never dropped, so its connection thread and descriptors stay behind: the price of
/// not letting tiny_http allocate the declared length.
fn abandon(rq: tiny_http::Request, resp: Response, guard: &Guard) {
    let peer = rq.remote_addr().copied();
    let body = resp.body_bytes().to_vec();
    let mut stream = rq.upgrade("close", to_tiny(resp));
    let _ = stream.write_all(&body);
    let _ = stream.flush();
    std::mem::forget(stream);
    guard.shutdown_peer(peer, Shutdown::Both);
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

fn to_tiny(mut resp: Response) -> TinyResponse {
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
    //! Idle and stalled connections. tiny_http sets no socket timeouts and gives no hook, so
    //! this module finds our accepted sockets (local port = our port, not the listener itself)
    //! among the process's descriptors.
    //!
    //! Each new socket gets read and write timeouts, so a read or write that *starts* later
    //! gives up after `timeout`. That alone is not enough: Linux reads the timeout when a
    //! blocking read begins, and tiny_http starts reading a new connection (and a worker a
    //! body) the moment it arrives, before a sweep can see it. So each sweep also asks the
    //! kernel (TCP_INFO) how long each connection has carried no data, and shuts down those
    //! idle past the timeout while *we* wait on the client: a blocked read then ends at once.
    //! We wait on the client when a worker reads its body ([`Guard::reading`]), when our answer
    //! was the last thing on the wire (an idle keep-alive, or a client that stopped reading), or
    //! when a worker is free (so no request of theirs can be queued: they are silent, or stuck
    //! in the middle of their headers). A connection whose request a handler is working on
    //! ([`Guard::busy`]), or whose bytes we have not read yet, is never shut for idling.
    //!
    //! tiny_http also lends each connection a thread of its pool for the connection's whole
    //! life, and under a burst of new connections it can queue one behind the threads held by
    //! idle keep-alives (its count of free threads lags). Bytes that nobody reads for 300 ms
    //! show that; then a connection of our own, closed at once, makes the pool start a thread
    //! that takes the queued connection next (and, should that not do, idle keep-alives are
    //! closed to hand their threads over).

    use std::collections::HashMap;
    use std::net::{Shutdown, SocketAddr};
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    /// How often the sockets are looked at.
    const SWEEP: Duration = Duration::from_millis(200);
    /// Past the timeout before a connection is shut down, so that a socket timeout that does
    /// apply fires first (tiny_http then answers 408 itself).
    const GRACE: Duration = Duration::from_millis(500);

    #[derive(Default, Clone, Copy)]
    struct Marks {
        /// A handler is working on a request of this peer (pipelining allows several).
        busy: usize,
        /// A worker or drain thread is reading this peer's body.
        reading: usize,
    }

    #[derive(Clone, Copy)]
    enum Kind {
        Busy,
        Reading,
    }

    pub struct Guard {
        port: u16,
        /// Where to reach our own listener.
        own: SocketAddr,
        listener_fd: i32,
        timeout: Duration,
        marks: Mutex<HashMap<SocketAddr, Marks>>,
        /// Workers waiting for a request (the queue was empty when they began to wait).
        idle_workers: AtomicUsize,
    }

    /// A mark on a peer, removed when dropped.
    pub struct Mark<'a> {
        guard: &'a Guard,
        peer: Option<SocketAddr>,
        kind: Kind,
    }

    impl Drop for Mark<'_> {
        fn drop(&mut self) {
            let Some(peer) = self.peer else {
                return;
            };
            let mut m = self.guard.marks.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(marks) = m.get_mut(&peer) {
                match self.kind {
                    Kind::Busy => marks.busy = marks.busy.saturating_sub(1),
                    Kind::Reading => marks.reading = marks.reading.saturating_sub(1),
                }
                if marks.busy == 0 && marks.reading == 0 {
                    m.remove(&peer);
                }
            }
        }
    }

    /// Counts a worker idle until dropped.
    pub struct Idle<'a>(&'a Guard);

    impl Drop for Idle<'_> {
        fn drop(&mut self) {
            self.0.idle_workers.fetch_sub(1, Ordering::SeqCst);
        }
    }

    impl Guard {
        pub fn new(addr: SocketAddr, listener_fd: i32, timeout: Duration) -> Guard {
            let mut own = addr;
            if own.ip().is_unspecified() {
                own.set_ip(if addr.is_ipv4() {
                    [127, 0, 0, 1].into()
                } else {
                    std::net::Ipv6Addr::LOCALHOST.into()
                });
            }
            Guard {
                port: addr.port(),
                own,
                listener_fd,
                timeout,
                marks: Mutex::new(HashMap::new()),
                idle_workers: AtomicUsize::new(0),
            }
        }

        fn mark(&self, peer: Option<SocketAddr>, kind: Kind) -> Mark<'_> {
            if let Some(p) = peer {
                let mut m = self.marks.lock().unwrap_or_else(|p| p.into_inner());
                let marks = m.entry(p).or_default();
                match kind {
                    Kind::Busy => marks.busy += 1,
                    Kind::Reading => marks.reading += 1,
                }
            }
            Mark {
                guard: self,
                peer,
                kind,
            }
        }

        /// While the mark lives, `peer`'s connection is not shut down for idling: a handler is
        /// working on its request, and nothing moves on the socket meanwhile.
        pub fn busy(&self, peer: Option<SocketAddr>) -> Mark<'_> {
            self.mark(peer, Kind::Busy)
        }

        /// While the mark lives, we wait on `peer` to send its body.
        pub fn reading(&self, peer: Option<SocketAddr>) -> Mark<'_> {
            self.mark(peer, Kind::Reading)
        }

        /// Call when a worker found the queue empty and is about to wait for a request.
        pub fn idle_worker(&self) -> Idle<'_> {
            self.idle_workers.fetch_add(1, Ordering::SeqCst);
            Idle(self)
        }

        fn marks_of(&self, peer: &SocketAddr) -> Marks {
            self.marks
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(peer)
                .copied()
                .unwrap_or_default()
        }

        /// Shut down (`how`) our connection from `peer` now, wherever tiny_http keeps it.
        pub fn shutdown_peer(&self, peer: Option<SocketAddr>, how: Shutdown) {
            let Some(peer) = peer else {
                return;
            };
            for_each_socket(|fd, _| {
                if fd == self.listener_fd {
                    return;
                }
                with_stream(fd, |s| {
                    let ours = s.local_addr().is_ok_and(|a| a.port() == self.port);
                    if ours && s.peer_addr().ok() == Some(peer) {
                        let _ = s.shutdown(how);
                    }
                });
            });
        }
    }

    /// What a sweep remembers of a socket (by its inode: the two descriptors tiny_http keeps of
    /// one connection are one entry, and a reused descriptor number is a new one).
    struct Seen {
        /// The peer, when this is one of our accepted connections.
        peer: Option<SocketAddr>,
        reaped: bool,
    }

    pub fn spawn(guard: Arc<Guard>, stopping: Arc<AtomicBool>) {
        let _ = std::thread::Builder::new()
            .name("conn-guard".into())
            .spawn(move || {
                let mut seen: HashMap<String, Seen> = HashMap::new();
                while !stopping.load(Ordering::Relaxed) {
                    sweep(&guard, &mut seen);
                    std::thread::sleep(SWEEP);
                }
            });
    }

    /// One of our connections, as a sweep found it.
    struct Conn {
        inode: String,
        fd: i32,
        peer: SocketAddr,
        marks: Marks,
        tcp: TcpState,
    }

    /// Bytes unread this long mean nobody is reading the connection: tiny_http queued it for a
    /// thread of its own pool, which it gives out only as other connections end.
    const STARVED: Duration = Duration::from_millis(300);

    fn sweep(guard: &Guard, seen: &mut HashMap<String, Seen>) {
        let mut alive = std::collections::HashSet::new();
        let mut conns = Vec::new();
        for_each_socket(|fd, inode| {
            if fd == guard.listener_fd || !alive.insert(inode.clone()) {
                return;
            }
            let entry = seen.entry(inode.clone()).or_insert_with(|| {
                let mut peer = None;
                with_stream(fd, |s| {
                    if s.local_addr().is_ok_and(|a| a.port() == guard.port) {
                        peer = s.peer_addr().ok();
                    }
                    if peer.is_some() {
                        let _ = s.set_nodelay(true);
                        let _ = s.set_read_timeout(Some(guard.timeout));
                        let _ = s.set_write_timeout(Some(guard.timeout));
                    }
                });
                Seen {
                    peer,
                    reaped: false,
                }
            });
            let (Some(peer), false) = (entry.peer, entry.reaped) else {
                return;
            };
            let marks = guard.marks_of(&peer);
            if let (0, Some(tcp)) = (marks.busy, tcp_state(fd)) {
                conns.push(Conn {
                    inode,
                    fd,
                    peer,
                    marks,
                    tcp,
                });
            }
        });
        seen.retain(|k, _| alive.contains(k));

        // tiny_http's pool lends a thread to each connection for its whole life and can leave a
        // new one waiting while every thread sits on an idle keep-alive. Then idle keep-alives
        // go first, long before their timeout.
        let waiting = conns
            .iter()
            .filter(|c| c.tcp.unread > 0 && c.tcp.last_recv >= STARVED)
            .count();
        let starved = waiting > 0;
        // One connection of our own, closed at once, per connection left waiting: each makes
        // tiny_http's pool start a thread that, done with it, takes a queued connection next
        // (queued ones are served in order, so all of them need a turn): no one else is closed.
        for _ in 0..waiting.min(64) {
            if let Ok(s) =
                std::net::TcpStream::connect_timeout(&guard.own, Duration::from_millis(200))
            {
                let _ = s.shutdown(Shutdown::Both);
            }
        }
        let worker_free = guard.idle_workers.load(Ordering::SeqCst) > 0;
        for c in &conns {
            if c.tcp.unread > 0 {
                continue;
            }
            let timed_out = c.tcp.idle >= guard.timeout + GRACE;
            // A body read only needs ending: the worker then answers 408 and closes. Otherwise
            // both ways, which also ends a write to a client that stopped reading.
            let (how, why) = if c.marks.reading > 0 && timed_out {
                (Shutdown::Read, "its body stopped arriving")
            } else if c.marks.reading > 0 {
                continue;
            } else if c.tcp.we_spoke_last && timed_out {
                (Shutdown::Both, "idle after our answer")
            } else if c.tcp.we_spoke_last && starved && c.tcp.idle >= STARVED * 4 {
                (
                    Shutdown::Both,
                    "idle keep-alive, making room for a new connection",
                )
            } else if worker_free && timed_out {
                // No request can be waiting in the queue: it is silent or stuck mid-request.
                (Shutdown::Both, "silent or stopped mid-request")
            } else {
                continue;
            };
            with_stream(c.fd, |s| {
                // Only if the number still names that connection.
                if s.peer_addr().ok() == Some(c.peer) {
                    log::debug!(
                        "closing the connection from {}: {why} ({:?})",
                        c.peer,
                        c.tcp.idle
                    );
                    let _ = s.shutdown(how);
                }
            });
            if let Some(e) = seen.get_mut(&c.inode) {
                e.reaped = true;
            }
        }
    }

    /// What the kernel says of a connection.
    struct TcpState {
        /// Since data last moved either way.
        idle: Duration,
        /// Since data last came in.
        last_recv: Duration,
        /// We sent data, and nothing came in after it.
        we_spoke_last: bool,
        /// Bytes received that the process has not read yet.
        unread: usize,
    }

    /// Call `f(fd, link target)` for every socket descriptor of this process.
    #[cfg(target_os = "linux")]
    fn for_each_socket(mut f: impl FnMut(i32, String)) {
        let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
            return;
        };
        for entry in dir.flatten() {
            let Some(fd) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<i32>().ok())
            else {
                continue;
            };
            let Ok(target) = std::fs::read_link(entry.path()) else {
                continue;
            };
            let target = target.to_string_lossy().to_string();
            if target.starts_with("socket:") {
                f(fd, target);
            }
        }
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
    fn for_each_socket(_: impl FnMut(i32, String)) {}

    /// Borrow descriptor `fd` as a TcpStream, never closing it.
    #[cfg(unix)]
    fn with_stream(fd: i32, f: impl FnOnce(&std::net::TcpStream)) {
        use std::mem::ManuallyDrop;
        use std::os::fd::FromRawFd;
        // SAFETY: the descriptor is only borrowed: ManuallyDrop never closes it. If it was
        // closed and reused meanwhile, the calls fail or touch another socket of ours; callers
        // check the peer before acting.
        let s = ManuallyDrop::new(unsafe { std::net::TcpStream::from_raw_fd(fd) });
        f(&s);
    }

    #[cfg(not(unix))]
    fn with_stream(_: i32, _: impl FnOnce(&std::net::TcpStream)) {}

    #[cfg(target_os = "linux")]
    fn tcp_state(fd: i32) -> Option<TcpState> {
        // SAFETY: tcp_info is plain old data; getsockopt writes at most `len` bytes into it,
        // and FIONREAD writes one int.
        let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
        let rc = unsafe {
            libc::getsockopt(
                fd,
                libc::IPPROTO_TCP,
                libc::TCP_INFO,
                (&mut info as *mut libc::tcp_info).cast(),
                &mut len,
            )
        };
        if rc != 0 {
            return None;
        }
        let mut unread: libc::c_int = 0;
        if unsafe { libc::ioctl(fd, libc::FIONREAD, &mut unread) } != 0 {
            return None;
        }
        let (sent, recv) = (info.tcpi_last_data_sent, info.tcpi_last_data_recv);
        // Whether we sent any data at all (kernels before 4.6 do not say: then assume so).
        let has_count = len as usize
            >= std::mem::offset_of!(libc::tcp_info, tcpi_data_segs_out)
                + std::mem::size_of::<u32>();
        let sent_any = !has_count || info.tcpi_data_segs_out > 0;
        Some(TcpState {
            idle: Duration::from_millis(u64::from(sent.min(recv))),
            last_recv: Duration::from_millis(u64::from(recv)),
            we_spoke_last: sent_any && sent <= recv,
            unread: usize::try_from(unread).unwrap_or(0),
        })
    }

    #[cfg(not(target_os = "linux"))]
    fn tcp_state(_: i32) -> Option<TcpState> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    fn handler(_: &App, req: &Request) -> (&'static str, Response) {
        if req.path == "/boom" {
            panic!("a bug in a handler");
        }
        ("ok", Response::text(200, "fine"))
    }

    fn get(addr: SocketAddr, path: &str) -> String {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    }

    #[test]
    fn a_panicking_handler_gives_a_500_page_and_the_worker_lives_on() {
        let dir = std::env::temp_dir().join(format!("wxg-server-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut cfg = crate::config::load(crate::config::Source::Demo, &[]).unwrap();
        cfg.data = dir.join("x.redb");
        cfg.workers = 1;
        let app = Arc::new(App::new(cfg).unwrap());
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let running = start_with_handler(app, listener, handler).unwrap();
        let boom = get(running.addr, "/boom");
        assert!(boom.starts_with("HTTP/1.1 500"), "{boom}");
        assert!(boom.contains("服务器开小差了"), "the friendly page");
        assert!(
            !boom.contains("a bug in a handler"),
            "no panic text on the page"
        );
        // One worker only: it answered the panic and answers again.
        for _ in 0..3 {
            assert!(get(running.addr, "/").contains("fine"));
        }
        running.shutdown();
    }
}
