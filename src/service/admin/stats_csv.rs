//! The course statistics as CSV (`/admin/courses.csv`): one line per course and one per
//! teaching class under it, with every figure of the courses page and the 10-point bands.
//! Aggregates only — no student ID, name or single student's score beyond what a class of one
//! shows — so every role may download it. Same CSV rules as the grade export (BOM, CRLF,
//! quoting, formula-looking cells neutralised).

use std::io::Write;

use super::export::{line, BOM};
use super::stats::{one_decimal, CourseStat, Figures};

/// The header line.
pub const HEADER: [&str; 24] = [
    "学期",
    "课程代码",
    "课程名称",
    "教学班",
    "人次",
    "百分制成绩数",
    "平均分",
    "中位数",
    "标准差",
    "通过",
    "通过率(%)",
    "优秀",
    "优秀率(%)",
    "0-9",
    "10-19",
    "20-29",
    "30-39",
    "40-49",
    "50-59",
    "60-69",
    "70-79",
    "80-89",
    "90-100",
    "提示",
];

/// The teaching class cell of a course's own line.
pub const WHOLE_COURSE: &str = "（全部）";
/// The teaching class cell for rows that name none.
pub const NO_CLASS: &str = "（未注明）";

fn figures_cells(f: &Figures) -> Vec<String> {
    let opt = |v: Option<u64>| v.map(one_decimal).unwrap_or_default();
    let mut cells = vec![
        f.count.to_string(),
        f.numeric.to_string(),
        opt(f.mean_hundredths()),
        opt(f.median),
        opt(f.sd),
        f.passed.to_string(),
        opt(f.pass_basis_points()),
        f.excellent.to_string(),
        opt(f.excellent_basis_points()),
    ];
    cells.extend(f.histogram.iter().map(u64::to_string));
    cells
}

/// Write `courses` (each followed by its teaching classes); returns the number of lines after
/// the header.
pub fn write_csv<'a>(
    courses: impl IntoIterator<Item = &'a CourseStat>,
    out: &mut impl Write,
) -> std::io::Result<u64> {
    out.write_all(BOM.as_bytes())?;
    line(out, &HEADER)?;
    let mut n = 0u64;
    for c in courses {
        let note = c
            .unusual
            .zip(c.pass_basis_points())
            .map(|(u, p)| u.describe(p))
            .unwrap_or_default();
        let mut cells = vec![
            c.term.clone(),
            c.course_code.clone(),
            c.course_name.clone(),
            WHOLE_COURSE.to_string(),
        ];
        cells.extend(figures_cells(&c.figures));
        cells.push(note);
        line(out, &cells.iter().map(String::as_str).collect::<Vec<_>>())?;
        n += 1;
        for k in &c.classes {
            let mut cells = vec![
                c.term.clone(),
                c.course_code.clone(),
                c.course_name.clone(),
                k.class_group
                    .clone()
                    .unwrap_or_else(|| NO_CLASS.to_string()),
            ];
            cells.extend(figures_cells(&k.figures));
            cells.push(String::new());
            line(out, &cells.iter().map(String::as_str).collect::<Vec<_>>())?;
            n += 1;
        }
    }
    Ok(n)
}

/// The download's file name.
pub fn file_name(term: Option<&str>) -> String {
    match term {
        Some(t) => format!("course-stats-{t}.csv"),
        None => "course-stats.csv".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::admin::stats::{ClassStat, Unusual};

    #[test]
    fn lines_per_course_and_class() {
        let figures = Figures {
            count: 2,
            numeric: 2,
            numeric_sum: 15_000,
            median: Some(7500),
            sd: Some(1500),
            passed: 1,
            decided: 2,
            excellent: 1,
            histogram: [0, 0, 0, 0, 0, 1, 0, 0, 0, 1],
        };
        let c = CourseStat {
            term: "2025-2026-1".into(),
            course_code: "C1".into(),
            course_name: "=危险, 课程".into(),
            figures: figures.clone(),
            classes: vec![ClassStat {
                class_group: None,
                figures,
            }],
            unusual: Some(Unusual::Low),
        };
        let mut out = Vec::new();
        assert_eq!(write_csv([&c], &mut out).unwrap(), 2);
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.trim_start_matches('\u{feff}').split("\r\n").collect();
        assert_eq!(lines[0].split(',').count(), HEADER.len());
        assert_eq!(
            lines[1],
            "2025-2026-1,C1,\"'=危险, 课程\",（全部）,2,2,75.0,75.0,15.0,1,50.0,1,50.0,0,0,0,0,0,1,0,0,0,1,通过率低于 60.0%"
        );
        assert!(
            lines[2].contains("（未注明）") && lines[2].ends_with(",1,"),
            "{}",
            lines[2]
        );
        assert_eq!(lines[3], "");
    }
}
