//! The accounts page (`/admin/accounts`, admin role only): every staff account with its role,
//! and a role selector per account (a POST with CSRF, audited). Accounts are added, given a
//! new password and removed on the command line (`wxgrades admin …`).

use minijinja::{context, Value};

use super::admin::page;
use super::session::AdminPost;
use super::Handled;
use crate::app::App;
use crate::error::AppError;
use crate::http::form::percent_encode;
use crate::http::{Request, Response};
use crate::service::admin::accounts::{self, AccountError, Role};
use crate::service::admin::audit::{self, Action};
use crate::service::admin::auth::Admin;
use crate::service::admin::local_datetime;

fn render(app: &App, admin: &Admin, status: u16, message: Option<String>) -> Handled {
    let rows: Vec<Value> = accounts::list(&app.store)
        .map_err(|e| AppError::Internal(format!("accounts: {e}")))?
        .into_iter()
        .map(|a| {
            context! {
                name => a.name,
                role => a.role.as_str(),
                role_label => a.role.label(),
                created => local_datetime(a.created),
                updated => local_datetime(a.updated),
                action => format!("/admin/accounts/{}/role", percent_encode(&a.name)),
                is_me => a.name == admin.name(),
            }
        })
        .collect();
    let roles: Vec<Value> = Role::ALL
        .iter()
        .map(|r| context! { value => r.as_str(), label => r.label() })
        .collect();
    page(
        app,
        status,
        "admin/accounts.html",
        Some(admin),
        "accounts",
        context! {
            rows => rows,
            roles => roles,
            message => message,
        },
    )
}

pub fn list(app: &App, admin: &Admin, _req: &Request) -> Handled {
    render(app, admin, 200, None)
}

/// `POST /admin/accounts/{name}/role` with `role`.
pub fn set_role(app: &App, req: &Request, post: &AdminPost, name: &str) -> Handled {
    let admin = post.admin();
    let raw = post
        .form()
        .get("role")
        .unwrap_or_default()
        .trim()
        .to_string();
    let Some(role) = Role::parse(&raw) else {
        return render(
            app,
            admin,
            400,
            Some(format!(
                "角色“{}”无效：应为 admin、registrar 或 viewer。",
                clip(&raw)
            )),
        );
    };
    match accounts::set_role(&app.store, name, role) {
        Ok(before) => {
            if before != role {
                audit::note(
                    app,
                    &admin.actor(),
                    Action::RoleChanged,
                    &format!("{name}：{before} → {role}"),
                    req.remote,
                );
            }
            Ok(Response::redirect(303, "/admin/accounts"))
        }
        Err(AccountError::Missing(_)) | Err(AccountError::Invalid(_)) => Err(AppError::NotFound),
        Err(AccountError::LastAdmin(_)) => render(
            app,
            admin,
            409,
            Some(format!(
                "“{name}”是最后一个管理员账号，不能改为其他角色；请先把另一个账号设为管理员。"
            )),
        ),
        Err(e) => Err(AppError::Internal(format!("accounts: {e}"))),
    }
}

fn clip(s: &str) -> String {
    s.chars().take(32).collect()
}
