//! The spreadsheet side of the table reader: the first visible worksheet of an XLSX (after
//! `xlsx_limits` has checked the package) or of an old binary .xls, read through calamine; each
//! cell printed as Excel shows it (numbers without float noise, dates as dates, zero-padded
//! number formats kept), and any panic inside calamine turned into an import error.
//!
//! An XLSX sheet is read cell by cell (`sheet_cells`, calamine's streaming cell reader): memory
//! holds one row, plus the shared strings and styles calamine keeps for the workbook, however
//! many rows the sheet has. A first pass over the cells finds the used range's columns (a row's
//! cell 0 is the range's first column, as calamine's grid had it, so it must be known before the
//! first row) and refuses a sheet whose rows are out of order, before any row is handed out;
//! cells out of order within their row are placed by their column. Rows come with their number
//! as Excel shows it; a row's blankness is known as it is read, so a wide sheet is not scanned
//! again per row. The table reader wraps each row's read in [`without_panic`].
//!
//! An old binary .xls has no cell-by-cell reader in calamine and is still read whole as a grid:
//! such a sheet holds at most 65,536 rows.

use std::io::Cursor;

use calamine::{
    Data, DataRef, Range, Reader, SheetType, SheetVisible, Xls, XlsError, XlsOptions, Xlsx,
    XlsxError,
};

use super::sheet_cells::{self, SheetCells};
use super::TableError;

/// Runs a part of the XLSX reader, turning a panic in it into an import error (the import
/// thread, and the uploads after it, go on).
pub(super) fn without_panic<T>(
    read: impl FnOnce() -> Result<T, TableError>,
) -> Result<T, TableError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(read)).unwrap_or_else(|panic| {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        log::error!("the XLSX reader panicked: {what}");
        Err(TableError::new(
            "无法读取XLSX文件：文件内容异常，读取时出错（文件可能已损坏或被篡改）",
        ))
    })
}

/// An OLE compound file that calamine could not read as an old binary .xls: a
/// password-protected XLSX, or a damaged or encrypted .xls.
fn ole_file_error(bytes: &[u8], xls: &XlsError) -> TableError {
    match Xlsx::new(Cursor::new(bytes)) {
        Err(XlsxError::Password) => {
            TableError::new("XLSX文件设置了打开密码，请在Excel中取消密码后再上传")
        }
        _ => TableError::new(format!(
            "无法读取旧版Excel（.xls）文件（文件可能已损坏或设置了密码）：{xls}。可在Excel中另存为.xlsx或CSV后再上传"
        )),
    }
}

fn xlsx_error(e: XlsxError) -> TableError {
    TableError::new(format!(
        "无法读取XLSX文件（文件可能已损坏，或不是Excel工作簿）：{e}"
    ))
}

pub(super) struct SheetSource<'a> {
    pub(super) name: String,
    rows: Rows<'a>,
    /// The sheet column (0 is A) of the used range's first cell: a row's cell 0 is there.
    first_col: u32,
    /// Columns from the used range's first to its last (every row has that many cells, as
    /// the grid had).
    width: usize,
    pub(super) cells: Vec<String>,
    /// Indexes of `cells` written for the current row (only those are cleared for the next).
    written: Vec<usize>,
    /// No cell of the current row has text other than white space.
    pub(super) blank: bool,
}

enum Rows<'a> {
    /// An old .xls, read whole by calamine: the used range and the index of the next row.
    Grid { range: Range<Data>, next: usize },
    /// An XLSX, read cell by cell.
    Stream(Box<StreamedRows<'a>>),
}

/// The state of a sheet read cell by cell.
struct StreamedRows<'a> {
    cells: SheetCells<'a>,
    /// The first cell of the next row, already read (row, column, text).
    pending: Option<(u32, u32)>,
    pending_text: String,
    /// The row last handed out (zero-based), to refuse a row that comes back.
    last_row: Option<u32>,
    done: bool,
}

/// What one pass over an XLSX sheet learns before any row is handed out.
struct SheetExtent {
    first_col: u32,
    last_col: u32,
}

impl<'a> SheetSource<'a> {
    /// The first visible worksheet of an XLSX, read cell by cell: memory stays at one row
    /// (plus the shared strings and styles) however long the sheet is.
    pub(super) fn open(bytes: &'a [u8]) -> Result<SheetSource<'a>, TableError> {
        let book = sheet_cells::book(bytes).map_err(xlsx_error)?;
        let sheets = book.sheets_metadata();
        let worksheets = || sheets.iter().filter(|s| s.typ == SheetType::WorkSheet);
        let name = worksheets()
            .find(|s| s.visible == SheetVisible::Visible)
            .or_else(|| worksheets().next())
            .map(|s| s.name.clone())
            .ok_or_else(|| TableError::new("XLSX文件中没有工作表"))?;
        let mut cells = match SheetCells::open(book, &name) {
            Ok(cells) => cells,
            // A chart sheet listed as a worksheet: nothing to read, as calamine's grid had.
            Err(XlsxError::NotAWorksheet(_)) => {
                return Ok(SheetSource::new(
                    name,
                    Rows::Grid {
                        range: Range::default(),
                        next: 0,
                    },
                    0,
                    0,
                ))
            }
            Err(e) => return Err(xlsx_error(e)),
        };
        // A first pass finds the used range's columns (a row's cell 0 is the range's first
        // column, so it must be known before the first row) and refuses rows out of order.
        let extent = sheet_extent(&mut cells)?;
        cells.restart().map_err(xlsx_error)?;
        let (first_col, width) = match extent {
            Some(e) => (e.first_col, (e.last_col - e.first_col) as usize + 1),
            None => (0, 0),
        };
        let rows = Rows::Stream(Box::new(StreamedRows {
            cells,
            pending: None,
            pending_text: String::new(),
            last_row: None,
            done: false,
        }));
        Ok(SheetSource::new(name, rows, first_col, width))
    }

    /// An old binary .xls workbook (BIFF8, as 强智 and URP export), first visible worksheet,
    /// read whole (calamine has no cell-by-cell reader for .xls; such a sheet has at most
    /// 65,536 rows).
    pub(super) fn open_xls(bytes: &[u8]) -> Result<SheetSource<'a>, TableError> {
        let mut book = Xls::new_with_options(Cursor::new(bytes), XlsOptions::default())
            .map_err(|e| ole_file_error(bytes, &e))?;
        let sheets = book.sheets_metadata();
        let worksheets = || sheets.iter().filter(|s| s.typ == SheetType::WorkSheet);
        let name = worksheets()
            .find(|s| s.visible == SheetVisible::Visible)
            .or_else(|| worksheets().next())
            .map(|s| s.name.clone())
            .ok_or_else(|| TableError::new("旧版Excel（.xls）文件中没有工作表"))?;
        let range = book
            .worksheet_range(&name)
            .map_err(|e| TableError::new(format!("无法读取旧版Excel（.xls）文件：{e}")))?;
        let first_col = range.start().map_or(0, |(_, c)| c);
        let width = range.get_size().1;
        Ok(SheetSource::new(
            name,
            Rows::Grid { range, next: 0 },
            first_col,
            width,
        ))
    }

    fn new(name: String, rows: Rows<'a>, first_col: u32, width: usize) -> SheetSource<'a> {
        SheetSource {
            name,
            rows,
            first_col,
            width,
            cells: Vec::new(),
            written: Vec::new(),
            blank: true,
        }
    }

    /// The sheet column (0 is A) of the used range's first cell.
    pub(super) fn first_column(&self) -> usize {
        self.first_col as usize
    }

    /// Back to the first row (the header search read past the header row).
    pub(super) fn rewind(&mut self) -> Result<(), TableError> {
        match &mut self.rows {
            Rows::Grid { next, .. } => *next = 0,
            Rows::Stream(s) => {
                s.cells.restart().map_err(xlsx_error)?;
                s.pending = None;
                s.last_row = None;
                s.done = false;
            }
        }
        Ok(())
    }

    /// Reads the next row that has a cell (the grid's rows without any are skipped too, as
    /// blank); returns its row number as Excel shows it.
    pub(super) fn advance(&mut self) -> Result<Option<usize>, TableError> {
        for i in self.written.drain(..) {
            if let Some(cell) = self.cells.get_mut(i) {
                cell.clear();
            }
        }
        self.cells.resize_with(self.width, String::new);
        self.blank = true;
        match &mut self.rows {
            Rows::Grid { range, next } => {
                let origin = range.start().unwrap_or((0, 0));
                if *next >= range.get_size().0 {
                    return Ok(None);
                }
                let r = *next;
                *next += 1;
                for (c, out) in self.cells.iter_mut().enumerate() {
                    if let Some(data) = range.get((r, c)) {
                        write_cell(out, &data_ref(data), 0);
                        self.blank &= out.trim().is_empty();
                        self.written.push(c);
                    }
                }
                Ok(Some(origin.0 as usize + r + 1))
            }
            Rows::Stream(s) => s.fill(
                &mut self.cells,
                &mut self.written,
                &mut self.blank,
                self.first_col,
            ),
        }
    }
}

impl StreamedRows<'_> {
    /// Reads the cells of the next row into `cells` (at their column less `first_col`);
    /// returns the row number, or `None` at the end.
    fn fill(
        &mut self,
        cells: &mut [String],
        written: &mut Vec<usize>,
        blank: &mut bool,
        first_col: u32,
    ) -> Result<Option<usize>, TableError> {
        let row = match self.pending.take() {
            Some(at) => at,
            None => match self.next_cell()? {
                Some(at) => at,
                None => return Ok(None),
            },
        };
        if self.last_row.is_some_and(|last| row.0 <= last) {
            return Err(out_of_order(row.0, self.last_row.unwrap_or(row.0)));
        }
        self.last_row = Some(row.0);
        let mut at = row;
        loop {
            let Some(i) =
                at.1.checked_sub(first_col)
                    .map(|i| i as usize)
                    .filter(|&i| i < cells.len())
            else {
                return Err(TableError::at(
                    at.0 as usize + 1,
                    "XLSX文件读取时内容前后不一致（文件可能已损坏）",
                ));
            };
            let out = &mut cells[i];
            out.clear();
            out.push_str(&self.pending_text);
            *blank &= out.trim().is_empty();
            written.push(i);
            match self.next_cell()? {
                None => break,
                Some(next) if next.0 == row.0 => at = next,
                Some(next) if next.0 > row.0 => {
                    self.pending = Some(next);
                    break;
                }
                Some(next) => return Err(out_of_order(next.0, row.0)),
            }
        }
        Ok(Some(row.0 as usize + 1))
    }

    /// The position of the next cell that has a value, its text in `pending_text`.
    fn next_cell(&mut self) -> Result<Option<(u32, u32)>, TableError> {
        if self.done {
            return Ok(None);
        }
        let text = &mut self.pending_text;
        loop {
            let read = self.cells.next(|cell| {
                if matches!(cell.value, DataRef::Empty) {
                    return None;
                }
                text.clear();
                let pad = match (cell.value, cell.style) {
                    (DataRef::Int(_) | DataRef::Float(_), Some(style)) => style
                        .number_format
                        .as_ref()
                        .map_or(0, |nf| zero_pad_width(&nf.format_code)),
                    _ => 0,
                };
                write_cell(text, cell.value, pad);
                Some((cell.row, cell.col))
            });
            match read.map_err(xlsx_error)? {
                None => {
                    self.done = true;
                    return Ok(None);
                }
                Some(None) => continue,
                Some(Some(at)) => return Ok(Some(at)),
            }
        }
    }
}

/// The used range's columns (cells with a value only, as calamine's grid counts them), or
/// `None` for a sheet without any; refuses a sheet whose rows are not in order.
fn sheet_extent(cells: &mut SheetCells<'_>) -> Result<Option<SheetExtent>, TableError> {
    let mut extent: Option<SheetExtent> = None;
    let mut last_row: Option<u32> = None;
    loop {
        let read = cells
            .next(|cell| (!matches!(cell.value, DataRef::Empty)).then_some((cell.row, cell.col)));
        let (row, col) = match read.map_err(xlsx_error)? {
            None => return Ok(extent),
            Some(None) => continue,
            Some(Some(at)) => at,
        };
        if let Some(last) = last_row.filter(|&last| row < last) {
            return Err(out_of_order(row, last));
        }
        last_row = Some(row);
        extent = Some(match extent {
            None => SheetExtent {
                first_col: col,
                last_col: col,
            },
            Some(e) => SheetExtent {
                first_col: e.first_col.min(col),
                last_col: e.last_col.max(col),
            },
        });
    }
}

/// A cell of (zero-based) `row` found after cells of the later row `after`: allowed in XLSX,
/// written by no spreadsheet program we know, and refused rather than read into a wrong row.
fn out_of_order(row: u32, after: u32) -> TableError {
    TableError::at(
        row as usize + 1,
        format!(
            "XLSX文件中第{}行的单元格出现在第{}行之后（行的顺序异常），无法逐行读取。请在Excel中打开该文件并另存为.xlsx后再上传",
            row as usize + 1,
            after as usize + 1
        ),
    )
}

/// A cell of an .xls grid in the form the XLSX reader yields.
pub(super) fn data_ref(data: &Data) -> DataRef<'_> {
    match data {
        Data::Int(i) => DataRef::Int(*i),
        Data::Float(f) => DataRef::Float(*f),
        Data::String(s) => DataRef::SharedString(s),
        Data::Bool(b) => DataRef::Bool(*b),
        Data::DateTime(dt) => DataRef::DateTime(*dt),
        Data::DateTimeIso(s) => DataRef::DateTimeIso(s.clone()),
        Data::DurationIso(s) => DataRef::DurationIso(s.clone()),
        Data::Error(e) => DataRef::Error(e.clone()),
        Data::Empty => DataRef::Empty,
    }
}

/// Width of an all-zeros number format such as `000000` (used for zero-padded IDs), else 0.
pub(super) fn zero_pad_width(format_code: &str) -> usize {
    let code = format_code.trim_matches('"');
    if code.len() > 1 && code.bytes().all(|b| b == b'0') {
        code.len()
    } else {
        0
    }
}

/// Writes one cell as the text a user sees: integers without ".0", other numbers to Excel's 15
/// significant digits (so 0.1+0.2 shows as 0.3), dates as `YYYY-MM-DD[ HH:MM:SS]`.
pub(super) fn write_cell(out: &mut String, data: &DataRef<'_>, pad: usize) {
    use std::fmt::Write as _;
    match data {
        DataRef::Empty => {}
        DataRef::String(s) | DataRef::DateTimeIso(s) | DataRef::DurationIso(s) => out.push_str(s),
        DataRef::SharedString(s) => out.push_str(s),
        DataRef::Int(i) => {
            let _ = write!(out, "{i:0pad$}");
        }
        DataRef::Float(f) => write_number(out, *f, pad),
        DataRef::Bool(b) => out.push_str(if *b { "TRUE" } else { "FALSE" }),
        DataRef::DateTime(dt) => {
            if dt.is_duration() {
                write_number(out, dt.as_f64(), 0);
            } else {
                let (y, mo, d, h, mi, s, _) = dt.to_ymd_hms_milli();
                if dt.as_f64() < 1.0 {
                    let _ = write!(out, "{h:02}:{mi:02}:{s:02}");
                } else if (h, mi, s) == (0, 0, 0) {
                    let _ = write!(out, "{y:04}-{mo:02}-{d:02}");
                } else {
                    let _ = write!(out, "{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}");
                }
            }
        }
        DataRef::Error(e) => {
            let _ = write!(out, "{e}");
        }
    }
}

fn write_number(out: &mut String, f: f64, pad: usize) {
    use std::fmt::Write as _;
    if !f.is_finite() {
        let _ = write!(out, "{f}");
        return;
    }
    // Excel keeps 15 significant digits: integers below 10^15 are exact and print as such;
    // larger numbers (an 18-digit ID typed as a number) already lost digits in Excel, so they
    // print in Excel's scientific form and fail validation visibly instead of silently.
    if f.abs() >= 1e15 {
        let start = out.len();
        let _ = write!(out, "{f:.14E}");
        if let Some(e) = out[start..].find('E').map(|e| start + e) {
            let exponent = out.split_off(e);
            while out.ends_with('0') {
                out.pop();
            }
            if out.ends_with('.') {
                out.pop();
            }
            out.push_str("E+");
            out.push_str(exponent.trim_start_matches('E'));
        }
        return;
    }
    if f.fract() == 0.0 {
        let _ = write!(out, "{:0pad$}", f as i64);
        return;
    }
    // 15 significant digits, like Excel's display, then trailing zeros trimmed.
    let magnitude = f.abs().log10().floor() as i32;
    let decimals = (14 - magnitude).clamp(0, 30) as usize;
    let start = out.len();
    let _ = write!(out, "{f:.decimals$}");
    if out[start..].contains('.') {
        while out.ends_with('0') {
            out.pop();
        }
        if out.ends_with('.') {
            out.pop();
        }
    }
    if &out[start..] == "-0" {
        out.truncate(start);
        out.push('0');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_in_the_xlsx_reader_is_an_error() {
        let caught = without_panic::<()>(|| panic!("calamine broke"));
        let err = caught.expect_err("the panic is an error");
        assert!(err.message.contains("无法读取XLSX文件"), "{err}");
        assert_eq!(without_panic(|| Ok(7)), Ok(7));
    }

    #[test]
    fn numbers_print_like_excel() {
        let show = |f: f64, pad: usize| {
            let mut s = String::new();
            write_number(&mut s, f, pad);
            s
        };
        assert_eq!(show(2021001.0, 0), "2021001");
        assert_eq!(show(3.0, 0), "3");
        assert_eq!(show(89.5, 0), "89.5");
        assert_eq!(show(0.1 + 0.2, 0), "0.3");
        assert_eq!(show(89.49999999999999, 0), "89.5");
        assert_eq!(show(2.25, 0), "2.25");
        assert_eq!(show(-0.0, 0), "0");
        assert_eq!(show(123.0, 6), "000123");
        assert_eq!(show(202_100_100_012_345.0, 0), "202100100012345");
        assert_eq!(show(202_112_345_678_901_234.0, 0), "2.02112345678901E+17");
        assert_eq!(show(1e15, 0), "1E+15");
        assert_eq!(zero_pad_width("000000"), 6);
        assert_eq!(zero_pad_width("General"), 0);
        assert_eq!(zero_pad_width("0"), 0);
        assert_eq!(zero_pad_width("0.00"), 0);
    }
}
