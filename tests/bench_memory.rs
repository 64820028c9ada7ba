//! Server memory as a function of workers, cache_mb and data size, ignored by default (it wants
//! a release build and about a minute):
//!
//!     cargo test --release --test bench_memory -- --ignored --nocapture --test-threads 1
//!
//! For each `workers:cache_mb` pair in `BENCH_CONFIGS` (default `64:32,16:32,64:8,64:0`) it starts
//! the real binary on an empty data file and on one with 20,000 students and 1.2 M grade rows
//! (`BENCH_STUDENTS`, 60 rows each), and prints resident memory idle after start and under the
//! grades-many load: `BENCH_SESSIONS` (default 2,000) distinct signed-in students, each page
//! once, then 32 connections reloading them for 8 s, gzip as WeChat asks.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use support::load::{self, memory_mb, Server};
use support::temp_dir;

const ROWS_PER_STUDENT: usize = 60;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn serve(dir: &Path, workers: usize, cache_mb: usize) -> (Server, u16) {
    let port = load::free_port();
    let cfg = dir.join(format!("wxgrades-{workers}-{cache_mb}.toml"));
    std::fs::write(
        &cfg,
        format!(
            "listen = \"127.0.0.1:{port}\"\npublic_url = \"http://127.0.0.1:{port}\"\ndata = \"{}\"\nworkers = {workers}\ncache_mb = {cache_mb}\n[wechat]\napp_id = \"wx0000000000000001\"\napp_secret = \"s\"\napi_base = \"http://127.0.0.1:9\"\nopen_base = \"http://127.0.0.1:9\"\n[backup]\nevery_hours = 0\n",
            dir.join("data.redb").display()
        ),
    )
    .unwrap();
    let server = load::serve(&cfg, port, &dir.join("server.log"));
    (server, port)
}

/// Resident memory once it has stopped moving (start-up threads settle), in MB.
fn settled_rss(pid: u32) -> f64 {
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut last = memory_mb(pid).0;
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(250));
        let now = memory_mb(pid).0;
        if (now - last).abs() < 0.05 {
            return now;
        }
        last = now;
    }
    last
}

#[test]
#[ignore]
fn bench_memory() {
    let students = env_or("BENCH_STUDENTS", 20_000);
    let n_sessions = env_or("BENCH_SESSIONS", 2_000);
    let configs: Vec<(usize, usize)> = std::env::var("BENCH_CONFIGS")
        .unwrap_or_else(|_| "64:32,16:32,64:8,64:0".into())
        .split(',')
        .filter_map(|p| {
            let (w, c) = p.split_once(':')?;
            Some((w.trim().parse().ok()?, c.trim().parse().ok()?))
        })
        .collect();
    assert!(!configs.is_empty(), "BENCH_CONFIGS: workers:cache_mb,…");
    let empty = temp_dir("bench-mem-empty");
    wxgrades::store::Store::open(&empty.join("data.redb")).unwrap();
    let full = temp_dir("bench-mem-full");
    let started = Instant::now();
    let sessions = load::roster_fixture(&full, students, ROWS_PER_STUDENT, n_sessions);
    let size = std::fs::metadata(full.join("data.redb")).unwrap().len() as f64 / 1e6;
    println!(
        "BENCH memory: data file {size:.0} MB ({students} students, {} rows), built in {:.1} s",
        students * ROWS_PER_STUDENT,
        started.elapsed().as_secs_f64()
    );
    println!("| workers | cache_mb | idle, empty data | idle, {students} students | after {} students' first views (+ reloads), 4 s | under reloads | peak | reloads/s, p99 |", sessions.len());
    println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
    for (workers, cache_mb) in configs {
        let idle_empty = {
            let (server, _) = serve(&empty, workers, cache_mb);
            settled_rss(server.0.id())
        };
        let (server, port) = serve(&full, workers, cache_mb);
        let pid = server.0.id();
        let idle = settled_rss(pid);
        let addr = format!("127.0.0.1:{port}").parse().unwrap();
        let requests: Vec<Vec<u8>> = sessions
            .iter()
            .map(|s| {
                format!("GET /grades HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept-Encoding: gzip, deflate\r\nCookie: wxg_sid={s}\r\n\r\n")
                    .into_bytes()
            })
            .collect();
        // Every student's page once, in order (each a render), then reloads in a spread order.
        let per = requests.len().div_ceil(8);
        let first = load::run(addr, 8, Duration::from_secs(4), 200, |c, n| {
            requests[(c * per + n as usize) % requests.len()].clone()
        });
        let after_first = memory_mb(pid).0;
        let r = load::run(addr, 32, Duration::from_secs(8), 200, |c, n| {
            requests[(c * 31 + n as usize * 17) % requests.len()].clone()
        });
        let (rss, hwm) = memory_mb(pid);
        println!(
            "| {workers} | {cache_mb} | {idle_empty:.1} MB | {idle:.1} MB | {after_first:.1} MB ({} requests) | {rss:.1} MB | {hwm:.1} MB | {:.0}, {:.2} ms |",
            first.requests,
            r.rate(),
            r.p99_ms
        );
        assert_eq!(first.errors + r.errors, 0, "{:?}", r.first_error);
    }
}
