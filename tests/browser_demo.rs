//! Demo mode in headless Chromium: open `/`, agree on the simulated WeChat consent screen, and
//! land signed in. Needs Debian's chromium and chromium-driver (WXGRADES_SKIP_BROWSER=1 skips,
//! loudly).

mod support;

use std::time::Duration;

use support::browser::Browser;
use support::{screenshot_path, TestServer};

#[test]
fn demo_sign_in_through_the_simulated_consent_screen() {
    let Some(b) = Browser::start_mobile_or_skip() else {
        return;
    };
    let s = TestServer::demo();
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

    // Signed in, and sent from `/` on to binding, with the nickname.
    b.wait_for_url("/bind", Duration::from_secs(10));
    let text = b.find("main").text();
    assert!(text.contains("将绑定到微信「张伟」"), "{text}");
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
    b.screenshot(screenshot_path("demo_signed_in_bind.png"));

    // The identity page: nickname, scope, the openid shortened once.
    b.goto(&format!("{}/me", s.url));
    assert_eq!(b.find("h1").text(), "张伟", "{}", b.page_source());
    assert!(b.page_source().contains("昵称与头像"));
    assert_eq!(b.find(".cell-value code").text(), "oDemo_Zh…");
    b.screenshot(screenshot_path("demo_signed_in_me.png"));

    // `/` again goes straight on: no second trip through the consent screen.
    b.goto(&format!("{}/", s.url));
    assert_eq!(b.current_url(), format!("{}/bind", s.url));
}
