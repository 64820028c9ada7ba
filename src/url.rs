//! Percent-encoding of URL components, for links the services build (WeChat authorize URLs,
//! menu links, sign-in redirects). A leaf: HTTP parsing lives in `http`.

/// Percent-encodes every byte of the UTF-8 form of `s` except the unreserved characters
/// `A-Z a-z 0-9 - . _ ~`, so the result is safe as a query value (for instance a `redirect_uri`).
pub fn percent_encode(s: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(s.len() * 3);
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
    }
    out
}
