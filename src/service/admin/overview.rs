//! What the admin pages show, read through one place: the dashboard's figures, the student
//! list and one student's record, the import history, the audit log, the statistics, the data
//! file's health. Handlers render these; they do not read the store themselves.

use std::sync::Arc;

use crate::error::AppError;
use crate::grades::GradeRecord;
use crate::service::admin::backup::{self, LastBackup};
use crate::service::admin::stats::GradeStats;
use crate::service::admin::AdminState;
use crate::service::Ctx;
use crate::store::admin::{AuditEvent, StudentListing};
use crate::store::grades::ImportRecord;
use crate::store::students::{BindEvent, Student};

/// The dashboard's figures.
pub struct Overview {
    pub students: u64,
    pub bound: u64,
    pub last_import: Option<ImportRecord>,
    /// Grade notices (pending, sent, failed).
    pub notices: (u64, u64, u64),
    /// Notices not sent for want of a 一次性订阅 consent.
    pub notices_skipped: u64,
    pub data_size: u64,
    pub data_path: String,
    pub last_backup: Option<LastBackup>,
    /// WeChat's domain-check files served from `verify_dir`: (name, bytes).
    pub verify_files: Vec<(String, u64)>,
}

pub fn overview(ctx: &Ctx) -> Result<Overview, AppError> {
    let (students, bound) = ctx.store.student_counts()?;
    let last_import = ctx.store.imports(0, 1)?.into_iter().next();
    let data_size = std::fs::metadata(ctx.store.path())
        .map(|m| m.len())
        .unwrap_or(0);
    Ok(Overview {
        students,
        bound,
        last_import,
        notices: super::notice_counts(ctx),
        notices_skipped: crate::service::notices::skipped_count(ctx).unwrap_or(0),
        data_size,
        data_path: ctx.store.path().display().to_string(),
        last_backup: backup::last_backup(&ctx.store),
        verify_files: crate::service::verify_files::listing(&ctx.config.verify_dir),
    })
}

/// Per-course statistics of the current data generation (computed once per generation).
pub fn stats(ctx: &Ctx, state: &AdminState) -> Result<Arc<GradeStats>, AppError> {
    Ok(state.stats.get(&ctx.store)?)
}

/// One page of the student list matching `q`, and the number of matches.
pub fn students_page(
    ctx: &Ctx,
    q: &str,
    offset: usize,
    limit: usize,
) -> Result<(Vec<StudentListing>, usize), AppError> {
    Ok(ctx.store.students_page(q, offset, limit)?)
}

/// One student as the admin sees them.
pub struct StudentRecord {
    /// The roster entry (None when only grades name the student).
    pub info: Option<Student>,
    pub rows: Vec<GradeRecord>,
    pub openid: Option<String>,
    pub bound_at: Option<i64>,
    /// Bind and unbind events, newest first.
    pub events: Vec<BindEvent>,
}

/// The student with this ID, or None when neither the roster nor any grade names them.
pub fn student(ctx: &Ctx, id: &str) -> Result<Option<StudentRecord>, AppError> {
    let info = ctx.store.student(id)?;
    let rows = ctx.store.grades_of(id)?;
    if info.is_none() && rows.is_empty() {
        return Ok(None);
    }
    let openid = ctx.store.bound_openid(id)?;
    let bound_at = match &openid {
        Some(o) => ctx.store.binding(o)?.map(|b| b.bound_at),
        None => None,
    };
    let events = ctx.store.bind_events(id, 50)?;
    Ok(Some(StudentRecord {
        info,
        rows,
        openid,
        bound_at,
        events,
    }))
}

/// One page of the import history, newest first, and the number of imports.
pub fn imports(
    ctx: &Ctx,
    offset: usize,
    limit: usize,
) -> Result<(Vec<ImportRecord>, usize), AppError> {
    let total = ctx.store.import_count()? as usize;
    Ok((ctx.store.imports(offset, limit)?, total))
}

/// The newest audit events.
pub fn audit_events(ctx: &Ctx, limit: usize) -> Result<Vec<AuditEvent>, AppError> {
    Ok(ctx
        .store
        .audit_events(0, limit)?
        .into_iter()
        .map(|(_, e)| e)
        .collect())
}

/// Whether the data file answers a read (for `/healthz`).
pub fn data_file_healthy(ctx: &Ctx) -> bool {
    ctx.store.healthy()
}
