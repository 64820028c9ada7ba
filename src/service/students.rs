//! The student side: binding a WeChat to a student ID (with lock-outs and one generic
//! message for wrong values), unbinding, and the transcript a bound student sees.

use crate::app::App;
use crate::error::AppError;
use crate::service::grades::{transcript, Transcript};
use crate::service::import::validate::check_student_id;
use crate::service::ratelimit::clock_time;
use crate::store::students::{BindResult, Student};

/// Failures before a lock, and the lock's length (seconds).
pub const BIND_MAX_FAILURES: u32 = 5;
pub const BIND_LOCK_SECS: i64 = 15 * 60;

/// Why a bind did not happen.
#[derive(Debug, PartialEq, Eq)]
pub enum BindRefusal {
    /// The values do not match the roster (one generic message; no hint which field).
    Wrong,
    /// Too many failures; try again at this time ("HH:MM").
    Locked(String),
    /// The student ID is bound to another WeChat.
    TakenByOther,
}

/// The outcome of a bind attempt.
#[derive(Debug, PartialEq, Eq)]
pub enum BindOutcome {
    Bound,
    AlreadyBound,
    Refused(BindRefusal),
}

/// Try to bind `openid` to the student whose values are given.
pub fn bind(
    app: &App,
    openid: &str,
    student_id: &str,
    name: &str,
    verify: &str,
) -> Result<BindOutcome, AppError> {
    let now = app.clock.now();
    if app.store.binding(openid)?.is_some() {
        return Ok(BindOutcome::AlreadyBound);
    }
    let student_id = student_id.trim();
    let user_key = format!("u:{openid}");
    let student_key = format!("s:{student_id}");
    for key in [&user_key, &student_key] {
        if let Err(until) = app.bind_limit.check(key, now) {
            return Ok(BindOutcome::Refused(BindRefusal::Locked(clock_time(until))));
        }
    }
    let student = if check_student_id(student_id).is_ok() {
        app.store.student(student_id)?
    } else {
        None
    };
    let matches = match &student {
        Some(s) => {
            // Both checks run whatever the first says, so timing does not tell which was wrong.
            let name_ok =
                crate::secret::constant_time_eq(s.name.as_bytes(), name.trim().as_bytes());
            let verify_ok = app.verify_key.matches(&s.student_id, verify, &s.verify);
            name_ok & verify_ok
        }
        None => {
            let _ = app.verify_key.hash(student_id, verify);
            false
        }
    };
    if !matches {
        let a = app.bind_limit.fail(&user_key, now);
        let b = if student.is_some() {
            app.bind_limit.fail(&student_key, now)
        } else {
            None
        };
        if let Some(until) = a.or(b) {
            log::warn!("binding locked after repeated failures");
            return Ok(BindOutcome::Refused(BindRefusal::Locked(clock_time(until))));
        }
        return Ok(BindOutcome::Refused(BindRefusal::Wrong));
    }
    match app.store.bind(openid, student_id, now)? {
        BindResult::Bound => {
            app.bind_limit.reset(&user_key);
            app.bind_limit.reset(&student_key);
            app.pages.clear();
            Ok(BindOutcome::Bound)
        }
        BindResult::AlreadyBound(_) => Ok(BindOutcome::AlreadyBound),
        BindResult::TakenByOther => Ok(BindOutcome::Refused(BindRefusal::TakenByOther)),
    }
}

/// Unbind this WeChat; returns the student ID it was bound to.
pub fn unbind(app: &App, openid: &str) -> Result<Option<String>, AppError> {
    let sid = app
        .store
        .unbind_openid(openid, app.clock.now(), "student")?;
    app.pages.clear();
    Ok(sid)
}

/// The bound student of `openid` and their transcript, or None when not bound.
pub fn summary_for_openid(
    app: &App,
    openid: &str,
) -> Result<Option<(Student, Transcript)>, AppError> {
    let Some(binding) = app.store.binding(openid)? else {
        return Ok(None);
    };
    let student = student_or_placeholder(app, &binding.student_id)?;
    let rows = app.store.grades_of(&binding.student_id)?;
    Ok(Some((student, transcript(&rows, &app.config.scale))))
}

/// The roster entry, or a placeholder when the roster no longer lists the student.
pub fn student_or_placeholder(app: &App, student_id: &str) -> Result<Student, AppError> {
    Ok(app.store.student(student_id)?.unwrap_or_else(|| Student {
        student_id: student_id.to_string(),
        name: student_id.to_string(),
        verify: String::new(),
        class: None,
        major: None,
        college: None,
        cohort: None,
    }))
}
