//! The grade-notice sender's batched writes (issue 12): ONE write transaction records how the
//! tries that ended went, hands back claimed notices that will not be sent now, and claims the
//! next notices due. The sender so needs a few write transactions per batch instead of two per
//! notice, which matters on release day, when sign-ins and binds keep redb's single writer busy.
//!
//! Every part keeps the per-notice rules of `store::notices` and `store::consents`:
//! - a claim marks a notice `Sending` durably, before any call to WeChat (a notice found
//!   `Sending` by a new process is in doubt and tried again with the same `client_msg_id`);
//! - an outcome is recorded exactly as [`Store::finish_notice`] records it (state, counters, the
//!   msgid index for `TEMPLATESENDJOBFINISH`);
//! - a notice handed back ([`Returned`]) was never put on the wire: it is `Pending` again and its
//!   claim does not count as a try;
//! - in the 一次性订阅 channel a claim takes the student's consent (or ends the notice
//!   `Skipped`), and a failure other than refusal gives it back. A batch claims no notice for an
//!   openid whose earlier notice is still held by the sender, nor two for one openid, so each
//!   consent is used exactly as if the notices went one at a time.

use std::collections::HashSet;

use redb::{ReadableTable, WriteTransaction};

use super::consents::{self, OnceClaim};
use super::notices::{self, Notice, NoticeState, TryOutcome};
use super::tables::NOTICE_DUE;
use super::{Result, Store};

/// A try that ended, to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    pub id: u64,
    pub outcome: TryOutcome,
    /// Unix seconds (the sender's clock) when it ended.
    pub at: i64,
}

/// A claimed notice handed back unsent (the sender stops or pauses): `Pending` again, with the
/// attempt count and last attempt it had before its claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Returned {
    pub id: u64,
    pub last_attempt: Option<i64>,
}

/// Which channel's claim and finish rules apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchChannel<'a> {
    /// 模板消息 and 订阅通知: no consent involved.
    Plain,
    /// 一次性订阅消息: each claim takes a consent for this template id.
    Once { template_id: &'a str },
}

/// What one batch transaction does.
#[derive(Debug, Clone, Copy)]
pub struct BatchPlan<'a> {
    pub finished: &'a [Finished],
    pub returned: &'a [Returned],
    /// How many due notices to claim at most (the caller bounds it).
    pub claim: usize,
    /// Notices the sender holds (claimed, outcome not yet recorded): (id, openid). Never
    /// claimed again; in the 一次性订阅 channel their openids are not claimed either.
    pub held: &'a [(u64, String)],
    pub now: i64,
    pub channel: BatchChannel<'a>,
}

/// A notice claimed for a try.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    /// As recorded: `Sending`, its attempt counted.
    pub notice: Notice,
    /// It was found `Sending`: an earlier try was cut short by a crash (`in_doubt` counted it).
    pub cut_short: bool,
    /// Its last attempt before this claim (to hand it back unchanged, see [`Returned`]).
    pub last_attempt_before: Option<i64>,
}

impl Claimed {
    /// How to hand this notice back unsent.
    pub fn returned(&self) -> Returned {
        Returned {
            id: self.notice.id,
            last_attempt: self.last_attempt_before,
        }
    }
}

/// What one batch transaction did.
#[derive(Debug, Default)]
pub struct BatchDone {
    /// Claimed, in due order.
    pub claimed: Vec<Claimed>,
    /// Ended `Skipped` at their claim: no 一次性订阅 consent.
    pub skipped: Vec<Notice>,
}

/// Undo the claim of notice `r.id` in `tx` if it is still `Sending`. False when it is not.
fn return_in(tx: &WriteTransaction, r: &Returned) -> Result<bool> {
    let Some(mut n) = notices::get_notice(tx, r.id)? else {
        return Ok(false);
    };
    if n.state != NoticeState::Sending {
        return Ok(false);
    }
    n.state = NoticeState::Pending;
    n.attempts = n.attempts.saturating_sub(1);
    n.last_attempt = r.last_attempt;
    notices::put_notice(tx, &n)?;
    Ok(true)
}

/// The first due entries (due ≤ `now`) not held, at most `limit`.
fn due_entries(
    tx: &WriteTransaction,
    now: i64,
    held: &HashSet<u64>,
    limit: usize,
) -> Result<Vec<(i64, u64)>> {
    let t = tx.open_table(NOTICE_DUE)?;
    let mut out = Vec::new();
    for row in t.range(..=(now, u64::MAX))? {
        if out.len() >= limit {
            break;
        }
        let (k, _) = row?;
        let (at, id) = k.value();
        if !held.contains(&id) {
            out.push((at, id));
        }
    }
    Ok(out)
}

impl Store {
    /// One write transaction: record `plan.finished`, hand back `plan.returned`, then claim up
    /// to `plan.claim` notices due at `plan.now` (oldest due first). Nothing is written when it
    /// fails.
    pub fn notice_batch(&self, plan: &BatchPlan<'_>) -> Result<BatchDone> {
        let tx = self.db().begin_write()?;
        for f in plan.finished {
            match plan.channel {
                BatchChannel::Plain => {
                    notices::finish_in(&tx, f.id, &f.outcome, f.at)?;
                }
                BatchChannel::Once { .. } => {
                    consents::finish_once_in(&tx, f.id, &f.outcome, f.at)?;
                }
            }
        }
        for r in plan.returned {
            return_in(&tx, r)?;
        }
        let mut done = BatchDone::default();
        if plan.claim > 0 {
            let held_ids: HashSet<u64> = plan.held.iter().map(|(id, _)| *id).collect();
            let held_openids: HashSet<&str> = plan.held.iter().map(|(_, o)| o.as_str()).collect();
            // A few more entries than wanted, so that notices passed over (an openid already
            // held) do not shrink the batch much.
            let entries = due_entries(&tx, plan.now, &held_ids, plan.claim.saturating_add(16))?;
            let mut claimed_openids: Vec<String> = Vec::new();
            for (_, id) in entries {
                if done.claimed.len() + done.skipped.len() >= plan.claim {
                    break;
                }
                let Some(before) = notices::get_notice(&tx, id)? else {
                    continue;
                };
                let cut_short = before.state == NoticeState::Sending;
                match plan.channel {
                    BatchChannel::Plain => {
                        let mut n = before.clone();
                        if !notices::start_try(&mut n, plan.now) {
                            continue;
                        }
                        notices::put_notice(&tx, &n)?;
                        done.claimed.push(Claimed {
                            notice: n,
                            cut_short,
                            last_attempt_before: before.last_attempt,
                        });
                    }
                    BatchChannel::Once { template_id } => {
                        if held_openids.contains(before.openid.as_str())
                            || claimed_openids.contains(&before.openid)
                        {
                            continue;
                        }
                        match consents::claim_once_in(&tx, id, plan.now, template_id)? {
                            OnceClaim::Claimed(n) => {
                                claimed_openids.push(n.openid.clone());
                                done.claimed.push(Claimed {
                                    notice: *n,
                                    cut_short,
                                    last_attempt_before: before.last_attempt,
                                });
                            }
                            OnceClaim::NoConsent => {
                                let mut n = before;
                                n.state = NoticeState::Skipped;
                                done.skipped.push(n);
                            }
                            OnceClaim::Gone => {}
                        }
                    }
                }
            }
        }
        tx.commit()?;
        Ok(done)
    }
}

impl Store {
    /// Hold redb's single writer for `d` and write nothing: how tests and benchmarks make the
    /// writer as busy as sign-ins and binds make it on release day.
    pub fn hold_writer(&self, d: std::time::Duration) -> Result<()> {
        let tx = self.db().begin_write()?;
        std::thread::sleep(d);
        tx.abort()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::consents::Consent;
    use crate::store::notices::NewNotice;

    fn store(name: &str) -> Store {
        let d = std::env::temp_dir().join(format!("wxg-batch-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        Store::open(&d.join("x.redb")).unwrap()
    }

    fn new(openid: &str) -> NewNotice {
        NewNotice {
            openid: openid.into(),
            student_id: format!("S{openid}"),
            name: String::new(),
            terms: vec!["2025-2026-1".into()],
            courses: vec!["高等数学".into()],
            import_id: 3,
        }
    }

    fn plan<'a>(
        finished: &'a [Finished],
        returned: &'a [Returned],
        claim: usize,
        held: &'a [(u64, String)],
        channel: BatchChannel<'a>,
    ) -> BatchPlan<'a> {
        BatchPlan {
            finished,
            returned,
            claim,
            held,
            now: i64::MAX / 2,
            channel,
        }
    }

    #[test]
    fn one_transaction_records_outcomes_and_claims_the_next() {
        let s = store("plain");
        s.enqueue_notices(&[new("oA"), new("oB"), new("oC"), new("oD")])
            .unwrap();
        let done = s
            .notice_batch(&plan(&[], &[], 2, &[], BatchChannel::Plain))
            .unwrap();
        let ids: Vec<u64> = done.claimed.iter().map(|c| c.notice.id).collect();
        assert_eq!(ids, vec![1, 2]);
        assert!(done
            .claimed
            .iter()
            .all(|c| c.notice.state == NoticeState::Sending && !c.cut_short));
        let held: Vec<(u64, String)> = done
            .claimed
            .iter()
            .map(|c| (c.notice.id, c.notice.openid.clone()))
            .collect();
        // Held notices are never claimed twice.
        let next = s
            .notice_batch(&plan(&[], &[], 5, &held, BatchChannel::Plain))
            .unwrap();
        let ids: Vec<u64> = next.claimed.iter().map(|c| c.notice.id).collect();
        assert_eq!(ids, vec![3, 4]);
        let finished = [
            Finished {
                id: 1,
                outcome: TryOutcome::Sent { msg_id: Some(11) },
                at: 5,
            },
            Finished {
                id: 2,
                outcome: TryOutcome::Failed {
                    errcode: Some(43004),
                    error: "not following".into(),
                },
                at: 5,
            },
        ];
        let returned: Vec<Returned> = next.claimed.iter().map(Claimed::returned).collect();
        let last = s
            .notice_batch(&plan(&finished, &returned, 0, &[], BatchChannel::Plain))
            .unwrap();
        assert!(last.claimed.is_empty());
        let c = s.notice_counts().unwrap();
        assert_eq!((c.pending, c.sent, c.failed), (2, 1, 1));
        // Handed back: pending again, the claim not counted as a try.
        for id in [3, 4] {
            let n = s.notice(id).unwrap().unwrap();
            assert_eq!(
                (n.state, n.attempts, n.in_doubt, n.last_attempt),
                (NoticeState::Pending, 0, 0, None)
            );
        }
        // The msgid index answers the job-finish event.
        assert!(s.notice_delivery(11, "success").unwrap());
    }

    #[test]
    fn a_claimed_batch_left_by_a_crash_is_claimed_again_in_doubt() {
        let s = store("crash");
        s.enqueue_notices(&[new("oA"), new("oB")]).unwrap();
        s.notice_batch(&plan(&[], &[], 2, &[], BatchChannel::Plain))
            .unwrap();
        // The process died: nothing is held any more.
        let again = s
            .notice_batch(&plan(&[], &[], 2, &[], BatchChannel::Plain))
            .unwrap();
        assert_eq!(again.claimed.len(), 2);
        for c in &again.claimed {
            assert!(c.cut_short);
            assert_eq!((c.notice.attempts, c.notice.in_doubt), (2, 1));
        }
    }

    #[test]
    fn once_channel_uses_each_consent_once_and_one_notice_per_openid() {
        let s = store("once");
        let consent = Consent {
            student_id: "SoA".into(),
            template_id: "T".into(),
            scene: 1,
            at: 1,
        };
        s.record_consent("oA", &consent).unwrap();
        // Two notices for oA, one for oB (no consent).
        s.enqueue_notices(&[new("oA"), new("oA"), new("oB")])
            .unwrap();
        let once = BatchChannel::Once { template_id: "T" };
        let done = s.notice_batch(&plan(&[], &[], 10, &[], once)).unwrap();
        let ids: Vec<u64> = done.claimed.iter().map(|c| c.notice.id).collect();
        assert_eq!(ids, vec![1], "one notice per openid in a batch");
        assert_eq!(done.claimed[0].notice.consent, Some(consent.clone()));
        assert_eq!(done.skipped.len(), 1);
        assert_eq!(done.skipped[0].openid, "oB");
        assert_eq!(s.consent("oA").unwrap(), None);
        // While notice 1 is held, oA's second notice is not claimed.
        let held = [(1u64, "oA".to_string())];
        let none = s.notice_batch(&plan(&[], &[], 10, &held, once)).unwrap();
        assert!(none.claimed.is_empty() && none.skipped.is_empty());
        // Notice 1 fails for bad data: the consent comes back, and oA's next notice takes it
        // in the same transaction.
        let failed = [Finished {
            id: 1,
            outcome: TryOutcome::Failed {
                errcode: Some(47003),
                error: "bad data".into(),
            },
            at: 9,
        }];
        let next = s.notice_batch(&plan(&failed, &[], 10, &[], once)).unwrap();
        let ids: Vec<u64> = next.claimed.iter().map(|c| c.notice.id).collect();
        assert_eq!(ids, vec![2]);
        assert_eq!(next.claimed[0].notice.consent, Some(consent));
        let c = s.notice_counts().unwrap();
        assert_eq!((c.pending, c.sent, c.failed, c.skipped), (1, 0, 1, 1));
    }
}
