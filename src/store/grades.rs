//! Grade rows and imports: the compact row encoding, a student's rows, the data generation
//! that tells a preview it is stale, and the one-transaction application of an import.

use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata, WriteTransaction};
use serde::{Deserialize, Serialize};

use super::releases::{Destination, GradeSink};
use super::tables::{GRADES, IMPORTS, META, STUDENTS};
use super::{Result, Store, StoreError};
use crate::grades::{CourseFacts, Credit, ExamKind, GradeRecord, Score, Term};

const SEP: char = '\u{1f}';

/// The key of a grade row: (student_id, term, course_code, kind).
pub fn grade_key(student_id: &str, term: &Term, course_code: &str, kind: ExamKind) -> String {
    format!(
        "{student_id}{SEP}{}{SEP}{course_code}{SEP}{}",
        term.as_str(),
        kind.code()
    )
}

/// Between a component's label and its value, inside the components field.
const PAIR: char = '\u{1d}';
/// Between two components.
const NEXT: char = '\u{1e}';

/// A text as it may sit inside a stored value: the separators (control characters, which no
/// registrar's cell means) become spaces.
fn field(text: &str) -> String {
    text.replace([SEP, PAIR, NEXT], " ")
}

/// The stored value of a grade row: `course_name␟credit_hundredths␟score`, followed, only when
/// the file carried course facts, by `␟nature␟college␟class_group␟components` (absent ones
/// empty; components as `label␝value` joined by `␞`). Rows stored before the facts existed
/// have the three fields only, and still decode.
pub fn grade_value(r: &GradeRecord) -> String {
    let mut out = format!(
        "{}{SEP}{}{SEP}{}",
        field(&r.course_name),
        r.credit.hundredths(),
        r.score
    );
    let c = &r.course;
    if !c.is_empty() {
        let opt = |o: &Option<String>| o.as_deref().map(field).unwrap_or_default();
        let components: Vec<String> = c
            .components
            .iter()
            .map(|(label, value)| format!("{}{PAIR}{}", field(label), field(value)))
            .collect();
        out.push(SEP);
        out.push_str(&opt(&c.nature));
        out.push(SEP);
        out.push_str(&opt(&c.college));
        out.push(SEP);
        out.push_str(&opt(&c.class_group));
        out.push(SEP);
        out.push_str(&components.join(&NEXT.to_string()));
    }
    out
}

fn bad(key: &str) -> StoreError {
    StoreError::Decode(format!("grade row {:?}", key.replace(SEP, "|")))
}

fn decode_facts(key: &str, rest: &mut std::str::Split<'_, char>) -> Result<CourseFacts> {
    let some = |s: &str| (!s.is_empty()).then(|| s.to_string());
    match (
        rest.next(),
        rest.next(),
        rest.next(),
        rest.next(),
        rest.next(),
    ) {
        (None, ..) => Ok(CourseFacts::default()),
        (Some(nature), Some(college), Some(class_group), Some(components), None) => {
            let mut list = Vec::new();
            for pair in components.split(NEXT).filter(|p| !p.is_empty()) {
                let (label, value) = pair.split_once(PAIR).ok_or_else(|| bad(key))?;
                list.push((label.to_string(), value.to_string()));
            }
            Ok(CourseFacts {
                nature: some(nature),
                college: some(college),
                class_group: some(class_group),
                components: list,
            })
        }
        _ => Err(bad(key)),
    }
}

/// Decode a stored row back into a record.
pub fn decode_row(key: &str, value: &str) -> Result<GradeRecord> {
    let mut k = key.split(SEP);
    let (Some(sid), Some(term), Some(code), Some(kind), None) =
        (k.next(), k.next(), k.next(), k.next(), k.next())
    else {
        return Err(bad(key));
    };
    let mut v = value.split(SEP);
    let (Some(name), Some(credit), Some(score)) = (v.next(), v.next(), v.next()) else {
        return Err(bad(key));
    };
    let course = decode_facts(key, &mut v)?;
    Ok(GradeRecord {
        student_id: sid.to_string(),
        term: Term::parse(term).map_err(|_| bad(key))?,
        course_code: code.to_string(),
        course_name: name.to_string(),
        credit: Credit::from_hundredths(credit.parse().map_err(|_| bad(key))?),
        score: Score::parse(score).map_err(|_| bad(key))?,
        kind: ExamKind::from_code(kind).ok_or_else(|| bad(key))?,
        name: None,
        course,
    })
}

/// The key range of one student's rows.
fn student_range(student_id: &str) -> (String, String) {
    (format!("{student_id}{SEP}"), format!("{student_id}\u{20}"))
}

/// What an import writes.
#[derive(Debug, Default)]
pub struct ImportBatch {
    /// Roster rows to insert or replace (verification already hashed).
    pub students: Vec<(String, Vec<u8>)>,
    /// Grade rows to insert or replace: (key, value).
    pub grade_upserts: Vec<(String, String)>,
    /// Grade rows to remove (`--replace-term`).
    pub grade_removals: Vec<String>,
    /// For tests of atomicity: fail after writing this many rows.
    pub inject_failure_after: Option<usize>,
}

/// The one place an import's rows are written, inside its transaction ([`Store::write_import`]):
/// roster rows and grade rows, each read before it is written so an unchanged row costs no
/// write and the caller learns which rows changed.
pub struct ImportWriter<'t> {
    students: redb::Table<'t, &'static str, &'static [u8]>,
    grades: GradeSink<'t>,
    written: usize,
    /// For tests of atomicity: fail after writing this many rows.
    fail_after: Option<usize>,
}

impl ImportWriter<'_> {
    fn count_write(&mut self) -> Result<()> {
        match self.fail_after {
            Some(n) if self.written >= n => Err(StoreError::Io("injected failure".into())),
            _ => {
                self.written += 1;
                Ok(())
            }
        }
    }

    /// The stored roster row of a student (as written in this transaction so far).
    pub fn student(&self, student_id: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.students.get(student_id)?.map(|v| v.value().to_vec()))
    }

    /// Insert or replace a roster row.
    pub fn put_student(&mut self, student_id: &str, value: &[u8]) -> Result<()> {
        self.count_write()?;
        self.students.insert(student_id, value)?;
        Ok(())
    }

    /// Insert or replace a grade row; false (and nothing written) when the grades students
    /// see hold it already.
    pub fn put_grade(&mut self, key: &str, value: &str) -> Result<bool> {
        if self.grades.live(key)?.as_deref() == Some(value) {
            return Ok(false);
        }
        self.count_write()?;
        self.grades.upsert(key, value)?;
        Ok(true)
    }

    /// Remove a grade row.
    pub fn remove_grade(&mut self, key: &str) -> Result<()> {
        self.count_write()?;
        self.grades.remove(key)?;
        Ok(())
    }

    /// The keys of the stored (visible) grade rows of one term (a scan of every row).
    pub fn grade_keys_in_term(&self, term: &Term) -> Result<Vec<String>> {
        self.grades.live_keys_in_term(term.as_str())
    }
}

/// The student ID a grade key starts with.
pub fn student_of_key(key: &str) -> &str {
    key.split(SEP).next().unwrap_or(key)
}

/// The history record of an import, committed or refused.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ImportRecord {
    pub id: u64,
    pub at: i64,
    /// "cli" or "admin:NAME".
    pub by: String,
    /// "grades" or "roster".
    pub kind: String,
    pub file_name: String,
    pub sha256: String,
    pub rows_read: usize,
    pub added: usize,
    pub changed: usize,
    pub unchanged: usize,
    pub removed: usize,
    pub unknown_students: usize,
    pub terms: Vec<String>,
    pub notify: bool,
    pub notices: usize,
    /// "committed" or why not.
    pub result: String,
    /// Set when the grades were held for a release at this time (the release's id is the
    /// import's); absent in records written before releases existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publish_at: Option<i64>,
}

impl Store {
    /// A student's grade rows, in key order.
    pub fn grades_of(&self, student_id: &str) -> Result<Vec<GradeRecord>> {
        let tx = self.db().begin_read()?;
        let t = tx.open_table(GRADES)?;
        let (a, b) = student_range(student_id);
        let mut out = Vec::new();
        for item in t.range(a.as_str()..b.as_str())? {
            let (k, v) = item?;
            out.push(decode_row(k.value(), v.value())?);
        }
        Ok(out)
    }

    /// Counts for the dashboard: grade rows.
    pub fn grade_count(&self) -> Result<u64> {
        let tx = self.db().begin_read()?;
        Ok(tx.open_table(GRADES)?.len()?)
    }

    /// Visit every grade row (key, value) in key order, in one read transaction.
    pub fn for_each_grade(&self, mut f: impl FnMut(&str, &str) -> Result<()>) -> Result<()> {
        let tx = self.db().begin_read()?;
        let t = tx.open_table(GRADES)?;
        for item in t.iter()? {
            let (k, v) = item?;
            f(k.value(), v.value())?;
        }
        Ok(())
    }

    /// A consistent read view for planning an import: the generation and lookups in one
    /// snapshot.
    pub fn snapshot(&self) -> Result<Snapshot> {
        let tx = self.db().begin_read()?;
        let generation = read_generation(&tx.open_table(META)?)?;
        Ok(Snapshot { tx, generation })
    }

    /// The data generation: bumped by every committed import.
    pub fn generation(&self) -> Result<u64> {
        let tx = self.db().begin_read()?;
        read_generation(&tx.open_table(META)?)
    }

    /// Write an import in one transaction into the grades students see:
    /// [`Store::apply_import_to`] with [`Destination::Live`].
    pub fn apply_import(
        &self,
        batch: &ImportBatch,
        record: ImportRecord,
        expected_generation: u64,
        extra: impl FnOnce(&WriteTransaction, u64) -> Result<usize>,
    ) -> Result<Option<ImportRecord>> {
        self.apply_import_to(batch, record, expected_generation, Destination::Live, extra)
    }

    /// Write an import in one transaction, if the data is still at `expected_generation`.
    /// `destination` says where its grade rows go: into the grades students see, or held in a
    /// release until its publish time (see `store::releases`; then no notices are written
    /// now, the release writes them when it is published). `extra` runs inside the same
    /// transaction (grade notices go in with the grades) for a live import only.
    /// Returns the new import id, or None when the data changed since the plan.
    pub fn apply_import_to(
        &self,
        batch: &ImportBatch,
        record: ImportRecord,
        expected_generation: u64,
        destination: Destination,
        extra: impl FnOnce(&WriteTransaction, u64) -> Result<usize>,
    ) -> Result<Option<ImportRecord>> {
        let written = self.write_import(
            record,
            expected_generation,
            batch.inject_failure_after,
            destination,
            |w: &mut ImportWriter<'_>| -> Result<()> {
                for (sid, v) in &batch.students {
                    w.put_student(sid, v)?;
                }
                for (k, v) in &batch.grade_upserts {
                    w.put_grade(k, v)?;
                }
                for k in &batch.grade_removals {
                    w.remove_grade(k)?;
                }
                Ok(())
            },
            extra,
        )?;
        Ok(written.map(|(record, ())| record))
    }

    /// Write an import in one transaction, if the data is still at `expected_generation`: the
    /// generation is bumped, `write` writes the rows through an [`ImportWriter`] (reading the
    /// file again as it goes, so no list of rows is held) to `destination` (the grades students
    /// see, or held in a release: see `store::releases`), `extra` runs next in the same
    /// transaction with the new import id for a live import (grade notices go in with the
    /// grades; a release writes its notices when it is published), and the history record is
    /// added. Returns the record and what `write` returned, or None when the data
    /// changed since the plan. Any error leaves everything as it was.
    pub fn write_import<T, E: From<StoreError>>(
        &self,
        mut record: ImportRecord,
        expected_generation: u64,
        fail_after: Option<usize>,
        destination: Destination,
        write: impl FnOnce(&mut ImportWriter<'_>) -> std::result::Result<T, E>,
        extra: impl FnOnce(&WriteTransaction, u64) -> Result<usize>,
    ) -> std::result::Result<Option<(ImportRecord, T)>, E> {
        let mut tx = self.db().begin_write().map_err(StoreError::from)?;
        tx.set_durability(redb::Durability::Immediate)
            .map_err(|e| StoreError::Io(e.to_string()))?;
        {
            let meta = tx.open_table(META).map_err(StoreError::from)?;
            if read_generation(&meta)? != expected_generation {
                return Ok(None);
            }
        }
        bump_generation(&tx)?;
        // The id first: a held release is keyed by it.
        let id = {
            let imports = tx.open_table(IMPORTS).map_err(StoreError::from)?;
            let last = imports
                .last()
                .map_err(StoreError::from)?
                .map(|(k, _)| k.value());
            last.unwrap_or(0) + 1
        };
        let out = {
            let mut w = ImportWriter {
                students: tx.open_table(STUDENTS).map_err(StoreError::from)?,
                grades: GradeSink::open(&tx, destination, id)?,
                written: 0,
                fail_after,
            };
            write(&mut w)?
        };
        record.id = id;
        match destination {
            Destination::Live => record.notices = extra(&tx, id)?,
            Destination::Held { publish_at } => {
                record.publish_at = Some(publish_at);
                super::releases::schedule_in(&tx, &record, publish_at)?;
            }
        }
        {
            let v = serde_json::to_vec(&record).map_err(StoreError::from)?;
            tx.open_table(IMPORTS)
                .map_err(StoreError::from)?
                .insert(id, v.as_slice())
                .map_err(StoreError::from)?;
        }
        tx.commit().map_err(StoreError::from)?;
        Ok(Some((record, out)))
    }

    /// Record an import that was refused (kept in the history too).
    pub fn record_refused_import(&self, mut record: ImportRecord) -> Result<u64> {
        let tx = self.db().begin_write()?;
        let id = {
            let mut imports = tx.open_table(IMPORTS)?;
            let id = imports.last()?.map(|(k, _)| k.value()).unwrap_or(0) + 1;
            record.id = id;
            let v = serde_json::to_vec(&record)?;
            imports.insert(id, v.as_slice())?;
            id
        };
        tx.commit()?;
        Ok(id)
    }

    /// How many imports the history holds.
    pub fn import_count(&self) -> Result<u64> {
        let tx = self.db().begin_read()?;
        Ok(tx.open_table(IMPORTS)?.len()?)
    }

    /// Import history, newest first.
    pub fn imports(&self, offset: usize, limit: usize) -> Result<Vec<ImportRecord>> {
        let tx = self.db().begin_read()?;
        let t = tx.open_table(IMPORTS)?;
        let mut out = Vec::new();
        for item in t.iter()?.rev().skip(offset).take(limit) {
            let (_, v) = item?;
            out.push(serde_json::from_slice(v.value())?);
        }
        Ok(out)
    }
}

/// Bump the data generation inside `tx`: stale previews are refused and cached pages retired.
pub(crate) fn bump_generation(tx: &WriteTransaction) -> Result<()> {
    let mut meta = tx.open_table(META)?;
    let next = read_generation(&meta)? + 1;
    meta.insert("generation", next.to_be_bytes().as_slice())?;
    Ok(())
}

fn read_generation(meta: &impl ReadableTable<&'static str, &'static [u8]>) -> Result<u64> {
    match meta.get("generation")? {
        Some(v) => {
            let arr: [u8; 8] = v
                .value()
                .try_into()
                .map_err(|_| StoreError::Decode("generation".into()))?;
            Ok(u64::from_be_bytes(arr))
        }
        None => Ok(0),
    }
}

/// One read transaction used to plan an import against a consistent state.
pub struct Snapshot {
    tx: redb::ReadTransaction,
    pub generation: u64,
}

impl Snapshot {
    pub fn grades(&self) -> Result<redb::ReadOnlyTable<&'static str, &'static str>> {
        Ok(self.tx.open_table(GRADES)?)
    }
    pub fn students(&self) -> Result<redb::ReadOnlyTable<&'static str, &'static [u8]>> {
        Ok(self.tx.open_table(STUDENTS)?)
    }
    pub fn bound(&self) -> Result<redb::ReadOnlyTable<&'static str, &'static str>> {
        Ok(self.tx.open_table(super::tables::BOUND)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(course: CourseFacts) -> GradeRecord {
        GradeRecord {
            student_id: "2023001".into(),
            term: Term::parse("2025-2026-1").expect("term"),
            course_code: "MA101".into(),
            course_name: "高等数学".into(),
            credit: Credit::from_hundredths(450),
            score: Score::parse("88").expect("score"),
            kind: ExamKind::Normal,
            name: None,
            course,
        }
    }

    fn round_trip(r: &GradeRecord) -> GradeRecord {
        let key = grade_key(&r.student_id, &r.term, &r.course_code, r.kind);
        decode_row(&key, &grade_value(r)).expect("decodes")
    }

    #[test]
    fn a_row_without_course_facts_keeps_the_old_three_field_value() {
        let r = row(CourseFacts::default());
        assert_eq!(grade_value(&r), "高等数学\u{1f}450\u{1f}88");
        assert_eq!(round_trip(&r), r);
    }

    #[test]
    fn course_facts_and_components_survive_a_round_trip() {
        let r = row(CourseFacts {
            nature: Some("必修".into()),
            college: None,
            class_group: Some("(2025-2026-1)-MA101-01".into()),
            components: vec![("平时".into(), "90".into()), ("期末".into(), "85".into())],
        });
        assert_eq!(round_trip(&r), r);
        assert!(r.course.is_compulsory());
    }

    #[test]
    fn separators_inside_a_cell_become_spaces_and_a_bad_tail_is_an_error() {
        let mut r = row(CourseFacts {
            nature: Some("必\u{1f}修".into()),
            ..Default::default()
        });
        r.course_name = "a\u{1e}b".into();
        let back = round_trip(&r);
        assert_eq!(back.course.nature.as_deref(), Some("必 修"));
        assert_eq!(back.course_name, "a b");
        let key = grade_key(&r.student_id, &r.term, &r.course_code, r.kind);
        assert!(decode_row(&key, "x\u{1f}100\u{1f}88\u{1f}only-one-more").is_err());
    }
}
