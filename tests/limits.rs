//! Bounds on what a client can make the server do: body sizes, stalled and silent clients,
//! and the small operational routes, over real sockets.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use support::{Client, TestServer};

/// What came back on a raw connection.
#[derive(Debug)]
struct Raw {
    status: u16,
    head: String,
    body: String,
    /// The server closed the connection (EOF or reset) before `wait` ran out.
    closed: bool,
    /// A whole response arrived: its Content-Length worth of body, or everything up to the close.
    complete: bool,
}

fn connect(s: &TestServer) -> TcpStream {
    let addr = s.url.trim_start_matches("http://");
    let c = TcpStream::connect(addr).expect("connect");
    c.set_nodelay(true).expect("nodelay");
    c
}

/// Read a response from `c` until it is complete and the server closed, or `wait` runs out.
fn read_response(c: &mut TcpStream, wait: Duration) -> Raw {
    let deadline = Instant::now() + wait;
    let mut got = Vec::new();
    let mut closed = false;
    let mut buf = [0u8; 8192];
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
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
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
    let (head, body) = match text.split_once("\r\n\r\n") {
        Some((h, b)) => (h.to_string(), b.to_string()),
        None => (text.clone(), String::new()),
    };
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let length = head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case("content-length")
            .then(|| v.trim().parse::<usize>().ok())?
    });
    let complete = status != 0
        && match length {
            Some(n) => body.len() >= n,
            None => closed,
        };
    Raw {
        status,
        head,
        body,
        closed,
        complete,
    }
}

fn healthz_ok(s: &TestServer) {
    let r = s.client().get("/healthz");
    assert_eq!(r.status, 200);
    assert_eq!(r.body, "ok");
}

#[test]
fn huge_declared_body_gets_413_and_the_process_lives_on() {
    let s = TestServer::start("", "");
    for (method, path) in [
        ("POST", "/wx/oauth/start"),
        ("POST", "/admin/import"),
        ("GET", "/"),
        ("POST", "/no/such/page"),
    ] {
        let mut c = connect(&s);
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: test\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100000000000\r\n\r\nstudent_id=1"
        );
        c.write_all(req.as_bytes()).expect("send");
        let r = read_response(&mut c, Duration::from_secs(5));
        assert_eq!(r.status, 413, "{method} {path}: {r:?}");
        assert!(r.complete, "{method} {path}: the answer never ended: {r:?}");
        assert!(r.body.contains("内容过大"), "{method} {path}: {r:?}");
        // The process lives on and answers the next request.
        healthz_ok(&s);
    }
}

#[test]
fn oversized_forms_get_413() {
    let s = TestServer::start("", "");
    let big = "x".repeat(100 * 1024);
    let mut c = s.client();
    for path in ["/wx/oauth/start", "/", "/bind", "/admin/login"] {
        let r = c.post_form(path, &[("student_id", &big), ("name", "x")]);
        assert_eq!(r.status, 413, "{path}: {}", r.status);
        assert!(r.body.contains("内容过大"), "{path}: {}", r.body);
    }
    // The same body chunked, so its size is known only while reading it.
    let mut raw = connect(&s);
    let chunk = format!("{:x}\r\n{big}\r\n", big.len());
    let head = "POST /wx/oauth/start HTTP/1.1\r\nHost: test\r\nContent-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n";
    raw.write_all(head.as_bytes()).expect("send");
    raw.write_all(chunk.as_bytes()).expect("send");
    raw.write_all(b"0\r\n\r\n").expect("send");
    let r = read_response(&mut raw, Duration::from_secs(5));
    assert_eq!(r.status, 413, "{r:?}");
    assert!(r.complete, "{r:?}");
    // A form under the bound is fine.
    let r = c.post_form("/wx/oauth/start", &[("x", &"y".repeat(10 * 1024))]);
    assert_eq!(r.status, 405, "{}", r.body);
    healthz_ok(&s);
}

/// A server with two workers and a 2-second idle timeout.
fn small_server() -> TestServer {
    TestServer::start_custom(None, "", "", |c| {
        c.workers = 2;
        c.idle_timeout_secs = 2;
    })
}

#[test]
fn stalled_bodies_do_not_hold_the_workers() {
    let s = small_server();
    let idle = Duration::from_secs(s.app.config.idle_timeout_secs);
    let margin = Duration::from_secs(2);
    // Twice as many stalled uploads as there are workers: each declares 10 KiB, sends 100 bytes.
    let mut stalled = Vec::new();
    for _ in 0..4 {
        let mut c = connect(&s);
        let head = "POST /wx/oauth/start HTTP/1.1\r\nHost: test\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 10240\r\n\r\n";
        c.write_all(head.as_bytes()).expect("send");
        c.write_all(&[b'a'; 100]).expect("send");
        stalled.push((c, Instant::now()));
    }

    // Others are still served: a healthz now, before the stalled ones are given up on ...
    let asked = Instant::now();
    healthz_ok(&s);
    let waited = asked.elapsed();
    assert!(
        waited < idle + margin,
        "healthz waited {waited:?} behind stalled uploads"
    );

    // ... and each stalled connection is closed by the server within the idle timeout.
    for (mut c, since) in stalled {
        let r = read_response(&mut c, idle + margin + Duration::from_secs(3));
        let after = since.elapsed();
        assert!(r.closed, "a stalled upload was never closed: {r:?}");
        assert!(
            after <= idle + margin,
            "a stalled upload was closed only after {after:?}"
        );
        assert_eq!(r.status, 408, "{r:?}");
    }
    // The workers are free again.
    let asked = Instant::now();
    healthz_ok(&s);
    assert!(asked.elapsed() < Duration::from_millis(500));
}

#[test]
fn silent_and_idle_connections_are_closed() {
    let s = small_server();
    let idle = Duration::from_secs(s.app.config.idle_timeout_secs);
    let margin = Duration::from_secs(2);
    let mut conns = Vec::new();
    // Connected and silent; half a request line; headers never finished; one request then idle.
    for opening in [&b""[..], b"GET /heal", b"GET /healthz HTTP/1.1\r\nHost: te"] {
        let mut c = connect(&s);
        c.write_all(opening).expect("send");
        conns.push((c, Instant::now(), false));
    }
    let mut kept = connect(&s);
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n")
        .expect("send");
    let first = read_response(&mut kept, Duration::from_millis(1500));
    assert_eq!(first.status, 200, "{first:?}");
    assert!(first.complete && !first.closed, "{first:?}");
    conns.push((kept, Instant::now(), true));

    healthz_ok(&s);
    for (mut c, since, _answered) in conns {
        let r = read_response(&mut c, idle + margin + Duration::from_secs(3));
        let after = since.elapsed();
        assert!(r.closed, "a silent connection was never closed: {r:?}");
        assert!(
            after <= idle + margin,
            "a silent connection was closed only after {after:?}"
        );
    }
    healthz_ok(&s);
}

#[test]
fn healthz_static_files_and_head() {
    let s = TestServer::start("", "");
    let mut c = s.client();
    let r = c.get("/healthz");
    assert_eq!(r.status, 200);
    assert_eq!(r.body, "ok");

    let v = wxgrades::views::static_version();
    let r = c.get(&format!("/static/app.css?v={v}"));
    assert_eq!(r.status, 200);
    assert!(r
        .header("content-type")
        .unwrap_or("")
        .starts_with("text/css"));
    let cache = r.header("cache-control").unwrap_or("");
    assert!(
        cache.contains("max-age=31536000") && cache.contains("immutable"),
        "{cache}"
    );
    let css_len = r.body.len();
    assert!(css_len > 100);
    // Pages link the versioned URL.
    let page = c.get("/no/such/page");
    assert_eq!(page.status, 404);
    assert!(
        page.body.contains(&format!("app.css?v={v}")),
        "{}",
        page.body
    );
    // Without a version: cached, but not for a year.
    let r = c.get("/static/app.css");
    let cache = r.header("cache-control").unwrap_or("");
    assert!(!cache.contains("immutable"), "{cache}");
    assert_eq!(c.get("/static/nothing.css").status, 404);
    assert_eq!(c.get("/static/../Cargo.toml").status, 404);

    // HEAD: the headers of GET, no body.
    for (path, status) in [
        (format!("/static/app.css?v={v}"), 200),
        ("/healthz".to_string(), 200),
        ("/".to_string(), 302),
    ] {
        let mut raw = connect(&s);
        raw.write_all(
            format!("HEAD {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .expect("send");
        let r = read_response(&mut raw, Duration::from_secs(5));
        assert_eq!(r.status, status, "HEAD {path}: {r:?}");
        assert!(r.closed, "HEAD {path}: {r:?}");
        assert!(r.body.is_empty(), "HEAD {path} sent a body: {r:?}");
        if path.starts_with("/static/") {
            assert!(
                r.head
                    .to_ascii_lowercase()
                    .contains(&format!("content-length: {css_len}")),
                "{}",
                r.head
            );
        }
    }
    let r = Client::new(&s.url).post_form("/healthz", &[]);
    assert_eq!(r.status, 405);
}

#[test]
fn more_stalled_bodies_than_body_readers_get_503_and_pages_are_still_served() {
    // Two workers → four body readers and a queue of four: ten stalled uploads fill both.
    let s = small_server();
    let mut stalled = Vec::new();
    for _ in 0..10 {
        let mut c = connect(&s);
        let head = "POST /bind HTTP/1.1\r\nHost: test\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 10240\r\n\r\n";
        c.write_all(head.as_bytes()).expect("send");
        stalled.push(c);
    }
    // Pages need no body reader: served at once.
    let asked = Instant::now();
    healthz_ok(&s);
    assert!(
        asked.elapsed() < Duration::from_millis(500),
        "healthz waited {:?}",
        asked.elapsed()
    );
    // The ones beyond readers and queue are told at once to come back later.
    let mut busy = 0;
    for mut c in stalled {
        let r = read_response(&mut c, Duration::from_secs(8));
        // The rest: 408 when a reader gave up on them, or just closed when the connection
        // guard ended them while they waited for a reader; closed either way.
        assert!(r.closed, "{r:?}");
        match r.status {
            503 => busy += 1,
            0 | 408 => {}
            other => panic!("unexpected {other}: {r:?}"),
        }
    }
    assert!(busy >= 2, "{busy} of 10 got 503");
}
