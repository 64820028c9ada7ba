//! The deployment files, tested for real: Debian's nginx runs `deploy/nginx.conf` (ports and
//! paths substituted, nothing else) with a throw-away self-signed certificate in front of the
//! server, and a client checks over HTTPS what the operator relies on. `systemd-analyze verify`
//! checks `deploy/wxgrades.service` where systemd-analyze exists.
//!
//! nginx must be installed (`/usr/sbin/nginx`, or `WXGRADES_NGINX`); without it this test fails
//! with a message, unless `WXGRADES_SKIP_NGINX=1` says to skip it (and it says so).

mod support;

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::{Client, Login, TestServer};

const ROSTER: &str = "学号,姓名,身份证后六位\n2024001,张三,12345X\n";
const GRADES: &str = "学号,姓名,学期,课程代码,课程名称,学分,成绩\n\
2024001,张三,2024-2025-1,MA1001,高等数学,4,95\n";

fn repo_file(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// The nginx binary, or `None` when the environment asks to skip (said loudly).
fn nginx_binary() -> Option<PathBuf> {
    let bin = std::env::var_os("WXGRADES_NGINX")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/sbin/nginx"));
    if bin.exists() {
        return Some(bin);
    }
    if std::env::var("WXGRADES_SKIP_NGINX").as_deref() == Ok("1") {
        eprintln!(
            "SKIPPED: nginx not found at {} and WXGRADES_SKIP_NGINX=1",
            bin.display()
        );
        return None;
    }
    panic!(
        "nginx not found at {}: install Debian's nginx (apt-get install nginx; .ci/run does), \
         point WXGRADES_NGINX at it, or set WXGRADES_SKIP_NGINX=1 to skip this test",
        bin.display()
    );
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// Replace `from` (which must occur) by `to` in `text`.
fn substitute(text: &str, from: &str, to: &str) -> String {
    assert!(
        text.contains(from),
        "deploy/nginx.conf no longer contains {from:?}; update tests/nginx.rs with it"
    );
    text.replace(from, to)
}

/// nginx, killed when dropped.
struct Nginx {
    child: Child,
    dir: PathBuf,
    /// The plain-HTTP server (port 80 in the conf).
    http_port: u16,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Nginx {
    fn access_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("access.log")).unwrap_or_default()
    }
    /// The access log once it holds `needle`: nginx writes a line after the response has gone
    /// out, so the last request's line may lag its answer a little.
    fn access_log_with(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let log = self.access_log();
            if log.contains(needle) {
                return log;
            }
            assert!(
                Instant::now() < deadline,
                "{needle:?} not in the access log within 10 s:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default()
    }
}

/// Generate a self-signed certificate for 127.0.0.1 with the `openssl` CLI.
fn certificate(dir: &Path) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let out = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args(["-subj", "/CN=127.0.0.1"])
        .args(["-addext", "subjectAltName=IP:127.0.0.1"])
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .args(["-addext", "extendedKeyUsage=serverAuth"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("run openssl (needed to make the test certificate)");
    assert!(
        out.status.success(),
        "openssl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (cert, key)
}

/// Start nginx with deploy/nginx.conf in front of `upstream_port`; HTTPS on `https_port`.
fn start_nginx(bin: &Path, dir: &Path, https_port: u16, upstream_port: u16) -> Nginx {
    let (cert, key) = certificate(dir);
    let http_port = free_port();
    let site = std::fs::read_to_string(repo_file("deploy/nginx.conf")).expect("deploy/nginx.conf");
    let mut site = site;
    for (from, to) in [
        (
            "server 127.0.0.1:8080;",
            format!("server 127.0.0.1:{upstream_port};"),
        ),
        (
            "listen 443 ssl;",
            format!("listen 127.0.0.1:{https_port} ssl;"),
        ),
        ("listen [::]:443 ssl;", String::new()),
        ("listen 80;", format!("listen 127.0.0.1:{http_port};")),
        ("listen [::]:80;", String::new()),
        (
            "server_name jw.example.edu.cn;",
            "server_name 127.0.0.1;".into(),
        ),
        (
            "/etc/letsencrypt/live/jw.example.edu.cn/fullchain.pem",
            cert.display().to_string(),
        ),
        (
            "/etc/letsencrypt/live/jw.example.edu.cn/privkey.pem",
            key.display().to_string(),
        ),
        (
            "/var/log/nginx/wxgrades.access.log",
            dir.join("access.log").display().to_string(),
        ),
        (
            "/var/log/nginx/wxgrades.error.log",
            dir.join("error.log").display().to_string(),
        ),
        // (three times: the server's log and the two quiet locations)
        // The test server allows 1 MiB uploads (max_upload_mb = 1) instead of 20.
        (
            "client_max_body_size 21m;",
            "client_max_body_size 2m;".into(),
        ),
    ] {
        site = substitute(&site, from, &to);
    }
    std::fs::write(dir.join("site.conf"), site).expect("write site.conf");
    let d = dir.display();
    let main = format!(
        "worker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log warn;\n\
         events {{ worker_connections 256; }}\n\
         http {{\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n  \
         fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n  \
         access_log off;\n  include {d}/site.conf;\n}}\n"
    );
    let conf = dir.join("nginx.conf");
    std::fs::write(&conf, main).expect("write nginx.conf");
    let test = Command::new(bin)
        .arg("-t")
        .arg("-p")
        .arg(dir)
        .arg("-e")
        .arg(dir.join("error.log"))
        .arg("-c")
        .arg(&conf)
        .output()
        .expect("run nginx -t");
    assert!(
        test.status.success(),
        "nginx -t refuses the config: {}",
        String::from_utf8_lossy(&test.stderr)
    );
    let child = Command::new(bin)
        .arg("-p")
        .arg(dir)
        .arg("-e")
        .arg(dir.join("error.log"))
        .arg("-c")
        .arg(&conf)
        .args(["-g", "daemon off;"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start nginx");
    let nginx = Nginx {
        child,
        dir: dir.to_path_buf(),
        http_port,
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", https_port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "nginx did not listen on {https_port} within 10 s: {}",
            nginx.error_log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    nginx
}

/// A client that trusts only the test certificate.
fn https_client(base: &str, cert: &Path) -> Client {
    let pem = std::fs::read(cert).expect("read cert");
    let cert = ureq::tls::Certificate::from_pem(&pem).expect("parse cert");
    let tls = ureq::tls::TlsConfig::builder()
        .root_certs(ureq::tls::RootCerts::Specific(Arc::new(vec![cert])))
        .build();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .max_redirects(0)
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(20)))
        .tls_config(tls)
        .build()
        .into();
    Client::with_agent(base, agent)
}

#[test]
fn behind_real_nginx_over_https() {
    let Some(bin) = nginx_binary() else { return };
    let https_port = free_port();
    let public = format!("https://127.0.0.1:{https_port}");
    let s = TestServer::start_custom(
        Some(&public),
        "trust_proxy = true\nmax_upload_mb = 1",
        "",
        |_| {},
    );
    s.import("roster", ROSTER);
    s.import("grades", GRADES);
    let upstream_port: u16 = s
        .url
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("server port");
    let dir = support::temp_dir("nginx");
    let nginx = start_nginx(&bin, &dir, https_port, upstream_port);
    let mut c = https_client(&public, &dir.join("cert.pem"));

    // A student signs in through the fake WeChat, binds, and sees grades; cookies are Secure.
    s.fake.set_next_login(Login::user("o_student_behind_nginx"));
    let r = c.get("/wx/oauth/start?next=/grades");
    assert_eq!(r.status, 302, "{}\n{}", r.body, nginx.error_log());
    assert!(
        !r.set_cookies().is_empty() && r.set_cookies().iter().all(|k| k.contains("Secure")),
        "{:?}",
        r.set_cookies()
    );
    let r = c.follow(&r);
    assert_eq!(r.status, 302, "fake authorize");
    assert!(r
        .location()
        .starts_with(&format!("{public}/wx/oauth/callback?")));
    let r = c.follow(&r);
    assert_eq!(r.status, 302, "callback through nginx: {}", r.body);
    let session = r
        .set_cookies()
        .into_iter()
        .find(|k| k.starts_with("wxg_sid="))
        .expect("a session cookie")
        .to_string();
    assert!(
        session.contains("Secure") && session.contains("HttpOnly"),
        "{session}"
    );
    let r = c.get("/grades");
    assert_eq!(r.status, 302);
    assert_eq!(r.location(), "/bind");
    let page = c.get("/bind");
    assert_eq!(page.status, 200, "{}", page.body);
    let token = Client::hidden(&page.body, "csrf_token");
    let r = c.post_form_with_header(
        "/bind",
        &[
            ("student_id", "2024001"),
            ("name", "张三"),
            ("verify", "12345X"),
            ("csrf_token", &token),
        ],
        Some(("Origin", &public)),
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let r = c.get("/grades");
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("高等数学"), "{}", r.body);

    // The official account endpoint: its signed query string never reaches the access log.
    let r = c.post_raw(
        "/wx?signature=0123456789abcdef&timestamp=1700000000&nonce=424242&openid=o_secret_openid",
        "text/xml",
        b"<xml></xml>".to_vec(),
    );
    assert!(
        r.status == 403 || r.status == 400,
        "{} {}",
        r.status,
        r.body
    );
    let r = c.get("/healthz?probe=nginx-test");
    assert_eq!(r.status, 200);
    // Other paths keep their query (the request after /wx, so its line comes after).
    let log = nginx.access_log_with("GET /healthz?probe=nginx-test ");
    assert!(log.contains("POST /wx HTTP/1.1"), "{log}");
    for secret in ["signature=", "o_secret_openid", "nonce=", "code=", "state="] {
        assert!(!log.contains(secret), "{secret} in the access log:\n{log}");
    }

    // Over-size uploads: over max_upload_mb wxgrades' admin 413 page; over nginx's bound,
    // nginx's error_page 413 fetches that same page from wxgrades (/admin/too-large).
    let big = vec![b'x'; 1536 * 1024];
    let r = c.post_raw("/admin/import", "multipart/form-data; boundary=x", big);
    assert_eq!(r.status, 413, "{}", r.body);
    assert!(r.body.contains("内容过大"), "wxgrades' page: {}", r.body);
    let huge = vec![b'x'; 3 * 1024 * 1024];
    let r = c.post_raw("/admin/import", "multipart/form-data; boundary=x", huge);
    assert_eq!(r.status, 413, "{}", r.body);
    assert!(r.body.contains("文件太大"), "nginx's page: {}", r.body);
    assert!(
        r.body.contains("超过 1.0 MB") && r.body.contains("max_upload_mb"),
        "nginx's 413 is the admin page with the limit and advice: {}",
        r.body
    );
    let r = c.get("/admin/too-large");
    assert_eq!(
        r.status, 404,
        "the error page's location is internal to nginx"
    );

    // Plain HTTP: WeChat's domain-check files go to wxgrades (which answers them from
    // verify_dir), everything else is sent to https.
    let mut plain = Client::new(&format!("http://127.0.0.1:{}", nginx.http_port));
    let r = plain.get("/grades?term=2024-2025-1");
    assert_eq!(r.status, 301);
    assert_eq!(
        r.location(),
        "https://127.0.0.1/grades?term=2024-2025-1",
        "to the standard https port of the same host, query kept"
    );
    let verify_dir = &s.app.config.verify_dir;
    std::fs::create_dir_all(verify_dir).expect("verify_dir");
    std::fs::write(
        verify_dir.join("MP_verify_abcdef123456.txt"),
        "abcdef123456",
    )
    .expect("verify file");
    for r in [
        plain.get("/MP_verify_abcdef123456.txt"),
        c.get("/MP_verify_abcdef123456.txt"),
    ] {
        assert_eq!(
            r.status, 200,
            "verify files are served by wxgrades: {}",
            r.body
        );
        assert_eq!(r.body, "abcdef123456");
    }
    assert_eq!(plain.get("/MP_verify_missing.txt").status, 404);

    // limit_req: a burst on /wx/oauth/ and on /bind gets 429s; the server is not reached.
    for (path, burst) in [("/wx/oauth/start?next=/", 40), ("/bind", 25)] {
        let mut b = https_client(&public, &dir.join("cert.pem"));
        let statuses: Vec<u16> = (0..burst).map(|_| b.get(path).status).collect();
        let limited = statuses.iter().filter(|&&st| st == 429).count();
        assert!(statuses[0] != 429 && limited >= 5, "{path}: {statuses:?}");
    }
}

#[test]
fn systemd_unit_verifies() {
    let Some(analyze) = ["/usr/bin/systemd-analyze", "/bin/systemd-analyze"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
    else {
        eprintln!("NOT VERIFIED: systemd-analyze is not installed here; deploy/wxgrades.service unchecked");
        return;
    };
    let unit = std::fs::read_to_string(repo_file("deploy/wxgrades.service")).expect("unit");
    for needed in [
        "Restart=always",
        "LimitNOFILE=",
        "User=wxgrades",
        "ProtectSystem=strict",
        "ReadWritePaths=/var/lib/wxgrades",
    ] {
        assert!(unit.contains(needed), "{needed} missing from the unit");
    }
    // verify checks that ExecStart's binary exists: point it at the one just built.
    let unit = substitute(
        &unit,
        "/usr/local/bin/wxgrades",
        env!("CARGO_BIN_EXE_wxgrades"),
    );
    let dir = support::temp_dir("systemd");
    let path = dir.join("wxgrades.service");
    std::fs::write(&path, unit).expect("write unit");
    let out = Command::new(analyze)
        .arg("verify")
        .arg(&path)
        .output()
        .expect("run systemd-analyze");
    assert!(
        out.status.success(),
        "systemd-analyze verify: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
