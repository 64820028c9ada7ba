//! Column maps chosen by staff — `--map "学号=XH,学期=XNXQDM"`, the upload page's mapping form, a
//! saved preset — for files whose header row no built-in layout reads: our field names on the
//! left (label, key or header alias), the file's headers on the right. Resolves a map against a
//! header row, gives the header signature a preset is recognised by, and samples a file's first
//! rows for the mapping form.

use serde::{Deserialize, Serialize};

use super::layout::{field_named, fields, missing_fields, normalise_header, Field};
use super::table::{HeaderRule, TableError, TableReader, XlsxLimits};
use super::validate::RowError;

/// Our field (by key) → the file's header as written.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnMap {
    pub pairs: Vec<(String, String)>,
}

/// A column map and where it came from, for the preview's "识别为".
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChosenMap {
    pub map: ColumnMap,
    /// "预设 NAME" or "手动指定的列对应".
    pub source: String,
}

impl ColumnMap {
    /// From (our field name, the file's header) pairs. An unknown field, a field named twice or
    /// an empty header is an error naming it.
    pub fn from_names(roster: bool, pairs: &[(String, String)]) -> Result<ColumnMap, String> {
        let fs = fields(roster);
        let mut out: Vec<(String, String)> = Vec::new();
        for (ours, theirs) in pairs {
            let Some(f) = field_named(fs, ours).and_then(|i| fs.get(i)) else {
                let known: Vec<&str> = fs.iter().map(|f| f.label).collect();
                return Err(format!(
                    "{}没有“{ours}”这一列（可用：{}）",
                    if roster { "学生名册" } else { "成绩" },
                    known.join("、")
                ));
            };
            let theirs = theirs.trim();
            if theirs.is_empty() || theirs.chars().any(char::is_control) {
                return Err(format!("“{}”对应的表头为空或含有控制字符", f.label));
            }
            if out.iter().any(|(k, _)| k == f.key) {
                return Err(format!("“{}”指定了两次", f.label));
            }
            out.push((f.key.to_string(), theirs.to_string()));
        }
        if out.is_empty() {
            return Err("列对应是空的".into());
        }
        Ok(ColumnMap { pairs: out })
    }

    /// The headers this map names that `headers` lacks.
    pub fn absent_headers(&self, headers: &[String]) -> Vec<String> {
        self.pairs
            .iter()
            .filter(|(_, h)| positions(headers, h).is_empty())
            .map(|(_, h)| h.clone())
            .collect()
    }

    /// Where each field is in `headers`, or every problem: a header the file lacks or has
    /// twice, one column for two fields, a required field not mapped.
    pub fn resolve<const N: usize>(
        &self,
        fields: &[Field; N],
        headers: &[String],
        header_line: usize,
    ) -> Result<[Option<usize>; N], Vec<RowError>> {
        let mut map = [None; N];
        let mut errors = Vec::new();
        let mut err = |column: Option<String>, message: String| {
            errors.push(RowError {
                line: header_line,
                column,
                col: None,
                value: None,
                message,
            })
        };
        for (key, header) in &self.pairs {
            let Some(f) = fields.iter().position(|f| f.key == key) else {
                err(None, format!("列对应中有未知的字段“{key}”"));
                continue;
            };
            let label = fields.get(f).map_or("", |f| f.label);
            match positions(headers, header).as_slice() {
                [] => err(
                    None,
                    format!("列对应指定的表头“{header}”（{label}）在文件的表头行中没有"),
                ),
                [at] => match map.iter().position(|m| *m == Some(*at)) {
                    Some(other) => err(
                        Some(header.clone()),
                        format!(
                            "列“{header}”不能同时对应{}和{label}",
                            fields.get(other).map_or("", |f| f.label)
                        ),
                    ),
                    None => {
                        if let Some(slot) = map.get_mut(f) {
                            *slot = Some(*at);
                        }
                    }
                },
                many => err(
                    Some(header.clone()),
                    format!(
                        "表头“{header}”在文件中出现了 {} 次，无法确定{label}是哪一列",
                        many.len()
                    ),
                ),
            }
        }
        let missing = missing_fields(fields, &map);
        if !missing.is_empty() {
            err(None, format!("列对应缺少必需的列：{}", missing.join("、")));
        }
        if errors.is_empty() {
            Ok(map)
        } else {
            Err(errors)
        }
    }

    /// (our field's label, the file's header) in field order, for the preview.
    pub fn listed(&self, roster: bool) -> Vec<(&'static str, String)> {
        fields(roster)
            .iter()
            .filter_map(|f| {
                let (_, h) = self.pairs.iter().find(|(k, _)| k == f.key)?;
                Some((f.label, h.clone()))
            })
            .collect()
    }

    /// The header chosen for the field with this key.
    pub fn header_for(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, h)| h.as_str())
    }
}

/// The map the header names already suggest, to start the mapping form from: each field whose
/// header name (or a weaker alias) is a header of the file, the first such column.
pub fn guess(roster: bool, headers: &[String]) -> ColumnMap {
    let normalised: Vec<String> = headers.iter().map(|h| normalise_header(h)).collect();
    let mut pairs = Vec::new();
    for f in fields(roster) {
        let found = [f.aliases, f.weak]
            .into_iter()
            .find_map(|names| normalised.iter().position(|n| names.contains(&n.as_str())));
        if let Some(h) = found.and_then(|at| headers.get(at)) {
            if !pairs.iter().any(|(_, taken): &(String, String)| taken == h) {
                pairs.push((f.key.to_string(), h.clone()));
            }
        }
    }
    ColumnMap { pairs }
}

/// Indices of the columns whose header is `name` (compared in header form).
fn positions(headers: &[String], name: &str) -> Vec<usize> {
    let n = normalise_header(name);
    headers
        .iter()
        .enumerate()
        .filter(|(_, h)| normalise_header(h) == n)
        .map(|(i, _)| i)
        .collect()
}

/// A header row's signature: its non-empty headers in header form, sorted, joined by `␟`. Two
/// files with the same columns in any order have the same signature.
pub fn signature(headers: &[String]) -> String {
    let mut names: Vec<String> = headers
        .iter()
        .map(|h| normalise_header(h))
        .filter(|h| !h.is_empty())
        .collect();
    names.sort();
    names.dedup();
    names.join("\u{1f}")
}

/// Excel's name for the column at `index` (0 → A, 25 → Z, 26 → AA).
pub fn column_letter(index: usize) -> String {
    let mut n = index + 1;
    let mut out = Vec::new();
    while n > 0 {
        let rem = (n - 1) % 26;
        out.push(char::from(b'A' + rem as u8));
        n = (n - 1) / 26;
    }
    out.iter().rev().collect()
}

/// The first rows of a file, for the mapping form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sample {
    pub headers: Vec<String>,
    pub header_line: usize,
    /// Up to [`SAMPLE_ROWS`] data rows, each cut to the header's width.
    pub rows: Vec<Vec<String>>,
}

/// Data rows shown on the mapping form.
pub const SAMPLE_ROWS: usize = 5;
/// Columns offered on the mapping form (a wider file's further columns cannot be chosen).
pub const MAX_COLUMNS: usize = 100;
/// Characters of a cell shown on the mapping form.
const MAX_CELL_CHARS: usize = 40;

/// Reads the header row (found by `rule`) and the first data rows of a file.
pub fn sample(
    file_name: &str,
    bytes: &[u8],
    limits: &XlsxLimits,
    rule: &HeaderRule,
) -> Result<Sample, TableError> {
    let mut reader = TableReader::open_with_header(file_name, bytes, limits, rule)?;
    let width = reader.headers().len().min(MAX_COLUMNS);
    let headers: Vec<String> = reader.headers().iter().take(width).cloned().collect();
    let header_line = reader.header_line();
    let mut rows = Vec::new();
    while rows.len() < SAMPLE_ROWS {
        let Some(row) = reader.next_row()? else { break };
        rows.push(
            (0..width)
                .map(|i| row.cell(i).chars().take(MAX_CELL_CHARS).collect())
                .collect(),
        );
    }
    Ok(Sample {
        headers,
        header_line,
        rows,
    })
}

#[cfg(test)]
mod tests {
    use super::super::layout::{GRADE_FIELDS, G_CODE, G_ID, G_NATURE, G_TERM, ROSTER_FIELDS};
    use super::*;

    fn pairs(s: &str) -> Vec<(String, String)> {
        s.split(',')
            .filter_map(|p| p.split_once('='))
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    fn h(s: &str) -> Vec<String> {
        s.split(',').map(str::to_string).collect()
    }

    #[test]
    fn field_names_are_labels_keys_or_aliases() {
        let m = ColumnMap::from_names(
            false,
            &pairs("学号=XH,term=XNXQDM,课程号=KCH,课程名称=KCMC,学分=XF,成绩=CJ,课程性质=KCXZ"),
        )
        .unwrap();
        assert_eq!(
            m.pairs,
            pairs("student_id=XH,term=XNXQDM,course_code=KCH,course_name=KCMC,credit=XF,score=CJ,nature=KCXZ")
        );
        let e = ColumnMap::from_names(false, &pairs("学号=XH,分数=CJ")).unwrap_err();
        assert!(
            e.contains("没有“分数”这一列") && e.contains("课程代码"),
            "{e}"
        );
        let e = ColumnMap::from_names(false, &pairs("学号=XH,student_id=XH2")).unwrap_err();
        assert!(e.contains("“学号”指定了两次"), "{e}");
        // A roster has no 学期; a grade sheet has no 证件号码.
        assert!(ColumnMap::from_names(true, &pairs("学期=X")).is_err());
        assert!(ColumnMap::from_names(false, &pairs("证件号码=SFZH")).is_err());
        assert!(ColumnMap::from_names(true, &pairs("证件号码=SFZH,学号=XH,姓名=XM")).is_ok());
        assert!(ColumnMap::from_names(false, &pairs("学号= ")).is_err());
        assert!(ColumnMap::from_names(false, &[]).is_err());
    }

    #[test]
    fn resolving_against_a_header_row() {
        let m = ColumnMap::from_names(
            false,
            &pairs("学号=XH,学期=XNXQDM,课程代码=KCH,课程名称=KCMC,学分=XF,成绩=CJ,课程性质=kcxz"),
        )
        .unwrap();
        let at = m
            .resolve(&GRADE_FIELDS, &h("KCH,XH,KCMC,XF,CJ,XNXQDM,KCXZ,BZ"), 1)
            .unwrap();
        assert_eq!(at[G_ID], Some(1));
        assert_eq!(at[G_TERM], Some(5));
        assert_eq!(at[G_CODE], Some(0));
        assert_eq!(at[G_NATURE], Some(6), "headers compare case-insensitively");
        let errs = m
            .resolve(&GRADE_FIELDS, &h("KCH,XH,KCMC,XF,CJ,CJ,KCXZ"), 3)
            .unwrap_err();
        let msgs: Vec<&str> = errs.iter().map(|e| e.message.as_str()).collect();
        assert_eq!(
            msgs,
            [
                "列对应指定的表头“XNXQDM”（学期）在文件的表头行中没有",
                "表头“CJ”在文件中出现了 2 次，无法确定成绩是哪一列",
                "列对应缺少必需的列：学期（term）、成绩（score）",
            ]
        );
        assert!(errs.iter().all(|e| e.line == 3));
        assert_eq!(
            m.absent_headers(&h("KCH,XH")),
            ["XNXQDM", "KCMC", "XF", "CJ", "kcxz"]
        );
        let twice = ColumnMap::from_names(true, &pairs("学号=XH,姓名=XH,验证码=YZM")).unwrap();
        let errs = twice.resolve(&ROSTER_FIELDS, &h("XH,YZM"), 1).unwrap_err();
        assert_eq!(errs[0].message, "列“XH”不能同时对应学号和姓名");
    }

    #[test]
    fn the_form_starts_from_the_headers_we_know() {
        let g = guess(false, &h("学号,学期,课程,学分,分数,总评,期末"));
        assert_eq!(
            g.pairs,
            pairs("student_id=学号,term=学期,credit=学分,score=总评,final_score=期末")
        );
        assert!(guess(false, &h("XH,KCH")).pairs.is_empty());
        assert_eq!(guess(true, &h("XH,姓名")).pairs, pairs("name=姓名"));
    }

    #[test]
    fn signatures_ignore_order_case_and_blank_headers() {
        assert_eq!(signature(&h("XH,KCH,cj,")), signature(&h("CJ, kch ,XH")));
        assert_ne!(signature(&h("XH,KCH,CJ")), signature(&h("XH,KCH,CJ,BZ")));
        assert_eq!(signature(&h("")), "");
    }

    #[test]
    fn excel_column_letters() {
        let got: Vec<String> = [0, 1, 25, 26, 27, 51, 52, 701, 702]
            .into_iter()
            .map(column_letter)
            .collect();
        assert_eq!(got, ["A", "B", "Z", "AA", "AB", "AZ", "BA", "ZZ", "AAA"]);
    }

    #[test]
    fn sample_reads_headers_and_first_rows() {
        let mut text = String::from("XH,XM,CJ\n");
        for i in 0..9 {
            text.push_str(&format!("{i},名{i},9{i}\n"));
        }
        let limits = XlsxLimits::for_upload(1 << 20);
        let s = sample("x.csv", text.as_bytes(), &limits, &HeaderRule::Auto).unwrap();
        assert_eq!(s.headers, h("XH,XM,CJ"));
        assert_eq!(s.header_line, 1);
        assert_eq!(s.rows.len(), SAMPLE_ROWS);
        assert_eq!(s.rows[4], h("4,名4,94"));
        let titled = format!("成绩单\n{text}");
        let s = sample("x.csv", titled.as_bytes(), &limits, &HeaderRule::Line(2)).unwrap();
        assert_eq!((s.header_line, s.headers), (2, h("XH,XM,CJ")));
    }
}
