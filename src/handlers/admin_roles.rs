//! Who may use each admin route: one line per route label in [`ROUTE_ROLES`] (the label the
//! router gives the route, also its metrics label) naming the least role it needs. A label
//! that is not listed is admin-only (default deny), so a new route is safe before anyone
//! thinks about it. [`grant`] is the one check: the router calls it after matching a route and
//! before handing the signed-in [`Admin`] to the handler; a refusal is the admin 403 page (and
//! an audit line for a POST).

use crate::app::App;
use crate::error::AppError;
use crate::http::{Method, Request};
use crate::service::admin::accounts::Role;
use crate::service::admin::audit::{self, Action};
use crate::service::admin::auth::Admin;

/// The least role of each admin route, by label. Keep one line per label; a route missing
/// here needs the admin role.
pub const ROUTE_ROLES: &[(&str, Role)] = &[
    // Everyone signed in.
    ("admin_dashboard", Role::Viewer),
    ("admin_logout", Role::Viewer),
    ("admin_students", Role::Viewer),
    ("admin_student", Role::Viewer),
    ("admin_courses", Role::Viewer),
    ("admin_course", Role::Viewer),
    // Aggregate figures only (no student ID, name or single score): fine for viewers.
    ("admin_courses_csv", Role::Viewer),
    ("admin_not_found", Role::Viewer),
    // Grade work: imports, unbinding, exports of personal data.
    ("admin_unbind", Role::Registrar),
    ("admin_export", Role::Registrar),
    ("admin_import", Role::Registrar),
    ("admin_import_job", Role::Registrar),
    ("admin_import_commit", Role::Registrar),
    // A preview's error list names student IDs and cells as written.
    ("admin_import_errors", Role::Registrar),
    ("admin_imports", Role::Registrar),
    // Column maps for files no layout reads, and the saved presets.
    ("admin_import_map", Role::Registrar),
    ("admin_presets", Role::Registrar),
    ("admin_presets_delete", Role::Registrar),
    // Staged publishing and grade corrections.
    ("admin_releases", Role::Registrar),
    ("admin_release_publish", Role::Registrar),
    ("admin_release_withdraw", Role::Registrar),
    ("admin_correct", Role::Registrar),
    // Accounts and whole-file backups (they hold every password hash).
    ("admin_accounts", Role::Admin),
    ("admin_account_role", Role::Admin),
    ("admin_backup", Role::Admin),
];

/// The least role route `label` needs: as declared, else admin.
pub fn least_role(label: &str) -> Role {
    ROUTE_ROLES
        .iter()
        .find(|(l, _)| *l == label)
        .map(|(_, r)| *r)
        .unwrap_or(Role::Admin)
}

/// Whether `admin` may use route `label`.
pub fn allowed(admin: &Admin, label: &str) -> bool {
    admin.may(least_role(label))
}

/// Hand `admin` on when its role may use route `label`; otherwise `Forbidden` (403, the admin
/// error page), with an audit line when the request was a POST.
pub fn grant(app: &App, req: &Request, admin: Admin, label: &str) -> Result<Admin, AppError> {
    let least = least_role(label);
    if admin.may(least) {
        return Ok(admin);
    }
    if req.method == Method::Post {
        audit::note(
            app,
            &admin.actor(),
            Action::Denied,
            &format!("POST {}（需要 {} 角色）", clip_path(&req.path), least),
            req.remote,
        );
    }
    Err(AppError::Forbidden(format!(
        "你的账号角色是“{}”，不能使用此页面或操作（需要“{}”或以上角色）。如需权限，请联系管理员。",
        admin.role().label(),
        least.label()
    )))
}

fn clip_path(p: &str) -> String {
    p.chars().take(120).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn undeclared_routes_are_admin_only_and_labels_are_unique() {
        assert_eq!(least_role("admin_something_new"), Role::Admin);
        assert_eq!(least_role("admin_courses"), Role::Viewer);
        assert_eq!(least_role("admin_import"), Role::Registrar);
        let mut seen = std::collections::BTreeSet::new();
        for (l, _) in ROUTE_ROLES {
            assert!(seen.insert(*l), "{l} declared twice");
        }
    }
}
