//! Grade corrections (成绩更正): one grade row's score changed by staff with a reason, the
//! old and new value, who and when kept in `corrections_v1` beside the row, in one
//! transaction with the change itself.

use redb::{ReadableDatabase, ReadableTable, WriteTransaction};
use serde::{Deserialize, Serialize};

use super::grades::{bump_generation, decode_row, grade_key, grade_value};
use super::tables::{CORRECTIONS, GRADES, RELEASE_DUE, RELEASE_ROWS};
use super::{Result, Store};
use crate::grades::{ExamKind, GradeRecord, Score, Term};

/// One correction, as kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Correction {
    pub seq: u64,
    pub at: i64,
    /// "admin:NAME".
    pub by: String,
    pub student_id: String,
    pub term: String,
    pub course_code: String,
    /// `ExamKind::code`.
    pub kind: String,
    pub course_name: String,
    pub old_score: String,
    pub new_score: String,
    pub reason: String,
    /// Whether a notice was written for the student.
    pub notified: bool,
}

/// Which row, and what to make of it.
pub struct CorrectionRequest<'a> {
    pub student_id: &'a str,
    pub term: &'a Term,
    pub course_code: &'a str,
    pub kind: ExamKind,
    pub score: &'a Score,
    pub reason: &'a str,
    pub by: &'a str,
    pub at: i64,
}

/// What a correction found.
#[derive(Debug)]
pub enum CorrectionOutcome {
    Done(Box<Correction>),
    /// No such grade row.
    NoSuchRow,
    /// The new score is the stored one: nothing written.
    Unchanged,
    /// A scheduled release holds a new value for this row (its id): publishing it would
    /// overwrite the correction, so nothing is written.
    HeldInRelease(u64),
}

impl Store {
    /// Change one grade row's score and keep the correction, in one transaction (the data
    /// generation is bumped, so a preview computed before is refused). `notice` runs inside
    /// the transaction with the corrected row and returns whether it wrote a notice.
    pub fn correct_grade(
        &self,
        c: &CorrectionRequest<'_>,
        notice: impl FnOnce(&WriteTransaction, &GradeRecord) -> Result<bool>,
    ) -> Result<CorrectionOutcome> {
        let mut tx = self.db().begin_write()?;
        tx.set_durability(redb::Durability::Immediate)
            .map_err(|e| super::StoreError::Io(e.to_string()))?;
        let key = grade_key(c.student_id, c.term, c.course_code, c.kind);
        let old = {
            let t = tx.open_table(GRADES)?;
            let got = t.get(key.as_str())?;
            match got {
                Some(v) => decode_row(&key, v.value())?,
                None => return Ok(CorrectionOutcome::NoSuchRow),
            }
        };
        if &old.score == c.score {
            return Ok(CorrectionOutcome::Unchanged);
        }
        {
            let due = tx.open_table(RELEASE_DUE)?;
            let held = tx.open_table(RELEASE_ROWS)?;
            for item in due.iter()? {
                let (k, _) = item?;
                let (_, release) = k.value();
                if held.get((release, key.as_str()))?.is_some() {
                    return Ok(CorrectionOutcome::HeldInRelease(release));
                }
            }
        }
        let new = GradeRecord {
            score: *c.score,
            ..old.clone()
        };
        tx.open_table(GRADES)?
            .insert(key.as_str(), grade_value(&new).as_str())?;
        bump_generation(&tx)?;
        let notified = notice(&tx, &new)?;
        let correction = {
            let mut t = tx.open_table(CORRECTIONS)?;
            let seq = t
                .range((c.student_id, 0u64)..=(c.student_id, u64::MAX))?
                .next_back()
                .transpose()?
                .map(|(k, _)| k.value().1 + 1)
                .unwrap_or(1);
            let correction = Correction {
                seq,
                at: c.at,
                by: c.by.to_string(),
                student_id: c.student_id.to_string(),
                term: c.term.as_str().to_string(),
                course_code: c.course_code.to_string(),
                kind: c.kind.code().to_string(),
                course_name: old.course_name.clone(),
                old_score: old.score.to_string(),
                new_score: new.score.to_string(),
                reason: c.reason.to_string(),
                notified,
            };
            let v = serde_json::to_vec(&correction)?;
            t.insert((c.student_id, seq), v.as_slice())?;
            correction
        };
        tx.commit()?;
        Ok(CorrectionOutcome::Done(Box::new(correction)))
    }

    /// A student's corrections, oldest first.
    pub fn corrections_of(&self, student_id: &str) -> Result<Vec<Correction>> {
        let tx = self.db().begin_read()?;
        let t = tx.open_table(CORRECTIONS)?;
        let mut out = Vec::new();
        for item in t.range((student_id, 0u64)..=(student_id, u64::MAX))? {
            let (_, v) = item?;
            out.push(serde_json::from_slice(v.value())?);
        }
        Ok(out)
    }
}
