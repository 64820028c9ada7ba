//! The student side: binding a WeChat to a student ID (with lock-outs per WeChat user, only a
//! pace per student ID, and one generic message for wrong values), unbinding, and the
//! transcript a bound student sees.

use crate::service::Ctx;
use std::net::IpAddr;
use std::sync::Arc;

use crate::error::AppError;
use crate::grades::{
    compulsory_gpa, has_course_nature, transcript, weighted_average, Average, Gpa, Transcript,
};
use crate::service::admin::audit::{self, Action};
use crate::service::import::validate::check_student_id;
use crate::service::pacing::Pacer;
use crate::service::ratelimit::clock_time;
use crate::service::ratelimit::Limiter;
use crate::service::verify::VerifyKey;
use crate::service::Changed;
use crate::store::auth::WxUser;
use crate::store::students::{BindResult, Binding, Student};

/// Failures of one WeChat user before it is locked, and the lock's length (seconds).
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

/// The binding service's state: bind failures per WeChat user (`u:`, locks), per student ID
/// (`s:`, only a pace per WeChat user: a stranger's failures never lock the student), and the
/// key of the verification-value hashes.
pub struct Students {
    limiter: Limiter,
    pace: Pacer,
    verify_key: Arc<VerifyKey>,
}

impl Students {
    pub fn new(verify_key: Arc<VerifyKey>) -> Students {
        Students {
            limiter: Limiter::new(BIND_MAX_FAILURES, BIND_LOCK_SECS, BIND_LOCK_SECS),
            pace: Pacer::new(BIND_LOCK_SECS),
            verify_key,
        }
    }

    /// Try to bind `openid` to the student whose values are given; on success, the student
    /// whose pages changed.
    pub fn bind(
        &self,
        ctx: &Ctx,
        openid: &str,
        student_id: &str,
        name: &str,
        verify: &str,
    ) -> Result<(BindOutcome, Changed), AppError> {
        bind(ctx, self, openid, student_id, name, verify)
    }
}

fn bind(
    ctx: &Ctx,
    students: &Students,
    openid: &str,
    student_id: &str,
    name: &str,
    verify: &str,
) -> Result<(BindOutcome, Changed), AppError> {
    let (limiter, pace) = (&students.limiter, &students.pace);
    let verify_key: &VerifyKey = &students.verify_key;
    let now = ctx.clock.now();
    if ctx.store.binding(openid)?.is_some() {
        return Ok((BindOutcome::AlreadyBound, Changed::Nothing));
    }
    let student_id = student_id.trim();
    let user_key = format!("u:{openid}");
    let student_key = format!("s:{student_id}");
    // This WeChat's own lock (which covers every (WeChat, student ID) pair of it), then the
    // pace set by the student ID's failures: a stranger's failures never lock the student.
    let paced = pace.check(&student_key, openid, now);
    if let Err(until) = limiter.check(&user_key, now).and(paced) {
        return Ok(refused(BindRefusal::Locked(clock_time(until))));
    }
    let student = if check_student_id(student_id).is_ok() {
        ctx.store.student(student_id)?
    } else {
        None
    };
    let matches = match &student {
        Some(s) => {
            // Both checks run whatever the first says, so timing does not tell which was wrong.
            let name_ok =
                crate::secret::constant_time_eq(s.name.as_bytes(), name.trim().as_bytes());
            let verify_ok = verify_key.matches(&s.student_id, verify, &s.verify);
            name_ok & verify_ok
        }
        None => {
            let _ = verify_key.hash(student_id, verify);
            false
        }
    };
    if !matches {
        let a = limiter.fail(&user_key, now);
        if student.is_some() {
            pace.fail(&student_key, openid, now);
        }
        if let Some(until) = a {
            log::warn!("binding locked after repeated failures");
            return Ok(refused(BindRefusal::Locked(clock_time(until))));
        }
        return Ok(refused(BindRefusal::Wrong));
    }
    match ctx.store.bind(openid, student_id, now)? {
        BindResult::Bound => {
            limiter.reset(&user_key);
            pace.reset(&student_key);
            Ok((BindOutcome::Bound, Changed::Student(student_id.to_string())))
        }
        BindResult::AlreadyBound(_) => Ok((BindOutcome::AlreadyBound, Changed::Nothing)),
        BindResult::TakenByOther => Ok(refused(BindRefusal::TakenByOther)),
    }
}

fn refused(why: BindRefusal) -> (BindOutcome, Changed) {
    (BindOutcome::Refused(why), Changed::Nothing)
}

/// Unbind this WeChat (the student's own request); the student whose pages changed.
pub fn unbind(ctx: &Ctx, openid: &str) -> Result<Changed, AppError> {
    let sid = ctx
        .store
        .unbind_openid(openid, ctx.clock.now(), "student")?;
    Ok(sid.map_or(Changed::Nothing, Changed::Student))
}

/// An admin unbinds a student ID: written, audited, and the student whose pages changed.
pub fn unbind_by_admin(
    ctx: &Ctx,
    student_id: &str,
    actor: &str,
    ip: Option<IpAddr>,
) -> Result<Changed, AppError> {
    let now = ctx.clock.now();
    let Some(openid) = ctx.store.unbind_student(student_id, now, actor)? else {
        return Ok(Changed::Nothing);
    };
    let short: String = openid.chars().take(8).collect();
    audit::record(
        &ctx.store,
        now,
        actor,
        Action::Unbind,
        &format!("学号 {student_id}（微信 {short}…）"),
        ip,
    );
    Ok(Changed::Student(student_id.to_string()))
}

/// The binding of `openid`, if bound.
pub fn binding(ctx: &Ctx, openid: &str) -> Result<Option<Binding>, AppError> {
    Ok(ctx.store.binding(openid)?)
}

/// The WeChat user's nickname and avatar as last fetched, if any.
pub fn wx_user(ctx: &Ctx, openid: &str) -> Result<Option<WxUser>, AppError> {
    Ok(ctx.store.wx_user(openid)?)
}

/// A student and their transcript: the one summary the grades page and the replies use.
pub fn summary(ctx: &Ctx, student_id: &str) -> Result<(Student, Transcript), AppError> {
    let student = student_or_placeholder(ctx, student_id)?;
    let rows = ctx.store.grades_of(student_id)?;
    Ok((student, transcript(&rows, &ctx.config.scale)))
}

/// What the grades page shows of a student: their roster entry, transcript, 加权平均分 and
/// 必修-only GPA.
pub struct GradesView {
    pub student: Student,
    pub transcript: Transcript,
    /// By `[grades] average_attempt` and `level_scores`; `None` when no course has a score.
    pub average: Option<Average>,
    /// The 必修-only GPA (same attempt rule as the average), `Some` only when the student's
    /// rows carry 课程性质 at all; `Some(None)` when none of the compulsory courses has a point.
    pub compulsory_gpa: Option<Option<Gpa>>,
    /// The rows staff corrected (成绩更正), marked 已更正.
    pub corrected: crate::service::corrections::Corrected,
}

/// The grades page's figures for `student_id`, from one read of their grades.
pub fn grades_view(ctx: &Ctx, student_id: &str) -> Result<GradesView, AppError> {
    let student = student_or_placeholder(ctx, student_id)?;
    let rows = ctx.store.grades_of(student_id)?;
    Ok(GradesView {
        student,
        transcript: transcript(&rows, &ctx.config.scale),
        average: weighted_average(&rows, &ctx.config.average),
        compulsory_gpa: has_course_nature(&rows)
            .then(|| compulsory_gpa(&rows, &ctx.config.scale, ctx.config.average.attempt)),
        corrected: crate::service::corrections::corrected_rows(ctx, student_id)?,
    })
}

/// The bound student of `openid` and their transcript, or None when not bound.
pub fn summary_for_openid(
    ctx: &Ctx,
    openid: &str,
) -> Result<Option<(Student, Transcript)>, AppError> {
    match binding(ctx, openid)? {
        Some(b) => summary(ctx, &b.student_id).map(Some),
        None => Ok(None),
    }
}

/// The roster entry, or a placeholder when the roster no longer lists the student.
pub fn student_or_placeholder(ctx: &Ctx, student_id: &str) -> Result<Student, AppError> {
    Ok(ctx.store.student(student_id)?.unwrap_or_else(|| Student {
        student_id: student_id.to_string(),
        name: student_id.to_string(),
        verify: String::new(),
        class: None,
        major: None,
        college: None,
        cohort: None,
    }))
}

/// Whether this WeChat receives grade notices (on unless the student turned them off).
pub fn notices_on(ctx: &Ctx, openid: &str) -> Result<bool, AppError> {
    Ok(ctx.store.notices_on(openid)?)
}

/// Turn grade notices on or off for the bound WeChat `openid` (imports read the switch when
/// they write notices); the student whose pages changed, or `None` when not bound.
pub fn set_notices(ctx: &Ctx, openid: &str, on: bool) -> Result<Option<Changed>, AppError> {
    let Some(b) = ctx.store.binding(openid)? else {
        return Ok(None);
    };
    ctx.store.set_notices(openid, on, ctx.clock.now())?;
    Ok(Some(Changed::Student(b.student_id)))
}
