//! Admin records in the data file: accounts (argon2id hashes only), admin sessions (stored
//! under a hash of their id), the audit log, and the read-only scans the admin pages need
//! (a page of students, every grade row with the student's name for the export).

use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata};
use serde::{Deserialize, Serialize};

use super::grades::decode_row;
use super::students::Student;
use super::tables::{ADMINS, ADMIN_SESSIONS, AUDIT, BOUND, GRADES, STUDENTS};
use super::{Result, Store};
use crate::grades::GradeRecord;

/// The audit log keeps at most this many events; older ones are dropped in batches.
pub const AUDIT_MAX: u64 = 100_000;
const AUDIT_TRIM: u64 = 1_000;

/// What a staff account may do (the rules per route are `service::admin::roles`). Ordered:
/// each role may do everything the one before it may.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Dashboards, courses and students, read only; no export of personal data, no writes.
    Viewer,
    /// Also imports, releases, corrections, unbinding students, exports.
    Registrar,
    /// Everything, including accounts and backups. Accounts stored before roles have this one.
    #[default]
    Admin,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Admin, Role::Registrar, Role::Viewer];

    /// The role named `s` (`admin`, `registrar`, `viewer`), if any.
    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Registrar => "registrar",
            Role::Viewer => "viewer",
        }
    }

    /// The name shown on the admin pages.
    pub fn label(self) -> &'static str {
        match self {
            Role::Admin => "管理员",
            Role::Registrar => "教务员",
            Role::Viewer => "只读",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An admin account. `password_hash` is an argon2id PHC string, never the password.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AdminAccount {
    pub name: String,
    pub password_hash: String,
    pub created: i64,
    pub updated: i64,
    /// Absent in accounts stored before roles: those are admins.
    #[serde(default)]
    pub role: Role,
}

impl std::fmt::Debug for AdminAccount {
    // Hand-written so the hash never reaches a log line through `{:?}`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminAccount")
            .field("name", &self.name)
            .field("created", &self.created)
            .field("updated", &self.updated)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

/// What [`Store::set_admin_role`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoleChange {
    /// Done; the role it had before.
    Changed { before: Role },
    /// Refused: it is the last account with the admin role.
    LastAdmin,
}

/// A signed-in admin browser.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AdminSessionRecord {
    pub name: String,
    pub created: i64,
    pub last_seen: i64,
    pub expires: i64,
}

/// One line of the audit log.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AuditEvent {
    pub at: i64,
    /// "admin:NAME", "cli", "system", or the name tried at a failed login ("?:NAME").
    pub actor: String,
    /// e.g. "login", "login_failed", "logout", "import", "unbind", "backup", "restore".
    pub action: String,
    pub detail: String,
    /// The client address, for web actions.
    pub ip: Option<String>,
}

/// A student as listed on the admin search page.
#[derive(Debug, Clone)]
pub struct StudentListing {
    pub student: Student,
    pub bound: bool,
}

fn decode<T: for<'de> Deserialize<'de>>(b: &[u8]) -> Result<T> {
    Ok(serde_json::from_slice(b)?)
}

impl Store {
    pub fn admin_account(&self, name: &str) -> Result<Option<AdminAccount>> {
        self.read_json(ADMINS, name)
    }

    /// Every admin account, by name.
    pub fn admin_accounts(&self) -> Result<Vec<AdminAccount>> {
        let tx = self.db().begin_read()?;
        let t = tx.open_table(ADMINS)?;
        let mut out = Vec::new();
        for item in t.iter()? {
            let (_, v) = item?;
            out.push(decode(v.value())?);
        }
        Ok(out)
    }

    /// Insert or replace an account. Replacing (a new password) ends that admin's sessions in
    /// the same transaction.
    pub fn put_admin_account(&self, account: &AdminAccount) -> Result<()> {
        let v = serde_json::to_vec(account)?;
        let tx = self.db().begin_write()?;
        {
            let existed = tx
                .open_table(ADMINS)?
                .insert(account.name.as_str(), v.as_slice())?
                .is_some();
            if existed {
                drop_sessions_of(&tx, &account.name)?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Give an existing account another role, in one transaction that also checks that an
    /// account with the admin role remains. Its sessions stay: the role is read on every
    /// request. `Ok(None)` when there is no such account.
    pub fn set_admin_role(&self, name: &str, role: Role) -> Result<Option<RoleChange>> {
        let tx = self.db().begin_write()?;
        let change = {
            let mut t = tx.open_table(ADMINS)?;
            let Some(mut account) = t
                .get(name)?
                .map(|v| decode::<AdminAccount>(v.value()))
                .transpose()?
            else {
                return Ok(None);
            };
            let before = account.role;
            if before == Role::Admin && role != Role::Admin {
                let mut admins = 0usize;
                for item in t.iter()? {
                    let (_, v) = item?;
                    if decode::<AdminAccount>(v.value())?.role == Role::Admin {
                        admins += 1;
                    }
                }
                if admins <= 1 {
                    return Ok(Some(RoleChange::LastAdmin));
                }
            }
            account.role = role;
            let v = serde_json::to_vec(&account)?;
            t.insert(name, v.as_slice())?;
            RoleChange::Changed { before }
        };
        tx.commit()?;
        Ok(Some(change))
    }

    /// Remove an account and its sessions; false when there was none.
    pub fn remove_admin_account(&self, name: &str) -> Result<bool> {
        let tx = self.db().begin_write()?;
        let existed = tx.open_table(ADMINS)?.remove(name)?.is_some();
        if existed {
            drop_sessions_of(&tx, name)?;
        }
        tx.commit()?;
        Ok(existed)
    }

    pub fn put_admin_session(&self, hash: &[u8; 32], s: &AdminSessionRecord) -> Result<()> {
        self.write_json(ADMIN_SESSIONS, hash.as_slice(), s)
    }

    pub fn admin_session(&self, hash: &[u8; 32]) -> Result<Option<AdminSessionRecord>> {
        self.read_json(ADMIN_SESSIONS, hash.as_slice())
    }

    pub fn delete_admin_session(&self, hash: &[u8; 32]) -> Result<()> {
        self.delete_key(ADMIN_SESSIONS, hash.as_slice())
    }

    /// Drop admin sessions that ended before `now`; returns how many went.
    pub fn purge_admin_sessions(&self, now: i64) -> Result<usize> {
        self.drop_where_batched(
            ADMIN_SESSIONS,
            super::auth::PURGE_BATCH,
            |s: &AdminSessionRecord| s.expires <= now,
        )
    }

    /// Append to the audit log (dropping the oldest events beyond `AUDIT_MAX`).
    pub fn append_audit(&self, ev: &AuditEvent) -> Result<u64> {
        let v = serde_json::to_vec(ev)?;
        let tx = self.db().begin_write()?;
        let id = {
            let mut t = tx.open_table(AUDIT)?;
            let id = t.last()?.map(|(k, _)| k.value()).unwrap_or(0) + 1;
            t.insert(id, v.as_slice())?;
            if t.len()? > AUDIT_MAX {
                let first = t.first()?.map(|(k, _)| k.value()).unwrap_or(0);
                t.retain_in(first..first + AUDIT_TRIM, |_, _| false)?;
            }
            id
        };
        tx.commit()?;
        Ok(id)
    }

    /// Audit events, newest first, with their sequence numbers.
    pub fn audit_events(&self, offset: usize, limit: usize) -> Result<Vec<(u64, AuditEvent)>> {
        let tx = self.db().begin_read()?;
        let t = tx.open_table(AUDIT)?;
        let mut out = Vec::new();
        for item in t.iter()?.rev().skip(offset).take(limit) {
            let (k, v) = item?;
            out.push((k.value(), decode(v.value())?));
        }
        Ok(out)
    }

    /// Students whose ID starts with `q` or whose name contains `q` (all when `q` is empty),
    /// in ID order: the `limit` from `offset` on, and the number that match in all.
    pub fn students_page(
        &self,
        q: &str,
        offset: usize,
        limit: usize,
    ) -> Result<(Vec<StudentListing>, usize)> {
        let tx = self.db().begin_read()?;
        let students = tx.open_table(STUDENTS)?;
        let bound = tx.open_table(BOUND)?;
        let q = q.trim();
        let mut out = Vec::new();
        let mut matched = 0usize;
        for item in students.iter()? {
            let (k, v) = item?;
            let hit = if q.is_empty() || k.value().starts_with(q) {
                true
            } else {
                decode::<Student>(v.value())?.name.contains(q)
            };
            if !hit {
                continue;
            }
            if matched >= offset && out.len() < limit {
                let student: Student = decode(v.value())?;
                let is_bound = bound.get(k.value())?.is_some();
                out.push(StudentListing {
                    student,
                    bound: is_bound,
                });
            }
            matched += 1;
        }
        Ok((out, matched))
    }

    /// Visit every grade row (of one term, when given) with the student's roster name, in key
    /// order, in one read transaction.
    pub fn for_each_grade_with_name(
        &self,
        term: Option<&str>,
        mut f: impl FnMut(&GradeRecord, Option<&str>) -> Result<()>,
    ) -> Result<()> {
        let tx = self.db().begin_read()?;
        let grades = tx.open_table(GRADES)?;
        let students = tx.open_table(STUDENTS)?;
        // Rows come grouped by student: remember the last name looked up.
        let mut last: Option<(String, Option<String>)> = None;
        for item in grades.iter()? {
            let (k, v) = item?;
            let row = decode_row(k.value(), v.value())?;
            if term.is_some_and(|t| t != row.term.as_str()) {
                continue;
            }
            let fresh = !matches!(&last, Some((sid, _)) if *sid == row.student_id);
            if fresh {
                let name = match students.get(row.student_id.as_str())? {
                    Some(s) => Some(decode::<Student>(s.value())?.name),
                    None => None,
                };
                last = Some((row.student_id.clone(), name));
            }
            let name = last.as_ref().and_then(|(_, n)| n.as_deref());
            f(&row, name)?;
        }
        Ok(())
    }
}

fn drop_sessions_of(tx: &redb::WriteTransaction, name: &str) -> Result<()> {
    tx.open_table(ADMIN_SESSIONS)?.retain(|_, v| {
        serde_json::from_slice::<AdminSessionRecord>(v)
            .map(|s| s.name != name)
            .unwrap_or(false)
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(name: &str) -> Store {
        let d = std::env::temp_dir().join(format!("wxg-admin-store-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        Store::open(&d.join("x.redb")).unwrap()
    }

    #[test]
    fn new_password_or_removal_ends_sessions() {
        let s = store("sessions");
        let acct = AdminAccount {
            name: "alice".into(),
            password_hash: "x".into(),
            created: 1,
            updated: 1,
            role: Role::Admin,
        };
        s.put_admin_account(&acct).unwrap();
        let rec = AdminSessionRecord {
            name: "alice".into(),
            created: 1,
            last_seen: 1,
            expires: 100,
        };
        s.put_admin_session(&[1; 32], &rec).unwrap();
        s.put_admin_session(
            &[2; 32],
            &AdminSessionRecord {
                name: "bob".into(),
                ..rec.clone()
            },
        )
        .unwrap();
        s.put_admin_account(&acct).unwrap();
        assert!(s.admin_session(&[1; 32]).unwrap().is_none());
        assert!(s.admin_session(&[2; 32]).unwrap().is_some());
        s.put_admin_session(&[1; 32], &rec).unwrap();
        assert!(s.remove_admin_account("alice").unwrap());
        assert!(!s.remove_admin_account("alice").unwrap());
        assert!(s.admin_session(&[1; 32]).unwrap().is_none());
        assert_eq!(s.purge_admin_sessions(100).unwrap(), 1);
    }

    #[test]
    fn audit_newest_first() {
        let s = store("audit");
        for i in 0..3 {
            s.append_audit(&AuditEvent {
                at: i,
                actor: "cli".into(),
                action: "backup".into(),
                detail: format!("n{i}"),
                ip: None,
            })
            .unwrap();
        }
        let got = s.audit_events(0, 2).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].0, 3);
        assert_eq!(got[0].1.detail, "n2");
        assert_eq!(s.audit_events(2, 10).unwrap()[0].1.detail, "n0");
    }

    #[test]
    fn accounts_before_roles_are_admins_and_the_last_admin_stays() {
        let old = r#"{"name":"old","password_hash":"x","created":1,"updated":2}"#;
        let a: AdminAccount = serde_json::from_str(old).unwrap();
        assert_eq!(a.role, Role::Admin);
        let v = serde_json::to_string(&AdminAccount {
            role: Role::Registrar,
            ..a.clone()
        })
        .unwrap();
        assert!(v.contains(r#""role":"registrar""#), "{v}");
        assert!(Role::Viewer < Role::Registrar && Role::Registrar < Role::Admin);
        assert_eq!(Role::parse("viewer"), Some(Role::Viewer));
        assert_eq!(Role::parse("root"), None);

        let s = store("roles");
        s.put_admin_account(&a).unwrap();
        assert_eq!(s.set_admin_role("nobody", Role::Viewer).unwrap(), None);
        assert_eq!(
            s.set_admin_role("old", Role::Viewer).unwrap(),
            Some(RoleChange::LastAdmin)
        );
        assert_eq!(s.admin_account("old").unwrap().unwrap().role, Role::Admin);
        s.put_admin_account(&AdminAccount {
            name: "new".into(),
            ..a.clone()
        })
        .unwrap();
        assert_eq!(
            s.set_admin_role("old", Role::Viewer).unwrap(),
            Some(RoleChange::Changed {
                before: Role::Admin
            })
        );
        assert_eq!(s.admin_account("old").unwrap().unwrap().role, Role::Viewer);
        assert_eq!(
            s.set_admin_role("new", Role::Registrar).unwrap(),
            Some(RoleChange::LastAdmin)
        );
    }
}
