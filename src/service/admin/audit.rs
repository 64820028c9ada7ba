//! The audit log: who did what and when (admin logins and failed attempts, imports, unbinds,
//! backups, restores, account changes). Writing an audit line never fails the action it
//! records: a store error is logged and the action goes on. No secrets go into a detail.

use crate::service::Ctx;
use std::net::IpAddr;

use crate::store::admin::AuditEvent;
use crate::store::Store;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Login,
    LoginFailed,
    LoginLocked,
    Logout,
    Import,
    Unbind,
    Export,
    Backup,
    Restore,
    AccountAdded,
    PasswordChanged,
    AccountRemoved,
    RoleChanged,
    /// A page or POST refused because of the account's role.
    Denied,
    PresetSaved,
    PresetRemoved,
    ReleasePublished,
    ReleaseWithdrawn,
    GradeCorrected,
}

impl Action {
    pub const ALL: [Action; 19] = [
        Action::Login,
        Action::LoginFailed,
        Action::LoginLocked,
        Action::Logout,
        Action::Import,
        Action::Unbind,
        Action::Export,
        Action::Backup,
        Action::Restore,
        Action::AccountAdded,
        Action::PasswordChanged,
        Action::AccountRemoved,
        Action::RoleChanged,
        Action::Denied,
        Action::PresetSaved,
        Action::PresetRemoved,
        Action::ReleasePublished,
        Action::ReleaseWithdrawn,
        Action::GradeCorrected,
    ];

    /// The stored code.
    pub fn code(self) -> &'static str {
        match self {
            Action::Login => "login",
            Action::LoginFailed => "login_failed",
            Action::LoginLocked => "login_locked",
            Action::Logout => "logout",
            Action::Import => "import",
            Action::Unbind => "unbind",
            Action::Export => "export",
            Action::Backup => "backup",
            Action::Restore => "restore",
            Action::AccountAdded => "account_added",
            Action::PasswordChanged => "password_changed",
            Action::AccountRemoved => "account_removed",
            Action::RoleChanged => "role_changed",
            Action::Denied => "denied",
            Action::PresetSaved => "preset_saved",
            Action::PresetRemoved => "preset_removed",
            Action::ReleasePublished => "release_published",
            Action::ReleaseWithdrawn => "release_withdrawn",
            Action::GradeCorrected => "grade_corrected",
        }
    }

    /// The label shown on the admin pages.
    pub fn label(self) -> &'static str {
        match self {
            Action::Login => "登录",
            Action::LoginFailed => "登录失败",
            Action::LoginLocked => "登录锁定",
            Action::Logout => "退出",
            Action::Import => "导入",
            Action::Unbind => "解除绑定",
            Action::Export => "导出成绩",
            Action::Backup => "备份",
            Action::Restore => "恢复备份",
            Action::AccountAdded => "新增管理员",
            Action::PasswordChanged => "修改密码",
            Action::AccountRemoved => "删除管理员",
            Action::RoleChanged => "更改角色",
            Action::Denied => "越权被拒",
            Action::PresetSaved => "保存导入预设",
            Action::PresetRemoved => "删除导入预设",
            Action::ReleasePublished => "发布成绩",
            Action::ReleaseWithdrawn => "撤回定时发布",
            Action::GradeCorrected => "成绩更正",
        }
    }

    pub fn from_code(code: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.code() == code)
    }

    /// Whether the page marks the line as a warning.
    pub fn is_warning(self) -> bool {
        matches!(
            self,
            Action::LoginFailed | Action::LoginLocked | Action::Denied
        )
    }
}

/// Record one action now (the context's clock). `actor` as for [`record`].
pub fn note(ctx: &Ctx, actor: &str, action: Action, detail: &str, ip: Option<IpAddr>) {
    record(&ctx.store, ctx.clock.now(), actor, action, detail, ip);
}

/// Record one action. `actor` is "admin:NAME" (with "(ROLE)" after it for the registrar and
/// viewer roles), "cli", "system", or for a failed login the name that was tried.
pub fn record(
    store: &Store,
    at: i64,
    actor: &str,
    action: Action,
    detail: &str,
    ip: Option<IpAddr>,
) {
    let ev = AuditEvent {
        at,
        actor: clip(actor, 80),
        action: action.code().to_string(),
        detail: clip(detail, 500),
        ip: ip.map(|i| i.to_string()),
    };
    if let Err(e) = store.append_audit(&ev) {
        log::error!("audit log: cannot record {}: {e}", action.code());
    }
}

/// Text cut to `max` characters, with control characters replaced (a tried user name is input).
fn clip(s: &str, max: usize) -> String {
    let mut out: String = s
        .chars()
        .take(max)
        .map(|c| if c.is_control() { '\u{fffd}' } else { c })
        .collect();
    if s.chars().count() > max {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for a in Action::ALL {
            assert_eq!(Action::from_code(a.code()), Some(a));
        }
        assert_eq!(Action::from_code("nope"), None);
    }

    #[test]
    fn clipping() {
        assert_eq!(clip("a\nb", 10), "a\u{fffd}b");
        assert_eq!(clip("abcdef", 3), "abc…");
    }
}
