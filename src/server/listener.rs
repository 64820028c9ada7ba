//! The listeners: our own accept loop on each public socket (the site's and the metrics one),
//! the connection cap, the open-file limit, and the private Unix socket tiny_http listens on.
//!
//! tiny_http 0.12 accepts on its own thread and starts a thread per connection with no upper
//! bound, and its accept loop ends for good on the first accept error (e.g. out of descriptors:
//! its `try_clone().unwrap()` panics) while the process lives on. Its `Server::from_listener`
//! takes only a `TcpListener` or a `UnixListener` (a closed enum, no trait to wrap), so there is
//! no way to hand it a connection we accepted. So the public socket is ours: this loop accepts,
//! counts, refuses beyond `max_connections` at once (a short 503, before any thread starts),
//! and gives each connection to a guard thread (`guard.rs`). tiny_http listens on a Unix socket
//! in a private directory (mode 0700); each guard keeps one connection to it for its client
//! connection's HTTP/1.1 requests (a fresh one for each HTTP/1.0 request).
//!
//! Accept errors that mean "not now" (out of descriptors or memory, an aborted handshake) are
//! waited out; any other error, or a panic of this loop, marks the listener dead and stops the
//! server, so that the process exits non-zero and the service manager restarts it.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use super::guard::{self, Route};
use super::Shared;

/// Descriptors one connection can hold at once: the client socket, its clone kept for a
/// shutdown, our end of the private socket, and tiny_http's end (which it clones).
pub const FDS_PER_CONNECTION: u64 = 5;
/// Descriptors kept for everything else (the data file, logs, outbound calls, backups).
const FDS_RESERVED: u64 = 256;
/// The derived connection cap never exceeds this (each connection is a thread of ours).
const MAX_DERIVED: usize = 8192;
/// How often a waiting accept loop looks at the stop flag.
const POLL: Duration = Duration::from_millis(100);
/// Stack of a guard thread: it keeps a 16 KiB read buffer on it, nothing deep.
const GUARD_STACK: usize = 256 * 1024;

/// Raise the soft open-file limit to the hard one; returns the soft limit in force.
#[cfg(target_os = "linux")]
pub fn raise_fd_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return 1024;
    }
    if lim.rlim_cur < lim.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: lim.rlim_max,
            rlim_max: lim.rlim_max,
        };
        // SAFETY: as above.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            lim.rlim_cur = lim.rlim_max;
        }
    }
    lim.rlim_cur
}

#[cfg(not(target_os = "linux"))]
pub fn raise_fd_limit() -> u64 {
    1024
}

/// The connection cap `max_connections = 0` stands for, given the open-file limit.
pub fn derived_max_connections(nofile: u64) -> usize {
    let n = nofile.saturating_sub(FDS_RESERVED) / FDS_PER_CONNECTION;
    usize::try_from(n)
        .unwrap_or(MAX_DERIVED)
        .clamp(8, MAX_DERIVED)
}

/// A fresh private directory (mode 0700) for the worker pool's socket.
pub fn private_dir() -> Result<PathBuf, String> {
    use std::os::unix::fs::DirBuilderExt;
    let mut name = [0u8; 8];
    getrandom::fill(&mut name).map_err(|e| format!("no randomness for a socket name: {e}"))?;
    let hex: String = name.iter().map(|b| format!("{b:02x}")).collect();
    let dir = std::env::temp_dir().join(format!("wxgrades-{}-{hex}", std::process::id()));
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&dir)
        .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    Ok(dir)
}

pub fn remove_private_dir(dir: &Path) {
    let _ = std::fs::remove_dir_all(dir);
}

/// Marks the listener dead if its loop ends without a stop (a return or a panic).
struct Watch<'a>(&'a Shared);

impl Drop for Watch<'_> {
    fn drop(&mut self) {
        if !self.0.stopping.load(Ordering::SeqCst) {
            self.0.listener_died("the accept loop ended");
        }
    }
}

/// Accept on `listener` until the server stops. `cap` bounds the connections of this listener.
pub fn accept_loop(listener: TcpListener, shared: Arc<Shared>, route: Route, cap: usize) {
    let _watch = Watch(&shared);
    if let Err(e) = listener.set_nonblocking(true) {
        log::error!("cannot make the listener non-blocking: {e}");
        return;
    }
    let live = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut refused_logged = std::time::Instant::now() - Duration::from_secs(60);
    while !shared.stopping.load(Ordering::SeqCst) {
        let (stream, peer) = match listener.accept() {
            Ok(a) => a,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                wait_readable(&listener, POLL);
                continue;
            }
            Err(e) if transient(&e) => {
                log::warn!("accept: {e}; waiting");
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
            Err(e) => {
                shared.listener_died(&format!("accept failed: {e}"));
                return;
            }
        };
        if live.load(Ordering::SeqCst) >= cap {
            if refused_logged.elapsed() > Duration::from_secs(10) {
                log::warn!("{cap} connections open: refusing new ones (max_connections)");
                refused_logged = std::time::Instant::now();
            }
            refuse_at_accept(stream);
            continue;
        }
        start_guard(stream, peer, &shared, route, &live);
    }
}

/// One short 503 without reading anything, then close.
fn refuse_at_accept(stream: TcpStream) {
    use std::io::Write;
    let _ = stream.set_nonblocking(true);
    let mut s = stream;
    let _ = s.write_all(
        b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 5\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    );
}

fn start_guard(
    stream: TcpStream,
    peer: SocketAddr,
    shared: &Arc<Shared>,
    route: Route,
    live: &Arc<std::sync::atomic::AtomicUsize>,
) {
    if stream.set_nonblocking(false).is_err() {
        return;
    }
    let Some(id) = shared.register(&stream) else {
        return;
    };
    live.fetch_add(1, Ordering::SeqCst);
    let (shared_, live_) = (shared.clone(), live.clone());
    let spawned = std::thread::Builder::new()
        .name("conn".into())
        .stack_size(GUARD_STACK)
        .spawn(move || {
            guard::serve(stream, peer, &shared_, route);
            shared_.unregister(id);
            live_.fetch_sub(1, Ordering::SeqCst);
        });
    if let Err(e) = spawned {
        log::warn!("cannot start a connection thread: {e}");
        shared.unregister(id);
        live.fetch_sub(1, Ordering::SeqCst);
    }
}

fn transient(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    if matches!(
        e.kind(),
        Interrupted | ConnectionAborted | ConnectionReset | OutOfMemory
    ) {
        return true;
    }
    #[cfg(target_os = "linux")]
    if let Some(code) = e.raw_os_error() {
        return [
            libc::EMFILE,
            libc::ENFILE,
            libc::ENOBUFS,
            libc::ENOMEM,
            libc::EPROTO,
        ]
        .contains(&code);
    }
    false
}

/// Wait until `listener` has a connection to accept, or `at_most` passes.
#[cfg(target_os = "linux")]
fn wait_readable(listener: &TcpListener, at_most: Duration) {
    use std::os::fd::AsRawFd;
    let mut fds = libc::pollfd {
        fd: listener.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = libc::c_int::try_from(at_most.as_millis()).unwrap_or(100);
    // SAFETY: one valid pollfd, its count 1.
    unsafe { libc::poll(&mut fds, 1, ms) };
}

#[cfg(not(target_os = "linux"))]
fn wait_readable(_: &TcpListener, _: Duration) {
    std::thread::sleep(Duration::from_millis(5));
}
