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

use std::io::Write;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::load::{self, memory_mb};
use support::{temp_dir, Client};

const TERMS: [&str; 12] = [
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
const ROWS_PER_STUDENT: usize = 60;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn sid(i: usize) -> String {
    format!("{:08}", 40_000_000 + i)
}

/// Import a roster of `n` students with 60 grade rows each into `dir/data.redb`, bind
/// `sessions` of them and give each a live session; returns the session ids.
fn fixture(dir: &Path, n: usize, sessions: usize) -> Vec<String> {
    let mut roster = String::from("学号,姓名,身份证后六位,班级,专业\n");
    let mut grades = Vec::with_capacity(n * ROWS_PER_STUDENT * 60);
    writeln!(grades, "学号,学期,课程代码,课程名称,学分,成绩,考试性质").unwrap();
    for i in 0..n {
        roster.push_str(&format!(
            "{},学生{i},{:06},计科{:02},计算机科学与技术\n",
            sid(i),
            i % 1_000_000,
            i % 40
        ));
        for k in 0..ROWS_PER_STUDENT {
            let term = TERMS[k % TERMS.len()];
            let score = 55 + (i * 7 + k * 29) % 46;
            writeln!(
                grades,
                "{},{term},C{k:03},课程{k},{}.5,{score},正常考试",
                sid(i),
                1 + k % 4
            )
            .unwrap();
        }
    }
    let step = (n / sessions.max(1)).max(1);
    let bound = (0..sessions.min(n)).map(|i| (format!("oMem{i:05}"), sid(i * step)));
    load::seed_data_file(&dir.join("data.redb"), roster.as_bytes(), &grades, bound)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Server(Child);
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

fn serve(dir: &Path, workers: usize, cache_mb: usize) -> (Server, u16) {
    let port = free_port();
    let cfg = dir.join(format!("wxgrades-{workers}-{cache_mb}.toml"));
    std::fs::write(
        &cfg,
        format!(
            "listen = \"127.0.0.1:{port}\"\npublic_url = \"http://127.0.0.1:{port}\"\ndata = \"{}\"\nworkers = {workers}\ncache_mb = {cache_mb}\n[wechat]\napp_id = \"wx0000000000000001\"\napp_secret = \"s\"\napi_base = \"http://127.0.0.1:9\"\nopen_base = \"http://127.0.0.1:9\"\n[backup]\nevery_hours = 0\n",
            dir.join("data.redb").display()
        ),
    )
    .unwrap();
    let log = dir.join("server.log");
    let child = Command::new(env!("CARGO_BIN_EXE_wxgrades"))
        .args(["serve", "--config"])
        .arg(&cfg)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let server = Server(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut c = Client::new(&format!("http://127.0.0.1:{port}"));
    while !(std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        && c.get("/healthz").status == 200)
    {
        assert!(Instant::now() < deadline, "no start; see {}", log.display());
        std::thread::sleep(Duration::from_millis(50));
    }
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
    let sessions = fixture(&full, students, n_sessions);
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
