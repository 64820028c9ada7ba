//! Admin sign-in and authority. `Admin` can only be built here, from a live admin session (see
//! `service::session`, kind `Admin`: 12 hours idle, 7 days in all); a handler that takes one
//! cannot forget the check. Failed logins lock the (account, client address) pair and the
//! client address for a while, and only slow the account down for other addresses
//! (`service::pacing`): a stranger cannot lock the admin out.
//! The cookies and the CSRF checks of admin forms are the web side's (`handlers::admin_auth`).

use std::net::IpAddr;

use crate::error::AppError;
use crate::service::admin::AdminState;
use crate::service::session::{self, Kind};
use crate::service::Ctx;

use super::accounts::{self, Role};
use super::audit::{self, Action};

/// A session ends after this long without a request.
pub const IDLE_SECS: i64 = session::ADMIN_IDLE_SECS;
/// And after this long in all.
pub const MAX_SECS: i64 = session::ADMIN_MAX_SECS;
/// Failures of one (account, client address) pair before it is locked, and for how long (also
/// the counting window).
pub const ACCOUNT_MAX_FAILURES: u32 = 5;
/// Failures from one client address (over any names) before it is locked.
pub const ADDRESS_MAX_FAILURES: u32 = 20;
pub const LOCK_SECS: i64 = 15 * 60;

/// A verified staff member (an admin account of any role). Only [`current`] makes one; the
/// router hands it to a handler only after checking the route's role
/// (`handlers::admin_roles`).
pub struct Admin {
    name: String,
    role: Role,
    session_id: String,
}

impl std::fmt::Debug for Admin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The session id is a secret.
        f.debug_struct("Admin")
            .field("name", &self.name)
            .field("role", &self.role)
            .finish()
    }
}

impl Admin {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The account's role, as stored when this request began.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Whether this account's role is `least` or above it.
    pub fn may(&self, least: Role) -> bool {
        self.role >= least
    }

    /// For history and audit records: "admin:NAME" for the admin role (as every record made
    /// before roles), "admin:NAME(registrar)" / "admin:NAME(viewer)" for the others.
    pub fn actor(&self) -> String {
        actor(&self.name, self.role)
    }

    /// The session's secret id, for the CSRF token of its forms; never logged.
    pub fn session_id(&self) -> &str {
        &self.session_id
    }
}

/// The actor string of account `name` with `role` (see [`Admin::actor`]).
pub fn actor(name: &str, role: Role) -> String {
    match role {
        Role::Admin => format!("admin:{name}"),
        other => format!("admin:{name}({other})"),
    }
}

/// The admin of the session with this id, if it is live and the account still exists (with
/// the account's role as stored now: a changed role applies from the next request).
pub fn current(ctx: &Ctx, session_id: &str) -> Result<Option<Admin>, AppError> {
    let Some(live) = session::lookup(ctx, Kind::Admin, session_id)? else {
        return Ok(None);
    };
    let Some(account) = ctx.store.admin_account(&live.subject)? else {
        session::end(ctx, Kind::Admin, session_id)?;
        return Ok(None);
    };
    Ok(Some(Admin {
        name: live.subject,
        role: account.role,
        session_id: live.id,
    }))
}

/// The result of a login attempt.
pub enum Login {
    /// Signed in: the new session's secret id (for the cookie).
    Success(String),
    /// Wrong name or password (no hint which).
    Wrong,
    /// Locked out until this Unix time.
    Locked(i64),
}

fn keys(username: &str, ip: Option<IpAddr>) -> (String, String) {
    let name: String = username.chars().take(64).collect::<String>().to_lowercase();
    let addr = ip.map(|i| i.to_string()).unwrap_or_else(|| "-".into());
    (format!("acct:{name}"), format!("addr:{addr}"))
}

/// Try to sign in. Wrong passwords count against the account and the client address.
pub fn login(
    ctx: &Ctx,
    state: &AdminState,
    username: &str,
    password: &str,
    ip: Option<IpAddr>,
) -> Result<Login, AppError> {
    let now = ctx.clock.now();
    let (name_key, addr_key) = keys(username, ip);
    let acct_key = format!("{name_key}@{addr_key}");
    let locked = [
        state.by_account.check(&acct_key, now),
        state.by_address.check(&addr_key, now),
        state.name_pace.check(&name_key, &addr_key, now),
    ]
    .iter()
    .filter_map(|r| r.err())
    .max();
    if let Some(until) = locked {
        return Ok(Login::Locked(until));
    }
    let account = if accounts::check_name(username).is_ok() {
        ctx.store.admin_account(username)?
    } else {
        None
    };
    let ok = match &account {
        Some(a) => accounts::verify_password(password, &a.password_hash),
        None => {
            // Same work as for a real account, so the answer's timing tells nothing.
            let _ = accounts::verify_password(password, accounts::dummy_hash());
            false
        }
    };
    let Some(account) = account.filter(|_| ok) else {
        let a = state.by_account.fail(&acct_key, now);
        let b = state.by_address.fail(&addr_key, now);
        state.name_pace.fail(&name_key, &addr_key, now);
        let tried = format!("?:{username}");
        return match a.into_iter().chain(b).max() {
            Some(until) => {
                audit::record(
                    &ctx.store,
                    now,
                    &tried,
                    Action::LoginLocked,
                    &format!("登录失败次数过多，锁定至 {}", super::local_datetime(until)),
                    ip,
                );
                Ok(Login::Locked(until))
            }
            None => {
                audit::record(
                    &ctx.store,
                    now,
                    &tried,
                    Action::LoginFailed,
                    "用户名或密码错误",
                    ip,
                );
                Ok(Login::Wrong)
            }
        };
    };
    state.by_account.reset(&acct_key);
    let _ = ctx.store.purge_admin_sessions(now);
    let id = session::open(ctx, Kind::Admin, &account.name)?;
    audit::record(
        &ctx.store,
        now,
        &actor(&account.name, account.role),
        Action::Login,
        "",
        ip,
    );
    Ok(Login::Success(id))
}

/// End the session (the caller removes the cookie).
pub fn logout(ctx: &Ctx, admin: &Admin, ip: Option<IpAddr>) -> Result<(), AppError> {
    session::end(ctx, Kind::Admin, &admin.session_id)?;
    audit::record(
        &ctx.store,
        ctx.clock.now(),
        &admin.actor(),
        Action::Logout,
        "",
        ip,
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limiter_keys_fold_case_and_bound_length() {
        let (a, b) = keys("Alice", None);
        assert_eq!(a, "acct:alice");
        assert_eq!(b, "addr:-");
        let (a, _) = keys(&"x".repeat(1000), Some([10, 0, 0, 1].into()));
        assert!(a.len() < 80);
    }
}
