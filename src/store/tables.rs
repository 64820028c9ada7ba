//! Every table of the data file, with versioned names, created together at start-up (opening a
//! missing table in a read transaction is an error in redb).

use redb::{TableDefinition, WriteTransaction};

/// `key` → bytes: schema version and small settings (e.g. the cached access_token).
pub const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta_v1");
/// sha256(session id) → JSON `Session`.
pub const SESSIONS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("sessions_v1");
/// OAuth `state` → JSON `OAuthState`.
pub const OAUTH_STATES: TableDefinition<&str, &[u8]> = TableDefinition::new("oauth_states_v1");
/// openid → JSON `WxUser` (nickname and avatar with snsapi_userinfo).
pub const WX_USERS: TableDefinition<&str, &[u8]> = TableDefinition::new("wx_users_v1");

pub(crate) fn create_all(tx: &WriteTransaction) -> Result<(), redb::TableError> {
    tx.open_table(META)?;
    tx.open_table(SESSIONS)?;
    tx.open_table(OAUTH_STATES)?;
    tx.open_table(WX_USERS)?;
    Ok(())
}
