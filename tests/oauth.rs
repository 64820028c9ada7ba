//! Web authorization end to end over real HTTP: the real server and a fake WeChat.

mod support;

use support::{Login, TestServer};

#[test]
fn base_scope_signs_in_and_returns_to_next() {
    let s = TestServer::start("", "");
    let mut c = s.client();
    s.fake.set_next_login(Login::user("oUser1"));
    let r = c.get("/wx/oauth/start?next=/grades%3Fterm%3D2025-2026-1");
    assert_eq!(r.status, 302);
    let r = c.follow(&r);
    let r = c.follow(&r);
    assert_eq!(r.status, 302, "{}", r.body);
    assert_eq!(r.location(), "/grades?term=2025-2026-1");
    assert!(c.cookies.contains_key("wxg_sid"));
    assert_eq!(s.fake.calls("/sns/oauth2/access_token"), 1);
}
