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
/// Grade notices: id → JSON `store::notices::Notice`.
pub const NOTICES: TableDefinition<u64, &[u8]> = TableDefinition::new("notices_v1");
/// The notices still to send, by (due time, id).
pub const NOTICE_DUE: TableDefinition<(i64, u64), ()> = TableDefinition::new("notice_due_v1");
/// WeChat msgid of a sent notice → notice id (for TEMPLATESENDJOBFINISH).
pub const NOTICE_BY_MSGID: TableDefinition<u64, u64> = TableDefinition::new("notice_by_msgid_v1");
/// Notice counters for the dashboard: "pending", "sent", "failed".
pub const NOTICE_STATS: TableDefinition<&str, u64> = TableDefinition::new("notice_stats_v1");

pub(crate) fn create_all(tx: &WriteTransaction) -> Result<(), redb::TableError> {
    tx.open_table(META)?;
    tx.open_table(SESSIONS)?;
    tx.open_table(OAUTH_STATES)?;
    tx.open_table(WX_USERS)?;
    tx.open_table(NOTICES)?;
    tx.open_table(NOTICE_DUE)?;
    tx.open_table(NOTICE_BY_MSGID)?;
    tx.open_table(NOTICE_STATS)?;
    Ok(())
}
