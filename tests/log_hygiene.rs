//! The real binary, its log and its shutdown: `wxgrades serve` with debug logging, a full
//! sign-in and a few failures against it, then SIGTERM. The log must have one line per request
//! and no secret of the flow; the process must end by itself, successfully.

mod support;

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::{temp_dir, Client, FakeWeChat, Login, Resp, APP_ID, APP_SECRET};
use wxgrades::http::form::parse_urlencoded;

/// Kills the server if the test fails before it is stopped.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// A client that notes every request it makes to our server, and every secret it sees.
struct Visitor {
    c: Client,
    server: String,
    requests: Vec<(String, String, u16)>,
    secrets: Vec<String>,
}

impl Visitor {
    fn note(&mut self, url: &str, r: &Resp) {
        if let Some(rest) = url.strip_prefix(&self.server) {
            let path = rest.split('?').next().unwrap_or("").to_string();
            self.requests.push(("GET".into(), path, r.status));
        } else if !url.starts_with("http") {
            let path = url.split('?').next().unwrap_or("").to_string();
            self.requests.push(("GET".into(), path, r.status));
        }
        for (k, v) in parse_urlencoded(url.split_once('?').map(|(_, q)| q).unwrap_or("")) {
            if k == "code" || k == "state" {
                self.secrets.push(v);
            }
        }
        if let Some(loc) = r.header("location") {
            for (k, v) in parse_urlencoded(loc.split_once('?').map(|(_, q)| q).unwrap_or("")) {
                if k == "code" || k == "state" {
                    self.secrets
                        .push(v.split('#').next().unwrap_or("").to_string());
                }
            }
        }
        for cookie in r.set_cookies() {
            if let Some((_, v)) = cookie.split(';').next().unwrap_or("").split_once('=') {
                if !v.is_empty() {
                    self.secrets.push(v.to_string());
                }
            }
        }
    }

    fn get(&mut self, url: &str) -> Resp {
        let r = self.c.get(url);
        self.note(url, &r);
        r
    }

    fn follow(&mut self, r: &Resp) -> Resp {
        let loc = r.location().split('#').next().unwrap_or("").to_string();
        self.get(&loc)
    }

    /// start → authorize at the fake → callback; returns the callback's answer.
    fn sign_in(&mut self, start: &str) -> Resp {
        let r = self.get(start);
        assert_eq!(r.status, 302, "{}", r.body);
        let r = self.follow(&r);
        assert_eq!(r.status, 302, "fake authorize: {}", r.body);
        self.follow(&r)
    }
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// One request line of the log: method, path, status, milliseconds.
fn request_line(line: &str) -> Option<(String, String, u16, f64)> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let at = words
        .iter()
        .position(|w| ["GET", "HEAD", "POST", "OTHER"].contains(w))?;
    let [method, path, status, ms] = words.get(at..at + 4)? else {
        return None;
    };
    if !path.starts_with('/') || words.len() != at + 4 {
        return None;
    }
    let status: u16 = status.parse().ok()?;
    let ms: f64 = ms.strip_suffix("ms")?.parse().ok()?;
    Some((method.to_string(), path.to_string(), status, ms))
}

#[test]
fn log_has_one_line_per_request_no_secrets_and_sigterm_stops_cleanly() {
    let fake = FakeWeChat::start(APP_ID, APP_SECRET);
    let dir = temp_dir("log");
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let cfg = dir.join("wxgrades.toml");
    std::fs::write(
        &cfg,
        format!(
            "listen = \"127.0.0.1:{port}\"\npublic_url = \"{url}\"\ndata = \"{}\"\nworkers = 4\n[wechat]\napp_id = \"{APP_ID}\"\napp_secret = \"{APP_SECRET}\"\ntoken = \"testtoken\"\napi_base = \"{f}\"\nopen_base = \"{f}\"\ntimeout_secs = 1\n[backup]\ndir = \"{}\"\n",
            dir.join("data.redb").display(),
            dir.join("backups").display(),
            f = fake.url,
        ),
    )
    .expect("config");
    let log_path = dir.join("stderr.log");
    let log_file = std::fs::File::create(&log_path).expect("log file");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wxgrades"));
    cmd.arg("serve")
        .arg("--config")
        .arg(&cfg)
        .current_dir(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log_file);
    for (k, _) in std::env::vars() {
        if k.starts_with("WXGRADES_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("WXGRADES_LOG", "debug");
    let mut server = Server(cmd.spawn().expect("run wxgrades"));

    let mut v = Visitor {
        c: Client::new(&url),
        server: url.clone(),
        requests: Vec::new(),
        secrets: vec![APP_SECRET.to_string()],
    };
    // Up within a few seconds.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Ok(Some(status)) = server.0.try_wait() {
            panic!(
                "wxgrades exited at start ({status}):\n{}",
                std::fs::read_to_string(&log_path).unwrap_or_default()
            );
        }
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "wxgrades did not start listening"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(v.get("/healthz").status, 200);

    // A full sign-in with the nickname scope, the page, a repeated callback, and logout.
    fake.set_next_login(Login::user("oLogUser"));
    let r = v.sign_in("/wx/oauth/start?next=/&scope=snsapi_userinfo");
    assert_eq!(r.status, 302, "{}", r.body);
    let callback = fake
        .log()
        .iter()
        .filter(|u| u.starts_with("/sns/oauth2/access_token"))
        .count();
    assert_eq!(callback, 1);
    let home = v.get("/");
    assert_eq!(home.status, 302);
    let me = v.get("/me");
    assert_eq!(me.status, 200);
    assert!(me.body.contains("测试同学"), "{}", me.body);
    v.secrets.push("webtoken-oLogUser".into());
    v.secrets.push("refresh-secret".into());
    assert_eq!(v.get("/logout").status, 200);

    // Failures: a used-up code, WeChat busy, a forged state, a refusal, a slow WeChat.
    let mut bad = Login::user("oLogUser");
    bad.errcode = Some(40029);
    fake.set_next_login(bad);
    assert_eq!(v.sign_in("/wx/oauth/start?next=/").status, 400);
    let mut busy = Login::user("oLogUser");
    busy.errcode = Some(-1);
    fake.set_next_login(busy);
    assert_eq!(v.sign_in("/wx/oauth/start?next=/").status, 502);
    let mut slow = Login::user("oLogUser");
    slow.delay = Duration::from_secs(3);
    fake.set_next_login(slow);
    assert_eq!(v.sign_in("/wx/oauth/start?next=/").status, 504);
    assert_eq!(
        v.get("/wx/oauth/callback?code=forgedcode77&state=0123456789abcdef0123456789abcdef")
            .status,
        400
    );
    v.secrets.push("forgedcode77".into());
    fake.state.lock().unwrap().next_login = None;
    assert_eq!(v.sign_in("/wx/oauth/start?next=/").status, 403);
    // And sign in again, to end with a live session.
    fake.set_next_login(Login::user("oLogUser"));
    assert_eq!(v.sign_in("/wx/oauth/start?next=/").status, 302);
    assert_eq!(v.get("/bind").status, 200);

    // SIGTERM: the server finishes and exits 0 by itself.
    let pid = server.0.id().to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = server.0.try_wait().expect("wait") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "wxgrades still runs 10 s after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let log = std::fs::read_to_string(&log_path).expect("log");
    assert_eq!(status.code(), Some(0), "exit status {status}; log:\n{log}");
    assert!(log.contains("stopped; data file closed"), "{log}");

    // One line per request, with method, path, status and milliseconds.
    let mut logged: Vec<(String, String, u16)> = Vec::new();
    for line in log.lines() {
        if let Some((method, path, status, ms)) = request_line(line) {
            assert!(ms >= 0.0, "{line}");
            assert!(line.contains("[INFO]"), "{line}");
            logged.push((method, path, status));
        }
    }
    let mut expected = v.requests.clone();
    expected.sort();
    logged.sort();
    assert_eq!(logged, expected, "log:\n{log}");
    assert_eq!(expected.len(), 18, "{expected:?}");
    assert!(
        log.contains("errcode -1"),
        "the WeChat failure is not logged:\n{log}"
    );

    // No secret of the flow, anywhere.
    let mut secrets = v.secrets.clone();
    secrets.sort();
    secrets.dedup();
    assert!(secrets.len() >= 15, "{secrets:?}");
    for s in &secrets {
        assert!(s.len() >= 5, "too short to search for: {s:?}");
        assert!(!log.contains(s.as_str()), "the log contains {s:?}:\n{log}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
