//! 一次性订阅消息 in demo mode, in headless Chromium: the grades page's "有新成绩时通知我", the
//! simulated consent page (允许), the way back with its message, and the message on the phone.
//! Needs Debian's chromium and chromium-driver (WXGRADES_SKIP_BROWSER=1 skips, loudly).

mod support;

use std::time::{Duration, Instant};

use support::browser::Browser;
use support::{demo_sign_in_and_bind, screenshot_path, TestServer};
use wxgrades::store::notices::NewNotice;
use wxgrades::wechat::sim::DEMO_USERS;

#[test]
fn a_student_agrees_once_and_the_notice_arrives_on_the_phone() {
    let Some(b) = Browser::start_mobile_or_skip() else {
        return;
    };
    let s = TestServer::demo_with_env(&[("WXGRADES_WECHAT_NOTICES", "once")]);
    let t = Duration::from_secs(15);
    demo_sign_in_and_bind(&b, &s.url, false);
    let link = b.find("a.notify-link");
    assert_eq!(link.text(), "有新成绩时通知我");
    b.assert_accessible("grades page with the 一次性订阅 link");
    link.click();

    // The simulated WeChat consent page knows the user picked at sign-in.
    b.wait_for_url("/_sim/mp/subscribemsg", t);
    let title = b.find(".sheet-title").text();
    assert!(title.contains("发送一次"), "{title}");
    assert!(b.page_source().contains(DEMO_USERS[0].nickname));
    b.assert_accessible("simulated 一次性订阅 consent page");
    b.screenshot(screenshot_path("notices_once_consent.png"));
    b.find("button[value=allow]").click();

    // Back on the grades page with the message, and the link replaced by the standing line.
    b.wait_for_url("/grades", t);
    b.wait_for_text("已开启", t);
    assert!(b.try_find("a.notify-link").is_none());
    assert!(b.page_source().contains("有新成绩时会通知你（一次）"));
    b.assert_accessible("grades page after the consent");
    b.screenshot(screenshot_path("notices_once_grades.png"));

    let user = DEMO_USERS[0].openid;
    s.app
        .store
        .enqueue_notices(&[NewNotice {
            openid: user.into(),
            student_id: wxgrades::demo::HINT_STUDENT_ID.into(),
            name: wxgrades::demo::HINT_NAME.into(),
            terms: vec!["2025-2026-1".into()],
            courses: vec!["高等数学".into()],
            import_id: 1,
        }])
        .expect("enqueue");
    s.app.notice_wake.notify();
    let start = Instant::now();
    while s.app.store.notice_counts().expect("counts").sent < 1 {
        assert!(start.elapsed() < t, "the notice was not sent");
        std::thread::sleep(Duration::from_millis(20));
    }
    b.goto(&format!("{}/_sim/phone?user={user}", s.url));
    let card = b.find("article.tmsg").text();
    assert!(
        card.contains("一次性订阅消息") && card.contains("高等数学"),
        "{card}"
    );
    b.screenshot(screenshot_path("notices_once_phone.png"));

    // The consent is used up: the grades page offers the link again.
    b.goto(&format!("{}/grades", s.url));
    assert_eq!(b.find("a.notify-link").text(), "有新成绩时通知我");
}
