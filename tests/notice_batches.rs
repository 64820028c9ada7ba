//! The grade-notice sender in batches (issue 12) against the fake WeChat: a batch claimed by a
//! process that crashed is sent once each by the next one; a permanent errcode inside a batch
//! fails that notice alone; a stop with claimed notices in hand ends within a bound and puts
//! them back to pending; and the writes per notice drop while redb's writer is busy.

mod support;

use std::net::TcpListener;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::{metric, wait_until, FakeWeChat, TestServer, APP_ID, APP_SECRET};
use wxgrades::app::App;
use wxgrades::service::notices::{notice_counts, TEMPLATE_SEND};
use wxgrades::store::notice_batch::{BatchChannel, BatchPlan};
use wxgrades::store::notices::{NewNotice, NoticeState};
use wxgrades::store::Store;

const WRITES: &str = "wxgrades_notice_sender_total{what=\"writes\"}";
const CLAIMED: &str = "wxgrades_notice_sender_total{what=\"claimed\"}";
const RETURNED: &str = "wxgrades_notice_sender_total{what=\"returned\"}";

fn notices(prefix: &str, n: usize) -> Vec<NewNotice> {
    (0..n)
        .map(|i| NewNotice {
            openid: format!("o{prefix}{i}"),
            student_id: format!("S{prefix}{i}"),
            name: String::new(),
            terms: vec!["2025-2026-1".into()],
            courses: vec!["高等数学".into()],
            import_id: 1,
        })
        .collect()
}

/// Keeps redb's single writer busy, as sign-ins and binds do on release day: holds it for
/// `hold`, lets go for a moment, again, until dropped.
struct BusyWriter {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl BusyWriter {
    fn start(app: &Arc<App>, hold: Duration) -> BusyWriter {
        let stop = Arc::new(AtomicBool::new(false));
        let (app, flag) = (app.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::SeqCst) {
                app.store.hold_writer(hold).unwrap();
                std::thread::sleep(Duration::from_millis(2));
            }
        });
        BusyWriter {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for BusyWriter {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A data file in a fresh directory, prepared by `prepare`.
fn prepared_data(prepare: impl FnOnce(&Store)) -> (std::path::PathBuf, std::path::PathBuf) {
    let dir = support::temp_dir("batches");
    let data = dir.join("data.redb");
    let store = Store::open(&data).unwrap();
    prepare(&store);
    (dir, data)
}

/// A server on the data file `data` in `dir`.
fn server_on(
    dir: std::path::PathBuf,
    data: &Path,
    fake: FakeWeChat,
    extra_wechat: &str,
) -> TestServer {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let toml = format!(
        "listen = \"127.0.0.1:{port}\"\npublic_url = \"http://127.0.0.1:{port}\"\ndata = \"{}\"\nworkers = 4\n[wechat]\napp_id = \"{APP_ID}\"\napp_secret = \"{APP_SECRET}\"\ntoken = \"testtoken\"\napi_base = \"{f}\"\nopen_base = \"{f}\"\ntimeout_secs = 1\n{extra_wechat}\n[backup]\ndir = \"{}\"\n",
        data.display(),
        dir.join("backups").display(),
        f = fake.url,
    );
    let cfg_path = dir.join("wxgrades.toml");
    std::fs::write(&cfg_path, toml).unwrap();
    let cfg = wxgrades::config::load(wxgrades::config::Source::File(&cfg_path), &[]).unwrap();
    TestServer::start_with(cfg, listener, fake, dir)
}

#[test]
fn a_batch_claimed_by_a_crashed_process_is_sent_once_each_by_the_next() {
    let mut claimed = Vec::new();
    let (dir, data) = prepared_data(|store| {
        store.enqueue_notices(&notices("Crash", 6)).unwrap();
        // The crashed process had claimed all six in one transaction…
        let done = store
            .notice_batch(&BatchPlan {
                finished: &[],
                returned: &[],
                claim: 6,
                held: &[],
                now: wxgrades::clock::unix_now(),
                channel: BatchChannel::Plain,
            })
            .unwrap();
        claimed = done.claimed.into_iter().map(|c| c.notice).collect();
    });
    assert_eq!(claimed.len(), 6);
    // …and WeChat had accepted the first three before it died, their outcomes not recorded.
    let fake = FakeWeChat::start(APP_ID, APP_SECRET);
    {
        let mut st = fake.state.lock().unwrap();
        for (i, n) in claimed.iter().take(3).enumerate() {
            st.client_msg_ids
                .insert((n.openid.clone(), n.client_msg_id()), 900 + i as u64);
            *st.delivered.entry(n.openid.clone()).or_default() += 1;
        }
    }
    let s = server_on(
        dir,
        &data,
        fake,
        "grades_template_id = \"TPL\"\nnotice_rate_per_sec = 100",
    );
    wait_until("all six recorded sent", Duration::from_secs(20), || {
        notice_counts(&s.app).unwrap() == (0, 6, 0)
    });
    for n in &claimed {
        assert_eq!(
            s.fake.delivered(&n.openid),
            1,
            "{} delivered once",
            n.openid
        );
    }
    // The three WeChat had were sent again with the same client_msg_id and not delivered twice.
    assert_eq!(s.fake.state.lock().unwrap().suppressed, 3);
    assert_eq!(s.fake.calls(TEMPLATE_SEND), 6);
    for n in s.app.store.notices().unwrap() {
        assert_eq!(n.state, NoticeState::Sent);
        assert_eq!((n.attempts, n.in_doubt), (2, 1), "notice {}", n.id);
        assert!(n.msg_id.is_some());
    }
}

#[test]
fn a_permanent_errcode_inside_a_batch_fails_that_notice_alone() {
    let s = TestServer::start(
        "",
        "grades_template_id = \"TPL\"\nnotice_rate_per_sec = 100",
    );
    let _busy = BusyWriter::start(&s.app, Duration::from_millis(150));
    // The 12th call is answered 43004 (the student does not follow the account); the others are
    // accepted (errcode 0).
    let mut script = vec![0; 11];
    script.push(43004);
    s.fake.script(TEMPLATE_SEND, &script);
    let n = 40;
    s.app.store.enqueue_notices(&notices("Mix", n)).unwrap();
    s.app.notice_wake.notify();
    wait_until("all recorded", Duration::from_secs(30), || {
        notice_counts(&s.app).unwrap() == (0, n as u64 - 1, 1)
    });
    // Each was called once: no retry for the permanent failure, no second try of the others.
    assert_eq!(s.fake.calls(TEMPLATE_SEND), n);
    let stored = s.app.store.notices().unwrap();
    let failed: Vec<_> = stored
        .iter()
        .filter(|x| x.state == NoticeState::Failed)
        .collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].errcode, Some(43004));
    assert_eq!((failed[0].attempts, failed[0].failures), (1, 0));
    assert!(stored
        .iter()
        .filter(|x| x.id != failed[0].id)
        .all(|x| x.state == NoticeState::Sent && x.attempts == 1 && x.in_doubt == 0));
    // The one that failed is the 12th sent (notices go in due order).
    let posts = s.fake.posts(TEMPLATE_SEND);
    assert_eq!(posts[11]["touser"], failed[0].openid.as_str());
    // Batches formed: fewer write transactions than notices (one at a time needs two each).
    let (writes, claimed) = (metric(&s, WRITES), metric(&s, CLAIMED));
    assert_eq!(claimed, n as u64);
    assert!(writes < n as u64, "{writes} writes for {n} notices");
}

#[test]
fn a_stop_with_a_batch_in_hand_ends_soon_and_the_rest_goes_out_once_after() {
    let mut s = TestServer::start("", "grades_template_id = \"TPL\"\nnotice_rate_per_sec = 20");
    let busy = BusyWriter::start(&s.app, Duration::from_millis(300));
    let n = 100;
    s.app.store.enqueue_notices(&notices("Stop", n)).unwrap();
    s.app.notice_wake.notify();
    wait_until("a batch claimed ahead", Duration::from_secs(20), || {
        metric(&s, CLAIMED) >= metric(&s, "wxgrades_notices_total{result=\"sent\"}") + 4
            && s.fake.delivered_total() >= 5
    });
    let started = Instant::now();
    s.background.take().unwrap().stop_and_join();
    let took = started.elapsed();
    // One slot (50 ms), the call under way (timeout 1 s), one write behind a 300 ms holder.
    assert!(took < Duration::from_millis(1500), "the stop took {took:?}");
    drop(busy);
    let returned = metric(&s, RETURNED);
    assert!(returned >= 1, "nothing was handed back");
    let delivered = s.fake.delivered_total();
    let stored = s.app.store.notices().unwrap();
    let sent = stored
        .iter()
        .filter(|x| x.state == NoticeState::Sent)
        .count();
    assert_eq!(
        sent, delivered,
        "every call's outcome was recorded at the stop"
    );
    // Nothing is left claimed: the notices in hand are pending again, their claim not a try.
    for x in stored.iter().filter(|x| x.state != NoticeState::Sent) {
        assert_eq!(x.state, NoticeState::Pending, "notice {}", x.id);
        assert_eq!((x.attempts, x.in_doubt), (0, 0), "notice {}", x.id);
    }
    // The next start sends the rest, each once.
    s.background = Some(App::start_background(&s.app, false));
    wait_until("the rest sent", Duration::from_secs(30), || {
        notice_counts(&s.app).unwrap() == (0, n as u64, 0)
    });
    assert_eq!(s.fake.delivered_total(), n);
    assert_eq!(s.fake.state.lock().unwrap().suppressed, 0);
    assert_eq!(s.fake.calls(TEMPLATE_SEND), n);
}

#[test]
fn the_rate_is_kept_while_the_writer_is_busy() {
    let s = TestServer::start("", "grades_template_id = \"TPL\"\nnotice_rate_per_sec = 20");
    let _busy = BusyWriter::start(&s.app, Duration::from_millis(200));
    let n = 30;
    s.app.store.enqueue_notices(&notices("Rate", n)).unwrap();
    s.app.notice_wake.notify();
    wait_until("the first delivered", Duration::from_secs(10), || {
        s.fake.delivered_total() >= 1
    });
    let started = Instant::now();
    wait_until("all delivered", Duration::from_secs(30), || {
        s.fake.delivered_total() >= n
    });
    let took = started.elapsed();
    // 29 more calls at 20/s take at least 1.45 s: never faster than configured.
    assert!(
        took >= Duration::from_millis(1400),
        "{n} notices in {took:?}"
    );
    wait_until("all recorded", Duration::from_secs(10), || {
        notice_counts(&s.app).unwrap() == (0, n as u64, 0)
    });
    // One at a time needs two writes per notice; batched, a few per second.
    assert!(
        metric(&s, WRITES) < n as u64,
        "{} writes for {n} notices",
        metric(&s, WRITES)
    );
}

#[test]
fn a_quota_errcode_pauses_the_sender_and_hands_its_batch_back() {
    let s = TestServer::start("", "grades_template_id = \"TPL\"\nnotice_rate_per_sec = 20");
    let busy = BusyWriter::start(&s.app, Duration::from_millis(300));
    // The 10th call hits the daily quota (45009); the nine before are accepted.
    let mut script = vec![0; 9];
    script.push(45009);
    s.fake.script(TEMPLATE_SEND, &script);
    let n = 40;
    s.app.store.enqueue_notices(&notices("Quota", n)).unwrap();
    s.app.notice_wake.notify();
    let quota_notice = || {
        s.app
            .store
            .notices()
            .unwrap()
            .into_iter()
            .find(|x| x.errcode == Some(45009))
    };
    wait_until("the quota recorded", Duration::from_secs(20), || {
        quota_notice().is_some_and(|x| x.state == NoticeState::Pending)
    });
    wait_until("nothing left claimed", Duration::from_secs(5), || {
        s.app
            .store
            .notices()
            .unwrap()
            .iter()
            .all(|x| x.state != NoticeState::Sending)
    });
    assert!(metric(&s, RETURNED) >= 1, "no batch was in hand");
    drop(busy);
    let q = quota_notice().unwrap();
    // Not counted as a failure; due again in an hour.
    assert_eq!((q.attempts, q.failures), (1, 0));
    assert!(q.due >= s.app.clock.now() + 3500);
    // The notices handed back are pending, their claims not counted as tries.
    let stored = s.app.store.notices().unwrap();
    assert_eq!(
        stored
            .iter()
            .filter(|x| x.state == NoticeState::Sent)
            .count(),
        9
    );
    for x in stored
        .iter()
        .filter(|x| x.state == NoticeState::Pending && x.id != q.id)
    {
        assert_eq!((x.attempts, x.in_doubt), (0, 0), "notice {}", x.id);
    }
    assert_eq!(s.fake.calls(TEMPLATE_SEND), 10, "the sender pauses");
    // After the pause everything goes out; the quota notice is tried a second time.
    s.app.clock.advance(3601);
    s.app.notice_wake.notify();
    wait_until("all sent after the pause", Duration::from_secs(30), || {
        notice_counts(&s.app).unwrap() == (0, n as u64, 0)
    });
    assert_eq!(s.fake.calls(TEMPLATE_SEND), n + 1);
    let q = s.app.store.notice(q.id).unwrap().unwrap();
    assert_eq!((q.state, q.attempts), (NoticeState::Sent, 2));
}
