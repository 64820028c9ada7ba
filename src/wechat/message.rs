//! WeChat message-endpoint XML: hardened parsing of incoming messages and safe-mode envelopes,
//! and building of passive replies (plus the WeChat-side messages the demo simulator and tests
//! send, and parsers for our own replies).
//!
//! Parsing rules: the document must have a single `<xml>` root; any DOCTYPE/DTD is rejected; the
//! only entity references accepted are the five predefined ones and numeric character references
//! (nothing is ever fetched or expanded); input size and nesting depth are bounded; text and
//! CDATA are both accepted (and may be mixed); unknown elements are ignored. Field values are
//! trimmed of XML whitespace, except `<Content>`, which is kept verbatim.
//!
//! Building rules: strings go into CDATA sections with `]]>` split across sections and `\r` sent
//! as `&#13;`, so any string round-trips through a conforming parser; characters XML 1.0 cannot
//! carry at all (most C0 controls, U+FFFE, U+FFFF) are replaced by U+FFFD.
//!
//! Over 600 lines because of its tests (about the last half): the attack cases (DTDs, entities,
//! depth, size) and the round trips of every writer.

use std::fmt;

use quick_xml::events::{BytesRef, Event};
use quick_xml::Reader;

/// Largest XML document accepted by the parsers (WeChat messages are a few kilobytes).
pub const MAX_XML_BYTES: usize = 256 * 1024;
/// Deepest element nesting accepted (WeChat uses 3 levels).
pub const MAX_DEPTH: usize = 16;
/// Longest attacker-supplied string quoted back in an error message.
const MAX_QUOTED: usize = 64;

/// Why an XML document was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum XmlError {
    /// The document is over [`MAX_XML_BYTES`].
    TooLarge { size: usize, limit: usize },
    /// Elements are nested deeper than [`MAX_DEPTH`].
    TooDeep { limit: usize },
    /// The document has a `<!DOCTYPE ...>` (DTDs are never processed).
    DoctypeNotAllowed,
    /// An entity reference other than `&lt; &gt; &amp; &apos; &quot;` (name given).
    EntityNotAllowed(String),
    /// A numeric character reference that is malformed or names a character XML forbids.
    BadCharRef(String),
    /// The document is not well-formed XML.
    Malformed { position: u64, message: String },
    /// The document has no root element.
    NoRoot,
    /// The root element is not `<xml>` (name given).
    WrongRoot(String),
    /// A required field is absent.
    Missing(&'static str),
    /// A required field is present but empty.
    Empty(&'static str),
    /// A field occurs more than once.
    Duplicate(&'static str),
    /// A field contains child elements instead of text.
    NotText(&'static str),
    /// A numeric field does not hold an integer.
    BadInteger { field: &'static str, value: String },
    /// A field holds a value other than the one required.
    UnexpectedValue {
        field: &'static str,
        expected: &'static str,
        found: String,
    },
}

impl fmt::Display for XmlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            XmlError::TooLarge { size, limit } => {
                write!(
                    f,
                    "XML document is {size} bytes, over the {limit}-byte limit"
                )
            }
            XmlError::TooDeep { limit } => {
                write!(f, "XML elements nested deeper than {limit} levels")
            }
            XmlError::DoctypeNotAllowed => f.write_str("DOCTYPE not allowed"),
            XmlError::EntityNotAllowed(name) => {
                write!(f, "entity reference &{name}; not allowed")
            }
            XmlError::BadCharRef(r) => write!(f, "invalid character reference &{r};"),
            XmlError::Malformed { position, message } => {
                write!(f, "not well-formed at byte {position}: {message}")
            }
            XmlError::NoRoot => f.write_str("no root element"),
            XmlError::WrongRoot(name) => {
                write!(f, "root element must be <xml>, found <{name}>")
            }
            XmlError::Missing(field) => write!(f, "missing <{field}>"),
            XmlError::Empty(field) => write!(f, "empty <{field}>"),
            XmlError::Duplicate(field) => write!(f, "duplicate <{field}>"),
            XmlError::NotText(field) => write!(f, "<{field}> must contain only text"),
            XmlError::BadInteger { field, value } => {
                write!(f, "<{field}> is not an integer: {value:?}")
            }
            XmlError::UnexpectedValue {
                field,
                expected,
                found,
            } => write!(f, "<{field}> is {found:?}, expected {expected:?}"),
        }
    }
}

impl std::error::Error for XmlError {}

/// A message or event pushed by WeChat (plain mode, or the decrypted inner XML in safe mode).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incoming {
    /// `ToUserName`: our account's original ID (`gh_...`).
    pub to_user: String,
    /// `FromUserName`: the sender's openid.
    pub from_user: String,
    /// `CreateTime`: Unix seconds.
    pub create_time: i64,
    /// `MsgType`: `text`, `event`, `image`, ...
    pub msg_type: String,
    /// `Content` of text messages, verbatim.
    pub content: Option<String>,
    /// `MsgId` (messages) or `MsgID` (some events, e.g. TEMPLATESENDJOBFINISH).
    pub msg_id: Option<String>,
    /// `Event` of event pushes (`subscribe`, `CLICK`, `TEMPLATESENDJOBFINISH`, ...).
    pub event: Option<String>,
    /// `EventKey` (may be present and empty, e.g. on a plain `subscribe`).
    pub event_key: Option<String>,
    /// `Status` of TEMPLATESENDJOBFINISH (`success`, `failed:user block`, ...).
    pub status: Option<String>,
}

/// The safe-mode POST body: `<xml><ToUserName/><Encrypt/></xml>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    pub to_user: Option<String>,
    pub encrypt: String,
}

/// A passive text reply, as parsed by the simulator / tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub to_user: String,
    pub from_user: String,
    pub create_time: i64,
    pub content: String,
}

/// A safe-mode passive reply, as parsed by the simulator / tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncryptedReply {
    pub encrypt: String,
    pub msg_signature: String,
    pub timestamp: String,
    pub nonce: String,
}

// ---------------------------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------------------------

fn clip(s: &str) -> String {
    if s.chars().count() <= MAX_QUOTED {
        s.to_owned()
    } else {
        let mut out: String = s.chars().take(MAX_QUOTED).collect();
        out.push('…');
        out
    }
}

fn malformed(position: u64, message: impl Into<String>) -> XmlError {
    XmlError::Malformed {
        position,
        message: message.into(),
    }
}

fn is_xml_whitespace(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

/// Characters XML 1.0 can carry (production `Char`).
fn is_xml_char(c: char) -> bool {
    matches!(c,
        '\t' | '\n' | '\r'
        | '\u{20}'..='\u{D7FF}'
        | '\u{E000}'..='\u{FFFD}'
        | '\u{10000}'..='\u{10FFFF}')
}

/// First character of an element name (XML `NameStartChar`, approximated above U+00BF).
fn is_name_start(c: char) -> bool {
    c == ':' || c == '_' || c.is_ascii_alphabetic() || u32::from(c) >= 0xC0
}

/// Resolves a reference to its character; only predefined entities and character references.
fn resolve_ref(r: &BytesRef<'_>) -> Result<char, XmlError> {
    if r.is_char_ref() {
        return match r.resolve_char_ref() {
            Ok(Some(c)) if is_xml_char(c) => Ok(c),
            _ => Err(XmlError::BadCharRef(clip(r))),
        };
    }
    match &**r {
        "lt" => Ok('<'),
        "gt" => Ok('>'),
        "amp" => Ok('&'),
        "apos" => Ok('\''),
        "quot" => Ok('"'),
        other => Err(XmlError::EntityNotAllowed(clip(other))),
    }
}

/// State of one [`scan`]: nesting depth, the root seen so far, and the values collected.
struct Scan<'n> {
    names: &'n [&'static str],
    values: Vec<Option<String>>,
    depth: usize,
    root_seen: bool,
    /// Field being collected: (index into `names`, text so far).
    current: Option<(usize, String)>,
}

impl Scan<'_> {
    fn name_of(&self, i: usize) -> &'static str {
        self.names.get(i).copied().unwrap_or("?")
    }

    /// A start tag (`self_closing == false`) or an empty-element tag.
    fn open(&mut self, name: &str, self_closing: bool, pos: u64) -> Result<(), XmlError> {
        if !name.chars().next().is_some_and(is_name_start) {
            return Err(malformed(pos, "invalid element name"));
        }
        match self.depth {
            0 => {
                if self.root_seen {
                    return Err(malformed(pos, "more than one root element"));
                }
                self.root_seen = true;
                if name != "xml" {
                    return Err(XmlError::WrongRoot(clip(name)));
                }
            }
            1 => {
                if let Some(i) = self.names.iter().position(|n| *n == name) {
                    if self.values.get(i).is_some_and(Option::is_some) {
                        return Err(XmlError::Duplicate(self.name_of(i)));
                    }
                    if self_closing {
                        if let Some(slot) = self.values.get_mut(i) {
                            *slot = Some(String::new());
                        }
                    } else {
                        self.current = Some((i, String::new()));
                    }
                }
            }
            2 => {
                if let Some((i, _)) = &self.current {
                    return Err(XmlError::NotText(self.name_of(*i)));
                }
            }
            _ => {}
        }
        if !self_closing {
            self.depth += 1;
            if self.depth > MAX_DEPTH {
                return Err(XmlError::TooDeep { limit: MAX_DEPTH });
            }
        }
        Ok(())
    }

    fn close(&mut self, pos: u64) -> Result<(), XmlError> {
        if self.depth == 2 {
            if let Some((i, text)) = self.current.take() {
                if let Some(slot) = self.values.get_mut(i) {
                    *slot = Some(text);
                }
            }
        }
        self.depth = self
            .depth
            .checked_sub(1)
            .ok_or_else(|| malformed(pos, "end tag without start tag"))?;
        Ok(())
    }

    /// Character data (from text, CDATA or a reference) at the current position.
    fn text(&mut self, content: &str, pos: u64) -> Result<(), XmlError> {
        if self.depth == 0 {
            if content.chars().all(is_xml_whitespace) {
                return Ok(());
            }
            return Err(malformed(pos, "text outside the root element"));
        }
        if self.depth == 2 {
            if let Some((_, buf)) = self.current.as_mut() {
                buf.push_str(content);
            }
        }
        Ok(())
    }
}

/// Scans `xml` and returns the text of each direct child of the `<xml>` root named in `names`
/// (`None` where absent). Every well-formedness and safety rule of the module is enforced here.
fn scan(xml: &str, names: &[&'static str]) -> Result<Vec<Option<String>>, XmlError> {
    if xml.len() > MAX_XML_BYTES {
        return Err(XmlError::TooLarge {
            size: xml.len(),
            limit: MAX_XML_BYTES,
        });
    }
    let mut reader = Reader::from_str(xml);
    {
        let config = reader.config_mut();
        config.check_end_names = true;
        config.check_comments = true;
        config.allow_unmatched_ends = false;
        config.allow_dangling_amp = false;
        config.expand_empty_elements = false;
        config.trim_text_start = false;
        config.trim_text_end = false;
    }

    let mut st = Scan {
        names,
        values: vec![None; names.len()],
        depth: 0,
        root_seen: false,
        current: None,
    };
    loop {
        let event = reader
            .read_event()
            .map_err(|e| malformed(reader.error_position(), e.to_string()))?;
        let pos = reader.buffer_position();
        match event {
            Event::DocType(_) => return Err(XmlError::DoctypeNotAllowed),
            Event::Start(tag) => st.open(tag.name().as_ref(), false, pos)?,
            Event::Empty(tag) => st.open(tag.name().as_ref(), true, pos)?,
            Event::End(_) => st.close(pos)?,
            Event::Text(text) => st.text(&text.xml10_content(), pos)?,
            Event::CData(cdata) => {
                if st.depth == 0 {
                    return Err(malformed(pos, "CDATA outside the root element"));
                }
                st.text(&cdata.xml10_content(), pos)?;
            }
            Event::GeneralRef(r) => {
                let c = resolve_ref(&r)?;
                if st.depth == 0 {
                    return Err(malformed(pos, "reference outside the root element"));
                }
                let mut utf8 = [0u8; 4];
                st.text(c.encode_utf8(&mut utf8), pos)?;
            }
            Event::Comment(_) | Event::PI(_) | Event::Decl(_) => {}
            Event::Eof => break,
        }
    }

    if !st.root_seen {
        return Err(XmlError::NoRoot);
    }
    if st.depth != 0 {
        return Err(malformed(
            reader.buffer_position(),
            "document ends before the root element is closed",
        ));
    }
    Ok(st.values)
}

fn trimmed(s: String) -> String {
    let t = s.trim_matches(is_xml_whitespace);
    if t.len() == s.len() {
        s
    } else {
        t.to_owned()
    }
}

/// Takes field `i` out of the scan result (trimmed unless `verbatim`).
fn take(values: &mut [Option<String>], i: usize, verbatim: bool) -> Option<String> {
    let v = values.get_mut(i).and_then(Option::take)?;
    Some(if verbatim { v } else { trimmed(v) })
}

fn required(
    values: &mut [Option<String>],
    i: usize,
    field: &'static str,
) -> Result<String, XmlError> {
    let v = take(values, i, false).ok_or(XmlError::Missing(field))?;
    if v.is_empty() {
        return Err(XmlError::Empty(field));
    }
    Ok(v)
}

fn integer(value: &str, field: &'static str) -> Result<i64, XmlError> {
    value.parse::<i64>().map_err(|_| XmlError::BadInteger {
        field,
        value: clip(value),
    })
}

/// Parses a message or event pushed by WeChat.
pub fn parse_incoming(xml: &str) -> Result<Incoming, XmlError> {
    const NAMES: [&str; 10] = [
        "ToUserName",
        "FromUserName",
        "CreateTime",
        "MsgType",
        "Content",
        "MsgId",
        "MsgID",
        "Event",
        "EventKey",
        "Status",
    ];
    let mut v = scan(xml, &NAMES)?;
    let to_user = required(&mut v, 0, "ToUserName")?;
    let from_user = required(&mut v, 1, "FromUserName")?;
    let create_time = integer(&required(&mut v, 2, "CreateTime")?, "CreateTime")?;
    let msg_type = required(&mut v, 3, "MsgType")?;
    let content = take(&mut v, 4, true);
    let msg_id = match (take(&mut v, 5, false), take(&mut v, 6, false)) {
        (Some(_), Some(_)) => return Err(XmlError::Duplicate("MsgId")),
        (a, b) => a.or(b),
    };
    Ok(Incoming {
        to_user,
        from_user,
        create_time,
        msg_type,
        content,
        msg_id,
        event: take(&mut v, 7, false),
        event_key: take(&mut v, 8, false),
        status: take(&mut v, 9, false),
    })
}

/// Parses the safe-mode POST body; `Encrypt` is required and non-empty.
pub fn parse_envelope(xml: &str) -> Result<Envelope, XmlError> {
    let mut v = scan(xml, &["ToUserName", "Encrypt"])?;
    let to_user = take(&mut v, 0, false);
    let encrypt = required(&mut v, 1, "Encrypt")?;
    Ok(Envelope { to_user, encrypt })
}

/// Parses a passive text reply (the simulator's / tests' view of our answer).
pub fn parse_reply(xml: &str) -> Result<Reply, XmlError> {
    let mut v = scan(
        xml,
        &[
            "ToUserName",
            "FromUserName",
            "CreateTime",
            "MsgType",
            "Content",
        ],
    )?;
    let to_user = required(&mut v, 0, "ToUserName")?;
    let from_user = required(&mut v, 1, "FromUserName")?;
    let create_time = integer(&required(&mut v, 2, "CreateTime")?, "CreateTime")?;
    let msg_type = required(&mut v, 3, "MsgType")?;
    if msg_type != "text" {
        return Err(XmlError::UnexpectedValue {
            field: "MsgType",
            expected: "text",
            found: clip(&msg_type),
        });
    }
    let content = take(&mut v, 4, true).ok_or(XmlError::Missing("Content"))?;
    Ok(Reply {
        to_user,
        from_user,
        create_time,
        content,
    })
}

/// Parses a safe-mode passive reply (the simulator's / tests' view of our answer).
pub fn parse_encrypted_reply(xml: &str) -> Result<EncryptedReply, XmlError> {
    let mut v = scan(xml, &["Encrypt", "MsgSignature", "TimeStamp", "Nonce"])?;
    Ok(EncryptedReply {
        encrypt: required(&mut v, 0, "Encrypt")?,
        msg_signature: required(&mut v, 1, "MsgSignature")?,
        timestamp: required(&mut v, 2, "TimeStamp")?,
        nonce: required(&mut v, 3, "Nonce")?,
    })
}

// ---------------------------------------------------------------------------------------------
// Building
// ---------------------------------------------------------------------------------------------

/// Appends `s` as CDATA: `]]>` is split across two sections, `\r` goes out as `&#13;` (a
/// parser would otherwise normalise it away), characters XML cannot carry become U+FFFD.
fn push_cdata(out: &mut String, s: &str) {
    out.push_str("<![CDATA[");
    let mut closing_brackets = 0usize; // trailing `]` in the current section
    for c in s.chars() {
        let c = if is_xml_char(c) { c } else { '\u{FFFD}' };
        match c {
            '>' if closing_brackets >= 2 => {
                out.push_str("]]><![CDATA[>");
                closing_brackets = 0;
            }
            '\r' => {
                out.push_str("]]>&#13;<![CDATA[");
                closing_brackets = 0;
            }
            ']' => {
                out.push(']');
                closing_brackets += 1;
            }
            _ => {
                out.push(c);
                closing_brackets = 0;
            }
        }
    }
    out.push_str("]]>");
}

/// Appends `s` as escaped character data.
fn push_text(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => out.push_str("&#13;"),
            c if is_xml_char(c) => out.push(c),
            _ => out.push('\u{FFFD}'),
        }
    }
}

fn cdata_field(out: &mut String, name: &str, value: &str) {
    out.push('<');
    out.push_str(name);
    out.push('>');
    push_cdata(out, value);
    out.push_str("</");
    out.push_str(name);
    out.push('>');
}

fn text_field(out: &mut String, name: &str, value: &str) {
    out.push('<');
    out.push_str(name);
    out.push('>');
    push_text(out, value);
    out.push_str("</");
    out.push_str(name);
    out.push('>');
}

/// Header shared by messages and replies: ToUserName, FromUserName, CreateTime, MsgType.
fn header(out: &mut String, to_user: &str, from_user: &str, create_time: i64, msg_type: &str) {
    out.push_str("<xml>");
    cdata_field(out, "ToUserName", to_user);
    cdata_field(out, "FromUserName", from_user);
    text_field(out, "CreateTime", &create_time.to_string());
    cdata_field(out, "MsgType", msg_type);
}

/// A passive text reply. `to_user` is the follower's openid, `from_user` our account ID.
pub fn text_reply(to_user: &str, from_user: &str, create_time: i64, content: &str) -> String {
    let mut out = String::with_capacity(200 + to_user.len() + from_user.len() + content.len());
    header(&mut out, to_user, from_user, create_time, "text");
    cdata_field(&mut out, "Content", content);
    out.push_str("</xml>");
    out
}

/// A safe-mode passive reply wrapping an `Encrypt` payload and its `msg_signature`.
pub fn encrypted_reply(encrypt: &str, msg_signature: &str, timestamp: &str, nonce: &str) -> String {
    let mut out = String::with_capacity(150 + encrypt.len());
    out.push_str("<xml>");
    cdata_field(&mut out, "Encrypt", encrypt);
    cdata_field(&mut out, "MsgSignature", msg_signature);
    text_field(&mut out, "TimeStamp", timestamp);
    cdata_field(&mut out, "Nonce", nonce);
    out.push_str("</xml>");
    out
}

/// A text message as WeChat pushes it (for the demo simulator and tests).
pub fn text_message(
    to_user: &str,
    from_user: &str,
    create_time: i64,
    content: &str,
    msg_id: &str,
) -> String {
    let mut out = String::with_capacity(250 + content.len());
    header(&mut out, to_user, from_user, create_time, "text");
    cdata_field(&mut out, "Content", content);
    text_field(&mut out, "MsgId", msg_id);
    out.push_str("</xml>");
    out
}

/// An event push as WeChat sends it (for the demo simulator and tests).
pub fn event_message(
    to_user: &str,
    from_user: &str,
    create_time: i64,
    event: &str,
    event_key: Option<&str>,
) -> String {
    let mut out = String::with_capacity(250);
    header(&mut out, to_user, from_user, create_time, "event");
    cdata_field(&mut out, "Event", event);
    if let Some(key) = event_key {
        cdata_field(&mut out, "EventKey", key);
    }
    out.push_str("</xml>");
    out
}

/// The safe-mode POST body WeChat sends (for the demo simulator and tests).
pub fn envelope(to_user: &str, encrypt: &str) -> String {
    let mut out = String::with_capacity(100 + encrypt.len());
    out.push_str("<xml>");
    cdata_field(&mut out, "ToUserName", to_user);
    cdata_field(&mut out, "Encrypt", encrypt);
    out.push_str("</xml>");
    out
}

#[cfg(test)]
mod tests {
    use super::super::crypto;
    use super::*;
    use std::time::{Duration, Instant};

    /// WeChat's documented text-message example shape.
    const TEXT_MSG: &str = "<xml>\n  <ToUserName><![CDATA[gh_0123456789ab]]></ToUserName>\n  <FromUserName><![CDATA[oUser_openid-123]]></FromUserName>\n  <CreateTime>1348831860</CreateTime>\n  <MsgType><![CDATA[text]]></MsgType>\n  <Content><![CDATA[ 成绩 ]]></Content>\n  <MsgId>1234567890123456</MsgId>\n</xml>";

    #[test]
    fn parses_text_message_with_cdata() {
        let m = parse_incoming(TEXT_MSG).expect("valid message");
        assert_eq!(m.to_user, "gh_0123456789ab");
        assert_eq!(m.from_user, "oUser_openid-123");
        assert_eq!(m.create_time, 1_348_831_860);
        assert_eq!(m.msg_type, "text");
        assert_eq!(
            m.content.as_deref(),
            Some(" 成绩 "),
            "content kept verbatim"
        );
        assert_eq!(m.msg_id.as_deref(), Some("1234567890123456"));
        assert_eq!(m.event, None);
        assert_eq!(m.event_key, None);
        assert_eq!(m.status, None);
    }

    #[test]
    fn parses_plain_text_with_references_and_declaration() {
        let xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n<!-- hi --><xml><ToUserName>gh_x</ToUserName><FromUserName> o1 </FromUserName><CreateTime>42</CreateTime><MsgType>text</MsgType><Content>a&lt;b&amp;c&gt;d&quot;&apos;&#x4E2D;&#25991;\r\n<![CDATA[<raw>]]>!</Content></xml>\n";
        let m = parse_incoming(xml).expect("valid");
        assert_eq!(m.to_user, "gh_x");
        assert_eq!(m.from_user, "o1", "identifiers are trimmed");
        assert_eq!(m.create_time, 42);
        assert_eq!(m.content.as_deref(), Some("a<b&c>d\"'中文\n<raw>!"));
    }

    #[test]
    fn parses_events() {
        let sub = "<xml><ToUserName><![CDATA[gh_a]]></ToUserName><FromUserName><![CDATA[o_b]]></FromUserName><CreateTime>123456789</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[subscribe]]></Event><EventKey><![CDATA[]]></EventKey></xml>";
        let m = parse_incoming(sub).expect("valid");
        assert_eq!(m.msg_type, "event");
        assert_eq!(m.event.as_deref(), Some("subscribe"));
        assert_eq!(m.event_key.as_deref(), Some(""));
        assert_eq!(m.content, None);

        let click = event_message("gh_a", "o_b", 7, "CLICK", Some("GRADES"));
        let m = parse_incoming(&click).expect("valid");
        assert_eq!(m.event.as_deref(), Some("CLICK"));
        assert_eq!(m.event_key.as_deref(), Some("GRADES"));
        assert_eq!(m.create_time, 7);

        let no_key = event_message("gh_a", "o_b", 8, "unsubscribe", None);
        assert_eq!(parse_incoming(&no_key).expect("valid").event_key, None);

        // TEMPLATESENDJOBFINISH uses <MsgID> (capital D) and carries <Status>.
        let tpl = "<xml><ToUserName><![CDATA[gh_a]]></ToUserName><FromUserName><![CDATA[o_b]]></FromUserName><CreateTime>1395658920</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[TEMPLATESENDJOBFINISH]]></Event><MsgID>200163836</MsgID><Status><![CDATA[failed:user block]]></Status></xml>";
        let m = parse_incoming(tpl).expect("valid");
        assert_eq!(m.event.as_deref(), Some("TEMPLATESENDJOBFINISH"));
        assert_eq!(m.msg_id.as_deref(), Some("200163836"));
        assert_eq!(m.status.as_deref(), Some("failed:user block"));
    }

    #[test]
    fn unknown_elements_ignored() {
        let xml = "<xml><ToUserName>gh</ToUserName><FromUserName>o</FromUserName><CreateTime>1</CreateTime><MsgType>event</MsgType><Event>scancode_push</Event><EventKey>k</EventKey><ScanCodeInfo><ScanType>qrcode</ScanType><ScanResult>1</ScanResult><Content>not this one</Content></ScanCodeInfo><Extra a=\"1\"/><Other>x</Other></xml>";
        let m = parse_incoming(xml).expect("valid");
        assert_eq!(m.event.as_deref(), Some("scancode_push"));
        assert_eq!(
            m.content, None,
            "nested <Content> is not the top-level field"
        );
    }

    #[test]
    fn missing_and_bad_fields_reported() {
        let no_from = "<xml><ToUserName>gh</ToUserName><CreateTime>1</CreateTime><MsgType>text</MsgType></xml>";
        let err = parse_incoming(no_from).expect_err("missing field");
        assert_eq!(err, XmlError::Missing("FromUserName"));
        assert_eq!(err.to_string(), "missing <FromUserName>");

        let empty_from = "<xml><ToUserName>gh</ToUserName><FromUserName><![CDATA[ ]]></FromUserName><CreateTime>1</CreateTime><MsgType>text</MsgType></xml>";
        assert_eq!(
            parse_incoming(empty_from),
            Err(XmlError::Empty("FromUserName"))
        );
        let self_closed = "<xml><ToUserName>gh</ToUserName><FromUserName/><CreateTime>1</CreateTime><MsgType>text</MsgType></xml>";
        assert_eq!(
            parse_incoming(self_closed),
            Err(XmlError::Empty("FromUserName"))
        );

        let bad_time = "<xml><ToUserName>gh</ToUserName><FromUserName>o</FromUserName><CreateTime>soon</CreateTime><MsgType>text</MsgType></xml>";
        let err = parse_incoming(bad_time).expect_err("bad integer");
        assert!(matches!(
            err,
            XmlError::BadInteger {
                field: "CreateTime",
                ..
            }
        ));
        assert!(err.to_string().contains("<CreateTime> is not an integer"));

        let dup = "<xml><ToUserName>gh</ToUserName><FromUserName>o</FromUserName><FromUserName>p</FromUserName><CreateTime>1</CreateTime><MsgType>text</MsgType></xml>";
        assert_eq!(
            parse_incoming(dup),
            Err(XmlError::Duplicate("FromUserName"))
        );
        let dup_id = "<xml><ToUserName>gh</ToUserName><FromUserName>o</FromUserName><CreateTime>1</CreateTime><MsgType>text</MsgType><MsgId>1</MsgId><MsgID>2</MsgID></xml>";
        assert_eq!(parse_incoming(dup_id), Err(XmlError::Duplicate("MsgId")));

        let nested = "<xml><ToUserName>gh</ToUserName><FromUserName>o<b>x</b></FromUserName><CreateTime>1</CreateTime><MsgType>text</MsgType></xml>";
        assert_eq!(
            parse_incoming(nested),
            Err(XmlError::NotText("FromUserName"))
        );

        let wrong_root = "<message><ToUserName>gh</ToUserName></message>";
        let err = parse_incoming(wrong_root).expect_err("wrong root");
        assert_eq!(err, XmlError::WrongRoot("message".into()));
        assert_eq!(
            err.to_string(),
            "root element must be <xml>, found <message>"
        );
    }

    const XXE: &str = "<?xml version=\"1.0\"?>\n<!DOCTYPE xml [\n  <!ENTITY xxe SYSTEM \"file:///etc/passwd\">\n]>\n<xml><ToUserName>gh</ToUserName><FromUserName>&xxe;</FromUserName><CreateTime>1</CreateTime><MsgType>text</MsgType><Content>&xxe;</Content></xml>";

    const BILLION_LAUGHS: &str = "<?xml version=\"1.0\"?>\n<!DOCTYPE lolz [\n <!ENTITY lol \"lol\">\n <!ELEMENT lolz (#PCDATA)>\n <!ENTITY lol1 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">\n <!ENTITY lol2 \"&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;\">\n <!ENTITY lol3 \"&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;\">\n <!ENTITY lol4 \"&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;\">\n <!ENTITY lol5 \"&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;\">\n <!ENTITY lol6 \"&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;\">\n <!ENTITY lol7 \"&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;\">\n <!ENTITY lol8 \"&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;\">\n <!ENTITY lol9 \"&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;\">\n]>\n<xml><ToUserName>gh</ToUserName><FromUserName>o</FromUserName><CreateTime>1</CreateTime><MsgType>text</MsgType><Content>&lol9;</Content></xml>";

    #[test]
    fn xxe_rejected() {
        for parse in [
            |x: &str| parse_incoming(x).map(|_| ()),
            |x: &str| parse_envelope(x).map(|_| ()),
            |x: &str| parse_reply(x).map(|_| ()),
            |x: &str| parse_encrypted_reply(x).map(|_| ()),
        ] {
            let err = parse(XXE).expect_err("DOCTYPE must be refused");
            assert_eq!(err, XmlError::DoctypeNotAllowed);
            assert_eq!(err.to_string(), "DOCTYPE not allowed");
        }
        // Without a DTD, an undeclared entity is refused by name, never looked up.
        let no_dtd = XXE.split_once("]>\n").map(|(_, rest)| rest).expect("split");
        let err = parse_incoming(no_dtd).expect_err("entity must be refused");
        assert_eq!(err, XmlError::EntityNotAllowed("xxe".into()));
        assert_eq!(err.to_string(), "entity reference &xxe; not allowed");
        // Inside the envelope too (Encrypt is what we pass on to the cipher).
        let env = "<xml><ToUserName>gh</ToUserName><Encrypt>abc&xxe;</Encrypt></xml>";
        assert_eq!(
            parse_envelope(env),
            Err(XmlError::EntityNotAllowed("xxe".into()))
        );
        // A DOCTYPE without internal subset is refused as well.
        let bare =
            "<!DOCTYPE xml SYSTEM \"http://127.0.0.1:1/evil.dtd\"><xml><Encrypt>a</Encrypt></xml>";
        assert_eq!(parse_envelope(bare), Err(XmlError::DoctypeNotAllowed));
    }

    #[test]
    fn billion_laughs_rejected_quickly() {
        let start = Instant::now();
        assert_eq!(
            parse_incoming(BILLION_LAUGHS),
            Err(XmlError::DoctypeNotAllowed)
        );
        // Without the DTD: the reference is refused, nothing expanded.
        let body = BILLION_LAUGHS
            .split_once("]>\n")
            .map(|(_, rest)| rest)
            .expect("split");
        assert_eq!(
            parse_incoming(body),
            Err(XmlError::EntityNotAllowed("lol9".into()))
        );
        // A body stuffed with references up to the size limit is refused at the first one.
        let many = format!(
            "<xml><Content>{}</Content></xml>",
            "&lol9;".repeat((MAX_XML_BYTES - 40) / 6)
        );
        assert!(many.len() <= MAX_XML_BYTES);
        assert_eq!(
            parse_incoming(&many),
            Err(XmlError::EntityNotAllowed("lol9".into()))
        );
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "took {:?}",
            start.elapsed()
        );
    }

    #[test]
    fn bad_character_references_rejected() {
        for (r, shown) in [
            ("&#0;", "#0"),
            ("&#x1;", "#x1"),
            ("&#xFFFE;", "#xFFFE"),
            ("&#xD800;", "#xD800"),
            ("&#x110000;", "#x110000"),
            ("&#12a;", "#12a"),
            ("&#;", "#"),
        ] {
            let xml = format!("<xml><Encrypt>a{r}</Encrypt></xml>");
            assert_eq!(
                parse_envelope(&xml),
                Err(XmlError::BadCharRef(shown.into())),
                "{r}"
            );
        }
        let ok = parse_envelope("<xml><Encrypt>&#9;a&#x2F;b&#65;&#x1F600;</Encrypt></xml>")
            .expect("valid refs");
        assert_eq!(ok.encrypt, "a/bA😀");
    }

    #[test]
    fn malformed_xml_rejected() {
        let cases = [
            "<xml><Encrypt>abc</Encrypt>",                    // unclosed root
            "<xml><Encrypt>abc</Encrypt></xml></xml>",        // stray end tag
            "<xml><Encrypt>abc</Encrypt2></xml>",             // mismatched end tag
            "<xml><Encrypt>a & b</Encrypt></xml>",            // bare ampersand
            "<xml><Encrypt>a < b</Encrypt></xml>",            // bare less-than
            "<xml><Encrypt>abc</Encrypt></xml><xml></xml>",   // two roots
            "junk<xml><Encrypt>abc</Encrypt></xml>",          // text before root
            "<xml><Encrypt>abc</Encrypt></xml>junk",          // text after root
            "<xml><Encrypt><![CDATA[abc</Encrypt></xml>",     // unterminated CDATA
            "<xml><!-- a -- b --><Encrypt>x</Encrypt></xml>", // bad comment
            "<xml attr=\"1><Encrypt>x</Encrypt></xml>",       // unterminated attribute
        ];
        for xml in cases {
            match parse_envelope(xml) {
                Err(XmlError::Malformed { position, message }) => {
                    assert!(position <= xml.len() as u64, "{xml}: {position}");
                    assert!(!message.is_empty());
                }
                other => panic!("{xml:?} gave {other:?}"),
            }
        }
        let err = parse_envelope("<xml><Encrypt>abc</Encrypt2></xml>").expect_err("bad");
        assert!(
            err.to_string().starts_with("not well-formed at byte "),
            "{err}"
        );
        assert_eq!(parse_envelope(""), Err(XmlError::NoRoot));
        assert_eq!(parse_envelope("   \n"), Err(XmlError::NoRoot));
        assert_eq!(
            parse_envelope("<?xml version=\"1.0\"?>"),
            Err(XmlError::NoRoot)
        );
        assert_eq!(parse_envelope("<xml/>"), Err(XmlError::Missing("Encrypt")));
    }

    #[test]
    fn depth_and_size_bounded() {
        let deep = format!(
            "<xml><Encrypt>a</Encrypt>{}{}</xml>",
            "<a>".repeat(MAX_DEPTH + 5),
            "</a>".repeat(MAX_DEPTH + 5)
        );
        let err = parse_envelope(&deep).expect_err("too deep");
        assert_eq!(err, XmlError::TooDeep { limit: MAX_DEPTH });
        // Depth just at the limit is fine.
        let ok_deep = format!(
            "<xml><Encrypt>a</Encrypt>{}{}</xml>",
            "<a>".repeat(MAX_DEPTH - 1),
            "</a>".repeat(MAX_DEPTH - 1)
        );
        assert!(parse_envelope(&ok_deep).is_ok());

        let big = format!(
            "<xml><Encrypt>{}</Encrypt></xml>",
            "A".repeat(MAX_XML_BYTES)
        );
        let err = parse_envelope(&big).expect_err("too large");
        assert!(matches!(
            err,
            XmlError::TooLarge {
                limit: MAX_XML_BYTES,
                ..
            }
        ));
        assert!(err.to_string().contains("limit"));
    }

    #[test]
    fn long_values_are_clipped_in_errors() {
        let name = "n".repeat(10_000);
        let xml = format!("<xml><Encrypt>&{name};</Encrypt></xml>");
        let err = parse_envelope(&xml).expect_err("entity");
        assert!(err.to_string().len() < 200, "{}", err.to_string().len());
    }

    #[test]
    fn tricky_content_round_trips_through_text_reply() {
        let cases = [
            "",
            "]]>",
            "a]]>b",
            "]]]]>>]]>",
            "]]",
            "]",
            "x]",
            "]>",
            "<![CDATA[inner]]>",
            "<b>bold</b> & \"quotes\" 'apos' &amp; &lt;",
            "line1\nline2\r\nline3\rend\r",
            "  leading and trailing spaces  ",
            "\t tab",
            "成绩：高等数学 95 😀",
            "</Content></xml><xml>",
        ];
        for content in cases {
            let xml = text_reply("oStudent", "gh_account", 1_700_000_000, content);
            let r = parse_reply(&xml).unwrap_or_else(|e| panic!("{content:?}: {e} in {xml}"));
            assert_eq!(r.content, content, "xml: {xml}");
            assert_eq!(r.to_user, "oStudent");
            assert_eq!(r.from_user, "gh_account");
            assert_eq!(r.create_time, 1_700_000_000);
        }
    }

    #[test]
    fn random_content_round_trips() {
        // Deterministic xorshift over an alphabet of XML-significant characters.
        let alphabet = [
            ']', ']', '>', '<', '&', '[', '!', 'C', 'D', '\r', '\n', ' ', ';', '#', '成', 'a',
        ];
        let mut state = 0x1234_5678_9abc_def1u64;
        for _ in 0..500 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let len = (state % 40) as usize;
            let mut s = String::new();
            for _ in 0..len {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                s.push(alphabet[(state % alphabet.len() as u64) as usize]);
            }
            let xml = text_reply("o", "gh", 1, &s);
            assert_eq!(parse_reply(&xml).map(|r| r.content), Ok(s.clone()), "{xml}");
            let msg = text_message("gh", "o", 2, &s, "99");
            assert_eq!(
                parse_incoming(&msg).map(|m| m.content),
                Ok(Some(s.clone())),
                "{msg}"
            );
        }
    }

    #[test]
    fn unrepresentable_characters_replaced() {
        let xml = text_reply("o", "gh", 1, "a\u{0}b\u{1b}c\u{FFFF}d");
        let r = parse_reply(&xml).expect("still well-formed");
        assert_eq!(r.content, "a\u{FFFD}b\u{FFFD}c\u{FFFD}d");
    }

    #[test]
    fn text_reply_exact_shape() {
        assert_eq!(
            text_reply("o1", "gh_2", 3, "a]]>b"),
            "<xml><ToUserName><![CDATA[o1]]></ToUserName><FromUserName><![CDATA[gh_2]]></FromUserName><CreateTime>3</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[a]]]]><![CDATA[>b]]></Content></xml>"
        );
    }

    #[test]
    fn parse_reply_requires_text_type() {
        let xml = "<xml><ToUserName>o</ToUserName><FromUserName>gh</FromUserName><CreateTime>1</CreateTime><MsgType>news</MsgType><Content>x</Content></xml>";
        let err = parse_reply(xml).expect_err("not text");
        assert!(matches!(
            err,
            XmlError::UnexpectedValue {
                field: "MsgType",
                ..
            }
        ));
        let no_content = "<xml><ToUserName>o</ToUserName><FromUserName>gh</FromUserName><CreateTime>1</CreateTime><MsgType>text</MsgType></xml>";
        assert_eq!(parse_reply(no_content), Err(XmlError::Missing("Content")));
    }

    #[test]
    fn simulator_builders_round_trip() {
        let msg = text_message(
            "gh_acc",
            "oUser",
            1_700_000_001,
            "查成绩 <&>",
            "6054768590064713728",
        );
        let m = parse_incoming(&msg).expect("valid");
        assert_eq!(
            m,
            Incoming {
                to_user: "gh_acc".into(),
                from_user: "oUser".into(),
                create_time: 1_700_000_001,
                msg_type: "text".into(),
                content: Some("查成绩 <&>".into()),
                msg_id: Some("6054768590064713728".into()),
                event: None,
                event_key: None,
                status: None,
            }
        );

        let env = envelope("gh_acc", "QUJD+/==");
        assert_eq!(
            parse_envelope(&env),
            Ok(Envelope {
                to_user: Some("gh_acc".into()),
                encrypt: "QUJD+/==".into()
            })
        );

        let reply = encrypted_reply("QUJD+/==", "0123abcd", "1409304348", "x<y");
        assert_eq!(
            parse_encrypted_reply(&reply),
            Ok(EncryptedReply {
                encrypt: "QUJD+/==".into(),
                msg_signature: "0123abcd".into(),
                timestamp: "1409304348".into(),
                nonce: "x<y".into(),
            })
        );
        assert!(reply.contains("<TimeStamp>1409304348</TimeStamp>"));
        assert_eq!(
            parse_encrypted_reply("<xml><Encrypt>a</Encrypt></xml>"),
            Err(XmlError::Missing("MsgSignature"))
        );
    }

    #[test]
    fn envelope_without_to_user_and_with_whitespace() {
        // EasyWeChat `tests/Kernel/EncryptorTest.php` envelope layout (indented, newlines).
        let xml = "<xml>\n    <Encrypt><![CDATA[QUJD]]></Encrypt>\n</xml>\n";
        assert_eq!(
            parse_envelope(xml),
            Ok(Envelope {
                to_user: None,
                encrypt: "QUJD".into()
            })
        );
        assert_eq!(
            parse_envelope("<xml><ToUserName>gh</ToUserName><Encrypt></Encrypt></xml>"),
            Err(XmlError::Empty("Encrypt"))
        );
    }

    /// Full safe-mode flow on the public EasyWeChat vector (`tests/Kernel/EncryptorTest.php`):
    /// envelope → msg_signature → decrypt → parse_incoming.
    #[test]
    fn safe_mode_flow_on_easywechat_vector() {
        let body = "<xml>\n    <ToUserName><![CDATA[asdasdasd]]></ToUserName>\n    <Encrypt><![CDATA[rTNFcsut4LfGuAFKEUVVpwcaCOTJzOd9twZdIW910jb3k+iicx2uvhttIZ3Qg9Qgty3BEF2xbOrz6boTfb30dMomcgrkTqdFPwnhqbk+kIQ7rZiwny9D7NUrTgA5kpX3KsZvrXzUZyP2x9YOlxbgm572lmxKvM7HAQQhIQ/p6HBmoY30bGXFK0BtIu1pW9TjhOYrLQoU18nWYjWqDA1ynkmOytpv7QRI1P1+0NoxL0q2zO1DgeSvnE8CZGo/o5Ap/WHK5W2RAsinpzN4/LjPnmB6U01I5XCoJoC0GK/yMZycd2Oh8Nq6+wBkC1U85oy0ktOY4nLvsQMLrourmMGdZHuTbqpeJ8Ao/5PRYJ+WBvRUwPfGKBL2+2IKZF49vAJqkcGWSHGE76ZN2erXeuNazf/o9o3lIE3q739o4c8t9QGPe31GT2Go/rOz1BsrASwvauNulCh+++yz+CQzBIuikA==]]></Encrypt>\n</xml>\n";
        let env = parse_envelope(body).expect("envelope");
        assert_eq!(env.to_user.as_deref(), Some("asdasdasd"));
        assert!(crypto::verify_msg_signature(
            "4f3ad57b6989f09f4eb392acce4f9e93942ed890",
            "pamtest",
            "1458300676",
            "260774613",
            &env.encrypt
        ));
        let cipher = crypto::MessageCipher::new(
            "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
            "wxb11529c136998cb6",
        )
        .expect("key");
        let inner = cipher.decrypt(&env.encrypt).expect("decrypts");
        let m = parse_incoming(&inner).expect("inner XML");
        assert_eq!(m.to_user, "asdasdasd");
        assert_eq!(m.from_user, "asdasdasdsadasd");
        assert_eq!(m.create_time, 1_234_567_898);
        assert_eq!(m.msg_type, "text");
        assert_eq!(m.content.as_deref(), Some("hello"));
        assert_eq!(m.msg_id.as_deref(), Some("12345"));

        // And back: our encrypted reply verifies and decrypts on the simulator side.
        let reply_xml = text_reply(&m.from_user, &m.to_user, 1_458_300_700, "你好 ]]> <&>");
        let enc = cipher.encrypt(&reply_xml, *b"0123456789abcdef");
        let sig = crypto::msg_signature("pamtest", "1458300700", "nonce1", &enc);
        let wire = encrypted_reply(&enc, &sig, "1458300700", "nonce1");
        let back = parse_encrypted_reply(&wire).expect("reply parses");
        assert!(crypto::verify_msg_signature(
            &back.msg_signature,
            "pamtest",
            &back.timestamp,
            &back.nonce,
            &back.encrypt
        ));
        let plain = cipher.decrypt(&back.encrypt).expect("decrypts");
        let r = parse_reply(&plain).expect("reply XML");
        assert_eq!(r.content, "你好 ]]> <&>");
        assert_eq!(r.to_user, "asdasdasdsadasd");
    }
}
