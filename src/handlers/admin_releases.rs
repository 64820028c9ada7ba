//! The release pages under `/admin/releases`: the list of staged releases (scheduled,
//! published, withdrawn, with their counts), and the 立即发布 / 撤回 POSTs (CSRF-checked,
//! audited). The rules are `service::releases`.

use minijinja::{context, Value};

use super::admin::page;
use super::session::AdminPost;
use super::Handled;
use crate::app::App;
use crate::error::AppError;
use crate::http::{Request, Response};
use crate::service::admin::audit::{self, Action};
use crate::service::admin::auth::Admin;
use crate::service::admin::local_datetime;
use crate::service::releases::{self, Release, ReleaseState};

fn who(by: &str) -> String {
    match by {
        releases::BY_SCHEDULE => "到时自动发布".into(),
        "cli" => "命令行".into(),
        other => other.strip_prefix("admin:").unwrap_or(other).to_string(),
    }
}

fn line(r: &Release) -> Value {
    let (state, label) = match r.state {
        ReleaseState::Scheduled => ("scheduled", "待发布"),
        ReleaseState::Published => ("published", "已发布"),
        ReleaseState::Withdrawn => ("withdrawn", "已撤回"),
    };
    context! {
        id => r.id,
        state => state,
        state_label => label,
        publish_at => local_datetime(r.publish_at),
        created => local_datetime(r.created),
        by => who(&r.by),
        file_name => r.file_name.clone(),
        terms => r.terms.join("、"),
        added => r.added,
        changed => r.changed,
        removed => r.removed,
        notify => r.notify,
        done_at => r.done_at.map(local_datetime),
        done_by => r.done_by.as_deref().map(who),
        published_rows => r.published_rows,
        notices => r.notices,
    }
}

/// `GET /admin/releases`.
pub fn list(app: &App, admin: &Admin) -> Handled {
    let all = releases::list(app)?;
    let scheduled: Vec<Value> = all
        .iter()
        .filter(|r| r.state == ReleaseState::Scheduled)
        .map(line)
        .collect();
    let done: Vec<Value> = all
        .iter()
        .filter(|r| r.state != ReleaseState::Scheduled)
        .map(line)
        .collect();
    page(
        app,
        200,
        "admin/releases.html",
        Some(admin),
        "releases",
        context! { scheduled => scheduled, done => done },
    )
}

fn release_id(id: &str) -> Result<u64, AppError> {
    id.parse().map_err(|_| AppError::NotFound)
}

/// `POST /admin/releases/{id}/publish`: publish now (立即发布).
pub fn publish(app: &App, req: &Request, post: &AdminPost, id: &str) -> Handled {
    let id = release_id(id)?;
    let actor = post.admin().actor();
    let r = releases::publish(app, &app.notice_wake, id, &actor)?;
    audit::note(
        app,
        &actor,
        Action::ReleasePublished,
        &format!(
            "发布 #{}《{}》（原定 {}），{} 条成绩生效，{} 条通知",
            r.id,
            r.file_name,
            local_datetime(r.publish_at),
            r.published_rows,
            r.notices
        ),
        req.remote,
    );
    Ok(Response::redirect(303, "/admin/releases"))
}

/// `POST /admin/releases/{id}/withdraw`: withdraw (撤回); nothing becomes visible.
pub fn withdraw(app: &App, req: &Request, post: &AdminPost, id: &str) -> Handled {
    let id = release_id(id)?;
    let actor = post.admin().actor();
    let r = releases::withdraw(app, id, &actor)?;
    audit::note(
        app,
        &actor,
        Action::ReleaseWithdrawn,
        &format!(
            "撤回 #{}《{}》（原定 {}）",
            r.id,
            r.file_name,
            local_datetime(r.publish_at)
        ),
        req.remote,
    );
    Ok(Response::redirect(303, "/admin/releases"))
}
