//! Grade notices: the background sender that works through the outbox
//! (`store::notices`), the template message it sends, and what WeChat's answers mean for it.
//!
//! Delivery semantics. The sender (`service::notice_sender`) sends one notice at a time, at most
//! `wechat.notice_rate_per_sec`, and does its writes in batches: one write transaction records
//! the outcomes of the tries that ended and claims the next notices due (issue 12). Every
//! notice is recorded durably as `Sending` before its call; its outcome is recorded after it,
//! possibly together with the outcomes of the calls that followed. A crash (kill -9, power)
//! between WeChat accepting notices and our record of them leaves those notices `Sending`: the
//! next process sends each again — with the same `client_msg_id`, WeChat's de-duplication key
//! for template messages (one message per openid and client_msg_id within 10 minutes), so a
//! restart within 10 minutes delivers each once. After a longer outage those students may get
//! their notice twice: at most one duplicate per notice per crash, never a lost notice. (The
//! other choice, marking in-doubt notices failed, would lose notices silently; a second "grades
//! are out" message is the smaller harm.)
//!
//! Channels (`[wechat] notices`): the same outbox feeds 模板消息, 一次性订阅消息 and 订阅通知
//! (`service::notice_channels` builds each one's JSON). In the 一次性订阅 channel each try takes
//! the student's consent in the transaction that records it (`store::consents`); a student
//! without one gets no message and the notice ends skipped — counted, not failed.
//! Neither subscription API takes a `client_msg_id`: after a crash mid-send, a 一次性订阅 notice
//! is tried again with the consent it holds, and WeChat, which spent that consent on the first
//! try, answers 43101 (failed, no duplicate); a 订阅通知 may arrive twice (at most once more
//! per notice and crash, as above — with batched records, every notice sent since the last
//! record).
//!
//! Outcomes: accepted → sent (msgid kept for TEMPLATESENDJOBFINISH); 43004, 43101, 40003,
//! 40037, 47003 → failed at once; 45009/45011 (quota) → the whole sender pauses (an hour / a
//! minute) without counting against the notice; anything else (-1, timeouts, network, other
//! errcodes) → retried with a growing delay, failed after [`MAX_FAILURES`].
//!
//! `TEMPLATESENDJOBFINISH` finds a notice by the msgid recorded with its outcome; an event that
//! arrives before that record (under a busy writer, up to about a second after the call) is
//! logged and not matched.

use serde_json::{json, Map, Value};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::config::{Config, NoticeChannel};
use crate::error::AppError;
use crate::service::messages;
use crate::service::Ctx;
use crate::store::notices::{Notice, NoticeCounts, TryOutcome};
use crate::wechat::client::WxError;

/// Transient failures after which a notice is given up.
pub const MAX_FAILURES: u32 = 8;
/// Tries of one notice cut short by restarts before it is given up.
pub const MAX_CUT_SHORT: u32 = 3;
/// Errcodes that no retry can fix.
const PERMANENT: [i64; 5] = [43004, 43101, 40003, 40037, 47003];
pub const TEMPLATE_SEND: &str = "/cgi-bin/message/template/send";

/// Wakes the sender when notices were written (the import calls [`wake`] after its commit).
#[derive(Default)]
pub struct Wake {
    flag: Mutex<bool>,
    cv: Condvar,
}

impl Wake {
    pub fn notify(&self) {
        let mut f = self.flag.lock().unwrap_or_else(|p| p.into_inner());
        *f = true;
        self.cv.notify_all();
    }

    pub(super) fn wait(&self, timeout: Duration) {
        let mut f = self.flag.lock().unwrap_or_else(|p| p.into_inner());
        if !*f {
            f = self
                .cv
                .wait_timeout(f, timeout)
                .map(|(g, _)| g)
                .unwrap_or_else(|p| p.into_inner().0);
        }
        *f = false;
    }
}

/// Whether grade notices are configured: the template id of the channel `wechat.notices`
/// names is set (`grades_template_id`, `once_template_id` or `subscribe_template_id`). The
/// import writes notices only then (and records the wish to notify either way).
pub fn enabled(config: &Config) -> bool {
    let w = &config.wechat;
    match w.notices.channel {
        NoticeChannel::Template => !w.grades_template_id.trim().is_empty(),
        NoticeChannel::Once => !w.notices.once_template_id.trim().is_empty(),
        NoticeChannel::Subscribe => !w.notices.subscribe_template_id.trim().is_empty(),
    }
}

/// Notices not sent because the student gave no 一次性订阅 consent (for the dashboard).
pub fn skipped_count(ctx: &Ctx) -> Result<u64, AppError> {
    Ok(ctx.store.notice_counts()?.skipped)
}

/// (pending, sent, failed) for the dashboard.
pub fn notice_counts(ctx: &Ctx) -> Result<(u64, u64, u64), AppError> {
    let NoticeCounts {
        pending,
        sent,
        failed,
        ..
    } = ctx.store.notice_counts()?;
    Ok((pending, sent, failed))
}

/// A TEMPLATESENDJOBFINISH event: WeChat tells how the message with `msg_id` ended.
pub fn job_finished(ctx: &Ctx, msg_id: &str, status: &str) -> Result<(), AppError> {
    let Ok(id) = msg_id.trim().parse::<u64>() else {
        log::warn!("TEMPLATESENDJOBFINISH without a usable MsgID");
        return Ok(());
    };
    if !ctx.store.notice_delivery(id, status)? {
        log::info!("TEMPLATESENDJOBFINISH for msgid {id} ({status}): no sent notice waits for it");
    }
    Ok(())
}

/// Start the sender thread; it ends soon after `stop` is set.
pub fn spawn_sender(
    ctx: Arc<Ctx>,
    wake: Arc<Wake>,
    stop: Arc<AtomicBool>,
) -> Option<JoinHandle<()>> {
    let spawned = std::thread::Builder::new()
        .name("notice-sender".into())
        .spawn(move || super::notice_sender::run(&ctx, &wake, &stop));
    match spawned {
        Ok(h) => Some(h),
        Err(e) => {
            log::error!("cannot start the notice sender: {e}; grade notices will wait");
            None
        }
    }
}

/// What the sender does after one try.
pub(super) enum Step {
    /// Go on with the next notice.
    Sent,
    /// Stop sending until this (ctx clock) time.
    PauseUntil(i64),
}

/// Seconds to wait after the `failures`-th transient failure.
fn backoff(failures: u32) -> i64 {
    let f = failures.clamp(1, 12);
    (15i64 << (f - 1)).min(1800)
}

/// What WeChat's answer to notice `n`'s try means: the outcome to record and what the sender
/// does next.
pub(super) fn classify(n: &Notice, result: Result<Value, WxError>, now: i64) -> (TryOutcome, Step) {
    match result {
        Ok(v) => {
            let msg_id = v
                .get("msgid")
                .and_then(|m| m.as_u64().or_else(|| m.as_str()?.parse().ok()));
            (TryOutcome::Sent { msg_id }, Step::Sent)
        }
        Err(e) => {
            let errcode = e.errcode();
            let error = e.to_string();
            if errcode.is_some_and(|c| PERMANENT.contains(&c)) {
                return (TryOutcome::Failed { errcode, error }, Step::Sent);
            }
            if e.is_quota() {
                let wait = if errcode == Some(45009) { 3600 } else { 60 };
                log::error!("WeChat quota reached ({error}); notices pause for {wait} s");
                return (
                    TryOutcome::Retry {
                        due: now + wait,
                        errcode,
                        error,
                        failure: false,
                    },
                    Step::PauseUntil(now + wait),
                );
            }
            let failures = n.failures + 1;
            if failures >= MAX_FAILURES {
                return (
                    TryOutcome::Failed {
                        errcode,
                        error: format!("gave up after {failures} tries: {error}"),
                    },
                    Step::Sent,
                );
            }
            (
                TryOutcome::Retry {
                    due: now + backoff(failures),
                    errcode,
                    error,
                    failure: true,
                },
                Step::Sent,
            )
        }
    }
}

/// The courses as one template value: names joined while they fit in 20 characters (WeChat's
/// limit for short template values), then "等N门".
pub fn courses_value(courses: &[String]) -> String {
    courses_within(courses, 20)
}

/// The course names joined while they fit in `limit` characters, then "等N门".
pub fn courses_within(courses: &[String], limit: usize) -> String {
    const SUFFIX_ROOM: usize = 6;
    let limit = limit.max(SUFFIX_ROOM + 1);
    let all = courses.join("、");
    if all.chars().count() <= limit || courses.len() <= 1 {
        return all.chars().take(limit).collect();
    }
    let suffix = format!("等{}门", courses.len());
    let mut out = String::new();
    for c in courses {
        let sep = if out.is_empty() { "" } else { "、" };
        if out.chars().count() + sep.chars().count() + c.chars().count() + suffix.chars().count()
            > limit
        {
            break;
        }
        out.push_str(sep);
        out.push_str(c);
    }
    if out.is_empty() {
        out = courses[0]
            .chars()
            .take(limit.saturating_sub(suffix.chars().count()))
            .collect();
    }
    out + &suffix
}

/// The terms as one template value: the newest term's label, and how many more.
pub fn terms_value(terms: &[String]) -> String {
    match terms {
        [] => String::new(),
        [t] => messages::term_label(t),
        [t, rest @ ..] => format!("{}等{}个学期", messages::term_label(t), rest.len() + 1),
    }
}

/// The template message for notice `n`.
pub fn payload(ctx: &Ctx, n: &Notice) -> Value {
    let name = if n.name.trim().is_empty() {
        "同学".to_string()
    } else {
        n.name.clone()
    };
    let mut data = Map::new();
    for (ours, key) in &ctx.config.wechat.grades_template_fields {
        let value = match ours.as_str() {
            "term" => terms_value(&n.terms),
            "courses" => courses_value(&n.courses),
            "name" => name.clone(),
            "student_id" => n.student_id.clone(),
            "count" => n.courses.len().to_string(),
            "first" => "你好，你有新的成绩发布。".to_string(),
            "remark" => "点击查看详情。".to_string(),
            _ => continue,
        };
        data.insert(key.clone(), json!({ "value": value }));
    }
    json!({
        "touser": n.openid,
        "template_id": ctx.config.wechat.grades_template_id,
        "url": messages::page_url(ctx, "/grades"),
        "client_msg_id": n.client_msg_id(),
        "data": data,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn courses_fit() {
        let c = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            courses_value(&c(&["高等数学", "大学英语"])),
            "高等数学、大学英语"
        );
        let long = c(&[
            "高等数学A（上）",
            "大学英语读写译",
            "程序设计基础",
            "中国近现代史纲要",
        ]);
        let v = courses_value(&long);
        assert!(v.chars().count() <= 20, "{v}");
        assert!(v.ends_with("等4门"), "{v}");
        assert_eq!(courses_value(&[]), "");
    }

    #[test]
    fn backoff_grows_and_is_bounded() {
        assert_eq!(backoff(1), 15);
        assert_eq!(backoff(2), 30);
        assert_eq!(backoff(20), 1800);
    }
}
