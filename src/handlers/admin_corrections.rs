//! Grade corrections (成绩更正) on the admin student page: the form's choices and the
//! history shown there, and `POST /admin/students/{id}/correct` (CSRF-checked, audited).
//! The rules are `service::corrections`.

use minijinja::{context, Value};

use super::session::AdminPost;
use super::Handled;
use crate::app::App;
use crate::error::AppError;
use crate::grades::GradeRecord;
use crate::http::form::percent_encode;
use crate::http::{Request, Response};
use crate::service::admin::audit::{self, Action};
use crate::service::admin::local_datetime;
use crate::service::corrections::{self, CorrectionInput};

/// A refused correction, shown again: why, and what was typed.
pub struct Retry {
    pub error: String,
    pub row: String,
    pub score: String,
    pub reason: String,
    pub notify: bool,
}

/// What the admin student page shows of corrections: the form (one choice per grade row;
/// refilled after a refusal) and the history, newest first.
pub fn panel(
    app: &App,
    student_id: &str,
    rows: &[GradeRecord],
    retry: Option<Retry>,
) -> Result<Value, crate::error::AppError> {
    let choices: Vec<Value> = rows
        .iter()
        .rev()
        .map(|r| {
            context! {
                value => corrections::row_ref(r),
                label => format!("{} {} {}（{}）· 现为 {}", r.term.as_str(), r.course_code, r.course_name, r.kind.label(), r.score),
            }
        })
        .collect();
    let history: Vec<Value> = corrections::history(app, student_id)?
        .into_iter()
        .map(|c| {
            context! {
                at => local_datetime(c.at),
                by => c.by.strip_prefix("admin:").unwrap_or(&c.by).to_string(),
                what => format!("{} {} {}", c.term, c.course_code, c.course_name),
                kind => crate::grades::ExamKind::from_code(&c.kind).map(|k| k.label()).unwrap_or("?"),
                old_score => c.old_score,
                new_score => c.new_score,
                reason => c.reason,
                notified => c.notified,
            }
        })
        .collect();
    Ok(context! {
        action => format!("/admin/students/{}/correct", percent_encode(student_id)),
        choices => choices,
        history => history,
        notices_enabled => crate::service::notices::enabled(&app.config),
        max_reason => corrections::MAX_REASON,
        retry => retry.map(|r| context! {
            error => r.error, row => r.row, score => r.score, reason => r.reason, notify => r.notify,
        }),
    })
}

/// `POST /admin/students/{id}/correct`: fields `row`, `score`, `reason`, optional `notify=1`.
pub fn correct(app: &App, req: &Request, post: &AdminPost, student_id: &str) -> Handled {
    let form = post.form();
    let actor = post.admin().actor();
    let input = CorrectionInput {
        student_id,
        row: form.get("row").unwrap_or_default(),
        score: form.get("score").unwrap_or_default(),
        reason: form.get("reason").unwrap_or_default(),
        notify: form.get("notify") == Some("1"),
        by: &actor,
    };
    let (c, changed) = match corrections::correct(app, &app.notice_wake, &input) {
        Ok(done) => done,
        // What staff typed is wrong: the page again, the error at the form, nothing lost.
        Err(AppError::BadRequest(error)) => {
            let retry = Retry {
                error,
                row: input.row.to_string(),
                score: input.score.chars().take(64).collect(),
                reason: input.reason.chars().take(corrections::MAX_REASON).collect(),
                notify: input.notify,
            };
            return super::admin::student(app, post.admin(), student_id, Some(retry));
        }
        Err(e) => return Err(e),
    };
    app.changed(changed);
    audit::note(
        app,
        &actor,
        Action::GradeCorrected,
        &format!(
            "{} {} {} {}：{} → {}，原因：{}{}",
            c.student_id,
            c.term,
            c.course_code,
            c.course_name,
            c.old_score,
            c.new_score,
            c.reason,
            if c.notified { "，已通知学生" } else { "" }
        ),
        req.remote,
    );
    Ok(Response::redirect(
        303,
        &format!("/admin/students/{}#corrections", percent_encode(student_id)),
    ))
}
