//! Demo mode in headless Chromium on a phone-sized screen: sign in through the simulated
//! WeChat consent screen, bind with the suggested values, and see the grades page.

mod support;

use std::time::Duration;
use support::browser::Browser;
use support::{screenshot_path, TestServer};

#[test]
fn demo_sign_in_bind_and_grades_in_a_browser() {
    let Some(b) = Browser::start_mobile_or_skip() else {
        return;
    };
    let s = TestServer::demo();
    b.goto(&format!("{}/", s.url));
    // The simulated consent screen.
    b.wait_for_url("/_sim/connect/oauth2/authorize", Duration::from_secs(10));
    b.screenshot(screenshot_path("consent.png"));
    b.find("button[name=decision]").click();
    b.wait_for_url("/bind", Duration::from_secs(10));
    b.screenshot(screenshot_path("bind.png"));
    let hint = b.page_source();
    assert!(
        hint.contains(wxgrades::demo::HINT_STUDENT_ID),
        "the bind page suggests the demo values"
    );
    b.find("input[name=student_id]")
        .send_keys(wxgrades::demo::HINT_STUDENT_ID);
    b.find("input[name=name]")
        .send_keys(wxgrades::demo::HINT_NAME);
    b.find("input[name=verify]")
        .send_keys(wxgrades::demo::HINT_VERIFY);
    b.find("form button[type=submit]").click();
    b.wait_for_url("/grades", Duration::from_secs(10));
    let page = b.page_source();
    assert!(page.contains(wxgrades::demo::HINT_NAME));
    assert!(page.contains("2025-2026学年"), "newest term shown");
    b.screenshot(screenshot_path("grades.png"));
    // The term picker narrows the page to one term.
    b.goto(&format!("{}/grades?term=2025-2026-1", s.url));
    assert!(b.page_source().contains("2025-2026学年 第1学期"));
    b.screenshot(screenshot_path("grades-term.png"));
}
