//! An import drops from the page cache only the students it changed, over real HTTP: student
//! A's cached grades page is still served from the cache (the `/metrics` hit counter moves,
//! the miss counter does not) after an admin import that changes only student B, and B's page
//! shows the new grade at once. The same for a roster import changing B's class.

mod support;

use support::admin_flow::{add_staff, multipart, sign_in, wait_while_busy};

use support::{Client, TestServer};

const ROSTER: &str = "学号,姓名,身份证后六位,班级\n\
2024001,张三,12345X,计科2401\n\
2024002,李四,654321,计科2401\n";

const GRADES: &str = "学号,姓名,学期,课程代码,课程名称,学分,成绩\n\
2024001,张三,2024-2025-1,MA1001,高等数学,4,88\n\
2024002,李四,2024-2025-1,MA1001,高等数学,4,72\n";

fn admin(s: &TestServer) -> Client {
    add_staff(s, "alice");
    sign_in(s, "alice")
}

/// Upload through the admin page, wait for the preview, commit, wait for the history.
fn import_over_http(c: &mut Client, kind: &str, csv: &str) {
    let r = c.get("/admin/import");
    let t = Client::hidden(&r.body, "csrf_token");
    let (ct, body) = multipart(
        &[("csrf_token", &t), ("kind", kind), ("replace_term", "")],
        Some(("f.csv", csv.as_bytes())),
    );
    let r = c.post_raw("/admin/import", &ct, body);
    assert_eq!(r.status, 303, "{}", r.body);
    let job = r.location().to_string();
    let preview = wait_while_busy(c, &job);
    assert!(preview.body.contains("/commit"), "{}", preview.body);
    let r = c.post_form(&format!("{job}/commit"), &[("csrf_token", &t)]);
    assert_eq!(r.status, 303, "{}", r.body);
    let h = wait_while_busy(c, "/admin/imports");
    assert!(h.body.contains("已提交"), "{}", h.body);
}

fn bound(s: &TestServer, openid: &str, sid: &str, name: &str, verify: &str) -> Client {
    let mut c = s.signed_in(openid);
    let page = c.get("/bind");
    let token = Client::hidden(&page.body, "csrf_token");
    let r = c.post_form(
        "/bind",
        &[
            ("student_id", sid),
            ("name", name),
            ("verify", verify),
            ("csrf_token", &token),
        ],
    );
    assert_eq!((r.status, r.location()), (303, "/grades"), "{}", r.body);
    c
}

/// (hits, misses) of the page cache, from `/metrics`.
fn lookups(c: &mut Client) -> (u64, u64) {
    let m = c.get("/metrics");
    assert_eq!(m.status, 200, "{}", m.body);
    let count = |result: &str| -> u64 {
        let prefix = format!("wxgrades_page_cache_lookups_total{{result=\"{result}\"}} ");
        m.body
            .lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {result} count in {}", m.body))
    };
    (count("hit"), count("miss"))
}

#[test]
fn an_import_drops_only_the_pages_of_the_students_it_changed() {
    let s = TestServer::start("", "");
    s.import("roster", ROSTER);
    s.import("grades", GRADES);
    let mut a = bound(&s, "openid-a", "2024001", "张三", "12345x");
    let mut b = bound(&s, "openid-b", "2024002", "李四", "654321");
    let mut adm = admin(&s);
    let first = a.get("/grades");
    assert_eq!(first.status, 200);
    assert!(b.get("/grades").body.contains("72"));
    let (h0, m0) = lookups(&mut adm);
    assert_eq!(a.get("/grades").body, first.body);
    let (h1, m1) = lookups(&mut adm);
    assert_eq!((h1, m1), (h0 + 1, m0), "A's reload is a cache hit");

    // A grade import that changes only B.
    import_over_http(
        &mut adm,
        "grades",
        "学号,姓名,学期,课程代码,课程名称,学分,成绩\n2024002,李四,2024-2025-1,MA1001,高等数学,4,91\n",
    );
    let (h2, m2) = lookups(&mut adm);
    assert_eq!(a.get("/grades").body, first.body);
    let (h3, m3) = lookups(&mut adm);
    assert_eq!((h3, m3), (h2 + 1, m2), "A's page survived B's import");
    let page = b.get("/grades");
    assert!(
        page.body.contains("91") && !page.body.contains(">72<"),
        "{}",
        page.body
    );
    let (h4, m4) = lookups(&mut adm);
    assert_eq!((h4, m4), (h3, m3 + 1), "B's page was rendered again");

    // A roster import that changes only B's class.
    let roster = ROSTER.replace(
        "2024002,李四,654321,计科2401",
        "2024002,李四,654321,软工2402",
    );
    import_over_http(&mut adm, "roster", &roster);
    let (h5, m5) = lookups(&mut adm);
    assert_eq!(a.get("/grades").body, first.body);
    assert!(b.get("/grades").body.contains("软工2402"));
    let (h6, m6) = lookups(&mut adm);
    assert_eq!((h6, m6), (h5 + 1, m5 + 1), "A hit, B rendered again");
}
