//! Shared helpers for the integration tests: the real server on 127.0.0.1:0 pointed at a fake
//! WeChat, and a small HTTP client that keeps cookies and never follows redirects by itself.

#![allow(dead_code)]

pub mod admin_flow;
pub mod browser;
pub mod fake_wechat;
pub mod load;
pub mod student_data;

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Arc;

use wxgrades::app::{App, Background};
use wxgrades::config::{self, Source};
use wxgrades::server::Running;

pub use fake_wechat::{FakeWeChat, Login};

pub const APP_ID: &str = "wx1234567890abcdef";
pub const APP_SECRET: &str = "test-app-secret-9f8e7d";

/// A fresh empty directory under the system temp dir.
pub fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "wxg-it-{}-{}-{}",
        name,
        std::process::id(),
        wxgrades::secret::random_hex::<4>()
    ));
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

pub struct TestServer {
    pub running: Option<Running>,
    /// The background threads (no timed backups), stopped after the server.
    pub background: Option<Background>,
    pub app: Arc<App>,
    pub url: String,
    pub fake: FakeWeChat,
    pub dir: PathBuf,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(r) = self.running.take() {
            r.shutdown();
        }
        if let Some(b) = self.background.take() {
            b.stop_and_join();
        }
    }
}

impl TestServer {
    /// Start with the given extra TOML (top-level keys first, then sections).
    pub fn start(extra_top: &str, extra_wechat: &str) -> TestServer {
        Self::start_custom(None, extra_top, extra_wechat, |_| {})
    }

    /// Start with `public_url` (default: the server's own `http://127.0.0.1:PORT`), extra TOML,
    /// and a last change to the loaded `Config` (for fields that are not TOML keys, such as
    /// `idle_timeout_secs`). Clients always talk to the local address.
    pub fn start_custom(
        public_url: Option<&str>,
        extra_top: &str,
        extra_wechat: &str,
        adjust: impl FnOnce(&mut config::Config),
    ) -> TestServer {
        let fake = FakeWeChat::start(APP_ID, APP_SECRET);
        let dir = temp_dir("srv");
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let local = format!("http://127.0.0.1:{port}");
        let url = public_url.unwrap_or(&local);
        let toml = format!(
            "listen = \"127.0.0.1:{port}\"\npublic_url = \"{url}\"\ndata = \"{}\"\nworkers = 8\n{extra_top}\n[wechat]\napp_id = \"{APP_ID}\"\napp_secret = \"{APP_SECRET}\"\ntoken = \"testtoken\"\napi_base = \"{f}\"\nopen_base = \"{f}\"\nmp_base = \"{f}\"\ntimeout_secs = 1\n{extra_wechat}\n[backup]\ndir = \"{}\"\n",
            dir.join("data.redb").display(),
            dir.join("backups").display(),
            f = fake.url,
        );
        let cfg_path = dir.join("wxgrades.toml");
        std::fs::write(&cfg_path, toml).expect("write config");
        let mut cfg = config::load(Source::File(&cfg_path), &[]).expect("config");
        adjust(&mut cfg);
        Self::start_with(cfg, listener, fake, dir)
    }

    pub fn start_with(
        cfg: config::Config,
        listener: TcpListener,
        fake: FakeWeChat,
        dir: PathBuf,
    ) -> TestServer {
        let app = Arc::new(App::new(cfg).expect("app"));
        let running = wxgrades::app::site::serve(app.clone(), listener).expect("server");
        let background = App::start_background(&app, false);
        // The address the server really listens on (public_url may name a proxy in front).
        let url = format!("http://{}", running.addr);
        TestServer {
            running: Some(running),
            background: Some(background),
            app,
            url,
            fake,
            dir,
        }
    }

    pub fn client(&self) -> Client {
        Client::new(&self.url)
    }

    /// A browser that went through web authorization as `openid`; returns its client.
    pub fn signed_in(&self, openid: &str) -> Client {
        let mut c = self.client();
        self.fake.set_next_login(Login::user(openid));
        let r = c.get("/wx/oauth/start?next=/");
        assert_eq!(r.status, 302);
        let r = c.follow(&r);
        assert_eq!(r.status, 302, "fake authorize");
        let r = c.follow(&r);
        assert_eq!(r.status, 302, "callback: {}", r.body);
        assert!(c.cookies.contains_key("wxg_sid"));
        c
    }
}

/// A response, with the body as text.
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// The body as text (lossy), for pages.
    pub body: String,
    /// The body as sent, for downloads.
    pub bytes: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn location(&self) -> &str {
        self.header("location")
            .unwrap_or_else(|| panic!("no Location header (status {})", self.status))
    }
    pub fn set_cookies(&self) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie"))
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// A browser-like client: a cookie jar, no automatic redirects.
pub struct Client {
    pub base: String,
    pub cookies: BTreeMap<String, String>,
    agent: ureq::Agent,
}

impl Client {
    pub fn new(base: &str) -> Client {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .max_redirects(0)
            .http_status_as_error(false)
            .timeout_global(Some(std::time::Duration::from_secs(20)))
            .build()
            .into();
        Client {
            base: base.to_string(),
            cookies: BTreeMap::new(),
            agent,
        }
    }

    /// A client with an agent of the caller's (e.g. one that trusts a test certificate).
    pub fn with_agent(base: &str, agent: ureq::Agent) -> Client {
        Client {
            base: base.to_string(),
            cookies: BTreeMap::new(),
            agent,
        }
    }

    fn url(&self, path: &str) -> String {
        if path.starts_with("http://") || path.starts_with("https://") {
            path.to_string()
        } else {
            format!("{}{}", self.base, path)
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn take(&mut self, resp: ureq::http::Response<ureq::Body>, keep_cookies: bool) -> Resp {
        let status = resp.status().as_u16();
        let headers: Vec<(String, String)> = resp
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let mut resp = resp;
        let bytes = resp
            .body_mut()
            .with_config()
            .limit(512 * 1024 * 1024)
            .read_to_vec()
            .unwrap_or_default();
        let r = Resp {
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
            bytes,
        };
        if keep_cookies {
            for c in r.set_cookies() {
                let first = c.split(';').next().unwrap_or("");
                if let Some((k, v)) = first.split_once('=') {
                    let removed = c.contains("Max-Age=0");
                    if removed || v.is_empty() {
                        self.cookies.remove(k.trim());
                    } else {
                        self.cookies.insert(k.trim().to_string(), v.to_string());
                    }
                }
            }
        }
        r
    }

    pub fn get(&mut self, path: &str) -> Resp {
        let url = self.url(path);
        let same_site = url.starts_with(&self.base);
        let mut req = self.agent.get(&url);
        if same_site && !self.cookies.is_empty() {
            req = req.header("Cookie", self.cookie_header());
        }
        let resp = req.call().unwrap_or_else(|e| panic!("GET {path}: {e}"));
        self.take(resp, same_site)
    }

    /// Follow one redirect.
    pub fn follow(&mut self, r: &Resp) -> Resp {
        let loc = r.location().to_string();
        let loc = loc.split('#').next().unwrap_or("").to_string();
        self.get(&loc)
    }

    pub fn post_form(&mut self, path: &str, fields: &[(&str, &str)]) -> Resp {
        self.post_form_with_header(path, fields, None)
    }

    /// A form POST with one extra header (e.g. a foreign `Origin`).
    pub fn post_form_with_header(
        &mut self,
        path: &str,
        fields: &[(&str, &str)],
        header: Option<(&str, &str)>,
    ) -> Resp {
        let body = fields
            .iter()
            .map(|(k, v)| {
                format!(
                    "{}={}",
                    wxgrades::http::form::percent_encode(k),
                    wxgrades::http::form::percent_encode(v)
                )
            })
            .collect::<Vec<_>>()
            .join("&");
        self.post(
            path,
            "application/x-www-form-urlencoded",
            body.into_bytes(),
            header,
        )
    }

    pub fn post_raw(&mut self, path: &str, content_type: &str, body: Vec<u8>) -> Resp {
        self.post(path, content_type, body, None)
    }

    fn post(
        &mut self,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
        header: Option<(&str, &str)>,
    ) -> Resp {
        let url = self.url(path);
        let mut req = self.agent.post(&url).header("Content-Type", content_type);
        if !self.cookies.is_empty() {
            req = req.header("Cookie", self.cookie_header());
        }
        if let Some((k, v)) = header {
            req = req.header(k, v);
        }
        let resp = req
            .send(body)
            .unwrap_or_else(|e| panic!("POST {path}: {e}"));
        self.take(resp, true)
    }

    /// The value of a hidden input `name` in an HTML page.
    pub fn hidden(html: &str, name: &str) -> String {
        let needle = format!("name=\"{name}\"");
        let i = html
            .find(&needle)
            .unwrap_or_else(|| panic!("no field {name} in page"));
        let tag_start = html[..i].rfind('<').unwrap_or(0);
        let tag_end = i + html[i..].find('>').unwrap_or(0);
        let tag = &html[tag_start..tag_end];
        let v = tag.find("value=\"").map(|j| &tag[j + 7..]).unwrap_or("");
        v[..v.find('"').unwrap_or(0)].to_string()
    }
}

impl TestServer {
    /// Import a CSV through the real import engine, as the CLI does.
    pub fn import(&self, kind: &str, csv: &str) {
        use wxgrades::service::import::plan::{commit, plan, ImportKind, Upload};
        let kind = ImportKind::parse(kind).expect("kind");
        let up = Upload {
            kind,
            file_name: "test.csv",
            bytes: csv.as_bytes(),
            replace_term: None,
        };
        let p = plan(&self.app.store, &self.app.verify_key, &up).expect("plan");
        assert!(p.errors.is_empty(), "import errors: {:?}", p.errors);
        commit(
            &self.app.store,
            &self.app.verify_key,
            &p,
            &up,
            "test",
            self.app.clock.now(),
            false,
            |_, _, _| Ok(0),
        )
        .expect("commit");
        self.app.data_changed();
    }
}

impl TestServer {
    /// Demo mode as `wxgrades demo` runs it (simulated WeChat, sample data), on a free port and
    /// a data file of its own.
    pub fn demo() -> TestServer {
        Self::demo_with_env(&[])
    }

    /// Demo mode with `WXGRADES_…` overrides (as if set in the environment).
    pub fn demo_with_env(env: &[(&str, &str)]) -> TestServer {
        let fake = FakeWeChat::start(APP_ID, APP_SECRET);
        let dir = temp_dir("demo");
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut cfg = config::load(Source::Demo, &env).expect("demo config");
        cfg.listen = format!("127.0.0.1:{port}");
        cfg.public_url = format!("http://127.0.0.1:{port}");
        cfg.wechat.api_base = format!("{}/_sim", cfg.public_url);
        cfg.wechat.open_base = cfg.wechat.api_base.clone();
        cfg.wechat.notices.mp_base = cfg.wechat.api_base.clone();
        cfg.data = dir.join("demo.redb");
        cfg.backup.dir = dir.join("backups");
        cfg.workers = 8;
        let s = Self::start_with(cfg, listener, fake, dir);
        wxgrades::demo::seed(&s.app).expect("demo seed");
        s
    }
}

/// Where browser tests put their screenshots.
pub fn screenshot_path(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("target")
        .join("screenshots");
    let _ = std::fs::create_dir_all(&dir);
    dir.join(name)
}

/// In demo mode, in a browser: open `/`, agree on the simulated consent screen (first demo
/// user), bind as the demo student the bind page suggests, and land on `/grades`. With
/// `screenshots`, the consent and bind pages are saved as `consent.png` and `bind.png`.
pub fn demo_sign_in_and_bind(b: &browser::Browser, url: &str, screenshots: bool) {
    let t = std::time::Duration::from_secs(15);
    b.goto(&format!("{url}/"));
    b.wait_for_url("/_sim/connect/oauth2/authorize", t);
    if screenshots {
        b.screenshot(screenshot_path("consent.png"));
    }
    b.find("button[name=decision]").click();
    b.wait_for_url("/bind", t);
    if screenshots {
        b.screenshot(screenshot_path("bind.png"));
    }
    assert!(
        b.page_source().contains(wxgrades::demo::HINT_STUDENT_ID),
        "the bind page suggests the demo values"
    );
    b.find("input[name=student_id]")
        .send_keys(wxgrades::demo::HINT_STUDENT_ID);
    b.find("input[name=name]")
        .send_keys(wxgrades::demo::HINT_NAME);
    b.find("input[name=verify]")
        .send_keys(wxgrades::demo::HINT_VERIFY);
    b.find("form button[type=submit]").click();
    b.wait_for_url("/grades", t);
}

/// Wait (polling every 20 ms) until `f` holds, at most `timeout`; fails naming `what`.
pub fn wait_until(what: &str, timeout: std::time::Duration, mut f: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !f() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// The value of the first `/metrics` line of `s` that starts with `line_start` (0 if none).
pub fn metric(s: &TestServer, line_start: &str) -> u64 {
    s.app
        .metrics
        .render()
        .lines()
        .find(|l| l.starts_with(line_start))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}
