//! Admin accounts: name and password rules, argon2id hashing (PHC strings with a random salt),
//! verification, and add / change password / change role / remove / list, plus the demo admin.

use std::fmt;
use std::sync::OnceLock;

use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::Argon2;

use crate::secret;
pub use crate::store::admin::Role;
use crate::store::admin::{AdminAccount, RoleChange};
use crate::store::{Store, StoreError};

/// Passwords shorter than this (in characters) are refused.
pub const MIN_PASSWORD_CHARS: usize = 10;
/// Longer than this (in bytes) is refused, so a login cannot be made to hash megabytes.
pub const MAX_PASSWORD_BYTES: usize = 1024;
/// The demo mode admin.
pub const DEMO_ADMIN: &str = "demo";

#[derive(Debug)]
pub enum AccountError {
    /// A bad name or password, with a message for the operator.
    Invalid(String),
    Exists(String),
    Missing(String),
    /// The change would leave no account with the admin role.
    LastAdmin(String),
    Store(StoreError),
}

impl fmt::Display for AccountError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AccountError::Invalid(m) => f.write_str(m),
            AccountError::Exists(n) => write!(
                f,
                "an admin named {n:?} exists already (use `wxgrades admin passwd {n}` to change the password)"
            ),
            AccountError::Missing(n) => write!(
                f,
                "there is no admin named {n:?} (see `wxgrades admin list`)"
            ),
            AccountError::LastAdmin(n) => write!(
                f,
                "{n:?} is the last account with the admin role; give another account that role first"
            ),
            AccountError::Store(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for AccountError {}

impl From<StoreError> for AccountError {
    fn from(e: StoreError) -> Self {
        AccountError::Store(e)
    }
}

/// Names: 1 to 32 ASCII letters, digits, `_`, `.`, `-`, starting with a letter or digit.
pub fn check_name(name: &str) -> Result<(), AccountError> {
    let ok = !name.is_empty()
        && name.len() <= 32
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(AccountError::Invalid(format!(
            "admin name {name:?}: use 1 to 32 letters, digits, '_', '.' or '-', starting with a letter or digit"
        )))
    }
}

pub fn check_password(password: &str) -> Result<(), AccountError> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return Err(AccountError::Invalid(format!(
            "the password is too short: at least {MIN_PASSWORD_CHARS} characters, got {chars}"
        )));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(AccountError::Invalid(format!(
            "the password is too long: at most {MAX_PASSWORD_BYTES} bytes"
        )));
    }
    if password.chars().any(char::is_control) {
        return Err(AccountError::Invalid(
            "the password contains control characters".into(),
        ));
    }
    Ok(())
}

/// An argon2id PHC string (default parameters, 16-byte random salt) for `password`.
pub fn hash_password(password: &str) -> Result<String, AccountError> {
    let salt = secret::random_bytes::<16>();
    Argon2::default()
        .hash_password_with_salt(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AccountError::Invalid(format!("cannot hash the password: {e}")))
}

/// Whether `password` matches the PHC string (the comparison inside is constant-time).
pub fn verify_password(password: &str, phc: &str) -> bool {
    if password.len() > MAX_PASSWORD_BYTES {
        return false;
    }
    Argon2::default()
        .verify_password(password.as_bytes(), phc)
        .is_ok()
}

/// A hash to verify against when the account does not exist, so that a login for an unknown
/// name takes as long as one for a known name.
pub fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        hash_password(&secret::random_hex::<16>()).unwrap_or_else(|_| {
            // Never happens with a valid password; a malformed hash still costs a parse only.
            String::new()
        })
    })
}

fn account(
    name: &str,
    password: &str,
    role: Role,
    now: i64,
    created: i64,
) -> Result<AdminAccount, AccountError> {
    check_name(name)?;
    check_password(password)?;
    Ok(AdminAccount {
        name: name.to_string(),
        password_hash: hash_password(password)?,
        created,
        updated: now,
        role,
    })
}

/// Create an account with the admin role; refused when the name exists.
pub fn add(store: &Store, name: &str, password: &str, now: i64) -> Result<(), AccountError> {
    add_with_role(store, name, password, Role::Admin, now)
}

/// Create an account with `role`; refused when the name exists.
pub fn add_with_role(
    store: &Store,
    name: &str,
    password: &str,
    role: Role,
    now: i64,
) -> Result<(), AccountError> {
    check_name(name)?;
    if store.admin_account(name)?.is_some() {
        return Err(AccountError::Exists(name.into()));
    }
    store.put_admin_account(&account(name, password, role, now, now)?)?;
    Ok(())
}

/// Give an account another role (at once: the role is read on every request); returns the
/// role it had. Refused when it would leave no account with the admin role.
pub fn set_role(store: &Store, name: &str, role: Role) -> Result<Role, AccountError> {
    check_name(name)?;
    match store.set_admin_role(name, role)? {
        None => Err(AccountError::Missing(name.into())),
        Some(RoleChange::LastAdmin) => Err(AccountError::LastAdmin(name.into())),
        Some(RoleChange::Changed { before }) => Ok(before),
    }
}

/// Every account, by name.
pub fn list(store: &Store) -> Result<Vec<AdminAccount>, AccountError> {
    Ok(store.admin_accounts()?)
}

/// Change an admin's password (ending their sessions).
pub fn set_password(
    store: &Store,
    name: &str,
    password: &str,
    now: i64,
) -> Result<(), AccountError> {
    check_name(name)?;
    let Some(old) = store.admin_account(name)? else {
        return Err(AccountError::Missing(name.into()));
    };
    store.put_admin_account(&account(name, password, old.role, now, old.created)?)?;
    Ok(())
}

pub fn remove(store: &Store, name: &str) -> Result<(), AccountError> {
    if store.remove_admin_account(name)? {
        Ok(())
    } else {
        Err(AccountError::Missing(name.into()))
    }
}

/// Give the demo admin a fresh random password; returns it (for the start-up banner only).
pub fn reset_demo_admin(store: &Store, now: i64) -> Result<String, AccountError> {
    // Letters and digits that cannot be mistaken for one another.
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyzACDEFGHJKLMNPQRTUVWXY346789";
    let password: String = secret::random_bytes::<14>()
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
        .collect();
    let created = store
        .admin_account(DEMO_ADMIN)?
        .map(|a| a.created)
        .unwrap_or(now);
    store.put_admin_account(&account(DEMO_ADMIN, &password, Role::Admin, now, created)?)?;
    Ok(password)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(check_name("alice").is_ok());
        assert!(check_name("jw.office-2_b").is_ok());
        for bad in ["", "-x", ".x", "a b", "张三", "a/b", &"x".repeat(33)] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn passwords() {
        assert!(check_password("123456789").is_err());
        assert!(check_password("1234567890").is_ok());
        assert!(
            check_password("密码密码密码密码密码").is_ok(),
            "characters, not bytes"
        );
        assert!(check_password(&"x".repeat(MAX_PASSWORD_BYTES + 1)).is_err());
        assert!(check_password("abcdefghij\n").is_err());
    }

    #[test]
    fn hash_and_verify() {
        let h = hash_password("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(verify_password("correct horse battery", &h));
        assert!(!verify_password("correct horse batterx", &h));
        assert!(!verify_password("x", "not a hash"));
        assert_ne!(h, hash_password("correct horse battery").unwrap(), "salted");
        assert!(!verify_password("anything at all", dummy_hash()));
    }
}
