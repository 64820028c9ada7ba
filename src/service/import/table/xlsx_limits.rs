//! The XLSX package checked before calamine reads it: what the zip may inflate to and what its
//! XML may declare, so that a small hostile upload cannot make the reader allocate gigabytes.
//!
//! calamine (0.38) trusts these numbers from the file and allocates from them:
//! - `<sst uniqueCount>` in the shared strings: `Vec::reserve(uniqueCount)` before any string is
//!   read (1e11 aborts the process, 2^64−1 panics with a capacity overflow);
//! - the positions of the cells in `<sheetData>` (`<c r>`, or implied by `<row r>` and the cells
//!   before it): calamine's `worksheet_range` makes the sheet one dense grid spanning the first
//!   to the last cell, so `A1` plus `XFD1048576` asks for 17 billion cells. The import no longer
//!   asks for that grid (it reads cell by cell, see `xlsx`), so the span no longer costs memory;
//!   [`XlsxLimits::max_cells`] is kept as the bound on it all the same: every row the table
//!   reader hands out is as wide as the used range (as the grid's were), so rows × width is the
//!   work of whoever copies rows, and a sheet spanning billions of cells is not a real export.
//!   A dense sheet whose cells take b bytes of XML each passes while its XML stays under b/64 of
//!   `max_inflated_bytes` (about half of it for the usual 30–45-byte cells: a 20 MB export that
//!   inflates tenfold is well inside);
//! - `<dimension ref>`: reserved from only below 100,000 cells, so a large range is let through,
//!   but parsed with unchecked arithmetic, so a reversed range or one outside the grid is refused.
//!
//! It never reads `count` of `<sst>` or any other count. Cell references are parsed with `u32`
//! arithmetic that overflows on long ones, so a reference outside Excel's grid (beyond column
//! XFD or row 1048576) is refused here too. The zip itself is checked from its central directory
//! (entry count, declared sizes, declared ratio), then every entry is inflated once through a
//! counter that stops at the limit while the XML is scanned with the same quick-xml settings
//! calamine uses, so both see the same elements and attributes.

use std::io::{BufReader, Cursor, Read};

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader as XmlReader;

use super::TableError;

/// Excel's grid: 1,048,576 rows by 16,384 columns (XFD).
const EXCEL_ROWS: u64 = 1_048_576;
const EXCEL_COLUMNS: u64 = 16_384;
/// Deflate cannot do better than about 1032:1; a larger declared ratio is a lie.
const MAX_RATIO: u64 = 1_100;
/// A declared shared-string count up to this is harmless (a few MB reserved) even if wrong.
const HARMLESS_STRING_COUNT: u64 = 100_000;

/// How much an XLSX upload may inflate to and how large a grid it may span.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct XlsxLimits {
    /// All entries together, inflated.
    pub max_inflated_bytes: u64,
    /// Cells in the grid from a sheet's first to its last cell (rows × columns). No longer a
    /// memory bound (XLSX is read cell by cell); kept to refuse sheets of absurd span.
    pub max_cells: u64,
    /// Entries in the zip.
    pub max_entries: usize,
}

impl XlsxLimits {
    /// Limits for uploads of at most `max_upload_bytes`: 20× that inflated (at least 64 MiB),
    /// and a grid of one cell per 64 inflated bytes (at least a million cells) — the size calamine's
    /// dense grid cost a cell when sheets were read whole; kept as the span bound.
    pub fn for_upload(max_upload_bytes: u64) -> XlsxLimits {
        let max_inflated_bytes = max_upload_bytes.saturating_mul(20).max(64 << 20);
        XlsxLimits {
            max_inflated_bytes,
            max_cells: (max_inflated_bytes / 64).max(1_000_000),
            max_entries: 10_000,
        }
    }
}

fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / (1024.0 * 1024.0))
}

fn refused(message: String) -> TableError {
    TableError::new(message)
}

/// Checks `bytes` (a zip) against `limits` without keeping more than one XML event in memory.
pub(super) fn check(bytes: &[u8], limits: &XlsxLimits) -> Result<(), TableError> {
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes)).map_err(|e| {
        TableError::new(format!(
            "无法读取XLSX文件（文件可能已损坏，或不是Excel工作簿）：{e}"
        ))
    })?;
    if zip.len() > limits.max_entries {
        return Err(refused(format!(
            "XLSX文件声明了 {} 个压缩条目，超出上限 {} 个",
            zip.len(),
            limits.max_entries
        )));
    }
    let mut declared_total: u64 = 0;
    for i in 0..zip.len() {
        let entry = zip.by_index_raw(i).map_err(unreadable)?;
        let name = shown_name(&entry.name().map_err(unreadable)?);
        let size = entry.size();
        declared_total = declared_total.saturating_add(size);
        if size > limits.max_inflated_bytes || declared_total > limits.max_inflated_bytes {
            return Err(refused(format!(
                "XLSX文件声明了解压后 {} 的内容（{name}），超出上限 {}",
                mb(declared_total),
                mb(limits.max_inflated_bytes)
            )));
        }
        let packed = entry.compressed_size().max(1);
        if size > 1 << 20 && size / packed > MAX_RATIO {
            return Err(refused(format!(
                "XLSX文件声明了 {}:1 的压缩比（{name}），超出上限 {MAX_RATIO}:1，文件可能是压缩炸弹",
                size / packed
            )));
        }
    }
    let mut budget = limits.max_inflated_bytes;
    for i in 0..zip.len() {
        let entry = zip.by_index(i).map_err(unreadable)?;
        let name = shown_name(&entry.name().map_err(unreadable)?);
        let counted = Counted {
            inner: entry,
            budget: &mut budget,
            over: false,
        };
        let mut scan = PartScan::new(name, limits);
        let over = scan.run(counted)?;
        if over {
            return Err(refused(format!(
                "XLSX文件解压后超过 {}（{}），超出上限",
                mb(limits.max_inflated_bytes),
                scan.name
            )));
        }
    }
    Ok(())
}

fn unreadable(e: zip::result::ZipError) -> TableError {
    TableError::new(format!(
        "无法读取XLSX文件（文件可能已损坏，或不是Excel工作簿）：{e}"
    ))
}

/// An entry name for a message: at most 60 characters.
fn shown_name(name: &str) -> String {
    let mut s: String = name.chars().take(60).collect();
    if s.len() < name.len() {
        s.push('…');
    }
    s
}

/// A reader that stops (reports end of data) once the shared budget is spent.
struct Counted<'b, R> {
    inner: R,
    budget: &'b mut u64,
    over: bool,
}

impl<R: Read> Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if *self.budget == 0 {
            // One more byte tells whether the entry really goes on.
            let mut probe = [0u8; 1];
            if self.inner.read(&mut probe)? > 0 {
                self.over = true;
            }
            return Ok(0);
        }
        let room = usize::try_from(*self.budget).unwrap_or(usize::MAX);
        let take = buf.len().min(room);
        let n = self.inner.read(&mut buf[..take])?;
        *self.budget -= n as u64;
        Ok(n)
    }
}

/// What one entry's XML declares, read as calamine will read it.
struct PartScan<'l> {
    name: String,
    limits: &'l XlsxLimits,
    in_sheet_data: bool,
    /// calamine's implied position (0-based) for a cell without `r`.
    row_index: u64,
    col_index: u64,
    /// Bounding box of the cells seen: (first row, last row, first column, last column).
    bounds: Option<(u64, u64, u64, u64)>,
    strings: u64,
    unique_count: Option<u64>,
}

impl<'l> PartScan<'l> {
    fn new(name: String, limits: &'l XlsxLimits) -> PartScan<'l> {
        PartScan {
            name,
            limits,
            in_sheet_data: false,
            row_index: 0,
            col_index: 0,
            bounds: None,
            strings: 0,
            unique_count: None,
        }
    }

    /// Reads the entry to its end (or the budget's); returns whether the budget ran out.
    fn run<R: Read>(&mut self, mut counted: Counted<'_, R>) -> Result<bool, TableError> {
        let mut xml = XmlReader::from_reader(BufReader::new(&mut counted));
        let config = xml.config_mut();
        config.check_end_names = false;
        config.trim_text(false);
        config.check_comments = false;
        config.expand_empty_elements = true;
        let mut buf = Vec::with_capacity(1024);
        loop {
            buf.clear();
            match xml.read_event_into(&mut buf) {
                Ok(Event::Start(e)) => self.start(&e)?,
                Ok(Event::End(e)) => match e.local_name().as_ref() {
                    "row" if self.in_sheet_data => {
                        self.row_index += 1;
                        self.col_index = 0;
                    }
                    "sheetData" => self.in_sheet_data = false,
                    _ => {}
                },
                Ok(Event::Eof) => break,
                Ok(_) => {}
                // calamine stops at the same error with the same parser: nothing after it is
                // read. Drain the rest so the budget still sees the whole entry.
                Err(_) => {
                    drop(xml);
                    std::io::copy(&mut counted, &mut std::io::sink()).map_err(|e| {
                        TableError::new(format!("无法读取XLSX文件（{}）：{e}", self.name))
                    })?;
                    break;
                }
            }
        }
        self.finish()?;
        Ok(counted.over)
    }

    fn start(&mut self, e: &BytesStart<'_>) -> Result<(), TableError> {
        match e.local_name().as_ref() {
            "sheetData" => {
                self.in_sheet_data = true;
                self.row_index = 0;
                self.col_index = 0;
            }
            "row" if self.in_sheet_data => {
                for r in raw_attrs(e, "r") {
                    match cell_ref(r) {
                        Some((row, _)) if (1..=EXCEL_ROWS).contains(&row) => {
                            self.row_index = row - 1
                        }
                        _ => return Err(self.outside("行号")),
                    }
                }
            }
            "c" if self.in_sheet_data => {
                let refs = raw_attrs(e, "r");
                if refs.is_empty() {
                    self.cell(self.row_index, self.col_index)?;
                }
                // calamine keeps the last `r` of a cell; every one must be inside the grid.
                for r in refs {
                    match cell_ref(r) {
                        Some((row, Some(col)))
                            if (1..=EXCEL_ROWS).contains(&row)
                                && (1..=EXCEL_COLUMNS).contains(&col) =>
                        {
                            self.col_index = col - 1;
                            self.cell(row - 1, col - 1)?;
                        }
                        _ => return Err(self.outside("单元格位置")),
                    }
                }
                self.col_index += 1;
            }
            "dimension" => {
                for r in raw_attrs(e, "ref") {
                    self.dimension(r)?;
                }
            }
            "sst" => {
                for n in raw_attrs(e, "uniqueCount")
                    .into_iter()
                    .filter_map(count_value)
                {
                    self.unique_count = Some(self.unique_count.unwrap_or(0).max(n));
                }
            }
            "si" => self.strings += 1,
            _ => {}
        }
        Ok(())
    }

    fn outside(&self, what: &str) -> TableError {
        refused(format!(
            "XLSX文件声明了无效或超出Excel范围（最大 XFD1048576）的{what}（{}）",
            self.name
        ))
    }

    fn cell(&mut self, row: u64, col: u64) -> Result<(), TableError> {
        let (r0, r1, c0, c1) = match self.bounds {
            None => (row, row, col, col),
            Some((r0, r1, c0, c1)) => (r0.min(row), r1.max(row), c0.min(col), c1.max(col)),
        };
        self.bounds = Some((r0, r1, c0, c1));
        let cells = (r1 - r0 + 1).saturating_mul(c1 - c0 + 1);
        if cells > self.limits.max_cells {
            return Err(refused(format!(
                "XLSX文件声明了从 {} 到 {} 的单元格（{}），共 {cells} 个，超出上限 {} 个",
                a1(r0, c0),
                a1(r1, c1),
                self.name,
                self.limits.max_cells
            )));
        }
        Ok(())
    }

    fn dimension(&self, r: &str) -> Result<(), TableError> {
        let mut corners = Vec::with_capacity(2);
        for part in r.split(':').take(3) {
            match cell_ref(part) {
                Some((row, Some(col)))
                    if (1..=EXCEL_ROWS).contains(&row) && (1..=EXCEL_COLUMNS).contains(&col) =>
                {
                    corners.push((row, col))
                }
                _ => return Err(self.outside("工作表范围")),
            }
        }
        let (start, end) = match corners[..] {
            [one] => (one, one),
            [start, end] => (start, end),
            _ => return Err(self.outside("工作表范围")),
        };
        // A large but well-formed range is harmless: calamine reserves from it only below
        // 100,000 cells, and the cells themselves are bounded above. A reversed one makes its
        // unchecked subtraction wrap (or panic).
        if end.0 < start.0 || end.1 < start.1 {
            return Err(self.outside("工作表范围"));
        }
        Ok(())
    }

    fn finish(&self) -> Result<(), TableError> {
        if let Some(n) = self.unique_count {
            if n > self.strings.max(HARMLESS_STRING_COUNT) {
                return Err(refused(format!(
                    "XLSX文件声明了 {n} 个共享字符串（{}），实际只有 {} 个，超出上限",
                    self.name, self.strings
                )));
            }
        }
        Ok(())
    }
}

/// Every value of the attributes called `name`, raw (not unescaped), split the way calamine
/// splits attributes: a key runs to the first `=`, a value is quoted with `"` or `'`. Stops where
/// calamine would stop with an error (it then refuses the file itself). calamine takes the first
/// or the last of duplicates depending on the element, so all are checked.
fn raw_attrs<'e>(e: &'e BytesStart<'_>, name: &str) -> Vec<&'e str> {
    let mut values = Vec::new();
    let mut rest = e.attributes_raw();
    loop {
        rest = rest.trim_start_matches(|c: char| c.is_ascii_whitespace());
        let Some(eq) = rest.find('=') else {
            return values;
        };
        let key = rest[..eq].trim_end_matches(|c: char| c.is_ascii_whitespace());
        let after = rest[eq + 1..].trim_start_matches(|c: char| c.is_ascii_whitespace());
        let Some(quote) = after.chars().next().filter(|q| *q == '"' || *q == '\'') else {
            return values;
        };
        let body = &after[1..];
        let (value, next) = match body.find(quote) {
            Some(end) => (&body[..end], &body[end + 1..]),
            None => (body, ""),
        };
        if key == name {
            values.push(value);
        }
        rest = next;
    }
}

/// A decimal count as calamine would parse it (`None` when it would not: no reservation then);
/// saturates instead of overflowing.
fn count_value(s: &str) -> Option<u64> {
    let digits = s.strip_prefix('+').unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(digits.bytes().fold(0u64, |n, b| {
        n.saturating_mul(10).saturating_add(u64::from(b - b'0'))
    }))
}

/// `XFD1048576` → (1048576, Some(16384)), 1-based; letters are optional (a row reference);
/// anything else, or no row, is `None`. Saturates instead of overflowing.
fn cell_ref(s: &str) -> Option<(u64, Option<u64>)> {
    let letters = s.bytes().take_while(u8::is_ascii_alphabetic).count();
    let (col, row) = s.split_at(letters);
    if row.is_empty() || !row.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let col = col.bytes().fold(0u64, |n, b| {
        n.saturating_mul(26)
            .saturating_add(u64::from(b.to_ascii_uppercase() - b'A' + 1))
    });
    let row = row.bytes().fold(0u64, |n, b| {
        n.saturating_mul(10).saturating_add(u64::from(b - b'0'))
    });
    Some((row, (col > 0).then_some(col)))
}

/// 0-based (row, column) → `A1` notation.
fn a1(row: u64, col: u64) -> String {
    let col = usize::try_from(col).unwrap_or(usize::MAX);
    format!("{}{}", super::column_letter(col), row + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_parse_like_excel_and_saturate() {
        assert_eq!(cell_ref("A1"), Some((1, Some(1))));
        assert_eq!(cell_ref("xfd1048576"), Some((1_048_576, Some(16_384))));
        assert_eq!(cell_ref("12"), Some((12, None)));
        assert_eq!(cell_ref("A"), None);
        assert_eq!(cell_ref("A1B"), None);
        assert_eq!(cell_ref("A-1"), None);
        let (row, col) = cell_ref(&format!("{}1{}", "Z".repeat(40), "9".repeat(40))).unwrap();
        assert_eq!((row, col), (u64::MAX, Some(u64::MAX)));
        assert_eq!(a1(0, 0), "A1");
        assert_eq!(a1(1_048_575, 16_383), "XFD1048576");
        assert_eq!(a1(9, 26), "AA10");
    }

    #[test]
    fn attributes_split_like_calamine() {
        let values = |tag: &'static str, name: &str| {
            let e = BytesStart::from_content(tag, tag.find(' ').unwrap_or(tag.len()));
            raw_attrs(&e, name)
                .into_iter()
                .map(str::to_string)
                .collect::<Vec<_>>()
        };
        // Duplicates are all seen (calamine keeps the first or the last, depending on the tag).
        assert_eq!(values(r#"c r="A1" s="1" r='XFD1'"#, "r"), ["A1", "XFD1"]);
        // Raw: no unescaping, as calamine reads counts and references.
        assert_eq!(
            values(r#"sst uniqueCount="&#49;2""#, "uniqueCount"),
            ["&#49;2"]
        );
        // A key runs to the first `=`: "x r" is not "r".
        assert_eq!(values(r#"c x r="A1""#, "r"), Vec::<String>::new());
        assert_eq!(values(r#"c r = "B2""#, "r"), ["B2"]);
        // Where calamine stops with an error, so do we (it then refuses the file itself).
        assert_eq!(values(r#"c s=1 r="A1""#, "r"), Vec::<String>::new());
        assert_eq!(values(r#"c r="A1" s"#, "r"), ["A1"]);
        // An unterminated value runs to the end of the tag.
        assert_eq!(values(r#"c r="A1"#, "r"), ["A1"]);
    }

    #[test]
    fn counts_parse_like_calamine() {
        assert_eq!(count_value("12"), Some(12));
        assert_eq!(count_value("+12"), Some(12));
        assert_eq!(count_value("18446744073709551615"), Some(u64::MAX));
        assert_eq!(count_value("99999999999999999999999"), Some(u64::MAX));
        assert_eq!(count_value(" 12"), None);
        assert_eq!(count_value("1e11"), None);
        assert_eq!(count_value(""), None);
    }

    #[test]
    fn limits_follow_the_upload_cap() {
        let l = XlsxLimits::for_upload(20 << 20);
        assert_eq!(l.max_inflated_bytes, 400 << 20);
        assert_eq!(l.max_cells, (400 << 20) / 64);
        assert_eq!(XlsxLimits::for_upload(1 << 20).max_inflated_bytes, 64 << 20);
        assert_eq!(
            XlsxLimits::for_upload(u64::MAX).max_inflated_bytes,
            u64::MAX
        );
    }
}
