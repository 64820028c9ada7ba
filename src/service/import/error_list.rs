//! A preview's error list as a CSV file for the registrar to work through in Excel: one line
//! per error (row, column header, Excel letter, the cell as written, what is wrong), UTF-8 with
//! a BOM and CRLF like the grade export, and every cell neutralised against formula injection
//! the same way (`service::admin::export::cell`).

use super::validate::RowError;
use crate::service::admin::export::cell;

pub const HEADER: [&str; 5] = ["行", "列", "Excel 列", "单元格内容", "问题"];

/// The CSV text of `errors`.
pub fn csv(errors: &[RowError]) -> String {
    let mut out = String::from("\u{feff}");
    push_line(&mut out, &HEADER);
    for e in errors {
        let line = e.line.to_string();
        let letter = e.letter().unwrap_or_default();
        push_line(
            &mut out,
            &[
                &line,
                e.column.as_deref().unwrap_or(""),
                &letter,
                e.value.as_deref().unwrap_or(""),
                &e.message,
            ],
        );
    }
    out
}

/// The download's file name: the upload's stem (characters safe in a header only) + "-错误.csv".
pub fn file_name(upload: &str) -> String {
    let stem = upload.rsplit_once('.').map_or(upload, |(s, _)| s);
    let safe: String = stem
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | ' '))
        .take(60)
        .collect();
    let safe = safe.trim();
    if safe.is_empty() {
        "导入错误.csv".to_string()
    } else {
        format!("{safe}-错误.csv")
    }
}

fn push_line(out: &mut String, cells: &[&str]) {
    for (i, c) in cells.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&cell(c));
    }
    out.push_str("\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(column: Option<&str>, col: Option<usize>, value: Option<&str>, msg: &str) -> RowError {
        RowError {
            line: 7,
            column: column.map(str::to_string),
            col,
            value: value.map(str::to_string),
            message: msg.to_string(),
        }
    }

    #[test]
    fn lines_name_row_column_letter_and_value_and_neutralise_formulas() {
        let text = csv(&[
            err(Some("成绩"), Some(6), Some("abc"), "成绩应为0到100的数字"),
            err(
                Some("姓名"),
                Some(27),
                Some("=HYPERLINK(\"x\")"),
                "姓名不符, 请核对",
            ),
            err(None, None, None, "缺少必需的列：学期"),
        ]);
        let lines: Vec<&str> = text.split("\r\n").collect();
        assert_eq!(lines[0], "\u{feff}行,列,Excel 列,单元格内容,问题");
        assert_eq!(lines[1], "7,成绩,G,abc,成绩应为0到100的数字");
        assert_eq!(
            lines[2],
            "7,姓名,AB,\"'=HYPERLINK(\"\"x\"\")\",\"姓名不符, 请核对\""
        );
        assert_eq!(lines[3], "7,,,,缺少必需的列：学期");
        assert_eq!(lines[4], "");
    }

    #[test]
    fn file_names_keep_only_safe_characters() {
        assert_eq!(file_name("成绩 2025.csv"), "成绩 2025-错误.csv");
        assert_eq!(file_name("a\"b\r\n;c.xlsx"), "abc-错误.csv");
        assert_eq!(file_name("\".csv"), "导入错误.csv");
    }
}
