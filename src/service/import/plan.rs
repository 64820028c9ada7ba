//! An import's plan and its commit: read and validate the file, compare it with the stored data
//! in one read snapshot (add / change / unchanged, unknown students, `--replace-term`
//! removals, the bound students to notify), then write it all in one transaction — only if the
//! data is still what the plan was computed on. Used by the CLI and the admin page alike.
//!
//! Over 600 lines because of its tests (the last ~300 lines).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use redb::{ReadableTable, WriteTransaction};
use std::sync::atomic::{AtomicUsize, Ordering};

use super::layout;
use super::mapping::ChosenMap;
use super::rows::{each_record, estimate_rows, Fingerprint, Seen};
use super::table::{TableError, TableReader, XlsxLimits, DEFAULT_UPLOAD_BYTES};
use super::validate::{
    column_mapping, GradeSheet, RosterSheet, RowError, Translation, MAX_ERROR_VALUE,
};
use crate::grades::{GradeRecord, RosterRecord, Term};
use crate::secret;
use crate::service::verify::VerifyKey;
use crate::store::grades::{
    decode_row, grade_key, grade_value, student_of_key, ImportRecord, ImportWriter,
};
use crate::store::releases::Destination;
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

/// A stored grade row that `--replace-term` would delete, shown in the preview.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removal {
    pub student_id: String,
    /// The roster's name, when the student is in it.
    pub name: Option<String>,
    pub term: String,
    /// "高等数学（MA1001，补考）".
    pub course: String,
    pub score: String,
}

/// At most this many of a replace-term's removals are kept for the preview (all are counted).
pub const MAX_REMOVAL_SAMPLES: usize = 200;

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
    /// The layout recognised from the header row ("新正方 成绩导出", …) or the column map used
    /// ("预设 NAME", "手动指定的列对应"), shown as "识别为：…".
    pub layout: String,
    /// True when no layout read the header row and no column map was given: the file needs
    /// staff to say which column is which (the mapping page).
    pub needs_mapping: bool,
    /// The column map the file was read with (given, or the preset matching its header row);
    /// `None` when read by header names. The commit reads the file again with it.
    pub columns: Option<ChosenMap>,
    /// (our field, the file's header) for every column read, for the preview.
    pub mapping: Vec<(&'static str, String)>,
    pub rows_read: usize,
    /// Rows the file marks void (是否成绩作废 = 是): counted, never imported.
    pub skipped: usize,
    /// Values read in a registrar's notation, in the order first seen.
    pub translated: Vec<Translation>,
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
    /// The first [`MAX_REMOVAL_SAMPLES`] rows `removed` counts, in key order.
    pub removals: Vec<Removal>,
    pub targets: Vec<NoticeTarget>,
    /// The data generation this plan was computed on.
    pub generation: u64,
    /// For tests of atomicity: the commit fails after writing this many rows.
    pub inject_failure_after: Option<usize>,
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
    /// The commit was given another file than the one planned.
    NotThePlannedFile,
    /// A roster cannot be held for a later release (only grades can).
    RosterHeld,
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
            ImportError::NotThePlannedFile => {
                f.write_str("提交的文件与预览的文件不同，未写入任何数据，请重新上传预览")
            }
            ImportError::RosterHeld => f.write_str("学生名册不能定时发布，只有成绩可以"),
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

/// How far a plan has come, for progress displays: a stage and rows done of rows in all.
#[derive(Default)]
pub struct Progress {
    /// 0 reading, 1 checking and comparing, 2 planned, 3 writing, 4 done.
    pub stage: AtomicUsize,
    pub done: AtomicUsize,
    pub total: AtomicUsize,
}

impl Progress {
    pub fn set(&self, stage: usize, done: usize, total: usize) {
        self.stage.store(stage, Ordering::Relaxed);
        self.done.store(done, Ordering::Relaxed);
        self.total.store(total, Ordering::Relaxed);
    }
    pub(super) fn tick(&self, done: usize) {
        if done.is_multiple_of(1024) {
            self.done.store(done, Ordering::Relaxed);
        }
    }
}

/// Read, validate and compare; nothing is written.
pub fn plan(store: &Store, key: &VerifyKey, up: &Upload<'_>) -> Result<Plan, ImportError> {
    let limits = XlsxLimits::for_upload(DEFAULT_UPLOAD_BYTES.max(up.bytes.len() as u64));
    plan_with_progress(store, key, up, &limits, &Progress::default())
}

/// `plan`, reporting how far it has come; an XLSX is checked against `limits` before it is read.
/// Columns are found by header names, or by the preset saved for this header row.
pub fn plan_with_progress(
    store: &Store,
    key: &VerifyKey,
    up: &Upload<'_>,
    limits: &XlsxLimits,
    progress: &Progress,
) -> Result<Plan, ImportError> {
    plan_with_map(store, key, up, None, limits, progress)
}

/// `plan_with_progress` with the columns found by `map` when one is given (`--map`, `--preset`,
/// the mapping page); without one, a preset saved for this header row is used when there is
/// one, else the header names. One pass over the file: each row is validated and compared with
/// the stored data as it streams past, and only counts, samples, the students to notify and
/// the keys seen are kept.
pub fn plan_with_map(
    store: &Store,
    key: &VerifyKey,
    up: &Upload<'_>,
    map: Option<&ChosenMap>,
    limits: &XlsxLimits,
    progress: &Progress,
) -> Result<Plan, ImportError> {
    progress.set(0, 0, 0);
    // Title rows above a mapped header row are skipped too: its student-ID header marks it.
    let rule = match map {
        Some(m) => super::presets::header_rule(std::slice::from_ref(&m.map)),
        None => super::presets::header_rule_for(store, up.kind)?,
    };
    let mut reader = TableReader::open_with_header(up.file_name, up.bytes, limits, &rule)
        .map_err(ImportError::File)?;
    let format = reader.format().to_string();
    let roster = up.kind == ImportKind::Roster;
    let chosen = match map {
        Some(m) => Some(m.clone()),
        None => super::presets::recognise(store, up.kind, reader.headers())?.map(|(name, map)| {
            ChosenMap {
                map,
                source: format!("预设 {name}"),
            }
        }),
    };
    let (layout, mapping) = match &chosen {
        Some(c) => (c.source.clone(), c.map.listed(roster)),
        None => (
            match up.kind {
                ImportKind::Roster => layout::recognise_roster(reader.headers()),
                ImportKind::Grades => layout::recognise_grades(reader.headers()),
            }
            .to_string(),
            column_mapping(roster, reader.headers()),
        ),
    };
    let needs_mapping = chosen.is_none() && mapping.is_empty();
    // Where the grade file's 姓名 column is, for the errors of names that differ from the roster.
    let name_column = mapping
        .iter()
        .find(|(field, _)| *field == layout::GRADE_FIELDS[layout::G_NAME].label)
        .and_then(|(_, header)| {
            let at = reader.headers().iter().position(|h| h == header)?;
            Some((header.clone(), at.saturating_add(reader.first_column())))
        });
    let snap = store.snapshot()?;
    let mut plan = Plan {
        kind: up.kind,
        file_name: up.file_name.to_string(),
        sha256: secret::hex(&secret::sha256(&[up.bytes])),
        format,
        layout,
        needs_mapping,
        columns: chosen.clone(),
        mapping,
        rows_read: 0,
        skipped: 0,
        translated: Vec::new(),
        errors: Vec::new(),
        added: 0,
        changed: 0,
        unchanged: 0,
        removed: 0,
        unknown_students: Vec::new(),
        terms: Vec::new(),
        replace_term: up.replace_term.as_ref().map(|t| t.as_str().to_string()),
        samples: Vec::new(),
        removals: Vec::new(),
        targets: Vec::new(),
        generation: snap.generation,
        inject_failure_after: None,
    };
    progress.set(1, 0, 0);
    let mut seen = Seen::with_capacity(estimate_rows(up.bytes));
    let by_map = chosen.as_ref().map(|c| &c.map);
    let mut read = Reading {
        reader: &mut reader,
        map: by_map,
        seen: &mut seen,
        progress,
    };
    match up.kind {
        ImportKind::Roster => plan_roster(&snap, key, &mut read, &mut plan)?,
        ImportKind::Grades => plan_grades(&snap, up, &mut read, &mut plan, name_column)?,
    }
    progress.set(2, plan.rows_read, plan.rows_read);
    Ok(plan)
}

/// What a plan reads with: the file, the column map (if any), the keys seen, the progress.
struct Reading<'a, 'r> {
    reader: &'a mut TableReader<'r>,
    map: Option<&'a super::mapping::ColumnMap>,
    seen: &'a mut Seen,
    progress: &'a Progress,
}

/// The roster row a roster record becomes (its verification value hashed).
fn student_of(key: &VerifyKey, r: &RosterRecord) -> Student {
    Student {
        student_id: r.student_id.clone(),
        name: r.name.clone(),
        verify: key.hash(&r.student_id, &r.verify),
        class: r.class.clone(),
        major: r.major.clone(),
        college: r.college.clone(),
        cohort: r.cohort.clone(),
    }
}

fn plan_roster(
    snap: &crate::store::grades::Snapshot,
    key: &VerifyKey,
    read: &mut Reading<'_, '_>,
    plan: &mut Plan,
) -> Result<(), ImportError> {
    let students = snap.students()?;
    let v = each_record::<RosterSheet>(
        read.reader,
        read.map,
        Some(&mut *read.seen),
        read.progress,
        |line, r| {
            let s = student_of(key, &r);
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
                }
                None => plan.added += 1,
            }
            Ok(())
        },
    )?;
    plan.rows_read = v.rows_read;
    plan.errors = v.errors;
    Ok(())
}

fn describe_student(s: &Student) -> String {
    let mut out = s.name.clone();
    for part in [&s.college, &s.cohort, &s.class, &s.major]
        .into_iter()
        .flatten()
    {
        out.push_str(" · ");
        out.push_str(part);
    }
    out
}

/// The fingerprint of a stored grade key, as [`GradeSheet`] keys a record (None: not a key).
fn stored_key_fingerprint(seen: &Seen, key: &str) -> Option<Fingerprint> {
    let mut p = key.split('\u{1f}');
    let (Some(sid), Some(term), Some(code), Some(kind), None) =
        (p.next(), p.next(), p.next(), p.next(), p.next())
    else {
        return None;
    };
    let term = Term::parse(term).ok()?;
    let kind = crate::grades::ExamKind::from_code(kind)?;
    Some(seen.fingerprint(&(sid, term, code, kind)))
}

fn plan_grades(
    snap: &crate::store::grades::Snapshot,
    up: &Upload<'_>,
    read: &mut Reading<'_, '_>,
    plan: &mut Plan,
    name_column: Option<(String, usize)>,
) -> Result<(), ImportError> {
    let students = snap.students()?;
    let grades = snap.grades()?;
    let bound = snap.bound()?;
    // student_id → who that is: roster name (None: not in the roster) and bound openid.
    struct Who {
        name: Option<String>,
        openid: Option<String>,
    }
    let mut roster: HashMap<String, Who> = HashMap::new();
    let mut unknown: BTreeSet<String> = BTreeSet::new();
    let mut terms: BTreeSet<Term> = BTreeSet::new();
    // Bound students only: what changed for them, for their notice.
    let mut touched: BTreeMap<String, (BTreeSet<Term>, Vec<String>)> = BTreeMap::new();
    let mut name_errors: Vec<RowError> = Vec::new();
    let v = each_record::<GradeSheet>(
        read.reader,
        read.map,
        Some(&mut *read.seen),
        read.progress,
        |line, r| {
            if !roster.contains_key(&r.student_id) {
                let name = match students.get(r.student_id.as_str())? {
                    Some(v) => serde_json::from_slice::<Student>(v.value())
                        .ok()
                        .map(|s| s.name),
                    None => None,
                };
                let openid = match &name {
                    Some(_) => bound
                        .get(r.student_id.as_str())?
                        .map(|o| o.value().to_string()),
                    None => None,
                };
                roster.insert(r.student_id.clone(), Who { name, openid });
            }
            let Some(who) = roster.get(&r.student_id) else {
                return Ok(());
            };
            match (&who.name, &r.name) {
                (None, _) => {
                    unknown.insert(r.student_id.clone());
                }
                (Some(rn), Some(given)) if rn != given.trim() => {
                    name_errors.push(RowError {
                        line,
                        column: Some(
                            name_column
                                .as_ref()
                                .map_or_else(|| "姓名".to_string(), |(h, _)| h.clone()),
                        ),
                        col: name_column.as_ref().map(|(_, at)| *at),
                        value: Some(given.chars().take(MAX_ERROR_VALUE).collect()),
                        message: format!(
                            "学号 {} 在名册中的姓名是“{}”，文件中是“{}”",
                            r.student_id,
                            rn,
                            given.trim()
                        ),
                    });
                    return Ok(());
                }
                _ => {}
            }
            let notify = who.openid.is_some();
            terms.insert(r.term);
            let key = grade_key(&r.student_id, &r.term, &r.course_code, r.kind);
            let value = grade_value(&r);
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
                            line,
                            student_id: r.student_id.clone(),
                            what: describe_course(&r),
                            before: o
                                .as_deref()
                                .and_then(|o| decode_row(&key, o).ok())
                                .map(|g| describe_grade(&g)),
                            after: describe_grade(&r),
                        });
                    }
                    if notify {
                        let t = touched.entry(r.student_id.clone()).or_default();
                        t.0.insert(r.term);
                        if !t.1.contains(&r.course_name) {
                            t.1.push(r.course_name.clone());
                        }
                    }
                }
            }
            Ok(())
        },
    )?;
    plan.rows_read = v.rows_read;
    plan.skipped = v.skipped;
    plan.translated = v.translated;
    plan.errors = v.errors;
    if !name_errors.is_empty() {
        plan.errors.extend(name_errors);
        plan.errors.sort_by_key(|e| e.line);
    }
    if let Some(term) = &up.replace_term {
        // Rows of the term the file does not list: counted, and a few kept for the preview.
        for item in grades.iter()? {
            let (k, v) = item?;
            let k = k.value();
            if k.split('\u{1f}').nth(1) != Some(term.as_str()) {
                continue;
            }
            if stored_key_fingerprint(read.seen, k).is_some_and(|fp| read.seen.contains(fp)) {
                continue;
            }
            plan.removed += 1;
            if plan.removals.len() < MAX_REMOVAL_SAMPLES {
                if let Ok(g) = decode_row(k, v.value()) {
                    let name = match students.get(g.student_id.as_str())? {
                        Some(s) => serde_json::from_slice::<Student>(s.value())
                            .ok()
                            .map(|s| s.name),
                        None => None,
                    };
                    plan.removals.push(Removal {
                        name,
                        term: g.term.as_str().to_string(),
                        course: format!(
                            "{}（{}，{}）",
                            g.course_name,
                            g.course_code,
                            g.kind.label()
                        ),
                        score: describe_grade(&g),
                        student_id: g.student_id,
                    });
                }
            }
        }
        terms.insert(*term);
    }
    plan.unknown_students = unknown.into_iter().collect();
    plan.terms = terms.iter().rev().map(|t| t.as_str().to_string()).collect();
    for (sid, (ts, courses)) in touched {
        let Some(Who {
            name,
            openid: Some(openid),
        }) = roster.remove(&sid)
        else {
            continue;
        };
        plan.targets.push(NoticeTarget {
            openid,
            student_id: sid,
            name: name.unwrap_or_default(),
            terms: ts.iter().rev().map(|t| t.as_str().to_string()).collect(),
            courses,
        });
    }
    Ok(())
}

fn describe_course(g: &GradeRecord) -> String {
    format!(
        "{} {}（{}）",
        g.term.as_str(),
        g.course_name,
        g.kind.label()
    )
}

fn describe_grade(g: &GradeRecord) -> String {
    match g.score {
        crate::grades::Score::Numeric(_) => format!("{} 分 · {} 学分", g.score, g.credit),
        _ => format!("{} · {} 学分", g.score, g.credit),
    }
}

/// What `commit` did.
#[derive(Debug)]
pub struct Committed {
    pub record: ImportRecord,
    /// Student IDs whose stored rows (roster or grades) the commit changed: the pages to drop.
    pub students: Vec<String>,
}

/// Write the plan in one transaction, visible to students now: [`commit_to`] with
/// [`Destination::Live`].
#[allow(clippy::too_many_arguments)]
pub fn commit(
    store: &Store,
    key: &VerifyKey,
    plan: &Plan,
    up: &Upload<'_>,
    by: &str,
    now: i64,
    notify: bool,
    notices: impl FnOnce(&WriteTransaction, u64, &[NoticeTarget]) -> Result<usize, StoreError>,
) -> Result<Committed, ImportError> {
    commit_to(
        store,
        key,
        plan,
        up,
        by,
        now,
        notify,
        Destination::Live,
        notices,
    )
}

/// Write the plan in one transaction, reading `up` — the file the plan was made from, checked
/// by its SHA-256, with the plan's column map — a second time: each record is compared with
/// the stored row and written only when it differs, so memory stays bounded however large the
/// file. The rows go to `destination`: live, or held in a release until its publish time
/// (grades only; then `notices` is not called — the release works out whom to notify when it
/// is published, see `service::releases`). Refused when the data changed since the plan
/// ([`ImportError::Stale`]). `notices` runs inside that transaction with the new import id and
/// the students to notify (when `notify`), and returns how many notices it wrote.
#[allow(clippy::too_many_arguments)]
pub fn commit_to(
    store: &Store,
    key: &VerifyKey,
    plan: &Plan,
    up: &Upload<'_>,
    by: &str,
    now: i64,
    notify: bool,
    destination: Destination,
    notices: impl FnOnce(&WriteTransaction, u64, &[NoticeTarget]) -> Result<usize, StoreError>,
) -> Result<Committed, ImportError> {
    if plan.kind == ImportKind::Roster && destination != Destination::Live {
        return Err(ImportError::RosterHeld);
    }
    if plan.has_errors() {
        return Err(ImportError::HasErrors(plan.errors.len()));
    }
    if secret::hex(&secret::sha256(&[up.bytes])) != plan.sha256 || up.kind != plan.kind {
        return Err(ImportError::NotThePlannedFile);
    }
    let record = ImportRecord {
        added: plan.added,
        changed: plan.changed,
        unchanged: plan.unchanged,
        removed: plan.removed,
        notify,
        ..refused_record(plan, by, now, "committed")
    };
    let targets: &[NoticeTarget] = if notify { &plan.targets } else { &[] };
    // The file was read within its limits when planned; it is the same file.
    let limits = XlsxLimits::for_upload(DEFAULT_UPLOAD_BYTES.max(up.bytes.len() as u64));
    let map = plan.columns.as_ref().map(|c| &c.map);
    let rule = super::presets::header_rule(map.map(std::slice::from_ref).unwrap_or(&[]));
    let written = store.write_import(
        record,
        plan.generation,
        plan.inject_failure_after,
        destination,
        |w: &mut ImportWriter<'_>| -> Result<BTreeSet<String>, ImportError> {
            let mut reader = TableReader::open_with_header(up.file_name, up.bytes, &limits, &rule)
                .map_err(ImportError::File)?;
            let mut changed = BTreeSet::new();
            let progress = Progress::default();
            let errors = match up.kind {
                ImportKind::Roster => {
                    let v =
                        each_record::<RosterSheet>(&mut reader, map, None, &progress, |_, r| {
                            let s = student_of(key, &r);
                            let old: Option<Student> = match w.student(&r.student_id)? {
                                Some(v) => serde_json::from_slice(&v).ok(),
                                None => None,
                            };
                            if old.as_ref() != Some(&s) {
                                let v = serde_json::to_vec(&s).map_err(StoreError::from)?;
                                w.put_student(&s.student_id, &v)?;
                                changed.insert(s.student_id);
                            }
                            Ok(())
                        })?;
                    v.errors.len()
                }
                ImportKind::Grades => {
                    let mut listed = Seen::with_capacity(0);
                    let replace = up.replace_term;
                    let v =
                        each_record::<GradeSheet>(&mut reader, map, None, &progress, |_, r| {
                            if replace == Some(r.term) {
                                let fp = listed.fingerprint(&(
                                    r.student_id.as_str(),
                                    r.term,
                                    r.course_code.as_str(),
                                    r.kind,
                                ));
                                listed.insert(fp, 0);
                            }
                            let key = grade_key(&r.student_id, &r.term, &r.course_code, r.kind);
                            if w.put_grade(&key, &grade_value(&r))?
                                && !changed.contains(&r.student_id)
                            {
                                changed.insert(r.student_id);
                            }
                            Ok(())
                        })?;
                    if let Some(term) = &replace {
                        for k in w.grade_keys_in_term(term)? {
                            let listed_here = stored_key_fingerprint(&listed, &k)
                                .is_some_and(|fp| listed.contains(fp));
                            if !listed_here {
                                w.remove_grade(&k)?;
                                changed.insert(student_of_key(&k).to_string());
                            }
                        }
                    }
                    v.errors.len()
                }
            };
            // Name and duplicate errors were ruled out by the plan on this same data; a row
            // error here would mean the file is not what was planned.
            if errors > 0 {
                return Err(ImportError::HasErrors(errors));
            }
            Ok(changed)
        },
        |tx, id| notices(tx, id, targets),
    )?;
    match written {
        Some((record, students)) => Ok(Committed {
            record,
            students: students.into_iter().collect(),
        }),
        None => Err(ImportError::Stale),
    }
}

/// The history record of an import that wrote nothing (`why` says why); `commit` adds its counts.
pub fn refused_record(plan: &Plan, by: &str, now: i64, why: &str) -> ImportRecord {
    ImportRecord {
        at: now,
        by: by.to_string(),
        kind: plan.kind.as_str().to_string(),
        file_name: plan.file_name.clone(),
        sha256: plan.sha256.clone(),
        rows_read: plan.rows_read,
        unknown_students: plan.unknown_students.len(),
        terms: plan.terms.clone(),
        result: why.to_string(),
        ..ImportRecord::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::import::table::tests::{xlsx_bytes, XCell};

    fn store(name: &str) -> Store {
        let d = std::env::temp_dir().join(format!("wxg-plan-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        Store::open(&d.join("x.redb")).unwrap()
    }

    const ROSTER: &str =
        "学号,姓名,身份证后六位,班级\n2021001,张三,123456,计科2101\n2021002,李四,65432X,计科2101\n";
    const GRADES: &str = "学号,姓名,学期,课程代码,课程名称,学分,成绩,考试性质\n\
        2021001,张三,2024-2025-1,MA1001,高等数学,4,95,正常考试\n\
        2021001,张三,2024-2025-1,EN1001,大学英语,3,58,正常考试\n\
        2021001,张三,2024-2025-1,EN1001,大学英语,3,65,补考\n\
        2021002,李四,2024-2025-1,MA1001,高等数学,4,优秀,\n";

    fn key() -> VerifyKey {
        VerifyKey::for_tests()
    }

    fn upload<'a>(kind: ImportKind, name: &'a str, bytes: &'a [u8]) -> Upload<'a> {
        Upload {
            kind,
            file_name: name,
            bytes,
            replace_term: None,
        }
    }

    /// Plan without committing.
    fn preview(s: &Store, kind: ImportKind, name: &str, bytes: &[u8]) -> Plan {
        let up = Upload {
            kind,
            file_name: name,
            bytes,
            replace_term: None,
        };
        plan(s, &VerifyKey::for_tests(), &up).unwrap()
    }

    fn import(
        s: &Store,
        kind: ImportKind,
        name: &str,
        bytes: &[u8],
        replace: Option<&str>,
    ) -> Plan {
        let key = VerifyKey::for_tests();
        let up = Upload {
            kind,
            file_name: name,
            bytes,
            replace_term: replace.map(|t| Term::parse(t).unwrap()),
        };
        let p = plan(s, &key, &up).unwrap();
        if !p.has_errors() {
            commit(s, &key, &p, &up, "test", 1, false, |_, _, _| Ok(0)).unwrap();
        }
        p
    }

    fn all_rows(s: &Store) -> Vec<(String, String)> {
        let mut v = Vec::new();
        s.for_each_grade(|k, val| {
            v.push((k.to_string(), val.to_string()));
            Ok(())
        })
        .unwrap();
        v
    }

    #[test]
    fn import_then_reimport_changes_nothing() {
        let s = store("idem");
        let p = import(&s, ImportKind::Roster, "r.csv", ROSTER.as_bytes(), None);
        assert_eq!((p.added, p.changed), (2, 0));
        let p = import(&s, ImportKind::Grades, "g.csv", GRADES.as_bytes(), None);
        assert_eq!((p.added, p.changed, p.unchanged), (4, 0, 0));
        let before = all_rows(&s);
        let g = s.generation().unwrap();
        let p = preview(&s, ImportKind::Grades, "g.csv", GRADES.as_bytes());
        assert_eq!((p.added, p.changed, p.unchanged), (0, 0, 4));
        let p = import(&s, ImportKind::Roster, "r.csv", ROSTER.as_bytes(), None);
        assert_eq!((p.added, p.changed, p.unchanged), (0, 0, 2));
        assert_eq!(all_rows(&s), before);
        assert!(s.generation().unwrap() > g);
    }

    #[test]
    fn utf8_bom_gbk_and_xlsx_give_identical_plans() {
        let mut results = Vec::new();
        let gbk = encoding_rs::GBK.encode(GRADES).0.into_owned();
        let mut bom = vec![0xEF, 0xBB, 0xBF];
        bom.extend_from_slice(GRADES.as_bytes());
        let rows: Vec<(u32, Vec<XCell>)> = GRADES
            .lines()
            .enumerate()
            .map(|(i, l)| (i as u32 + 1, l.split(',').map(XCell::Shared).collect()))
            .collect();
        let xlsx = xlsx_bytes(&rows);
        for (name, bytes) in [
            ("g.csv", GRADES.as_bytes().to_vec()),
            ("g.csv", bom),
            ("g.csv", gbk),
            ("g.xlsx", xlsx),
        ] {
            let s = store(&format!("enc{}", results.len()));
            import(&s, ImportKind::Roster, "r.csv", ROSTER.as_bytes(), None);
            let p = import(&s, ImportKind::Grades, name, &bytes, None);
            assert!(!p.has_errors(), "{name}: {:?}", p.errors);
            results.push(all_rows(&s));
        }
        assert_eq!(results[0].len(), 4);
        assert!(results.iter().all(|r| r == &results[0]));
    }

    #[test]
    fn errors_name_line_and_column_and_write_nothing() {
        let s = store("errors");
        import(&s, ImportKind::Roster, "r.csv", ROSTER.as_bytes(), None);
        let before = all_rows(&s);
        let bad = "学号,学期,课程代码,课程名称,学分,成绩\n2021001,2024-2025-1,MA1001,高等数学,abc,95\n2021001,2024-2025-9,MA1002,线代,3,95\n2021001,2024-2025-1,MA1003,概率,3,101\n2021001,2024-2025-1,MA1004,数分,4,90\n2021001,2024-2025-1,MA1004,数分,4,91\n";
        let p = import(&s, ImportKind::Grades, "bad.csv", bad.as_bytes(), None);
        let lines: Vec<(usize, Option<&str>)> = p
            .errors
            .iter()
            .map(|e| (e.line, e.column.as_deref()))
            .collect();
        assert!(lines.contains(&(2, Some("学分"))), "{lines:?}");
        assert!(lines.contains(&(3, Some("学期"))), "{lines:?}");
        assert!(lines.contains(&(4, Some("成绩"))), "{lines:?}");
        assert!(
            p.errors
                .iter()
                .any(|e| e.line == 6 && e.message.contains('5')),
            "duplicate of line 5: {:?}",
            p.errors
        );
        let up = upload(ImportKind::Grades, "bad.csv", bad.as_bytes());
        let r = commit(&s, &key(), &p, &up, "test", 1, false, |_, _, _| Ok(0));
        assert!(matches!(r, Err(ImportError::HasErrors(_))));
        assert_eq!(all_rows(&s), before);
    }

    #[test]
    fn name_mismatch_is_an_error_and_unknown_students_are_listed() {
        let s = store("names");
        import(&s, ImportKind::Roster, "r.csv", ROSTER.as_bytes(), None);
        let f = "学号,姓名,学期,课程代码,课程名称,学分,成绩\n2021001,王五,2024-2025-1,MA1001,高等数学,4,95\n2029999,赵六,2024-2025-1,MA1001,高等数学,4,95\n";
        let p = import(&s, ImportKind::Grades, "g.csv", f.as_bytes(), None);
        assert_eq!(p.errors.len(), 1);
        assert_eq!(
            (p.errors[0].line, p.errors[0].column.as_deref()),
            (2, Some("姓名"))
        );
        assert_eq!(p.unknown_students, vec!["2029999".to_string()]);
    }

    #[test]
    fn replace_term_removes_rows_the_file_does_not_list() {
        let s = store("replace");
        import(&s, ImportKind::Roster, "r.csv", ROSTER.as_bytes(), None);
        import(&s, ImportKind::Grades, "g.csv", GRADES.as_bytes(), None);
        let other =
            "学号,学期,课程代码,课程名称,学分,成绩\n2021001,2024-2025-2,CS1001,程序设计,3,88\n";
        import(&s, ImportKind::Grades, "o.csv", other.as_bytes(), None);
        let f = "学号,学期,课程代码,课程名称,学分,成绩\n2021001,2024-2025-1,MA1001,高等数学,4,96\n";
        let p = import(
            &s,
            ImportKind::Grades,
            "f.csv",
            f.as_bytes(),
            Some("2024-2025-1"),
        );
        assert_eq!((p.changed, p.removed), (1, 3));
        let rows = all_rows(&s);
        assert_eq!(rows.len(), 2, "{rows:?}");
        assert!(rows.iter().any(|(k, _)| k.contains("2024-2025-2")));
    }

    #[test]
    fn replace_term_keeps_a_bounded_sample_of_its_removals() {
        let s = store("removals");
        import(&s, ImportKind::Roster, "r.csv", ROSTER.as_bytes(), None);
        let mut f = String::from("学号,学期,课程代码,课程名称,学分,成绩\n");
        for k in 0..(MAX_REMOVAL_SAMPLES + 5) {
            f.push_str(&format!("2021001,2024-2025-1,C{k:04},课{k},2,70\n"));
        }
        f.push_str("2029999,2024-2025-1,X1,外课,2,80\n");
        import(&s, ImportKind::Grades, "g.csv", f.as_bytes(), None);
        let one = "学号,学期,课程代码,课程名称,学分,成绩\n2021001,2024-2025-1,C0000,课0,2,70\n";
        let up = Upload {
            kind: ImportKind::Grades,
            file_name: "one.csv",
            bytes: one.as_bytes(),
            replace_term: Some(Term::parse("2024-2025-1").unwrap()),
        };
        let p = plan(&s, &VerifyKey::for_tests(), &up).unwrap();
        assert_eq!(p.removed, MAX_REMOVAL_SAMPLES + 5);
        assert_eq!(p.removals.len(), MAX_REMOVAL_SAMPLES);
        assert_eq!(
            p.removals[0],
            Removal {
                student_id: "2021001".into(),
                name: Some("张三".into()),
                term: "2024-2025-1".into(),
                course: "课1（C0001，正常考试）".into(),
                score: "70 分 · 2 学分".into(),
            }
        );
        assert!(p
            .removals
            .iter()
            .all(|r| r.course != "课0（C0000，正常考试）"));
    }

    #[test]
    fn errors_carry_the_column_letter_and_the_cell() {
        let s = store("letters");
        import(&s, ImportKind::Roster, "r.csv", ROSTER.as_bytes(), None);
        let f = "学号,Name,学期,课程代码,课程名称,学分,成绩\n2021001,王五,2024-2025-1,MA1001,高等数学,4,95\n2021001,张三,2024-2025-1,MA1002,线代,4,x\n";
        let p = preview(&s, ImportKind::Grades, "g.csv", f.as_bytes());
        let shown: Vec<(usize, Option<String>, Option<&str>)> = p
            .errors
            .iter()
            .map(|e| (e.line, e.column_label(), e.value.as_deref()))
            .collect();
        assert_eq!(
            shown,
            vec![
                (2, Some("Name（B 列）".to_string()), Some("王五")),
                (3, Some("成绩（G 列）".to_string()), Some("x")),
            ]
        );
        assert!(p.errors[1]
            .describe()
            .starts_with("line 3, column 成绩 (G): "));
    }

    #[test]
    fn a_sheet_that_starts_right_of_column_a_names_its_real_columns() {
        let s = store("offset");
        let cells = |v: [&'static str; 6]| {
            let mut row = vec![XCell::Empty];
            row.extend(v.into_iter().map(XCell::Shared));
            row
        };
        let rows = vec![
            (
                1,
                cells(["学号", "学期", "课程代码", "课程名称", "学分", "成绩"]),
            ),
            (
                2,
                cells(["2021001", "2024-2025-1", "MA1001", "高数", "4", "x"]),
            ),
        ];
        let p = preview(&s, ImportKind::Grades, "g.xlsx", &xlsx_bytes(&rows));
        assert_eq!(p.errors.len(), 1, "{:?}", p.errors);
        assert_eq!(p.errors[0].column_label().as_deref(), Some("成绩（G 列）"));
    }

    #[test]
    fn failure_in_the_middle_of_a_commit_leaves_everything_as_before() {
        let s = store("fault");
        import(&s, ImportKind::Roster, "r.csv", ROSTER.as_bytes(), None);
        import(&s, ImportKind::Grades, "g.csv", GRADES.as_bytes(), None);
        let before = all_rows(&s);
        let g = s.generation().unwrap();
        let imports = s.imports(0, 100).unwrap().len();
        let f = "学号,学期,课程代码,课程名称,学分,成绩\n2021001,2024-2025-1,MA1001,高等数学,4,50\n2021001,2024-2025-2,X1,新课一,2,80\n2021002,2024-2025-2,X2,新课二,2,80\n";
        let mut p = preview(&s, ImportKind::Grades, "f.csv", f.as_bytes());
        assert_eq!(p.writes(), 3);
        p.inject_failure_after = Some(2);
        let up = upload(ImportKind::Grades, "f.csv", f.as_bytes());
        assert!(commit(&s, &key(), &p, &up, "test", 1, false, |_, _, _| Ok(0)).is_err());
        assert_eq!(all_rows(&s), before);
        assert_eq!(s.generation().unwrap(), g);
        assert_eq!(s.imports(0, 100).unwrap().len(), imports);
    }

    #[test]
    fn a_plan_on_changed_data_is_stale() {
        let s = store("stale");
        import(&s, ImportKind::Roster, "r.csv", ROSTER.as_bytes(), None);
        let p = preview(&s, ImportKind::Grades, "g.csv", GRADES.as_bytes());
        let up = upload(ImportKind::Grades, "g.csv", GRADES.as_bytes());
        commit(&s, &key(), &p, &up, "test", 1, false, |_, _, _| Ok(0)).unwrap();
        assert!(matches!(
            commit(&s, &key(), &p, &up, "test", 1, false, |_, _, _| Ok(0)),
            Err(ImportError::Stale)
        ));
    }
}
