//! The connection guard: one thread of ours per accepted connection, in front of tiny_http.
//! It owns the client's socket; tiny_http only ever sees requests the guard has already read
//! whole and checked, handed over on a private Unix socket (see `listener.rs`).
//!
//! Each part answers one weakness of tiny_http 0.12:
//!
//! - **No socket timeouts** (tiny_http sets none on accepted sockets and has no hook to): the
//!   guard sets read and write timeouts on the client socket itself, gives a head a total
//!   deadline from its first byte (slowloris) and a body a total deadline (`body::deadline`), and
//!   closes a keep-alive connection silent for the idle timeout.
//! - **Header lines read without bound** (a 1 GiB line grows memory by 1 GiB, 100,000 headers
//!   are accepted, NUL and bare CR pass, a non-ASCII byte drops the connection without an
//!   answer): the guard reads the head into a buffer that never exceeds the bounds of
//!   `head.rs` and answers 400/414/431/505 itself.
//! - **Whole-length allocation when an unread body is dropped** (`EqualReader::drop`) and the
//!   descriptors and thread a refused huge `Content-Length` used to leak: a body over its bound
//!   never reaches tiny_http; the guard answers 413 and drains a bounded amount before closing.
//! - **A worker reads each body** (a stalled upload holds it): the guard reads bodies under a
//!   body-reader permit (`body.rs`) before handing the request over, so a worker only ever reads
//!   bytes already on the Unix socket. A large body (the admin upload) is written to a temporary
//!   file as it arrives and handed over as that file (`spool.rs`), never held whole in memory.
//! - **Pipelining without limit** (one connection could queue 400 requests and never read):
//!   the guard hands over one request at a time and reads the next only after the answer is
//!   written, and ends a connection after `max_requests` requests.
//!
//! The price is a hop: every request is read here, written to the private socket, parsed
//! again by tiny_http, and its answer copied back (measured: about half the page throughput
//! without the guard, README "Performance").
//!
//! If tiny_http gains socket timeouts and header bounds, this whole file, `head.rs`, `body.rs`
//! and the Unix hand-over in `listener.rs` go: tiny_http then listens on the public socket
//! itself, `pool.rs` reads bodies with `take(limit + 1)` as before, and only the connection cap
//! (which needs an accept hook) would remain to ask of it.

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::body::{self, BodyError};
use super::head::{self, Framing, Head, Refusal};
use super::spool::Received;
use super::{reply, Shared, PEER_HEADER, SPOOL_HEADER};
use crate::http::{Method, Request, Response};

/// After a refusal, at most this much of an unread body is read and thrown away (so a browser
/// sees the answer rather than a reset connection) before the connection is closed.
const DRAIN_CAP: u64 = 64 * 1024 * 1024;
/// How long a worker may take to answer before the guard gives up on it.
const BACKEND_TIMEOUT: Duration = Duration::from_secs(300);

/// The client's socket and the bytes read from it but not yet used.
pub struct Client {
    pub stream: TcpStream,
    buf: Vec<u8>,
    idle: Duration,
}

impl Client {
    pub fn new(stream: TcpStream, idle: Duration) -> Client {
        let _ = stream.set_nodelay(true);
        let _ = stream.set_write_timeout(Some(idle));
        Client {
            stream,
            buf: Vec::new(),
            idle,
        }
    }

    /// Read what arrives next (at most 16 KiB), waiting at most the idle timeout and never
    /// past `deadline`. `Ok(0)` is the end of the stream.
    pub fn fill(&mut self, deadline: Instant) -> std::io::Result<usize> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(ErrorKind::TimedOut.into());
        }
        self.stream.set_read_timeout(Some(left.min(self.idle)))?;
        let mut chunk = [0u8; 16 * 1024];
        let n = self.stream.read(&mut chunk)?;
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n)
    }

    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    pub fn buffered(&self) -> &[u8] {
        &self.buf
    }

    /// The first `n` buffered bytes (fewer if fewer are buffered).
    pub fn take(&mut self, n: usize) -> Vec<u8> {
        let n = n.min(self.buf.len());
        let rest = self.buf.split_off(n);
        std::mem::replace(&mut self.buf, rest)
    }
}

/// Where a checked request goes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// To tiny_http's workers over the private socket.
    Workers,
    /// Answered here by `Site::metrics` (the metrics listener).
    Metrics,
}

/// What became of waiting for a head.
enum Waited {
    Head(Head),
    Refused(Refusal),
    /// Part of a head came, then nothing in time.
    Slow,
    /// Closed, silent, or the server is stopping: end without a word.
    Done,
}

/// Serve one connection until it ends.
pub fn serve(stream: TcpStream, peer: SocketAddr, shared: &Arc<Shared>, route: Route) {
    let idle = shared.options.idle_timeout;
    let mut client = Client::new(stream, idle);
    let mut served = 0usize;
    loop {
        let started = Instant::now();
        let head = match wait_head(&mut client, shared) {
            Waited::Head(h) => h,
            Waited::Done => return,
            Waited::Slow => {
                refuse(
                    &mut client,
                    shared,
                    Response::text(408, "request head not received in time"),
                    0,
                    None,
                );
                return;
            }
            Waited::Refused(r) => {
                log::info!("refused a request from {peer}: {}", r.reason());
                shared
                    .site
                    .observe("refused", r.status(), started.elapsed().as_secs_f64());
                let resp = Response::text(r.status(), r.reason());
                refuse(&mut client, shared, resp, 0, None);
                return;
            }
        };
        served += 1;
        let close = head.close
            || served >= shared.options.max_requests
            || shared.stopping.load(Ordering::SeqCst);
        let method = method_of(&head.method);
        let mut req = Request::new(method, &head.target);
        req.headers = head
            .headers
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
            .collect();
        req.remote = Some(peer.ip());
        let limit = match route {
            Route::Workers => shared.site.body_limit(method, &req.path),
            Route::Metrics => 0,
        };
        let declared = match head.framing {
            Framing::Length(n) => Some(n),
            _ => None,
        };
        if declared.is_some_and(|n| n > limit) {
            let resp = shared.site.too_large(&req, limit);
            answered(shared, &req, "too_large", 413, started);
            refuse(
                &mut client,
                shared,
                resp,
                declared.unwrap_or(0),
                Some(&head),
            );
            return;
        }
        let body = if head.framing == Framing::None || declared == Some(0) {
            Received::empty()
        } else {
            let Some(permit) = shared.readers.acquire(shared.site.is_privileged(&req)) else {
                answered(shared, &req, "busy", 503, started);
                let resp = Response::text(503, "busy: try again in a moment")
                    .with_header("Retry-After", "5");
                refuse(
                    &mut client,
                    shared,
                    resp,
                    declared.unwrap_or(DRAIN_CAP),
                    Some(&head),
                );
                return;
            };
            if head.expect_continue
                && client
                    .stream
                    .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
                    .is_err()
            {
                return;
            }
            let size = declared.unwrap_or(limit);
            let deadline = body::deadline(idle, size, shared.options.min_body_rate);
            let read = body::read(&mut client, head.framing, limit, deadline);
            drop(permit);
            match read {
                Ok(b) => b,
                Err(BodyError::Gone) => return,
                Err(BodyError::Slow) => {
                    answered(shared, &req, "slow_body", 408, started);
                    let resp = Response::text(408, "request body not received in time");
                    let _ = client.stream.shutdown(Shutdown::Read);
                    refuse(&mut client, shared, resp, 0, None);
                    return;
                }
                Err(BodyError::TooLarge) => {
                    answered(shared, &req, "too_large", 413, started);
                    let resp = shared.site.too_large(&req, limit);
                    refuse(&mut client, shared, resp, DRAIN_CAP, Some(&head));
                    return;
                }
                Err(BodyError::Bad(why)) => {
                    answered(shared, &req, "refused", 400, started);
                    refuse(&mut client, shared, Response::text(400, why), 0, None);
                    return;
                }
                Err(BodyError::Disk) => {
                    answered(shared, &req, "busy", 503, started);
                    let resp = Response::text(503, "cannot store the upload: try again later")
                        .with_header("Retry-After", "30");
                    refuse(&mut client, shared, resp, 0, None);
                    return;
                }
            }
        };
        let ok = match route {
            Route::Workers => hand_over(&mut client, shared, &head, peer, body, close),
            Route::Metrics => {
                // The metrics listener takes no body (its bound is 0).
                if let Received::Memory(b) = body {
                    req.body = b;
                }
                let resp = shared.site.metrics(&req);
                answered(shared, &req, "metrics", resp.status, started);
                reply::write(&mut client.stream, resp, close, method == Method::Head).is_ok()
            }
        };
        if !ok || close {
            let _ = client.stream.shutdown(Shutdown::Write);
            return;
        }
    }
}

/// Wait for the next head: the idle timeout for its first byte, then the idle timeout in all
/// for the rest of it.
fn wait_head(c: &mut Client, shared: &Shared) -> Waited {
    let idle = shared.options.idle_timeout;
    let mut scanned = 0;
    let mut first_byte: Option<Instant> = None;
    loop {
        match head::scan(c.buffered(), scanned) {
            Err(r) => return Waited::Refused(r),
            Ok(Some(end)) => {
                let raw = c.take(end);
                return match head::parse(&raw) {
                    Ok(h) => Waited::Head(h),
                    Err(r) => Waited::Refused(r),
                };
            }
            Ok(None) => scanned = c.pending(),
        }
        if c.pending() > 0 && first_byte.is_none() {
            first_byte = Some(Instant::now());
        }
        if shared.stopping.load(Ordering::SeqCst) && c.pending() == 0 {
            return Waited::Done;
        }
        let deadline = first_byte.unwrap_or_else(Instant::now) + idle;
        match c.fill(deadline) {
            Ok(0) => return Waited::Done,
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::TimedOut | ErrorKind::WouldBlock) => {
                return if c.pending() == 0 {
                    Waited::Done
                } else {
                    Waited::Slow
                };
            }
            Err(_) => return Waited::Done,
        }
    }
}

fn method_of(m: &str) -> Method {
    match m {
        "GET" => Method::Get,
        "HEAD" => Method::Head,
        "POST" => Method::Post,
        _ => Method::Other,
    }
}

/// One log line and one metric for a request the guard answered itself.
fn answered(shared: &Shared, req: &Request, route: &'static str, status: u16, started: Instant) {
    super::pool::log_line(req, status, started);
    shared
        .site
        .observe(route, status, started.elapsed().as_secs_f64());
}

/// Answer and end the connection: write `resp`, close our side, then read and drop up to
/// `unread` bytes (at most `DRAIN_CAP`, within the idle timeout) so that the client reads the
/// answer before the connection goes.
fn refuse(c: &mut Client, shared: &Shared, resp: Response, unread: u64, head: Option<&Head>) {
    let head_only = head.is_some_and(|h| h.method == "HEAD");
    if reply::write(&mut c.stream, resp, true, head_only).is_err() {
        return;
    }
    let _ = c.stream.shutdown(Shutdown::Write);
    let mut left = unread.min(DRAIN_CAP).saturating_sub(c.pending() as u64);
    let deadline = Instant::now() + shared.options.idle_timeout;
    let mut sink = [0u8; 16 * 1024];
    while left > 0 {
        let wait = deadline.saturating_duration_since(Instant::now());
        if wait.is_zero() || c.stream.set_read_timeout(Some(wait)).is_err() {
            return;
        }
        match c.stream.read(&mut sink) {
            Ok(0) | Err(_) => return,
            Ok(n) => left = left.saturating_sub(n as u64),
        }
    }
}

/// A new private connection to the worker pool, or `None` after telling the client (503).
fn connect(c: &mut Client, shared: &Shared) -> Option<UnixStream> {
    match UnixStream::connect(&shared.backend) {
        Ok(s) => {
            let _ = s.set_read_timeout(Some(BACKEND_TIMEOUT));
            let _ = s.set_write_timeout(Some(BACKEND_TIMEOUT));
            Some(s)
        }
        Err(e) => {
            // Refused or gone: tiny_http's accept loop has ended and nothing answers any more.
            // Anything else (out of descriptors for our end) is this request's bad luck.
            if matches!(e.kind(), ErrorKind::ConnectionRefused | ErrorKind::NotFound) {
                shared.listener_died(&format!(
                    "the worker pool's socket refuses connections: {e}"
                ));
            }
            let resp =
                Response::text(503, "busy: try again in a moment").with_header("Retry-After", "5");
            let _ = reply::write(&mut c.stream, resp, true, false);
            None
        }
    }
}

/// The request as tiny_http gets it: hop-by-hop headers dropped, the peer added, the body
/// whole with its length (or, spooled, the token that the worker exchanges for the file), and
/// `Connection: close` so that tiny_http ends the private connection after this one request.
fn forwarded(head: &Head, peer: SocketAddr, body: &[u8], spooled: Option<&str>) -> Vec<u8> {
    let version = if head.http11 { "HTTP/1.1" } else { "HTTP/1.0" };
    let mut out = format!("{} {} {version}\r\n", head.method, head.target);
    for (k, v) in &head.headers {
        let hop = [
            "connection",
            "keep-alive",
            "proxy-connection",
            "transfer-encoding",
            "content-length",
            "expect",
            "te",
            "upgrade",
            PEER_HEADER,
            SPOOL_HEADER,
        ]
        .iter()
        .any(|h| k.eq_ignore_ascii_case(h));
        if !hop {
            out.push_str(&format!("{k}: {v}\r\n"));
        }
    }
    out.push_str(&format!("{PEER_HEADER}: {peer}\r\n"));
    if let Some(token) = spooled {
        out.push_str(&format!("{SPOOL_HEADER}: {token}\r\n"));
    }
    if !body.is_empty() || head.framing != Framing::None {
        out.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    out.push_str("Connection: close\r\n\r\n");
    let mut out = out.into_bytes();
    out.extend_from_slice(body);
    out
}

/// Hand a checked request to tiny_http over a private connection of its own, and copy the
/// answer back to the client. Returns whether the client connection can carry on.
///
/// Every request gets a fresh private connection that tiny_http closes once it has read the
/// request. tiny_http 0.12 serves each connection on a thread of its pool for as long as the
/// connection lives, and its pool can leave a connection that arrives together with another
/// queued until one of the busy threads ends its connection (`TaskPool::spawn` counts a thread
/// already woken for the first as still free). Kept private connections never end, so such a
/// request waited for the client's idle timeout or forever; one connection per request ends
/// its thread's task as soon as the request is read, so a queued one is picked up at once.
fn hand_over(
    c: &mut Client,
    shared: &Shared,
    head: &Head,
    peer: SocketAddr,
    body: Received,
    close: bool,
) -> bool {
    let (bytes, token) = match body {
        Received::Memory(b) => (b, None),
        Received::Spooled(file) => {
            let Some(t) = shared.spools.put(file) else {
                let resp = Response::text(503, "busy: try again in a moment")
                    .with_header("Retry-After", "5");
                let _ = reply::write(&mut c.stream, resp, true, false);
                return false;
            };
            (Vec::new(), Some(t))
        }
    };
    // Whatever becomes of the request, its spooled body is not kept past it.
    let _forget = token.as_deref().map(|t| ForgetSpool(shared, t));
    let Some(b) = connect(c, shared) else {
        return false;
    };
    let mut b = BufReader::new(b);
    let out = forwarded(head, peer, &bytes, token.as_deref());
    drop(bytes);
    if b.get_mut().write_all(&out).is_err() {
        let _ = reply::write(&mut c.stream, Response::text(502, "no answer"), true, false);
        return false;
    }
    if !head.http11 {
        return relay(b.get_mut(), &mut c.stream, close);
    }
    // The answer's framing says where it ends, so the client's connection can go on.
    matches!(
        relay_framed(&mut b, &mut c.stream, head.method == "HEAD", close),
        Ok(true)
    )
}

/// Drops a spooled body the worker did not take (it closes the file, and the system removes it).
struct ForgetSpool<'a>(&'a Shared, &'a str);

impl Drop for ForgetSpool<'_> {
    fn drop(&mut self) {
        drop(self.0.spools.take(self.1));
    }
}

/// Copy one answer from a private connection to the client, as tiny_http frames it
/// (Content-Length, or chunked; none for HEAD, 1xx, 204, 304). Returns whether the answer
/// ended where its framing said (else it ran to the end of the stream, or broke).
fn relay_framed(
    backend: &mut BufReader<UnixStream>,
    client: &mut TcpStream,
    head_only: bool,
    close: bool,
) -> std::io::Result<bool> {
    let broken = |what: &str| std::io::Error::new(ErrorKind::InvalidData, what.to_string());
    let mut head = Vec::new();
    let mut status_end = 0;
    let mut length: Option<u64> = None;
    let mut chunked = false;
    loop {
        let mut line = Vec::new();
        (&mut *backend).take(8192).read_until(b'\n', &mut line)?;
        if !line.ends_with(b"\r\n") {
            return Err(broken("an answer's head ended early"));
        }
        if head.is_empty() {
            status_end = line.len();
        } else if line == b"\r\n" {
            head.extend_from_slice(&line);
            break;
        } else if let Some((k, v)) = std::str::from_utf8(&line)
            .ok()
            .and_then(|l| l.split_once(':'))
        {
            if k.eq_ignore_ascii_case("content-length") {
                length = v.trim().parse().ok();
            } else if k.eq_ignore_ascii_case("transfer-encoding") {
                chunked = v.trim().eq_ignore_ascii_case("chunked");
            }
        }
        head.extend_from_slice(&line);
        if head.len() > 64 * 1024 {
            return Err(broken("an answer's head is too long"));
        }
    }
    let status: u16 = std::str::from_utf8(&head[..status_end])
        .ok()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| broken("an answer without a status"))?;
    if close {
        let mut with = head[..status_end].to_vec();
        with.extend_from_slice(b"Connection: close\r\n");
        with.extend_from_slice(&head[status_end..]);
        head = with;
    }
    client.write_all(&head)?;
    if head_only || matches!(status, 100..=199 | 204 | 304) {
        return Ok(true);
    }
    if chunked {
        loop {
            let mut line = Vec::new();
            (&mut *backend).take(1024).read_until(b'\n', &mut line)?;
            client.write_all(&line)?;
            let size = std::str::from_utf8(&line)
                .ok()
                .map(|l| l.trim().split(';').next().unwrap_or("").to_string())
                .and_then(|s| u64::from_str_radix(&s, 16).ok())
                .ok_or_else(|| broken("a bad chunk size from the worker pool"))?;
            // The chunk and its CRLF; after the last (empty) chunk, the final CRLF.
            let n = std::io::copy(&mut (&mut *backend).take(size + 2), client)?;
            if n != size + 2 {
                return Err(broken("an answer ended early"));
            }
            if size == 0 {
                return Ok(true);
            }
        }
    }
    match length {
        Some(n) => {
            let copied = std::io::copy(&mut (&mut *backend).take(n), client)?;
            if copied != n {
                return Err(broken("an answer ended early"));
            }
            client.flush()?;
            Ok(true)
        }
        None => {
            std::io::copy(backend, client)?;
            Ok(false)
        }
    }
}

/// Copy the answer from `backend` to the client until the backend closes; with `close`, add
/// `Connection: close` after the status line (tiny_http writes no Connection header itself).
fn relay(backend: &mut UnixStream, client: &mut TcpStream, close: bool) -> bool {
    let mut buf = vec![0u8; 64 * 1024];
    let mut first = true;
    let mut sent_any = false;
    loop {
        let n = match backend.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(_) => return false,
        };
        let mut chunk = &buf[..n];
        if first && close {
            if let Some(i) = memchr::memmem::find(chunk, b"\r\n") {
                if client.write_all(&chunk[..i + 2]).is_err()
                    || client.write_all(b"Connection: close\r\n").is_err()
                {
                    return false;
                }
                chunk = &chunk[i + 2..];
            }
            first = false;
        } else {
            first = false;
        }
        if client.write_all(chunk).is_err() {
            return false;
        }
        sent_any = true;
    }
    if !sent_any {
        let _ = reply::write(client, Response::text(502, "no answer"), true, false);
        return false;
    }
    client.flush().is_ok()
}
