//! The student pages over real HTTP (issue 13): `/me` for a bound student, the sign-out page,
//! a refused-consent callback opened in another browser, the "已解除绑定" notice, the grades
//! page's term choice and empty states, and the 加权平均分 computed by hand.

mod support;

use support::{Client, Resp, TestServer};
use wxgrades::grades::AverageAttempt;

const ROSTER: &str = "学号,姓名,身份证后六位,班级,专业\n\
2024001,张三,12345X,计科2401,计算机科学与技术\n";

// 2024-2025-1: 高等数学 4cr 95; 大学英语 3cr 58, 补考 65; 体育 1cr 优秀; 劳动教育 1cr 合格.
// 2024-2025-2: 程序设计 3cr 89.5; 大学英语 重修 82; 大学物理 2cr 缓考.
// 加权平均分, best attempt: 高数 95×4 + 英语 82×3 + 体育 95×1 (优秀) + 程序 89.5×3 = 989.5 over
//   11 credits (劳动 合格 and 物理 缓考 do not enter) = 89.9545… → 89.95.
// First attempt: 英语 58 instead of 82: 917.5 / 11 = 83.409… → 83.41.
const GRADES: &str = "学号,姓名,学期,课程代码,课程名称,学分,成绩,考试性质\n\
2024001,张三,2024-2025-1,MA1001,高等数学,4,95,正常考试\n\
2024001,张三,2024-2025-1,EN1001,大学英语,3,58,正常考试\n\
2024001,张三,2024-2025-1,EN1001,大学英语,3,65,补考\n\
2024001,张三,2024-2025-1,PE1001,体育,1,优秀,正常考试\n\
2024001,张三,2024-2025-1,LB1001,劳动教育,1,合格,正常考试\n\
2024001,张三,2024-2025-2,CS1001,程序设计,3,89.5,正常考试\n\
2024001,张三,2024-2025-2,EN1001,大学英语,3,82,重修\n\
2024001,张三,2024-2025-2,PH1001,大学物理,2,缓考,正常考试\n";

fn with_data(s: TestServer) -> TestServer {
    s.import("roster", ROSTER);
    s.import("grades", GRADES);
    s
}

fn server() -> TestServer {
    with_data(TestServer::start("", ""))
}

/// HTML text with minijinja's escapes of `/`, quotes and `&` turned back.
fn unescape(html: &str) -> String {
    html.replace("&#x2f;", "/")
        .replace("&#x27;", "'")
        .replace("&quot;", "\"")
        .replace("&amp;", "&")
}

fn bound(s: &TestServer, openid: &str) -> Client {
    let mut c = s.signed_in(openid);
    let page = c.get("/bind");
    assert_eq!(page.status, 200, "{}", page.body);
    let token = Client::hidden(&page.body, "csrf_token");
    let r = c.post_form(
        "/bind",
        &[
            ("student_id", "2024001"),
            ("name", "张三"),
            ("verify", "12345x"),
            ("csrf_token", &token),
        ],
    );
    assert_eq!((r.status, r.location()), (303, "/grades"), "{}", r.body);
    c
}

/// Student pages speak to the student as 你, never 您.
fn informal(r: &Resp) {
    assert!(!r.body.contains('您'), "{}", r.body);
}

#[test]
fn me_tells_a_bound_student_they_are_bound() {
    let s = server();
    let mut c = s.signed_in("oMe");
    let before = c.get("/me");
    assert_eq!(before.status, 200);
    assert!(before.body.contains("还没有绑定学号"), "{}", before.body);
    assert!(unescape(&before.body).contains("href=\"/bind\""));
    informal(&before);

    let mut c = bound(&s, "oMe");
    let me = c.get("/me");
    assert_eq!(me.status, 200);
    let html = unescape(&me.body);
    assert!(!html.contains("还没有绑定学号"), "{html}");
    assert!(html.contains("已绑定学号"), "{html}");
    assert!(html.contains("2024001") && html.contains("张三"), "{html}");
    assert!(
        html.contains("href=\"/grades\"") && html.contains("查成绩"),
        "{html}"
    );
    assert!(
        html.contains("href=\"/unbind\"") && html.contains("解除绑定"),
        "{html}"
    );
    assert!(!html.contains("href=\"/bind\""), "{html}");
    informal(&me);
}

#[test]
fn the_sign_out_page_reads_as_a_success() {
    let s = server();
    let mut c = s.signed_in("oOut");
    let r = c.get("/logout");
    assert_eq!(r.status, 200);
    assert!(r.body.contains("你已安全退出"), "{}", r.body);
    assert!(!r.body.contains("错误代码"), "{}", r.body);
    informal(&r);
}

#[test]
fn a_refused_consent_opened_in_another_browser_has_expired() {
    let s = server();
    let mut asked = s.client();
    // No login programmed: the fake's user refuses (the callback carries a state, no code).
    let r = asked.get("/wx/oauth/start?next=/grades");
    assert_eq!(r.status, 302);
    let r = asked.follow(&r);
    assert_eq!(r.status, 302, "{}", r.body);
    let callback = r.location().to_string();
    assert!(
        callback.contains("state=") && !callback.contains("code="),
        "{callback}"
    );

    let mut other = s.client();
    let r = other.get(&callback);
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("登录已失效"), "{}", r.body);
    assert!(!r.body.contains("拒绝"), "{}", r.body);
    assert!(!other.cookies.contains_key("wxg_sid"));

    // A made-up state, refused: expired too, not "you refused".
    let r = other.get("/wx/oauth/callback?state=abc123");
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("登录已失效"), "{}", r.body);

    // The browser that asked is told it refused.
    let r = asked.get(&callback);
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body.contains("你拒绝了微信授权"), "{}", r.body);
    informal(&r);
}

#[test]
fn unbinding_lands_on_the_bind_form_with_a_notice() {
    let s = server();
    let mut c = bound(&s, "oUnbind");
    let page = c.get("/unbind");
    assert_eq!(page.status, 200);
    informal(&page);
    let token = Client::hidden(&page.body, "csrf_token");
    let r = c.post_form("/unbind", &[("csrf_token", &token)]);
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.location(), "/bind");
    assert!(
        r.set_cookies()
            .iter()
            .any(|v| v.starts_with("wxg_flash=unbound")),
        "{:?}",
        r.headers
    );
    let form = c.follow(&r);
    assert_eq!(form.status, 200, "{}", form.body);
    assert!(form.body.contains("已解除绑定"), "{}", form.body);
    assert!(form.body.contains("name=\"student_id\""), "the bind form");
    informal(&form);
    assert!(s.app.store.binding("oUnbind").unwrap().is_none());
    // Said once: the form opened again has no notice.
    assert!(!c.cookies.contains_key("wxg_flash"));
    let plain = c.get("/bind");
    assert!(!plain.body.contains("已解除绑定"), "{}", plain.body);
}

#[test]
fn grades_open_on_the_newest_term_alone_with_all_one_tap_away() {
    let s = server();
    let mut c = bound(&s, "oTerms");
    let g = c.get("/grades");
    assert_eq!(g.status, 200);
    let html = unescape(&g.body);
    assert!(html.contains("2024-2025学年 第2学期"), "{html}");
    assert!(
        html.contains("程序设计") && html.contains("大学物理"),
        "{html}"
    );
    assert!(
        !html.contains("高等数学") && !html.contains("劳动教育"),
        "{html}"
    );
    assert!(html.contains("href=\"/grades?term=all\""), "{html}");
    assert!(html.contains("href=\"/grades?term=2024-2025-1\""), "{html}");
    assert!(
        html.contains("href=\"/grades?term=2024-2025-2\" aria-current=\"page\""),
        "the newest term is the one selected: {html}"
    );
    informal(&g);

    let all = c.get("/grades?term=all");
    assert_eq!(all.status, 200);
    let html = unescape(&all.body);
    for want in [
        "高等数学",
        "劳动教育",
        "程序设计",
        "大学物理",
        "3.06",
        "3.50",
    ] {
        assert!(html.contains(want), "全部 lacks {want}");
    }
    assert!(html.contains("href=\"/grades?term=all\" aria-current=\"page\""));

    // A notice's link opens the term it announced.
    let older = c.get("/grades?term=2024-2025-1");
    assert_eq!(older.status, 200);
    assert!(older.body.contains("高等数学") && !older.body.contains("程序设计"));
}

#[test]
fn empty_states_show_inside_the_grades_page() {
    let s = server();
    let mut c = bound(&s, "oEmpty");
    for q in ["garbage", "2019-2020-1", "2024-2025-3", "%E5%85%A8"] {
        let r = c.get(&format!("/grades?term={q}"));
        assert_eq!(r.status, 404, "{q}");
        let html = unescape(&r.body);
        assert!(html.contains("该学期暂无成绩"), "{q}: {html}");
        // The grades page (the student's profile and figures), not the error page.
        assert!(
            html.contains("张三") && html.contains("加权平均分"),
            "{q}: {html}"
        );
        assert!(!html.contains("错误代码"), "{q}: {html}");
        assert!(
            !html.contains("高等数学") && !html.contains("程序设计"),
            "{q}"
        );
        for link in [
            "/grades?term=2024-2025-1",
            "/grades?term=2024-2025-2",
            "/grades?term=all",
        ] {
            assert!(html.contains(&format!("href=\"{link}\"")), "{q}: no {link}");
        }
        informal(&r);
    }
}

#[test]
fn weighted_average_beside_the_gpa_over_each_courses_best_attempt() {
    let s = server();
    let mut c = bound(&s, "oAvg");
    let g = c.get("/grades");
    assert!(g.body.contains("加权平均分"), "{}", g.body);
    assert!(g.body.contains(">89.95<"), "{}", g.body);
    assert!(g.body.contains(">3.73<"), "overall GPA beside it");
    assert!(g
        .body
        .contains("优秀 95、良好 85、中等 75、及格 65、不及格 0"));
}

#[test]
fn weighted_average_can_count_the_first_attempt() {
    let s = with_data(TestServer::start_custom(None, "", "", |cfg| {
        cfg.average.attempt = AverageAttempt::First
    }));
    let mut c = bound(&s, "oFirst");
    let g = c.get("/grades?term=all");
    assert!(g.body.contains(">83.41<"), "{}", g.body);
    assert!(g.body.contains("第一次有成绩的考试"), "{}", g.body);
}
