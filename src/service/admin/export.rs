//! The grade export: CSV in the import format (学号,姓名,学期,课程代码,课程名称,学分,成绩,考试性质,
//! the header names the importer accepts), UTF-8 with a BOM so that Excel opens it, CRLF line
//! ends, RFC 4180 quoting, and cells that Excel would run as a formula (starting with = + - @,
//! a tab or a carriage return) neutralised with a leading single quote.

use std::borrow::Cow;
use std::io::Write;

use crate::service::Ctx;
use crate::store::{Store, StoreError};

pub const HEADER: [&str; 8] = [
    "学号",
    "姓名",
    "学期",
    "课程代码",
    "课程名称",
    "学分",
    "成绩",
    "考试性质",
];

pub(super) const BOM: &str = "\u{feff}";

/// One CSV cell: neutralised for spreadsheets, then quoted when it must be. A value that would
/// read back changed — one starting `=`, `+`, `-`, `@` (a formula to Excel), or such a value behind
/// leading `'`s (which the importer would take for our own quote) — gets one `'` in front.
pub fn cell(value: &str) -> Cow<'_, str> {
    let risky = value.starts_with(['\t', '\r'])
        || value
            .trim_start_matches('\'')
            .starts_with(['=', '+', '-', '@']);
    let needs_quotes = value.contains([',', '"', '\n', '\r']);
    if !risky && !needs_quotes {
        return Cow::Borrowed(value);
    }
    let mut out = String::with_capacity(value.len() + 4);
    if needs_quotes {
        out.push('"');
    }
    if risky {
        out.push('\'');
    }
    for c in value.chars() {
        if c == '"' {
            out.push('"');
        }
        out.push(c);
    }
    if needs_quotes {
        out.push('"');
    }
    Cow::Owned(out)
}

pub(super) fn line(out: &mut impl Write, cells: &[&str]) -> std::io::Result<()> {
    for (i, c) in cells.iter().enumerate() {
        if i > 0 {
            out.write_all(b",")?;
        }
        out.write_all(cell(c).as_bytes())?;
    }
    out.write_all(b"\r\n")
}

fn write_error(e: std::io::Error) -> StoreError {
    StoreError::Io(format!("cannot write the export: {e}"))
}

/// The server's export: [`write_csv`] of the context's data file.
pub fn export(ctx: &Ctx, term: Option<&str>, out: &mut impl Write) -> Result<u64, StoreError> {
    write_csv(&ctx.store, term, out)
}

/// Write every grade row (of `term`, when given) as CSV; returns the number of rows.
pub fn write_csv(
    store: &Store,
    term: Option<&str>,
    out: &mut impl Write,
) -> Result<u64, StoreError> {
    out.write_all(BOM.as_bytes()).map_err(write_error)?;
    line(out, &HEADER).map_err(write_error)?;
    let mut rows = 0u64;
    store.for_each_grade_with_name(term, |r, name| {
        let credit = r.credit.to_string();
        let score = r.score.to_string();
        line(
            out,
            &[
                &r.student_id,
                name.unwrap_or(""),
                r.term.as_str(),
                &r.course_code,
                &r.course_name,
                &credit,
                &score,
                r.kind.label(),
            ],
        )
        .map_err(write_error)?;
        rows += 1;
        Ok(())
    })?;
    out.flush().map_err(write_error)?;
    Ok(rows)
}

/// The download's file name: `grades.csv` or `grades-2025-2026-1.csv`.
pub fn file_name(term: Option<&str>) -> String {
    match term {
        Some(t) => format!("grades-{t}.csv"),
        None => "grades.csv".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells() {
        assert_eq!(cell("2021001"), "2021001");
        assert_eq!(cell("高等数学"), "高等数学");
        assert_eq!(cell("=SUM(A1:A9)"), "'=SUM(A1:A9)");
        assert_eq!(cell("+86"), "'+86");
        assert_eq!(cell("-1"), "'-1");
        assert_eq!(cell("@cmd"), "'@cmd");
        assert_eq!(cell("\tx"), "'\tx");
        assert_eq!(cell("\rx"), "\"'\rx\"");
        assert_eq!(cell("a,b"), "\"a,b\"");
        assert_eq!(cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(cell("=a,\"b\""), "\"'=a,\"\"b\"\"\"");
        assert_eq!(cell("two\nlines"), "\"two\nlines\"");
        assert_eq!(cell(""), "");
        assert_eq!(cell("'=x"), "''=x");
        assert_eq!(cell("''@x"), "'''@x");
        assert_eq!(cell("'x"), "'x");
    }

    #[test]
    fn export_reads_back_through_the_importer() {
        use crate::grades::{Credit, ExamKind, GradeRecord, Score, Term};
        use crate::store::grades::{grade_key, grade_value, ImportBatch, ImportRecord};
        use crate::store::students::Student;

        let d = std::env::temp_dir().join(format!("wxg-export-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        let store = Store::open(&d.join("x.redb")).unwrap();
        let rec =
            |sid: &str, term: &str, code: &str, name: &str, credit: &str, score: &str, kind| {
                GradeRecord {
                    student_id: sid.into(),
                    term: Term::parse(term).unwrap(),
                    course_code: code.into(),
                    course_name: name.into(),
                    credit: Credit::parse(credit).unwrap(),
                    score: Score::parse(score).unwrap(),
                    kind,
                    name: None,
                    course: Default::default(),
                }
            };
        let rows = vec![
            rec(
                "2021001",
                "2025-2026-1",
                "MA101",
                "高等数学, 上",
                "4.5",
                "89.5",
                ExamKind::Normal,
            ),
            rec(
                "2021001",
                "2025-2026-1",
                "PE1",
                "体育\"一\"",
                "1",
                "优秀",
                ExamKind::Normal,
            ),
            rec(
                "2021001",
                "2025-2026-1",
                "-X1",
                "=创新实践",
                "1",
                "合格",
                ExamKind::Normal,
            ),
            rec(
                "2021002",
                "2024-2025-2",
                "MA101",
                "高等数学",
                "4",
                "缺考",
                ExamKind::Makeup,
            ),
        ];
        let student = Student {
            student_id: "2021001".into(),
            name: "张三".into(),
            verify: "h".into(),
            class: None,
            major: None,
            college: None,
            cohort: None,
        };
        let batch = ImportBatch {
            students: vec![("2021001".into(), serde_json::to_vec(&student).unwrap())],
            grade_upserts: rows
                .iter()
                .map(|r| {
                    (
                        grade_key(&r.student_id, &r.term, &r.course_code, r.kind),
                        grade_value(r),
                    )
                })
                .collect(),
            ..Default::default()
        };
        let record = ImportRecord {
            by: "t".into(),
            kind: "grades".into(),
            file_name: "t".into(),
            result: "committed".into(),
            ..Default::default()
        };
        store.apply_import(&batch, record, 0, |_, _| Ok(0)).unwrap();

        let mut out = Vec::new();
        assert_eq!(write_csv(&store, None, &mut out).unwrap(), 4);
        assert!(
            String::from_utf8_lossy(&out).contains("'-X1,'=创新实践"),
            "formula-like cells are neutralised"
        );
        assert!(out.starts_with(BOM.as_bytes()));
        let v = crate::service::import::validate::read_grades("grades.csv", &out).unwrap();
        assert!(v.is_ok(), "{:?}", v.errors);
        let mut back: Vec<GradeRecord> = v.records.into_iter().map(|(_, r)| r).collect();
        assert_eq!(back[0].name.as_deref(), Some("张三"));
        assert_eq!(back[3].name, None, "not in the roster: empty 姓名");
        for r in &mut back {
            r.name = None;
        }
        let mut want = rows.clone();
        want.sort_by(|a, b| {
            grade_key(&a.student_id, &a.term, &a.course_code, a.kind).cmp(&grade_key(
                &b.student_id,
                &b.term,
                &b.course_code,
                b.kind,
            ))
        });
        assert_eq!(back, want);

        let mut one = Vec::new();
        assert_eq!(write_csv(&store, Some("2024-2025-2"), &mut one).unwrap(), 1);
    }
}
