//! `multipart/form-data` bodies: boundary extraction and a linear-time parser over a buffered body.
//!
//! The whole body is at hand, in memory or mapped from the file the server received it into
//! (uploads are bounded by the caller, which answers 413 past the bound); `parse_multipart_at`
//! names each part's content by its range instead of copying it. Delimiters are found with `memchr::memmem`, so parsing is linear in the body size, and
//! every way a body can be cut short or malformed ends in a [`MultipartError`], never a loop or a
//! panic.
//!
//! Over 600 lines because of its tests (the second half): real browser bodies, each malformed
//! shape, random mutations, and linear-time checks.

use std::fmt;

use memchr::memmem;

/// Longest boundary RFC 2046 allows.
const MAX_BOUNDARY_LEN: usize = 70;

/// Bounds on what one body may contain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Most parts (fields and files) accepted in one body.
    pub max_parts: usize,
    /// Most bytes of one part's header block, blank line included.
    pub max_header_bytes: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_parts: 100,
            max_header_bytes: 16 * 1024,
        }
    }
}

/// One field or file of a form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// The field name (`name` parameter of `Content-Disposition`).
    pub name: String,
    /// The file name for file fields: `filename*` (RFC 5987) when present and readable, else
    /// `filename`; directory components are removed. `Some("")` is what browsers send for a file
    /// input left empty.
    pub file_name: Option<String>,
    /// The part's `Content-Type`, if it had one.
    pub content_type: Option<String>,
    /// The part's content, exactly as sent.
    pub data: Vec<u8>,
}

impl Part {
    /// The content as text (lossy UTF-8), for ordinary form fields.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.data).into_owned()
    }
}

/// One field or file of a form, its content left in the body: `range` is where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartAt {
    pub name: String,
    pub file_name: Option<String>,
    pub content_type: Option<String>,
    pub range: std::ops::Range<usize>,
}

impl PartAt {
    /// The content, from the body it was parsed from.
    pub fn data<'a>(&self, body: &'a [u8]) -> &'a [u8] {
        body.get(self.range.clone()).unwrap_or_default()
    }

    /// The content as text (lossy UTF-8), for ordinary form fields.
    pub fn text(&self, body: &[u8]) -> String {
        String::from_utf8_lossy(self.data(body)).into_owned()
    }
}

/// Why a body could not be parsed. Part numbers count from 1; offsets are byte offsets in the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MultipartError {
    /// The boundary given to the parser is unusable.
    InvalidBoundary(String),
    /// The body never contains the boundary.
    BoundaryNotFound,
    /// The body ends before the closing boundary.
    Truncated {
        part: usize,
        offset: usize,
        expected: &'static str,
    },
    /// A boundary line is followed by something other than a line break or `--`.
    MalformedDelimiter { offset: usize },
    /// More parts than [`Limits::max_parts`].
    TooManyParts { max: usize },
    /// A part's header block is longer than [`Limits::max_header_bytes`].
    HeadersTooLarge { part: usize, max: usize },
    /// A header line that is not `Name: value`.
    MalformedHeader { part: usize, line: String },
    /// A part without a `Content-Disposition` header.
    MissingContentDisposition { part: usize },
    /// A part whose disposition is not `form-data`.
    NotFormData { part: usize, disposition: String },
    /// A part whose `Content-Disposition` has no `name`.
    MissingName { part: usize },
}

impl fmt::Display for MultipartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MultipartError::InvalidBoundary(why) => write!(f, "invalid multipart boundary: {why}"),
            MultipartError::BoundaryNotFound => write!(
                f,
                "multipart body does not contain its boundary (wrong Content-Type or not multipart)"
            ),
            MultipartError::Truncated {
                part,
                offset,
                expected,
            } => write!(
                f,
                "multipart body is truncated: part {part} ends at byte {offset} before {expected}"
            ),
            MultipartError::MalformedDelimiter { offset } => write!(
                f,
                "multipart boundary at byte {offset} is followed by neither a line break nor \"--\""
            ),
            MultipartError::TooManyParts { max } => {
                write!(f, "multipart body has more than {max} parts")
            }
            MultipartError::HeadersTooLarge { part, max } => {
                write!(f, "multipart part {part}: headers exceed {max} bytes")
            }
            MultipartError::MalformedHeader { part, line } => {
                write!(f, "multipart part {part}: malformed header line {line:?}")
            }
            MultipartError::MissingContentDisposition { part } => {
                write!(f, "multipart part {part}: no Content-Disposition header")
            }
            MultipartError::NotFormData { part, disposition } => write!(
                f,
                "multipart part {part}: disposition {disposition:?} is not form-data"
            ),
            MultipartError::MissingName { part } => {
                write!(f, "multipart part {part}: Content-Disposition has no name")
            }
        }
    }
}

impl std::error::Error for MultipartError {}

/// The boundary of a `multipart/form-data` Content-Type header value, unquoted.
///
/// `None` when the media type is not `multipart/form-data`, or the boundary is missing, empty,
/// longer than 70 characters or contains control characters.
pub fn boundary_from_content_type(ct: &str) -> Option<String> {
    let (media_type, params) = match ct.split_once(';') {
        Some((media_type, params)) => (media_type, params),
        None => (ct, ""),
    };
    if !media_type
        .trim()
        .eq_ignore_ascii_case("multipart/form-data")
    {
        return None;
    }
    let boundary = parse_params(params)
        .into_iter()
        .find(|(name, _)| name == "boundary")
        .map(|(_, value)| value)?;
    check_boundary(&boundary).ok()?;
    Some(boundary)
}

fn check_boundary(boundary: &str) -> Result<(), MultipartError> {
    if boundary.is_empty() {
        return Err(MultipartError::InvalidBoundary("empty".to_owned()));
    }
    if boundary.len() > MAX_BOUNDARY_LEN {
        return Err(MultipartError::InvalidBoundary(format!(
            "longer than {MAX_BOUNDARY_LEN} bytes"
        )));
    }
    if boundary.chars().any(char::is_control) {
        return Err(MultipartError::InvalidBoundary(
            "contains control characters".to_owned(),
        ));
    }
    Ok(())
}

/// Parses a fully buffered `multipart/form-data` body into its parts, in order.
///
/// Accepts CRLF line breaks (and, tolerantly, bare LF), a preamble before the first boundary, an
/// epilogue after the closing one, transport padding after boundaries, quoted parameters,
/// `filename*` (RFC 5987, UTF-8 or ISO-8859-1) and raw UTF-8 file names.
pub fn parse_multipart(
    body: &[u8],
    boundary: &str,
    limits: &Limits,
) -> Result<Vec<Part>, MultipartError> {
    Ok(parse_multipart_at(body, boundary, limits)?
        .into_iter()
        .map(|p| Part {
            data: body.get(p.range).map(<[u8]>::to_vec).unwrap_or_default(),
            name: p.name,
            file_name: p.file_name,
            content_type: p.content_type,
        })
        .collect())
}

/// Like [`parse_multipart`], but each part's content is left in the body and named by its
/// byte range, so that a large file part is never copied.
pub fn parse_multipart_at(
    body: &[u8],
    boundary: &str,
    limits: &Limits,
) -> Result<Vec<PartAt>, MultipartError> {
    check_boundary(boundary)?;
    let dash_boundary = format!("--{boundary}");
    // A delimiter is "--boundary" at the start of a line; the "\r" before the "\n" (if any)
    // belongs to the delimiter too and is trimmed from the preceding content.
    let delimiter = format!("\n--{boundary}");
    let finder = memmem::Finder::new(delimiter.as_bytes());

    let mut pos = if body.starts_with(dash_boundary.as_bytes()) {
        dash_boundary.len()
    } else {
        match finder.find(body) {
            Some(at) => at + delimiter.len(),
            None => return Err(MultipartError::BoundaryNotFound),
        }
    };

    let mut parts = Vec::new();
    loop {
        // `pos` is just past a "--boundary".
        let part_no = parts.len() + 1;
        let truncated = |offset: usize, expected: &'static str| MultipartError::Truncated {
            part: part_no,
            offset,
            expected,
        };
        let mut line_start = pos;
        while matches!(body.get(line_start), Some(b' ' | b'\t')) {
            line_start += 1;
        }
        match (body.get(line_start), body.get(line_start + 1)) {
            (Some(b'-'), Some(b'-')) if line_start == pos => return Ok(parts),
            (Some(b'\n'), _) => line_start += 1,
            (Some(b'\r'), Some(b'\n')) => line_start += 2,
            (None, _) | (Some(b'\r' | b'-'), None) => {
                return Err(truncated(body.len(), "the end of a boundary line"))
            }
            _ => return Err(MultipartError::MalformedDelimiter { offset: pos }),
        }

        if parts.len() >= limits.max_parts {
            return Err(MultipartError::TooManyParts {
                max: limits.max_parts,
            });
        }

        let (headers, data_start) = read_headers(body, line_start, part_no, limits)?;
        let part_meta = describe_part(&headers, part_no)?;

        // Search from the blank line's "\n" so an empty part whose delimiter shares that line
        // break is still found.
        let search_from = data_start.saturating_sub(1);
        let rest = body.get(search_from..).unwrap_or_default();
        let delimiter_at = match finder.find(rest) {
            Some(at) => search_from + at,
            None => return Err(truncated(body.len(), "the closing boundary")),
        };
        let mut data_end = delimiter_at;
        if data_end > data_start && body.get(data_end - 1) == Some(&b'\r') {
            data_end -= 1;
        }
        parts.push(PartAt {
            name: part_meta.name,
            file_name: part_meta.file_name,
            content_type: part_meta.content_type,
            range: data_start..data_end.max(data_start),
        });
        pos = delimiter_at + delimiter.len();
    }
}

/// Reads a header block starting at `start`; returns the headers and where the content starts.
fn read_headers(
    body: &[u8],
    start: usize,
    part: usize,
    limits: &Limits,
) -> Result<(Vec<(String, String)>, usize), MultipartError> {
    let window_end = start
        .saturating_add(limits.max_header_bytes)
        .min(body.len());
    let window = body.get(start..window_end).unwrap_or_default();
    let mut headers: Vec<(String, String)> = Vec::new();
    let mut line_start = 0;
    loop {
        let rest = window.get(line_start..).unwrap_or_default();
        let Some(newline) = memchr::memchr(b'\n', rest) else {
            return Err(if window_end == body.len() {
                MultipartError::Truncated {
                    part,
                    offset: body.len(),
                    expected: "the end of the part's headers",
                }
            } else {
                MultipartError::HeadersTooLarge {
                    part,
                    max: limits.max_header_bytes,
                }
            });
        };
        let line = rest.get(..newline).unwrap_or_default();
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        line_start += newline + 1;
        if line.is_empty() {
            return Ok((headers, start + line_start));
        }
        let text = String::from_utf8_lossy(line);
        if line.starts_with(b" ") || line.starts_with(b"\t") {
            // Obsolete line folding: continues the previous header's value.
            match headers.last_mut() {
                Some((_, value)) => {
                    value.push(' ');
                    value.push_str(text.trim());
                    continue;
                }
                None => {
                    return Err(MultipartError::MalformedHeader {
                        part,
                        line: text.into_owned(),
                    })
                }
            }
        }
        match text.split_once(':') {
            Some((name, value)) if !name.trim().is_empty() => {
                headers.push((name.trim().to_owned(), value.trim().to_owned()));
            }
            _ => {
                return Err(MultipartError::MalformedHeader {
                    part,
                    line: text.into_owned(),
                })
            }
        }
    }
}

struct PartMeta {
    name: String,
    file_name: Option<String>,
    content_type: Option<String>,
}

fn describe_part(headers: &[(String, String)], part: usize) -> Result<PartMeta, MultipartError> {
    let header = |wanted: &str| {
        headers
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(wanted))
            .map(|(_, value)| value.as_str())
    };
    let disposition =
        header("content-disposition").ok_or(MultipartError::MissingContentDisposition { part })?;
    let (kind, params) = match disposition.split_once(';') {
        Some((kind, params)) => (kind.trim(), params),
        None => (disposition.trim(), ""),
    };
    if !kind.eq_ignore_ascii_case("form-data") {
        return Err(MultipartError::NotFormData {
            part,
            disposition: kind.to_owned(),
        });
    }
    let params = parse_params(params);
    let param = |wanted: &str| {
        params
            .iter()
            .find(|(name, _)| name == wanted)
            .map(|(_, value)| value.as_str())
    };
    let name = param("name")
        .ok_or(MultipartError::MissingName { part })?
        .to_owned();
    let file_name = param("filename*")
        .and_then(decode_ext_value)
        .or_else(|| param("filename").map(str::to_owned))
        .map(|f| strip_directories(&f).to_owned());
    let content_type = header("content-type")
        .filter(|ct| !ct.is_empty())
        .map(str::to_owned);
    Ok(PartMeta {
        name,
        file_name,
        content_type,
    })
}

/// Keeps only the last path component (old browsers sent `C:\dir\file.csv`).
fn strip_directories(file_name: &str) -> &str {
    file_name.rsplit(['/', '\\']).next().unwrap_or(file_name)
}

/// Decodes an RFC 5987 ext-value such as `UTF-8''%E6%88%90%E7%BB%A9.csv`.
/// `None` for other charsets or a malformed value, so the caller falls back to `filename`.
fn decode_ext_value(value: &str) -> Option<String> {
    let mut pieces = value.splitn(3, '\'');
    let charset = pieces.next()?;
    let _language = pieces.next()?;
    let encoded = pieces.next()?;
    let bytes = super::form::percent_decode_bytes(encoded);
    if charset.eq_ignore_ascii_case("utf-8") {
        Some(String::from_utf8_lossy(&bytes).into_owned())
    } else if charset.eq_ignore_ascii_case("iso-8859-1") {
        Some(bytes.iter().map(|&b| char::from(b)).collect())
    } else {
        None
    }
}

/// Parses `; name=value; name="quoted; value"` parameters; names are lowercased.
///
/// Inside quotes `\"` and `\\` are unescaped and any other backslash is kept (browsers do not
/// escape backslashes in file names). An unterminated quote runs to the end.
fn parse_params(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = s;
    loop {
        rest = rest.trim_start_matches([';', ' ', '\t']);
        if rest.is_empty() {
            return out;
        }
        let name_end = rest.find(['=', ';']).unwrap_or(rest.len());
        let (name, after_name) = rest.split_at(name_end);
        let name = name.trim().to_ascii_lowercase();
        let Some(after_eq) = after_name.strip_prefix('=') else {
            if !name.is_empty() {
                out.push((name, String::new()));
            }
            rest = after_name;
            continue;
        };
        let after_eq = after_eq.trim_start_matches([' ', '\t']);
        if let Some(quoted) = after_eq.strip_prefix('"') {
            let (value, remainder) = read_quoted(quoted);
            out.push((name, value));
            rest = remainder;
        } else {
            let end = after_eq.find(';').unwrap_or(after_eq.len());
            let (value, remainder) = after_eq.split_at(end);
            out.push((name, value.trim().to_owned()));
            rest = remainder;
        }
    }
}

/// Reads a quoted string's content (after the opening quote); returns it and what follows the
/// closing quote.
fn read_quoted(s: &str) -> (String, &str) {
    let mut value = String::new();
    let mut chars = s.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return (value, s.get(i + 1..).unwrap_or_default()),
            '\\' => match chars.peek() {
                Some(&(_, next @ ('"' | '\\'))) => {
                    value.push(next);
                    chars.next();
                }
                _ => value.push('\\'),
            },
            _ => value.push(c),
        }
    }
    (value, "")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    const B: &str = "----WebKitFormBoundary7MA4YWxkTrZu0gW";

    fn parse(body: &[u8]) -> Result<Vec<Part>, MultipartError> {
        parse_multipart(body, B, &Limits::default())
    }

    /// The body Chrome sends for a form with a text field, a file and a checkbox.
    fn chrome_body() -> Vec<u8> {
        let mut body = Vec::new();
        body.extend_from_slice(
            format!(
                "--{B}\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\nabc123\r\n\
                 --{B}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"成绩.csv\"\r\n\
                 Content-Type: text/csv\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice("学号,姓名\r\n2021001,张三\r\n".as_bytes());
        body.extend_from_slice(
            format!(
                "\r\n--{B}\r\nContent-Disposition: form-data; name=\"replace_term\"\r\n\r\non\r\n--{B}--\r\n"
            )
            .as_bytes(),
        );
        body
    }

    #[test]
    fn boundary_from_typical_content_types() {
        assert_eq!(
            boundary_from_content_type(&format!("multipart/form-data; boundary={B}")),
            Some(B.to_owned())
        );
        assert_eq!(
            boundary_from_content_type("Multipart/Form-Data;charset=utf-8; BOUNDARY=\"a b;c\""),
            Some("a b;c".to_owned())
        );
        assert_eq!(
            boundary_from_content_type("multipart/form-data ; boundary = xyz ; other=1"),
            Some("xyz".to_owned())
        );
    }

    #[test]
    fn boundary_rejects_bad_content_types() {
        assert_eq!(boundary_from_content_type("multipart/form-data"), None);
        assert_eq!(
            boundary_from_content_type("application/x-www-form-urlencoded; boundary=x"),
            None
        );
        assert_eq!(
            boundary_from_content_type("multipart/mixed; boundary=x"),
            None
        );
        assert_eq!(
            boundary_from_content_type("multipart/form-data; boundary=\"\""),
            None
        );
        assert_eq!(
            boundary_from_content_type("multipart/form-data; boundary="),
            None
        );
        let long = "x".repeat(71);
        assert_eq!(
            boundary_from_content_type(&format!("multipart/form-data; boundary={long}")),
            None
        );
        assert_eq!(
            boundary_from_content_type("multipart/form-data; boundary=\"a\rb\""),
            None
        );
        assert_eq!(boundary_from_content_type(""), None);
    }

    #[test]
    fn parses_chrome_body() {
        let parts = parse(&chrome_body()).unwrap();
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[0].name, "csrf_token");
        assert_eq!(parts[0].file_name, None);
        assert_eq!(parts[0].content_type, None);
        assert_eq!(parts[0].text(), "abc123");
        assert_eq!(parts[1].name, "file");
        assert_eq!(parts[1].file_name.as_deref(), Some("成绩.csv"));
        assert_eq!(parts[1].content_type.as_deref(), Some("text/csv"));
        assert_eq!(parts[1].data, "学号,姓名\r\n2021001,张三\r\n".as_bytes());
        assert_eq!(parts[2].name, "replace_term");
        assert_eq!(parts[2].data, b"on");
    }

    #[test]
    fn preamble_epilogue_and_padding_are_ignored() {
        let body = format!(
            "This is a preamble.\r\n--{B}  \t\r\ncontent-disposition: form-data; name=a\r\n\r\n1\r\n--{B}--\r\nepilogue --{B} junk"
        );
        let parts = parse(body.as_bytes()).unwrap();
        assert_eq!(parts.len(), 1);
        assert_eq!(parts[0].name, "a");
        assert_eq!(parts[0].data, b"1");
    }

    #[test]
    fn bare_lf_line_breaks_are_accepted() {
        let body = format!(
            "--{B}\nContent-Disposition: form-data; name=\"a\"\n\nline1\nline2\n--{B}\nContent-Disposition: form-data; name=\"b\"\n\n\n--{B}--"
        );
        let parts = parse(body.as_bytes()).unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].data, b"line1\nline2");
        assert_eq!(parts[1].data, b"");
    }

    #[test]
    fn empty_file_input_and_empty_values() {
        let body = format!(
            "--{B}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"\"\r\nContent-Type: application/octet-stream\r\n\r\n\r\n--{B}\r\nContent-Disposition: form-data; name=\"\"\r\n\r\n\r\n--{B}--\r\n"
        );
        let parts = parse(body.as_bytes()).unwrap();
        assert_eq!(parts[0].file_name.as_deref(), Some(""));
        assert!(parts[0].data.is_empty());
        assert_eq!(parts[1].name, "");
        assert!(parts[1].data.is_empty());
    }

    #[test]
    fn empty_part_whose_delimiter_shares_the_blank_line() {
        let body = format!("--{B}\r\nContent-Disposition: form-data; name=a\r\n\r\n--{B}--\r\n");
        let parts = parse(body.as_bytes()).unwrap();
        assert_eq!(parts.len(), 1);
        assert!(parts[0].data.is_empty());
    }

    #[test]
    fn filename_star_wins_and_is_decoded() {
        let body = format!(
            "--{B}\r\nContent-Disposition: form-data; name=\"f\"; filename=\"fallback.csv\"; filename*=UTF-8''%E6%88%90%E7%BB%A9%20%281%29.xlsx\r\n\r\nx\r\n\
             --{B}\r\nContent-Disposition: form-data; name=\"g\"; filename*=iso-8859-1'en'caf%E9.csv\r\n\r\ny\r\n\
             --{B}\r\nContent-Disposition: form-data; name=\"h\"; filename=\"plain.csv\"; filename*=gbk''%B3%C9\r\n\r\nz\r\n--{B}--"
        );
        let parts = parse(body.as_bytes()).unwrap();
        assert_eq!(parts[0].file_name.as_deref(), Some("成绩 (1).xlsx"));
        assert_eq!(parts[1].file_name.as_deref(), Some("café.csv"));
        assert_eq!(parts[2].file_name.as_deref(), Some("plain.csv"));
    }

    #[test]
    fn quoted_params_with_separators_and_escapes() {
        let body = format!(
            "--{B}\r\nContent-Disposition: form-data; filename=\"a;b=\\\"c\\\".csv\"; name=\"x;y\"\r\n\r\n1\r\n--{B}--"
        );
        let parts = parse(body.as_bytes()).unwrap();
        assert_eq!(parts[0].name, "x;y");
        assert_eq!(parts[0].file_name.as_deref(), Some("a;b=\"c\".csv"));
    }

    #[test]
    fn unquoted_raw_utf8_file_name_and_directories_stripped() {
        let body = format!(
            "--{B}\r\nContent-Disposition: form-data; name=f; filename=2025学年 成绩.csv\r\n\r\n1\r\n\
             --{B}\r\nContent-Disposition: form-data; name=g; filename=\"C:\\Users\\教务\\名单.xlsx\"\r\n\r\n2\r\n--{B}--"
        );
        let parts = parse(body.as_bytes()).unwrap();
        assert_eq!(parts[0].file_name.as_deref(), Some("2025学年 成绩.csv"));
        assert_eq!(parts[1].file_name.as_deref(), Some("名单.xlsx"));
    }

    #[test]
    fn folded_and_case_insensitive_headers() {
        let body = format!(
            "--{B}\r\nCONTENT-DISPOSITION: Form-Data;\r\n\tname=\"a\"\r\nX-Other: 1\r\ncontent-type:  text/plain ; charset=utf-8 \r\n\r\nv\r\n--{B}--"
        );
        let parts = parse(body.as_bytes()).unwrap();
        assert_eq!(parts[0].name, "a");
        assert_eq!(
            parts[0].content_type.as_deref(),
            Some("text/plain ; charset=utf-8")
        );
    }

    #[test]
    fn binary_content_with_near_boundaries_survives() {
        let mut content: Vec<u8> = (0..=255u8).collect();
        content.extend_from_slice(format!("\r\n--{}\r\n--", &B[..B.len() - 1]).as_bytes());
        content.extend_from_slice(format!("--{B}").as_bytes()); // not at line start
        content.extend_from_slice(b"\r\n\r\n\r");
        let mut body = format!(
            "--{B}\r\nContent-Disposition: form-data; name=\"bin\"; filename=\"x.bin\"\r\n\r\n"
        )
        .into_bytes();
        body.extend_from_slice(&content);
        body.extend_from_slice(format!("\r\n--{B}--\r\n").as_bytes());
        let parts = parse(&body).unwrap();
        assert_eq!(parts.len(), 1);
        assert_eq!(parts[0].data, content);
    }

    #[test]
    fn closing_boundary_only_gives_no_parts() {
        assert_eq!(parse(format!("--{B}--\r\n").as_bytes()).unwrap(), vec![]);
        assert_eq!(parse(format!("pre\r\n--{B}--").as_bytes()).unwrap(), vec![]);
    }

    #[test]
    fn invalid_boundary_argument() {
        assert!(matches!(
            parse_multipart(b"--\r\n", "", &Limits::default()),
            Err(MultipartError::InvalidBoundary(_))
        ));
        assert!(matches!(
            parse_multipart(b"x", &"b".repeat(71), &Limits::default()),
            Err(MultipartError::InvalidBoundary(_))
        ));
    }

    #[test]
    fn body_without_boundary() {
        assert_eq!(parse(b""), Err(MultipartError::BoundaryNotFound));
        assert_eq!(parse(b"a=1&b=2"), Err(MultipartError::BoundaryNotFound));
        let other = chrome_body()
            .iter()
            .map(|&b| if b == b'7' { b'8' } else { b })
            .collect::<Vec<_>>();
        assert_eq!(parse(&other), Err(MultipartError::BoundaryNotFound));
    }

    #[test]
    fn truncated_bodies_are_errors() {
        let body = chrome_body();
        let close = format!("--{B}--");
        let close_at = body.len() - close.len() - 2;
        // Every prefix that cuts before the closing "--" is an error naming truncation (or, for
        // very short prefixes, a missing boundary).
        for len in 0..close_at + close.len() {
            match parse(&body[..len]) {
                Err(MultipartError::Truncated { offset, .. }) => assert_eq!(offset, len),
                Err(MultipartError::BoundaryNotFound) => assert!(len < B.len() + 2),
                other => panic!("prefix of {len} bytes gave {other:?}"),
            }
        }
        for len in close_at + close.len()..=body.len() {
            assert_eq!(parse(&body[..len]).unwrap().len(), 3);
        }
    }

    #[test]
    fn truncated_error_message_is_clear() {
        let body = format!("--{B}\r\nContent-Disposition: form-data; name=a\r\n\r\nhalf");
        let err = parse(body.as_bytes()).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "multipart body is truncated: part 1 ends at byte {} before the closing boundary",
                body.len()
            )
        );
    }

    #[test]
    fn malformed_delimiter_line() {
        let body = format!("--{B}x\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n--{B}--");
        assert_eq!(
            parse(body.as_bytes()),
            Err(MultipartError::MalformedDelimiter {
                offset: B.len() + 2
            })
        );
        let body = format!("--{B} -\r\n");
        assert!(matches!(
            parse(body.as_bytes()),
            Err(MultipartError::MalformedDelimiter { .. })
        ));
    }

    #[test]
    fn too_many_parts() {
        let mut body = String::new();
        for i in 0..5 {
            body.push_str(&format!(
                "--{B}\r\nContent-Disposition: form-data; name=\"f{i}\"\r\n\r\n{i}\r\n"
            ));
        }
        body.push_str(&format!("--{B}--\r\n"));
        let limits = Limits {
            max_parts: 4,
            ..Limits::default()
        };
        let err = parse_multipart(body.as_bytes(), B, &limits).unwrap_err();
        assert_eq!(err, MultipartError::TooManyParts { max: 4 });
        assert_eq!(err.to_string(), "multipart body has more than 4 parts");
        let limits = Limits {
            max_parts: 5,
            ..Limits::default()
        };
        assert_eq!(
            parse_multipart(body.as_bytes(), B, &limits).unwrap().len(),
            5
        );
    }

    #[test]
    fn headers_too_large() {
        let big = "x".repeat(200);
        let body = format!(
            "--{B}\r\nContent-Disposition: form-data; name=a\r\nX-Big: {big}\r\n\r\n1\r\n--{B}--"
        );
        let limits = Limits {
            max_header_bytes: 100,
            ..Limits::default()
        };
        assert_eq!(
            parse_multipart(body.as_bytes(), B, &limits),
            Err(MultipartError::HeadersTooLarge { part: 1, max: 100 })
        );
        let limits = Limits {
            max_header_bytes: 300,
            ..Limits::default()
        };
        assert!(parse_multipart(body.as_bytes(), B, &limits).is_ok());
    }

    #[test]
    fn header_errors_name_the_part() {
        let first = format!("--{B}\r\nContent-Disposition: form-data; name=ok\r\n\r\n1\r\n");
        let cases = [
            (
                "Content-Type: text/plain\r\n",
                MultipartError::MissingContentDisposition { part: 2 },
            ),
            ("", MultipartError::MissingContentDisposition { part: 2 }),
            (
                "Content-Disposition: attachment; name=a\r\n",
                MultipartError::NotFormData {
                    part: 2,
                    disposition: "attachment".into(),
                },
            ),
            (
                "Content-Disposition: form-data; filename=a.csv\r\n",
                MultipartError::MissingName { part: 2 },
            ),
            (
                "no colon here\r\n",
                MultipartError::MalformedHeader {
                    part: 2,
                    line: "no colon here".into(),
                },
            ),
            (
                ": empty name\r\n",
                MultipartError::MalformedHeader {
                    part: 2,
                    line: ": empty name".into(),
                },
            ),
        ];
        for (headers, expected) in cases {
            let body = format!("{first}--{B}\r\n{headers}\r\n2\r\n--{B}--\r\n");
            assert_eq!(parse(body.as_bytes()), Err(expected), "headers {headers:?}");
        }
        let body = format!("--{B}\r\n continued\r\n\r\n1\r\n--{B}--");
        assert!(matches!(
            parse(body.as_bytes()),
            Err(MultipartError::MalformedHeader { part: 1, .. })
        ));
    }

    #[test]
    fn param_parser_edge_cases() {
        assert_eq!(
            parse_params("; a=1;b=\"x\\\\y\\z\"; flag; =v;c=\"open"),
            vec![
                ("a".to_owned(), "1".to_owned()),
                ("b".to_owned(), "x\\y\\z".to_owned()),
                ("flag".to_owned(), String::new()),
                (String::new(), "v".to_owned()),
                ("c".to_owned(), "open".to_owned()),
            ]
        );
        assert!(parse_params("").is_empty());
        assert!(parse_params(" ;; ").is_empty());
    }

    /// A small xorshift64* generator, seeded, so failures reproduce.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }

        fn below(&mut self, n: usize) -> usize {
            if n == 0 {
                0
            } else {
                (self.next() % n as u64) as usize
            }
        }
    }

    fn mutate(rng: &mut Rng, body: &mut Vec<u8>) {
        let len = body.len();
        match rng.below(8) {
            0 => body.truncate(rng.below(len + 1)),
            1 => {
                if len > 0 {
                    let i = rng.below(len);
                    body[i] = rng.next() as u8;
                }
            }
            2 => {
                let start = rng.below(len + 1);
                let end = (start + rng.below(64)).min(len);
                body.drain(start..end);
            }
            3 => {
                let start = rng.below(len + 1);
                let end = (start + rng.below(64)).min(len);
                let copy = body[start..end].to_vec();
                let at = rng.below(body.len() + 1);
                body.splice(at..at, copy);
            }
            4 => {
                let tokens: [&[u8]; 8] =
                    [b"\r\n", b"\n", b"\r", b"--", b"\"", b";", b":", b"\r\n\r\n"];
                let token = tokens[rng.below(tokens.len())];
                let at = rng.below(len + 1);
                body.splice(at..at, token.iter().copied());
            }
            5 => {
                let at = rng.below(len + 1);
                let delimiter = format!("\r\n--{B}");
                body.splice(at..at, delimiter.bytes());
            }
            6 => {
                let at = rng.below(len + 1);
                let junk = [
                    "filename*=UTF-8''%E6%",
                    "name=\"",
                    "Content-Disposition: form-data",
                ];
                body.splice(at..at, junk[rng.below(junk.len())].bytes());
            }
            _ => {
                if len > 0 {
                    let i = rng.below(len);
                    body[i] = [b'\r', b'\n', b'-', b'"', 0xFF][rng.below(5)];
                }
            }
        }
    }

    #[test]
    fn randomized_mutations_never_panic_or_hang() {
        let original = chrome_body();
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let limits = Limits {
            max_parts: 8,
            max_header_bytes: 512,
        };
        let started = Instant::now();
        let (mut ok, mut err) = (0, 0);
        for _ in 0..20_000 {
            let mut body = original.clone();
            for _ in 0..=rng.below(4) {
                mutate(&mut rng, &mut body);
            }
            match parse_multipart(&body, B, &limits) {
                Ok(parts) => {
                    ok += 1;
                    assert!(parts.len() <= limits.max_parts);
                    let total: usize = parts.iter().map(|p| p.data.len()).sum();
                    assert!(total <= body.len());
                }
                Err(e) => {
                    err += 1;
                    assert!(!e.to_string().is_empty());
                }
            }
        }
        assert!(ok > 1000 && err > 1000, "ok {ok}, err {err}");
        assert!(started.elapsed() < Duration::from_secs(30));
    }

    #[test]
    fn large_upload_parses_in_linear_time() {
        // 20 MB of CSV-like content full of line breaks and dashes.
        let line = "2021001,张三,2025-2026-1,MATH101,高等数学,4.0,95 -- -\r\n";
        let content = line.repeat(20 * 1024 * 1024 / line.len());
        let mut body = format!(
            "--{B}\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\nt\r\n--{B}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.csv\"\r\n\r\n"
        )
        .into_bytes();
        body.extend_from_slice(content.as_bytes());
        body.extend_from_slice(format!("\r\n--{B}--\r\n").as_bytes());
        let started = Instant::now();
        let parts = parse(&body).unwrap();
        let elapsed = started.elapsed();
        assert_eq!(parts[1].data.len(), content.len());
        assert_eq!(parts[1].data, content.as_bytes());
        // Loose bound: this also runs unoptimised; a quadratic parser would take hours.
        assert!(elapsed < Duration::from_secs(5), "took {elapsed:?}");
    }

    #[test]
    fn adversarial_near_matches_stay_linear() {
        // Content made only of almost-delimiters.
        let almost = format!("\r\n--{}", &B[..B.len() - 1]);
        let content = almost.repeat(4 * 1024 * 1024 / almost.len());
        let mut body =
            format!("--{B}\r\nContent-Disposition: form-data; name=f\r\n\r\n").into_bytes();
        body.extend_from_slice(content.as_bytes());
        let started = Instant::now();
        assert!(matches!(
            parse(&body),
            Err(MultipartError::Truncated { .. })
        ));
        body.extend_from_slice(format!("\r\n--{B}--").as_bytes());
        assert_eq!(parse(&body).unwrap()[0].data, content.as_bytes());
        // Many tiny parts up to the limit, and many tiny header lines up to the header limit.
        let many =
            format!("--{B}\r\nContent-Disposition: form-data; name=a\r\n\r\n\r\n").repeat(100_000);
        assert_eq!(
            parse(many.as_bytes()),
            Err(MultipartError::TooManyParts { max: 100 })
        );
        let headers = format!("--{B}\r\n{}", "a:b\r\n".repeat(1_000_000));
        assert_eq!(
            parse(headers.as_bytes()),
            Err(MultipartError::HeadersTooLarge {
                part: 1,
                max: 16 * 1024
            })
        );
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}
