//! The spreadsheet side of the table reader: the first visible worksheet of an XLSX (after
//! `xlsx_limits` has checked the package) or of an old binary .xls, read through calamine; each
//! cell printed as Excel shows it (numbers without float noise, dates as dates, zero-padded
//! number formats kept), and any panic inside calamine turned into an import error.

use std::io::Cursor;

use calamine::{
    Data, Range, Reader, SheetType, SheetVisible, StyleRange, Xls, XlsError, XlsOptions, Xlsx,
    XlsxError,
};

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

pub(super) struct SheetSource {
    pub(super) name: String,
    range: Range<Data>,
    styles: Option<StyleRange>,
    /// Absolute (row, column) of the range's first cell.
    origin: (u32, u32),
    /// Index (relative to the range) of the next row to read.
    next: usize,
    pub(super) cells: Vec<String>,
}

impl SheetSource {
    pub(super) fn open(bytes: &[u8]) -> Result<SheetSource, TableError> {
        let mut book = Xlsx::new(Cursor::new(bytes)).map_err(xlsx_error)?;
        let sheets = book.sheets_metadata();
        let worksheets = || sheets.iter().filter(|s| s.typ == SheetType::WorkSheet);
        let name = worksheets()
            .find(|s| s.visible == SheetVisible::Visible)
            .or_else(|| worksheets().next())
            .map(|s| s.name.clone())
            .ok_or_else(|| TableError::new("XLSX文件中没有工作表"))?;
        let range = book.worksheet_range(&name).map_err(xlsx_error)?;
        // Number formats only matter for zero-padded numbers; a workbook whose styles cannot be
        // read is still read, just without that.
        let styles = book.worksheet_style(&name).ok();
        Ok(SheetSource::new(name, range, styles))
    }

    /// An old binary .xls workbook (BIFF8, as 强智 and URP export), first visible worksheet.
    pub(super) fn open_xls(bytes: &[u8]) -> Result<SheetSource, TableError> {
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
        Ok(SheetSource::new(name, range, None))
    }

    fn new(name: String, range: Range<Data>, styles: Option<StyleRange>) -> SheetSource {
        let origin = range.start().unwrap_or((0, 0));
        SheetSource {
            name,
            range,
            styles,
            origin,
            next: 0,
            cells: Vec::new(),
        }
    }

    /// Back to the first row (the header search read past the header row).
    /// The sheet column (0 is A) of the used range's first cell.
    pub(super) fn first_column(&self) -> usize {
        self.origin.1 as usize
    }

    pub(super) fn rewind(&mut self) {
        self.next = 0;
    }

    pub(super) fn advance(&mut self) -> Option<usize> {
        let (height, width) = self.range.get_size();
        if self.next >= height {
            return None;
        }
        let r = self.next;
        self.next += 1;
        self.cells.resize_with(width, String::new);
        let abs_row = self.origin.0.saturating_add(r as u32);
        for (c, out) in self.cells.iter_mut().enumerate() {
            out.clear();
            let Some(data) = self.range.get((r, c)) else {
                continue;
            };
            let pad = match (data, &self.styles) {
                (Data::Int(_) | Data::Float(_), Some(styles)) => styles
                    .get((abs_row, self.origin.1.saturating_add(c as u32)))
                    .and_then(|s| s.number_format.as_ref())
                    .map_or(0, |nf| zero_pad_width(&nf.format_code)),
                _ => 0,
            };
            write_cell(out, data, pad);
        }
        Some(abs_row as usize + 1)
    }
}

/// Width of an all-zeros number format such as `000000` (used for zero-padded IDs), else 0.
fn zero_pad_width(format_code: &str) -> usize {
    let code = format_code.trim_matches('"');
    if code.len() > 1 && code.bytes().all(|b| b == b'0') {
        code.len()
    } else {
        0
    }
}

/// Writes one cell as the text a user sees: integers without ".0", other numbers to Excel's 15
/// significant digits (so 0.1+0.2 shows as 0.3), dates as `YYYY-MM-DD[ HH:MM:SS]`.
fn write_cell(out: &mut String, data: &Data, pad: usize) {
    use std::fmt::Write as _;
    match data {
        Data::Empty => {}
        Data::String(s) | Data::DateTimeIso(s) | Data::DurationIso(s) => out.push_str(s),
        Data::Int(i) => {
            let _ = write!(out, "{i:0pad$}");
        }
        Data::Float(f) => write_number(out, *f, pad),
        Data::Bool(b) => out.push_str(if *b { "TRUE" } else { "FALSE" }),
        Data::DateTime(dt) => {
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
        Data::Error(e) => {
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
