//! The admin import pages: the upload form, the job page (progress while the file is read,
//! then the preview with every error, then progress while it commits), the error list as CSV,
//! the commit (a replace-term that deletes rows only with its confirmation box ticked), and the
//! history (with the summary of the commit just made). The work itself is `service::import`
//! (the same engine as the CLI).

use minijinja::{context, Value};

use super::admin::{page, page_number, pager, PAGE};
use super::session::{check_admin_post, AdminPost};
use super::Handled;
use crate::app::App;
use crate::error::{human_size, AppError};
use crate::grades::Term;
use crate::http::multipart::{boundary_from_content_type, parse_multipart_at, Limits};
use crate::http::{Body, Request, Response};
use crate::service::admin::audit::{self, Action};
use crate::service::admin::auth::Admin;
use crate::service::admin::{local_datetime, overview};
use crate::service::import::error_list;
use crate::service::import::file::ImportFile;
use crate::service::import::jobs::{Job, JobState};

use crate::service::import::plan::{ImportKind, Plan};
use crate::store::grades::ImportRecord;

/// How long an upload waits for its preview before answering with the progress page: a small
/// file is planned well within this, so its preview shows without a progress page first.
const PREVIEW_WAIT: std::time::Duration = std::time::Duration::from_millis(400);

/// The form field a commit that deletes rows must carry (the "我已核对…" box).
const CONFIRM_REMOVALS: &str = "confirm_removals";
use crate::service::releases::Destination;

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

/// The admin page for an upload over `max_upload_mb` (413), also the page nginx's
/// `error_page 413` shows: the limit, what to do, a way back to the upload form.
pub fn too_large_page(app: &App, limit: u64) -> Handled {
    let size = human_size(limit);
    page(
        app,
        413,
        "admin/error.html",
        None,
        "",
        context! {
            status => 413,
            heading => format!("文件太大：超过 {size}"),
            message => format!("内容过大：上传的文件超过了上限 {size}（配置项 max_upload_mb），没有读取或写入任何数据。你可以："),
            advice => vec![
                "把文件拆成几个较小的文件分别上传（例如按学期或学院拆分，每个文件都保留表头行）；".to_string(),
                "删去导入用不到的列（如备注、照片链接）后再上传；".to_string(),
                "或请系统管理员调高配置中的 max_upload_mb（使用 nginx 时一并调高 /admin/import 的 client_max_body_size），重启服务后再上传。".to_string(),
            ],
            link => context! { href => "/admin/import", label => "返回上传页面" },
        },
    )
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
    let stored = |e: std::io::Error| {
        AppError::Internal(format!("cannot store the upload in a temporary file: {e}"))
    };
    // A large body the server received into a temporary file (never a copy in memory) is
    // mapped, and the import reads its file part in place; a small one is in `req.body`.
    let spooled = match &req.body_file {
        Some(f) => Some(
            f.try_clone()
                .and_then(ImportFile::from_file)
                .map_err(stored)?,
        ),
        None => None,
    };
    let body: &[u8] = spooled.as_ref().map_or(&req.body, ImportFile::bytes);
    let parts = match parse_multipart_at(body, &boundary, &Limits::default()) {
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
            .map(|p| p.text(body))
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
    if file.range.is_empty() {
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
    // The import reads the file part from disk (twice: plan and commit), not from memory.
    let range = file.range.clone();
    drop(parts);
    let on_disk = match spooled {
        Some(whole) => whole.part(range),
        None => ImportFile::from_bytes(req.body.get(range).unwrap_or_default()).map_err(stored)?,
    };
    let job = app.jobs.submit(
        &admin.actor(),
        kind,
        &file_name,
        on_disk,
        replace_term,
        app.clock.now(),
    )?;
    job.wait_planned(PREVIEW_WAIT);
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

fn find_job(app: &App, id: &str) -> Result<std::sync::Arc<Job>, AppError> {
    app.jobs.get(id).ok_or_else(|| AppError::NotFoundWith {
        heading: "预览已失效",
        message:
            "找不到这次上传的预览（服务器重启后预览不保留，较早的预览也会被清理）。请重新上传。"
                .into(),
        link: ("/admin/import", "重新上传"),
    })
}

/// "已提交 100 条（新增 94，修改 5，删除 1），已通知 1 名学生": what a commit did.
fn commit_summary(r: &ImportRecord, notices_enabled: bool) -> String {
    let writes = r.added + r.changed + r.removed;
    let mut parts = vec![
        format!("新增 {}", thousands(r.added)),
        format!("修改 {}", thousands(r.changed)),
    ];
    if r.removed > 0 {
        parts.push(format!("删除 {}", thousands(r.removed)));
    }
    let notified = match (r.notify, notices_enabled) {
        (false, _) => "未通知学生".to_string(),
        (true, true) => format!("已通知 {} 名学生", thousands(r.notices)),
        (true, false) => "未配置模板消息，通知未发送（已记录）".to_string(),
    };
    format!(
        "已提交 {} 条（{}），{notified}",
        thousands(writes),
        parts.join("，")
    )
}

fn thousands(n: usize) -> String {
    crate::views::thousands(&n.to_string())
}

/// The job page: progress, preview or outcome.
pub fn job(app: &App, admin: &Admin, id: &str) -> Handled {
    job_page(app, admin, &*find_job(app, id)?, None)
}

/// The job page, with `refusal` (status and message) when a commit was refused.
fn job_page(app: &App, admin: &Admin, job: &Job, refusal: Option<(u16, String)>) -> Handled {
    let notices_enabled = crate::service::notices::enabled(&app.config);
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
            Some(match r.publish_at {
                Some(at) => format!(
                    "已提交（导入记录 #{}），将于 {} 发布，发布前学生看不到",
                    r.id,
                    local_datetime(at)
                ),
                None => format!(
                    "{}（导入记录 #{}）",
                    commit_summary(r, notices_enabled),
                    r.id
                ),
            }),
        ),
        JobState::NotCommitted(m) => (409, "not_committed", Some(m.clone())),
    };
    let preview = job.plan().map(|p| preview(&p)).unwrap_or(Value::from(()));
    let (status, refusal) = match refusal {
        Some((code, message)) => (code, Some(message)),
        None => (status, None),
    };
    page(
        app,
        status,
        "admin/import_job.html",
        Some(admin),
        "import",
        context! {
            id => job.id.clone(),
            kind => job.kind.label(),
            is_grades => job.kind == ImportKind::Grades,
            file_name => job.file_name.clone(),
            state => state_name,
            message => message,
            progress => progress,
            preview => preview,
            refusal => refusal,
            notices_enabled => notices_enabled,
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
        .map(|e| context! { line => e.line, column => e.column_label(), value => e.value.clone(), message => e.message.clone() })
        .collect();
    let removals: Vec<Value> = p
        .removals
        .iter()
        .map(|r| context! { student_id => r.student_id.clone(), name => r.name.clone(), term => r.term.clone(), course => r.course.clone(), score => r.score.clone() })
        .collect();
    let samples: Vec<Value> = p
        .samples
        .iter()
        .map(|s| context! { line => s.line, student_id => s.student_id.clone(), what => s.what.clone(), before => s.before.clone(), after => s.after.clone() })
        .collect();
    context! {
        sha256 => p.sha256.clone(),
        format => p.format.clone(),
        layout => p.layout.clone(),
        needs_mapping => p.needs_mapping,
        translated => p.translated.iter().map(|t| format!("{}：{} → {}（{} 行）", t.field, t.from, t.to, t.rows)).collect::<Vec<_>>(),
        mapping => p.mapping.iter().map(|(field, header)| format!("{field} ← {header}")).collect::<Vec<_>>(),
        skipped => p.skipped,
        rows_read => p.rows_read,
        added => p.added,
        changed => p.changed,
        unchanged => p.unchanged,
        removed => p.removed,
        removals => removals,
        removals_more => p.removed.saturating_sub(p.removals.len()),
        upserts => p.added + p.changed,
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

/// The preview's errors as a CSV download (every error, not only those the page lists).
pub fn errors_csv(app: &App, admin: &Admin, req: &Request, id: &str) -> Handled {
    let job = find_job(app, id)?;
    let plan = job
        .plan()
        .ok_or_else(|| AppError::Conflict("这份文件还没有读完或未能读取，没有错误列表。".into()))?;
    let text = error_list::csv(&plan.errors);
    audit::note(
        app,
        &admin.actor(),
        Action::Export,
        &format!(
            "导入错误列表《{}》：{} 处",
            job.file_name,
            plan.errors.len()
        ),
        req.remote,
    );
    let name = error_list::file_name(&job.file_name);
    Ok(Response::new(
        200,
        "text/csv; charset=utf-8",
        Body::Bytes(text.into_bytes()),
    )
    .with_header(
        "Content-Disposition",
        format!(
            "attachment; filename=\"import-errors.csv\"; filename*=UTF-8''{}",
            crate::url::percent_encode(&name)
        ),
    )
    .with_header("Cache-Control", "no-store"))
}

/// Where a commit's grades go: now, or held until the form's `发布时间` (`publish_at`).
fn destination(app: &App, post: &AdminPost) -> Result<Destination, AppError> {
    match post.form().get("publish_at").map(str::trim) {
        None | Some("") => Ok(Destination::Live),
        Some(text) => crate::service::releases::parse_publish_at(text, app.clock.now())
            .map(|publish_at| Destination::Held { publish_at })
            .map_err(AppError::BadRequest),
    }
}

/// Commit a previewed import (once; not on stale data) → the history. A preview that deletes
/// rows (替换学期) is committed only with its confirmation box ticked.
pub fn commit(app: &App, req: &Request, post: &AdminPost, id: &str) -> Handled {
    let form = post.form();
    let notify = form.get("notify") == Some("1");
    let pending = find_job(app, id)?;
    // A 发布时间 that cannot be used: the preview again, the reason at its form.
    let destination = match destination(app, post) {
        Ok(d) => d,
        Err(AppError::BadRequest(why)) => {
            return job_page(app, post.admin(), &pending, Some((400, why)));
        }
        Err(e) => return Err(e),
    };
    if destination != Destination::Live && pending.kind == ImportKind::Roster {
        let why = "学生名册不能定时发布，只有成绩可以。".to_string();
        return job_page(app, post.admin(), &pending, Some((400, why)));
    }
    if let Some(p) = pending.plan() {
        if p.removed > 0
            && form.get(CONFIRM_REMOVALS) != Some("1")
            && matches!(pending.state(), JobState::Planned)
        {
            audit::note(
                app,
                &post.admin().actor(),
                Action::Import,
                &format!(
                    "未提交{}《{}》：会删除 {} 条，未勾选删除确认",
                    pending.kind.label(),
                    pending.file_name,
                    p.removed
                ),
                req.remote,
            );
            return job_page(
                app,
                post.admin(),
                &pending,
                Some((
                    400,
                    format!(
                        "未提交：这次提交会删除 {} 条成绩。请核对下面列出的将被删除的成绩，勾选“我已核对将被删除的成绩”后再提交。",
                        thousands(p.removed)
                    ),
                )),
            );
        }
    }
    let job = app.jobs.commit(id, notify, app.generation(), destination)?;
    let detail = match job.plan() {
        Some(p) => {
            format!(
                "{}《{}》sha256 {} 新增 {} 修改 {} 删除 {}{}",
                job.kind.label(),
                job.file_name,
                &p.sha256[..12.min(p.sha256.len())],
                p.added,
                p.changed,
                p.removed,
                if notify { "，通知学生" } else { "" }
            ) + &match destination {
                Destination::Live => String::new(),
                Destination::Held { publish_at } => {
                    format!("，定时发布于 {}", local_datetime(publish_at))
                }
            }
        }
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
                publish_at => r.publish_at.map(local_datetime),
                ok => r.result == "committed",
                result => r.result,
            }
        })
        .collect();
    let done: Vec<String> = app
        .jobs
        .unshown_commits(&admin.actor())
        .iter()
        .filter_map(|j| {
            let r = j.take_summary()?;
            Some(format!(
                "《{}》{}",
                j.file_name,
                commit_summary(&r, crate::service::notices::enabled(&app.config))
            ))
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
        context! { rows => rows, done => done, running => running, pager => pager(page_no, total, "/admin/imports") },
    )
}
