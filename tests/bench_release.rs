//! The release-day benchmark of issue 12, ignored by default (it wants a release build and a
//! few minutes):
//!
//!     cargo test --release --test bench_release -- --ignored --nocapture
//!
//! The real binary, default settings (64 workers, `cache_mb` 32, the default notice rate),
//! a data file with `BENCH_STUDENTS` (20,000) students and `BENCH_ROWS_PER_STUDENT` (60) rows
//! each, `BENCH_BOUND` (5,000) of them bound with a live session and their pages viewed once.
//! Then, all at once, on loopback:
//! - the admin uploads a new term of `BENCH_NEW_ROWS` (100,000) rows on the import page and
//!   commits it with notify; the notices go to the fake WeChat's template endpoint;
//! - `BENCH_NEW_STUDENTS` (2,000) students not yet bound, `BENCH_LOGIN_CLIENTS` (64) at a time,
//!   sign in through OAuth (the fake WeChat answers the code exchange in 100 ms), bind on the
//!   bind page, view their grades, and reload them `BENCH_RELOADS` (3) times;
//! - the bound students reload their grades on `BENCH_RELOAD_CONNECTIONS` (32) connections
//!   until the rest is done, and at least `BENCH_MIN_SECS` (20) s.
//!
//! It prints one table: page p50/p99 by first view and reload, logins/s, notices sent and per
//! second (and, for comparison, per second in the `BENCH_NOTICE_TAIL_SECS` (10) s after the
//! load), the import's times, and the server's RSS sampled every second.
//! A smoke run (about 40 s in a debug build): `BENCH_STUDENTS=2000 BENCH_BOUND=500
//! BENCH_NEW_STUDENTS=200 BENCH_NEW_ROWS=10000 BENCH_MIN_SECS=3 cargo test --test bench_release
//! -- --ignored --nocapture`.

mod support;

use std::io::BufReader;
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use support::load::{self, memory_mb};
use support::{temp_dir, Client, FakeWeChat, Login, APP_ID, APP_SECRET};

const NEW_TERM: &str = "2026-2027-1";
const ADMIN_PASSWORD: &str = "correct horse battery";

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The new term's grades: `rows` rows spread over the `n` students (row r to student r mod n).
fn new_term_csv(n: usize, rows: usize) -> Vec<u8> {
    let mut csv = String::from("学号,学期,课程代码,课程名称,学分,成绩,考试性质\n");
    for r in 0..rows {
        let (i, k) = (r % n, r / n);
        let (sid, _, _) = load::student(i);
        let score = 60 + (i * 11 + k * 17) % 41;
        csv.push_str(&format!(
            "{sid},{NEW_TERM},N{k:03},新课程{k},{}.0,{score},正常考试\n",
            2 + k % 3
        ));
    }
    csv.into_bytes()
}

/// Latencies in µs → (p50, p99) in ms.
fn percentiles(mut v: Vec<u32>) -> (f64, f64) {
    if v.is_empty() {
        return (0.0, 0.0);
    }
    v.sort_unstable();
    let at = |p: f64| v[((v.len() as f64 - 1.0) * p).round() as usize] as f64 / 1000.0;
    (at(0.5), at(0.99))
}

fn grades_request(session: &str) -> Vec<u8> {
    format!("GET /grades HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept-Encoding: gzip, deflate\r\nCookie: wxg_sid={session}\r\n\r\n")
        .into_bytes()
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// What one first-time student's visit measured.
#[derive(Default)]
struct Visits {
    /// From `/wx/oauth/start` to the session cookie, µs.
    logins: Vec<u32>,
    binds: Vec<u32>,
    first_views: Vec<u32>,
    reloads: Vec<u32>,
    /// When the last sign-in completed.
    last_login: Option<Instant>,
    errors: usize,
    first_error: Option<String>,
}

impl Visits {
    fn fail(&mut self, what: String) {
        self.errors += 1;
        self.first_error.get_or_insert(what);
    }

    fn absorb(&mut self, v: Visits) {
        self.logins.extend(v.logins);
        self.binds.extend(v.binds);
        self.first_views.extend(v.first_views);
        self.reloads.extend(v.reloads);
        self.last_login = self.last_login.max(v.last_login);
        self.errors += v.errors;
        self.first_error = self.first_error.take().or(v.first_error);
    }
}

/// Sets its flag when dropped, also when the thread holding it panics (so the reloaders stop).
struct SetOnDrop<'a>(&'a AtomicBool);

impl Drop for SetOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

fn micros(since: Instant) -> u32 {
    since.elapsed().as_micros() as u32
}

/// Student `i` (not bound yet) signs in through OAuth, binds, views and reloads their grades.
fn first_visit(url: &str, addr: SocketAddr, fake: &FakeWeChat, i: usize, reloads: usize) -> Visits {
    let mut v = Visits::default();
    let (sid, name, verify) = load::student(i);
    let mut c = Client::new(url);
    let t = Instant::now();
    let r = c.get("/wx/oauth/start?next=%2Fbind");
    let state = r
        .header("location")
        .and_then(|l| l.split("state=").nth(1))
        .and_then(|x| x.split('&').next())
        .unwrap_or("")
        .to_string();
    let mut login = Login::user(&format!("oNew{i:06}"));
    login.delay = Duration::from_millis(100);
    let code = fake.issue_code(login);
    let r = c.get(&format!("/wx/oauth/callback?code={code}&state={state}"));
    let Some(session) = c.cookies.get("wxg_sid").cloned() else {
        v.fail(format!("sign-in: status {}", r.status));
        return v;
    };
    v.logins.push(micros(t));
    v.last_login = Some(Instant::now());
    let t = Instant::now();
    let page = c.get("/bind");
    let token = Client::hidden(&page.body, "csrf_token");
    let r = c.post_form(
        "/bind",
        &[
            ("student_id", &sid),
            ("name", &name),
            ("verify", &verify),
            ("csrf_token", &token),
        ],
    );
    if r.status != 303 {
        v.fail(format!("bind: status {}", r.status));
        return v;
    }
    v.binds.push(micros(t));
    let request = grades_request(&session);
    let Ok(stream) = TcpStream::connect(addr) else {
        v.fail("connect".into());
        return v;
    };
    let _ = stream.set_nodelay(true);
    let mut stream = BufReader::with_capacity(64 * 1024, stream);
    for n in 0..=reloads {
        let t = Instant::now();
        match load::exchange(&mut stream, &request) {
            Ok((200, _)) if n == 0 => v.first_views.push(micros(t)),
            Ok((200, _)) => v.reloads.push(micros(t)),
            other => {
                v.fail(format!("grades: {other:?}"));
                return v;
            }
        }
    }
    v
}

#[test]
#[ignore]
fn bench_release_day() {
    let students = env_or("BENCH_STUDENTS", 20_000);
    let per_student = env_or("BENCH_ROWS_PER_STUDENT", 60);
    let bound = env_or("BENCH_BOUND", 5_000);
    let new_students = env_or("BENCH_NEW_STUDENTS", 2_000);
    let new_rows = env_or("BENCH_NEW_ROWS", 100_000);
    let reloads = env_or("BENCH_RELOADS", 3);
    let login_clients = env_or("BENCH_LOGIN_CLIENTS", 64);
    let connections = env_or("BENCH_RELOAD_CONNECTIONS", 32);
    let min_secs = env_or("BENCH_MIN_SECS", 20);
    let step = load::bind_step(students, bound);
    // The first-time students: not among the bound ones (those are 0, step, 2·step, …).
    let newcomers: Vec<usize> = (0..students)
        .filter(|i| !(i % step == 0 && i / step < bound))
        .take(new_students)
        .collect();
    assert_eq!(
        newcomers.len(),
        new_students,
        "BENCH_NEW_STUDENTS: more than the unbound students"
    );

    let dir = temp_dir("bench-release");
    let built = Instant::now();
    let sessions = load::roster_fixture(&dir, students, per_student, bound);
    {
        let store = wxgrades::store::Store::open(&dir.join("data.redb")).expect("data file");
        wxgrades::service::admin::accounts::add(&store, "bench", ADMIN_PASSWORD, 0)
            .expect("admin account");
    }
    let data_mb = std::fs::metadata(dir.join("data.redb")).map_or(0.0, |m| m.len() as f64 / 1e6);
    let csv = new_term_csv(students, new_rows);
    println!(
        "BENCH release day: data file {data_mb:.0} MB ({students} students, {} rows, {bound} bound), built in {:.1} s; new term {new_rows} rows ({:.1} MB CSV)",
        students * per_student,
        built.elapsed().as_secs_f64(),
        csv.len() as f64 / 1e6
    );

    let fake = FakeWeChat::start_with_threads(APP_ID, APP_SECRET, login_clients + 32);
    let port = load::free_port();
    let cfg = dir.join("wxgrades.toml");
    std::fs::write(
        &cfg,
        format!(
            "listen = \"127.0.0.1:{port}\"\npublic_url = \"http://127.0.0.1:{port}\"\ndata = \"{}\"\nmax_upload_mb = 200\n[wechat]\napp_id = \"{APP_ID}\"\napp_secret = \"{APP_SECRET}\"\napi_base = \"{f}\"\nopen_base = \"{f}\"\nmp_base = \"{f}\"\ngrades_template_id = \"TPL-grades-1\"\n[backup]\nevery_hours = 0\n",
            dir.join("data.redb").display(),
            f = fake.url,
        ),
    )
    .expect("config");
    let server = load::serve(&cfg, port, &dir.join("server.log"));
    let pid = server.0.id();
    let url = format!("http://127.0.0.1:{port}");
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("address");
    let idle = memory_mb(pid).0;

    // Before release day: every bound student's page viewed once (rendered, then cached).
    let requests: Vec<Vec<u8>> = sessions.iter().map(|s| grades_request(s)).collect();
    let next = AtomicUsize::new(0);
    let warm = load::run_while(
        addr,
        8,
        || next.load(Ordering::Relaxed) < requests.len(),
        200,
        |_, _| requests[next.fetch_add(1, Ordering::Relaxed) % requests.len()].clone(),
    );
    assert_eq!(warm.errors, 0, "warm-up: {:?}", warm.first_error);
    let before = memory_mb(pid).0;
    let mut admin = Client::new(&url);
    load::admin_sign_in(&mut admin, "bench", ADMIN_PASSWORD);
    let load_before = load_average();

    // Release day.
    let started = Instant::now();
    let newcomers_done = AtomicBool::new(false);
    let commit_done = AtomicBool::new(false);
    let all_done = AtomicBool::new(false);
    let rss: Mutex<Vec<f64>> = Mutex::new(Vec::new());
    let next_newcomer = AtomicUsize::new(0);
    let (reload, visits, import) = std::thread::scope(|scope| {
        scope.spawn(|| {
            while !all_done.load(Ordering::Relaxed) {
                rss.lock().expect("samples").push(memory_mb(pid).0);
                let tick = Instant::now() + Duration::from_secs(1);
                while Instant::now() < tick && !all_done.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        });
        let reloaders = scope.spawn(|| {
            let _stop_sampling = SetOnDrop(&all_done);
            let min = Duration::from_secs(min_secs as u64);
            load::run_while(
                addr,
                connections,
                || {
                    started.elapsed() < min
                        || !(newcomers_done.load(Ordering::Relaxed)
                            && commit_done.load(Ordering::Relaxed))
                },
                200,
                |c, n| requests[(c * 31 + n as usize * 17) % requests.len()].clone(),
            )
        });
        let importer = scope.spawn(|| {
            let done = SetOnDrop(&commit_done);
            let (job, token) = load::upload_grades(&mut admin, "new-term.csv", &csv);
            let preview = load::wait_settled(&mut admin, &job);
            assert!(preview.body.contains("/commit"), "{}", preview.body);
            let planned = started.elapsed().as_secs_f64();
            let committing = Instant::now();
            let r = admin.post_form(
                &format!("{job}/commit"),
                &[("csrf_token", &token), ("notify", "1")],
            );
            assert_eq!(r.status, 303, "{}", r.body);
            let h = load::wait_settled(&mut admin, "/admin/imports");
            let committed = committing.elapsed().as_secs_f64();
            let at = Instant::now();
            let notified: usize = h
                .body
                .split("已通知 ")
                .nth(1)
                .and_then(|s| s.split(' ').next())
                .and_then(|n| n.replace(',', "").parse().ok())
                .unwrap_or(0);
            let sent = fake.delivered_total();
            drop(done);
            (planned, committed, notified, at, sent)
        });
        let clients: Vec<_> = (0..login_clients)
            .map(|_| {
                scope.spawn(|| {
                    let mut all = Visits::default();
                    loop {
                        let k = next_newcomer.fetch_add(1, Ordering::Relaxed);
                        let Some(&i) = newcomers.get(k) else { break };
                        all.absorb(first_visit(&url, addr, &fake, i, reloads));
                    }
                    all
                })
            })
            .collect();
        let newcomers_finished = SetOnDrop(&newcomers_done);
        let mut visits = Visits::default();
        for c in clients {
            visits.absorb(c.join().expect("client thread"));
        }
        let newcomers_secs = started.elapsed().as_secs_f64();
        drop(newcomers_finished);
        let import = importer.join().expect("import thread");
        let reload = reloaders.join().expect("reload thread");
        ((reload, newcomers_secs), visits, import)
    });
    let ((reload, newcomers_secs), (planned, committed, notified, commit_at, sent_at_commit)) =
        (reload, import);
    let secs = started.elapsed().as_secs_f64();
    let sent = fake.delivered_total();
    let after_commit = commit_at.elapsed().as_secs_f64();
    let (end, hwm) = memory_mb(pid);
    let samples = rss.into_inner().expect("samples");
    // The sender once the load is over, for comparison with its rate under load.
    let tail = Duration::from_secs(env_or("BENCH_NOTICE_TAIL_SECS", 10) as u64);
    let tail_started = Instant::now();
    while tail_started.elapsed() < tail && fake.delivered_total() < notified {
        std::thread::sleep(Duration::from_millis(100));
    }
    let tail_secs = tail_started.elapsed().as_secs_f64();
    let sent_tail = fake.delivered_total() - sent;
    let peak = samples.iter().copied().fold(0.0f64, f64::max);
    let logins_secs = visits
        .last_login
        .map_or(0.0, |t| t.duration_since(started).as_secs_f64());
    let (login_p50, login_p99) = percentiles(visits.logins.clone());
    let (bind_p50, bind_p99) = percentiles(visits.binds.clone());
    let (first_p50, first_p99) = percentiles(visits.first_views.clone());
    let (again_p50, again_p99) = percentiles(visits.reloads.clone());
    let load_after = load_average();

    println!("| release day, {secs:.1} s | figure |");
    println!("| --- | --- |");
    println!(
        "| data | {students} students, {} grade rows stored ({data_mb:.0} MB file), {bound} bound and viewed once before |",
        students * per_student
    );
    println!(
        "| new term, {new_rows} rows, admin upload page | upload + plan {planned:.2} s; **commit with notify {committed:.2} s**; {notified} students notified |"
    );
    println!(
        "| first sign-ins (OAuth, WeChat 100 ms), {login_clients} clients | **{:.0} logins/s** ({} in {logins_secs:.1} s); sign-in p50 {login_p50:.0} ms, p99 {login_p99:.0} ms; bind p50 {bind_p50:.1} ms, p99 {bind_p99:.1} ms |",
        visits.logins.len() as f64 / logins_secs.max(1e-9),
        visits.logins.len()
    );
    println!(
        "| grades page, first view after bind ({} views) | **p50 {first_p50:.2} ms, p99 {first_p99:.2} ms** |",
        visits.first_views.len()
    );
    println!(
        "| grades page, their reloads ({} views) | **p50 {again_p50:.2} ms, p99 {again_p99:.2} ms** |",
        visits.reloads.len()
    );
    println!(
        "| grades page, {} bound students reloading, {connections} connections, for {:.1} s | {:.0} req/s, **p50 {:.2} ms, p99 {:.2} ms**, max {:.0} ms |",
        sessions.len(),
        reload.secs,
        reload.rate(),
        reload.p50_ms,
        reload.p99_ms,
        reload.max_ms
    );
    println!(
        "| notices (template messages, default rate) | {sent} of {notified} sent by the end, **{:.1}/s** over the {after_commit:.1} s after the commit; once the load was over: {:.1}/s ({sent_tail} in {tail_secs:.1} s) |",
        (sent - sent_at_commit) as f64 / after_commit.max(1e-9),
        sent_tail as f64 / tail_secs.max(1e-9)
    );
    println!(
        "| server RSS, sampled every second ({} samples) | idle {idle:.1} MB, {before:.1} MB before, **peak {:.1} MB** (VmHWM {hwm:.1} MB), **end {end:.1} MB** |",
        samples.len(),
        peak.max(end)
    );
    println!("| machine load average (1, 5, 15 min) | {load_before} before, {load_after} after |");
    println!(
        "RSS every second (MB): {}",
        samples
            .iter()
            .map(|m| format!("{m:.0}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!("newcomers done after {newcomers_secs:.1} s");
    assert_eq!(
        visits.errors, 0,
        "first visits failed: {:?}",
        visits.first_error
    );
    assert_eq!(reload.errors, 0, "reloads failed: {:?}", reload.first_error);
    assert_eq!(visits.first_views.len(), new_students);
    assert!(notified > 0, "the import notified no one");
}
