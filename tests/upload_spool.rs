//! Large uploads through the admin page are received to disk, not memory, and imported whole:
//! sent with a length and sent chunked, over a real socket; and a client cannot point the
//! server at a received body of its own choosing.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use support::admin_flow::{add_staff, multipart, sign_in, wait_while_busy};
use support::{Client, TestServer};

const ROSTER: &str = "学号,姓名,身份证后六位\n2024001,张三,12345X\n2024002,李四,654321\n";
/// Courses per student in the large file: 2 × 4,000 rows, about 400 KB (the server keeps
/// bodies over 256 KiB on disk).
const COURSES: usize = 4_000;

fn server() -> (TestServer, Client) {
    let s = TestServer::start("max_upload_mb = 2", "");
    add_staff(&s, "alice");
    s.import("roster", ROSTER);
    let c = sign_in(&s, "alice");
    (s, c)
}

fn large_grades(term: &str) -> Vec<u8> {
    let mut csv = String::from("学号,姓名,学期,课程代码,课程名称,学分,成绩\n");
    for sid in ["2024001", "2024002"] {
        for i in 0..COURSES {
            csv.push_str(&format!(
                "{sid},,{term},C{i:05},第{i}门课程（大文件上传测试）,2,{}\n",
                60 + i % 40
            ));
        }
    }
    assert!(
        csv.len() > 300 * 1024,
        "the file must be over the in-memory bound"
    );
    csv.into_bytes()
}

fn token(c: &mut Client) -> String {
    let r = c.get("/admin/import");
    assert_eq!(r.status, 200, "{}", r.body);
    Client::hidden(&r.body, "csrf_token")
}

fn commit(c: &mut Client, job: &str) {
    let t = token(c);
    let r = c.post_form(&format!("{job}/commit"), &[("csrf_token", &t)]);
    assert_eq!(r.status, 303, "{}", r.body);
    let h = wait_while_busy(c, "/admin/imports");
    assert!(h.body.contains("已提交"), "{}", h.body);
}

fn grades_in(s: &TestServer, sid: &str, term: &str) -> usize {
    s.app
        .store
        .grades_of(sid)
        .unwrap()
        .iter()
        .filter(|g| g.term.to_string() == term)
        .count()
}

/// POST `/admin/import` over a raw socket with the client's cookies and `extra` header lines,
/// the body sent with a length or chunked (7 KiB chunks); the whole answer.
fn post_raw_socket(s: &TestServer, c: &Client, extra: &str, body: &[u8], chunked: bool) -> String {
    let mut sock = TcpStream::connect(s.url.trim_start_matches("http://")).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let cookies: Vec<String> = c.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let framing = if chunked {
        "Transfer-Encoding: chunked".to_string()
    } else {
        format!("Content-Length: {}", body.len())
    };
    let head = format!(
        "POST /admin/import HTTP/1.1\r\nHost: test\r\nCookie: {}\r\n{extra}{framing}\r\nConnection: close\r\n\r\n",
        cookies.join("; ")
    );
    sock.write_all(head.as_bytes()).unwrap();
    if chunked {
        for chunk in body.chunks(7 * 1024) {
            sock.write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
                .unwrap();
            sock.write_all(chunk).unwrap();
            sock.write_all(b"\r\n").unwrap();
        }
        sock.write_all(b"0\r\n\r\n").unwrap();
    } else {
        sock.write_all(body).unwrap();
    }
    let mut answer = String::new();
    let _ = sock.read_to_string(&mut answer);
    answer
}

/// The job page an upload's 303 answer points to.
fn job_of(answer: &str) -> String {
    assert!(answer.starts_with("HTTP/1.1 303"), "{answer}");
    answer
        .lines()
        .find_map(|l| l.strip_prefix("Location: "))
        .expect("a Location")
        .trim()
        .to_string()
}

#[test]
fn a_large_upload_with_a_length_is_received_to_disk_and_imported_whole() {
    let (s, mut c) = server();
    let t = token(&mut c);
    let (ct, body) = multipart(
        &[("csrf_token", &t), ("kind", "grades")],
        Some(("成绩.csv", &large_grades("2025-2026-1"))),
    );
    let r = c.post_raw("/admin/import", &ct, body);
    assert_eq!(r.status, 303, "{}", r.body);
    let job = r.location().to_string();
    let preview = wait_while_busy(&mut c, &job);
    assert!(preview.body.contains("8,000"), "{}", preview.body);
    assert_eq!(
        grades_in(&s, "2024001", "2025-2026-1"),
        0,
        "a preview writes nothing"
    );
    commit(&mut c, &job);
    assert_eq!(grades_in(&s, "2024001", "2025-2026-1"), COURSES);
    assert_eq!(grades_in(&s, "2024002", "2025-2026-1"), COURSES);
}

#[test]
fn a_large_upload_sent_chunked_is_received_to_disk_and_imported_whole() {
    let (s, mut c) = server();
    let t = token(&mut c);
    let (ct, body) = multipart(
        &[("csrf_token", &t), ("kind", "grades")],
        Some(("成绩.csv", &large_grades("2025-2026-2"))),
    );
    let extra = format!("Content-Type: {ct}\r\n");
    let job = job_of(&post_raw_socket(&s, &c, &extra, &body, true));
    let preview = wait_while_busy(&mut c, &job);
    assert!(preview.body.contains("8,000"), "{}", preview.body);
    commit(&mut c, &job);
    assert_eq!(grades_in(&s, "2024001", "2025-2026-2"), COURSES);
}

#[test]
fn a_client_cannot_name_a_received_body() {
    let (s, mut c) = server();
    let t = token(&mut c);
    let small = "学号,学期,课程代码,课程名称,学分,成绩\n2024001,2025-2026-1,MA1001,高等数学,4,88\n";
    let (ct, body) = multipart(
        &[("csrf_token", &t), ("kind", "grades")],
        Some(("g.csv", small.as_bytes())),
    );
    // The server's own hand-over header, sent by a client: dropped; the body sent is the one
    // imported.
    for forged in ["0123456789abcdef0123456789abcdef", "../../etc/passwd", ""] {
        let extra = format!("Content-Type: {ct}\r\nX-Wxgrades-Spooled-Body: {forged}\r\n");
        let job = job_of(&post_raw_socket(&s, &c, &extra, &body, false));
        let preview = wait_while_busy(&mut c, &job);
        assert!(
            preview.body.contains("g.csv") && preview.body.contains("高等数学"),
            "{forged}: {}",
            preview.body
        );
    }
    // And the same header with an empty body names nothing either: no form, refused.
    let extra = format!(
        "Content-Type: {ct}\r\nX-Wxgrades-Spooled-Body: 0123456789abcdef0123456789abcdef\r\n"
    );
    let answer = post_raw_socket(&s, &c, &extra, b"", false);
    assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
    assert_eq!(grades_in(&s, "2024001", "2025-2026-1"), 0);
}
