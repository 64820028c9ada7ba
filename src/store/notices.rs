//! The grade-notice outbox: notices written in the import's own transaction
//! ([`enqueue_in`]), a due-time queue the sender works through, the outcome of each try, the
//! WeChat msgid of every accepted notice (for `TEMPLATESENDJOBFINISH`), and counters for the
//! dashboard.
//!
//! States: `Pending` (due at `due`) → `Sending` (claimed for a try; recorded durably *before*
//! the call, possibly in a batch with other notices, see `store::notice_batch`) → `Sent` |
//! `Failed`, or back to `Pending` with a later `due` after a transient failure (or, unsent, when
//! the sender stops or pauses). A notice found in `Sending` by a new process was cut short by a
//! crash — or claimed and not yet sent: the sender tries it again (see `service::notices` for
//! why that delivers once). In the 一次性订阅 channel a
//! notice whose student gave no consent ends `Skipped` (counted, not failed); see
//! `store::consents`.

use redb::{ReadableDatabase, ReadableTable, WriteTransaction};
use serde::{Deserialize, Serialize};

use super::tables::{NOTICES, NOTICE_BY_MSGID, NOTICE_DUE, NOTICE_STATS};
use super::{Result, Store, StoreError};

/// A notice to write: one per bound student whose grades an import added or changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewNotice {
    pub openid: String,
    pub student_id: String,
    /// The student's name (from the roster; may be empty).
    pub name: String,
    /// Terms touched, newest first (`2025-2026-1`).
    pub terms: Vec<String>,
    /// Names of the courses added or changed.
    pub courses: Vec<String>,
    pub import_id: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum NoticeState {
    Pending,
    Sending,
    Sent,
    Failed,
    /// Not sent and never will be: the channel needs the student's consent and there was none.
    Skipped,
}

/// A stored notice and its delivery record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notice {
    pub id: u64,
    pub openid: String,
    pub student_id: String,
    #[serde(default)]
    pub name: String,
    /// Terms touched, newest first.
    pub terms: Vec<String>,
    pub courses: Vec<String>,
    pub import_id: u64,
    pub state: NoticeState,
    /// Unix seconds when written.
    pub created: i64,
    /// When it is next due (meaningful while Pending or Sending).
    pub due: i64,
    /// Tries started, including tries a crash cut short.
    pub attempts: u32,
    /// Transient failures so far (the sender gives up after a bound).
    pub failures: u32,
    /// Claims a crash cut short, so a try's outcome was hidden (each was tried again). A notice
    /// claimed in a batch and not yet sent at the crash counts too: the claim cannot tell.
    pub in_doubt: u32,
    pub last_attempt: Option<i64>,
    pub errcode: Option<i64>,
    pub error: Option<String>,
    /// WeChat's msgid once accepted.
    pub msg_id: Option<u64>,
    pub sent_at: Option<i64>,
    /// The `Status` of WeChat's TEMPLATESENDJOBFINISH event (`success`, `failed:user block` …).
    pub delivery: Option<String>,
    /// The 一次性订阅 consent this notice used up (taken when its first try began).
    #[serde(default)]
    pub consent: Option<super::consents::Consent>,
}

impl Notice {
    /// The `client_msg_id` sent with every try of this notice: WeChat sends one message per
    /// openid + client_msg_id within 10 minutes, so a try repeated after a crash is not
    /// delivered twice. Unique across data files (the creation time is part of it).
    pub fn client_msg_id(&self) -> String {
        format!("wxgrades-{}-{}", self.created, self.id)
    }
}

/// How a try ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TryOutcome {
    /// WeChat accepted it.
    Sent { msg_id: Option<u64> },
    /// Will never succeed (user does not follow, refuses messages, bad openid, bad template).
    Failed { errcode: Option<i64>, error: String },
    /// Try again at `due`. `failure` counts it towards the give-up bound (quota waits do not).
    Retry {
        due: i64,
        errcode: Option<i64>,
        error: String,
        failure: bool,
    },
}

/// Notices by state, for the dashboard. `pending` includes a notice being sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NoticeCounts {
    pub pending: u64,
    pub sent: u64,
    pub failed: u64,
    /// Not sent for want of the student's consent (一次性订阅消息).
    pub skipped: u64,
}

fn now_unix() -> i64 {
    crate::clock::unix_now()
}

pub(crate) fn bump(tx: &WriteTransaction, key: &str, delta: i64) -> Result<()> {
    let mut t = tx.open_table(NOTICE_STATS)?;
    let old = t.get(key)?.map(|v| v.value()).unwrap_or(0);
    let new = if delta >= 0 {
        old.saturating_add(delta as u64)
    } else {
        old.saturating_sub(delta.unsigned_abs())
    };
    t.insert(key, new)?;
    Ok(())
}

pub(super) fn get_notice(tx: &WriteTransaction, id: u64) -> Result<Option<Notice>> {
    let t = tx.open_table(NOTICES)?;
    let v = t.get(id)?;
    match v {
        Some(v) => Ok(Some(serde_json::from_slice(v.value())?)),
        None => Ok(None),
    }
}

pub(super) fn put_notice(tx: &WriteTransaction, n: &Notice) -> Result<()> {
    let bytes = serde_json::to_vec(n)?;
    tx.open_table(NOTICES)?.insert(n.id, bytes.as_slice())?;
    Ok(())
}

/// Write `notices` as pending, inside the caller's write transaction (the import's, so that
/// grades and their notices commit together). Returns the new notices' ids. The caller should
/// write none when `wechat.grades_template_id` is empty (`service::notices::enabled`), and
/// wake the sender after the commit (`service::notices::wake`).
pub fn enqueue_in(tx: &WriteTransaction, notices: &[NewNotice]) -> Result<Vec<u64>> {
    let now = now_unix();
    let first = {
        let t = tx.open_table(NOTICES)?;
        let last = t.last()?.map(|(k, _)| k.value());
        last.map_or(1, |k| k + 1)
    };
    let mut ids = Vec::with_capacity(notices.len());
    for (next, n) in (first..).zip(notices) {
        if n.openid.is_empty() {
            return Err(StoreError::Decode(format!(
                "notice for student {} has no openid",
                n.student_id
            )));
        }
        let notice = Notice {
            id: next,
            openid: n.openid.clone(),
            student_id: n.student_id.clone(),
            name: n.name.clone(),
            terms: n.terms.clone(),
            courses: n.courses.clone(),
            import_id: n.import_id,
            state: NoticeState::Pending,
            created: now,
            due: now,
            attempts: 0,
            failures: 0,
            in_doubt: 0,
            last_attempt: None,
            errcode: None,
            error: None,
            msg_id: None,
            sent_at: None,
            delivery: None,
            consent: None,
        };
        put_notice(tx, &notice)?;
        tx.open_table(NOTICE_DUE)?.insert((now, next), ())?;
        ids.push(next);
    }
    bump(tx, "pending", ids.len() as i64)?;
    Ok(ids)
}

/// Mark `n` as being tried from `now` on. False when it is no longer pending or sending.
pub(super) fn start_try(n: &mut Notice, now: i64) -> bool {
    match n.state {
        NoticeState::Pending => {}
        // A try that a crash cut short: its outcome is unknown.
        NoticeState::Sending => n.in_doubt += 1,
        NoticeState::Sent | NoticeState::Failed | NoticeState::Skipped => return false,
    }
    n.state = NoticeState::Sending;
    n.attempts = n.attempts.saturating_add(1);
    n.last_attempt = Some(now);
    true
}

/// Record in `tx` how the try of notice `id` ended; the notice as recorded, or `None` when it
/// was not being tried (nothing written).
pub(super) fn finish_in(
    tx: &WriteTransaction,
    id: u64,
    outcome: &TryOutcome,
    now: i64,
) -> Result<Option<Notice>> {
    let Some(mut n) = get_notice(tx, id)? else {
        return Ok(None);
    };
    if !matches!(n.state, NoticeState::Pending | NoticeState::Sending) {
        return Ok(None);
    }
    tx.open_table(NOTICE_DUE)?.remove((n.due, n.id))?;
    match outcome {
        TryOutcome::Sent { msg_id } => {
            n.state = NoticeState::Sent;
            n.msg_id = *msg_id;
            n.sent_at = Some(now);
            n.errcode = None;
            n.error = None;
            if let Some(m) = msg_id {
                tx.open_table(NOTICE_BY_MSGID)?.insert(*m, n.id)?;
            }
            bump(tx, "pending", -1)?;
            bump(tx, "sent", 1)?;
        }
        TryOutcome::Failed { errcode, error } => {
            n.state = NoticeState::Failed;
            n.errcode = *errcode;
            n.error = Some(error.clone());
            bump(tx, "pending", -1)?;
            bump(tx, "failed", 1)?;
        }
        TryOutcome::Retry {
            due,
            errcode,
            error,
            failure,
        } => {
            n.state = NoticeState::Pending;
            n.due = *due;
            n.errcode = *errcode;
            n.error = Some(error.clone());
            if *failure {
                n.failures = n.failures.saturating_add(1);
            }
            tx.open_table(NOTICE_DUE)?.insert((n.due, n.id), ())?;
        }
    }
    put_notice(tx, &n)?;
    Ok(Some(n))
}

impl Store {
    /// [`enqueue_in`] in a transaction of its own.
    pub fn enqueue_notices(&self, notices: &[NewNotice]) -> Result<Vec<u64>> {
        let tx = self.db().begin_write()?;
        let ids = enqueue_in(&tx, notices)?;
        tx.commit()?;
        Ok(ids)
    }

    pub fn notice(&self, id: u64) -> Result<Option<Notice>> {
        let tx = self.db().begin_read()?;
        let t = tx.open_table(NOTICES)?;
        let v = t.get(id)?;
        match v {
            Some(v) => Ok(Some(serde_json::from_slice(v.value())?)),
            None => Ok(None),
        }
    }

    /// The notice due first, if it is due at `now`.
    pub fn next_due_notice(&self, now: i64) -> Result<Option<Notice>> {
        let tx = self.db().begin_read()?;
        let due = tx.open_table(NOTICE_DUE)?;
        let first = due.first()?.map(|(k, _)| k.value());
        let Some((at, id)) = first else {
            return Ok(None);
        };
        if at > now {
            return Ok(None);
        }
        let t = tx.open_table(NOTICES)?;
        let v = t.get(id)?;
        match v {
            Some(v) => Ok(Some(serde_json::from_slice(v.value())?)),
            None => Err(StoreError::Decode(format!(
                "queued notice {id} has no record"
            ))),
        }
    }

    /// Record that a try of notice `id` starts now (durably, before the call to WeChat).
    /// Returns the notice as updated, or `None` when it is no longer pending or sending.
    pub fn claim_notice(&self, id: u64, now: i64) -> Result<Option<Notice>> {
        let tx = self.db().begin_write()?;
        let Some(mut n) = get_notice(&tx, id)? else {
            return Ok(None);
        };
        if !start_try(&mut n, now) {
            return Ok(None);
        }
        put_notice(&tx, &n)?;
        tx.commit()?;
        Ok(Some(n))
    }

    /// Record how the try of notice `id` ended.
    pub fn finish_notice(&self, id: u64, outcome: &TryOutcome, now: i64) -> Result<()> {
        let tx = self.db().begin_write()?;
        if finish_in(&tx, id, outcome, now)?.is_some() {
            tx.commit()?;
        }
        Ok(())
    }

    /// WeChat's TEMPLATESENDJOBFINISH for `msg_id`: record its `status`; a `failed…` status
    /// turns a sent notice into a failed one. Returns false when no notice has that msgid or
    /// the status was already recorded (a repeated event changes nothing).
    pub fn notice_delivery(&self, msg_id: u64, status: &str) -> Result<bool> {
        let tx = self.db().begin_write()?;
        let id = tx
            .open_table(NOTICE_BY_MSGID)?
            .get(msg_id)?
            .map(|v| v.value());
        let Some(id) = id else {
            return Ok(false);
        };
        let Some(mut n) = get_notice(&tx, id)? else {
            return Ok(false);
        };
        if n.delivery.is_some() || n.state != NoticeState::Sent {
            return Ok(false);
        }
        let status: String = status.chars().take(100).collect();
        if status.starts_with("failed") {
            n.state = NoticeState::Failed;
            n.error = Some(format!("WeChat could not deliver it: {status}"));
            bump(&tx, "sent", -1)?;
            bump(&tx, "failed", 1)?;
        }
        n.delivery = Some(status);
        put_notice(&tx, &n)?;
        tx.commit()?;
        Ok(true)
    }

    pub fn notice_counts(&self) -> Result<NoticeCounts> {
        let tx = self.db().begin_read()?;
        let t = tx.open_table(NOTICE_STATS)?;
        let get = |k: &str| -> Result<u64> { Ok(t.get(k)?.map(|v| v.value()).unwrap_or(0)) };
        Ok(NoticeCounts {
            pending: get("pending")?,
            sent: get("sent")?,
            failed: get("failed")?,
            skipped: get("skipped")?,
        })
    }

    /// Every notice, oldest first (tests and the admin pages; the outbox is small).
    pub fn notices(&self) -> Result<Vec<Notice>> {
        let tx = self.db().begin_read()?;
        let t = tx.open_table(NOTICES)?;
        let mut out = Vec::new();
        for row in t.iter()? {
            let (_, v) = row?;
            out.push(serde_json::from_slice(v.value())?);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(name: &str) -> Store {
        let d = std::env::temp_dir().join(format!("wxg-notices-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        Store::open(&d.join("x.redb")).unwrap()
    }

    fn new(openid: &str) -> NewNotice {
        NewNotice {
            openid: openid.into(),
            student_id: "2023001".into(),
            name: "林小雨".into(),
            terms: vec!["2025-2026-1".into()],
            courses: vec!["高等数学".into()],
            import_id: 7,
        }
    }

    #[test]
    fn lifecycle_and_counts() {
        let s = store("life");
        let ids = s.enqueue_notices(&[new("oA"), new("oB")]).unwrap();
        assert_eq!(ids, vec![1, 2]);
        let c = s.notice_counts().unwrap();
        assert_eq!((c.pending, c.sent, c.failed), (2, 0, 0));
        let now = now_unix();
        let first = s.next_due_notice(now).unwrap().unwrap();
        assert_eq!(first.id, 1);
        assert!(s.next_due_notice(now - 100).unwrap().is_none());

        let claimed = s.claim_notice(1, now).unwrap().unwrap();
        assert_eq!(claimed.state, NoticeState::Sending);
        assert_eq!(claimed.attempts, 1);
        s.finish_notice(1, &TryOutcome::Sent { msg_id: Some(4242) }, now)
            .unwrap();
        s.claim_notice(2, now).unwrap().unwrap();
        s.finish_notice(
            2,
            &TryOutcome::Retry {
                due: now + 60,
                errcode: Some(-1),
                error: "busy".into(),
                failure: true,
            },
            now,
        )
        .unwrap();
        assert!(s.next_due_notice(now).unwrap().is_none());
        let again = s.next_due_notice(now + 60).unwrap().unwrap();
        assert_eq!((again.id, again.failures), (2, 1));
        s.claim_notice(2, now + 60).unwrap().unwrap();
        s.finish_notice(
            2,
            &TryOutcome::Failed {
                errcode: Some(43004),
                error: "not following".into(),
            },
            now + 60,
        )
        .unwrap();
        let c = s.notice_counts().unwrap();
        assert_eq!((c.pending, c.sent, c.failed), (0, 1, 1));
        // Finishing again changes nothing.
        s.finish_notice(1, &TryOutcome::Sent { msg_id: None }, now)
            .unwrap();
        assert_eq!(s.notice_counts().unwrap(), c);

        // The job-finish event, twice.
        assert!(s.notice_delivery(4242, "failed:user block").unwrap());
        assert!(!s.notice_delivery(4242, "failed:user block").unwrap());
        assert!(!s.notice_delivery(1, "success").unwrap());
        let c = s.notice_counts().unwrap();
        assert_eq!((c.pending, c.sent, c.failed), (0, 0, 2));
        assert_eq!(
            s.notice(1).unwrap().unwrap().delivery.as_deref(),
            Some("failed:user block")
        );
    }

    #[test]
    fn a_try_cut_short_is_in_doubt() {
        let s = store("doubt");
        s.enqueue_notices(&[new("oA")]).unwrap();
        let now = now_unix();
        s.claim_notice(1, now).unwrap().unwrap();
        // "Crash": the notice is still due, and the next claim marks the doubt.
        let n = s.next_due_notice(now).unwrap().unwrap();
        assert_eq!(n.state, NoticeState::Sending);
        let n = s.claim_notice(1, now + 1).unwrap().unwrap();
        assert_eq!((n.attempts, n.in_doubt), (2, 1));
        assert_eq!(n.client_msg_id(), format!("wxgrades-{}-1", n.created));
    }
}
