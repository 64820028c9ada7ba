//! What the data file holds about one WeChat user beyond the roster and grades, for the
//! student's own view of it (PIPL): the log of web sign-ins (kept `[privacy] keep_signins_days`),
//! the grade-notice switch, and the one transaction that deletes their binding and WeChat data
//! (including the grade notices addressed to them; the dashboard's sent/failed counters stay,
//! they hold nothing personal).

use redb::{ReadableDatabase, ReadableTable, WriteTransaction};
use serde::{Deserialize, Serialize};

use super::auth::{Session, PURGE_BATCH};
use super::notices::{bump, Notice, NoticeState};
use super::students::{log_event, BindEvent, Binding};
use super::tables::{
    BINDINGS, BOUND, NOTICES, NOTICES_OFF, NOTICE_BY_MSGID, NOTICE_DUE, SESSIONS, SIGNINS, WX_USERS,
};
use super::{Result, Store};

/// One web sign-in, as the student's data export lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignIn {
    /// Unix seconds.
    pub at: i64,
    /// True when the sign-in asked for the nickname and avatar (snsapi_userinfo).
    pub userinfo: bool,
}

/// What [`Store::delete_wechat_data`] removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Deleted {
    /// The student ID the WeChat was bound to, if it was.
    pub student_id: Option<String>,
    pub sessions: usize,
    pub signins: usize,
    pub notices: usize,
}

/// Record a sign-in inside the transaction that opens its session.
pub(crate) fn record_signin_in(tx: &WriteTransaction, openid: &str, s: &SignIn) -> Result<()> {
    let v = serde_json::to_vec(s)?;
    tx.open_table(SIGNINS)?
        .insert((openid, s.at), v.as_slice())?;
    Ok(())
}

/// True when `openid` turned grade notices off (read inside an import's transaction, so the
/// notices it writes follow the switch as of that moment).
pub fn notices_off_in(tx: &WriteTransaction, openid: &str) -> Result<bool> {
    Ok(tx.open_table(NOTICES_OFF)?.get(openid)?.is_some())
}

/// Remove every grade notice addressed to `openid` with its indexes; one still to send leaves
/// the pending count (the sender finds it gone and moves on).
fn delete_notices_in(tx: &WriteTransaction, openid: &str) -> Result<usize> {
    let mut notices = tx.open_table(NOTICES)?;
    let mut theirs: Vec<Notice> = Vec::new();
    for item in notices.iter()? {
        let (_, v) = item?;
        if let Ok(n) = serde_json::from_slice::<Notice>(v.value()) {
            if n.openid == openid {
                theirs.push(n);
            }
        }
    }
    let mut due = tx.open_table(NOTICE_DUE)?;
    let mut by_msgid = tx.open_table(NOTICE_BY_MSGID)?;
    let mut pending = 0i64;
    for n in &theirs {
        notices.remove(n.id)?;
        if let Some(m) = n.msg_id {
            by_msgid.remove(m)?;
        }
        if matches!(n.state, NoticeState::Pending | NoticeState::Sending) {
            due.remove((n.due, n.id))?;
            pending += 1;
        }
    }
    drop((notices, due, by_msgid));
    bump(tx, "pending", -pending)?;
    Ok(theirs.len())
}

impl Store {
    /// The sign-ins of `openid`, oldest first, at most `limit`.
    pub fn signins(&self, openid: &str, limit: usize) -> Result<Vec<SignIn>> {
        let tx = self.db().begin_read()?;
        let t = tx.open_table(SIGNINS)?;
        let mut out = Vec::new();
        for item in t.range((openid, i64::MIN)..=(openid, i64::MAX))? {
            let (_, v) = item?;
            out.push(serde_json::from_slice(v.value())?);
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }

    /// Drop sign-ins older than `before` (unix seconds), [`PURGE_BATCH`] per transaction.
    pub fn purge_signins(&self, before: i64) -> Result<usize> {
        self.drop_where_batched(SIGNINS, PURGE_BATCH, |s: &SignIn| s.at < before)
    }

    /// Whether `openid` receives grade notices (on unless turned off).
    pub fn notices_on(&self, openid: &str) -> Result<bool> {
        let tx = self.db().begin_read()?;
        Ok(tx.open_table(NOTICES_OFF)?.get(openid)?.is_none())
    }

    /// Turn grade notices for `openid` on or off.
    pub fn set_notices(&self, openid: &str, on: bool, now: i64) -> Result<()> {
        let tx = self.db().begin_write()?;
        {
            let mut t = tx.open_table(NOTICES_OFF)?;
            if on {
                t.remove(openid)?;
            } else {
                t.insert(openid, now)?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Delete what is held about the WeChat user `openid`, in one transaction: the binding
    /// (logged as an unbind by `by`), nickname and avatar, sign-ins, the notice switch and every
    /// session. Grades and the roster entry stay: they are the school's records.
    pub fn delete_wechat_data(&self, openid: &str, now: i64, by: &str) -> Result<Deleted> {
        let mut out = Deleted::default();
        let tx = self.db().begin_write()?;
        {
            let removed = tx
                .open_table(BINDINGS)?
                .remove(openid)?
                .map(|v| v.value().to_vec());
            if let Some(v) = removed {
                let b: Binding = serde_json::from_slice(&v)?;
                tx.open_table(BOUND)?.remove(b.student_id.as_str())?;
                log_event(
                    &tx,
                    &BindEvent {
                        at: now,
                        openid: openid.into(),
                        student_id: b.student_id.clone(),
                        action: "unbind".into(),
                        by: by.into(),
                    },
                )?;
                out.student_id = Some(b.student_id);
            }
            tx.open_table(WX_USERS)?.remove(openid)?;
            tx.open_table(NOTICES_OFF)?.remove(openid)?;
            // An unused 一次性订阅 consent is WeChat data about this user too.
            tx.open_table(super::tables::NOTICE_CONSENTS)?
                .remove(openid)?;
            let mut signins = tx.open_table(SIGNINS)?;
            let keys: Vec<i64> = signins
                .range((openid, i64::MIN)..=(openid, i64::MAX))?
                .map(|item| item.map(|(k, _)| k.value().1))
                .collect::<std::result::Result<_, _>>()?;
            for at in &keys {
                signins.remove((openid, *at))?;
            }
            out.signins = keys.len();
            let mut sessions = tx.open_table(SESSIONS)?;
            let mut mine = Vec::new();
            for item in sessions.iter()? {
                let (k, v) = item?;
                let theirs = serde_json::from_slice::<Session>(v.value())
                    .map(|s| s.openid == openid)
                    .unwrap_or(false);
                if theirs {
                    mine.push(k.value().to_vec());
                }
            }
            for k in &mine {
                sessions.remove(k.as_slice())?;
            }
            out.sessions = mine.len();
            out.notices = delete_notices_in(&tx, openid)?;
        }
        tx.commit()?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(name: &str) -> Store {
        let d = std::env::temp_dir().join(format!("wxg-privacy-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        Store::open(&d.join("x.redb")).unwrap()
    }

    fn sign_in(s: &Store, openid: &str, at: i64, hash: u8) {
        let session = Session {
            openid: openid.into(),
            created: at,
            expires: at + 3600,
        };
        s.complete_login(openid, &[hash; 32], &session, None)
            .unwrap();
    }

    #[test]
    fn signins_are_kept_per_user_and_swept_by_age() {
        let s = store("sweep");
        sign_in(&s, "oA", 100, 1);
        sign_in(&s, "oA", 5000, 2);
        sign_in(&s, "oB", 200, 3);
        assert_eq!(s.signins("oA", 10).unwrap().len(), 2);
        assert_eq!(s.purge_signins(1000).unwrap(), 2);
        assert_eq!(
            s.signins("oA", 10).unwrap(),
            vec![SignIn {
                at: 5000,
                userinfo: false
            }]
        );
        assert!(s.signins("oB", 10).unwrap().is_empty());
        assert_eq!(s.purge_signins(1000).unwrap(), 0);
    }

    #[test]
    fn delete_removes_the_users_data_and_nothing_else() {
        let s = store("delete");
        sign_in(&s, "oA", 100, 1);
        sign_in(&s, "oB", 100, 2);
        assert_eq!(
            s.bind("oA", "2024001", 100).unwrap(),
            super::super::students::BindResult::Bound
        );
        s.set_notices("oA", false, 100).unwrap();
        let notice = |openid: &str| super::super::notices::NewNotice {
            openid: openid.into(),
            student_id: "2024001".into(),
            name: "张三".into(),
            terms: vec!["2024-2025-1".into()],
            courses: vec!["高等数学".into()],
            import_id: 1,
        };
        s.enqueue_notices(&[notice("oA"), notice("oB"), notice("oA")])
            .unwrap();
        assert_eq!(s.notice_counts().unwrap().pending, 3);
        let d = s.delete_wechat_data("oA", 200, "student").unwrap();
        assert_eq!(d.notices, 2);
        let left = s.notices().unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].openid, "oB");
        assert_eq!(s.notice_counts().unwrap().pending, 1);
        assert_eq!(
            s.next_due_notice(i64::MAX).unwrap().map(|n| n.openid),
            Some("oB".into())
        );
        assert_eq!(d.student_id.as_deref(), Some("2024001"));
        assert_eq!((d.sessions, d.signins), (1, 1));
        assert!(s.binding("oA").unwrap().is_none());
        assert!(s.bound_openid("2024001").unwrap().is_none());
        assert!(s.notices_on("oA").unwrap());
        assert!(s.session(&[1; 32]).unwrap().is_none());
        assert!(s.session(&[2; 32]).unwrap().is_some());
        assert_eq!(s.signins("oB", 10).unwrap().len(), 1);
        assert_eq!(s.bind_events("2024001", 10).unwrap()[0].action, "unbind");
    }
}
