//! The admin import pages: the upload form, the job page (progress while the file is read,
//! then the preview with every error, then progress while it commits), the commit, and the
//! history. The work itself is `service::import` (the same engine as the CLI).

use minijinja::{context, Value};

use super::admin::{page, page_number, pager, PAGE};
use super::session::{check_admin_post, AdminPost};
use super::Handled;
use crate::app::App;
use crate::error::{human_size, AppError};
use crate::grades::Term;
use crate::http::multipart::{boundary_from_content_type, parse_multipart, Limits};
use crate::http::{Request, Response};
use crate::service::admin::audit::{self, Action};
use crate::service::admin::auth::Admin;
use crate::service::admin::{local_datetime, overview};
use crate::service::import::file::ImportFile;
use crate::service::import::jobs::JobState;
use crate::service::import::plan::{ImportKind, Plan};

fn form_page(app: &App, admin: &Admin, status: u16, error: Option<String>, kind: &str) -> Handled {
    page(
        app,
        status,
        "admin/import.html",
        Some(admin),
        "import",
        context! {
            error => error,
            kind => kind,
            max_upload => human_size(app.config.max_upload_bytes),
            terms => overview::stats(app, &app.admin).map(|s| s.terms.clone()).unwrap_or_default(),
        },
    )
}

pub fn form(app: &App, admin: &Admin, req: &Request) -> Handled {
    let kind = match req.query_param("kind").as_deref() {
        Some("roster") => "roster",
        _ => "grades",
    };
    form_page(app, admin, 200, None, kind)
}

/// The multipart upload: checked (CSRF, kind, file, term), then queued for planning.
pub fn upload(app: &App, admin: &Admin, req: &Request) -> Handled {
    let Some(boundary) = req
        .header("content-type")
        .and_then(boundary_from_content_type)
    else {
        return form_page(
            app,
            admin,
            400,
            Some("请通过本页的表单上传文件。".into()),
            "grades",
        );
    };
    let parts = match parse_multipart(&req.body, &boundary, &Limits::default()) {
        Ok(p) => p,
        Err(e) => {
            // The token is inside the body: without a readable body there is no token either.
            log::warn!("admin upload: unreadable multipart body: {e}");
            return Err(AppError::Csrf);
        }
    };
    let field = |name: &str| {
        parts
            .iter()
            .find(|p| p.name == name && p.file_name.is_none())
            .map(|p| p.text())
    };
    check_admin_post(app, admin, req, field("csrf_token").as_deref())?;
    let kind_raw = field("kind").unwrap_or_default();
    let Some(kind) = ImportKind::parse(kind_raw.trim()) else {
        return form_page(
            app,
            admin,
            400,
            Some("请选择导入类型：学生名册或成绩。".into()),
            "grades",
        );
    };
    let Some(file) = parts
        .iter()
        .find(|p| p.name == "file" && p.file_name.is_some())
    else {
        return form_page(
            app,
            admin,
            400,
            Some("请选择要上传的文件。".into()),
            kind.as_str(),
        );
    };
    let file_name = file.file_name.clone().unwrap_or_default();
    if file.data.is_empty() {
        return form_page(
            app,
            admin,
            400,
            Some(format!("文件“{file_name}”是空的。")),
            kind.as_str(),
        );
    }
    let replace_term = match field("replace_term")
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
    {
        None => None,
        Some(_) if kind == ImportKind::Roster => None,
        Some(t) => match Term::parse(&t) {
            Ok(t) => Some(t),
            Err(e) => {
                return form_page(
                    app,
                    admin,
                    400,
                    Some(format!("“替换学期”填写有误：{e}")),
                    kind.as_str(),
                )
            }
        },
    };
    let file_name: String = file_name.chars().take(200).collect();
    // The import reads the file from disk (twice: plan and commit), not from memory.
    let on_disk = ImportFile::from_bytes(&file.data).map_err(|e| {
        AppError::Internal(format!("cannot store the upload in a temporary file: {e}"))
    })?;
    drop(parts);
    let job = app.jobs.submit(
        &admin.actor(),
        kind,
        &file_name,
        on_disk,
        replace_term,
        app.clock.now(),
    )?;
    Ok(Response::redirect(
        303,
        &format!("/admin/import/{}", job.id),
    ))
}

fn stage_label(stage: usize) -> &'static str {
    match stage {
        0 => "正在读取文件",
        1 => "正在校验并与现有数据比对",
        2 => "预览已生成",
        3 => "正在写入",
        _ => "完成",
    }
}

/// The job page: progress, preview or outcome.
pub fn job(app: &App, admin: &Admin, id: &str) -> Handled {
    let job = app.jobs.get(id).ok_or_else(|| AppError::NotFoundWith {
        heading: "预览已失效",
        message:
            "找不到这次上传的预览（服务器重启后预览不保留，较早的预览也会被清理）。请重新上传。"
                .into(),
        link: ("/admin/import", "重新上传"),
    })?;
    let state = job.state();
    let progress = context! {
        stage => stage_label(job.progress.stage.load(std::sync::atomic::Ordering::Relaxed)),
        done => job.progress.done.load(std::sync::atomic::Ordering::Relaxed),
        total => job.progress.total.load(std::sync::atomic::Ordering::Relaxed),
    };
    let (status, state_name, message) = match &state {
        JobState::Planning => (200, "planning", None),
        JobState::Planned => (200, "planned", None),
        JobState::Unreadable(m) => (422, "unreadable", Some(m.clone())),
        JobState::Committing => (200, "committing", None),
        JobState::Committed(r) => (
            200,
            "committed",
            Some(format!("已提交（导入记录 #{}）", r.id)),
        ),
        JobState::NotCommitted(m) => (409, "not_committed", Some(m.clone())),
    };
    let preview = job.plan().map(|p| preview(&p)).unwrap_or(Value::from(()));
    page(
        app,
        status,
        "admin/import_job.html",
        Some(admin),
        "import",
        context! {
            id => job.id.clone(),
            kind => job.kind.label(),
            file_name => job.file_name.clone(),
            state => state_name,
            message => message,
            progress => progress,
            preview => preview,
            notices_enabled => !app.config.wechat.grades_template_id.is_empty(),
        },
    )
}

/// At most this many errors on the page (all of them are counted).
const MAX_ERRORS_SHOWN: usize = 500;

fn preview(p: &Plan) -> Value {
    let errors: Vec<Value> = p
        .errors
        .iter()
        .take(MAX_ERRORS_SHOWN)
        .map(|e| context! { line => e.line, column => e.column.clone(), message => e.message.clone() })
        .collect();
    let samples: Vec<Value> = p
        .samples
        .iter()
        .map(|s| context! { line => s.line, student_id => s.student_id.clone(), what => s.what.clone(), before => s.before.clone(), after => s.after.clone() })
        .collect();
    context! {
        sha256 => p.sha256.clone(),
        format => p.format.clone(),
        layout => p.layout,
        translated => p.translated.iter().map(|t| format!("{}：{} → {}（{} 行）", t.field, t.from, t.to, t.rows)).collect::<Vec<_>>(),
        mapping => p.mapping.iter().map(|(field, header)| format!("{field} ← {header}")).collect::<Vec<_>>(),
        skipped => p.skipped,
        rows_read => p.rows_read,
        added => p.added,
        changed => p.changed,
        unchanged => p.unchanged,
        removed => p.removed,
        replace_term => p.replace_term.clone(),
        unknown_count => p.unknown_students.len(),
        unknown => p.unknown_students.iter().take(50).cloned().collect::<Vec<_>>(),
        terms => p.terms.clone(),
        errors => errors,
        error_count => p.errors.len(),
        errors_cut => p.errors.len() > MAX_ERRORS_SHOWN,
        samples => samples,
        targets => p.targets.len(),
        writes => p.writes(),
    }
}

/// Commit a previewed import (once; not on stale data) → the history.
pub fn commit(app: &App, req: &Request, post: &AdminPost, id: &str) -> Handled {
    let notify = post.form().get("notify") == Some("1");
    let job = app.jobs.commit(id, notify, app.generation())?;
    let detail = match job.plan() {
        Some(p) => format!(
            "{}《{}》sha256 {} 新增 {} 修改 {} 删除 {}{}",
            job.kind.label(),
            job.file_name,
            &p.sha256[..12.min(p.sha256.len())],
            p.added,
            p.changed,
            p.removed,
            if notify { "，通知学生" } else { "" }
        ),
        None => job.file_name.clone(),
    };
    audit::note(
        app,
        &post.admin().actor(),
        Action::Import,
        &detail,
        req.remote,
    );
    Ok(Response::redirect(303, "/admin/imports"))
}

pub fn history(app: &App, admin: &Admin, req: &Request) -> Handled {
    let page_no = page_number(req);
    let (imports, total) = overview::imports(app, (page_no - 1) * PAGE, PAGE)?;
    let rows: Vec<Value> = imports
        .into_iter()
        .map(|r| {
            context! {
                id => r.id,
                at => local_datetime(r.at),
                by => r.by.strip_prefix("admin:").unwrap_or(&r.by).to_string(),
                kind => ImportKind::parse(&r.kind).map(|k| k.label()).unwrap_or("?"),
                file_name => r.file_name,
                sha256 => r.sha256.clone(),
                sha_short => r.sha256.chars().take(12).collect::<String>(),
                rows_read => r.rows_read,
                added => r.added,
                changed => r.changed,
                unchanged => r.unchanged,
                removed => r.removed,
                terms => if r.terms.len() > 3 {
                    format!("{} 等 {} 个学期", r.terms[..2].join("、"), r.terms.len())
                } else {
                    r.terms.join("、")
                },
                notify => r.notify,
                notices => r.notices,
                ok => r.result == "committed",
                result => r.result,
            }
        })
        .collect();
    let running: Vec<Value> = app
        .jobs
        .committing()
        .iter()
        .map(|j| context! { file_name => j.file_name.clone(), id => j.id.clone(), writes => j.progress.total.load(std::sync::atomic::Ordering::Relaxed) })
        .collect();
    page(
        app,
        200,
        "admin/imports.html",
        Some(admin),
        "imports",
        context! { rows => rows, running => running, pager => pager(page_no, total, "/admin/imports") },
    )
}
