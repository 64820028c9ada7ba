//! A small closed-loop HTTP/1.1 load generator for the benchmarks: N keep-alive connections,
//! each sending its next request as soon as the last answer arrived, for a fixed time.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct LoadResult {
    pub requests: u64,
    pub errors: u64,
    pub secs: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// What the first failed request got, for the report.
    pub first_error: Option<String>,
}

impl LoadResult {
    pub fn rate(&self) -> f64 {
        self.requests as f64 / self.secs
    }
}

/// Send one request on `stream` and read the whole answer; returns the status.
/// One request and its answer: the status, and whether the server closes the connection after it
/// (`Connection: close`).
pub fn exchange(stream: &mut BufReader<TcpStream>, request: &[u8]) -> std::io::Result<(u16, bool)> {
    stream.get_mut().write_all(request)?;
    let mut line = String::new();
    stream.read_line(&mut line)?;
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut length = 0usize;
    let mut close = false;
    loop {
        line.clear();
        if stream.read_line(&mut line)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                length = v.trim().parse().unwrap_or(0);
            }
            if k.eq_ignore_ascii_case("connection") && v.trim().eq_ignore_ascii_case("close") {
                close = true;
            }
        }
    }
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body)?;
    Ok((status, close))
}

/// Run `connections` connections for `duration`; `request(conn, n)` gives the bytes of the
/// n-th request of a connection. A request answered with another status than `expect` is an
/// error.
pub fn run(
    addr: SocketAddr,
    connections: usize,
    duration: Duration,
    expect: u16,
    request: impl Fn(usize, u64) -> Vec<u8> + Sync,
) -> LoadResult {
    let deadline = Instant::now() + duration;
    run_while(
        addr,
        connections,
        || Instant::now() < deadline,
        expect,
        request,
    )
}

/// As [`run`], for as long as `going()` says (asked before each request).
pub fn run_while(
    addr: SocketAddr,
    connections: usize,
    going: impl Fn() -> bool + Sync,
    expect: u16,
    request: impl Fn(usize, u64) -> Vec<u8> + Sync,
) -> LoadResult {
    let started = Instant::now();
    let results: Vec<(Vec<u32>, u64, Option<String>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..connections)
            .map(|c| {
                let (request, going) = (&request, &going);
                scope.spawn(move || {
                    let mut lat = Vec::with_capacity(100_000);
                    let mut errors = 0u64;
                    let mut first: Option<String> = None;
                    let mut conn: Option<BufReader<TcpStream>> = None;
                    let mut n = 0u64;
                    while going() {
                        if conn.is_none() {
                            match TcpStream::connect(addr) {
                                Ok(s) => {
                                    let _ = s.set_nodelay(true);
                                    conn = Some(BufReader::with_capacity(64 * 1024, s));
                                }
                                Err(_) => {
                                    errors += 1;
                                    continue;
                                }
                            }
                        }
                        let Some(s) = conn.as_mut() else { continue };
                        let req = request(c, n);
                        n += 1;
                        let t = Instant::now();
                        match exchange(s, &req) {
                            Ok((status, close)) if status == expect => {
                                lat.push(t.elapsed().as_micros() as u32);
                                if close {
                                    conn = None;
                                }
                            }
                            Ok((status, _)) => {
                                errors += 1;
                                first.get_or_insert_with(|| format!("status {status}"));
                            }
                            Err(e) => {
                                errors += 1;
                                first.get_or_insert_with(|| format!("i/o: {e}"));
                                conn = None;
                            }
                        }
                    }
                    (lat, errors, first)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_default())
            .collect()
    });
    let secs = started.elapsed().as_secs_f64();
    let mut all: Vec<u32> = Vec::new();
    let mut errors = 0;
    let mut first_error = None;
    for (l, e, f) in results {
        all.extend(l);
        errors += e;
        first_error = first_error.or(f);
    }
    all.sort_unstable();
    let pct = |p: f64| -> f64 {
        if all.is_empty() {
            return 0.0;
        }
        let i = ((all.len() as f64 - 1.0) * p).round() as usize;
        all[i] as f64 / 1000.0
    };
    LoadResult {
        requests: all.len() as u64,
        errors,
        secs,
        p50_ms: pct(0.5),
        p99_ms: pct(0.99),
        max_ms: pct(1.0),
        first_error,
    }
}

/// Resident and peak memory of a process, in MB, from /proc.
pub fn memory_mb(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| -> f64 {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .map(|kb| kb / 1024.0)
            .unwrap_or(0.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// A data file for a benchmark: import `roster` and `grades` (CSV bytes) into `data`, then bind
/// each `(openid, student_id)` of `bound` and give it a live session of a day; returns the
/// session ids, in order.
pub fn seed_data_file(
    data: &std::path::Path,
    roster: &[u8],
    grades: &[u8],
    bound: impl Iterator<Item = (String, String)>,
) -> Vec<String> {
    use wxgrades::service::import::plan::{commit, plan, ImportKind, Upload};
    let store = wxgrades::store::Store::open(data).expect("data file");
    let key = wxgrades::service::verify::VerifyKey::load_or_create(data).expect("verify key");
    for (kind, bytes) in [(ImportKind::Roster, roster), (ImportKind::Grades, grades)] {
        let up = Upload {
            kind,
            file_name: "f.csv",
            bytes,
            replace_term: None,
        };
        let p = plan(&store, &key, &up).expect("plan");
        assert!(p.errors.is_empty(), "{:?}", p.errors.first());
        commit(&store, &key, &p, &up, "bench", 0, false, |_, _, _| Ok(0)).expect("commit");
    }
    let now = wxgrades::clock::unix_now();
    bound
        .map(|(openid, student_id)| {
            store.bind(&openid, &student_id, now).expect("bind");
            let id = wxgrades::secret::random_hex::<32>();
            let session = wxgrades::store::auth::Session {
                openid,
                created: now,
                expires: now + 86_400,
            };
            store
                .put_session(&wxgrades::service::session::hash(&id), &session)
                .expect("session");
            id
        })
        .collect()
}

/// A port free on loopback now (for a server started in another process).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind loopback")
        .local_addr()
        .expect("local address")
        .port()
}

/// The real `wxgrades` binary, started by [`serve`].
pub struct Server(pub Child);

impl Drop for Server {
    /// Stop with SIGINT and wait, so the next start opens a cleanly closed data file (after a
    /// kill, redb's repair reads the whole file and fills its cache: that is not idle memory).
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-INT", &self.0.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Start `wxgrades serve --config cfg` (listening on `port`), its log in `log`, and wait until
/// `/healthz` answers.
pub fn serve(cfg: &Path, port: u16, log: &Path) -> Server {
    let child = Command::new(env!("CARGO_BIN_EXE_wxgrades"))
        .args(["serve", "--config"])
        .arg(cfg)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).expect("log file"))
        .spawn()
        .expect("start wxgrades");
    let server = Server(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut c = super::Client::new(&format!("http://127.0.0.1:{port}"));
    while !(TcpStream::connect(("127.0.0.1", port)).is_ok() && c.get("/healthz").status == 200) {
        assert!(
            Instant::now() < deadline,
            "server did not start; see {}",
            log.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    server
}

/// The terms of the benchmark's grade rows.
pub const TERMS: [&str; 12] = [
    "2020-2021-1",
    "2020-2021-2",
    "2021-2022-1",
    "2021-2022-2",
    "2022-2023-1",
    "2022-2023-2",
    "2023-2024-1",
    "2023-2024-2",
    "2024-2025-1",
    "2024-2025-2",
    "2025-2026-1",
    "2025-2026-2",
];

/// The `i`-th student of [`roster_fixture`]: student id, name and bind code (身份证后六位).
pub fn student(i: usize) -> (String, String, String) {
    (
        format!("{:08}", 40_000_000 + i),
        format!("学生{i}"),
        format!("{:06}", i % 1_000_000),
    )
}

/// Import a roster of `n` students ([`student`]) with `rows_per_student` grade rows each into
/// `dir/data.redb`, bind `sessions` of them (every `n / sessions`-th: students 0, step,
/// 2·step, …, as `oMem00000`, …) and give each a live session; returns the session ids.
pub fn roster_fixture(
    dir: &Path,
    n: usize,
    rows_per_student: usize,
    sessions: usize,
) -> Vec<String> {
    let mut roster = String::from("学号,姓名,身份证后六位,班级,专业\n");
    let mut grades = Vec::with_capacity(n * rows_per_student * 60);
    writeln!(grades, "学号,学期,课程代码,课程名称,学分,成绩,考试性质").expect("in memory");
    for i in 0..n {
        let (sid, name, verify) = student(i);
        roster.push_str(&format!(
            "{sid},{name},{verify},计科{:02},计算机科学与技术\n",
            i % 40
        ));
        for k in 0..rows_per_student {
            let term = TERMS[k % TERMS.len()];
            let score = 55 + (i * 7 + k * 29) % 46;
            writeln!(
                grades,
                "{sid},{term},C{k:03},课程{k},{}.5,{score},正常考试",
                1 + k % 4
            )
            .expect("in memory");
        }
    }
    let step = bind_step(n, sessions);
    let bound = (0..sessions.min(n)).map(|i| (format!("oMem{i:05}"), student(i * step).0));
    seed_data_file(&dir.join("data.redb"), roster.as_bytes(), &grades, bound)
}

/// The distance between the students [`roster_fixture`] binds.
pub fn bind_step(n: usize, sessions: usize) -> usize {
    (n / sessions.max(1)).max(1)
}

/// Sign `c` in on the admin login page; the account must exist.
pub fn admin_sign_in(c: &mut super::Client, user: &str, password: &str) {
    let r = c.get("/admin/login");
    let t = super::Client::hidden(&r.body, "csrf_token");
    let r = c.post_form(
        "/admin/login",
        &[
            ("username", user),
            ("password", password),
            ("csrf_token", &t),
        ],
    );
    assert_eq!(r.status, 303, "{}", r.body);
}

/// Upload a grades CSV on the admin import page (multipart, as a browser sends it); returns the
/// job's page path and the CSRF token of the page.
pub fn upload_grades(c: &mut super::Client, file_name: &str, csv: &[u8]) -> (String, String) {
    let t = super::Client::hidden(&c.get("/admin/import").body, "csrf_token");
    let b = "----wxgradesBenchBoundary";
    let mut body = format!("--{b}\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\n{t}\r\n--{b}\r\nContent-Disposition: form-data; name=\"kind\"\r\n\r\ngrades\r\n--{b}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{file_name}\"\r\nContent-Type: text/csv\r\n\r\n").into_bytes();
    body.extend_from_slice(csv);
    body.extend_from_slice(format!("\r\n--{b}--\r\n").as_bytes());
    let r = c.post_raw(
        "/admin/import",
        &format!("multipart/form-data; boundary={b}"),
        body,
    );
    assert_eq!(r.status, 303, "{}", r.body);
    (r.location().to_string(), t)
}

/// GET `path` until the page no longer refreshes itself (the import thread is done with it).
pub fn wait_settled(c: &mut super::Client, path: &str) -> super::Resp {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let r = c.get(path);
        if !r.body.contains("http-equiv=\"refresh\"") {
            return r;
        }
        assert!(Instant::now() < deadline, "{path} still busy");
        std::thread::sleep(Duration::from_millis(20));
    }
}
