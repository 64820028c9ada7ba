//! Cookies: reading the `Cookie` request header and writing `Set-Cookie` values.

/// Parses a `Cookie` request header into `(name, value)` pairs, in order.
///
/// Tolerant of what real browsers and proxies send: pairs are split on `;`, surrounding spaces
/// and tabs are trimmed, a value wrapped in double quotes loses the quotes, segments without `=`
/// or with an empty name are skipped. Values are returned as sent (no percent-decoding).
pub fn parse_cookie_header(h: &str) -> Vec<(String, String)> {
    cookie_pairs(h)
        .map(|(n, v)| (n.to_owned(), v.to_owned()))
        .collect()
}

/// The value of the first cookie called `name` in a `Cookie` header, borrowed from the header.
pub fn get_cookie<'a>(h: &'a str, name: &str) -> Option<&'a str> {
    cookie_pairs(h).find(|(n, _)| *n == name).map(|(_, v)| v)
}

fn cookie_pairs(h: &str) -> impl Iterator<Item = (&str, &str)> {
    h.split(';').filter_map(|segment| {
        let (name, value) = segment.split_once('=')?;
        let name = name.trim_matches(|c| c == ' ' || c == '\t');
        if name.is_empty() {
            return None;
        }
        let value = value.trim_matches(|c| c == ' ' || c == '\t');
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(value);
        Some((name, value))
    })
}

/// The `SameSite` attribute of a cookie.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SameSite {
    Strict,
    Lax,
    /// Sent on cross-site requests too; browsers require `Secure` with it.
    None,
}

impl SameSite {
    fn as_str(self) -> &'static str {
        match self {
            SameSite::Strict => "Strict",
            SameSite::Lax => "Lax",
            SameSite::None => "None",
        }
    }
}

/// A `Set-Cookie` response header value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetCookie {
    pub name: String,
    pub value: String,
    /// `Path` attribute; omitted when empty.
    pub path: String,
    /// `Max-Age` in seconds; `None` makes a session cookie. Zero or less removes the cookie.
    pub max_age: Option<i64>,
    pub http_only: bool,
    pub secure: bool,
    pub same_site: SameSite,
}

impl SetCookie {
    /// A session cookie with `Path=/`, `HttpOnly`, `SameSite=Lax`, not `Secure`.
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> SetCookie {
        SetCookie {
            name: name.into(),
            value: value.into(),
            path: "/".to_owned(),
            max_age: None,
            http_only: true,
            secure: false,
            same_site: SameSite::Lax,
        }
    }

    /// A cookie that tells the browser to drop `name` at `path` (`Max-Age=0`, empty value).
    pub fn removal(name: impl Into<String>, path: impl Into<String>, secure: bool) -> SetCookie {
        SetCookie {
            name: name.into(),
            value: String::new(),
            path: path.into(),
            max_age: Some(0),
            http_only: true,
            secure,
            same_site: SameSite::Lax,
        }
    }

    /// The header value, e.g. `sid=abc; Path=/; Max-Age=3600; HttpOnly; Secure; SameSite=Lax`.
    ///
    /// Characters that could end the pair or the header early (controls, `;`, `,`, spaces,
    /// quotes, backslashes in the value; controls and `;` in the path; also `=` in the name) are
    /// dropped, so a stray value can never inject attributes or headers.
    pub fn to_header_value(&self) -> String {
        let name: String = self
            .name
            .chars()
            .filter(|&c| is_cookie_octet(c) && c != '=')
            .collect();
        let value: String = self.value.chars().filter(|&c| is_cookie_octet(c)).collect();
        let mut out = format!("{name}={value}");
        let path: String = self
            .path
            .chars()
            .filter(|&c| !c.is_control() && c != ';')
            .collect();
        if !path.is_empty() {
            out.push_str("; Path=");
            out.push_str(&path);
        }
        if let Some(max_age) = self.max_age {
            let max_age = max_age.max(0);
            out.push_str(&format!("; Max-Age={max_age}"));
            if max_age == 0 {
                out.push_str("; Expires=Thu, 01 Jan 1970 00:00:00 GMT");
            }
        }
        if self.http_only {
            out.push_str("; HttpOnly");
        }
        if self.secure {
            out.push_str("; Secure");
        }
        out.push_str("; SameSite=");
        out.push_str(self.same_site.as_str());
        out
    }
}

/// RFC 6265 cookie-octet, widened to non-ASCII (browsers accept UTF-8 bytes).
fn is_cookie_octet(c: char) -> bool {
    !(c.is_control() || matches!(c, ' ' | '"' | ',' | ';' | '\\'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_typical_header() {
        assert_eq!(
            parse_cookie_header("sid=abc123; oauth_state=xyz; theme=dark"),
            vec![
                ("sid".to_owned(), "abc123".to_owned()),
                ("oauth_state".to_owned(), "xyz".to_owned()),
                ("theme".to_owned(), "dark".to_owned()),
            ]
        );
    }

    #[test]
    fn tolerates_odd_spacing_quotes_and_junk() {
        let h = "  a=1 ;;b = \"quoted\";novalue; =orphan;\tc=x=y ; d=";
        assert_eq!(
            parse_cookie_header(h),
            vec![
                ("a".to_owned(), "1".to_owned()),
                ("b".to_owned(), "quoted".to_owned()),
                ("c".to_owned(), "x=y".to_owned()),
                ("d".to_owned(), String::new()),
            ]
        );
        assert!(parse_cookie_header("").is_empty());
        assert!(parse_cookie_header(";;;").is_empty());
    }

    #[test]
    fn lone_quote_is_kept() {
        assert_eq!(get_cookie("a=\"", "a"), Some("\""));
    }

    #[test]
    fn get_cookie_finds_first_exact_name() {
        let h = "sid_old=1; sid=first; sid=second";
        assert_eq!(get_cookie(h, "sid"), Some("first"));
        assert_eq!(get_cookie(h, "sid_old"), Some("1"));
        assert_eq!(get_cookie(h, "si"), None);
        assert_eq!(get_cookie(h, "SID"), None);
    }

    #[test]
    fn set_cookie_with_all_attributes() {
        let c = SetCookie {
            name: "admin".into(),
            value: "tok".into(),
            path: "/admin".into(),
            max_age: Some(3600),
            http_only: true,
            secure: true,
            same_site: SameSite::Strict,
        };
        assert_eq!(
            c.to_header_value(),
            "admin=tok; Path=/admin; Max-Age=3600; HttpOnly; Secure; SameSite=Strict"
        );
    }

    #[test]
    fn new_gives_session_cookie_defaults() {
        assert_eq!(
            SetCookie::new("sid", "v").to_header_value(),
            "sid=v; Path=/; HttpOnly; SameSite=Lax"
        );
        let mut c = SetCookie::new("x", "y");
        c.http_only = false;
        c.path.clear();
        c.same_site = SameSite::None;
        c.secure = true;
        assert_eq!(c.to_header_value(), "x=y; Secure; SameSite=None");
    }

    #[test]
    fn removal_sets_max_age_zero() {
        let v = SetCookie::removal("sid", "/", true).to_header_value();
        assert_eq!(
            v,
            "sid=; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; Secure; SameSite=Lax"
        );
        let v = SetCookie::removal("sid", "/", false).to_header_value();
        assert!(!v.contains("Secure"));
        assert!(v.contains("Max-Age=0"));
    }

    #[test]
    fn negative_max_age_is_clamped_to_zero() {
        let mut c = SetCookie::new("a", "b");
        c.max_age = Some(-5);
        assert!(c.to_header_value().contains("Max-Age=0;"));
    }

    #[test]
    fn injection_characters_are_dropped() {
        let mut c = SetCookie::new("s=id", "a; Domain=evil.com\r\nX-Evil: 1");
        c.path = "/;\r\nx".into();
        let v = c.to_header_value();
        assert!(!v.contains('\r') && !v.contains('\n'));
        assert!(v.starts_with("sid=aDomain=evil.comX-Evil:1; Path=/x;"));
    }

    #[test]
    fn round_trip_through_cookie_header() {
        let v = SetCookie::new("sid", "AbC-123_x.y~z").to_header_value();
        let pair = v.split(';').next().unwrap_or_default();
        assert_eq!(get_cookie(pair, "sid"), Some("AbC-123_x.y~z"));
    }
}
