//! An import's plan and its commit: read and validate the file, compare it with the stored data
//! in one read snapshot (add / change / unchanged, unknown students, `--replace-term`
//! removals, the bound students to notify), then write it all in one transaction — only if the
//! data is still what the plan was computed on. Used by the CLI and the admin page alike.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use redb::{ReadableTable, WriteTransaction};

use super::table::{read_table, TableError};
use super::validate::{validate_grades, validate_roster, RowError};
use crate::secret;
use crate::service::grades::{GradeRecord, Term};
use crate::service::verify::VerifyKey;
use crate::store::grades::{decode_row, grade_key, grade_value, ImportBatch, ImportRecord};
use crate::store::students::Student;
use crate::store::{Store, StoreError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportKind {
    Roster,
    Grades,
}

impl ImportKind {
    pub fn parse(s: &str) -> Option<ImportKind> {
        match s {
            "roster" => Some(ImportKind::Roster),
            "grades" => Some(ImportKind::Grades),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            ImportKind::Roster => "roster",
            ImportKind::Grades => "grades",
        }
    }
    pub fn label(self) -> &'static str {
        match self {
            ImportKind::Roster => "学生名册",
            ImportKind::Grades => "成绩",
        }
    }
}

/// A file to import.
pub struct Upload<'a> {
    pub kind: ImportKind,
    pub file_name: &'a str,
    pub bytes: &'a [u8],
    /// Grades only: first remove this term's rows that the file does not list.
    pub replace_term: Option<Term>,
}

/// One changed row, shown in the preview.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeSample {
    pub line: usize,
    pub student_id: String,
    pub what: String,
    pub before: Option<String>,
    pub after: String,
}

/// A bound student whose grades an import adds or changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoticeTarget {
    pub openid: String,
    pub student_id: String,
    pub name: String,
    /// Terms touched, newest first.
    pub terms: Vec<String>,
    /// Course names added or changed.
    pub courses: Vec<String>,
}

/// The preview of an import. Nothing is written until `commit`.
#[derive(Debug)]
pub struct Plan {
    pub kind: ImportKind,
    pub file_name: String,
    pub sha256: String,
    pub format: String,
    pub rows_read: usize,
    pub errors: Vec<RowError>,
    pub added: usize,
    pub changed: usize,
    pub unchanged: usize,
    pub removed: usize,
    /// Student IDs of grade rows not in the roster (imported all the same).
    pub unknown_students: Vec<String>,
    pub terms: Vec<String>,
    pub replace_term: Option<String>,
    pub samples: Vec<ChangeSample>,
    pub targets: Vec<NoticeTarget>,
    /// The data generation this plan was computed on.
    pub generation: u64,
    pub batch: ImportBatch,
}

impl Plan {
    pub fn has_errors(&self) -> bool {
        !self.errors.is_empty()
    }
    pub fn writes(&self) -> usize {
        self.added + self.changed + self.removed
    }
}

/// Why an import could not be planned or committed.
#[derive(Debug)]
pub enum ImportError {
    /// The file is not a readable table (or lacks a required column).
    File(TableError),
    /// The plan has row errors: nothing may be written.
    HasErrors(usize),
    /// The data changed since the plan was made.
    Stale,
    Store(StoreError),
}

impl std::fmt::Display for ImportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ImportError::File(e) => match e.line {
                Some(l) => write!(f, "第 {l} 行：{}", e.message),
                None => f.write_str(&e.message),
            },
            ImportError::HasErrors(n) => write!(f, "文件有 {n} 处错误，未写入任何数据"),
            ImportError::Stale => f.write_str("数据在预览之后已被修改，请重新上传预览后再提交"),
            ImportError::Store(e) => write!(f, "{e}"),
        }
    }
}

impl From<StoreError> for ImportError {
    fn from(e: StoreError) -> Self {
        ImportError::Store(e)
    }
}

impl From<redb::StorageError> for ImportError {
    fn from(e: redb::StorageError) -> Self {
        ImportError::Store(e.into())
    }
}

const MAX_SAMPLES: usize = 20;

/// Read, validate and compare; nothing is written.
pub fn plan(store: &Store, key: &VerifyKey, up: &Upload<'_>) -> Result<Plan, ImportError> {
    let table = read_table(up.file_name, up.bytes).map_err(ImportError::File)?;
    let snap = store.snapshot()?;
    let mut plan = Plan {
        kind: up.kind,
        file_name: up.file_name.to_string(),
        sha256: secret::hex(&secret::sha256(&[up.bytes])),
        format: table.format.to_string(),
        rows_read: 0,
        errors: Vec::new(),
        added: 0,
        changed: 0,
        unchanged: 0,
        removed: 0,
        unknown_students: Vec::new(),
        terms: Vec::new(),
        replace_term: up.replace_term.as_ref().map(|t| t.as_str().to_string()),
        samples: Vec::new(),
        targets: Vec::new(),
        generation: snap.generation,
        batch: ImportBatch::default(),
    };
    match up.kind {
        ImportKind::Roster => {
            let v = validate_roster(&table);
            plan.rows_read = v.rows_read;
            plan.errors = v.errors;
            let students = snap.students()?;
            for (line, r) in v.records {
                let s = Student {
                    student_id: r.student_id.clone(),
                    name: r.name.clone(),
                    verify: key.hash(&r.student_id, &r.verify),
                    class: r.class.clone(),
                    major: r.major.clone(),
                };
                let old: Option<Student> = match students.get(r.student_id.as_str())? {
                    Some(v) => serde_json::from_slice(v.value()).ok(),
                    None => None,
                };
                match old {
                    Some(o) if o == s => plan.unchanged += 1,
                    Some(o) => {
                        plan.changed += 1;
                        if plan.samples.len() < MAX_SAMPLES {
                            plan.samples.push(ChangeSample {
                                line,
                                student_id: s.student_id.clone(),
                                what: "名册信息".into(),
                                before: Some(describe_student(&o)),
                                after: describe_student(&s),
                            });
                        }
                        plan.batch.students.push((
                            s.student_id.clone(),
                            serde_json::to_vec(&s).map_err(StoreError::from)?,
                        ));
                    }
                    None => {
                        plan.added += 1;
                        plan.batch.students.push((
                            s.student_id.clone(),
                            serde_json::to_vec(&s).map_err(StoreError::from)?,
                        ));
                    }
                }
            }
        }
        ImportKind::Grades => plan_grades(&snap, up, table, &mut plan)?,
    }
    Ok(plan)
}

fn describe_student(s: &Student) -> String {
    let mut out = s.name.clone();
    for part in [&s.class, &s.major].into_iter().flatten() {
        out.push_str(" · ");
        out.push_str(part);
    }
    out
}

fn plan_grades(
    snap: &crate::store::grades::Snapshot,
    up: &Upload<'_>,
    table: super::table::Table,
    plan: &mut Plan,
) -> Result<(), ImportError> {
    let v = validate_grades(&table);
    drop(table);
    plan.rows_read = v.rows_read;
    plan.errors = v.errors;
    let students = snap.students()?;
    let grades = snap.grades()?;
    let bound = snap.bound()?;
    // student_id → roster name (None: not in the roster)
    let mut roster: HashMap<String, Option<String>> = HashMap::new();
    let mut unknown: BTreeSet<String> = BTreeSet::new();
    let mut terms: BTreeSet<Term> = BTreeSet::new();
    let mut touched: BTreeMap<String, (BTreeSet<Term>, Vec<String>)> = BTreeMap::new();
    let mut keys_in_replace_term: HashSet<String> = HashSet::new();
    let mut name_errors: Vec<RowError> = Vec::new();
    plan.batch.grade_upserts.reserve(v.records.len());
    for (line, r) in &v.records {
        let roster_name = match roster.get(&r.student_id) {
            Some(n) => n.clone(),
            None => {
                let n = match students.get(r.student_id.as_str())? {
                    Some(v) => serde_json::from_slice::<Student>(v.value())
                        .ok()
                        .map(|s| s.name),
                    None => None,
                };
                roster.insert(r.student_id.clone(), n.clone());
                n
            }
        };
        match (&roster_name, &r.name) {
            (None, _) => {
                unknown.insert(r.student_id.clone());
            }
            (Some(rn), Some(given)) if rn != given.trim() => {
                name_errors.push(RowError {
                    line: *line,
                    column: Some("姓名".into()),
                    message: format!(
                        "学号 {} 在名册中的姓名是“{}”，文件中是“{}”",
                        r.student_id,
                        rn,
                        given.trim()
                    ),
                });
                continue;
            }
            _ => {}
        }
        terms.insert(r.term.clone());
        let key = grade_key(&r.student_id, &r.term, &r.course_code, r.kind);
        let value = grade_value(r);
        if up.replace_term.as_ref() == Some(&r.term) {
            keys_in_replace_term.insert(key.clone());
        }
        let old = grades.get(key.as_str())?.map(|g| g.value().to_string());
        match old {
            Some(o) if o == value => plan.unchanged += 1,
            o => {
                if o.is_some() {
                    plan.changed += 1;
                } else {
                    plan.added += 1;
                }
                if plan.samples.len() < MAX_SAMPLES {
                    plan.samples.push(ChangeSample {
                        line: *line,
                        student_id: r.student_id.clone(),
                        what: format!(
                            "{} {}（{}）",
                            r.term.as_str(),
                            r.course_name,
                            r.kind.label()
                        ),
                        before: o
                            .as_deref()
                            .and_then(|o| decode_row(&key, o).ok())
                            .map(|g| describe_grade(&g)),
                        after: describe_grade(r),
                    });
                }
                if roster_name.is_some() {
                    let t = touched.entry(r.student_id.clone()).or_default();
                    t.0.insert(r.term.clone());
                    if !t.1.contains(&r.course_name) {
                        t.1.push(r.course_name.clone());
                    }
                }
                plan.batch.grade_upserts.push((key, value));
            }
        }
    }
    if !name_errors.is_empty() {
        plan.errors.extend(name_errors);
        plan.errors.sort_by_key(|e| e.line);
    }
    if let Some(term) = &up.replace_term {
        for item in grades.iter()? {
            let (k, _) = item?;
            let k = k.value();
            let mut parts = k.split('\u{1f}');
            let in_term = parts.nth(1) == Some(term.as_str());
            if in_term && !keys_in_replace_term.contains(k) {
                plan.batch.grade_removals.push(k.to_string());
            }
        }
        plan.removed = plan.batch.grade_removals.len();
        terms.insert(term.clone());
    }
    plan.unknown_students = unknown.into_iter().collect();
    plan.terms = terms.iter().rev().map(|t| t.as_str().to_string()).collect();
    for (sid, (ts, courses)) in touched {
        if let Some(openid) = bound.get(sid.as_str())? {
            let name = roster.get(&sid).cloned().flatten().unwrap_or_default();
            plan.targets.push(NoticeTarget {
                openid: openid.value().to_string(),
                student_id: sid,
                name,
                terms: ts.iter().rev().map(|t| t.as_str().to_string()).collect(),
                courses,
            });
        }
    }
    Ok(())
}

fn describe_grade(g: &GradeRecord) -> String {
    format!("{} 分 · {} 学分", g.score, g.credit)
}

/// What `commit` did.
#[derive(Debug)]
pub struct Committed {
    pub record: ImportRecord,
}

/// Write the plan in one transaction. `notices` runs inside that transaction with the new
/// import id and the students to notify (when `notify`), and returns how many notices it wrote.
pub fn commit(
    store: &Store,
    plan: &Plan,
    by: &str,
    now: i64,
    notify: bool,
    notices: impl FnOnce(&WriteTransaction, u64, &[NoticeTarget]) -> Result<usize, StoreError>,
) -> Result<Committed, ImportError> {
    if plan.has_errors() {
        return Err(ImportError::HasErrors(plan.errors.len()));
    }
    let record = ImportRecord {
        id: 0,
        at: now,
        by: by.to_string(),
        kind: plan.kind.as_str().to_string(),
        file_name: plan.file_name.clone(),
        sha256: plan.sha256.clone(),
        rows_read: plan.rows_read,
        added: plan.added,
        changed: plan.changed,
        unchanged: plan.unchanged,
        removed: plan.removed,
        unknown_students: plan.unknown_students.len(),
        terms: plan.terms.clone(),
        notify,
        notices: 0,
        result: "committed".into(),
    };
    let targets: &[NoticeTarget] = if notify { &plan.targets } else { &[] };
    match store.apply_import(&plan.batch, record, plan.generation, |tx, id| {
        notices(tx, id, targets)
    })? {
        Some(record) => Ok(Committed { record }),
        None => Err(ImportError::Stale),
    }
}

/// The history record of a refused import (errors in the file).
pub fn refused_record(plan: &Plan, by: &str, now: i64, why: &str) -> ImportRecord {
    ImportRecord {
        id: 0,
        at: now,
        by: by.to_string(),
        kind: plan.kind.as_str().to_string(),
        file_name: plan.file_name.clone(),
        sha256: plan.sha256.clone(),
        rows_read: plan.rows_read,
        added: 0,
        changed: 0,
        unchanged: 0,
        removed: 0,
        unknown_students: plan.unknown_students.len(),
        terms: plan.terms.clone(),
        notify: false,
        notices: 0,
        result: why.to_string(),
    }
}
