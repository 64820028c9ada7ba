//! Grade corrections (成绩更正) by staff: one grade row's score changed with a required
//! reason, kept with the old value, who and when, optionally with a notice to the student.
//! The row is named as the admin student page's form names it ([`row_ref`]).

use std::collections::HashMap;

use crate::error::AppError;
use crate::grades::{ExamKind, GradeRecord, Score, Term};
use crate::service::import::jobs::enqueue_notices;
use crate::service::import::plan::NoticeTarget;
use crate::service::notices::Wake;
use crate::service::{rank, Changed, Ctx};
use crate::store::corrections::{Correction, CorrectionOutcome, CorrectionRequest};
use crate::store::releases::bound_student_in;

/// The longest reason kept, in characters.
pub const MAX_REASON: usize = 200;

/// How the form names a grade row: "term|kind code|course code" (the course code last, so
/// a `|` inside it does no harm).
pub fn row_ref(r: &GradeRecord) -> String {
    format!("{}|{}|{}", r.term.as_str(), r.kind.code(), r.course_code)
}

/// A correction as staff submitted it, before checking.
pub struct CorrectionInput<'a> {
    pub student_id: &'a str,
    pub row: &'a str,
    pub score: &'a str,
    pub reason: &'a str,
    pub notify: bool,
    /// "admin:NAME".
    pub by: &'a str,
}

/// Check and apply a correction. Errors name the field: the row, the new score, the reason.
pub fn correct(
    ctx: &Ctx,
    wake: &Wake,
    input: &CorrectionInput<'_>,
) -> Result<(Correction, Changed), AppError> {
    let mut parts = input.row.splitn(3, '|');
    let (Some(term), Some(kind), Some(code)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(AppError::BadRequest("请选择要更正的课程。".into()));
    };
    let (Ok(term), Some(kind)) = (Term::parse(term), ExamKind::from_code(kind)) else {
        return Err(AppError::BadRequest("请选择要更正的课程。".into()));
    };
    let score = Score::parse(input.score)
        .map_err(|e| AppError::BadRequest(format!("新成绩填写有误：{e}")))?;
    let reason = input.reason.trim();
    if reason.is_empty() {
        return Err(AppError::BadRequest("请填写更正原因。".into()));
    }
    if reason.chars().count() > MAX_REASON {
        return Err(AppError::BadRequest(format!(
            "更正原因最多 {MAX_REASON} 个字。"
        )));
    }
    let notify = input.notify && crate::service::notices::enabled(&ctx.config);
    let request = CorrectionRequest {
        student_id: input.student_id,
        term: &term,
        course_code: code,
        kind,
        score: &score,
        reason,
        by: input.by,
        at: ctx.clock.now(),
    };
    let outcome = ctx.store.correct_grade(&request, |tx, row| {
        if !notify {
            return Ok(false);
        }
        let Some((openid, name)) = bound_student_in(tx, &row.student_id)? else {
            return Ok(false);
        };
        let target = NoticeTarget {
            openid,
            student_id: row.student_id.clone(),
            name,
            terms: vec![row.term.as_str().to_string()],
            courses: vec![format!("{}（成绩更正）", row.course_name)],
        };
        Ok(enqueue_notices(ctx, tx, 0, &[target])? > 0)
    })?;
    match outcome {
        CorrectionOutcome::Done(c) => {
            rank::after_grades_changed(ctx, "a correction", rank::Pages::OfChangedStudents);
            if c.notified {
                wake.notify();
            }
            log::info!(
                "grade of {} in {} {} corrected by {}: {} → {}",
                c.student_id,
                c.term,
                c.course_code,
                c.by,
                c.old_score,
                c.new_score
            );
            let sid = c.student_id.clone();
            Ok((*c, Changed::Student(sid)))
        }
        CorrectionOutcome::NoSuchRow => Err(AppError::BadRequest(
            "找不到要更正的成绩记录（可能已被导入删除），请刷新页面。".into(),
        )),
        CorrectionOutcome::Unchanged => Err(AppError::BadRequest(format!(
            "新成绩“{score}”与原成绩相同，无需更正。"
        ))),
        CorrectionOutcome::HeldInRelease(id) => Err(AppError::Conflict(format!(
            "这门课程在待发布的成绩（发布 #{id}）中有新的成绩，发布时会覆盖更正。请先在“发布”页发布或撤回它，再更正。"
        ))),
    }
}

/// A student's corrections, newest first.
pub fn history(ctx: &Ctx, student_id: &str) -> Result<Vec<Correction>, AppError> {
    let mut all = ctx.store.corrections_of(student_id)?;
    all.reverse();
    Ok(all)
}

/// The grade rows of one student that staff corrected, for the 已更正 mark: each row's
/// latest corrected score. A row whose score has since been replaced (by an import) is no
/// longer marked.
#[derive(Debug, Default, Clone)]
pub struct Corrected(HashMap<(String, String, String), String>);

impl Corrected {
    /// Whether the row (term, exam kind, course code) shows the score a correction gave it.
    pub fn contains(&self, term: &Term, kind: ExamKind, course_code: &str, score: &Score) -> bool {
        self.0
            .get(&(
                term.as_str().to_string(),
                kind.code().to_string(),
                course_code.to_string(),
            ))
            .is_some_and(|s| *s == score.to_string())
    }
}

/// The rows of a student that were corrected.
pub fn corrected_rows(ctx: &Ctx, student_id: &str) -> Result<Corrected, AppError> {
    // Oldest first: a later correction of the same row wins.
    Ok(Corrected(
        ctx.store
            .corrections_of(student_id)?
            .into_iter()
            .map(|c| ((c.term, c.kind, c.course_code), c.new_score))
            .collect(),
    ))
}
