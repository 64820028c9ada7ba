//! The HTTP server: the only place that knows tiny_http. It serves a [`Site`] (the handler and
//! the few facts the server needs before calling it), never the application itself.
//!
//! Shape (each part in its own file):
//! - `listener.rs`: our accept loops (the public listener and an optional metrics listener), the
//!   connection cap, the open-file limit, the private socket tiny_http listens on;
//! - `guard.rs`: one thread per connection that reads and checks each request head (`head.rs`)
//!   and body (`body.rs`, the body readers) with deadlines before tiny_http sees it;
//! - `pool.rs`: the worker pool on tiny_http's `recv()` that calls the handler;
//! - `reply.rs`: answers written without tiny_http (refusals, metrics).
//!
//! Starting and stopping: [`start`] returns a [`Running`]; [`Stopper::stop`] (a signal handler)
//! or a dead listener stops it; [`Running::wait`] then returns once connections in flight are
//! answered and every thread of the server (and every thread handed to [`Running::keep`]) is
//! joined. The server starts no application threads of its own.

mod body;
mod guard;
mod head;
mod listener;
mod pool;
mod reply;
mod spool;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::http::{Method, Request, Response};

pub use head::{MAX_HEADERS, MAX_HEADER_BLOCK, MAX_REQUEST_LINE};
pub use listener::{derived_max_connections, raise_fd_limit};

/// The header the guard adds to every request it hands over, naming the client's socket
/// address (a client's own header of that name is dropped).
const PEER_HEADER: &str = "x-wxgrades-peer";
/// The header that carries a spooled body's one-time token from the guard to the worker (a
/// client's own header of that name is dropped).
const SPOOL_HEADER: &str = "x-wxgrades-spooled-body";

/// What the server serves.
pub trait Site: Send + Sync + 'static {
    /// Answer a request; returns a route label (for metrics) and the response.
    fn handle(&self, req: &Request) -> (&'static str, Response);

    /// The body bound of a route, decided before reading the body.
    fn body_limit(&self, method: Method, path: &str) -> u64;

    /// Whether the request may use the body readers kept in reserve (e.g. it carries an admin
    /// session cookie). Only the head is known here; the handler still checks.
    fn is_privileged(&self, _req: &Request) -> bool {
        false
    }

    /// The page for a body over its bound (413) on the request `req` (head only, no body).
    fn too_large(&self, _req: &Request, limit: u64) -> Response {
        Response::text(413, format!("request body over {limit} bytes"))
    }

    /// The page for a handler that panicked (500); `what` is for the log, not the page.
    fn internal_error(&self, _what: &str) -> Response {
        Response::text(500, "internal error")
    }

    /// The metrics listener's answer.
    fn metrics(&self, _req: &Request) -> Response {
        Response::text(404, "not found")
    }

    /// One request answered (by a worker, or refused by the guard).
    fn observe(&self, _route: &'static str, _status: u16, _seconds: f64) {}
}

/// How the server runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// Worker threads calling the handler.
    pub workers: usize,
    /// A connection silent this long is closed; a head must be complete this long after its
    /// first byte; a body gets this plus its transfer time at `min_body_rate`.
    pub idle_timeout: Duration,
    /// Take the client's address from X-Forwarded-For.
    pub trust_proxy: bool,
    /// Open connections beyond this are refused at accept; 0: derived from the open-file limit.
    pub max_connections: usize,
    /// Requests served on one connection before it is closed.
    pub max_requests: usize,
    /// Body readers open to everyone (bodies read at once); 0: half the workers, 4 to 32.
    pub body_readers: usize,
    /// Body readers kept, on top of those, for privileged requests; 0: a quarter of
    /// `body_readers`, at least one.
    pub reserved_body_readers: usize,
    /// Bytes per second a body must at least arrive at.
    pub min_body_rate: u64,
}

impl Options {
    pub fn new(workers: usize, idle_timeout: Duration) -> Options {
        Options {
            workers,
            idle_timeout,
            trust_proxy: false,
            max_connections: 0,
            max_requests: 100,
            body_readers: 0,
            reserved_body_readers: 0,
            min_body_rate: 16 * 1024,
        }
    }
}

/// What the server's threads share.
struct Shared {
    site: Arc<dyn Site>,
    options: Options,
    stopping: AtomicBool,
    failed: AtomicBool,
    /// Open client connections (both listeners).
    live: AtomicUsize,
    /// A clone of each open client socket, to end idle ones at a stop.
    conns: Mutex<HashMap<u64, TcpStream>>,
    next_id: AtomicU64,
    readers: body::Readers,
    /// Large bodies on disk, waiting for their worker.
    spools: spool::Spools,
    /// The worker pool's Unix socket.
    backend: PathBuf,
}

impl Shared {
    fn register(&self, stream: &TcpStream) -> Option<u64> {
        let clone = stream.try_clone().ok()?;
        let id = self.next_id.fetch_add(1, Ordering::SeqCst);
        self.live.fetch_add(1, Ordering::SeqCst);
        self.conns
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, clone);
        Some(id)
    }

    fn unregister(&self, id: u64) {
        self.conns
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
        self.live.fetch_sub(1, Ordering::SeqCst);
    }

    /// Stop because a listener can no longer accept: the process must exit non-zero.
    fn listener_died(&self, why: &str) {
        if !self.failed.swap(true, Ordering::SeqCst) {
            log::error!("the listener failed: {why}; stopping so that the service manager restarts wxgrades");
        }
        self.stop();
    }

    fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        // Connections waiting for their next request end at once; those in the middle of one
        // are answered first (their guard no longer reads from the client).
        for s in self
            .conns
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
        {
            let _ = s.shutdown(std::net::Shutdown::Read);
        }
    }
}

/// A running server.
pub struct Running {
    pub addr: SocketAddr,
    /// Where the metrics listener listens, when there is one.
    pub metrics_addr: Option<SocketAddr>,
    /// Set when a listener died (not by our own stop): exit non-zero.
    pub listener_failed: Arc<AtomicBool>,
    shared: Arc<Shared>,
    acceptors: Vec<JoinHandle<()>>,
    workers: Vec<JoinHandle<()>>,
    server: Arc<tiny_http::Server>,
    kept: Vec<JoinHandle<()>>,
    stop_flag: Arc<AtomicBool>,
    dir: PathBuf,
}

/// Serve `site` on `listener` (and `/metrics`-style answers from `Site::metrics` on
/// `metrics`, when given).
pub fn start(
    listener: TcpListener,
    metrics: Option<TcpListener>,
    site: Arc<dyn Site>,
    options: Options,
) -> Result<Running, String> {
    let addr = listener
        .local_addr()
        .map_err(|e| format!("cannot read the listening address: {e}"))?;
    let nofile = raise_fd_limit();
    let cap = match options.max_connections {
        0 => derived_max_connections(nofile),
        n => n,
    };
    let readers = match options.body_readers {
        0 => (options.workers / 2).clamp(4, 32),
        n => n,
    };
    let reserved = match options.reserved_body_readers {
        0 => (readers / 4).max(1),
        n => n,
    };
    let dir = listener::private_dir()?;
    let backend = dir.join("workers.sock");
    let unix = std::os::unix::net::UnixListener::bind(&backend)
        .map_err(|e| format!("cannot listen on {}: {e}", backend.display()))?;
    let server = tiny_http::Server::from_listener(unix, None)
        .map_err(|e| format!("cannot start the HTTP server: {e}"))?;
    let server = Arc::new(server);
    let shared = Arc::new(Shared {
        site,
        options: options.clone(),
        stopping: AtomicBool::new(false),
        failed: AtomicBool::new(false),
        live: AtomicUsize::new(0),
        conns: Mutex::new(HashMap::new()),
        next_id: AtomicU64::new(0),
        readers: body::Readers::new(readers + reserved, reserved),
        spools: spool::Spools::default(),
        backend,
    });
    let mut running = Running {
        addr,
        metrics_addr: None,
        listener_failed: Arc::new(AtomicBool::new(false)),
        shared: shared.clone(),
        acceptors: Vec::new(),
        workers: Vec::new(),
        server: server.clone(),
        kept: Vec::new(),
        stop_flag: Arc::new(AtomicBool::new(false)),
        dir,
    };
    for i in 0..options.workers.max(1) {
        let (server, shared) = (server.clone(), shared.clone());
        let h = std::thread::Builder::new()
            .name(format!("worker-{i}"))
            .spawn(move || pool::worker(&server, &shared))
            .map_err(|e| format!("cannot start worker thread: {e}"))?;
        running.workers.push(h);
    }
    let mut listeners = vec![(listener, guard::Route::Workers, cap)];
    if let Some(m) = metrics {
        running.metrics_addr = m.local_addr().ok();
        listeners.push((m, guard::Route::Metrics, 16));
    }
    for (l, route, cap) in listeners {
        let shared = shared.clone();
        let h = std::thread::Builder::new()
            .name("accept".into())
            .spawn(move || listener::accept_loop(l, shared, route, cap))
            .map_err(|e| format!("cannot start the accept thread: {e}"))?;
        running.acceptors.push(h);
    }
    log::debug!("accepting on {addr}: at most {cap} connections, {readers} body readers ({reserved} kept for admins)");
    Ok(running)
}

impl Running {
    /// A handle that asks the server to stop (for signal handlers).
    pub fn stopper(&self) -> Stopper {
        Stopper {
            shared: self.shared.clone(),
        }
    }

    /// Set when the server stops (by a stop or a dead listener); for threads started beside
    /// the server that should end with it (see [`Running::keep`]).
    pub fn stop_flag(&self) -> Arc<AtomicBool> {
        self.stop_flag.clone()
    }

    /// Join `thread` when the server has stopped (after setting the stop flag).
    pub fn keep(&mut self, thread: JoinHandle<()>) {
        self.kept.push(thread);
    }

    /// Stop, finish the connections in flight, join everything.
    pub fn shutdown(self) {
        self.shared.stop();
        self.wait();
    }

    /// Block until the server has stopped (after a `Stopper::stop` or a dead listener), then
    /// join every thread.
    pub fn wait(self) {
        for a in self.acceptors {
            let _ = a.join();
        }
        // The acceptors end only at a stop; make sure every open connection sees it.
        self.shared.stop();
        for w in self.workers {
            let _ = w.join();
        }
        // Connection threads are not joined one by one: each ends soon after the stop (its
        // socket's read side is shut) and lets go of the shared state (and with it the site).
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while Arc::strong_count(&self.shared) > 1 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        self.stop_flag.store(true, Ordering::SeqCst);
        for k in self.kept {
            let _ = k.join();
        }
        self.listener_failed
            .store(self.shared.failed.load(Ordering::SeqCst), Ordering::SeqCst);
        drop(self.server);
        listener::remove_private_dir(&self.dir);
    }

    /// Open client connections now (both listeners).
    pub fn connections(&self) -> usize {
        self.shared.live.load(Ordering::SeqCst)
    }
}

/// Asks a running server to stop.
#[derive(Clone)]
pub struct Stopper {
    shared: Arc<Shared>,
}

impl Stopper {
    pub fn stop(&self) {
        self.shared.stop();
    }

    /// Whether a listener died (the process should exit non-zero).
    pub fn listener_failed(&self) -> bool {
        self.shared.failed.load(Ordering::SeqCst)
    }
}
