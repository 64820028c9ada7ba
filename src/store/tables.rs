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
/// Notice counters for the dashboard: "pending", "sent", "failed", "skipped".
pub const NOTICE_STATS: TableDefinition<&str, u64> = TableDefinition::new("notice_stats_v1");
/// openid → JSON `store::consents::Consent`: an unused 一次性订阅 consent (at most one each).
pub const NOTICE_CONSENTS: TableDefinition<&str, &[u8]> =
    TableDefinition::new("notice_consents_v1");

/// student_id → JSON `Student` (the verification value only as a keyed hash).
pub const STUDENTS: TableDefinition<&str, &[u8]> = TableDefinition::new("students_v1");
/// openid → JSON `Binding`.
pub const BINDINGS: TableDefinition<&str, &[u8]> = TableDefinition::new("bindings_v1");
/// student_id → openid (the other direction of `BINDINGS`, kept in the same transactions).
pub const BOUND: TableDefinition<&str, &str> = TableDefinition::new("bound_v1");
/// sequence → JSON `BindEvent`: every bind and unbind with its time.
pub const BIND_LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("bind_log_v1");
/// "student_id␟term␟course_code␟kind" → "course_name␟credit_hundredths␟score".
pub const GRADES: TableDefinition<&str, &str> = TableDefinition::new("grades_v1");
/// import id → JSON `ImportRecord` (history).
pub const IMPORTS: TableDefinition<u64, &[u8]> = TableDefinition::new("imports_v1");
/// Release id (the id of the import that staged it) → JSON `store::releases::Release`.
pub const RELEASES: TableDefinition<u64, &[u8]> = TableDefinition::new("releases_v1");
/// (release id, grade key) → the grade value to publish, or "" to remove the row.
pub const RELEASE_ROWS: TableDefinition<(u64, &str), &str> =
    TableDefinition::new("release_rows_v1");
/// The scheduled releases, by (publish time, release id).
pub const RELEASE_DUE: TableDefinition<(i64, u64), ()> = TableDefinition::new("release_due_v1");
/// (student_id, sequence) → JSON `store::corrections::Correction` (成绩更正).
pub const CORRECTIONS: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("corrections_v1");

/// (openid, unix seconds) → JSON `SignIn`: each web sign-in, kept `[privacy] keep_signins_days`.
pub const SIGNINS: TableDefinition<(&str, i64), &[u8]> = TableDefinition::new("signins_v1");
/// openid → unix seconds the student turned grade notices off (absent: notices on).
pub const NOTICES_OFF: TableDefinition<&str, i64> = TableDefinition::new("notices_off_v1");
/// student_id → JSON `store::ranks::Rank` (place and group size by overall GPA).
pub const RANKS: TableDefinition<&str, &[u8]> = TableDefinition::new("ranks_v1");
/// preset name → JSON `store::presets::Preset`: a saved column mapping for imports.
pub const IMPORT_PRESETS: TableDefinition<&str, &[u8]> = TableDefinition::new("import_presets_v1");

/// admin name → JSON `AdminAccount` (argon2id PHC hash, never the password).
pub const ADMINS: TableDefinition<&str, &[u8]> = TableDefinition::new("admins_v1");
/// sha256(admin session id) → JSON `AdminSessionRecord`.
pub const ADMIN_SESSIONS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("admin_sessions_v1");
/// sequence → JSON `AuditEvent`: admin logins, imports, unbinds, backups.
pub const AUDIT: TableDefinition<u64, &[u8]> = TableDefinition::new("audit_v1");

pub(crate) fn create_all(tx: &WriteTransaction) -> Result<(), redb::TableError> {
    tx.open_table(META)?;
    tx.open_table(SESSIONS)?;
    tx.open_table(OAUTH_STATES)?;
    tx.open_table(WX_USERS)?;
    tx.open_table(NOTICES)?;
    tx.open_table(NOTICE_DUE)?;
    tx.open_table(NOTICE_BY_MSGID)?;
    tx.open_table(NOTICE_STATS)?;
    tx.open_table(NOTICE_CONSENTS)?;
    tx.open_table(STUDENTS)?;
    tx.open_table(BINDINGS)?;
    tx.open_table(BOUND)?;
    tx.open_table(BIND_LOG)?;
    tx.open_table(GRADES)?;
    tx.open_table(IMPORTS)?;
    tx.open_table(IMPORT_PRESETS)?;
    tx.open_table(RELEASES)?;
    tx.open_table(RELEASE_ROWS)?;
    tx.open_table(RELEASE_DUE)?;
    tx.open_table(CORRECTIONS)?;
    tx.open_table(ADMINS)?;
    tx.open_table(ADMIN_SESSIONS)?;
    tx.open_table(AUDIT)?;
    tx.open_table(SIGNINS)?;
    tx.open_table(NOTICES_OFF)?;
    tx.open_table(RANKS)?;
    Ok(())
}
