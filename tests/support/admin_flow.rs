//! The staff side of the HTTP tests: an account signed in to the admin pages, multipart upload
//! bodies, and waiting on a page that refreshes itself while an import runs.

#![allow(dead_code)]

use std::time::{Duration, Instant};

use super::{Client, Resp, TestServer};
use wxgrades::service::admin::accounts;

/// The password of every staff account the tests add.
pub const STAFF_PW: &str = "correct horse battery";

/// A client signed in to the admin pages as `name` (an existing account, e.g. one added with
/// [`add_staff`]).
pub fn sign_in(s: &TestServer, name: &str) -> Client {
    let mut c = s.client();
    let r = c.get("/admin/login");
    let t = Client::hidden(&r.body, "csrf_token");
    let r = c.post_form(
        "/admin/login",
        &[
            ("username", name),
            ("password", STAFF_PW),
            ("csrf_token", &t),
        ],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    c
}

/// Add the admin account `name` (password [`STAFF_PW`]).
pub fn add_staff(s: &TestServer, name: &str) {
    accounts::add(&s.app.store, name, STAFF_PW, s.app.clock.now()).expect("add staff account");
}

/// Add the admin account `name` and sign it in.
pub fn staff(s: &TestServer, name: &str) -> Client {
    add_staff(s, name);
    sign_in(s, name)
}

/// A `multipart/form-data` body of `fields` and, when given, one file part `file`
/// (name, bytes): (content type, body).
pub fn multipart(fields: &[(&str, &str)], file: Option<(&str, &[u8])>) -> (String, Vec<u8>) {
    let b = "----wxgradesTestBoundary7MA4YWxk";
    let mut body = Vec::new();
    for (k, v) in fields {
        body.extend_from_slice(
            format!("--{b}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n")
                .as_bytes(),
        );
    }
    if let Some((name, bytes)) = file {
        body.extend_from_slice(format!("--{b}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\nContent-Type: text/csv\r\n\r\n").as_bytes());
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{b}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={b}"), body)
}

/// Poll a page while it refreshes itself (as its meta refresh would), at most 30 s.
pub fn wait_while_busy(c: &mut Client, path: &str) -> Resp {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = c.get(path);
        if !r.body.contains("http-equiv=\"refresh\"") {
            return r;
        }
        assert!(Instant::now() < deadline, "{path} still busy");
        std::thread::yield_now();
    }
}
