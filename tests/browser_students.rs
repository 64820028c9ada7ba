//! Demo mode in headless Chromium on a phone-sized screen: sign in through the simulated
//! WeChat consent screen, bind with the suggested values, and see the grades page.

mod support;

use support::browser::Browser;
use support::{screenshot_path, TestServer};

#[test]
fn demo_sign_in_bind_and_grades_in_a_browser() {
    let Some(b) = Browser::start_mobile_or_skip() else {
        return;
    };
    let s = TestServer::demo();
    support::demo_sign_in_and_bind(&b, &s.url, true);
    let page = b.page_source();
    assert!(page.contains(wxgrades::demo::HINT_NAME));
    assert!(page.contains("2025-2026学年"), "newest term shown");
    b.screenshot(screenshot_path("grades.png"));
    // The term picker narrows the page to one term.
    b.goto(&format!("{}/grades?term=2025-2026-1", s.url));
    assert!(b.page_source().contains("2025-2026学年 第1学期"));
    b.screenshot(screenshot_path("grades-term.png"));
}
