//! Uploaded file bytes → a table of trimmed text cells with the row numbers a user sees in Excel.
//! The container comes from the content (`sniff`): XLSX is checked against [`XlsxLimits`]
//! (`xlsx_limits`) and old binary .xls is read too, both through calamine (first visible worksheet,
//! `xlsx`; an XLSX cell by cell, one row in memory, through `sheet_cells`); an HTML table (a
//! registrar's ".xls") is read by `sniff`; anything else is CSV whose text encoding is detected
//! (UTF-8 with or without BOM, UTF-16 with BOM, else GB18030/GBK) and whose delimiter is sniffed
//! (comma, tab or semicolon). The header row is the first of the first rows that names the student
//! ID (`layout`), so title rows above it are skipped.
//!
//! The CSV reader is our own small RFC 4180 parser: it reports an unterminated quote with the
//! line it opened on (the `csv` crate silently reads such a field to the end of the file), counts
//! rows the way Excel shows them, and hands out cells as slices of the decoded text, so a
//! million-row file is read without an allocation per cell. [`TableReader`] streams rows;
//! [`read_table`] collects them.
//!
//! Over 600 lines because of its tests (the last third): the CSV cases and the XLSX builder
//! that the validator's and planner's tests reuse.

use std::borrow::Cow;
use std::fmt;

mod sheet_cells;
#[cfg(test)]
mod sheet_tests;
mod xlsx;
mod xlsx_limits;
use xlsx::{without_panic, SheetSource};
pub use xlsx_limits::XlsxLimits;

use super::layout::{looks_like_header, normalise_header, HEADER_SEARCH_ROWS};
use super::sniff::{self, Container};

/// The upload cap [`TableReader::open`] assumes (the default `max_upload_mb`).
pub const DEFAULT_UPLOAD_BYTES: u64 = 20 << 20;

/// A whole file read into memory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Table {
    /// How the file was read (for the preview: "GBK-encoded CSV", …).
    pub format: SourceFormat,
    /// Row number of the header row (the first non-blank row).
    pub header_line: usize,
    /// Header cells, trimmed, as written in the file.
    pub headers: Vec<String>,
    /// Non-blank data rows in file order.
    pub rows: Vec<TableRow>,
}

/// One non-blank data row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableRow {
    /// 1-based row number as the user sees it in Excel (for CSV: the record's position counting
    /// blank lines, which equals the text line unless a quoted cell spans lines).
    pub line: usize,
    /// Trimmed cells; a row may have fewer or more cells than there are headers.
    pub cells: Vec<String>,
}

/// Access to a row's cells by column index, for tables and streamed rows alike.
pub trait CellRow {
    /// Row number as the user sees it in Excel.
    fn line(&self) -> usize;
    /// The trimmed cell at `index`; `""` when the row is shorter.
    fn cell(&self, index: usize) -> &str;
}

impl CellRow for TableRow {
    fn line(&self) -> usize {
        self.line
    }
    fn cell(&self, index: usize) -> &str {
        self.cells.get(index).map_or("", String::as_str)
    }
}

/// How a file was read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SourceFormat {
    /// Delimited text.
    Csv {
        encoding: TextEncoding,
        /// `,`, `\t` or `;`.
        delimiter: char,
    },
    /// An Excel workbook; `sheet` is the worksheet that was read.
    Xlsx { sheet: String },
    /// An old binary Excel workbook (.xls); `sheet` is the worksheet that was read.
    Xls { sheet: String },
    /// An HTML page with a table (saved as .xls by older registrar systems).
    Html { encoding: &'static str },
}

impl fmt::Display for SourceFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SourceFormat::Csv {
                encoding,
                delimiter,
            } => {
                let d = match delimiter {
                    '\t' => "制表符",
                    ';' => "分号",
                    _ => "逗号",
                };
                write!(f, "CSV（{}，{}分隔）", encoding.label(), d)
            }
            SourceFormat::Xlsx { sheet } => write!(f, "XLSX（工作表“{sheet}”）"),
            SourceFormat::Xls { sheet } => write!(f, "旧版Excel .xls（工作表“{sheet}”）"),
            SourceFormat::Html { encoding } => write!(f, "网页表格（HTML，{encoding}）"),
        }
    }
}

/// The detected text encoding of a CSV file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TextEncoding {
    Utf8,
    Utf8Bom,
    Utf16Le,
    Utf16Be,
    /// GB18030, a superset of GBK and GB2312.
    Gb18030,
}

impl TextEncoding {
    /// Short name for messages.
    pub fn label(self) -> &'static str {
        match self {
            TextEncoding::Utf8 => "UTF-8",
            TextEncoding::Utf8Bom => "UTF-8 BOM",
            TextEncoding::Utf16Le => "UTF-16LE",
            TextEncoding::Utf16Be => "UTF-16BE",
            TextEncoding::Gb18030 => "GBK/GB18030",
        }
    }
}

/// A file that cannot be read as a table at all. Row-level problems are not `TableError`s.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableError {
    /// The line the problem is on, when there is one.
    pub line: Option<usize>,
    /// What is wrong, in Chinese for the admin page.
    pub message: String,
}

impl TableError {
    fn new(message: impl Into<String>) -> TableError {
        TableError {
            line: None,
            message: message.into(),
        }
    }

    fn at(line: usize, message: impl Into<String>) -> TableError {
        TableError {
            line: Some(line),
            message: message.into(),
        }
    }
}

impl fmt::Display for TableError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "line {line}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for TableError {}

/// Reads a whole CSV or XLSX file. `file_name` only breaks ties (content decides).
pub fn read_table(file_name: &str, bytes: &[u8]) -> Result<Table, TableError> {
    let mut reader = TableReader::open(file_name, bytes)?;
    let mut rows = Vec::new();
    while let Some(row) = reader.next_row()? {
        rows.push(row.to_table_row());
    }
    Ok(Table {
        format: reader.format.clone(),
        header_line: reader.header_line,
        headers: reader.headers,
        rows,
    })
}

/// How the header row is told from the title rows above it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum HeaderRule {
    /// The first row naming the student ID by one of its header names (`layout`).
    #[default]
    Auto,
    /// That, or a row with one of these headers (a column map's student-ID column).
    AlsoNamed(Vec<String>),
    /// The row with this number, when it is among the first rows searched.
    Line(usize),
}

impl HeaderRule {
    fn is_header<'c>(&self, line: usize, cells: impl Iterator<Item = &'c str>) -> bool {
        match self {
            HeaderRule::Auto => looks_like_header(cells),
            HeaderRule::AlsoNamed(names) => {
                let cells: Vec<&str> = cells.collect();
                looks_like_header(cells.iter().copied())
                    || cells.iter().any(|c| {
                        let n = normalise_header(c);
                        names.iter().any(|name| normalise_header(name) == n)
                    })
            }
            HeaderRule::Line(at) => line == *at,
        }
    }
}

/// A streaming reader: the header row is read by [`open`](TableReader::open), data rows one by
/// one by [`next_row`](TableReader::next_row), blank rows skipped.
pub struct TableReader<'a> {
    format: SourceFormat,
    header_line: usize,
    headers: Vec<String>,
    source: Source<'a>,
}

enum Source<'a> {
    Csv(CsvSource<'a>),
    Sheet(SheetSource<'a>),
    Rows(RowsSource),
}

/// Rows already read into memory (an HTML table).
struct RowsSource {
    rows: Vec<Vec<String>>,
    /// Index of the next row to read.
    next: usize,
}

/// A borrowed data row from a [`TableReader`].
pub struct RowRef<'r> {
    line: usize,
    cells: Cells<'r>,
}

#[derive(Clone, Copy)]
enum Cells<'r> {
    Csv {
        text: &'r str,
        scratch: &'r str,
        spans: &'r [Span],
    },
    Owned(&'r [String]),
}

impl<'r> RowRef<'r> {
    /// Row number as the user sees it in Excel.
    pub fn line(&self) -> usize {
        self.line
    }

    /// Number of cells in the row (trailing empty cells included).
    pub fn len(&self) -> usize {
        match self.cells {
            Cells::Csv { spans, .. } => spans.len(),
            Cells::Owned(cells) => cells.len(),
        }
    }

    /// True for a row with no cells (never handed out by the reader).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The trimmed cell at `index`; `""` when the row is shorter.
    pub fn cell(&self, index: usize) -> &'r str {
        self.cells.get(index)
    }

    /// The cells, trimmed.
    pub fn iter(&self) -> impl Iterator<Item = &'r str> + '_ {
        (0..self.len()).map(|i| self.cells.get(i))
    }

    /// An owned copy.
    pub fn to_table_row(&self) -> TableRow {
        TableRow {
            line: self.line,
            cells: self.iter().map(str::to_string).collect(),
        }
    }
}

impl CellRow for RowRef<'_> {
    fn line(&self) -> usize {
        self.line
    }
    fn cell(&self, index: usize) -> &str {
        self.cells.get(index)
    }
}

impl<'r> Cells<'r> {
    fn get(self, index: usize) -> &'r str {
        match self {
            Cells::Csv {
                text,
                scratch,
                spans,
            } => unwrap_spreadsheet_text(
                spans
                    .get(index)
                    .map_or("", |span| span.resolve(text, scratch))
                    .trim(),
            ),
            Cells::Owned(cells) => cells.get(index).map_or("", |c| c.as_str().trim()),
        }
    }

    fn is_blank(self, len: usize) -> bool {
        (0..len).all(|i| self.get(i).is_empty())
    }
}

impl<'a> TableReader<'a> {
    /// [`open_limited`](TableReader::open_limited) with the XLSX limits of the default upload
    /// cap (20 MB), or of the file's own size when it is larger (a CLI import).
    pub fn open(file_name: &str, bytes: &'a [u8]) -> Result<TableReader<'a>, TableError> {
        let cap = (bytes.len() as u64).max(DEFAULT_UPLOAD_BYTES);
        TableReader::open_limited(file_name, bytes, &XlsxLimits::for_upload(cap))
    }

    /// Detects the format, decodes the text and reads the header row (the first non-blank row).
    /// An XLSX is first checked against `limits` (see [`XlsxLimits`]) and then read with any
    /// panic in the XLSX reader turned into an error.
    pub fn open_limited(
        file_name: &str,
        bytes: &'a [u8],
        limits: &XlsxLimits,
    ) -> Result<TableReader<'a>, TableError> {
        TableReader::open_with_header(file_name, bytes, limits, &HeaderRule::Auto)
    }

    /// [`open_limited`](TableReader::open_limited), with the header row found by `rule`: a
    /// column map's student-ID header names mark a header row too, or staff named its row.
    pub fn open_with_header(
        file_name: &str,
        bytes: &'a [u8],
        limits: &XlsxLimits,
        rule: &HeaderRule,
    ) -> Result<TableReader<'a>, TableError> {
        let lower = file_name.to_ascii_lowercase();
        // Content decides; the name only sharpens an error message or picks tabs for .tsv.
        let (format, mut source) = match sniff::container(bytes) {
            Container::Ooxml => {
                // Every XLSX is checked before calamine sees it.
                xlsx_limits::check(bytes, limits)?;
                let sheet = without_panic(|| SheetSource::open(bytes))?;
                (
                    SourceFormat::Xlsx {
                        sheet: sheet.name.clone(),
                    },
                    Source::Sheet(sheet),
                )
            }
            Container::Ole2 => {
                let sheet = without_panic(|| SheetSource::open_xls(bytes))?;
                (
                    SourceFormat::Xls {
                        sheet: sheet.name.clone(),
                    },
                    Source::Sheet(sheet),
                )
            }
            Container::Html => {
                let table = sniff::html_table(bytes).map_err(TableError::new)?;
                (
                    SourceFormat::Html {
                        encoding: table.encoding,
                    },
                    Source::Rows(RowsSource {
                        rows: table.rows,
                        next: 0,
                    }),
                )
            }
            Container::Text if lower.ends_with(".xlsx") || lower.ends_with(".xlsm") => {
                return Err(TableError::new(
                    "文件扩展名是.xlsx，但内容不是XLSX（ZIP）格式，文件可能已损坏",
                ));
            }
            Container::Text => {
                let (text, encoding) = decode_text(bytes)?;
                if text.contains('\0') {
                    return Err(TableError::new("不是CSV或XLSX文件（内容含有二进制数据）"));
                }
                let delimiter = if lower.ends_with(".tsv") {
                    b'\t'
                } else {
                    sniff_delimiter(&text)
                };
                (
                    SourceFormat::Csv {
                        encoding,
                        delimiter: char::from(delimiter),
                    },
                    Source::Csv(CsvSource::new(text, delimiter)),
                )
            }
        };
        // The header row: the first of the first rows that names the student ID (title rows
        // above it are skipped); failing that, the first non-blank row, whose columns the
        // validator then reports as missing.
        let mut first = None;
        let mut seen = 0usize;
        let header_line = loop {
            match source.advance()? {
                None => match first {
                    None => return Err(TableError::new("文件是空的：没有找到表头行")),
                    Some(line) => break source.rewind_to(line)?,
                },
                Some(_) if source.is_blank() => continue,
                Some(line) => {
                    let cells = source.cells();
                    if rule.is_header(line, (0..source.len()).map(|i| cells.get(i))) {
                        break line;
                    }
                    first.get_or_insert(line);
                    seen += 1;
                    if seen >= HEADER_SEARCH_ROWS {
                        break source.rewind_to(first.unwrap_or(line))?;
                    }
                }
            }
        };
        let cells = source.cells();
        let mut headers: Vec<String> = (0..source.len())
            .map(|i| cells.get(i).to_string())
            .collect();
        if let Some(first) = headers.first_mut() {
            if let Some(rest) = first.strip_prefix('\u{feff}') {
                *first = rest.trim().to_string();
            }
        }
        // Drop trailing empty header cells (Excel's ",,,," padding).
        while headers.last().is_some_and(String::is_empty) {
            headers.pop();
        }
        Ok(TableReader {
            format,
            header_line,
            headers,
            source,
        })
    }

    /// How the file is being read.
    pub fn format(&self) -> &SourceFormat {
        &self.format
    }

    /// Header cells, trimmed, as written in the file.
    pub fn headers(&self) -> &[String] {
        &self.headers
    }

    /// Row number of the header row.
    pub fn header_line(&self) -> usize {
        self.header_line
    }

    /// The file's column (0 is Excel's A) that a row's first cell is in: a worksheet whose
    /// used range starts at column C reads C as a row's first cell.
    pub fn first_column(&self) -> usize {
        match &self.source {
            Source::Sheet(s) => s.first_column(),
            _ => 0,
        }
    }

    /// The next non-blank data row, or `None` at the end.
    pub fn next_row(&mut self) -> Result<Option<RowRef<'_>>, TableError> {
        let line = loop {
            match self.source.advance()? {
                None => return Ok(None),
                Some(line) if !self.source.is_blank() => break line,
                Some(_) => continue,
            }
        };
        Ok(Some(RowRef {
            line,
            cells: self.source.cells(),
        }))
    }

    /// Calls `f` for every remaining non-blank data row.
    pub fn for_each_row<F: FnMut(&RowRef<'_>)>(&mut self, mut f: F) -> Result<(), TableError> {
        while let Some(row) = self.next_row()? {
            f(&row);
        }
        Ok(())
    }
}

impl Source<'_> {
    /// Reads the next row (blank or not); returns its row number.
    fn advance(&mut self) -> Result<Option<usize>, TableError> {
        match self {
            Source::Csv(c) => c.advance(),
            Source::Sheet(s) => without_panic(|| s.advance()),
            Source::Rows(r) => {
                if r.next >= r.rows.len() {
                    return Ok(None);
                }
                r.next += 1;
                Ok(Some(r.next))
            }
        }
    }

    /// Goes back to the start and reads up to row `line` again (it was read before, so it is
    /// there); returns `line`.
    fn rewind_to(&mut self, line: usize) -> Result<usize, TableError> {
        match self {
            Source::Csv(c) => {
                c.pos = 0;
                c.line = 1;
                c.row = 0;
            }
            Source::Sheet(s) => without_panic(|| s.rewind())?,
            Source::Rows(r) => r.next = 0,
        }
        while let Some(at) = self.advance()? {
            if at >= line {
                return Ok(at);
            }
        }
        Err(TableError::new("文件是空的：没有找到表头行"))
    }

    fn cells(&self) -> Cells<'_> {
        match self {
            Source::Csv(c) => Cells::Csv {
                text: &c.text,
                scratch: &c.scratch,
                spans: &c.spans,
            },
            Source::Sheet(s) => Cells::Owned(&s.cells),
            Source::Rows(r) => Cells::Owned(
                r.next
                    .checked_sub(1)
                    .and_then(|i| r.rows.get(i))
                    .map_or(&[], Vec::as_slice),
            ),
        }
    }

    fn len(&self) -> usize {
        match self {
            Source::Csv(c) => c.spans.len(),
            Source::Sheet(s) => s.cells.len(),
            Source::Rows(_) => match self.cells() {
                Cells::Owned(cells) => cells.len(),
                Cells::Csv { spans, .. } => spans.len(),
            },
        }
    }

    fn is_blank(&self) -> bool {
        if let Source::Sheet(s) = self {
            // Known while the row was read: a wide sheet's row is not scanned again.
            return s.blank;
        }
        self.cells().is_blank(self.len())
    }
}

// ---------------------------------------------------------------------------------------------
// Text decoding and CSV
// ---------------------------------------------------------------------------------------------

/// Decodes CSV bytes, detecting the encoding. Valid UTF-8 is borrowed, not copied.
fn decode_text(bytes: &[u8]) -> Result<(Cow<'_, str>, TextEncoding), TableError> {
    if let Some(rest) = bytes.strip_prefix(b"\xEF\xBB\xBF") {
        return match std::str::from_utf8(rest) {
            Ok(s) => Ok((Cow::Borrowed(s), TextEncoding::Utf8Bom)),
            Err(e) => {
                let good = rest.get(..e.valid_up_to()).unwrap_or_default();
                let line = 1 + good.iter().filter(|&&b| b == b'\n').count();
                Err(TableError::at(
                    line,
                    "文件以UTF-8 BOM开头，但此处的内容不是有效的UTF-8",
                ))
            }
        };
    }
    for (bom, encoding, tag) in [
        (
            &b"\xFF\xFE"[..],
            encoding_rs::UTF_16LE,
            TextEncoding::Utf16Le,
        ),
        (
            &b"\xFE\xFF"[..],
            encoding_rs::UTF_16BE,
            TextEncoding::Utf16Be,
        ),
    ] {
        if let Some(rest) = bytes.strip_prefix(bom) {
            return match encoding.decode_without_bom_handling_and_without_replacement(rest) {
                Some(text) => Ok((Cow::Owned(text.into_owned()), tag)),
                None => Err(TableError::new(format!(
                    "文件以{} BOM开头，但内容不是有效的{}文本",
                    tag.label(),
                    tag.label()
                ))),
            };
        }
    }
    if let Ok(s) = std::str::from_utf8(bytes) {
        return Ok((Cow::Borrowed(s), TextEncoding::Utf8));
    }
    match encoding_rs::GB18030.decode_without_bom_handling_and_without_replacement(bytes) {
        Some(text) => Ok((Cow::Owned(text.into_owned()), TextEncoding::Gb18030)),
        None => Err(TableError::new(
            "不是CSV或XLSX文件：文本编码无法识别（既不是UTF-8，也不是GBK/GB18030）",
        )),
    }
}

/// Picks `,`, `\t` or `;` by counting them on the first non-blank line, outside quotes.
fn sniff_delimiter(text: &str) -> u8 {
    let first = text
        .split(['\n', '\r'])
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    let mut counts = [0usize; 3];
    let mut quoted = false;
    for b in first.bytes() {
        match b {
            b'"' => quoted = !quoted,
            b',' if !quoted => counts[0] += 1,
            b'\t' if !quoted => counts[1] += 1,
            b';' if !quoted => counts[2] += 1,
            _ => {}
        }
    }
    let [comma, tab, semi] = counts;
    if tab > comma && tab >= semi {
        b'\t'
    } else if semi > comma && semi > tab {
        b';'
    } else {
        b','
    }
}

/// The text a spreadsheet shows for a cell written to keep it text: `="001234"` → `001234`
/// (registrar systems write IDs this way so that Excel keeps the leading zeros), and `'=…`,
/// `'+…`, `'-…`, `'@…` → the text after the quote (how our export, and other careful exports,
/// keep Excel from running a cell as a formula); one quote also comes off `''=…` (our export's
/// way of writing a value that itself began `'=`).
fn unwrap_spreadsheet_text(cell: &str) -> &str {
    if let Some(inner) = cell.strip_prefix("=\"").and_then(|r| r.strip_suffix('"')) {
        if !inner.contains('"') {
            return inner.trim();
        }
    }
    match cell.strip_prefix('\'') {
        Some(rest)
            if rest
                .trim_start_matches('\'')
                .starts_with(['=', '+', '-', '@']) =>
        {
            rest
        }
        _ => cell,
    }
}

/// A cell's place: a range of the decoded text, or of the scratch buffer for quoted cells
/// (whose `""` escapes had to be undone).
#[derive(Clone, Copy, Debug)]
enum Span {
    Text(usize, usize),
    Scratch(usize, usize),
}

impl Span {
    fn resolve<'r>(self, text: &'r str, scratch: &'r str) -> &'r str {
        match self {
            Span::Text(a, b) => text.get(a..b),
            Span::Scratch(a, b) => scratch.get(a..b),
        }
        .unwrap_or("")
    }
}

struct CsvSource<'a> {
    text: Cow<'a, str>,
    delimiter: u8,
    /// Byte offset of the next record.
    pos: usize,
    /// Physical line (1-based) at `pos`.
    line: usize,
    /// Excel row number of the last record read.
    row: usize,
    spans: Vec<Span>,
    scratch: String,
}

impl<'a> CsvSource<'a> {
    fn new(text: Cow<'a, str>, delimiter: u8) -> CsvSource<'a> {
        CsvSource {
            text,
            delimiter,
            pos: 0,
            line: 1,
            row: 0,
            spans: Vec::new(),
            scratch: String::new(),
        }
    }

    /// Parses one record into `spans`/`scratch`. Returns its Excel row number.
    fn advance(&mut self) -> Result<Option<usize>, TableError> {
        let bytes = self.text.as_bytes();
        let len = bytes.len();
        if self.pos >= len {
            return Ok(None);
        }
        self.spans.clear();
        self.scratch.clear();
        self.row += 1;
        let d = self.delimiter;
        let mut pos = self.pos;
        loop {
            // Spaces before an opening quote do not make the field unquoted.
            let mut q = pos;
            while q < len && bytes.get(q) == Some(&b' ') && d != b' ' {
                q += 1;
            }
            if bytes.get(q) == Some(&b'"') {
                let open_line = self.line;
                let start = self.scratch.len();
                pos = q + 1;
                loop {
                    let rest = bytes.get(pos..).unwrap_or_default();
                    let Some(k) = rest.iter().position(|&b| b == b'"') else {
                        return Err(TableError::at(
                            open_line,
                            "引号未闭合：从这一行开始的带引号单元格直到文件末尾都没有结束引号",
                        ));
                    };
                    let chunk = self.text.get(pos..pos + k).unwrap_or("");
                    self.line += count_line_breaks(chunk.as_bytes());
                    self.scratch.push_str(chunk);
                    pos += k + 1;
                    if bytes.get(pos) == Some(&b'"') {
                        self.scratch.push('"');
                        pos += 1;
                    } else {
                        break;
                    }
                }
                // Text after the closing quote (`"ab"c`) is kept, as Excel does.
                let end = find_field_end(bytes, pos, d);
                self.scratch.push_str(self.text.get(pos..end).unwrap_or(""));
                pos = end;
                self.spans.push(Span::Scratch(start, self.scratch.len()));
            } else {
                let end = find_field_end(bytes, pos, d);
                self.spans.push(Span::Text(pos, end));
                pos = end;
            }
            match bytes.get(pos) {
                None => break,
                Some(&b) if b == d => pos += 1,
                Some(b'\r') => {
                    pos += 1;
                    if bytes.get(pos) == Some(&b'\n') {
                        pos += 1;
                    }
                    self.line += 1;
                    break;
                }
                Some(_) => {
                    // '\n'
                    pos += 1;
                    self.line += 1;
                    break;
                }
            }
        }
        self.pos = pos;
        Ok(Some(self.row))
    }
}

/// Offset of the next delimiter or line break at or after `from` (or the end).
#[inline]
fn find_field_end(bytes: &[u8], from: usize, delimiter: u8) -> usize {
    let rest = bytes.get(from..).unwrap_or_default();
    rest.iter()
        .position(|&b| b == delimiter || b == b'\n' || b == b'\r')
        .map_or(bytes.len(), |k| from + k)
}

/// Line breaks in a chunk: `\r\n`, `\n` or a lone `\r` each count once.
fn count_line_breaks(chunk: &[u8]) -> usize {
    let mut n = 0;
    let mut prev_cr = false;
    for &b in chunk {
        match b {
            b'\n' if prev_cr => {}
            b'\n' | b'\r' => n += 1,
            _ => {}
        }
        prev_cr = b == b'\r';
    }
    n
}

/// A 0-based column's Excel letters: 0 → "A", 25 → "Z", 26 → "AA".
pub fn column_letter(col: usize) -> String {
    let mut letters = Vec::new();
    let mut n = (col as u64).saturating_add(1);
    while n > 0 {
        let rem = (n - 1) % 26;
        letters.push(char::from(b'A' + rem as u8));
        n = (n - 1) / 26;
    }
    letters.iter().rev().collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn column_letters_count_like_excel() {
        for (col, letters) in [
            (0, "A"),
            (6, "G"),
            (25, "Z"),
            (26, "AA"),
            (701, "ZZ"),
            (702, "AAA"),
            (16383, "XFD"),
        ] {
            assert_eq!(column_letter(col), letters, "{col}");
        }
        assert!(!column_letter(usize::MAX).is_empty());
    }

    fn csv(text: &str) -> Table {
        read_table("t.csv", text.as_bytes()).unwrap()
    }

    fn cells(t: &Table) -> Vec<(usize, Vec<&str>)> {
        t.rows
            .iter()
            .map(|r| (r.line, r.cells.iter().map(String::as_str).collect()))
            .collect()
    }

    #[test]
    fn csv_basic_trim_blank_lines_and_row_numbers() {
        let t = csv("学号, 姓名 ,成绩\r\n2021001,张三, 90 \r\n\r\n,,\r\n2021002,李四,85.5\r\n");
        assert_eq!(t.headers, ["学号", "姓名", "成绩"]);
        assert_eq!(t.header_line, 1);
        assert_eq!(
            cells(&t),
            vec![
                (2, vec!["2021001", "张三", "90"]),
                (5, vec!["2021002", "李四", "85.5"]),
            ]
        );
        assert_eq!(
            t.format,
            SourceFormat::Csv {
                encoding: TextEncoding::Utf8,
                delimiter: ','
            }
        );
    }

    #[test]
    fn csv_cells_kept_as_text_read_as_the_text_excel_shows() {
        let t = csv("学号,课程代码,课程名称\n=\"001234\",'-X1,'=SUM(A1)\n'2021,'a,=\"x\"y\"\n");
        assert_eq!(
            cells(&t),
            vec![
                (2, vec!["001234", "-X1", "=SUM(A1)"]),
                (3, vec!["'2021", "'a", "=\"x\"y\""]),
            ]
        );
    }

    #[test]
    fn csv_quotes_multiline_and_missing_final_newline() {
        let t = csv("a,b,c\n\"x, y\",\"say \"\"hi\"\"\",\"two\nlines\"\n\"\",3,\"tail\"x\n4,5,6");
        assert_eq!(
            cells(&t),
            vec![
                (2, vec!["x, y", "say \"hi\"", "two\nlines"]),
                (3, vec!["", "3", "tailx"]),
                (4, vec!["4", "5", "6"]),
            ]
        );
        // Leading blank lines: the header is the first non-blank row.
        let t = csv("\n\n  \nid\n1\n");
        assert_eq!(t.header_line, 4);
        assert_eq!(cells(&t), vec![(5, vec!["1"])]);
    }

    #[test]
    fn csv_excel_text_formulas_are_unwrapped() {
        let t = csv("学号,备注\n=\"001234\",\"=\"\"0042\"\"\"\n=SUM(A1),=\"a\"b\"\n");
        assert_eq!(
            cells(&t),
            vec![
                (2, vec!["001234", "0042"]),
                (3, vec!["=SUM(A1)", "=\"a\"b\""])
            ]
        );
    }

    #[test]
    fn csv_unterminated_quote_names_its_line() {
        let err = read_table("t.csv", b"a,b\n1,2\n3,\"oops\n4,5\n6,7\n").unwrap_err();
        assert_eq!(err.line, Some(3));
        assert!(err.to_string().starts_with("line 3: 引号未闭合"), "{err}");
    }

    #[test]
    fn csv_rows_shorter_or_longer_than_headers() {
        let t = csv("a,b,c,,\n1\n1,2,3,4\n");
        assert_eq!(t.headers, ["a", "b", "c"]);
        assert_eq!(t.rows[0].cell(2), "");
        assert_eq!(t.rows[1].cell(3), "4");
    }

    #[test]
    fn sniffs_tab_and_semicolon() {
        let t = csv("学号\t姓名\n1\t张三\n");
        assert_eq!(cells(&t), vec![(2, vec!["1", "张三"])]);
        let t = csv("a;b;c\n1;2,5;3\n");
        assert_eq!(cells(&t), vec![(2, vec!["1", "2,5", "3"])]);
        let t = read_table("x.tsv", b"a\n1,2\n").unwrap();
        assert_eq!(cells(&t), vec![(2, vec!["1,2"])]);
    }

    const SHEET: &str = "学号,姓名,课程名称,成绩\n2021001,张三,高等数学（上）,89.5\n2021002,李四,\"大学英语, 二\",优秀\n";

    #[test]
    fn encodings_give_identical_tables() {
        let utf8 = read_table("a.csv", SHEET.as_bytes()).unwrap();
        let mut bom = b"\xEF\xBB\xBF".to_vec();
        bom.extend_from_slice(SHEET.as_bytes());
        let bom = read_table("a.csv", &bom).unwrap();
        let (gbk_bytes, _, unmappable) = encoding_rs::GBK.encode(SHEET);
        assert!(!unmappable);
        assert!(std::str::from_utf8(&gbk_bytes).is_err());
        let gbk = read_table("a.csv", &gbk_bytes).unwrap();
        let mut utf16 = b"\xFF\xFE".to_vec();
        for u in SHEET.encode_utf16() {
            utf16.extend_from_slice(&u.to_le_bytes());
        }
        let utf16 = read_table("a.csv", &utf16).unwrap();
        for other in [&bom, &gbk, &utf16] {
            assert_eq!(other.headers, utf8.headers);
            assert_eq!(other.rows, utf8.rows);
            assert_eq!(other.header_line, utf8.header_line);
        }
        assert_eq!(utf8.headers, ["学号", "姓名", "课程名称", "成绩"]);
        let enc = |t: &Table| match &t.format {
            SourceFormat::Csv { encoding, .. } => *encoding,
            _ => panic!("not csv"),
        };
        assert_eq!(enc(&utf8), TextEncoding::Utf8);
        assert_eq!(enc(&bom), TextEncoding::Utf8Bom);
        assert_eq!(enc(&gbk), TextEncoding::Gb18030);
        assert_eq!(enc(&utf16), TextEncoding::Utf16Le);
        assert_eq!(gbk.format.to_string(), "CSV（GBK/GB18030，逗号分隔）");
    }

    #[test]
    fn header_row_found_below_title_rows_within_twenty_rows() {
        let t = csv("2025-2026学年第一学期 成绩单,,\n学院：数学学院,,打印时间：2026-01-20\n\n序号,学号,成绩\n1,2021001,90\n");
        assert_eq!(t.header_line, 4);
        assert_eq!(t.headers, ["序号", "学号", "成绩"]);
        assert_eq!(cells(&t), vec![(5, vec!["1", "2021001", "90"])]);
        // No header row among the first 20: the first non-blank row is the header, as before.
        let mut text = String::from("\n标题\n");
        for i in 0..25 {
            text.push_str(&format!("行{i}\n"));
        }
        text.push_str("学号\n1\n");
        let t = csv(&text);
        assert_eq!(
            (t.header_line, t.headers.clone()),
            (2, vec!["标题".to_string()])
        );
        assert_eq!(t.rows.len(), 27);
        assert_eq!(t.rows[0].line, 3);
        // A short file without one: the same, from the first row.
        let t = csv("课程,成绩\n高数,90\n");
        assert_eq!((t.header_line, t.rows.len()), (1, 1));
    }

    #[test]
    fn header_row_named_by_a_column_map_or_by_its_number() {
        let text = "某大学成绩单,,\n打印时间：2026-01-20,,\nXH,KCH,CJ\n2021001,C1,90\n";
        let open = |rule: &HeaderRule| {
            let r = TableReader::open_with_header(
                "x.csv",
                text.as_bytes(),
                &XlsxLimits::for_upload(1 << 20),
                rule,
            )
            .unwrap();
            (r.header_line(), r.headers().to_vec())
        };
        assert_eq!(open(&HeaderRule::Auto).0, 1, "no 学号: the first row");
        let named = open(&HeaderRule::AlsoNamed(vec!["xh".into()]));
        assert_eq!(
            named,
            (3, vec!["XH".to_string(), "KCH".into(), "CJ".into()])
        );
        assert_eq!(open(&HeaderRule::Line(3)), named);
        assert_eq!(open(&HeaderRule::Line(2)).0, 2);
        // A row number beyond the search: the first row, as without one.
        assert_eq!(open(&HeaderRule::Line(40)).0, 1);
    }

    #[test]
    fn html_table_named_xls_is_read_by_content() {
        let page = "<html><meta charset=gbk><table><tr><td colspan=2>成绩单</td></tr><tr><th>学号</th><th>成绩</th></tr><tr><td>007</td><td>90</td></tr></table></html>";
        let (gbk, _, _) = encoding_rs::GBK.encode(page);
        let t = read_table("grades.xls", &gbk).unwrap();
        assert_eq!(t.format.to_string(), "网页表格（HTML，GBK/GB18030）");
        assert_eq!(
            (t.header_line, t.headers.clone()),
            (2, vec!["学号".to_string(), "成绩".to_string()])
        );
        assert_eq!(cells(&t), vec![(3, vec!["007", "90"])]);
        // Tab-separated text saved as .xls is read as text.
        let t = read_table("grades.xls", "学号\t成绩\n1\t2\n".as_bytes()).unwrap();
        assert_eq!(cells(&t), vec![(2, vec!["1", "2"])]);
    }

    #[test]
    fn bad_files_get_clear_errors() {
        let err = read_table("a.csv", b"").unwrap_err();
        assert!(err.message.contains("没有找到表头行"), "{err}");
        let err = read_table("a.csv", b"\n ,, \n").unwrap_err();
        assert!(err.message.contains("没有找到表头行"), "{err}");
        let err = read_table("a.pdf", b"%PDF-1.4\n\0\x01\x02").unwrap_err();
        assert!(err.message.contains("不是CSV或XLSX文件"), "{err}");
        let err = read_table("a.bin", &[0xFF, 0xFF, 0x80, 0x80, 0xFF]).unwrap_err();
        assert!(err.message.contains("不是CSV或XLSX文件"), "{err}");
        let err = read_table("a.csv", b"\xEF\xBB\xBFa,b\n1,\xFF\n").unwrap_err();
        assert_eq!(err.line, Some(2));
        let err = read_table("a.xlsx", b"a,b\n1,2\n").unwrap_err();
        assert!(err.message.contains("不是XLSX"), "{err}");
        let err = read_table("a.xlsx", b"PK\x03\x04garbage").unwrap_err();
        assert!(err.message.contains("无法读取XLSX文件"), "{err}");
        let mut ole = vec![0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1];
        ole.extend_from_slice(&[0; 504]);
        let err = read_table("a.xls", &ole).unwrap_err();
        assert!(err.message.contains(".xls"), "{err}");
    }

    #[test]
    fn streaming_matches_collected() {
        let text = "a,b\n1,\"x\"\"y\"\n\n2,3\n";
        let table = csv(text);
        let mut reader = TableReader::open("t.csv", text.as_bytes()).unwrap();
        assert_eq!(reader.headers(), ["a", "b"]);
        let mut seen = Vec::new();
        reader
            .for_each_row(|r| {
                seen.push((r.line(), r.iter().map(str::to_string).collect::<Vec<_>>()))
            })
            .unwrap();
        let expected: Vec<_> = table
            .rows
            .iter()
            .map(|r| (r.line, r.cells.clone()))
            .collect();
        assert_eq!(seen, expected);
        assert_eq!(seen[0].1, ["1", "x\"y"]);
    }

    /// Builds a minimal XLSX in memory: shared strings, an inline string, integers, a decimal,
    /// a text cell with leading zeros, a zero-padded number format, a date, blank rows.
    pub(crate) fn xlsx_bytes(rows: &[(u32, Vec<XCell>)]) -> Vec<u8> {
        let mut shared: Vec<String> = Vec::new();
        let mut sheet = String::from(
            r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>"#,
        );
        for (r, cells) in rows {
            sheet.push_str(&format!(r#"<row r="{r}">"#));
            for (i, cell) in cells.iter().enumerate() {
                let col = char::from(b'A' + i as u8);
                let at = format!("{col}{r}");
                match cell {
                    XCell::Shared(s) => {
                        shared.push(xml_escape(s));
                        sheet.push_str(&format!(
                            r#"<c r="{at}" t="s"><v>{}</v></c>"#,
                            shared.len() - 1
                        ));
                    }
                    XCell::Inline(s) => sheet.push_str(&format!(
                        r#"<c r="{at}" t="inlineStr"><is><t>{}</t></is></c>"#,
                        xml_escape(s)
                    )),
                    XCell::Num(v) => sheet.push_str(&format!(r#"<c r="{at}"><v>{v}</v></c>"#)),
                    XCell::Padded(v) => {
                        sheet.push_str(&format!(r#"<c r="{at}" s="2"><v>{v}</v></c>"#))
                    }
                    XCell::Date(v) => {
                        sheet.push_str(&format!(r#"<c r="{at}" s="1"><v>{v}</v></c>"#))
                    }
                    XCell::Empty => {}
                }
            }
            sheet.push_str("</row>");
        }
        sheet.push_str("</sheetData></worksheet>");
        let mut sst = format!(
            r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="{0}" uniqueCount="{0}">"#,
            shared.len()
        );
        for s in &shared {
            sst.push_str(&format!("<si><t>{s}</t></si>"));
        }
        sst.push_str("</sst>");
        xlsx_package(sheet, sst)
    }

    /// The package around a worksheet (`sheet1.xml`, the second of two sheets; the first is
    /// hidden) and its shared strings: styles 1 (a date) and 2 (`0000000`).
    pub(crate) fn xlsx_package(sheet: String, sst: String) -> Vec<u8> {
        use std::io::Write;
        use zip::write::SimpleFileOptions;
        let parts: [(&str, String); 7] = [
            ("[Content_Types].xml", r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/><Override PartName="/xl/worksheets/sheet2.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/><Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/><Override PartName="/xl/styles.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/></Types>"#.to_string()),
            ("_rels/.rels", r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>"#.to_string()),
            // A hidden first sheet: the reader must take the first *visible* one.
            ("xl/workbook.xml", r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="说明" sheetId="2" state="hidden" r:id="rId2"/><sheet name="成绩" sheetId="1" r:id="rId1"/></sheets></workbook>"#.to_string()),
            ("xl/_rels/workbook.xml.rels", r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/><Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet2.xml"/><Relationship Id="rId3" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings" Target="sharedStrings.xml"/><Relationship Id="rId4" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles" Target="styles.xml"/></Relationships>"#.to_string()),
            ("xl/styles.xml", r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><numFmts count="1"><numFmt numFmtId="164" formatCode="0000000"/></numFmts><fonts count="1"><font><sz val="11"/><name val="Calibri"/></font></fonts><fills count="1"><fill><patternFill patternType="none"/></fill></fills><borders count="1"><border/></borders><cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs><cellXfs count="3"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/><xf numFmtId="14" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/><xf numFmtId="164" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/></cellXfs></styleSheet>"#.to_string()),
            ("xl/worksheets/sheet1.xml", sheet),
            ("xl/worksheets/sheet2.xml", r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>hidden notes</t></is></c></row></sheetData></worksheet>"#.to_string()),
        ];
        let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        for (name, body) in parts
            .iter()
            .chain(std::iter::once(&("xl/sharedStrings.xml", sst)))
        {
            zip.start_file(*name, SimpleFileOptions::default()).unwrap();
            zip.write_all(body.as_bytes()).unwrap();
        }
        zip.finish().unwrap().into_inner()
    }

    fn xml_escape(s: &str) -> String {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    }

    pub(crate) enum XCell {
        Shared(&'static str),
        Inline(&'static str),
        Num(&'static str),
        Padded(&'static str),
        Date(&'static str),
        Empty,
    }

    #[test]
    fn xlsx_cells_as_text() {
        use XCell::*;
        let bytes = xlsx_bytes(&[
            (
                2,
                vec![
                    Shared("学号"),
                    Inline("成绩"),
                    Shared("日期"),
                    Shared("备注"),
                ],
            ),
            (
                3,
                vec![Num("2021001"), Num("89.5"), Date("45901"), Shared("001234")],
            ),
            (
                5,
                vec![Padded("123"), Num("90.0"), Empty, Inline("  a & b  ")],
            ),
            (6, vec![Empty, Empty, Empty, Empty]),
            (
                7,
                vec![
                    Num("3.0000000000000004"),
                    Num("1E-3"),
                    Date("45901.5"),
                    Empty,
                ],
            ),
        ]);
        // Content decides, not the name.
        let t = read_table("upload.bin", &bytes).unwrap();
        assert_eq!(
            t.format,
            SourceFormat::Xlsx {
                sheet: "成绩".into()
            }
        );
        assert_eq!(t.header_line, 2);
        assert_eq!(t.headers, ["学号", "成绩", "日期", "备注"]);
        assert_eq!(
            cells(&t),
            vec![
                (3, vec!["2021001", "89.5", "2025-09-01", "001234"]),
                (5, vec!["0000123", "90", "", "a & b"]),
                (7, vec!["3", "0.001", "2025-09-01 12:00:00", ""]),
            ]
        );
    }
}
