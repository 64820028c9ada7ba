//! CSRF defence: a token per session (derived, never stored) checked on every POST form, and a
//! same-origin check on the `Origin` header.

use super::Request;
use crate::secret;

/// The CSRF token belonging to a session id (student or admin) or to a pre-login cookie value.
pub fn token_for(session_secret: &str) -> String {
    secret::hex(&secret::sha256(&[b"wxgrades-csrf-v1", session_secret.as_bytes()])[..16])
}

/// True when the form's `csrf_token` is the one for `session_secret`.
pub fn check(given: Option<&str>, session_secret: &str) -> bool {
    match given {
        Some(g) => secret::constant_time_eq(g.as_bytes(), token_for(session_secret).as_bytes()),
        None => false,
    }
}

/// Whether a POST may act: its Origin is ours and its `csrf_token` (`given`) belongs to
/// `session_secret`. Every form handler asks this one question.
pub fn post_ok(req: &Request, public_url: &str, given: Option<&str>, session_secret: &str) -> bool {
    same_origin(req, public_url) && check(given, session_secret)
}

/// False when the request's `Origin` names a site other than ours (`public_url` or the Host the
/// request came to). A missing Origin is allowed: older WeChat webviews omit it, and the CSRF
/// token still guards the form.
pub fn same_origin(req: &Request, public_url: &str) -> bool {
    let Some(origin) = req.header("origin") else {
        return true;
    };
    let origin = origin.trim().trim_end_matches('/');
    if origin.eq_ignore_ascii_case(origin_of(public_url)) {
        return true;
    }
    if let Some(host) = req.header("host") {
        for scheme in ["http://", "https://"] {
            if origin.eq_ignore_ascii_case(&format!("{scheme}{host}")) {
                return true;
            }
        }
    }
    false
}

fn origin_of(url: &str) -> &str {
    let after_scheme = url.find("://").map(|i| i + 3).unwrap_or(0);
    match url[after_scheme..].find('/') {
        Some(i) => &url[..after_scheme + i],
        None => url,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::Method;

    #[test]
    fn token_roundtrip() {
        let t = token_for("abc");
        assert!(check(Some(&t), "abc"));
        assert!(!check(Some(&t), "abd"));
        assert!(!check(None, "abc"));
        assert!(!check(Some(""), "abc"));
    }

    #[test]
    fn origin() {
        let mut r = Request::new(Method::Post, "/bind");
        assert!(same_origin(&r, "https://jw.example.edu.cn"));
        r.headers
            .push(("origin".into(), "https://jw.example.edu.cn".into()));
        assert!(same_origin(&r, "https://jw.example.edu.cn/"));
        r.headers[0].1 = "https://evil.example".into();
        assert!(!same_origin(&r, "https://jw.example.edu.cn"));
        r.headers.push(("host".into(), "evil.example".into()));
        assert!(same_origin(&r, "https://jw.example.edu.cn"));
    }
}
