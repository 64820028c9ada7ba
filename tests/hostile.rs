//! Hostile clients at the HTTP level (issue 11, items 4, 5, 6, 8, 9), each over real sockets on
//! 127.0.0.1, bounded in count and time, each showing the attack fails while a legitimate
//! request is still answered promptly.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use support::TestServer;

/// A response read off a raw connection.
#[derive(Debug)]
struct Raw {
    status: u16,
    text: String,
    closed: bool,
}

fn connect(s: &TestServer) -> TcpStream {
    let c = TcpStream::connect(s.url.trim_start_matches("http://")).expect("connect");
    c.set_nodelay(true).expect("nodelay");
    c
}

/// Read until the server closes or `wait` passes.
fn read_all(c: &mut TcpStream, wait: Duration) -> Raw {
    let deadline = Instant::now() + wait;
    let mut got = Vec::new();
    let mut closed = false;
    let mut buf = [0u8; 16 * 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        c.set_read_timeout(Some(left)).expect("timeout");
        match c.read(&mut buf) {
            Ok(0) => {
                closed = true;
                break;
            }
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                break
            }
            Err(_) => {
                closed = true;
                break;
            }
        }
    }
    let text = String::from_utf8_lossy(&got).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Raw {
        status,
        text,
        closed,
    }
}

/// Send `raw` (ignoring a send the server cut short) and read the answer.
fn exchange(s: &TestServer, raw: &[u8]) -> Raw {
    let mut c = connect(s);
    let _ = c.write_all(raw);
    read_all(&mut c, Duration::from_secs(5))
}

/// /healthz answers 200 within `within`.
fn healthz_within(s: &TestServer, within: Duration) {
    let asked = Instant::now();
    let r = exchange(
        s,
        b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert!(
        asked.elapsed() < within,
        "healthz took {:?}",
        asked.elapsed()
    );
}

fn small_server(adjust: impl FnOnce(&mut wxgrades::config::Config)) -> TestServer {
    TestServer::start_custom(None, "", "", |c| {
        c.workers = 2;
        c.idle_timeout_secs = 2;
        adjust(c);
    })
}

/// What /proc says about this process (the server runs in it).
fn proc_status(key: &str) -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    s.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().split(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no {key} in /proc/self/status"))
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .count()
}

/// Wait until `f` holds, or fail after `limit` naming `what`.
fn wait_for(limit: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !f() {
        assert!(Instant::now() < deadline, "never happened: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn request_line_and_header_bounds() {
    let s = TestServer::start("", "");
    let long = |n: usize| format!("GET /{} HTTP/1.1\r\nHost: t\r\n\r\n", "a".repeat(n));
    assert_eq!(exchange(&s, long(64 * 1024).as_bytes()).status, 414);
    assert_eq!(exchange(&s, long(1024 * 1024).as_bytes()).status, 414);
    // Just under the bound: served (the page does not exist).
    assert_eq!(exchange(&s, long(8 * 1024 - 20).as_bytes()).status, 404);

    let block = format!("GET / HTTP/1.1\r\nX-Big: {}\r\n\r\n", "b".repeat(17 * 1024));
    let r = exchange(&s, block.as_bytes());
    assert_eq!(r.status, 431, "{r:?}");
    assert!(r.closed);
    let many: String = (0..101).map(|i| format!("X-{i}: 1\r\n")).collect();
    let r = exchange(
        &s,
        format!("GET /healthz HTTP/1.1\r\n{many}\r\n").as_bytes(),
    );
    assert_eq!(r.status, 431, "{r:?}");
    // 100,000 headers: refused long before the last is sent.
    let mut c = connect(&s);
    c.write_all(b"GET /healthz HTTP/1.1\r\n").expect("send");
    let mut sent = 0;
    for _ in 0..100_000 {
        if c.write_all(b"X-A: 1\r\n").is_err() {
            break;
        }
        sent += 1;
        if sent % 1000 == 0 {
            c.set_nonblocking(true).expect("nb");
            let mut b = [0u8; 64];
            let answered = matches!(c.read(&mut b), Ok(n) if n > 0);
            c.set_nonblocking(false).expect("b");
            if answered {
                break;
            }
        }
    }
    assert!(sent < 100_000, "all 100,000 headers were taken");
    healthz_within(&s, Duration::from_millis(500));
}

#[test]
fn a_gigabyte_line_without_crlf_does_not_grow_memory() {
    let s = TestServer::start("", "");
    let before = proc_status("VmRSS:");
    let mut c = connect(&s);
    c.set_write_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let chunk = vec![b'a'; 1024 * 1024];
    c.write_all(b"GET /").expect("send");
    let mut sent = 0u64;
    // Up to 1 GiB; the server answers and closes after 8 KiB, so the sends fail early.
    for _ in 0..1024 {
        if c.write_all(&chunk).is_err() {
            break;
        }
        sent += chunk.len() as u64;
    }
    let after = proc_status("VmRSS:");
    assert!(sent < 64 * 1024 * 1024, "{sent} bytes were taken");
    let grown_kb = after.saturating_sub(before);
    assert!(grown_kb < 32 * 1024, "RSS grew by {grown_kb} kB");
    let r = read_all(&mut c, Duration::from_secs(5));
    assert!(r.closed, "{r:?}");
    healthz_within(&s, Duration::from_millis(500));
}

#[test]
fn smuggling_shapes_get_400_and_close() {
    let s = TestServer::start("", "");
    for raw in [
        &b"POST /bind HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabcGET /healthz HTTP/1.1\r\n\r\n"[..],
        b"POST /bind HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /healthz HTTP/1.1\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: t\r\nX-A: a\0b\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: t\r\nX-A: a\rb\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: t\r\nX-A: caf\xc3\xa9\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: t\r\nX-A: \xff\r\n\r\n",
    ] {
        let r = exchange(&s, raw);
        assert_eq!(r.status, 400, "{:?}: {r:?}", String::from_utf8_lossy(raw));
        assert!(r.closed, "{r:?}");
        assert_eq!(r.text.matches("HTTP/1.1").count(), 1, "one answer only: {r:?}");
    }
    let r = exchange(&s, b"GET / HTTP/2.0\r\nHost: t\r\n\r\n");
    assert_eq!(r.status, 505, "{r:?}");
    healthz_within(&s, Duration::from_millis(500));
}

#[test]
fn refused_huge_bodies_leak_neither_descriptors_nor_threads() {
    let s = small_server(|_| {});
    let running = s.running.as_ref().expect("running");
    healthz_within(&s, Duration::from_secs(1));
    wait_for(Duration::from_secs(5), "no connection left", || {
        running.connections() == 0
    });
    let (fds, threads) = (open_fds(), proc_status("Threads:"));
    for round in 0..5 {
        let mut conns = Vec::new();
        for _ in 0..100 {
            let mut c = connect(&s);
            c.write_all(b"POST /bind HTTP/1.1\r\nHost: t\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 999999999999\r\n\r\nstudent_id=1")
                .expect("send");
            conns.push(c);
        }
        for mut c in conns {
            let r = read_all(&mut c, Duration::from_secs(5));
            assert_eq!(r.status, 413, "round {round}: {r:?}");
        }
        healthz_within(&s, Duration::from_secs(1));
    }
    wait_for(Duration::from_secs(10), "every connection closed", || {
        running.connections() == 0
    });
    wait_for(Duration::from_secs(10), "descriptors back", || {
        open_fds() <= fds + 4
    });
    wait_for(Duration::from_secs(10), "threads back", || {
        proc_status("Threads:") <= threads + 4
    });
}

#[test]
fn connections_beyond_the_cap_are_refused_at_accept() {
    let s = small_server(|c| c.max_connections = 20);
    let running = s.running.as_ref().expect("running");
    let threads = proc_status("Threads:");
    let mut silent: Vec<TcpStream> = (0..20).map(|_| connect(&s)).collect();
    wait_for(Duration::from_secs(5), "20 connections held", || {
        running.connections() == 20
    });
    // More connections: each refused at once with a 503, no thread started for it.
    for _ in 0..50 {
        let mut c = connect(&s);
        let r = read_all(&mut c, Duration::from_secs(2));
        assert_eq!(r.status, 503, "{r:?}");
        assert!(r.closed);
    }
    assert!(
        proc_status("Threads:") <= threads + 20 + 4,
        "threads grew past one per held connection"
    );
    // The silent ones are closed for idling; then service resumes.
    for c in &mut silent {
        let r = read_all(c, Duration::from_secs(6));
        assert!(r.closed, "{r:?}");
    }
    wait_for(Duration::from_secs(5), "the cap frees up", || {
        running.connections() == 0
    });
    healthz_within(&s, Duration::from_millis(500));
}

#[test]
fn slow_heads_and_bodies_have_total_deadlines() {
    let s = small_server(|_| {});
    // A head trickled a byte every 300 ms is never idle for 2 s, but gets 2 s in all.
    let mut head = connect(&s);
    let started = Instant::now();
    let mut cut = false;
    for b in b"GET /healthz HTTP/1.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n" {
        if head.write_all(&[*b]).is_err() {
            cut = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(300));
        if started.elapsed() > Duration::from_secs(6) {
            break;
        }
    }
    let r = read_all(&mut head, Duration::from_secs(3));
    assert!(cut || r.closed, "{r:?}");
    assert!(r.status == 408 || r.status == 0, "{r:?}");
    assert!(started.elapsed() < Duration::from_secs(8));

    // A body of 10 KiB trickled a byte every 300 ms: 408 within idle + 10 KiB at 16 KiB/s.
    let mut body = connect(&s);
    body.write_all(b"POST /bind HTTP/1.1\r\nHost: t\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 10240\r\n\r\n")
        .expect("send");
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(6) {
        if body.write_all(b"a").is_err() {
            break;
        }
        healthz_within(&s, Duration::from_millis(500));
        std::thread::sleep(Duration::from_millis(300));
        body.set_nonblocking(true).expect("nb");
        let mut b = [0u8; 1];
        let answered =
            !matches!(body.peek(&mut b), Err(ref e) if e.kind() == std::io::ErrorKind::WouldBlock);
        body.set_nonblocking(false).expect("b");
        if answered {
            break;
        }
    }
    let r = read_all(&mut body, Duration::from_secs(3));
    assert_eq!(r.status, 408, "{r:?}");
    let took = started.elapsed();
    assert!(took < Duration::from_secs(4), "the body was given {took:?}");
}

#[test]
fn pipelining_without_reading_holds_no_worker() {
    let s = small_server(|_| {});
    let v = wxgrades::views::static_version();
    let one = format!("GET /static/app.css?v={v} HTTP/1.1\r\nHost: t\r\n\r\n");
    let mut greedy = connect(&s);
    greedy
        .set_write_timeout(Some(Duration::from_secs(3)))
        .expect("timeout");
    let all = one.repeat(400);
    let writer = {
        let mut g = greedy.try_clone().expect("clone");
        std::thread::spawn(move || {
            let _ = g.write_all(all.as_bytes());
        })
    };
    // It never reads; meanwhile every probe is answered quickly.
    for _ in 0..19 {
        healthz_within(&s, Duration::from_millis(500));
        std::thread::sleep(Duration::from_millis(50));
    }
    // Reading now: at most max_requests answers, then the connection ends.
    let r = read_all(&mut greedy, Duration::from_secs(10));
    let answers = r.text.matches("HTTP/1.1 200").count();
    assert!((1..=100).contains(&answers), "{answers} answers");
    assert!(r.closed, "the connection was not ended");
    let _ = writer.join();
}

#[test]
fn admins_keep_body_readers_while_strangers_trickle() {
    // Two workers: four body readers, one of them kept for admins.
    let s = small_server(|c| c.idle_timeout_secs = 5);
    let post = |cookie: &str| {
        format!("POST /bind HTTP/1.1\r\nHost: t\r\n{cookie}Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 10240\r\n\r\n")
    };
    // 64 strangers start bodies and trickle: the open readers fill, the rest hear 503 at once.
    let mut trickling = Vec::new();
    let mut busy = 0;
    for _ in 0..64 {
        let mut c = connect(&s);
        c.write_all(post("").as_bytes()).expect("send");
        c.write_all(b"a").expect("send");
        c.set_nonblocking(true).expect("nb");
        trickling.push(c);
    }
    std::thread::sleep(Duration::from_millis(300));
    for c in &mut trickling {
        let mut b = [0u8; 64];
        if matches!(c.read(&mut b), Ok(n) if n > 12 && b.starts_with(b"HTTP/1.1 503")) {
            busy += 1;
        }
    }
    assert!(busy >= 60, "{busy} of 64 heard 503");
    // A stranger's upload is turned away; one with an admin cookie gets a reader and reaches
    // the handler (which then checks the session: no 503).
    let stranger = exchange(&s, format!("{}{}", post(""), "a".repeat(10240)).as_bytes());
    assert_eq!(stranger.status, 503, "{stranger:?}");
    let admin = exchange(
        &s,
        format!(
            "{}{}",
            post("Cookie: wxg_admin=0123\r\n"),
            "a".repeat(10240)
        )
        .as_bytes(),
    );
    assert!(admin.status != 503 && admin.status != 0, "{admin:?}");
    healthz_within(&s, Duration::from_millis(500));
}

#[test]
fn metrics_live_on_their_own_listener() {
    let s = TestServer::start("metrics_listen = \"127.0.0.1:0\"", "");
    let running = s.running.as_ref().expect("running");
    let m = running.metrics_addr.expect("metrics listener");
    let mut c = TcpStream::connect(m).expect("connect");
    c.write_all(b"GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .expect("send");
    let r = read_all(&mut c, Duration::from_secs(5));
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.text.contains("# TYPE"), "{r:?}");
    // Not on the public listener, even from loopback.
    let r = exchange(
        &s,
        b"GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(r.status, 404, "{r:?}");
    // The metrics listener serves nothing else.
    let mut c = TcpStream::connect(m).expect("connect");
    c.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .expect("send");
    assert_eq!(read_all(&mut c, Duration::from_secs(5)).status, 404);
}

#[test]
fn metrics_on_the_public_listener_refuse_a_proxied_client() {
    let s = TestServer::start("", "");
    let r = exchange(
        &s,
        b"GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(r.status, 200, "loopback without a proxy: {r:?}");
    let r = exchange(
        &s,
        b"GET /metrics HTTP/1.1\r\nHost: t\r\nX-Forwarded-For: 203.0.113.9\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(r.status, 404, "through a proxy: {r:?}");
}
