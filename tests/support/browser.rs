//! Browser tests' WebDriver client: runs Debian's chromedriver + headless chromium and drives pages.
//!
//! Only `ureq` 3, `serde_json` and std. Every failure panics with a message that says what was
//! being done (this is a test helper); [`Browser::start_or_skip`] lets a machine without
//! chromium skip loudly when `WXGRADES_SKIP_BROWSER=1`. [`Browser::assert_accessible`] runs
//! axe-core (installed from npm by `.ci/run` into `target/axe/`) on the current page.
//!
//! Over 600 lines: one WebDriver client, kept whole so that every browser test shares it.
#![allow(dead_code)]

use std::fs;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

const DEFAULT_CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const DEFAULT_CHROMIUM: &str = "/usr/bin/chromium";
const SKIP_ENV: &str = "WXGRADES_SKIP_BROWSER";
/// Points at another `axe.min.js` than the one `.ci/run` installs.
const AXE_ENV: &str = "WXGRADES_AXE_JS";
/// `1` runs the browser tests without the axe-core checks (loudly); otherwise a missing
/// `axe.min.js` fails them.
const SKIP_AXE_ENV: &str = "WXGRADES_SKIP_AXE";
/// Where `.ci/run` installs axe-core, under the crate's directory.
const DEFAULT_AXE: &str = "target/axe/node_modules/axe-core/axe.min.js";
/// The WCAG 2.0, 2.1 and 2.2 level A and AA rules.
const AXE_TAGS: [&str; 5] = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"];
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";
/// How long `find` waits for an element to appear.
const FIND_TIMEOUT: Duration = Duration::from_secs(5);
const POLL_INTERVAL: Duration = Duration::from_millis(50);
const DRIVER_START_TIMEOUT: Duration = Duration::from_secs(15);
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);
/// Screenshots and page sources can be large; ureq's default body limit is 10 MB.
const MAX_RESPONSE_BYTES: u64 = 128 * 1024 * 1024;

/// A user agent like WeChat's in-app browser on an iPhone.
pub const WECHAT_MOBILE_UA: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) \
     AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.50(0x1800323a) \
     NetType/WIFI Language/zh_CN";

static NEXT_PROFILE: AtomicUsize = AtomicUsize::new(0);

/// Window shape of a browser.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Device {
    /// 1280×900 desktop window.
    Desktop,
    /// 390×844 phone viewport (mobile emulation) with WeChat's user agent.
    WeChatPhone,
    /// The narrowest phones still sold: 320×568, WeChat's user agent.
    SmallPhone,
}

/// An error answered by chromedriver (or the transport to it).
#[derive(Debug, Clone)]
pub struct WebDriverError {
    /// The W3C error code, e.g. `no such element`, or `transport` / `protocol`.
    pub error: String,
    pub message: String,
}

impl std::fmt::Display for WebDriverError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.error, self.message)
    }
}

/// A cookie as the browser holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cookie {
    pub name: String,
    pub value: String,
    pub path: Option<String>,
    pub domain: Option<String>,
    pub http_only: bool,
    pub secure: bool,
    pub same_site: Option<String>,
    /// Expiry in seconds since the epoch; `None` for a session cookie.
    pub expiry: Option<u64>,
}

/// What [`Browser::wait_for_url`] waits for: a `&str` (the URL contains it) or a predicate.
pub trait UrlCondition {
    fn matches(&self, url: &str) -> bool;
    fn describe(&self) -> String;
}

impl UrlCondition for &str {
    fn matches(&self, url: &str) -> bool {
        url.contains(*self)
    }
    fn describe(&self) -> String {
        format!("a URL containing {self:?}")
    }
}

impl UrlCondition for String {
    fn matches(&self, url: &str) -> bool {
        url.contains(self.as_str())
    }
    fn describe(&self) -> String {
        format!("a URL containing {self:?}")
    }
}

impl<F: Fn(&str) -> bool> UrlCondition for F {
    fn matches(&self, url: &str) -> bool {
        self(url)
    }
    fn describe(&self) -> String {
        "a URL matching the predicate".to_owned()
    }
}

/// The colour scheme a page is told the system prefers (`prefers-color-scheme`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColorScheme {
    Light,
    Dark,
}

impl ColorScheme {
    pub fn name(self) -> &'static str {
        match self {
            ColorScheme::Light => "light",
            ColorScheme::Dark => "dark",
        }
    }
}

/// One serious or critical axe-core finding on a page.
#[derive(Debug, Clone)]
pub struct AxeViolation {
    /// The rule's id, e.g. `color-contrast`.
    pub rule: String,
    /// `serious` or `critical`.
    pub impact: String,
    /// The rule's one-line help.
    pub help: String,
    /// One entry per failing node: its CSS selector and axe's summary of what is wrong.
    pub nodes: Vec<(String, String)>,
}

impl std::fmt::Display for AxeViolation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "  [{}] {}: {}", self.impact, self.rule, self.help)?;
        for (target, summary) in &self.nodes {
            let summary = summary.split_whitespace().collect::<Vec<_>>().join(" ");
            writeln!(f, "    - {target}: {summary}")?;
        }
        Ok(())
    }
}

/// A running chromedriver with one headless chromium session. Dropping it ends both.
pub struct Browser {
    agent: ureq::Agent,
    driver: Child,
    driver_url: String,
    session_url: String,
    profile_dir: PathBuf,
    log_path: PathBuf,
}

/// An element found on the current page.
pub struct Element<'a> {
    browser: &'a Browser,
    id: String,
    selector: String,
}

fn skip_requested() -> bool {
    std::env::var(SKIP_ENV).is_ok_and(|v| v.trim() == "1")
}

fn tool_path(env: &str, default: &str) -> PathBuf {
    match std::env::var_os(env) {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from(default),
    }
}

fn missing_message(what: &str, path: &Path, env: &str) -> String {
    format!(
        "{what} not found at {}: install Debian's chromium and chromium-driver (the repo's .ci/run \
         does), point {env} at it, or set {SKIP_ENV}=1 to skip browser tests",
        path.display()
    )
}

fn tail_of(path: &Path) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

impl Browser {
    /// A desktop-sized browser. Panics with a clear message when chromium or chromedriver is
    /// missing or does not start.
    pub fn start() -> Browser {
        Browser::launch(Device::Desktop)
    }

    /// A phone-sized browser (390×844) whose user agent is WeChat's in-app browser's.
    pub fn start_mobile() -> Browser {
        Browser::launch(Device::WeChatPhone)
    }

    /// `None` (after printing a loud `SKIPPED:` line) when `WXGRADES_SKIP_BROWSER=1`;
    /// otherwise [`Browser::start`].
    pub fn start_or_skip() -> Option<Browser> {
        Browser::launch_or_skip(Device::Desktop)
    }

    /// As [`Browser::start_or_skip`], phone-sized.
    pub fn start_mobile_or_skip() -> Option<Browser> {
        Browser::launch_or_skip(Device::WeChatPhone)
    }

    /// As [`Browser::start_mobile_or_skip`], on a 320×568 phone.
    pub fn start_small_phone_or_skip() -> Option<Browser> {
        Browser::launch_or_skip(Device::SmallPhone)
    }

    fn launch_or_skip(device: Device) -> Option<Browser> {
        if skip_requested() {
            let current = std::thread::current();
            let test = current.name().unwrap_or("browser test");
            // Straight to stderr, past the test harness's output capture, so it is always seen.
            let _ = writeln!(
                std::io::stderr(),
                "\n*** SKIPPED: {test}: {SKIP_ENV}=1 is set, so this chromium browser test did not run ***\n"
            );
            return None;
        }
        Some(Browser::launch(device))
    }

    /// Starts chromedriver on a free loopback port and opens a session of the given shape.
    pub fn launch(device: Device) -> Browser {
        let chromedriver = tool_path("CHROMEDRIVER", DEFAULT_CHROMEDRIVER);
        let chromium = tool_path("CHROMIUM", DEFAULT_CHROMIUM);
        if !chromium.is_file() {
            panic!("{}", missing_message("chromium", &chromium, "CHROMIUM"));
        }
        if !chromedriver.is_file() {
            panic!(
                "{}",
                missing_message("chromedriver", &chromedriver, "CHROMEDRIVER")
            );
        }

        let profile_dir = fresh_profile_dir();
        let log_path = profile_dir.with_extension("chromedriver.log");
        let log = fs::File::create(&log_path)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", log_path.display()));
        let log_err = log
            .try_clone()
            .unwrap_or_else(|e| panic!("cannot reuse {}: {e}", log_path.display()));

        let port = free_port();
        let mut command = Command::new(&chromedriver);
        command
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err);
        // Own process group, so Drop can end chromedriver and every chromium it started.
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let driver = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", chromedriver.display()));

        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .proxy(None)
            .timeout_global(Some(COMMAND_TIMEOUT))
            .build()
            .into();
        let driver_url = format!("http://127.0.0.1:{port}");
        let mut browser = Browser {
            agent,
            driver,
            driver_url,
            session_url: String::new(),
            profile_dir,
            log_path,
        };
        browser.wait_for_driver();
        browser.open_session(&chromium, device);
        if device == Device::Desktop {
            browser.set_viewport(1280, 900);
        }
        browser
    }

    fn wait_for_driver(&mut self) {
        let deadline = Instant::now() + DRIVER_START_TIMEOUT;
        let status_url = format!("{}/status", self.driver_url);
        loop {
            if let Ok(Some(status)) = self.driver.try_wait() {
                panic!(
                    "chromedriver exited at start ({status}); its log:\n{}",
                    tail_of(&self.log_path)
                );
            }
            let ready = self
                .agent
                .get(&status_url)
                .config()
                .timeout_global(Some(Duration::from_secs(2)))
                .build()
                .call()
                .ok()
                .and_then(|mut r| r.body_mut().read_to_string().ok())
                .and_then(|body| serde_json::from_str::<Value>(&body).ok())
                .is_some_and(|v| v["value"]["ready"] == Value::Bool(true));
            if ready {
                return;
            }
            if Instant::now() >= deadline {
                panic!(
                    "chromedriver did not answer {status_url} within {DRIVER_START_TIMEOUT:?}; \
                     its log:\n{}",
                    tail_of(&self.log_path)
                );
            }
            std::thread::sleep(POLL_INTERVAL);
        }
    }

    fn open_session(&mut self, chromium: &Path, device: Device) {
        let (width, height) = match device {
            Device::Desktop => (1280, 900),
            Device::WeChatPhone => (390, 844),
            Device::SmallPhone => (320, 568),
        };
        let mut args = vec![
            "--headless=new".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--no-default-browser-check".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--disable-features=Translate,MediaRouter,OptimizationHints".to_owned(),
            "--lang=zh-CN".to_owned(),
            format!("--user-data-dir={}", self.profile_dir.display()),
            format!("--window-size={width},{height}"),
        ];
        let mut chrome_options = json!({
            "binary": chromium.to_string_lossy(),
        });
        if device != Device::Desktop {
            args.push(format!("--user-agent={WECHAT_MOBILE_UA}"));
            chrome_options["mobileEmulation"] = json!({
                "deviceMetrics": {
                    "width": width,
                    "height": height,
                    "pixelRatio": 2.0,
                    "mobile": true,
                    "touch": true,
                },
                "userAgent": WECHAT_MOBILE_UA,
            });
        }
        chrome_options["args"] = json!(args);
        let capabilities = json!({
            "capabilities": {
                "alwaysMatch": {
                    "browserName": "chrome",
                    "pageLoadStrategy": "normal",
                    "timeouts": { "implicit": 0, "pageLoad": 30_000, "script": 30_000 },
                    "goog:chromeOptions": chrome_options,
                }
            }
        });
        let url = format!("{}/session", self.driver_url);
        let value = request(&self.agent, "POST", &url, Some(&capabilities)).unwrap_or_else(|e| {
            panic!(
                "chromedriver could not start chromium ({e}); chromedriver log:\n{}",
                tail_of(&self.log_path)
            )
        });
        let Some(session_id) = value["sessionId"].as_str() else {
            panic!("chromedriver answered a new session without sessionId: {value}");
        };
        self.session_url = format!("{}/session/{session_id}", self.driver_url);
    }

    /// Sends one WebDriver command relative to the session; errors are returned.
    pub fn try_command(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, WebDriverError> {
        request(
            &self.agent,
            method,
            &format!("{}{path}", self.session_url),
            body,
        )
    }

    /// Sends one WebDriver command relative to the session; panics naming `what` on error.
    pub fn command(&self, what: &str, method: &str, path: &str, body: Option<&Value>) -> Value {
        self.try_command(method, path, body)
            .unwrap_or_else(|e| panic!("browser: {what} failed: {e}"))
    }

    /// Resizes the window so that the page's viewport is `width`×`height` CSS pixels
    /// (not for a mobile browser, whose viewport is emulated).
    pub fn set_viewport(&self, width: u32, height: u32) {
        let inner = self.execute("return [window.innerWidth, window.innerHeight];", vec![]);
        let rect = self.command("window rect", "GET", "/window/rect", None);
        let number = |v: &Value| v.as_i64().unwrap_or(0);
        let extra_w = number(&rect["width"]) - number(&inner[0]);
        let extra_h = number(&rect["height"]) - number(&inner[1]);
        self.command(
            "set window rect",
            "POST",
            "/window/rect",
            Some(&json!({
                "width": i64::from(width) + extra_w.max(0),
                "height": i64::from(height) + extra_h.max(0),
            })),
        );
    }

    /// Navigates to `url` and waits for the page to load.
    pub fn goto(&self, url: &str) {
        self.command(
            &format!("goto {url}"),
            "POST",
            "/url",
            Some(&json!({ "url": url })),
        );
    }

    /// Goes one step back in history.
    pub fn back(&self) {
        self.command("back", "POST", "/back", Some(&json!({})));
    }

    /// Reloads the page.
    pub fn refresh(&self) {
        self.command("refresh", "POST", "/refresh", Some(&json!({})));
    }

    pub fn current_url(&self) -> String {
        let v = self.command("current_url", "GET", "/url", None);
        v.as_str().unwrap_or_default().to_owned()
    }

    pub fn title(&self) -> String {
        let v = self.command("title", "GET", "/title", None);
        v.as_str().unwrap_or_default().to_owned()
    }

    /// The current DOM serialized as HTML.
    pub fn page_source(&self) -> String {
        let v = self.command("page_source", "GET", "/source", None);
        v.as_str().unwrap_or_default().to_owned()
    }

    /// Runs synchronous JavaScript (`return ...;` to get a value back) with `args` as
    /// `arguments`.
    pub fn execute(&self, script: &str, args: Vec<Value>) -> Value {
        self.command(
            "execute script",
            "POST",
            "/execute/sync",
            Some(&json!({ "script": script, "args": args })),
        )
    }

    /// The first element matching the CSS selector, if it exists right now (no waiting).
    pub fn try_find(&self, css: &str) -> Option<Element<'_>> {
        let body = json!({ "using": "css selector", "value": css });
        match self.try_command("POST", "/element", Some(&body)) {
            Ok(v) => match v[ELEMENT_KEY].as_str() {
                Some(id) => Some(Element {
                    browser: self,
                    id: id.to_owned(),
                    selector: css.to_owned(),
                }),
                None => panic!("browser: find {css:?}: no element reference in {v}"),
            },
            Err(e) if e.error == "no such element" => None,
            Err(e) => panic!("browser: find {css:?} failed: {e}"),
        }
    }

    /// The first element matching the CSS selector, waiting up to 5 s for it to appear; panics
    /// naming the selector and the current URL when it never does.
    pub fn find(&self, css: &str) -> Element<'_> {
        let deadline = Instant::now() + FIND_TIMEOUT;
        loop {
            if let Some(element) = self.try_find(css) {
                return element;
            }
            if Instant::now() >= deadline {
                panic!(
                    "browser: no element matches {css:?} after {FIND_TIMEOUT:?} on {} (title {:?})",
                    self.current_url(),
                    self.title()
                );
            }
            std::thread::sleep(POLL_INTERVAL);
        }
    }

    /// Every element matching the CSS selector right now.
    pub fn find_all(&self, css: &str) -> Vec<Element<'_>> {
        let body = json!({ "using": "css selector", "value": css });
        let v = self.command(
            &format!("find_all {css:?}"),
            "POST",
            "/elements",
            Some(&body),
        );
        v.as_array()
            .map(|items| {
                items
                    .iter()
                    .filter_map(|item| item[ELEMENT_KEY].as_str())
                    .map(|id| Element {
                        browser: self,
                        id: id.to_owned(),
                        selector: css.to_owned(),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Wait until the page's source contains `text`; panics naming it after `timeout`.
    pub fn wait_for_text(&self, text: &str, timeout: Duration) {
        self.wait_for_page(&format!("{text:?}"), timeout, |page| page.contains(text));
    }

    /// Waits until the page source satisfies `ready` (read as a whole each time, so a page that
    /// refreshes itself is judged on one complete document); returns that source, or panics
    /// naming `what` and the URL after `timeout`.
    pub fn wait_for_page(
        &self,
        what: &str,
        timeout: Duration,
        ready: impl Fn(&str) -> bool,
    ) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let page = self.page_source();
            if ready(&page) {
                return page;
            }
            assert!(
                Instant::now() < deadline,
                "browser: the page never showed {what} (URL {})",
                self.current_url()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until the current URL satisfies `condition` (a `&str` it must contain, or a
    /// `Fn(&str) -> bool`); returns that URL, or panics with the last URL seen after `timeout`.
    pub fn wait_for_url(&self, condition: impl UrlCondition, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let url = self.current_url();
            if condition.matches(&url) {
                return url;
            }
            if Instant::now() >= deadline {
                panic!(
                    "browser: waited {timeout:?} for {} but the URL is still {url}",
                    condition.describe()
                );
            }
            std::thread::sleep(POLL_INTERVAL);
        }
    }

    /// Saves a PNG of the viewport to `path` (parent directories are created).
    pub fn screenshot(&self, path: impl AsRef<Path>) {
        let path = path.as_ref();
        let v = self.command("screenshot", "GET", "/screenshot", None);
        let Some(encoded) = v.as_str() else {
            panic!("browser: screenshot answer is not a string: {v}");
        };
        let png = base64_decode(encoded)
            .unwrap_or_else(|e| panic!("browser: screenshot is not valid base64: {e}"));
        if let Some(parent) = path.parent() {
            if !parent.as_os_str().is_empty() {
                fs::create_dir_all(parent)
                    .unwrap_or_else(|e| panic!("cannot create {}: {e}", parent.display()));
            }
        }
        fs::write(path, png).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    }

    /// The cookies visible to the current page.
    pub fn cookies(&self) -> Vec<Cookie> {
        let v = self.command("cookies", "GET", "/cookie", None);
        v.as_array()
            .map(|items| items.iter().map(cookie_from_json).collect())
            .unwrap_or_default()
    }

    /// The cookie called `name` visible to the current page.
    pub fn cookie(&self, name: &str) -> Option<Cookie> {
        self.cookies().into_iter().find(|c| c.name == name)
    }

    pub fn delete_all_cookies(&self) {
        self.command("delete_all_cookies", "DELETE", "/cookie", None);
    }
}

/// The axe-core script to inject: `None` (after a loud `SKIPPED:` line) when
/// `WXGRADES_SKIP_AXE=1`; a missing file is a failure that says how to install it.
fn axe_source() -> Option<String> {
    if std::env::var(SKIP_AXE_ENV).is_ok_and(|v| v.trim() == "1") {
        let _ = writeln!(
            std::io::stderr(),
            "\n*** SKIPPED: axe-core checks: {SKIP_AXE_ENV}=1 is set ***\n"
        );
        return None;
    }
    let path = match std::env::var_os(AXE_ENV) {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join(DEFAULT_AXE),
    };
    match fs::read_to_string(&path) {
        Ok(text) => Some(text),
        Err(e) => panic!(
            "axe-core not found at {} ({e}): install it with `npm install --no-save --prefix \
             target/axe axe-core@4` (the repo's .ci/run does), point {AXE_ENV} at an axe.min.js, \
             or set {SKIP_AXE_ENV}=1 to run the browser tests without accessibility checks",
            path.display()
        ),
    }
}

impl Browser {
    /// Sends a Chrome DevTools Protocol command through chromedriver.
    pub fn cdp(&self, cmd: &str, params: Value) -> Value {
        self.command(
            &format!("CDP {cmd}"),
            "POST",
            "/goog/cdp/execute",
            Some(&json!({ "cmd": cmd, "params": params })),
        )
    }

    /// Makes pages see `prefers-color-scheme: light|dark` (kept across navigations).
    pub fn set_color_scheme(&self, scheme: ColorScheme) {
        self.cdp(
            "Emulation.setEmulatedMedia",
            json!({ "features": [{ "name": "prefers-color-scheme", "value": scheme.name() }] }),
        );
    }

    /// A PNG of the whole page, not only the viewport, saved to `path`.
    pub fn screenshot_full_page(&self, path: impl AsRef<Path>) {
        let path = path.as_ref();
        let v = self.cdp(
            "Page.captureScreenshot",
            json!({ "format": "png", "captureBeyondViewport": true }),
        );
        let Some(encoded) = v["data"].as_str() else {
            panic!("browser: full-page screenshot answer has no data: {v:.200}");
        };
        let png = base64_decode(encoded)
            .unwrap_or_else(|e| panic!("browser: screenshot is not valid base64: {e}"));
        if let Some(parent) = path.parent() {
            let _ = fs::create_dir_all(parent);
        }
        fs::write(path, png).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    }

    /// Runs axe-core on the current page with the WCAG 2.0/2.1/2.2 A and AA rules and returns
    /// its serious and critical violations (empty when `WXGRADES_SKIP_AXE=1`).
    pub fn axe_violations(&self) -> Vec<AxeViolation> {
        let Some(source) = axe_source() else {
            return Vec::new();
        };
        // Injected through WebDriver, which the page's CSP (script-src 'none') does not govern.
        let loaded = self.execute(
            &format!("{source}\n;return typeof window.axe === 'object' && typeof window.axe.run === 'function';"),
            vec![],
        );
        assert_eq!(
            loaded,
            Value::Bool(true),
            "axe-core did not load on {}",
            self.current_url()
        );
        let script = r#"
            const done = arguments[arguments.length - 1];
            window.axe
              .run(document, {
                runOnly: { type: 'tag', values: arguments[0] },
                resultTypes: ['violations'],
              })
              .then((r) => done({ ok: r.violations.map((v) => ({
                  rule: v.id, impact: v.impact || '', help: v.help,
                  nodes: v.nodes.map((n) => [n.target.join(' '), n.failureSummary || '']),
                })) }))
              .catch((e) => done({ error: String(e && e.stack || e) }));
        "#;
        let answer = self.command(
            "axe-core run",
            "POST",
            "/execute/async",
            Some(&json!({ "script": script, "args": [AXE_TAGS] })),
        );
        if let Some(error) = answer.get("error") {
            panic!("axe-core failed on {}: {error}", self.current_url());
        }
        let Some(list) = answer["ok"].as_array() else {
            panic!("axe-core answered without results: {answer:.300}");
        };
        let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
        list.iter()
            .filter(|v| matches!(v["impact"].as_str(), Some("serious" | "critical")))
            .map(|v| AxeViolation {
                rule: text(&v["rule"]),
                impact: text(&v["impact"]),
                help: text(&v["help"]),
                nodes: v["nodes"]
                    .as_array()
                    .map(|nodes| nodes.iter().map(|n| (text(&n[0]), text(&n[1]))).collect())
                    .unwrap_or_default(),
            })
            .collect()
    }

    /// Every serious or critical axe-core violation (rule, target, summary) on the current
    /// page as one report that names `what` (the page and its conditions); `None` when there
    /// are none.
    pub fn accessibility_report(&self, what: &str) -> Option<String> {
        let found = self.axe_violations();
        if found.is_empty() {
            return None;
        }
        let nodes: usize = found.iter().map(|v| v.nodes.len()).sum();
        let list: String = found.iter().map(ToString::to_string).collect();
        Some(format!(
            "{what} ({}): {} serious/critical axe-core violations on {nodes} elements:\n{list}",
            self.current_url(),
            found.len()
        ))
    }

    /// Panics with [`Browser::accessibility_report`] when the current page has any serious or
    /// critical axe-core violation.
    pub fn assert_accessible(&self, what: &str) {
        if let Some(report) = self.accessibility_report(what) {
            panic!("{report}");
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session_url.is_empty() {
            // Ends chromium cleanly; errors do not matter, the group is killed next.
            let _ = request(&self.agent, "DELETE", &self.session_url, None);
        }
        // While chromedriver (the group leader) is unreaped its pid names our group only, so
        // the group kill also ends any chromium it left behind.
        if matches!(self.driver.try_wait(), Ok(None)) {
            let pgid = self.driver.id();
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{pgid}")])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        let _ = fs::remove_dir_all(&self.profile_dir);
        let _ = fs::remove_file(&self.log_path);
    }
}

impl Element<'_> {
    fn path(&self, rest: &str) -> String {
        format!("/element/{}{rest}", self.id)
    }

    fn what(&self, action: &str) -> String {
        format!("{action} on {:?}", self.selector)
    }

    pub fn click(&self) {
        self.browser.command(
            &self.what("click"),
            "POST",
            &self.path("/click"),
            Some(&json!({})),
        );
    }

    /// Types `text` into the element. For `<input type=file>`, pass an absolute path to upload.
    pub fn send_keys(&self, text: &str) {
        self.browser.command(
            &self.what("send_keys"),
            "POST",
            &self.path("/value"),
            Some(&json!({ "text": text })),
        );
    }

    /// Uploads a file through an `<input type=file>` (the path is made absolute).
    pub fn upload(&self, file: impl AsRef<Path>) {
        let file = file.as_ref();
        let absolute = fs::canonicalize(file)
            .unwrap_or_else(|e| panic!("browser: cannot upload {}: {e}", file.display()));
        self.send_keys(&absolute.to_string_lossy());
    }

    /// Empties an input or textarea.
    pub fn clear(&self) {
        self.browser.command(
            &self.what("clear"),
            "POST",
            &self.path("/clear"),
            Some(&json!({})),
        );
    }

    /// The rendered text of the element.
    pub fn text(&self) -> String {
        let v = self
            .browser
            .command(&self.what("text"), "GET", &self.path("/text"), None);
        v.as_str().unwrap_or_default().to_owned()
    }

    /// The HTML attribute `name`, `None` when absent.
    pub fn attr(&self, name: &str) -> Option<String> {
        let v = self.browser.command(
            &self.what(&format!("attr {name:?}")),
            "GET",
            &self.path(&format!("/attribute/{name}")),
            None,
        );
        v.as_str().map(str::to_owned)
    }

    /// The DOM property `name` (e.g. `value`, `checked`), as JSON.
    pub fn property(&self, name: &str) -> Value {
        self.browser.command(
            &self.what(&format!("property {name:?}")),
            "GET",
            &self.path(&format!("/property/{name}")),
            None,
        )
    }

    pub fn is_displayed(&self) -> bool {
        let v = self.browser.command(
            &self.what("is_displayed"),
            "GET",
            &self.path("/displayed"),
            None,
        );
        v.as_bool().unwrap_or(false)
    }
}

fn request(
    agent: &ureq::Agent,
    method: &str,
    url: &str,
    body: Option<&Value>,
) -> Result<Value, WebDriverError> {
    let transport = |e: ureq::Error| WebDriverError {
        error: "transport".to_owned(),
        message: format!("{method} {url}: {e}"),
    };
    let result = match method {
        "GET" => agent.get(url).call(),
        "DELETE" => agent.delete(url).call(),
        _ => {
            let text = body
                .map(Value::to_string)
                .unwrap_or_else(|| "{}".to_owned());
            agent
                .post(url)
                .header("Content-Type", "application/json; charset=utf-8")
                .send(text)
        }
    };
    let mut response = result.map_err(transport)?;
    let status = response.status().as_u16();
    let mut text = String::new();
    response
        .body_mut()
        .with_config()
        .limit(MAX_RESPONSE_BYTES)
        .reader()
        .read_to_string(&mut text)
        .map_err(|e| WebDriverError {
            error: "transport".to_owned(),
            message: format!("{method} {url}: reading the answer: {e}"),
        })?;
    let parsed: Value = serde_json::from_str(&text).map_err(|e| WebDriverError {
        error: "protocol".to_owned(),
        message: format!("{method} {url}: HTTP {status}, answer is not JSON ({e}): {text:.300}"),
    })?;
    let value = parsed.get("value").cloned().unwrap_or(Value::Null);
    if let Some(error) = value.get("error").and_then(Value::as_str) {
        return Err(WebDriverError {
            error: error.to_owned(),
            message: value
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .lines()
                .next()
                .unwrap_or_default()
                .to_owned(),
        });
    }
    if status >= 400 {
        return Err(WebDriverError {
            error: "protocol".to_owned(),
            message: format!("{method} {url}: HTTP {status}: {text:.300}"),
        });
    }
    Ok(value)
}

fn cookie_from_json(v: &Value) -> Cookie {
    let text = |key: &str| v.get(key).and_then(Value::as_str).map(str::to_owned);
    Cookie {
        name: text("name").unwrap_or_default(),
        value: text("value").unwrap_or_default(),
        path: text("path"),
        domain: text("domain"),
        http_only: v.get("httpOnly").and_then(Value::as_bool).unwrap_or(false),
        secure: v.get("secure").and_then(Value::as_bool).unwrap_or(false),
        same_site: text("sameSite"),
        expiry: v.get("expiry").and_then(Value::as_u64),
    }
}

/// A port that was free a moment ago on 127.0.0.1.
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0")
        .unwrap_or_else(|e| panic!("cannot bind a loopback port: {e}"));
    listener
        .local_addr()
        .unwrap_or_else(|e| panic!("cannot read the bound port: {e}"))
        .port()
}

fn fresh_profile_dir() -> PathBuf {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let n = NEXT_PROFILE.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!(
        "wxgrades-browser-{}-{n}-{nanos}",
        std::process::id()
    ));
    fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    dir
}

/// Standard base64 (with or without padding; line breaks ignored).
fn base64_decode(s: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(s.len() / 4 * 3);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for (i, c) in s.bytes().enumerate() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            b'\r' | b'\n' | b' ' => continue,
            _ => return Err(format!("byte {c:#04x} at {i}")),
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::base64_decode;

    #[test]
    fn base64_decodes_padded_and_unpadded() {
        assert_eq!(base64_decode("").unwrap(), b"");
        assert_eq!(base64_decode("Zg==").unwrap(), b"f");
        assert_eq!(base64_decode("Zm8=").unwrap(), b"fo");
        assert_eq!(base64_decode("Zm9v").unwrap(), b"foo");
        assert_eq!(base64_decode("Zm9vYg").unwrap(), b"foob");
        assert_eq!(base64_decode("iVBO\nRw0K").unwrap(), b"\x89PNG\r\n");
        assert_eq!(base64_decode("/+8=").unwrap(), [0xff, 0xef]);
        assert!(base64_decode("Zm9v!").is_err());
    }
}
