//! Table rows → roster and grade records. Maps English or Chinese headers (any case, any order,
//! extra columns ignored), checks every cell, and collects *every* error with its row number and
//! the column header as written in the file, so the preview can list them all. Also finds
//! duplicate keys inside one file. Nothing here touches storage.
//!
//! Over 600 lines because of its tests (the last ~700 lines: one case per column rule and layout).

use std::fmt;
use std::hash::{Hash, Hasher};

use super::layout::{
    missing_fields, normalise_header, Field, GRADE_FIELDS, G_CLASS_GROUP, G_CODE, G_COLLEGE,
    G_COMPONENTS, G_COURSE, G_CREDIT, G_FLAG, G_ID, G_KIND, G_MAKEUP, G_NAME, G_NATURE, G_RETAKE,
    G_SCORE, G_TERM, G_VOID, G_YEAR, ROSTER_FIELDS, R_CLASS, R_COLLEGE, R_GRADE, R_ID, R_ID_NUMBER,
    R_MAJOR, R_NAME, R_VERIFY,
};
use super::mapping::ColumnMap;
use super::notation;
use super::table::{column_letter, CellRow, Table, TableError, TableReader};
use crate::grades::{shown, CourseFacts, Credit, ExamKind, GradeRecord, RosterRecord, Score, Term};

/// The outcome of validating a file: the good records with their row numbers, and every error.
/// An import may be committed only when `errors` is empty.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Validated<T> {
    /// Valid rows, in file order, with their row numbers.
    pub records: Vec<(usize, T)>,
    /// Every problem found, ordered by row number.
    pub errors: Vec<RowError>,
    /// Non-blank data rows read (good, bad and skipped).
    pub rows_read: usize,
    /// Rows skipped because the file marks them void (是否成绩作废 = 是); never imported.
    pub skipped: usize,
    /// Values read in a registrar's notation, for the preview ("补考一 → 补考：132 行").
    pub translated: Vec<Translation>,
}

/// Cells written one way and read as another, counted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Translation {
    /// Our field's label (学期, 成绩, 考试性质).
    pub field: &'static str,
    /// As the file writes it.
    pub from: String,
    /// As we store it.
    pub to: String,
    pub rows: usize,
}

/// At most this many distinct translations are listed (the rest are still read, just not
/// listed), so a file cannot grow the preview without bound.
const MAX_TRANSLATIONS: usize = 64;

/// Tally of translations while the rows stream past (a short list: a file has few notations).
#[derive(Default)]
struct Translations(Vec<Translation>);

impl Translations {
    fn note(&mut self, field: &'static str, from: &str, to: &str) {
        if from == to {
            return;
        }
        if let Some(t) = self
            .0
            .iter_mut()
            .find(|t| t.field == field && t.from == from)
        {
            t.rows += 1;
        } else if self.0.len() < MAX_TRANSLATIONS {
            self.0.push(Translation {
                field,
                from: from.to_string(),
                to: to.to_string(),
                rows: 1,
            });
        }
    }
}

impl<T> Validated<T> {
    /// True when the file has no error at all.
    pub fn is_ok(&self) -> bool {
        self.errors.is_empty()
    }
}

/// One problem in the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RowError {
    /// Row number as the user sees it in Excel (the header row for column problems).
    pub line: usize,
    /// The column's header as written in the file, when the problem is in one cell.
    pub column: Option<String>,
    /// That column's place in the file (0 is Excel's column A), when known.
    pub col: Option<usize>,
    /// The cell as the file writes it (cut to [`MAX_ERROR_VALUE`] characters), when the
    /// problem is in one cell.
    pub value: Option<String>,
    /// What is wrong, in Chinese for the admin page.
    pub message: String,
}

/// At most this many characters of a faulty cell are kept with its error.
pub const MAX_ERROR_VALUE: usize = 200;

impl RowError {
    /// The column by header and Excel letter, "成绩（G 列）"; the header alone when its place
    /// is unknown.
    pub fn column_label(&self) -> Option<String> {
        let column = self.column.as_ref()?;
        Some(match self.col {
            Some(c) => format!("{column}（{} 列）", column_letter(c)),
            None => column.clone(),
        })
    }

    /// The column's Excel letter ("G"), when its place is known.
    pub fn letter(&self) -> Option<String> {
        self.col.map(column_letter)
    }

    /// For a terminal: "line 3, column 成绩 (G): …".
    pub fn describe(&self) -> String {
        match (&self.column, self.letter()) {
            (Some(column), Some(l)) => {
                format!(
                    "line {}, column {column} ({l}): {}",
                    self.line, self.message
                )
            }
            _ => self.to_string(),
        }
    }
}

/// A cell's text as kept with its error: at most [`MAX_ERROR_VALUE`] characters.
fn kept_value(v: &str) -> String {
    v.chars().take(MAX_ERROR_VALUE).collect()
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.column {
            Some(column) => write!(f, "line {}, column {}: {}", self.line, column, self.message),
            None => write!(f, "line {}: {}", self.line, self.message),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Column mapping
// ---------------------------------------------------------------------------------------------

/// Where each field is in the file, or the header errors. A field's weak aliases count only
/// when none of its aliases is present.
fn map_columns<const N: usize>(
    fields: &[Field; N],
    headers: &[String],
    header_line: usize,
) -> Result<[Option<usize>; N], Vec<RowError>> {
    let mut map = [None; N];
    let mut errors = Vec::new();
    let normalised: Vec<String> = headers.iter().map(|h| normalise_header(h)).collect();
    for weak in [false, true] {
        for (i, (header, norm)) in headers.iter().zip(&normalised).enumerate() {
            let Some(f) = fields
                .iter()
                .position(|f| if weak { f.weak } else { f.aliases }.contains(&norm.as_str()))
            else {
                continue;
            };
            let strong_present = weak
                && map.get(f).copied().flatten().is_some_and(|at| {
                    fields.get(f).is_some_and(|fd| {
                        normalised
                            .get(at)
                            .is_some_and(|n: &String| fd.aliases.contains(&n.as_str()))
                    })
                });
            if strong_present {
                continue;
            }
            match map.get(f).copied().flatten() {
                Some(first) => errors.push(RowError {
                    line: header_line,
                    column: Some(header.clone()),
                    col: Some(i),
                    value: None,
                    message: format!(
                        "列“{}”与第{}列“{}”重复（都表示{}），请只保留一列",
                        header,
                        first + 1,
                        headers.get(first).map_or("", String::as_str),
                        fields.get(f).map_or("", |f| f.label),
                    ),
                }),
                None => {
                    if let Some(slot) = map.get_mut(f) {
                        *slot = Some(i);
                    }
                }
            }
        }
    }
    let missing = missing_fields(fields, &map);
    if !missing.is_empty() {
        let found: Vec<&str> = headers
            .iter()
            .filter(|h| !h.is_empty())
            .map(String::as_str)
            .collect();
        let found = if found.is_empty() {
            "（无）".to_string()
        } else {
            found.join("、")
        };
        errors.insert(
            0,
            RowError {
                line: header_line,
                column: None,
                col: None,
                value: None,
                message: format!(
                    "缺少必需的列：{}。文件中的列为：{}",
                    missing.join("、"),
                    found
                ),
            },
        );
    }
    if errors.is_empty() {
        Ok(map)
    } else {
        Err(errors)
    }
}

// ---------------------------------------------------------------------------------------------
// Cell checks
// ---------------------------------------------------------------------------------------------

/// Checks a student ID: 1–32 characters from `A-Z a-z 0-9 _ -`.
pub fn check_student_id(id: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err("学号不能为空".to_string());
    }
    if id.chars().any(char::is_whitespace) {
        return Err(format!("学号不能包含空格，实际为“{}”", shown(id)));
    }
    if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(format!(
            "学号只能包含字母、数字、下划线和连字符，实际为“{}”",
            shown(id)
        ));
    }
    if id.len() > 32 {
        return Err(format!("学号不能超过32个字符，实际为{}个字符", id.len()));
    }
    Ok(())
}

/// Free text: at most `max` characters, no control characters (line breaks included).
fn check_text(label: &str, value: &str, max: usize) -> Result<(), String> {
    let count = value.chars().count();
    if count > max {
        return Err(format!("{label}不能超过{max}个字符，实际为{count}个字符"));
    }
    if value.chars().any(char::is_control) {
        return Err(format!(
            "{label}含有换行或其他控制字符：“{}”",
            shown(&value.replace(char::is_control, " "))
        ));
    }
    Ok(())
}

fn check_course_code(code: &str) -> Result<(), String> {
    check_text("课程代码", code, 64)?;
    if code.contains('/') {
        return Err(format!("课程代码不能包含“/”，实际为“{}”", shown(code)));
    }
    Ok(())
}

/// Reads the cells of one row, recording errors against the row.
pub struct RowCheck<'r, 'h, R: ?Sized> {
    row: &'r R,
    headers: &'h [String],
    errors: &'r mut Vec<RowError>,
    translations: &'r mut Translations,
    ok: bool,
}

impl<'r, R: CellRow + ?Sized> RowCheck<'r, '_, R> {
    fn error(&mut self, col: usize, message: String) {
        self.ok = false;
        self.errors.push(RowError {
            line: self.row.line(),
            column: self.headers.get(col).cloned(),
            col: Some(col),
            value: Some(kept_value(self.row.cell(col))),
            message,
        });
    }

    /// A required cell: present and non-empty, else an error.
    fn required(&mut self, col: Option<usize>, label: &str) -> Option<&'r str> {
        let col = col?;
        let v = self.row.cell(col);
        if v.is_empty() {
            self.error(col, format!("{label}不能为空"));
            None
        } else {
            Some(v)
        }
    }

    /// An optional cell: `None` when the column is absent or the cell empty.
    fn optional(&mut self, col: Option<usize>) -> Option<(usize, &'r str)> {
        let col = col?;
        let v = self.row.cell(col);
        (!v.is_empty()).then_some((col, v))
    }

    /// A required cell parsed by `parse`.
    fn parsed<T>(
        &mut self,
        col: Option<usize>,
        label: &str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        let v = self.required(col, label)?;
        match parse(v) {
            Ok(t) => Some(t),
            Err(message) => {
                if let Some(c) = col {
                    self.error(c, message);
                }
                None
            }
        }
    }

    /// A required text cell checked by `check`.
    fn text(
        &mut self,
        col: Option<usize>,
        label: &str,
        check: impl FnOnce(&str) -> Result<(), String>,
    ) -> Option<String> {
        self.parsed(col, label, |v| check(v).map(|()| v.to_string()))
    }

    /// An optional text cell.
    fn optional_text(&mut self, col: Option<usize>, label: &str, max: usize) -> Option<String> {
        let (c, v) = self.optional(col)?;
        match check_text(label, v, max) {
            Ok(()) => Some(v.to_string()),
            Err(message) => {
                self.error(c, message);
                None
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Validators
// ---------------------------------------------------------------------------------------------

/// What differs between the two kinds of file: their columns, how a row becomes a record, and
/// what makes two records duplicates.
pub trait Sheet {
    type Record;
    /// Where each field is: `[Option<usize>; N]`.
    type Columns: Copy;
    fn columns(headers: &[String], header_line: usize) -> Result<Self::Columns, Vec<RowError>>;
    /// Where each field is by a column map staff chose.
    fn mapped(
        map: &ColumnMap,
        headers: &[String],
        header_line: usize,
    ) -> Result<Self::Columns, Vec<RowError>>;
    /// Check one row; `None` when it has errors (already recorded in `c`).
    fn record<R: CellRow + ?Sized>(
        c: &mut RowCheck<'_, '_, R>,
        cols: Self::Columns,
    ) -> Option<Self::Record>;
    /// True for a row the file itself marks void: skipped and counted, never checked.
    fn skip<R: CellRow + ?Sized>(_c: &mut RowCheck<'_, '_, R>, _cols: Self::Columns) -> bool {
        false
    }
    /// Further records the same row carries (旧正方's 补考成绩 and 重修成绩 beside the 成绩).
    fn extra<R: CellRow + ?Sized>(
        _c: &mut RowCheck<'_, '_, R>,
        _cols: Self::Columns,
        _first: &Self::Record,
    ) -> Vec<Self::Record> {
        Vec::new()
    }
    /// What makes a record unique within one file.
    type Key<'r>: Hash + Eq
    where
        Self: 'r;
    fn key(r: &Self::Record) -> Self::Key<'_>;
    /// The column to name and the message for `r`, which repeats the record on line `earlier`.
    fn duplicate(
        r: &Self::Record,
        earlier: usize,
        cols: Self::Columns,
        headers: &[String],
    ) -> (Option<String>, String);
}

/// Validates the rows of one file as they stream past; [`finish`](Validator::finish) adds the
/// duplicate check and returns every record and every error.
pub struct Validator<S: Sheet> {
    headers: Vec<String>,
    header_line: usize,
    columns: Option<S::Columns>,
    out: Validated<S::Record>,
    translations: Translations,
}

pub type GradesValidator = Validator<GradeSheet>;
pub type RosterValidator = Validator<RosterSheet>;

impl<S: Sheet> Validator<S> {
    /// Maps the header row; column errors are reported by `finish`.
    pub fn new(headers: &[String], header_line: usize) -> Validator<S> {
        Validator::with_columns(headers, header_line, S::columns(headers, header_line))
    }

    /// Maps the header row by a column map staff chose.
    pub fn mapped(headers: &[String], header_line: usize, map: &ColumnMap) -> Validator<S> {
        Validator::with_columns(headers, header_line, S::mapped(map, headers, header_line))
    }

    fn with_columns(
        headers: &[String],
        header_line: usize,
        columns: Result<S::Columns, Vec<RowError>>,
    ) -> Validator<S> {
        let (columns, errors) = match columns {
            Ok(map) => (Some(map), Vec::new()),
            Err(errors) => (None, errors),
        };
        Validator {
            headers: headers.to_vec(),
            header_line,
            columns,
            out: Validated {
                records: Vec::new(),
                errors,
                rows_read: 0,
                skipped: 0,
                translated: Vec::new(),
            },
            translations: Translations::default(),
        }
    }

    /// Checks one data row.
    pub fn push<R: CellRow + ?Sized>(&mut self, row: &R) {
        self.out.rows_read += 1;
        let Some(cols) = self.columns else {
            return;
        };
        let mut c = RowCheck {
            row,
            headers: &self.headers,
            errors: &mut self.out.errors,
            translations: &mut self.translations,
            ok: true,
        };
        if S::skip(&mut c, cols) {
            self.out.skipped += 1;
            return;
        }
        let record = S::record(&mut c, cols);
        let extra = match &record {
            Some(r) => S::extra(&mut c, cols, r),
            None => Vec::new(),
        };
        if let (true, Some(r)) = (c.ok, record) {
            self.out.records.push((row.line(), r));
            self.out
                .records
                .extend(extra.into_iter().map(|e| (row.line(), e)));
        }
    }

    /// Takes the records validated so far, for a caller that handles them as they stream past
    /// (an import in bounded memory); such a caller checks duplicates itself with
    /// [`Self::duplicate_of`], as `finish` only checks the records still held.
    pub fn drain(&mut self) -> std::vec::Drain<'_, (usize, S::Record)> {
        self.out.records.drain(..)
    }

    /// Records that `r`, on row `line`, repeats the record on row `earlier` (the same error
    /// `finish` gives for duplicates it finds).
    pub fn duplicate_of(&mut self, line: usize, r: &S::Record, earlier: usize) {
        if let Some(cols) = self.columns {
            let (column, message) = S::duplicate(r, earlier, cols, &self.headers);
            let col = column
                .as_ref()
                .and_then(|c| self.headers.iter().position(|h| h == c));
            self.out.errors.push(RowError {
                line,
                column,
                col,
                value: None,
                message,
            });
        }
    }

    /// Adds duplicate and empty-file errors and returns the result, errors by row number.
    pub fn finish(mut self) -> Validated<S::Record> {
        if let Some(cols) = self.columns {
            let records = &self.out.records;
            let pairs = find_duplicates(records.len(), |i| records.get(i).map(|(_, r)| S::key(r)));
            for &(dup, first) in &pairs {
                if let (Some((line, r)), Some((earlier, _))) =
                    (records.get(dup), records.get(first))
                {
                    let (column, message) = S::duplicate(r, *earlier, cols, &self.headers);
                    let col = column
                        .as_ref()
                        .and_then(|c| self.headers.iter().position(|h| h == c));
                    self.out.errors.push(RowError {
                        line: *line,
                        column,
                        col,
                        value: None,
                        message,
                    });
                }
            }
            remove_indices(&mut self.out.records, &pairs);
        }
        self.out.translated = self.translations.0;
        finish_common(self.out, self.columns.is_some(), self.header_line)
    }
}

/// A grade sheet.
pub struct GradeSheet;

impl Sheet for GradeSheet {
    type Record = GradeRecord;
    type Columns = [Option<usize>; 22];

    fn columns(headers: &[String], header_line: usize) -> Result<Self::Columns, Vec<RowError>> {
        map_columns(&GRADE_FIELDS, headers, header_line)
    }

    fn mapped(
        map: &ColumnMap,
        headers: &[String],
        header_line: usize,
    ) -> Result<Self::Columns, Vec<RowError>> {
        map.resolve(&GRADE_FIELDS, headers, header_line)
    }

    fn record<R: CellRow + ?Sized>(
        c: &mut RowCheck<'_, '_, R>,
        cols: Self::Columns,
    ) -> Option<GradeRecord> {
        let col = |i: usize| cols.get(i).copied().flatten();
        let student_id = c.text(col(G_ID), "学号", check_student_id);
        let term = match col(G_YEAR) {
            None => {
                let term = c.parsed(col(G_TERM), "学期", notation::parse_term);
                if let (Some(t), Some(tc)) = (&term, col(G_TERM)) {
                    let raw = c.row.cell(tc);
                    c.translations.note("学期", raw, t.as_str());
                }
                term
            }
            Some(year_col) => {
                let year = c.required(Some(year_col), "学年");
                let term = c.required(col(G_TERM), "学期");
                match (year, term, col(G_TERM)) {
                    (Some(y), Some(t), Some(term_col)) => {
                        match notation::parse_year_and_term(y, t) {
                            Ok(term) => {
                                if !t.bytes().all(|b| b.is_ascii_digit()) {
                                    let to = ["第1学期", "第2学期", "第3学期"]
                                        .get(usize::from(term.number().saturating_sub(1)))
                                        .copied()
                                        .unwrap_or("");
                                    c.translations.note("学期", t, to);
                                }
                                Some(term)
                            }
                            Err((in_year, message)) => {
                                c.error(if in_year { year_col } else { term_col }, message);
                                None
                            }
                        }
                    }
                    _ => None,
                }
            }
        };
        let course_code = c.text(col(G_CODE), "课程代码", check_course_code);
        let course_name = c.text(col(G_COURSE), "课程名称", |v| {
            check_text("课程名称", v, 100)
        });
        let credit = c.parsed(col(G_CREDIT), "学分", Credit::parse);
        // 强智's 成绩标识 overrides the score beside it (`0` + `缺考` is 缺考).
        let flag = match c.optional(col(G_FLAG)) {
            None => Ok(None),
            Some((f, v)) => notation::parse_score_flag(v).map_err(|message| c.error(f, message)),
        };
        let score = match flag {
            Ok(Some(flagged)) => Some(flagged),
            Ok(None) => {
                let score = c.parsed(col(G_SCORE), "成绩", notation::parse_score);
                if let (Some(label), Some(sc)) =
                    (score.as_ref().and_then(score_label), col(G_SCORE))
                {
                    let raw = c.row.cell(sc);
                    c.translations.note("成绩", raw, label);
                }
                score
            }
            Err(()) => None,
        };
        let kind = match c.optional(col(G_KIND)) {
            None => Some(ExamKind::Normal),
            Some((k, v)) => match notation::parse_exam_kind(v) {
                Ok(kind) => {
                    c.translations.note("考试性质", v, kind.label());
                    Some(kind)
                }
                Err(message) => {
                    c.error(k, message);
                    None
                }
            },
        };
        let name = c.optional_text(col(G_NAME), "姓名", 64);
        let course = course_facts(c, cols);
        Some(GradeRecord {
            student_id: student_id?,
            term: term?,
            course_code: course_code?,
            course_name: course_name?,
            credit: credit?,
            score: score?,
            kind: kind?,
            name,
            course: course?,
        })
    }

    fn skip<R: CellRow + ?Sized>(c: &mut RowCheck<'_, '_, R>, cols: Self::Columns) -> bool {
        let Some((col, v)) = c.optional(cols.get(G_VOID).copied().flatten()) else {
            return false;
        };
        match notation::is_void(v) {
            Ok(void) => void,
            Err(message) => {
                c.error(col, message);
                false
            }
        }
    }

    fn extra<R: CellRow + ?Sized>(
        c: &mut RowCheck<'_, '_, R>,
        cols: Self::Columns,
        first: &GradeRecord,
    ) -> Vec<GradeRecord> {
        let mut out = Vec::new();
        for (field, kind) in [(G_MAKEUP, ExamKind::Makeup), (G_RETAKE, ExamKind::Retake)] {
            let Some((col, v)) = c.optional(cols.get(field).copied().flatten()) else {
                continue;
            };
            match notation::parse_score(v) {
                Ok(score) => out.push(GradeRecord {
                    score,
                    kind,
                    ..first.clone()
                }),
                Err(message) => c.error(col, message),
            }
        }
        out
    }

    type Key<'r> = (&'r str, Term, &'r str, ExamKind);

    fn key(r: &GradeRecord) -> Self::Key<'_> {
        (
            r.student_id.as_str(),
            r.term,
            r.course_code.as_str(),
            r.kind,
        )
    }

    fn duplicate(
        r: &GradeRecord,
        earlier: usize,
        _: Self::Columns,
        _: &[String],
    ) -> (Option<String>, String) {
        (
            None,
            format!(
                "与第{earlier}行重复：学号“{}”、学期“{}”、课程代码“{}”、考试性质“{}”在同一文件中出现了两次",
                r.student_id,
                r.term,
                shown(&r.course_code),
                r.kind.label()
            ),
        )
    }
}

/// 课程性质, 开课学院, 教学班 and the score components of a grade row, each as written (checked
/// as text only). `None` when a cell has an error (already recorded).
fn course_facts<R: CellRow + ?Sized>(
    c: &mut RowCheck<'_, '_, R>,
    cols: [Option<usize>; 22],
) -> Option<CourseFacts> {
    let col = |i: usize| cols.get(i).copied().flatten();
    let before = c.ok;
    c.ok = true;
    let nature = c.optional_text(col(G_NATURE), "课程性质", 20);
    let college = c.optional_text(col(G_COLLEGE), "开课学院", 100);
    let class_group = c.optional_text(col(G_CLASS_GROUP), "教学班", 100);
    let mut components: Vec<(usize, String, String)> = Vec::new();
    for field in G_COMPONENTS {
        let Some(at) = col(field) else { continue };
        let label = GRADE_FIELDS.get(field).map_or("成绩", |f| f.label);
        if let Some(v) = c.optional_text(Some(at), label, 20) {
            let header = c.headers.get(at).cloned().unwrap_or_default();
            components.push((at, header, v));
        }
    }
    components.sort_by_key(|(at, ..)| *at);
    let ok = c.ok;
    c.ok = before && ok;
    ok.then(|| CourseFacts {
        nature,
        college,
        class_group,
        components: components.into_iter().map(|(_, h, v)| (h, v)).collect(),
    })
}

/// The label of a non-numeric score (numbers are not translations).
fn score_label(s: &Score) -> Option<&'static str> {
    match *s {
        Score::Numeric(_) => None,
        Score::Level(l) => Some(l.label()),
        Score::PassFail(true) => Some("合格"),
        Score::PassFail(false) => Some("不合格"),
        Score::Status(st) => Some(st.label()),
    }
}

/// A roster.
pub struct RosterSheet;

impl Sheet for RosterSheet {
    type Record = RosterRecord;
    type Columns = [Option<usize>; 8];

    fn columns(headers: &[String], header_line: usize) -> Result<Self::Columns, Vec<RowError>> {
        map_columns(&ROSTER_FIELDS, headers, header_line)
    }

    fn mapped(
        map: &ColumnMap,
        headers: &[String],
        header_line: usize,
    ) -> Result<Self::Columns, Vec<RowError>> {
        map.resolve(&ROSTER_FIELDS, headers, header_line)
    }

    fn record<R: CellRow + ?Sized>(
        c: &mut RowCheck<'_, '_, R>,
        cols: Self::Columns,
    ) -> Option<RosterRecord> {
        let col = |i: usize| cols.get(i).copied().flatten();
        let student_id = c.text(col(R_ID), "学号", check_student_id);
        let name = c.text(col(R_NAME), "姓名", |v| check_text("姓名", v, 64));
        // The verification value is a secret: its messages never repeat it. Without a 验证码
        // column it is the last six characters of the 证件号码, which is read for nothing else.
        let verify = match col(R_VERIFY) {
            Some(_) => c.text(col(R_VERIFY), "验证码", |v| {
                if v.chars().count() > 64 {
                    Err("验证码不能超过64个字符".to_string())
                } else if v.chars().any(char::is_control) {
                    Err("验证码含有换行或其他控制字符".to_string())
                } else {
                    Ok(())
                }
            }),
            None => c.parsed(
                col(R_ID_NUMBER),
                "证件号码",
                notation::verify_from_id_number,
            ),
        };
        let class = c.optional_text(col(R_CLASS), "班级", 100);
        let major = c.optional_text(col(R_MAJOR), "专业", 100);
        let college = c.optional_text(col(R_COLLEGE), "学院", 100);
        let cohort = c.optional_text(col(R_GRADE), "年级", 20);
        Some(RosterRecord {
            student_id: student_id?,
            name: name?,
            verify: verify?,
            class,
            major,
            college,
            cohort,
        })
    }

    type Key<'r> = &'r str;

    fn key(r: &RosterRecord) -> &str {
        &r.student_id
    }

    fn duplicate(
        r: &RosterRecord,
        earlier: usize,
        cols: Self::Columns,
        headers: &[String],
    ) -> (Option<String>, String) {
        let column = cols
            .get(R_ID)
            .copied()
            .flatten()
            .and_then(|c| headers.get(c).cloned());
        (column, format!("学号“{}”与第{earlier}行重复", r.student_id))
    }
}

/// Finds entries whose key equals an earlier entry's: `(index, index of the first entry with
/// that key)`, by index. `key(i)` is `Some` for every `i < n`.
///
/// Sorting (hash, index) pairs instead of probing a hash map keeps memory access sequential;
/// for a million grade rows this took the check from ~600 ms to well under 200 ms.
fn find_duplicates<K, F>(n: usize, key: F) -> Vec<(usize, usize)>
where
    K: Hash + Eq,
    F: Fn(usize) -> Option<K>,
{
    let hash_of = |k: &K| {
        let mut h = KeyHasher::default();
        k.hash(&mut h);
        h.finish()
    };
    let mut hashed: Vec<(u64, usize)> = (0..n)
        .filter_map(|i| key(i).map(|k| (hash_of(&k), i)))
        .collect();
    hashed.sort_unstable();
    let mut dups = Vec::new();
    // Distinct keys seen in the current run of equal hashes (almost always one).
    let mut firsts: Vec<(K, usize)> = Vec::new();
    for run in hashed.chunk_by(|a, b| a.0 == b.0) {
        if run.len() < 2 {
            continue;
        }
        firsts.clear();
        // Within a run, indices ascend: the first of each key is the earliest row.
        for &(_, i) in run {
            let Some(k) = key(i) else { continue };
            match firsts.iter().find(|(f, _)| *f == k) {
                Some(&(_, first)) => dups.push((i, first)),
                None => firsts.push((k, i)),
            }
        }
    }
    dups.sort_unstable();
    dups
}

/// Removes the entries at the (sorted) first components of `dups`.
fn remove_indices<T>(records: &mut Vec<T>, dups: &[(usize, usize)]) {
    if dups.is_empty() {
        return;
    }
    let mut next = dups.iter().map(|&(i, _)| i).peekable();
    let mut index = 0usize;
    records.retain(|_| {
        let drop_it = next.next_if_eq(&index).is_some();
        index += 1;
        !drop_it
    });
}

/// A multiply-rotate hasher (the FxHash scheme) over 8-byte words.
#[derive(Default)]
struct KeyHasher(u64);

impl KeyHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}

impl Hasher for KeyHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            for (d, s) in w.iter_mut().zip(rest) {
                *d = *s;
            }
            self.add(u64::from_le_bytes(w) ^ ((rest.len() as u64) << 59));
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        // Final avalanche (MurmurHash3's fmix64): the multiply above only carries entropy
        // upwards, and the table indexes by the low bits.
        let mut h = self.0;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    }
}

fn finish_common<T>(mut out: Validated<T>, mapped: bool, header_line: usize) -> Validated<T> {
    if mapped && out.rows_read == 0 {
        out.errors.push(RowError {
            line: header_line,
            column: None,
            col: None,
            value: None,
            message: "文件中只有表头，没有数据行".to_string(),
        });
    }
    // Stable: within a row, errors stay in column order.
    out.errors.sort_by_key(|e| e.line);
    out
}

/// Which column of the file each field was read from, as (our field's label, the file's
/// header), in field order; empty when the header row does not map. For the preview.
pub fn column_mapping(roster: bool, headers: &[String]) -> Vec<(&'static str, String)> {
    fn list<const N: usize>(
        fields: &[Field; N],
        headers: &[String],
    ) -> Vec<(&'static str, String)> {
        match map_columns(fields, headers, 0) {
            Ok(map) => fields
                .iter()
                .zip(map)
                .filter_map(|(f, at)| Some((f.label, headers.get(at?)?.clone())))
                .collect(),
            Err(_) => Vec::new(),
        }
    }
    if roster {
        list(&ROSTER_FIELDS, headers)
    } else {
        list(&GRADE_FIELDS, headers)
    }
}

/// Validates a roster table.
pub fn validate_roster(table: &Table) -> Validated<RosterRecord> {
    let mut v = RosterValidator::new(&table.headers, table.header_line);
    for row in &table.rows {
        v.push(row);
    }
    v.finish()
}

/// Validates a grades table.
pub fn validate_grades(table: &Table) -> Validated<GradeRecord> {
    let mut v = GradesValidator::new(&table.headers, table.header_line);
    for row in &table.rows {
        v.push(row);
    }
    v.finish()
}

/// Validates the rows of an open file as they stream past (no [`Table`] in memory), calling
/// `tick` with the number of rows read so far.
pub fn stream<S: Sheet>(
    reader: &mut TableReader<'_>,
    tick: impl FnMut(usize),
) -> Result<Validated<S::Record>, TableError> {
    stream_mapped::<S>(reader, None, tick)
}

/// [`stream`] with the columns found by a column map staff chose (`None`: by header names).
pub fn stream_mapped<S: Sheet>(
    reader: &mut TableReader<'_>,
    map: Option<&ColumnMap>,
    mut tick: impl FnMut(usize),
) -> Result<Validated<S::Record>, TableError> {
    let mut v = match map {
        Some(m) => Validator::<S>::mapped(reader.headers(), reader.header_line(), m),
        None => Validator::<S>::new(reader.headers(), reader.header_line()),
    };
    let mut rows = 0usize;
    reader.for_each_row(|row| {
        v.push(row);
        rows += 1;
        tick(rows);
    })?;
    let mut out = v.finish();
    shift_columns(&mut out.errors, reader.first_column());
    Ok(out)
}

/// Errors name the file's column: a sheet whose used range starts `first_column` columns right
/// of A shifts the columns the validator counted.
pub fn shift_columns(errors: &mut [RowError], first_column: usize) {
    if first_column > 0 {
        for e in errors {
            e.col = e.col.map(|c| c.saturating_add(first_column));
        }
    }
}

/// Reads and validates a roster file in one streaming pass.
pub fn read_roster(file_name: &str, bytes: &[u8]) -> Result<Validated<RosterRecord>, TableError> {
    stream::<RosterSheet>(&mut TableReader::open(file_name, bytes)?, |_| {})
}

/// Reads and validates a grades file in one streaming pass.
pub fn read_grades(file_name: &str, bytes: &[u8]) -> Result<Validated<GradeRecord>, TableError> {
    stream::<GradeSheet>(&mut TableReader::open(file_name, bytes)?, |_| {})
}

#[cfg(test)]
mod tests {
    use super::super::table::read_table;
    use super::*;
    use crate::grades::{FiveLevel, Status};

    fn grades(text: &str) -> Validated<GradeRecord> {
        validate_grades(&read_table("g.csv", text.as_bytes()).unwrap())
    }

    fn roster(text: &str) -> Validated<RosterRecord> {
        validate_roster(&read_table("r.csv", text.as_bytes()).unwrap())
    }

    /// (line, column, message) triples for compact assertions.
    fn errs<T>(v: &Validated<T>) -> Vec<(usize, Option<&str>, &str)> {
        v.errors
            .iter()
            .map(|e| (e.line, e.column.as_deref(), e.message.as_str()))
            .collect()
    }

    const GRADES_CSV: &str = "\
学号,姓名,学期,课程代码,课程名称,学分,成绩,考试性质,备注
2021001,张三,2024-2025-1,MA101,高等数学,4,55,,
2021001,张三,2024-2025-1,MA101,高等数学,4,65,补考,
2021001,张三,2024-2025-2,PE101,体育,1,合格,正常考试,
2021002,,2024-2025-2,EN101,大学英语,2.5,优秀,重修,extra
2021002,李四,2024-2025-2,CS101,程序设计,3,缓考,,
";

    #[test]
    fn valid_grades_file() {
        let v = grades(GRADES_CSV);
        assert!(v.is_ok(), "{:?}", v.errors);
        assert_eq!(v.rows_read, 5);
        let lines: Vec<usize> = v.records.iter().map(|(l, _)| *l).collect();
        assert_eq!(lines, [2, 3, 4, 5, 6]);
        let (_, r) = &v.records[1];
        assert_eq!(r.student_id, "2021001");
        assert_eq!(r.term.as_str(), "2024-2025-1");
        assert_eq!(r.course_code, "MA101");
        assert_eq!(r.course_name, "高等数学");
        assert_eq!(r.credit.to_string(), "4");
        assert_eq!(r.score, Score::Numeric(6500));
        assert_eq!(r.kind, ExamKind::Makeup);
        assert_eq!(r.name.as_deref(), Some("张三"));
        assert_eq!(v.records[0].1.kind, ExamKind::Normal);
        assert_eq!(v.records[3].1.name, None);
        assert_eq!(v.records[3].1.score, Score::Level(FiveLevel::Excellent));
        assert_eq!(v.records[4].1.score, Score::Status(Status::Deferred));
    }

    #[test]
    fn english_headers_any_case_and_order() {
        let v = grades(
            "Score,COURSE_CODE,Student ID,term,Course-Name,credit,Remarks\n90,X1,S-01,2025-2026-1,Art,1.5,\n",
        );
        assert!(v.is_ok(), "{:?}", v.errors);
        let r = &v.records[0].1;
        assert_eq!(
            (
                r.student_id.as_str(),
                r.course_code.as_str(),
                r.course_name.as_str()
            ),
            ("S-01", "X1", "Art")
        );
        assert_eq!(r.kind, ExamKind::Normal);
        assert_eq!(r.name, None);
        // 课程号 is an alias of 课程代码; 身份证后六位 of 验证码; a "*" marker is ignored.
        let v = grades("学号*,学期,课程号,课程名称,学分,成绩\n1,2025-2026-1,C,名,1,60\n");
        assert!(v.is_ok(), "{:?}", v.errors);
        let r = roster("身份证后六位,姓名,学号,班级,专业\n12345X,张三,2021001,计科1班,\n");
        assert!(r.is_ok(), "{:?}", r.errors);
        let rec = &r.records[0].1;
        assert_eq!(rec.verify, "12345X");
        assert_eq!(rec.class.as_deref(), Some("计科1班"));
        assert_eq!(rec.major, None);
    }

    #[test]
    fn missing_columns_named_with_what_was_found() {
        let v = grades("\n学号,学期,课程代码,成绩,备注\n1,2025-2026-1,C,90,\n");
        assert_eq!(v.records, vec![]);
        assert_eq!(v.errors.len(), 1);
        let e = &v.errors[0];
        assert_eq!((e.line, e.column.as_deref()), (2, None));
        assert_eq!(
            e.message,
            "缺少必需的列：课程名称（course_name）、学分（credit）。文件中的列为：学号、学期、课程代码、成绩、备注"
        );
        assert!(e.to_string().starts_with("line 2: 缺少必需的列"));
        let r = roster("student_id,name\n1,a\n");
        assert!(r.errors[0].message.contains("验证码（verify）"));
    }

    #[test]
    fn duplicate_columns() {
        let v =
            grades("学号,student_id,学期,课程代码,课程名称,学分,成绩\n1,1,2025-2026-1,C,名,1,60\n");
        assert_eq!(
            errs(&v),
            vec![(
                1,
                Some("student_id"),
                "列“student_id”与第1列“学号”重复（都表示学号），请只保留一列"
            )]
        );
    }

    #[test]
    fn every_cell_error_with_line_and_column() {
        let v = grades(
            "\
学号,学期,课程代码,课程名称,学分,成绩,考试性质,姓名
2021001,2025-2026-1,C1,课程,3,90,,张三
20 21,2025-2027-1,,课程,abc,101,期中,
2021003,2025-2026-1,C/3,,0,89.555,补考,
,2025-2026-4,C4,课程,30.5,A,,
abc$,2025-2026-1,C5,课程,1,60,,
123456789012345678901234567890123,2025-2026-1,C6,课程,1,60,,
",
        );
        assert_eq!(v.records.len(), 1);
        assert_eq!(v.rows_read, 6);
        assert_eq!(
            errs(&v),
            vec![
                (3, Some("学号"), "学号不能包含空格，实际为“20 21”"),
                (3, Some("学期"), "学期应为“YYYY-YYYY-N”格式（如 2025-2026-1，第二个年份比第一个大1，N 为 1 到 3），实际为“2025-2027-1”"),
                (3, Some("课程代码"), "课程代码不能为空"),
                (3, Some("学分"), "学分应为大于0且不超过30、最多两位小数的数字，实际为“abc”"),
                (3, Some("成绩"), "成绩应在0到100之间，实际为“101”"),
                (3, Some("考试性质"), "考试性质应为“正常考试”、“补考”或“重修”，实际为“期中”"),
                (4, Some("课程代码"), "课程代码不能包含“/”，实际为“C/3”"),
                (4, Some("课程名称"), "课程名称不能为空"),
                (4, Some("学分"), "学分应为大于0且不超过30、最多两位小数的数字，实际为“0”"),
                (4, Some("成绩"), "成绩最多两位小数，实际为“89.555”"),
                (5, Some("学号"), "学号不能为空"),
                (5, Some("学期"), "学期应为“YYYY-YYYY-N”格式（如 2025-2026-1，第二个年份比第一个大1，N 为 1 到 3），实际为“2025-2026-4”"),
                (5, Some("学分"), "学分应为大于0且不超过30、最多两位小数的数字，实际为“30.5”"),
                (5, Some("成绩"), "成绩应为0到100的数字（最多两位小数）、五级制（优秀/良好/中等/及格/不及格）、合格/不合格，或缺考/缓考/作弊/取消，实际为“A”"),
                (6, Some("学号"), "学号只能包含字母、数字、下划线和连字符，实际为“abc$”"),
                (7, Some("学号"), "学号不能超过32个字符，实际为33个字符"),
            ]
        );
        assert_eq!(
            v.errors[2].to_string(),
            "line 3, column 课程代码: 课程代码不能为空"
        );
    }

    #[test]
    fn control_characters_in_text_cells() {
        let v =
            grades("学号,学期,课程代码,课程名称,学分,成绩\n1,2025-2026-1,C,\"高等\n数学\",1,60\n");
        assert_eq!(
            errs(&v),
            vec![(
                2,
                Some("课程名称"),
                "课程名称含有换行或其他控制字符：“高等 数学”"
            )]
        );
    }

    #[test]
    fn duplicate_grade_keys_name_the_first_line() {
        let v = grades(
            "\
学号,学期,课程代码,课程名称,学分,成绩,考试性质
1,2025-2026-1,C1,课程,1,60,
1,2025-2026-1,C1,课程,1,70,补考
1,2025-2026-1,C1,课程,1,80,正常考试

1,2025-2026-2,C1,课程,1,80,
1,2025-2026-1,C1,课程,1,90,正常
",
        );
        assert_eq!(
            errs(&v),
            vec![
                (4, None, "与第2行重复：学号“1”、学期“2025-2026-1”、课程代码“C1”、考试性质“正常考试”在同一文件中出现了两次"),
                (7, None, "与第2行重复：学号“1”、学期“2025-2026-1”、课程代码“C1”、考试性质“正常考试”在同一文件中出现了两次"),
            ]
        );
        // The first occurrence stays; the duplicates are not records.
        let lines: Vec<usize> = v.records.iter().map(|(l, _)| *l).collect();
        assert_eq!(lines, [2, 3, 6]);
    }

    #[test]
    fn roster_errors_and_duplicates() {
        let v = roster(
            "\
学号,姓名,验证码,班级
2021001,张三,123456,一班
2021002,,,
2021001,张三丰,654321,
2021004,王五,\"12\n34\",
",
        );
        assert_eq!(
            errs(&v),
            vec![
                (3, Some("姓名"), "姓名不能为空"),
                (3, Some("验证码"), "验证码不能为空"),
                (4, Some("学号"), "学号“2021001”与第2行重复"),
                (5, Some("验证码"), "验证码含有换行或其他控制字符"),
            ]
        );
        assert_eq!(v.records.len(), 1);
        // The secret never appears in a message.
        assert!(v
            .errors
            .iter()
            .all(|e| !e.message.contains("654321") && !e.message.contains("12\n34")));
    }

    #[test]
    fn header_only_file_is_an_error() {
        let v = grades("学号,学期,课程代码,课程名称,学分,成绩\n\n,,,,,\n");
        assert_eq!(errs(&v), vec![(1, None, "文件中只有表头，没有数据行")]);
        assert_eq!(v.rows_read, 0);
    }

    #[test]
    fn streaming_read_matches_table_validation_and_encodings_agree() {
        let via_table = grades(GRADES_CSV);
        let streamed = read_grades("g.csv", GRADES_CSV.as_bytes()).unwrap();
        assert_eq!(streamed, via_table);
        let (gbk, _, _) = encoding_rs::GBK.encode(GRADES_CSV);
        assert_eq!(read_grades("g.csv", &gbk).unwrap(), via_table);
        let r = read_roster("r.csv", "学号,姓名,验证码\n1,张三,1\n".as_bytes()).unwrap();
        assert!(r.is_ok());
        assert!(read_grades("g.csv", b"").is_err());
    }

    #[test]
    fn xlsx_gives_the_same_records_as_csv() {
        use super::super::table::tests::{xlsx_bytes, XCell::*};
        // The same sheet as GRADES_CSV, typed the way Excel stores it: numbers as numbers.
        let bytes = xlsx_bytes(&[
            (
                1,
                vec![
                    Shared("学号"),
                    Shared("姓名"),
                    Shared("学期"),
                    Shared("课程代码"),
                    Shared("课程名称"),
                    Shared("学分"),
                    Shared("成绩"),
                    Shared("考试性质"),
                    Shared("备注"),
                ],
            ),
            (
                2,
                vec![
                    Num("2021001"),
                    Shared("张三"),
                    Shared("2024-2025-1"),
                    Shared("MA101"),
                    Shared("高等数学"),
                    Num("4"),
                    Num("55"),
                    Empty,
                    Empty,
                ],
            ),
            (
                3,
                vec![
                    Num("2021001"),
                    Shared("张三"),
                    Shared("2024-2025-1"),
                    Shared("MA101"),
                    Shared("高等数学"),
                    Num("4.0"),
                    Num("65"),
                    Shared("补考"),
                    Empty,
                ],
            ),
            (
                4,
                vec![
                    Num("2021001"),
                    Shared("张三"),
                    Inline("2024-2025-2"),
                    Shared("PE101"),
                    Shared("体育"),
                    Num("1"),
                    Shared("合格"),
                    Shared("正常考试"),
                    Empty,
                ],
            ),
            (
                5,
                vec![
                    Num("2021002"),
                    Empty,
                    Shared("2024-2025-2"),
                    Shared("EN101"),
                    Shared("大学英语"),
                    Num("2.5"),
                    Shared("优秀"),
                    Shared("重修"),
                    Shared("extra"),
                ],
            ),
            (
                6,
                vec![
                    Num("2021002"),
                    Shared("李四"),
                    Shared("2024-2025-2"),
                    Shared("CS101"),
                    Shared("程序设计"),
                    Num("3"),
                    Shared("缓考"),
                    Empty,
                    Empty,
                ],
            ),
        ]);
        let from_xlsx = read_grades("g.xlsx", &bytes).unwrap();
        assert!(from_xlsx.is_ok(), "{:?}", from_xlsx.errors);
        assert_eq!(from_xlsx.records, grades(GRADES_CSV).records);
    }

    /// (line, student, term, code, name, credit, score, kind) for compact assertions.
    fn rows(v: &Validated<GradeRecord>) -> Vec<String> {
        v.records
            .iter()
            .map(|(l, r)| {
                format!(
                    "{l} {} {} {} {} {} {} {}",
                    r.student_id, r.term, r.course_code, r.course_name, r.credit, r.score, r.kind
                )
            })
            .collect()
    }

    #[test]
    fn new_zhengfang_year_and_term_columns_kind_synonyms_and_void_rows() {
        let v = grades(
            "\
学年,学期,课程代码,课程名称,课程性质,学分,成绩备注,绩点,成绩性质,是否学位课程,开课学院,课程标记,课程类别,课程归属,教学班,任课教师,考核方式,学号,姓名,学生标记,成绩,是否成绩作废,学分绩点
2025-2026,1,MA101,高等数学,必修,4,,1.0,正常考试,是,数学学院,,,,,,考试,2021001,张三,,60,否,4.0
2025-2026,1,MA101,高等数学,必修,4,,0,补考一,是,数学学院,,,,,,考试,2021001,张三,,良,否,
2025-2026,2,PE101,体育,必修,1,,,正常考考试,否,体育部,,,,,,考查,2021001,张三,,通过,否,
2025-2026,2,PE101,体育,必修,1,,,正常考试,否,体育部,,,,,,考查,2021001,张三,,99,是,
2025-2026,3,CS101,程序设计,必修,3,,,重修一,否,计算机学院,,,,,,考试,2021002,李四,,旷考,,
",
        );
        assert!(v.is_ok(), "{:?}", v.errors);
        assert_eq!(v.rows_read, 5);
        assert_eq!(v.skipped, 1);
        let translated: Vec<String> = v
            .translated
            .iter()
            .map(|t| format!("{}：{} → {}：{} 行", t.field, t.from, t.to, t.rows))
            .collect();
        assert_eq!(
            translated,
            [
                "成绩：良 → 良好：1 行",
                "考试性质：补考一 → 补考：1 行",
                "成绩：通过 → 合格：1 行",
                "考试性质：正常考考试 → 正常考试：1 行",
                "考试性质：重修一 → 重修：1 行",
            ]
        );
        assert_eq!(
            rows(&v),
            [
                "2 2021001 2025-2026-1 MA101 高等数学 4 60 正常考试",
                "3 2021001 2025-2026-1 MA101 高等数学 4 良好 补考",
                "4 2021001 2025-2026-2 PE101 体育 1 合格 正常考试",
                "6 2021002 2025-2026-3 CS101 程序设计 3 旷考 重修",
            ]
        );
    }

    #[test]
    fn old_zhengfang_makeup_and_retake_on_one_row_become_attempts() {
        let v = grades(
            "\
学号,姓名,学年,学期,课程代码,课程名称,课程性质,课程归属,学分,绩点,成绩,辅修标记,补考成绩,重修成绩,学院名称,备注,重修标记
2021001,张三,2024-2025,2,MA102,线性代数,必修,,3,0,45,0,55,78,数学学院,,
2021001,张三,2024-2025,2,EN101,大学英语,必修,,2,3.0,中,0,,,外语学院,,
",
        );
        assert!(v.is_ok(), "{:?}", v.errors);
        assert_eq!(
            rows(&v),
            [
                "2 2021001 2024-2025-2 MA102 线性代数 3 45 正常考试",
                "2 2021001 2024-2025-2 MA102 线性代数 3 55 补考",
                "2 2021001 2024-2025-2 MA102 线性代数 3 78 重修",
                "3 2021001 2024-2025-2 EN101 大学英语 2 中等 正常考试",
            ]
        );
        let v = grades(
            "学号,学年,学期,课程代码,课程名称,学分,成绩,补考成绩\n1,2024-2025,2,C,名,1,40,九十\n",
        );
        assert_eq!(
            errs(&v),
            vec![(
                2,
                Some("补考成绩"),
                "成绩应为0到100的数字（最多两位小数）、五级制（优秀/良好/中等/及格/不及格）、合格/不合格，或缺考/缓考/作弊/取消，实际为“九十”"
            )]
        );
    }

    #[test]
    fn qiangzhi_score_flag_overrides_and_older_total_score() {
        let v = grades(
            "\
序号,学号,姓名,开课学期,课程编号,课程名称,分组名,成绩,成绩标识,学分,总学时,绩点,补重学期,考核方式,考试性质,课程属性,课程性质,课程类别
1,2021001,张三,2025-2026-1,0801001,数据结构,,0,缺考,3.5,56,0,,考试,正常考试,必修,,
2,2021001,张三,2025-2026-1,0801002,离散数学,,88,,3,48,3.7,,考试,正常考试,必修,,
3,2021001,张三,2025-2026-2,0801001,数据结构,,61,正常,3.5,56,1.0,,考试,补考,必修,,
",
        );
        assert!(v.is_ok(), "{:?}", v.errors);
        assert_eq!(
            rows(&v),
            [
                "2 2021001 2025-2026-1 0801001 数据结构 3.5 缺考 正常考试",
                "3 2021001 2025-2026-1 0801002 离散数学 3 88 正常考试",
                "4 2021001 2025-2026-2 0801001 数据结构 3.5 61 补考",
            ]
        );
        // Older builds: 总成绩 and 成绩标志. A 总成绩 beside a 成绩 is an ignored extra.
        let v = grades(
            "序号,学号,姓名,开课学期,课程编号,课程名称,总成绩,成绩标志,学分\n1,1,甲,2025-2026-1,C,名,72,,2\n2,1,甲,2025-2026-1,D,名,0,重考,2\n",
        );
        assert_eq!(
            errs(&v),
            vec![(
                3,
                Some("成绩标志"),
                "成绩标识应为空、正常，或缺考/缓考/作弊/免修等状态，实际为“重考”"
            )]
        );
        assert_eq!(rows(&v), ["2 1 2025-2026-1 C 名 2 72 正常考试"]);
        let v = grades("学号,学期,课程号,课程名,学分,成绩,总成绩\n1,2025-2026-1,C,名,1,60,99\n");
        assert_eq!(rows(&v), ["2 1 2025-2026-1 C 名 1 60 正常考试"]);
    }

    #[test]
    fn urp_autumn_and_spring_terms() {
        let v = grades(
            "\
学号,姓名,学年,学期,课程号,课序号,课程名,英文课程名,学分,课程属性,成绩
2021001,张三,2025-2026,秋,10001,01,高等数学,Advanced Mathematics,5,必修,92
2021001,张三,2025-2026,春,10002,02,大学物理,College Physics,4,必修,优
2021001,张三,2025-2026,冬,10003,01,军事理论,Military Theory,1,必修,80
2021001,张三,2025-2027,秋,10004,01,形势与政策,Situation,1,必修,80
",
        );
        assert_eq!(
            rows(&v),
            [
                "2 2021001 2025-2026-1 10001 高等数学 5 92 正常考试",
                "3 2021001 2025-2026-2 10002 大学物理 4 优秀 正常考试",
            ]
        );
        assert_eq!(
            errs(&v),
            vec![
                (
                    4,
                    Some("学期"),
                    "学期应为1、2、3，第一学期/第二学期/第三学期，或秋/春/夏，实际为“冬”"
                ),
                (
                    5,
                    Some("学年"),
                    "学年应为“2025-2026”这样的两个相邻年份，实际为“2025-2027”"
                ),
            ]
        );
    }

    #[test]
    fn one_column_term_notations_and_void_values_checked() {
        let v = grades(
            "学号,学期,课程代码,课程名称,学分,成绩,考试类型\n1,20251,C,名,1,60,正考\n1,2026春,D,名,1,60,第1次重修\n1,2025冬季,E,名,1,60,\n",
        );
        assert_eq!(
            rows(&v),
            [
                "2 1 2025-2026-1 C 名 1 60 正常考试",
                "3 1 2025-2026-2 D 名 1 60 重修",
            ]
        );
        assert_eq!(
            errs(&v),
            vec![(
                4,
                Some("学期"),
                "无法识别的学期写法“2025冬季”：应为 2025-2026-1、2025-2026学年第一学期、20251、2025秋 或 2026春 等"
            )]
        );
        let v =
            grades("学号,学期,课程代码,课程名称,学分,成绩,是否成绩作废\n1,20251,C,名,1,60,待定\n");
        assert_eq!(
            errs(&v),
            vec![(
                2,
                Some("是否成绩作废"),
                "是否成绩作废应为“是”或“否”，实际为“待定”"
            )]
        );
    }

    #[test]
    fn roster_with_id_number_keeps_only_the_last_six() {
        let v = roster(
            "学号,姓名,性别,证件号码,学院,专业,班级,年级\n2021001,张三,男,11010520030101123x,计算机学院,计算机科学与技术,计科2101,2021\n2021002,李四,女,1234,计算机学院,,,2021\n",
        );
        assert_eq!(v.records.len(), 1);
        let r = &v.records[0].1;
        assert_eq!(r.verify, "01123X");
        assert_eq!(r.class.as_deref(), Some("计科2101"));
        assert_eq!(
            (r.college.as_deref(), r.cohort.as_deref()),
            (Some("计算机学院"), Some("2021"))
        );
        assert_eq!(
            errs(&v),
            vec![(
                3,
                Some("证件号码"),
                "证件号码应至少有6个字符，实际为4个字符"
            )]
        );
        // A 验证码 column wins over the 证件号码.
        let v = roster("学号,姓名,验证码,身份证号\n1,甲,abc123,110105200301011234\n");
        assert_eq!(v.records[0].1.verify, "abc123");
        // Neither: the 验证码 is what is missing.
        let v = roster("学号,姓名\n1,甲\n");
        assert!(v.errors[0].message.contains("验证码（verify）"));
    }

    #[test]
    fn column_mapping_for_the_preview() {
        let h = |s: &str| s.split(',').map(str::to_string).collect::<Vec<_>>();
        assert_eq!(
            column_mapping(
                false,
                &h("序号,学号,开课学期,课程编号,课程名称,总成绩,成绩标志,学分")
            ),
            [
                ("学号", "学号".to_string()),
                ("学期", "开课学期".to_string()),
                ("课程代码", "课程编号".to_string()),
                ("课程名称", "课程名称".to_string()),
                ("学分", "学分".to_string()),
                ("成绩", "总成绩".to_string()),
                ("成绩标识", "成绩标志".to_string()),
            ]
        );
        assert_eq!(
            column_mapping(true, &h("学号,姓名,证件号码")),
            [
                ("学号", "学号".to_string()),
                ("姓名", "姓名".to_string()),
                ("证件号码", "证件号码".to_string()),
            ]
        );
        assert!(column_mapping(false, &h("学号,成绩")).is_empty());
    }

    #[test]
    fn find_duplicates_first_occurrence_and_collisions() {
        let keys = ["a", "b", "a", "a", "c", "b"];
        let dups = find_duplicates(keys.len(), |i| keys.get(i).copied());
        assert_eq!(dups, [(2, 0), (3, 0), (5, 1)]);
        // Every key hashes alike: the run is split by real equality.
        #[derive(PartialEq, Eq)]
        struct Colliding(u8);
        impl Hash for Colliding {
            fn hash<H: Hasher>(&self, _: &mut H) {}
        }
        let keys = [1u8, 2, 1, 3, 2, 2];
        let dups = find_duplicates(keys.len(), |i| keys.get(i).map(|&k| Colliding(k)));
        assert_eq!(dups, [(2, 0), (4, 1), (5, 1)]);
        // Many copies of one row stay linear and all point at the first.
        let dups = find_duplicates(100_000, |_| Some("same"));
        assert_eq!(dups.len(), 99_999);
        assert!(dups.iter().all(|&(_, first)| first == 0));
        let mut v: Vec<usize> = (0..6).collect();
        remove_indices(&mut v, &[(2, 0), (3, 0), (5, 1)]);
        assert_eq!(v, [0, 1, 4]);
    }

    #[test]
    fn course_facts_are_read_from_every_layout_that_has_them() {
        let facts = |v: &Validated<GradeRecord>| -> Vec<String> {
            v.records
                .iter()
                .map(|(_, r)| {
                    let c = &r.course;
                    let comps: Vec<String> = c
                        .components
                        .iter()
                        .map(|(l, v)| format!("{l}={v}"))
                        .collect();
                    format!(
                        "{}|{}|{}|{}",
                        c.nature.as_deref().unwrap_or("-"),
                        c.college.as_deref().unwrap_or("-"),
                        c.class_group.as_deref().unwrap_or("-"),
                        comps.join(",")
                    )
                })
                .collect()
        };
        // 强智: 课程属性 (必修/选修) wins over its 课程性质 (专业核心); 分组名 is no teaching class.
        let v = grades("序号,学号,姓名,开课学期,课程编号,课程名称,分组名,成绩,学分,课程属性,课程性质,平时成绩,期末成绩\n1,1,甲,2025-2026-1,C,名,A组,80,2,必修,专业核心,90,75\n");
        assert!(v.is_ok(), "{:?}", v.errors);
        assert_eq!(facts(&v), ["必修|-|-|平时成绩=90,期末成绩=75"]);
        // 新正方: 课程性质, 开课学院, 教学班.
        let v = grades("学年,学期,课程代码,课程名称,课程性质,学分,开课学院,教学班,学号,成绩\n2025-2026,1,C,名,必修课,2,数学学院,(2025-2026-1)-C-01,1,80\n");
        assert_eq!(facts(&v), ["必修课|数学学院|(2025-2026-1)-C-01|"]);
        assert!(v.records[0].1.course.is_compulsory());
        // URP: 课序号 is the section; 旧正方: 学院名称 names the teaching school.
        let v = grades("学号,学年,学期,课程号,课序号,课程名,学分,课程属性,成绩\n1,2025-2026,秋,C,02,名,2,任选,80\n");
        assert_eq!(facts(&v), ["任选|-|02|"]);
        let v = grades("学号,学年,学期,课程代码,课程名称,课程性质,学分,成绩,补考成绩,学院名称\n1,2024-2025,2,C,名,必修课,3,45,70,数学学院\n");
        assert_eq!(facts(&v), ["必修课|数学学院|-|", "必修课|数学学院|-|"]);
        // Our own layout: none.
        let v = grades("学号,学期,课程代码,课程名称,学分,成绩\n1,2025-2026-1,C,名,2,80\n");
        assert!(v.records[0].1.course.is_empty());
        // A fact is text: too long is an error naming the column.
        let long = "很".repeat(21);
        let v = grades(&format!(
            "学号,学期,课程代码,课程名称,学分,成绩,课程性质\n1,2025-2026-1,C,名,2,80,{long}\n"
        ));
        assert_eq!(
            errs(&v),
            vec![(
                2,
                Some("课程性质"),
                "课程性质不能超过20个字符，实际为21个字符"
            )]
        );
        assert!(v.records.is_empty());
    }

    #[test]
    fn a_column_map_reads_an_unknown_layout() {
        let text = "XH,XNXQDM,KCH,KCMC,XF,ZCJ,KCXZ,PSCJ\n1,2025-2026-1,C,名,2,88,必修,90\n";
        let map = ColumnMap::from_names(
            false,
            &[
                ("学号", "XH"),
                ("学期", "XNXQDM"),
                ("课程代码", "KCH"),
                ("课程名称", "KCMC"),
                ("学分", "XF"),
                ("成绩", "ZCJ"),
                ("课程性质", "KCXZ"),
                ("平时成绩", "PSCJ"),
            ]
            .map(|(a, b)| (a.to_string(), b.to_string())),
        )
        .unwrap();
        let mut reader = TableReader::open("x.csv", text.as_bytes()).unwrap();
        let v = stream_mapped::<GradeSheet>(&mut reader, Some(&map), |_| {}).unwrap();
        assert!(v.is_ok(), "{:?}", v.errors);
        assert_eq!(rows(&v), ["2 1 2025-2026-1 C 名 2 88 正常考试"]);
        let c = &v.records[0].1.course;
        assert_eq!(c.nature.as_deref(), Some("必修"));
        assert_eq!(c.components, [("PSCJ".to_string(), "90".to_string())]);
        // Without the map the same file lacks every column.
        let v = grades(text);
        assert!(
            v.errors[0].message.starts_with("缺少必需的列"),
            "{:?}",
            v.errors
        );
    }

    #[test]
    fn check_student_id_rules() {
        assert_eq!(check_student_id("2021001"), Ok(()));
        assert_eq!(check_student_id("A_b-9"), Ok(()));
        assert_eq!(check_student_id(&"9".repeat(32)), Ok(()));
        assert!(check_student_id("").is_err());
        assert!(check_student_id("学号1").is_err());
        assert!(check_student_id("1\t2").is_err());
        assert!(check_student_id("2.021E+15").is_err());
    }
}

#[cfg(test)]
mod bench {
    use super::super::table::{read_table, TableReader};
    use super::*;
    use std::time::Instant;

    /// `cargo test --release -- --ignored --nocapture bench_million_rows`
    #[test]
    #[ignore]
    fn bench_million_rows() {
        let mut text = String::from("学号,姓名,学期,课程代码,课程名称,学分,成绩,考试性质\n");
        for i in 0..1_000_000u32 {
            use std::fmt::Write as _;
            let _ = writeln!(
                text,
                "{},学生{},2024-2025-{},C{:04},课程名称{},{}.5,{}.5,{}",
                2_021_000_000 + i / 40,
                i / 40,
                1 + i % 2,
                i % 40,
                i % 40,
                1 + i % 4,
                50 + i % 50,
                if i % 7 == 0 { "补考" } else { "" },
            );
        }
        let (gbk, _, _) = encoding_rs::GBK.encode(&text);
        eprintln!(
            "csv: {} MB utf-8, {} MB gbk",
            text.len() >> 20,
            gbk.len() >> 20
        );

        let t = Instant::now();
        let mut reader = TableReader::open("g.csv", text.as_bytes()).unwrap();
        let mut n = 0usize;
        reader.for_each_row(|r| n += r.cell(0).len()).unwrap();
        eprintln!("stream rows (utf-8): {:?}", t.elapsed());

        let t = Instant::now();
        let table = read_table("g.csv", text.as_bytes()).unwrap();
        eprintln!(
            "read_table (utf-8): {:?}, {} rows",
            t.elapsed(),
            table.rows.len()
        );

        let t = Instant::now();
        let v = validate_grades(&table);
        eprintln!("validate_grades(table): {:?}", t.elapsed());
        assert!(v.is_ok(), "{:?}", v.errors.first());
        drop(table);

        let t = Instant::now();
        let mut reader = TableReader::open("g.csv", text.as_bytes()).unwrap();
        let mut gv = GradesValidator::new(reader.headers(), reader.header_line());
        reader.for_each_row(|row| gv.push(row)).unwrap();
        eprintln!("  push loop: {:?}", t.elapsed());
        let t2 = Instant::now();
        let v = gv.finish();
        eprintln!("  finish: {:?}", t2.elapsed());
        drop(v);
        let t = Instant::now();
        let v = read_grades("g.csv", text.as_bytes()).unwrap();
        eprintln!("read_grades streaming (utf-8): {:?}", t.elapsed());
        assert_eq!(v.records.len(), 1_000_000);

        let t = Instant::now();
        let v = read_grades("g.csv", &gbk).unwrap();
        eprintln!("read_grades streaming (gbk): {:?}", t.elapsed());
        assert_eq!(v.records.len(), 1_000_000);
        assert!(n > 0);
    }
}
