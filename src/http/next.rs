//! The one safe-`next` rule: where a sign-in may send the browser afterwards. Only local paths
//! (never another site), optionally confined to one area of the site (`/admin`).

use super::form::percent_decode;

/// `raw` if it is a local path (`/…`, not `//…`, no scheme, no backslash, no control or
/// non-ASCII characters, before and after percent-decoding); otherwise None.
pub fn local_path(raw: &str) -> Option<String> {
    if raw.len() > 1024 || raw.chars().any(|c| c == ' ' || !c.is_ascii()) {
        return None;
    }
    let mut s = raw.to_string();
    for _ in 0..4 {
        let ok = s.starts_with('/')
            && !s.starts_with("//")
            && !s.contains('\\')
            && !s.chars().any(char::is_control);
        if !ok {
            return None;
        }
        let decoded = percent_decode(&s);
        if decoded == s {
            return Some(raw.to_string());
        }
        s = decoded;
    }
    None
}

/// `raw` if it is a local path (see [`local_path`]) inside `area` (`/admin` takes `/admin`,
/// `/admin/…` and `/admin?…`, not `/adminx`) and not under `except`.
pub fn local_path_within(raw: &str, area: &str, except: &str) -> Option<String> {
    let path = local_path(raw)?;
    let rest = path.strip_prefix(area)?;
    let inside = rest.is_empty() || rest.starts_with('/') || rest.starts_with('?');
    (inside && !path.starts_with(except)).then_some(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_paths() {
        for ok in ["/", "/grades", "/grades?term=2025-2026-1", "/a%20b"] {
            assert_eq!(local_path(ok).as_deref(), Some(ok), "{ok}");
        }
        for bad in [
            "//evil.com",
            "https://evil.com",
            "/\\evil.com",
            "/%2F%2Fevil.com",
            "%2F%2Fevil.com",
            "javascript:alert(1)",
            "/%5Cevil.com",
            "/a\r\nSet-Cookie:x",
            "/%0d%0aLocation:x",
            "/%252F%252Fevil.com",
            "",
            "grades",
            "/成绩",
        ] {
            assert_eq!(local_path(bad), None, "{bad}");
        }
    }

    #[test]
    fn within_an_area() {
        let admin = |s| local_path_within(s, "/admin", "/admin/login");
        assert_eq!(
            admin("/admin/students?q=1").as_deref(),
            Some("/admin/students?q=1")
        );
        assert_eq!(admin("/admin").as_deref(), Some("/admin"));
        for bad in [
            "",
            "/",
            "//evil.example/admin",
            "https://evil.example/admin",
            "/adminx",
            "/admin/login",
            "/admin/\\evil",
            "/admin/学生",
            "/admin/a b",
        ] {
            assert_eq!(admin(bad), None, "{bad:?}");
        }
    }
}
