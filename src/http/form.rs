//! URL-encoded forms and query strings: parsing, percent-decoding and percent-encoding.

/// Parses an `application/x-www-form-urlencoded` string (a POST body or a query string).
///
/// Pairs are separated by `&`; empty segments are skipped; a segment without `=` yields a pair
/// with an empty value. In names and values `+` is a space and `%XX` is a byte; an invalid escape
/// (such as `%zz` or a trailing `%`) is kept literally, and bytes that are not valid UTF-8 become
/// U+FFFD.
pub fn parse_urlencoded(s: &str) -> Vec<(String, String)> {
    s.split('&')
        .filter(|segment| !segment.is_empty())
        .map(|segment| match segment.split_once('=') {
            Some((name, value)) => (decode_component(name, true), decode_component(value, true)),
            None => (decode_component(segment, true), String::new()),
        })
        .collect()
}

/// Decodes `%XX` escapes (`+` stays a `+`). Invalid escapes are kept literally; bytes that are
/// not valid UTF-8 become U+FFFD.
pub fn percent_decode(s: &str) -> String {
    decode_component(s, false)
}

/// Decodes `%XX` escapes to raw bytes (`+` stays a `+`); invalid escapes are kept literally.
pub fn percent_decode_bytes(s: &str) -> Vec<u8> {
    decode_to_bytes(s, false)
}

/// Moved to the `url` leaf (services build links too); kept here for callers of `http::form`.
pub use crate::url::percent_encode;

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn decode_component(s: &str, plus_as_space: bool) -> String {
    if !s.bytes().any(|b| b == b'%' || (plus_as_space && b == b'+')) {
        return s.to_owned();
    }
    match String::from_utf8(decode_to_bytes(s, plus_as_space)) {
        Ok(text) => text,
        Err(err) => String::from_utf8_lossy(err.as_bytes()).into_owned(),
    }
}

fn decode_to_bytes(s: &str, plus_as_space: bool) -> Vec<u8> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'+' if plus_as_space => {
                out.push(b' ');
                i += 1;
            }
            b'%' => {
                let hi = bytes.get(i + 1).copied().and_then(hex_value);
                let lo = bytes.get(i + 2).copied().and_then(hex_value);
                match (hi, lo) {
                    (Some(hi), Some(lo)) => {
                        out.push(hi << 4 | lo);
                        i += 3;
                    }
                    _ => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

/// A parsed URL-encoded form (or query string), keeping every pair in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Form(pub Vec<(String, String)>);

impl Form {
    /// Parses a URL-encoded body or query string (see [`parse_urlencoded`]).
    pub fn parse(s: &str) -> Form {
        Form(parse_urlencoded(s))
    }

    /// The value of the first field called `name`, if any.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of the fields called `name`, in order.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// All pairs in order.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn parses_plain_pairs_in_order() {
        assert_eq!(
            parse_urlencoded("a=1&b=2&a=3"),
            pairs(&[("a", "1"), ("b", "2"), ("a", "3")])
        );
    }

    #[test]
    fn plus_is_space_and_escapes_decode() {
        assert_eq!(
            parse_urlencoded("name=%E5%BC%A0+%E4%B8%89&q=a%2Bb%3Dc%26d"),
            pairs(&[("name", "张 三"), ("q", "a+b=c&d")])
        );
    }

    #[test]
    fn empty_segments_and_missing_values() {
        assert_eq!(
            parse_urlencoded("&&a&b=&=c&"),
            pairs(&[("a", ""), ("b", ""), ("", "c")])
        );
        assert!(parse_urlencoded("").is_empty());
    }

    #[test]
    fn value_keeps_later_equals_signs() {
        assert_eq!(parse_urlencoded("k=a=b"), pairs(&[("k", "a=b")]));
    }

    #[test]
    fn invalid_escapes_are_kept_literally() {
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
        assert_eq!(percent_decode("%%41"), "%A");
        assert_eq!(percent_decode("%4g"), "%4g");
        assert_eq!(parse_urlencoded("a=%G1+x"), pairs(&[("a", "%G1 x")]));
    }

    #[test]
    fn invalid_utf8_is_lossy() {
        assert_eq!(percent_decode("a%FFb"), "a\u{FFFD}b");
        assert_eq!(percent_decode("%E5%BC"), "\u{FFFD}");
    }

    #[test]
    fn percent_decode_bytes_gives_raw_bytes() {
        assert_eq!(
            percent_decode_bytes("%FF%00a+%"),
            vec![0xFF, 0, b'a', b'+', b'%']
        );
    }

    #[test]
    fn percent_decode_keeps_plus() {
        assert_eq!(percent_decode("a+b%20c"), "a+b c");
    }

    #[test]
    fn percent_encode_keeps_only_unreserved() {
        assert_eq!(percent_encode("AZaz09-._~"), "AZaz09-._~");
        assert_eq!(
            percent_encode("https://x.cn/wx/oauth/callback?a=1&b=2"),
            "https%3A%2F%2Fx.cn%2Fwx%2Foauth%2Fcallback%3Fa%3D1%26b%3D2"
        );
        assert_eq!(percent_encode("a b+张"), "a%20b%2B%E5%BC%A0");
    }

    #[test]
    fn encode_then_decode_round_trips() {
        for s in [
            "",
            "plain",
            "a b&c=d/%?#",
            "成绩.csv",
            "\u{0}\u{7f}\u{10ffff}",
        ] {
            assert_eq!(percent_decode(&percent_encode(s)), s);
            let parsed = parse_urlencoded(&format!("k={}", percent_encode(s)));
            assert_eq!(parsed, pairs(&[("k", s)]));
        }
    }

    #[test]
    fn form_get_returns_first_value() {
        let form = Form::parse("csrf_token=abc&student_id=2021&student_id=9999");
        assert_eq!(form.get("csrf_token"), Some("abc"));
        assert_eq!(form.get("student_id"), Some("2021"));
        assert_eq!(form.get("missing"), None);
        assert_eq!(
            form.get_all("student_id").collect::<Vec<_>>(),
            vec!["2021", "9999"]
        );
        assert_eq!(form.pairs().len(), 3);
    }
}
