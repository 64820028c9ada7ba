//! What an uploaded file really is, by its content and never its name: an OOXML workbook (ZIP),
//! an OLE2 compound file (an old binary .xls, or a password-protected XLSX), an HTML page with
//! a `<table>` (what older 正方 and 青果 save as `.xls`, often GB2312/GBK with a `<meta charset>`),
//! or delimited text. Also reads such an HTML table into rows of text cells.

use encoding_rs::{Encoding, GB18030, UTF_8};

use super::layout::{looks_like_header, HEADER_SEARCH_ROWS};

/// The container of an uploaded file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Container {
    /// A ZIP archive: XLSX (or another OOXML file).
    Ooxml,
    /// An OLE2 compound file: an old binary .xls, or an encrypted XLSX.
    Ole2,
    /// An HTML page holding a `<table>`.
    Html,
    /// Anything else: read as delimited text.
    Text,
}

const OLE2_MAGIC: [u8; 8] = [0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1];

/// How far into a file the HTML test looks for a `<table`.
const HTML_PROBE: usize = 64 * 1024;

/// Tells the container from the first bytes.
pub fn container(bytes: &[u8]) -> Container {
    if bytes.starts_with(b"PK\x03\x04") {
        return Container::Ooxml;
    }
    if bytes.starts_with(&OLE2_MAGIC) {
        return Container::Ole2;
    }
    let body = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let start = body
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(body.len());
    if body.get(start) == Some(&b'<') {
        let probe = body.get(..HTML_PROBE.min(body.len())).unwrap_or(body);
        if find_ci(probe, b"<table", 0).is_some() {
            return Container::Html;
        }
    }
    Container::Text
}

/// An HTML table read into rows: the rows of the first table that has a header row among its
/// first rows (else of the first table), each cell's text with tags dropped, entities decoded
/// and white space collapsed; a `colspan` repeats empty cells so columns stay aligned.
pub struct HtmlTable {
    /// The encoding the page was decoded with, for the preview.
    pub encoding: &'static str,
    pub rows: Vec<Vec<String>>,
}

/// Reads the table of an HTML page (see [`HtmlTable`]).
pub fn html_table(bytes: &[u8]) -> Result<HtmlTable, String> {
    let (text, encoding) = decode_html(bytes);
    let lower = text.to_ascii_lowercase();
    let mut tables: Vec<Vec<Vec<String>>> = Vec::new();
    let mut at = 0;
    while let Some(open) = find_ci(lower.as_bytes(), b"<table", at) {
        let end = find_ci(lower.as_bytes(), b"</table", open).unwrap_or(lower.len());
        tables.push(table_rows(&text, &lower, open, end));
        at = end.saturating_add(1);
        if at >= lower.len() {
            break;
        }
    }
    let pick = tables
        .iter()
        .position(|t| {
            t.iter()
                .take(HEADER_SEARCH_ROWS)
                .any(|r| looks_like_header(r.iter().map(String::as_str)))
        })
        .unwrap_or(0);
    let rows = if pick < tables.len() {
        tables.swap_remove(pick)
    } else {
        Vec::new()
    };
    if rows.is_empty() {
        return Err("网页格式的表格文件中没有找到表格内容".to_string());
    }
    Ok(HtmlTable { encoding, rows })
}

/// Decodes an HTML page: a BOM, else the `charset` its `<meta>` names, else UTF-8 when valid,
/// else GB18030 (a superset of GBK and GB2312).
fn decode_html(bytes: &[u8]) -> (String, &'static str) {
    if let Some((enc, _)) = Encoding::for_bom(bytes) {
        let (text, _, _) = enc.decode(bytes);
        return (text.into_owned(), enc.name());
    }
    let head = bytes.get(..4096.min(bytes.len())).unwrap_or(bytes);
    let declared = find_ci(head, b"charset=", 0).and_then(|i| {
        let rest = head.get(i + 8..)?;
        let rest = rest.strip_prefix(b"\"").unwrap_or(rest);
        let rest = rest.strip_prefix(b"'").unwrap_or(rest);
        let len = rest
            .iter()
            .position(|b| !(b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_'))
            .unwrap_or(rest.len());
        Encoding::for_label(rest.get(..len)?)
    });
    // GB2312 and GBK pages are decoded as GB18030, their superset.
    let enc = match declared {
        Some(e) if e == encoding_rs::GBK => GB18030,
        Some(e) => e,
        None if std::str::from_utf8(bytes).is_ok() => UTF_8,
        None => GB18030,
    };
    let (text, _, _) = enc.decode(bytes);
    let label = if enc == GB18030 {
        "GBK/GB18030"
    } else {
        enc.name()
    };
    (text.into_owned(), label)
}

/// The rows of one `<table>` between byte offsets `open` and `end` of `text` (`lower` is its
/// ASCII-lower-cased copy, so offsets agree). Every search stops at the nearest tag that ends
/// what it looks for, so a page is read in one pass however broken its markup.
fn table_rows(text: &str, lower: &str, open: usize, end: usize) -> Vec<Vec<String>> {
    let lb = lower.as_bytes();
    let mut rows = Vec::new();
    let mut at = open;
    while let Some(tr) = next_tag(lb, at, end, &[b"<tr"]) {
        let row_end = next_tag(lb, tr + 3, end, &[b"</tr", b"<tr"]).unwrap_or(end);
        let mut cells = Vec::new();
        let mut c = tr + 3;
        while let Some(td) = next_tag(lb, c, row_end, &[b"<td", b"<th"]) {
            let Some(tag_end) = find_byte(lb, b'>', td).filter(|&i| i < row_end) else {
                break;
            };
            let cell_end = next_tag(lb, tag_end, row_end, &[b"</td", b"</th", b"<td", b"<th"])
                .unwrap_or(row_end);
            let span = colspan(lower.get(td..tag_end).unwrap_or(""));
            cells.push(cell_text(text.get(tag_end + 1..cell_end).unwrap_or("")));
            for _ in 1..span {
                cells.push(String::new());
            }
            c = cell_end.max(td + 3);
        }
        rows.push(cells);
        at = row_end.max(tr + 3);
    }
    rows
}

/// The first tag at or after `from` and before `to` whose name is one of `names` (given with
/// their `<` or `</`, lower case), not merely starting with it (`<th` is not `<thead`).
fn next_tag(lb: &[u8], from: usize, to: usize, names: &[&[u8]]) -> Option<usize> {
    let mut i = from;
    while i < to {
        let k = find_byte(lb, b'<', i).filter(|&k| k < to)?;
        let hit = names.iter().any(|n| {
            lb.get(k..k + n.len()) == Some(n)
                && !lb
                    .get(k + n.len())
                    .is_some_and(|b| b.is_ascii_alphanumeric())
        });
        if hit {
            return Some(k);
        }
        i = k + 1;
    }
    None
}

/// A cell's `colspan`, at most 64.
fn colspan(tag: &str) -> usize {
    let Some(i) = tag.find("colspan") else {
        return 1;
    };
    let digits: String = tag
        .get(i + 7..)
        .unwrap_or("")
        .chars()
        .skip_while(|c| matches!(c, '=' | '"' | '\'' | ' '))
        .take_while(char::is_ascii_digit)
        .take(3)
        .collect();
    digits.parse::<usize>().map_or(1, |n| n.clamp(1, 64))
}

/// A cell's text: tags dropped (`<br>` as a space), entities decoded, white space collapsed.
fn cell_text(html: &str) -> String {
    let mut raw = String::with_capacity(html.len());
    let mut in_tag = false;
    for ch in html.chars() {
        match ch {
            '<' => {
                in_tag = true;
                raw.push(' ');
            }
            '>' if in_tag => in_tag = false,
            _ if in_tag => {}
            c => raw.push(c),
        }
    }
    let decoded = decode_entities(&raw);
    let mut out = String::with_capacity(decoded.len());
    for word in decoded.split(|c: char| c.is_whitespace() || c == '\u{a0}') {
        if word.is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

fn decode_entities(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(rest.get(..i).unwrap_or(""));
        let after = rest.get(i + 1..).unwrap_or("");
        let semi = after.find(';').filter(|&k| k <= 10);
        let decoded = semi.and_then(|k| {
            let name = after.get(..k)?;
            let ch = match name {
                "nbsp" => ' ',
                "amp" => '&',
                "lt" => '<',
                "gt" => '>',
                "quot" => '"',
                "apos" => '\'',
                _ => {
                    let num = name.strip_prefix('#')?;
                    let code = match num.strip_prefix(['x', 'X']) {
                        Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                        None => num.parse().ok()?,
                    };
                    char::from_u32(code)?
                }
            };
            Some((ch, k))
        });
        match decoded {
            Some((ch, k)) => {
                out.push(ch);
                rest = after.get(k + 1..).unwrap_or("");
            }
            None => {
                out.push('&');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Position of `needle` (lower case ASCII) in `hay` at or after `from`, ignoring ASCII case.
fn find_ci(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    let tail = hay.get(from..)?;
    tail.windows(needle.len())
        .position(|w| w.eq_ignore_ascii_case(needle))
        .map(|i| from + i)
}

fn find_byte(hay: &[u8], b: u8, from: usize) -> Option<usize> {
    hay.get(from..)?
        .iter()
        .position(|&x| x == b)
        .map(|i| from + i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn containers_by_content_not_name() {
        assert_eq!(container(b"PK\x03\x04rest"), Container::Ooxml);
        let mut ole = OLE2_MAGIC.to_vec();
        ole.extend_from_slice(&[0; 16]);
        assert_eq!(container(&ole), Container::Ole2);
        assert_eq!(
            container(b"\xEF\xBB\xBF  <html><body><TABLE><tr><td>1</td></tr></TABLE>"),
            Container::Html
        );
        assert_eq!(container(b"<table border=1><tr>"), Container::Html);
        assert_eq!(container("学号,姓名\n1,<b>\n".as_bytes()), Container::Text);
        assert_eq!(container(b"<html>no table here</html>"), Container::Text);
        assert_eq!(container(b""), Container::Text);
    }

    #[test]
    fn gbk_html_table_with_title_table_entities_and_colspan() {
        let page = "<html><head><meta http-equiv=Content-Type content=\"text/html; charset=gb2312\"></head><body>\
<table><tr><td colspan=3>学生成绩表</td></tr></table>\
<TABLE border=1>\r\n<TR><TD>学号</TD><TD>姓名</TD><TH>课程名称</TH></TR>\r\n\
<tr><td x:str>0021001</td><td>张&nbsp;三</td><td>高等<br>数学 &amp; 实验&#65;&#x42;</td></tr>\
<tr><td colspan=\"2\">合计</td><td>&bogus; &</td></tr><tbody><tr><td>1<td>2</tr></tbody></TABLE></body></html>";
        let (gbk, _, _) = encoding_rs::GBK.encode(page);
        assert_eq!(container(&gbk), Container::Html);
        let t = html_table(&gbk).unwrap();
        assert_eq!(t.encoding, "GBK/GB18030");
        assert_eq!(
            t.rows,
            vec![
                vec!["学号", "姓名", "课程名称"],
                vec!["0021001", "张 三", "高等 数学 & 实验AB"],
                vec!["合计", "", "&bogus; &"],
                vec!["1", "2"],
            ]
        );
        // UTF-8 without a charset.
        let t = html_table("<table><tr><td>学号</td></tr></table>".as_bytes()).unwrap();
        assert_eq!(t.encoding, "UTF-8");
        assert_eq!(t.rows, vec![vec!["学号"]]);
    }

    #[test]
    fn broken_html_is_read_as_far_as_it_goes_or_refused() {
        // Unclosed tags: the cells still end at the next cell or row.
        let t = html_table(b"<table><tr><td>a<td>b<tr><td>c").unwrap();
        assert_eq!(t.rows, vec![vec!["a", "b"], vec!["c"]]);
        assert!(html_table(b"<table></table>").is_err());
        assert!(html_table(b"<table><tr><td").is_ok_and(|t| t.rows == vec![Vec::<String>::new()]));
        assert_eq!(colspan("<td colspan=99999>"), 64);
    }
}
