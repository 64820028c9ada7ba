//! The admin pages in headless Chromium at desktop size, on the demo data: sign in through the
//! form (the SameSite=Strict cookie and the CSRF tokens as a real browser handles them), look
//! through the dashboard, a student, the courses and a course, unbind, and sign out.

mod support;

use std::time::Duration;
use support::browser::Browser;
use support::{screenshot_path, TestServer};
use wxgrades::service::admin::accounts;

#[test]
fn admin_signs_in_looks_around_unbinds_and_signs_out_in_a_browser() {
    let Some(b) = Browser::start_or_skip() else {
        return;
    };
    let s = TestServer::demo();
    let pw = "browser-pass-1";
    accounts::add(&s.app.store, "jw", pw, s.app.clock.now()).expect("admin");
    let sid = wxgrades::demo::HINT_STUDENT_ID;
    s.app.store.bind("oDemoBrowser", sid, 1).expect("bind");

    b.goto(&format!("{}/admin/students/{sid}", s.url));
    b.wait_for_url("/admin/login", Duration::from_secs(10));
    b.screenshot(screenshot_path("admin-login.png"));
    b.find("input[name=username]").send_keys("jw");
    b.find("input[name=password]").send_keys("wrong-password");
    b.find("form.form button[type=submit]").click();
    b.wait_for_text("用户名或密码错误", Duration::from_secs(10));
    b.find("input[name=password]").send_keys(pw);
    b.find("form.form button[type=submit]").click();
    // Back to the page asked for first.
    b.wait_for_url(
        &format!("/admin/students/{sid}")[..],
        Duration::from_secs(10),
    );
    let cookie = b.cookie("wxg_admin").expect("admin cookie");
    assert_eq!(cookie.path.as_deref(), Some("/admin"));
    assert_eq!(cookie.same_site.as_deref(), Some("Strict"));
    assert!(cookie.http_only);
    assert!(b.page_source().contains(wxgrades::demo::HINT_NAME));
    b.screenshot(screenshot_path("admin-student.png"));

    // Unbind through the confirmation.
    b.find("details.confirm summary").click();
    b.find("details.confirm button[type=submit]").click();
    b.wait_for_text("未绑定微信", Duration::from_secs(10));
    assert_eq!(s.app.store.bound_openid(sid).expect("read"), None);

    b.goto(&format!("{}/admin", s.url));
    let page = b.page_source();
    assert!(
        page.contains("概览") && page.contains("解除绑定"),
        "audit shows the unbind"
    );
    b.screenshot(screenshot_path("admin-dashboard.png"));

    b.goto(&format!("{}/admin/students?q=林", s.url));
    b.screenshot(screenshot_path("admin-students.png"));

    b.goto(&format!("{}/admin/courses", s.url));
    b.find("table.sortable th a").click();
    b.screenshot(screenshot_path("admin-courses.png"));
    let first = b
        .find("table.sortable tbody a")
        .attr("href")
        .expect("course link");
    b.goto(&format!("{}{first}", s.url));
    assert!(b.page_source().contains("分数分布"));
    b.screenshot(screenshot_path("admin-course.png"));

    b.find("form[action='/admin/logout'] button").click();
    b.wait_for_url("/admin/login", Duration::from_secs(10));
    b.goto(&format!("{}/admin", s.url));
    b.wait_for_url("/admin/login", Duration::from_secs(10));
}
