//! Grade rows and imports: the compact row encoding, a student's rows, the data generation
//! that tells a preview it is stale, and the one-transaction application of an import.

use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata, WriteTransaction};
use serde::{Deserialize, Serialize};

use super::tables::{GRADES, IMPORTS, META, STUDENTS};
use super::{Result, Store, StoreError};
use crate::grades::{Credit, ExamKind, GradeRecord, Score, Term};

const SEP: char = '\u{1f}';

/// The key of a grade row: (student_id, term, course_code, kind).
pub fn grade_key(student_id: &str, term: &Term, course_code: &str, kind: ExamKind) -> String {
    format!(
        "{student_id}{SEP}{}{SEP}{course_code}{SEP}{}",
        term.as_str(),
        kind.code()
    )
}

/// The stored value of a grade row.
pub fn grade_value(r: &GradeRecord) -> String {
    format!(
        "{}{SEP}{}{SEP}{}",
        r.course_name,
        r.credit.hundredths(),
        r.score
    )
}

fn bad(key: &str) -> StoreError {
    StoreError::Decode(format!("grade row {:?}", key.replace(SEP, "|")))
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
    let (Some(name), Some(credit), Some(score), None) = (v.next(), v.next(), v.next(), v.next())
    else {
        return Err(bad(key));
    };
    Ok(GradeRecord {
        student_id: sid.to_string(),
        term: Term::parse(term).map_err(|_| bad(key))?,
        course_code: code.to_string(),
        course_name: name.to_string(),
        credit: Credit::from_hundredths(credit.parse().map_err(|_| bad(key))?),
        score: Score::parse(score).map_err(|_| bad(key))?,
        kind: ExamKind::from_code(kind).ok_or_else(|| bad(key))?,
        name: None,
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

    /// Write an import in one transaction, if the data is still at `expected_generation`.
    /// `extra` runs inside the same transaction (grade notices go in with the grades).
    /// Returns the new import id, or None when the data changed since the plan.
    pub fn apply_import(
        &self,
        batch: &ImportBatch,
        mut record: ImportRecord,
        expected_generation: u64,
        extra: impl FnOnce(&WriteTransaction, u64) -> Result<usize>,
    ) -> Result<Option<ImportRecord>> {
        let mut tx = self.db().begin_write()?;
        tx.set_durability(redb::Durability::Immediate)
            .map_err(|e| StoreError::Io(e.to_string()))?;
        {
            let mut meta = tx.open_table(META)?;
            if read_generation(&meta)? != expected_generation {
                return Ok(None);
            }
            meta.insert(
                "generation",
                (expected_generation + 1).to_be_bytes().as_slice(),
            )?;
        }
        let mut written = 0usize;
        let check_fault = |written: usize| -> Result<()> {
            match batch.inject_failure_after {
                Some(n) if written >= n => Err(StoreError::Io("injected failure".into())),
                _ => Ok(()),
            }
        };
        {
            let mut students = tx.open_table(STUDENTS)?;
            for (sid, v) in &batch.students {
                check_fault(written)?;
                students.insert(sid.as_str(), v.as_slice())?;
                written += 1;
            }
            let mut grades = tx.open_table(GRADES)?;
            for (k, v) in &batch.grade_upserts {
                check_fault(written)?;
                grades.insert(k.as_str(), v.as_str())?;
                written += 1;
            }
            for k in &batch.grade_removals {
                check_fault(written)?;
                grades.remove(k.as_str())?;
                written += 1;
            }
        }
        let id = {
            let imports = tx.open_table(IMPORTS)?;
            let last = imports.last()?.map(|(k, _)| k.value());
            last.unwrap_or(0) + 1
        };
        record.id = id;
        record.notices = extra(&tx, id)?;
        {
            let v = serde_json::to_vec(&record)?;
            tx.open_table(IMPORTS)?.insert(id, v.as_slice())?;
        }
        tx.commit()?;
        Ok(Some(record))
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
