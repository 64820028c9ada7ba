//! Demo mode in headless Chromium: open `/`, agree on the simulated WeChat consent screen, and
//! land signed in. Needs Debian's chromium and chromium-driver (WXGRADES_SKIP_BROWSER=1 skips,
//! loudly).

mod support;

use std::net::TcpListener;
use std::path::PathBuf;
use std::time::Duration;

use support::browser::Browser;
use support::{temp_dir, FakeWeChat, TestServer, APP_ID, APP_SECRET};
use wxgrades::config::{self, Source};

/// A demo-mode server (WeChat simulated under /_sim) on 127.0.0.1 and a fresh data file.
fn demo_server() -> TestServer {
    let dir = temp_dir("demo");
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let mut cfg = config::load(Source::Demo, &[]).expect("demo config");
    assert!(cfg.demo);
    let url = format!("http://{addr}");
    cfg.listen = addr.to_string();
    cfg.public_url = url.clone();
    cfg.wechat.api_base = format!("{url}/_sim");
    cfg.wechat.open_base = format!("{url}/_sim");
    cfg.data = dir.join("demo.redb");
    cfg.backup.dir = dir.join("backups");
    // The fake is not used: demo mode talks to its own simulator.
    let fake = FakeWeChat::start(APP_ID, APP_SECRET);
    TestServer::start_with(cfg, listener, fake, dir)
}

fn screenshot_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("target")
        .join("screenshots")
        .join(name)
}

#[test]
fn demo_sign_in_through_the_simulated_consent_screen() {
    let Some(b) = Browser::start_mobile_or_skip() else {
        return;
    };
    let s = demo_server();
    b.goto(&format!("{}/", s.url));

    // Sent through /wx/oauth/start to the simulator's consent screen.
    let consent = b.wait_for_url("/_sim/connect/oauth2/authorize", Duration::from_secs(10));
    assert!(consent.contains("scope=snsapi_userinfo"), "{consent}");
    assert!(consent.contains("#wechat_redirect"), "{consent}");
    let title = b.find(".sheet-title").text();
    assert!(title.contains("昵称"), "{title}");
    b.screenshot(screenshot_path("demo_consent.png"));

    // Pick 张伟 (not the first, pre-selected user) and agree.
    let pick = "oDemo_ZhangWei_00002";
    b.find(&format!("label.pick:has(input[value=\"{pick}\"])"))
        .click();
    let radio = b.find(&format!("input[name=openid][value=\"{pick}\"]"));
    assert_eq!(radio.property("checked"), serde_json::json!(true));
    b.find("button[name=decision]").click();

    // Back on our own `/`, signed in, with the nickname.
    let home = b.wait_for_url(
        |u: &str| u.trim_end_matches('/') == s.url.as_str(),
        Duration::from_secs(10),
    );
    assert_eq!(home, format!("{}/", s.url));
    let name = b.find("h1").text();
    assert_eq!(name, "张伟", "{}", b.page_source());
    assert!(b.page_source().contains("昵称与头像"));
    // The openid, shortened once.
    assert_eq!(b.find(".cell-value code").text(), "oDemo_Zh…");
    let sid = b.cookie("wxg_sid").expect("session cookie");
    assert!(sid.http_only);
    assert_eq!(sid.same_site.as_deref(), Some("Lax"));
    let user = s
        .app
        .store
        .wx_user(pick)
        .expect("store")
        .expect("user stored");
    assert_eq!(user.nickname.as_deref(), Some("张伟"));
    b.screenshot(screenshot_path("demo_signed_in.png"));

    // A reload stays signed in (no second trip through the consent screen).
    b.refresh();
    assert_eq!(b.current_url(), format!("{}/", s.url));
    assert_eq!(b.find("h1").text(), "张伟");
}
