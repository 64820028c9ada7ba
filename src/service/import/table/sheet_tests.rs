//! Tests of the cell-by-cell XLSX reader against calamine's whole-sheet grid (what the reader
//! used before): the same rows, row numbers, cells and first column for sheets with gaps,
//! missing and out-of-order cells; rows out of order refused; and an ignored benchmark of peak
//! memory on a large sheet.

use std::io::Cursor;

use calamine::{Reader, Xlsx};

use super::tests::xlsx_package;
use super::xlsx::{data_ref, write_cell, zero_pad_width, SheetSource};
use super::{TableReader, XlsxLimits};

/// Rows of a sheet: (row number, trimmed cells) of the non-blank ones, and the first column.
type Rows = (usize, Vec<(usize, Vec<String>)>);

fn sheet(rows: &str) -> Vec<u8> {
    let xml = format!(
        r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>{rows}</sheetData></worksheet>"#
    );
    let sst = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="0" uniqueCount="0"></sst>"#;
    xlsx_package(xml, sst.to_string())
}

fn text(at: &str, s: &str) -> String {
    format!(r#"<c r="{at}" t="inlineStr"><is><t>{s}</t></is></c>"#)
}

/// The sheet as the cell-by-cell reader gives it.
fn streamed(bytes: &[u8]) -> Result<Rows, String> {
    let mut source = SheetSource::open(bytes).map_err(|e| e.to_string())?;
    let mut rows = Vec::new();
    while let Some(line) = source.advance().map_err(|e| e.to_string())? {
        let cells: Vec<String> = source.cells.iter().map(|c| c.trim().to_string()).collect();
        assert_eq!(
            source.blank,
            cells.iter().all(String::is_empty),
            "row {line}"
        );
        if !source.blank {
            rows.push((line, cells));
        }
    }
    Ok((source.first_column(), rows))
}

/// The sheet as the reader used to read it: calamine's dense grid and its `StyleRange`.
fn grid(bytes: &[u8]) -> Rows {
    let mut book = Xlsx::new(Cursor::new(bytes)).expect("workbook");
    let range = book.worksheet_range("成绩").expect("range");
    let styles = book.worksheet_style("成绩").ok();
    let origin = range.start().unwrap_or((0, 0));
    let (height, width) = range.get_size();
    let mut rows = Vec::new();
    for r in 0..height {
        let abs_row = origin.0 + r as u32;
        let cells: Vec<String> = (0..width)
            .map(|c| {
                let mut out = String::new();
                if let Some(data) = range.get((r, c)) {
                    let pad = styles
                        .as_ref()
                        .filter(|_| {
                            matches!(data, calamine::Data::Int(_) | calamine::Data::Float(_))
                        })
                        .and_then(|s| s.get((abs_row, origin.1 + c as u32)))
                        .and_then(|s| s.number_format.as_ref())
                        .map_or(0, |nf| zero_pad_width(&nf.format_code));
                    write_cell(&mut out, &data_ref(data), pad);
                }
                out.trim().to_string()
            })
            .collect();
        if cells.iter().any(|c| !c.is_empty()) {
            rows.push((abs_row as usize + 1, cells));
        }
    }
    (origin.1 as usize, rows)
}

#[test]
fn gaps_and_missing_cells_give_the_grid_s_rows_and_row_numbers() {
    let rows = [
        // The used range starts at column C; the header row is row 2, D2 and E2 missing.
        format!("<row r=\"2\">{}{}</row>", text("C2", "学号"), text("F2", "备注")),
        // Missing cells inside a row; a zero-padded number; a date.
        r#"<row r="3"><c r="C3"><v>2021001</v></c><c r="E3" s="1"><v>45901</v></c><c r="F3" s="2"><v>42</v></c></row>"#.into(),
        // An empty row element and a styled cell without a value: blank, and the latter
        // (at Z) does not widen the range, as calamine's grid leaves it out too.
        r#"<row r="4"/><row r="5"><c r="Z5" s="1"/></row>"#.into(),
        // First cell missing.
        r#"<row r="7"><c r="D7"><v>88.5</v></c><c r="E7" t="b"><v>1</v></c></row>"#.into(),
        // White space only: blank.
        format!("<row r=\"9\">{}</row>", text("C9", "   ")),
        // Cells out of order within their row, and one written twice (the later one counts).
        format!(
            "<row r=\"10\">{}<c r=\"C10\"><v>2021002</v></c><c r=\"D10\"><v>1</v></c><c r=\"D10\"><v>2</v></c></row>",
            text("F10", "x")
        ),
        // Rows and cells without `r`: they follow the row and cell before them.
        r#"<row><c r="C11"><v>2021003</v></c><c><v>0.30000000000000004</v></c></row>"#.into(),
        r#"<row><c r="D12" t="e"><v>#N/A</v></c></row>"#.into(),
        // A far row.
        r#"<row r="1000"><c r="F1000"><v>7</v></c></row>"#.into(),
    ];
    let bytes = sheet(&rows.concat());
    let (first, got) = streamed(&bytes).expect("read");
    assert_eq!((first, &got), (grid(&bytes).0, &grid(&bytes).1));
    assert_eq!(first, 2, "column C");
    let lines: Vec<usize> = got.iter().map(|(line, _)| *line).collect();
    assert_eq!(lines, [2, 3, 7, 10, 11, 12, 1000]);
    assert_eq!(got[1].1, ["2021001", "", "2025-09-01", "0000042"]);
    assert_eq!(got[2].1, ["", "88.5", "TRUE", ""]);
    assert_eq!(got[3].1, ["2021002", "2", "", "x"]);
    assert_eq!(got[4].1, ["2021003", "0.3", "", ""]);
    assert_eq!(got[5].1, ["", "#N/A", "", ""]);

    // Through the table reader: header found, data rows with their Excel row numbers.
    let mut reader = TableReader::open("g.xlsx", &bytes).expect("open");
    assert_eq!(reader.header_line(), 2);
    assert_eq!(reader.headers(), ["学号", "", "", "备注"]);
    assert_eq!(reader.first_column(), 2);
    let mut seen = Vec::new();
    reader
        .for_each_row(|r| seen.push((r.line(), r.cell(0).to_string())))
        .expect("rows");
    assert_eq!(
        seen,
        [
            (3, "2021001".to_string()),
            (7, String::new()),
            (10, "2021002".into()),
            (11, "2021003".into()),
            (12, String::new()),
            (1000, String::new()),
        ]
    );
}

#[test]
fn cells_without_positions_and_a_sheet_starting_at_a() {
    let rows = r#"<row><c t="inlineStr"><is><t>学号</t></is></c><c t="inlineStr"><is><t>成绩</t></is></c></row><row><c><v>2021001</v></c><c><v>90</v></c></row><row/><row><c r="B4"><v>80</v></c></row>"#;
    let bytes = sheet(rows);
    let got = streamed(&bytes).expect("read");
    assert_eq!(got, grid(&bytes));
    assert_eq!(got.1.iter().map(|(l, _)| *l).collect::<Vec<_>>(), [1, 2, 4]);
    assert_eq!(got.1[2].1, ["", "80"]);
}

#[test]
fn no_header_in_the_first_rows_reads_again_from_the_first_row() {
    // 25 rows without a student-ID header: the header search reads past twenty of them and
    // starts again at the first (the validator then reports the missing columns).
    let rows: String = (3..28)
        .map(|r| {
            format!(
                "<row r=\"{r}\">{}<c r=\"B{r}\"><v>{r}</v></c></row>",
                text(&format!("A{r}"), "甲")
            )
        })
        .collect();
    let bytes = sheet(&rows);
    let mut reader = TableReader::open("g.xlsx", &bytes).expect("open");
    assert_eq!(reader.header_line(), 3);
    assert_eq!(reader.headers(), ["甲", "3"]);
    let mut lines = Vec::new();
    reader
        .for_each_row(|r| lines.push((r.line(), r.cell(1).to_string())))
        .expect("rows");
    assert_eq!(lines.len(), 24);
    assert_eq!(lines[0], (4, "4".to_string()));
    assert_eq!(lines[23], (27, "27".to_string()));
}

#[test]
fn rows_out_of_order_are_refused_naming_the_row() {
    let rows = format!(
        "<row r=\"1\">{}</row><row r=\"5\"><c r=\"A5\"><v>1</v></c></row><row r=\"3\"><c r=\"A3\"><v>2</v></c></row>",
        text("A1", "学号")
    );
    let bytes = sheet(&rows);
    let err = streamed(&bytes).expect_err("refused");
    assert!(err.contains("line 3:"), "{err}");
    assert!(err.contains("第3行的单元格出现在第5行之后"), "{err}");
    let err = TableReader::open("g.xlsx", &bytes)
        .err()
        .expect("refused by the table reader too");
    assert_eq!(err.line, Some(3));

    // A row element without `r` after a later one is the same thing.
    let rows = format!(
        "<row r=\"7\">{}</row><row r=\"2\"></row><row><c r=\"A3\"><v>1</v></c></row>",
        text("A7", "学号")
    );
    let err = streamed(&sheet(&rows)).expect_err("refused");
    assert!(err.contains("第3行的单元格出现在第7行之后"), "{err}");
}

#[test]
fn an_empty_sheet_is_an_empty_file() {
    let bytes = sheet("<row r=\"3\"/>");
    assert_eq!(streamed(&bytes), Ok((0, Vec::new())));
    let err = TableReader::open("g.xlsx", &bytes)
        .err()
        .expect("empty file");
    assert!(err.message.contains("文件是空的"), "{err}");
}

/// Peak memory of reading a 200,000-row, 23-column XLSX (deflated, inline strings and numbers)
/// cell by cell against calamine's grid (each after the package check, as an import does),
/// in one process:
/// `cargo test --lib sheet_tests -- --ignored --nocapture` (`BENCH_ROWS` for another size).
#[test]
#[ignore]
fn bench_streamed_sheet_memory() {
    fn peak_kib() -> u64 {
        std::fs::read_to_string("/proc/self/status")
            .expect("status")
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmHWM")
    }
    fn current_kib() -> u64 {
        std::fs::read_to_string("/proc/self/status")
            .expect("status")
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS")
    }
    let reset_peak = || std::fs::write("/proc/self/clear_refs", "5").is_ok();
    use std::fmt::Write as _;
    let n: u32 = std::env::var("BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let mut xml = String::new();
    let header: String = (0..23u8)
        .map(|c| text(&format!("{}1", char::from(b'A' + c)), &format!("列{c}")))
        .collect();
    let _ = write!(
        xml,
        "<row r=\"1\">{}</row>",
        header.replacen("列0", "学号", 1)
    );
    for i in 0..n {
        let r = i + 2;
        let _ = write!(xml, "<row r=\"{r}\">");
        for c in 0..23u8 {
            let at = format!("{}{r}", char::from(b'A' + c));
            if c % 2 == 0 {
                let _ = write!(xml, "<c r=\"{at}\"><v>{}</v></c>", 2_021_000_000 + i);
            } else {
                xml.push_str(&text(&at, &format!("课程{c}-{}", i % 97)));
            }
        }
        xml.push_str("</row>");
    }
    let bytes = sheet(&xml);
    drop(xml);
    println!(
        "BENCH sheet of {n} rows × 23 columns: {:.1} MB deflated",
        bytes.len() as f64 / 1e6
    );

    let measure = |what: &str, read: &mut dyn FnMut() -> usize| {
        assert!(reset_peak(), "the kernel resets the peak RSS");
        let before = current_kib();
        let started = std::time::Instant::now();
        let rows = read();
        println!(
            "BENCH {what}: {rows} rows in {:.2} s, peak RSS {:.1} MB above the {:.1} MB before",
            started.elapsed().as_secs_f64(),
            peak_kib().saturating_sub(before) as f64 / 1024.0,
            before as f64 / 1024.0
        );
        rows
    };
    let streamed_rows = measure("cell by cell (TableReader)", &mut || {
        let mut reader = TableReader::open("big.xlsx", &bytes).expect("open");
        let mut rows = 0;
        reader.for_each_row(|_| rows += 1).expect("rows");
        rows
    });
    let grid_rows = measure("calamine grid + StyleRange (before)", &mut || {
        // What opening the table reader did before, less the header search.
        let limits = XlsxLimits::for_upload(bytes.len() as u64);
        super::xlsx_limits::check(&bytes, &limits).expect("checked");
        let mut book = Xlsx::new(Cursor::new(&bytes[..])).expect("workbook");
        let range = book.worksheet_range("成绩").expect("range");
        let styles = book.worksheet_style("成绩").expect("styles");
        drop(styles);
        range.get_size().0 - 1
    });
    assert_eq!(streamed_rows, n as usize);
    assert_eq!(grid_rows, n as usize);
}
