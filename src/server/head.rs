//! The request head as the connection guard reads it off the wire: where it ends, and whether it
//! keeps the HTTP bounds (SPEC "HTTP bounds") before tiny_http ever sees it. Pure functions over
//! bytes, so every bound is unit-tested without a socket.

/// A request line longer than this (without its CRLF) is answered 414.
pub const MAX_REQUEST_LINE: usize = 8 * 1024;
/// A header block longer than this (the lines after the request line, CRLFs included) is 431.
pub const MAX_HEADER_BLOCK: usize = 16 * 1024;
/// More header lines than this is 431.
pub const MAX_HEADERS: usize = 100;
/// Empty lines tolerated before a request line (some clients send a CRLF after a body).
const MAX_LEADING_BLANK_LINES: usize = 4;

/// What a head is refused for; each maps to one status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// 400, with what was wrong (for the log, never echoing the client's bytes).
    Bad(&'static str),
    /// 414.
    LineTooLong,
    /// 431.
    HeadersTooLarge,
    /// 505: a well-formed `HTTP/x.y` other than 1.0 and 1.1.
    Version,
    /// 501: a transfer coding other than `chunked`.
    Coding,
    /// 417: an `Expect` other than `100-continue`.
    Expectation,
}

impl Refusal {
    pub fn status(&self) -> u16 {
        match self {
            Refusal::Bad(_) => 400,
            Refusal::LineTooLong => 414,
            Refusal::HeadersTooLarge => 431,
            Refusal::Version => 505,
            Refusal::Coding => 501,
            Refusal::Expectation => 417,
        }
    }

    pub fn reason(&self) -> &'static str {
        match self {
            Refusal::Bad(why) => why,
            Refusal::LineTooLong => "request line too long",
            Refusal::HeadersTooLarge => "header block too large",
            Refusal::Version => "HTTP version not supported",
            Refusal::Coding => "transfer coding not supported",
            Refusal::Expectation => "expectation not supported",
        }
    }
}

/// How the body of a request is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    None,
    Length(u64),
    Chunked,
}

/// A request head that keeps every bound.
#[derive(Debug, Clone)]
pub struct Head {
    pub method: String,
    pub target: String,
    /// `true` for HTTP/1.1, `false` for HTTP/1.0.
    pub http11: bool,
    /// Names and values as sent (names keep their case; values trimmed).
    pub headers: Vec<(String, String)>,
    pub framing: Framing,
    /// The client wants the connection closed after this request.
    pub close: bool,
    pub expect_continue: bool,
}

/// Where the head in `buf` ends (the index just past its empty line), `None` when more bytes are
/// needed, or the bound it already broke. `from` is how far an earlier call scanned, so that a
/// head arriving a byte at a time is not rescanned from its start.
pub fn scan(buf: &[u8], from: usize) -> Result<Option<usize>, Refusal> {
    let start = leading_blank(buf);
    let body = &buf[start..];
    // The request line is searched from its start each time: it is at most 8 KiB.
    let line_window = &body[..body.len().min(MAX_REQUEST_LINE + 2)];
    let Some(line_end) = find(line_window, b"\r\n", 0) else {
        // The line so far, less a CR that may be the start of its CRLF.
        let sofar = body.len() - usize::from(body.last() == Some(&b'\r'));
        if sofar > MAX_REQUEST_LINE {
            return Err(Refusal::LineTooLong);
        }
        return Ok(None);
    };
    if line_end > MAX_REQUEST_LINE {
        return Err(Refusal::LineTooLong);
    }
    let block_start = line_end + 2;
    if body[line_end..].starts_with(b"\r\n\r\n") {
        return Ok(Some(start + line_end + 4));
    }
    let resume = from.saturating_sub(start + 3).max(block_start);
    match find(body, b"\r\n\r\n", resume) {
        Some(i) => {
            if i + 2 - block_start > MAX_HEADER_BLOCK {
                return Err(Refusal::HeadersTooLarge);
            }
            Ok(Some(start + i + 4))
        }
        None if body.len() - block_start > MAX_HEADER_BLOCK + 2 => Err(Refusal::HeadersTooLarge),
        None => Ok(None),
    }
}

/// The bytes of blank lines before the request line (at most a few are skipped).
fn leading_blank(buf: &[u8]) -> usize {
    let mut i = 0;
    for _ in 0..MAX_LEADING_BLANK_LINES {
        if buf[i..].starts_with(b"\r\n") {
            i += 2;
        } else {
            break;
        }
    }
    i
}

fn find(buf: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if from >= buf.len() {
        return None;
    }
    memchr::memmem::find(&buf[from..], needle).map(|i| i + from)
}

/// Parse a whole head (as delimited by [`scan`], blank lines and final CRLFs included).
pub fn parse(raw: &[u8]) -> Result<Head, Refusal> {
    let raw = &raw[leading_blank(raw)..];
    let raw = raw.strip_suffix(b"\r\n\r\n").unwrap_or(raw);
    let mut lines = split_crlf(raw);
    let first = lines.next().unwrap_or_default();
    let (method, target, http11) = request_line(first)?;
    let mut headers = Vec::new();
    // A bare LF or CR left inside a line is a control byte there: refused by `header_line`.
    for line in lines {
        if headers.len() == MAX_HEADERS {
            return Err(Refusal::HeadersTooLarge);
        }
        headers.push(header_line(line)?);
    }
    let mut length = None;
    let mut chunked = false;
    let mut coding_seen = false;
    let mut close = !http11;
    let mut expect_continue = false;
    for (name, value) in &headers {
        if name.eq_ignore_ascii_case("content-length") {
            if length.is_some() {
                return Err(Refusal::Bad("more than one Content-Length"));
            }
            length = Some(content_length(value)?);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            if coding_seen {
                return Err(Refusal::Bad("more than one Transfer-Encoding"));
            }
            coding_seen = true;
            if !value.eq_ignore_ascii_case("chunked") {
                return Err(Refusal::Coding);
            }
            chunked = true;
        } else if name.eq_ignore_ascii_case("connection") {
            for token in value.split(',').map(str::trim) {
                if token.eq_ignore_ascii_case("close") {
                    close = true;
                }
            }
        } else if name.eq_ignore_ascii_case("expect") {
            if !value.eq_ignore_ascii_case("100-continue") {
                return Err(Refusal::Expectation);
            }
            expect_continue = true;
        }
    }
    let framing = match (length, coding_seen) {
        (Some(_), true) => {
            return Err(Refusal::Bad(
                "Content-Length together with Transfer-Encoding",
            ))
        }
        (Some(n), false) => Framing::Length(n),
        (None, true) if chunked => Framing::Chunked,
        (None, _) => Framing::None,
    };
    Ok(Head {
        method,
        target,
        http11,
        headers,
        framing,
        close,
        expect_continue,
    })
}

/// The lines of `raw`, split at each CRLF.
fn split_crlf(raw: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = Some(raw);
    std::iter::from_fn(move || {
        let r = rest?;
        match memchr::memmem::find(r, b"\r\n") {
            Some(i) => {
                rest = Some(&r[i + 2..]);
                Some(&r[..i])
            }
            None => {
                rest = None;
                Some(r)
            }
        }
    })
}

fn request_line(line: &[u8]) -> Result<(String, String, bool), Refusal> {
    if line
        .iter()
        .any(|&b| !(0x21..=0x7e).contains(&b) && b != b' ')
    {
        return Err(Refusal::Bad(
            "a control or non-ASCII byte in the request line",
        ));
    }
    let text = std::str::from_utf8(line).map_err(|_| Refusal::Bad("request line not ASCII"))?;
    let mut parts = text.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Refusal::Bad(
            "the request line is not METHOD TARGET VERSION",
        ));
    };
    if method.is_empty() || !method.bytes().all(is_tchar) {
        return Err(Refusal::Bad("bad method"));
    }
    if target.is_empty() {
        return Err(Refusal::Bad("empty request target"));
    }
    let http11 = match version {
        "HTTP/1.1" => true,
        "HTTP/1.0" => false,
        v if is_http_version(v) => return Err(Refusal::Version),
        _ => return Err(Refusal::Bad("bad HTTP version")),
    };
    Ok((method.to_string(), target.to_string(), http11))
}

/// `HTTP/d.d` or `HTTP/d` (as HTTP/2 and 3 spell themselves).
fn is_http_version(v: &str) -> bool {
    let Some(n) = v.strip_prefix("HTTP/") else {
        return false;
    };
    let b = n.as_bytes();
    match b.len() {
        1 => b[0].is_ascii_digit(),
        3 => b[0].is_ascii_digit() && b[1] == b'.' && b[2].is_ascii_digit(),
        _ => false,
    }
}

fn header_line(line: &[u8]) -> Result<(String, String), Refusal> {
    if line.first().is_some_and(|&b| b == b' ' || b == b'\t') {
        return Err(Refusal::Bad("a folded header line"));
    }
    for &b in line {
        match b {
            0 => return Err(Refusal::Bad("NUL in a header")),
            b'\r' => return Err(Refusal::Bad("a bare CR in a header")),
            b'\n' => return Err(Refusal::Bad("a bare LF in a header")),
            b'\t' => {}
            0x80.. => return Err(Refusal::Bad("a non-ASCII byte in a header")),
            0..=0x1f | 0x7f => return Err(Refusal::Bad("a control byte in a header")),
            _ => {}
        }
    }
    let Some(colon) = line.iter().position(|&b| b == b':') else {
        return Err(Refusal::Bad("a header line without a colon"));
    };
    let (name, value) = (&line[..colon], &line[colon + 1..]);
    if name.is_empty() || !name.iter().copied().all(is_tchar) {
        return Err(Refusal::Bad("bad header name"));
    }
    // Every byte was checked to be ASCII above.
    let name = String::from_utf8_lossy(name).into_owned();
    let value = String::from_utf8_lossy(value)
        .trim_matches(|c| c == ' ' || c == '\t')
        .to_string();
    Ok((name, value))
}

fn content_length(value: &str) -> Result<u64, Refusal> {
    if value.is_empty() || value.len() > 19 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Refusal::Bad("bad Content-Length"));
    }
    value
        .parse()
        .map_err(|_| Refusal::Bad("bad Content-Length"))
}

/// RFC 9110 token characters.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn whole(raw: &[u8]) -> Result<Head, Refusal> {
        match scan(raw, 0)? {
            Some(end) => parse(&raw[..end]),
            None => panic!("incomplete head: {:?}", String::from_utf8_lossy(raw)),
        }
    }

    #[test]
    fn a_plain_head_parses() {
        let h = whole(
            b"POST /bind?x=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 12\r\nX-Y:  v \r\n\r\nbody",
        )
        .unwrap();
        assert_eq!(h.method, "POST");
        assert_eq!(h.target, "/bind?x=1");
        assert!(h.http11 && !h.close && !h.expect_continue);
        assert_eq!(h.framing, Framing::Length(12));
        assert_eq!(h.headers[2], ("X-Y".to_string(), "v".to_string()));
        let h = whole(b"\r\nGET / HTTP/1.0\r\n\r\n").unwrap();
        assert!(!h.http11 && h.close);
        assert_eq!(h.framing, Framing::None);
    }

    #[test]
    fn scan_waits_for_the_end_and_resumes() {
        let raw = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";
        for cut in 0..raw.len() {
            assert_eq!(scan(&raw[..cut], cut.saturating_sub(1)), Ok(None), "{cut}");
        }
        assert_eq!(scan(raw, raw.len() - 1), Ok(Some(raw.len())));
    }

    #[test]
    fn bounds_give_414_and_431() {
        let mut line = b"GET /".to_vec();
        line.extend(std::iter::repeat_n(b'a', MAX_REQUEST_LINE));
        assert_eq!(scan(&line, 0), Err(Refusal::LineTooLong));
        let ok = format!(
            "GET /{} HTTP/1.1\r\n\r\n",
            "a".repeat(MAX_REQUEST_LINE - 20)
        );
        assert!(whole(ok.as_bytes()).is_ok());
        let big = format!("GET / HTTP/1.1\r\nX: {}\r\n", "a".repeat(MAX_HEADER_BLOCK));
        assert_eq!(scan(big.as_bytes(), 0), Err(Refusal::HeadersTooLarge));
        let many: String = (0..=MAX_HEADERS).map(|i| format!("X-{i}: 1\r\n")).collect();
        let raw = format!("GET / HTTP/1.1\r\n{many}\r\n");
        assert_eq!(whole(raw.as_bytes()).unwrap_err(), Refusal::HeadersTooLarge);
        let fine: String = (1..MAX_HEADERS).map(|i| format!("X-{i}: 1\r\n")).collect();
        assert!(whole(format!("GET / HTTP/1.1\r\n{fine}\r\n").as_bytes()).is_ok());
    }

    #[test]
    fn smuggling_shapes_are_refused() {
        for raw in [
            &b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n"[..],
            b"POST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: +1\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n",
            b"POST / HTTP/1.1\r\nX: a\r\n b\r\n\r\n",
            b"POST / HTTP/1.1\r\nX : a\r\n\r\n",
            b"POST / HTTP/1.1\r\nX: a\nY: b\r\n\r\n",
        ] {
            assert_eq!(
                whole(raw).unwrap_err().status(),
                400,
                "{:?}",
                String::from_utf8_lossy(raw)
            );
        }
        let r = whole(b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n");
        assert_eq!(r.unwrap_err(), Refusal::Coding);
    }

    #[test]
    fn bad_bytes_in_headers_are_400() {
        for raw in [
            &b"GET / HTTP/1.1\r\nX: a\0b\r\n\r\n"[..],
            b"GET / HTTP/1.1\r\nX: a\rb\r\n\r\n",
            b"GET / HTTP/1.1\r\nX: caf\xc3\xa9\r\n\r\n",
            b"GET /caf\xc3\xa9 HTTP/1.1\r\n\r\n",
            b"GET / HTTP/1.1\r\nX: a\x01\r\n\r\n",
        ] {
            assert_eq!(
                whole(raw).unwrap_err().status(),
                400,
                "{:?}",
                String::from_utf8_lossy(raw)
            );
        }
    }

    #[test]
    fn versions() {
        assert_eq!(
            whole(b"GET / HTTP/2.0\r\n\r\n").unwrap_err(),
            Refusal::Version
        );
        assert_eq!(
            whole(b"GET / HTTP/3\r\n\r\n").unwrap_err(),
            Refusal::Version
        );
        assert_eq!(
            whole(b"GET / HTTP/0.9\r\n\r\n").unwrap_err(),
            Refusal::Version
        );
        assert_eq!(whole(b"GET / FTP/1.1\r\n\r\n").unwrap_err().status(), 400);
        assert_eq!(whole(b"GET  / HTTP/1.1\r\n\r\n").unwrap_err().status(), 400);
    }

    #[test]
    fn expect_and_connection() {
        let h = whole(b"POST / HTTP/1.1\r\nExpect: 100-continue\r\nConnection: keep-alive, Close\r\nContent-Length: 3\r\n\r\n").unwrap();
        assert!(h.expect_continue && h.close);
        assert_eq!(
            whole(b"POST / HTTP/1.1\r\nExpect: other\r\n\r\n").unwrap_err(),
            Refusal::Expectation
        );
        let h = whole(b"POST / HTTP/1.1\r\nTransfer-Encoding: Chunked\r\n\r\n").unwrap();
        assert_eq!(h.framing, Framing::Chunked);
    }
}
