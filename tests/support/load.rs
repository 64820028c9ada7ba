//! A small closed-loop HTTP/1.1 load generator for the benchmarks: N keep-alive connections,
//! each sending its next request as soon as the last answer arrived, for a fixed time.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
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
    let started = Instant::now();
    let deadline = started + duration;
    let results: Vec<(Vec<u32>, u64, Option<String>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..connections)
            .map(|c| {
                let request = &request;
                scope.spawn(move || {
                    let mut lat = Vec::with_capacity(100_000);
                    let mut errors = 0u64;
                    let mut first: Option<String> = None;
                    let mut conn: Option<BufReader<TcpStream>> = None;
                    let mut n = 0u64;
                    while Instant::now() < deadline {
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
