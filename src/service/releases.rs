//! Staged publishing (定时发布): the rules around a release — a grades import held until a
//! set China-time minute. Publishing (early by staff, or when due by the publisher thread)
//! moves the held rows into the grades in one transaction, works out then which students'
//! grades changed, and writes their notices (if the import asked) in the same transaction;
//! withdrawing drops the held rows. Until then students see nothing of a release.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::error::AppError;
use crate::grades::{GradeRecord, Term};
use crate::service::import::jobs::enqueue_notices;
use crate::service::import::plan::NoticeTarget;
use crate::service::notices::Wake;
use crate::service::{rank, Ctx};
use crate::store::releases::{bound_student_in, ReleaseOutcome};
pub use crate::store::releases::{Destination, Release, ReleaseState};
use crate::store::StoreError;

/// Who the publisher thread publishes as, in a release's record.
pub const BY_SCHEDULE: &str = "schedule";

/// How many releases the list shows.
const LIST_LIMIT: usize = 200;

/// A `发布时间` as typed ("2026-12-01 08:00", China time; a browser's datetime-local field
/// sends "2026-12-01T08:00"), which must lie in the future of `now`.
pub fn parse_publish_at(text: &str, now: i64) -> Result<i64, String> {
    let at = crate::clock::parse_local_datetime(text).ok_or_else(|| {
        format!(
            "发布时间“{}”格式不对，应为北京时间 YYYY-MM-DD HH:MM，例如 2026-12-01 08:00",
            text.trim().chars().take(40).collect::<String>()
        )
    })?;
    check_future(at, now)?;
    Ok(at)
}

/// A publish time must lie in the future.
pub fn check_future(at: i64, now: i64) -> Result<(), String> {
    if at <= now {
        return Err(format!(
            "发布时间 {} 已经过去，请填写将来的时间（现在是 {}）",
            crate::clock::local_datetime(at),
            crate::clock::local_datetime(now)
        ));
    }
    Ok(())
}

/// Releases, newest first.
pub fn list(ctx: &Ctx) -> Result<Vec<Release>, AppError> {
    Ok(ctx.store.releases(LIST_LIMIT)?)
}

fn outcome(o: ReleaseOutcome, id: u64) -> Result<Release, AppError> {
    match o {
        ReleaseOutcome::Done(r) => Ok(r),
        ReleaseOutcome::NotFound => Err(AppError::NotFoundWith {
            heading: "没有这次发布",
            message: format!("找不到编号为 {id} 的定时发布。"),
            link: ("/admin/releases", "返回发布列表"),
        }),
        ReleaseOutcome::NotScheduled(r) => Err(AppError::Conflict(format!(
            "发布 #{id} 已经{}，不能再操作。",
            match r.state {
                ReleaseState::Published => "发布",
                _ => "撤回",
            }
        ))),
    }
}

/// Publish release `id` now (`by`: "admin:NAME", "cli" or [`BY_SCHEDULE`]). The caller
/// retires cached pages (`Ctx::data_changed`) — done here — and the notice sender is woken
/// when notices were written.
pub fn publish(ctx: &Ctx, wake: &Wake, id: u64, by: &str) -> Result<Release, AppError> {
    let notify_enabled = crate::service::notices::enabled(&ctx.config);
    let o = ctx
        .store
        .publish_release(id, ctx.clock.now(), by, |tx, release, changed| {
            if !release.notify || !notify_enabled {
                return Ok(0);
            }
            let targets = notice_targets(tx, changed)?;
            enqueue_notices(ctx, tx, release.id, &targets)
        })?;
    let r = outcome(o, id)?;
    after_publish(ctx, wake, &r);
    Ok(r)
}

/// What follows a published release outside its transaction: ranks recomputed, pages retired,
/// sender woken.
fn after_publish(ctx: &Ctx, wake: &Wake, r: &Release) {
    let after = format!("release #{}", r.id);
    rank::after_grades_changed(ctx, &after, rank::Pages::NoneDropped);
    ctx.metrics.event("release", "published");
    if r.notices > 0 {
        wake.notify();
    }
    log::info!(
        "release #{} published by {}: {} rows changed, {} notices",
        r.id,
        r.done_by.as_deref().unwrap_or("?"),
        r.published_rows,
        r.notices
    );
}

/// Withdraw release `id`: its held rows are dropped, nothing visible changes.
pub fn withdraw(ctx: &Ctx, id: u64, by: &str) -> Result<Release, AppError> {
    let o = ctx.store.withdraw_release(id, ctx.clock.now(), by)?;
    let r = outcome(o, id)?;
    ctx.metrics.event("release", "withdrawn");
    log::info!("release #{id} withdrawn by {by}");
    Ok(r)
}

/// Publish every release whose time has come; returns how many were published. A failure
/// is logged and the release stays scheduled, to be tried on the next check.
pub fn publish_due(ctx: &Ctx, wake: &Wake) -> usize {
    let mut done = 0;
    loop {
        let id = match ctx.store.next_due_release(ctx.clock.now()) {
            Ok(Some(id)) => id,
            Ok(None) => return done,
            Err(e) => {
                log::warn!("cannot read the scheduled releases: {e}");
                return done;
            }
        };
        match publish(ctx, wake, id, BY_SCHEDULE) {
            Ok(r) => {
                done += 1;
                crate::service::admin::audit::note(
                    ctx,
                    "system",
                    crate::service::admin::audit::Action::ReleasePublished,
                    &format!(
                        "到时发布 #{}《{}》，{} 条成绩生效，{} 条通知",
                        r.id, r.file_name, r.published_rows, r.notices
                    ),
                    None,
                );
            }
            Err(e) => {
                log::error!("publishing release #{id} failed: {e}");
                return done;
            }
        }
    }
}

/// How often the publisher looks for due releases (one small read each time).
const CHECK_EVERY: Duration = Duration::from_millis(500);

/// The publisher thread: publishes due releases until `stop`. Restart-safe: releases are in
/// the data file, so one that fell due while the server was down is published at the first
/// check after start.
pub fn spawn_publisher(
    ctx: Arc<Ctx>,
    wake: Arc<Wake>,
    stop: Arc<AtomicBool>,
) -> Option<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("releases".into())
        .spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                publish_due(&ctx, &wake);
                // A check of `stop` and of the clock, not a wait for a result.
                std::thread::sleep(CHECK_EVERY);
            }
        })
        .map_err(|e| log::error!("cannot start the release publisher thread: {e}"))
        .ok()
}

/// The bound students among `changed` rows, with their terms (newest first) and courses.
fn notice_targets(
    tx: &redb::WriteTransaction,
    changed: &[GradeRecord],
) -> Result<Vec<NoticeTarget>, StoreError> {
    let mut by_student: BTreeMap<&str, (BTreeSet<Term>, Vec<String>)> = BTreeMap::new();
    for r in changed {
        let e = by_student.entry(r.student_id.as_str()).or_default();
        e.0.insert(r.term);
        if !e.1.contains(&r.course_name) {
            e.1.push(r.course_name.clone());
        }
    }
    let mut out = Vec::new();
    for (sid, (terms, courses)) in by_student {
        let Some((openid, name)) = bound_student_in(tx, sid)? else {
            continue;
        };
        out.push(NoticeTarget {
            openid,
            student_id: sid.to_string(),
            name,
            terms: terms.iter().rev().map(|t| t.as_str().to_string()).collect(),
            courses,
        });
    }
    Ok(out)
}
