//! The grade-notice sender's loop (issue 12): a sending thread that paces calls to WeChat at
//! `wechat.notice_rate_per_sec`, and a recorder thread that does every write the sending needs
//! in as few transactions as redb's single writer allows.
//!
//! How the two share the work ("the desk"):
//! - The recorder claims notices in batches (`Store::notice_batch`, one write transaction): when
//!   the sender asks for work, and ahead of time while it sends: when one write transaction
//!   (as measured, waiting for redb's writer included) takes longer than one send, twice the
//!   sends that fit in it, at most two seconds' worth at the configured rate. With an idle
//!   writer that is none ahead: a notice is claimed just
//!   before its call, as before batching.
//! - The sender takes the claimed notices in order, waits for its slot (one call per
//!   1/rate s, never faster), calls WeChat and hands the outcome back.
//! - The recorder records every outcome handed back in its next transaction, together with the
//!   next claim. While the writer is free that is right away; while sign-ins and binds keep it
//!   busy, the outcomes of all sends done meanwhile go in one transaction.
//!
//! Restart safety is unchanged: every notice is `Sending` durably before its call. A crash
//! between a call and the transaction that records its outcome — now possibly several calls —
//! leaves those notices `Sending`; the next process sends each again with the same
//! `client_msg_id`, and WeChat delivers it once (see `service::notices`). Notices claimed ahead
//! and not yet sent at a crash are also found `Sending` and tried as in doubt (they count
//! towards [`super::notices::MAX_CUT_SHORT`] like a try cut short).
//!
//! Stopping: the sender finishes the call it is in (if any), hands back the notices it has not
//! sent, and the recorder's last transaction records the outcomes and puts those back to
//! `Pending` (not in doubt: they were never on the wire). On a quota pause the same hand-back
//! happens, so nothing sits claimed for the pause's hour.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::notices::{classify, Step, Wake, MAX_CUT_SHORT};
use super::{notice_channels, notices, wxapi, Ctx};
use crate::config::NoticeChannel;
use crate::store::notice_batch::{BatchChannel, BatchPlan, Claimed, Finished, Returned};
use crate::store::notices::TryOutcome;

/// How often an idle sender looks at the outbox.
const IDLE_POLL: Duration = Duration::from_millis(250);
/// How long the sender waits after the recorder could not write.
const AFTER_ERROR: Duration = Duration::from_secs(2);
/// The longest the sender waits on the recorder before it looks at the stop signal again.
const STOP_CHECK: Duration = Duration::from_millis(100);

/// What the recorder answered a sender that asked for work and got no notice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dry {
    NothingDue,
    WriteFailed,
}

/// The state the two threads share.
#[derive(Default)]
struct Shared {
    /// Claimed durably, not yet sent, in due order.
    ready: VecDeque<Claimed>,
    /// The notice being sent (id, openid).
    on_wire: Option<(u64, String)>,
    /// Tries that ended, not yet recorded.
    finished: Vec<Finished>,
    /// Claimed notices to hand back unsent.
    returned: Vec<Returned>,
    /// The sender has nothing to send and asks for notices.
    asking: bool,
    /// The answer to a sender that asked and got nothing.
    dry: Option<Dry>,
    /// The last claim found fewer due notices than it asked for: claim ahead again only when
    /// the sender asks.
    drained: bool,
    /// Claimed notices to keep ready while the sender works.
    ahead: usize,
    /// The sender's time per notice (its slot, or the call when slower); none before a call.
    per_notice: Option<Duration>,
    /// The sender is pausing (quota): claimed notices go straight back until it asks again.
    holding_off: bool,
    /// The sender is done: record, hand back, end.
    quit: bool,
}

struct Desk {
    shared: Mutex<Shared>,
    cv: Condvar,
}

impl Desk {
    fn lock(&self) -> MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn wait<'a>(&self, g: MutexGuard<'a, Shared>, timeout: Duration) -> MutexGuard<'a, Shared> {
        self.cv
            .wait_timeout(g, timeout)
            .map(|(g, _)| g)
            .unwrap_or_else(|p| p.into_inner().0)
    }
}

/// What the sender got from the desk.
enum Next {
    Notice(Box<Claimed>),
    Dry(Dry),
    /// Nothing yet (the recorder is writing); look at the stop signal and ask again.
    NotYet,
}

/// Run the sender until `stop` is set (on the calling thread, with the recorder on a second).
pub(super) fn run(ctx: &Ctx, wake: &Wake, stop: &AtomicBool) {
    let desk = Desk {
        shared: Mutex::new(Shared::default()),
        cv: Condvar::new(),
    };
    std::thread::scope(|scope| {
        let recorder = std::thread::Builder::new()
            .name("notice-recorder".into())
            .spawn_scoped(scope, || record_loop(ctx, &desk));
        if let Err(e) = recorder {
            log::error!("cannot start the notice recorder: {e}; grade notices will wait");
            return;
        }
        send_loop(ctx, wake, stop, &desk);
        let mut s = desk.lock();
        s.quit = true;
        desk.cv.notify_all();
    });
}

fn send_loop(ctx: &Ctx, wake: &Wake, stop: &AtomicBool, desk: &Desk) {
    let rate = ctx.config.wechat.notice_rate_per_sec.max(1);
    let slot = Duration::from_secs_f64(1.0 / f64::from(rate));
    let mut paused_until = 0i64;
    let mut told_disabled = false;
    let mut next_slot = Instant::now();
    while !stop.load(Ordering::SeqCst) {
        if !notices::enabled(&ctx.config) {
            if !told_disabled {
                tell_disabled(ctx);
                told_disabled = true;
            }
            wake.wait(Duration::from_secs(1));
            continue;
        }
        if ctx.clock.now() < paused_until {
            wake.wait(IDLE_POLL);
            continue;
        }
        let claimed = match next(desk) {
            Next::Notice(c) => c,
            Next::Dry(Dry::NothingDue) => {
                wake.wait(IDLE_POLL);
                continue;
            }
            Next::Dry(Dry::WriteFailed) => {
                wake.wait(AFTER_ERROR);
                continue;
            }
            Next::NotYet => continue,
        };
        if !wait_for_slot(next_slot, stop) {
            hand_back(desk, Some(*claimed));
            break;
        }
        let started = Instant::now();
        next_slot = started + slot;
        let step = try_one(ctx, desk, &claimed);
        let mut s = desk.lock();
        s.on_wire = None;
        s.per_notice = Some(started.elapsed().max(slot));
        desk.cv.notify_all();
        drop(s);
        if let Step::PauseUntil(t) = step {
            paused_until = t;
            hand_back(desk, None);
        }
    }
    hand_back(desk, None);
}

fn tell_disabled(ctx: &Ctx) {
    if let Ok(c) = ctx.store.notice_counts() {
        if c.pending > 0 {
            let key = notice_channels::template_id_key(ctx.config.wechat.notices.channel);
            log::warn!(
                "{} grade notices wait, but {key} is empty: set it to send them",
                c.pending
            );
        }
    }
}

/// Sleep until `at`, looking at `stop` at least every [`STOP_CHECK`]. False when stopped.
fn wait_for_slot(at: Instant, stop: &AtomicBool) -> bool {
    loop {
        if stop.load(Ordering::SeqCst) {
            return false;
        }
        let now = Instant::now();
        if now >= at {
            return true;
        }
        std::thread::sleep((at - now).min(STOP_CHECK));
    }
}

/// The next claimed notice, asking the recorder for more when none is ready.
fn next(desk: &Desk) -> Next {
    let mut s = desk.lock();
    if let Some(c) = s.ready.pop_front() {
        s.on_wire = Some((c.notice.id, c.notice.openid.clone()));
        // Taking one may bring the ready notices below what the recorder keeps ahead.
        desk.cv.notify_all();
        return Next::Notice(Box::new(c));
    }
    if let Some(dry) = s.dry.take() {
        return Next::Dry(dry);
    }
    s.holding_off = false;
    if !s.asking {
        s.asking = true;
        desk.cv.notify_all();
    }
    drop(desk.wait(s, STOP_CHECK));
    Next::NotYet
}

/// Hand `extra` and every ready notice back to the recorder, to be put back to `Pending`
/// (also those a claim under way brings, until the sender asks again).
fn hand_back(desk: &Desk, extra: Option<Claimed>) {
    let mut s = desk.lock();
    let ready: Vec<Claimed> = s.ready.drain(..).chain(extra).collect();
    s.returned.extend(ready.iter().map(Claimed::returned));
    s.asking = false;
    s.holding_off = true;
    desk.cv.notify_all();
}

/// Send one claimed notice and hand its outcome to the recorder.
fn try_one(ctx: &Ctx, desk: &Desk, c: &Claimed) -> Step {
    let n = &c.notice;
    let outcome = if n.in_doubt >= MAX_CUT_SHORT {
        // The process died during this notice's send again and again: do not let one notice
        // keep a crash loop going.
        let error = format!("{} tries were cut short by restarts; given up", n.in_doubt);
        log::error!("notice {}: {error}", n.id);
        ctx.metrics.event("notice", "failed");
        (
            TryOutcome::Failed {
                errcode: None,
                error,
            },
            Step::Sent,
        )
    } else if !still_claimed(ctx, n.id) {
        // Deleted meanwhile (the student deleted their WeChat data): nothing to send or record.
        log::info!("notice {}: gone before its call, not sent", n.id);
        return Step::Sent;
    } else {
        if c.cut_short {
            log::warn!(
                "notice {}: an earlier try was cut short (restart); sending again with the same client_msg_id",
                n.id
            );
        }
        let channel = ctx.config.wechat.notices.channel;
        let body = notice_channels::payload(ctx, n);
        let result = wxapi::post(ctx, notice_channels::endpoint(channel), &body);
        let now = ctx.clock.now();
        let (outcome, step) = classify(n, result, now);
        match &outcome {
            TryOutcome::Sent { .. } => ctx.metrics.event("notice", "sent"),
            TryOutcome::Failed { error, .. } => {
                log::warn!(
                    "notice {} to student {} failed: {error}",
                    n.id,
                    n.student_id
                );
                ctx.metrics.event("notice", "failed");
            }
            TryOutcome::Retry { error, due, .. } => {
                log::warn!("notice {}: {error}; trying again in {} s", n.id, due - now);
                ctx.metrics.event("notice", "retry");
            }
        }
        (outcome, step)
    };
    let (outcome, step) = outcome;
    let mut s = desk.lock();
    s.finished.push(Finished {
        id: n.id,
        outcome,
        at: ctx.clock.now(),
    });
    desk.cv.notify_all();
    step
}

/// Whether notice `id` is still there and claimed (a read: it does not wait for the writer).
fn still_claimed(ctx: &Ctx, id: u64) -> bool {
    match ctx.store.notice(id) {
        Ok(Some(n)) => n.state == crate::store::notices::NoticeState::Sending,
        Ok(None) => false,
        // Cannot tell: send it (the outcome's record will say what happened).
        Err(e) => {
            log::warn!("notice {id}: cannot read it before its call ({e}); sending");
            true
        }
    }
}

/// What one recorder transaction is to do, taken from the desk.
struct Work {
    finished: Vec<Finished>,
    returned: Vec<Returned>,
    claim: usize,
    held: Vec<(u64, String)>,
    asked: bool,
    last: bool,
}

/// Take the next transaction's work from the desk, waiting for some; `None` when there is
/// none and the sender has quit.
fn take_work(desk: &Desk, cap: usize) -> Option<Work> {
    let mut s = desk.lock();
    loop {
        if s.quit {
            let ready: Vec<Claimed> = s.ready.drain(..).collect();
            s.returned.extend(ready.iter().map(Claimed::returned));
            if s.finished.is_empty() && s.returned.is_empty() {
                return None;
            }
        }
        let want = if s.quit {
            0
        } else if s.asking {
            s.ahead.max(1).min(cap)
        } else if !s.drained && !s.holding_off && s.ready.len() < s.ahead {
            s.ahead.min(cap) - s.ready.len()
        } else {
            0
        };
        if want > 0 || !s.finished.is_empty() || !s.returned.is_empty() {
            if s.asking {
                s.drained = false;
            }
            let held = s
                .ready
                .iter()
                .map(|c| (c.notice.id, c.notice.openid.clone()))
                .chain(s.on_wire.clone())
                .collect();
            return Some(Work {
                finished: std::mem::take(&mut s.finished),
                returned: std::mem::take(&mut s.returned),
                claim: want,
                held,
                asked: s.asking,
                last: s.quit,
            });
        }
        s = desk.wait(s, IDLE_POLL);
    }
}

/// How many notices to claim ahead so the sender does not run dry while one write transaction
/// takes `latency`: none while a write is quicker than one send (the claim of the next notice
/// then costs at most that write), else twice the sends that fit in it (writes behind sign-ins
/// vary a lot), at most `cap`.
fn ahead_for(latency: Duration, per_notice: Option<Duration>, cap: usize) -> usize {
    let Some(per) = per_notice.filter(|p| !p.is_zero()) else {
        return 0;
    };
    if latency < per {
        return 0;
    }
    let n = latency.as_nanos().saturating_mul(2) / per.as_nanos();
    usize::try_from(n).unwrap_or(usize::MAX).min(cap)
}

fn record_loop(ctx: &Ctx, desk: &Desk) {
    // Two seconds' worth at the configured rate (the config bounds the rate to 1,000/s).
    let cap = 2 * ctx.config.wechat.notice_rate_per_sec.max(1) as usize;
    let once_template = ctx.config.wechat.notices.once_template_id.clone();
    let channel = match ctx.config.wechat.notices.channel {
        NoticeChannel::Once => BatchChannel::Once {
            template_id: &once_template,
        },
        NoticeChannel::Template | NoticeChannel::Subscribe => BatchChannel::Plain,
    };
    // Write latency as the recorder sees it, decaying so one slow write does not rule long.
    let mut latency = Duration::ZERO;
    while let Some(work) = take_work(desk, cap) {
        let plan = BatchPlan {
            finished: &work.finished,
            returned: &work.returned,
            claim: work.claim,
            held: &work.held,
            now: ctx.clock.now(),
            channel,
        };
        let started = Instant::now();
        let result = ctx.store.notice_batch(&plan);
        latency = started.elapsed().max(latency * 3 / 4);
        let mut s = desk.lock();
        match result {
            Ok(done) => {
                ctx.metrics.add("notice_sender", "writes", 1);
                ctx.metrics
                    .add("notice_sender", "claimed", done.claimed.len() as u64);
                ctx.metrics
                    .add("notice_sender", "returned", work.returned.len() as u64);
                for n in &done.skipped {
                    log::info!(
                        "notice {} to student {}: no 一次性订阅 consent, not sent",
                        n.id,
                        n.student_id
                    );
                    ctx.metrics.event("notice", "skipped");
                }
                let got = done.claimed.len() + done.skipped.len();
                if got < work.claim {
                    s.drained = true;
                }
                if s.quit || s.holding_off {
                    // The sender has gone or pauses: hand these back in the next transaction.
                    s.returned
                        .extend(done.claimed.iter().map(Claimed::returned));
                } else {
                    s.ready.extend(done.claimed);
                }
                if work.asked && s.asking && (s.ready.is_empty() && done.skipped.is_empty()) {
                    s.dry = Some(Dry::NothingDue);
                }
                if !s.ready.is_empty() || s.dry.is_some() {
                    s.asking = false;
                }
                s.ahead = ahead_for(latency, s.per_notice, cap);
            }
            Err(e) => {
                log::error!("notice sender: cannot record or claim notices: {e}");
                // Nothing was written: keep the outcomes and hand-backs for the next try.
                let mut finished = work.finished;
                finished.append(&mut s.finished);
                s.finished = finished;
                let mut returned = work.returned;
                returned.append(&mut s.returned);
                s.returned = returned;
                if s.asking {
                    s.dry = Some(Dry::WriteFailed);
                    s.asking = false;
                }
                if work.last {
                    // Stopping and the disk refuses: leave the rest to the next process
                    // (claimed notices are found `Sending` and sent again, see the module doc).
                    return;
                }
                drop(desk.wait(s, AFTER_ERROR));
                continue;
            }
        }
        desk.cv.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_ahead_only_what_a_write_takes() {
        let ms = Duration::from_millis;
        // Before any call: nothing ahead.
        assert_eq!(ahead_for(ms(500), None, 20), 0);
        // A free writer (a few ms) against 100 ms calls: nothing ahead; nor while a write is
        // quicker than a call.
        assert_eq!(ahead_for(ms(5), Some(ms(100)), 40), 0);
        assert_eq!(ahead_for(ms(90), Some(ms(100)), 40), 0);
        // A busy writer (300 ms) at 20/s: 12 ahead.
        assert_eq!(ahead_for(ms(300), Some(ms(50)), 40), 12);
        // Never more than the cap (two seconds' worth).
        assert_eq!(ahead_for(ms(5000), Some(ms(50)), 40), 40);
    }
}
