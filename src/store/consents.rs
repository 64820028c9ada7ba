//! 一次性订阅 consents: at most one unused consent per openid (WeChat does not add up repeated
//! consents either), recorded when the student agreed on WeChat's page and used up by the
//! first notice tried for them — in the same transaction that marks the try, so a restart
//! never spends a consent twice nor loses one silently.
//!
//! A notice keeps the consent it took (`Notice::consent`): a try cut short by a crash is
//! tried again with it, and a notice that fails for a reason other than WeChat saying the
//! student refused (43101) gives it back, since WeChat did not spend it either.

use redb::{ReadableDatabase, ReadableTable, WriteTransaction};
use serde::{Deserialize, Serialize};

use super::notices::{self, Notice, NoticeState, TryOutcome};
use super::tables::{NOTICE_CONSENTS, NOTICE_DUE};
use super::{Result, Store};

/// WeChat's errcode for "the user refused (or has no consent)": the consent is gone there.
const REFUSED: i64 = 43101;

/// One unused 一次性订阅 consent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Consent {
    /// The student the openid was bound to when the consent was given.
    pub student_id: String,
    pub template_id: String,
    pub scene: u32,
    /// Unix seconds.
    pub at: i64,
}

/// How claiming a notice in the 一次性订阅 channel went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OnceClaim {
    /// The try starts, with the consent the notice holds.
    Claimed(Box<Notice>),
    /// No consent for the template: the notice is now `Skipped`.
    NoConsent,
    /// Not pending or sending any more.
    Gone,
}

fn get(tx: &WriteTransaction, openid: &str) -> Result<Option<Consent>> {
    let t = tx.open_table(NOTICE_CONSENTS)?;
    let v = t.get(openid)?;
    match v {
        Some(v) => Ok(Some(serde_json::from_slice(v.value())?)),
        None => Ok(None),
    }
}

fn put(tx: &WriteTransaction, openid: &str, c: &Consent) -> Result<()> {
    let bytes = serde_json::to_vec(c)?;
    tx.open_table(NOTICE_CONSENTS)?
        .insert(openid, bytes.as_slice())?;
    Ok(())
}

impl Store {
    /// Record `openid`'s consent. False when an unused consent for the same template already
    /// stood (nothing changes: consents do not add up).
    pub fn record_consent(&self, openid: &str, consent: &Consent) -> Result<bool> {
        let tx = self.db().begin_write()?;
        if get(&tx, openid)?.is_some_and(|c| c.template_id == consent.template_id) {
            return Ok(false);
        }
        put(&tx, openid, consent)?;
        tx.commit()?;
        Ok(true)
    }

    /// `openid`'s unused consent, if any.
    pub fn consent(&self, openid: &str) -> Result<Option<Consent>> {
        let tx = self.db().begin_read()?;
        let t = tx.open_table(NOTICE_CONSENTS)?;
        let v = t.get(openid)?;
        match v {
            Some(v) => Ok(Some(serde_json::from_slice(v.value())?)),
            None => Ok(None),
        }
    }

    /// Forget `openid`'s consent (its WeChat data is being deleted). True when there was one.
    pub fn remove_consent(&self, openid: &str) -> Result<bool> {
        let tx = self.db().begin_write()?;
        let removed = tx.open_table(NOTICE_CONSENTS)?.remove(openid)?.is_some();
        tx.commit()?;
        Ok(removed)
    }

    /// Start a try of notice `id` in the 一次性订阅 channel: it takes its student's consent for
    /// `template_id` (unless it holds one from a try a crash cut short), or ends `Skipped`
    /// when there is none.
    pub fn claim_notice_once(&self, id: u64, now: i64, template_id: &str) -> Result<OnceClaim> {
        let tx = self.db().begin_write()?;
        let claim = claim_once_in(&tx, id, now, template_id)?;
        if claim != OnceClaim::Gone {
            tx.commit()?;
        }
        Ok(claim)
    }

    /// [`Store::finish_notice`] for the 一次性订阅 channel: a notice that failed for another
    /// reason than the student's refusal gives its consent back (unless a newer one stands).
    pub fn finish_notice_once(&self, id: u64, outcome: &TryOutcome, now: i64) -> Result<()> {
        let tx = self.db().begin_write()?;
        if finish_once_in(&tx, id, outcome, now)? {
            tx.commit()?;
        }
        Ok(())
    }
}

/// [`Store::claim_notice_once`] inside the caller's write transaction.
pub(super) fn claim_once_in(
    tx: &WriteTransaction,
    id: u64,
    now: i64,
    template_id: &str,
) -> Result<OnceClaim> {
    let Some(mut n) = notices::get_notice(tx, id)? else {
        return Ok(OnceClaim::Gone);
    };
    if !matches!(n.state, NoticeState::Pending | NoticeState::Sending) {
        return Ok(OnceClaim::Gone);
    }
    if n.consent.is_none() {
        match get(tx, &n.openid)? {
            Some(c) if c.template_id == template_id => {
                tx.open_table(NOTICE_CONSENTS)?.remove(n.openid.as_str())?;
                n.consent = Some(c);
            }
            _ => {
                tx.open_table(NOTICE_DUE)?.remove((n.due, n.id))?;
                n.state = NoticeState::Skipped;
                n.error = Some("no 一次性订阅 consent from the student".into());
                notices::put_notice(tx, &n)?;
                notices::bump(tx, "pending", -1)?;
                notices::bump(tx, "skipped", 1)?;
                return Ok(OnceClaim::NoConsent);
            }
        }
    }
    notices::start_try(&mut n, now);
    notices::put_notice(tx, &n)?;
    Ok(OnceClaim::Claimed(Box::new(n)))
}

/// [`Store::finish_notice_once`] inside the caller's write transaction. False when notice `id`
/// was not being tried (nothing written).
pub(super) fn finish_once_in(
    tx: &WriteTransaction,
    id: u64,
    outcome: &TryOutcome,
    now: i64,
) -> Result<bool> {
    let Some(n) = notices::finish_in(tx, id, outcome, now)? else {
        return Ok(false);
    };
    if let (TryOutcome::Failed { errcode, .. }, Some(c)) = (outcome, &n.consent) {
        if *errcode != Some(REFUSED) && get(tx, &n.openid)?.is_none() {
            put(tx, &n.openid, c)?;
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::notices::NewNotice;

    fn store(name: &str) -> Store {
        let d = std::env::temp_dir().join(format!("wxg-consents-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        Store::open(&d.join("x.redb")).unwrap()
    }

    fn consent(t: &str) -> Consent {
        Consent {
            student_id: "2023001".into(),
            template_id: t.into(),
            scene: 1,
            at: 100,
        }
    }

    fn notice(openid: &str) -> NewNotice {
        NewNotice {
            openid: openid.into(),
            student_id: "2023001".into(),
            name: String::new(),
            terms: vec!["2025-2026-1".into()],
            courses: vec!["高等数学".into()],
            import_id: 1,
        }
    }

    #[test]
    fn one_consent_one_notice_and_none_means_skipped() {
        let s = store("once");
        assert!(s.record_consent("oA", &consent("T")).unwrap());
        assert!(
            !s.record_consent("oA", &consent("T")).unwrap(),
            "does not add up"
        );
        s.enqueue_notices(&[notice("oA"), notice("oA"), notice("oB")])
            .unwrap();
        let OnceClaim::Claimed(n) = s.claim_notice_once(1, 200, "T").unwrap() else {
            panic!("the first notice takes the consent");
        };
        assert_eq!(n.consent, Some(consent("T")));
        assert_eq!(s.consent("oA").unwrap(), None, "used up");
        // A crash: the notice is tried again with the consent it holds.
        let OnceClaim::Claimed(n) = s.claim_notice_once(1, 201, "T").unwrap() else {
            panic!("tried again");
        };
        assert_eq!(n.in_doubt, 1);
        s.finish_notice_once(1, &TryOutcome::Sent { msg_id: Some(7) }, 202)
            .unwrap();
        assert_eq!(
            s.claim_notice_once(2, 203, "T").unwrap(),
            OnceClaim::NoConsent
        );
        assert_eq!(
            s.claim_notice_once(3, 203, "T").unwrap(),
            OnceClaim::NoConsent
        );
        assert_eq!(s.claim_notice_once(2, 204, "T").unwrap(), OnceClaim::Gone);
        let c = s.notice_counts().unwrap();
        assert_eq!((c.pending, c.sent, c.failed, c.skipped), (0, 1, 0, 2));
        assert!(s.next_due_notice(i64::MAX).unwrap().is_none());
    }

    #[test]
    fn a_failure_gives_the_consent_back_unless_refused() {
        let s = store("giveback");
        s.record_consent("oA", &consent("T")).unwrap();
        s.enqueue_notices(&[notice("oA"), notice("oA")]).unwrap();
        assert!(matches!(
            s.claim_notice_once(1, 1, "T").unwrap(),
            OnceClaim::Claimed(_)
        ));
        let bad_data = TryOutcome::Failed {
            errcode: Some(47003),
            error: "bad data".into(),
        };
        s.finish_notice_once(1, &bad_data, 2).unwrap();
        assert_eq!(s.consent("oA").unwrap(), Some(consent("T")));
        assert!(matches!(
            s.claim_notice_once(2, 3, "T").unwrap(),
            OnceClaim::Claimed(_)
        ));
        let refused = TryOutcome::Failed {
            errcode: Some(REFUSED),
            error: "refused".into(),
        };
        s.finish_notice_once(2, &refused, 4).unwrap();
        assert_eq!(s.consent("oA").unwrap(), None);
        // A consent for another template is no consent for this one.
        s.record_consent("oB", &consent("OLD")).unwrap();
        s.enqueue_notices(&[notice("oB")]).unwrap();
        assert_eq!(
            s.claim_notice_once(3, 5, "T").unwrap(),
            OnceClaim::NoConsent
        );
        assert!(s.record_consent("oB", &consent("T")).unwrap());
        assert!(s.remove_consent("oB").unwrap());
        assert_eq!(s.consent("oB").unwrap(), None);
    }
}
