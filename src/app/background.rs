//! Every background thread of a server, started and stopped in one place with one stop
//! signal: the grade-notice sender, the housekeeping sweep, the release publisher (due
//! 定时发布), timed backups, and the import worker. A supervisor restarts the import worker if it dies (a panic in a task) and keeps
//! [`Health`] up to date, so `/healthz` answers 503 while any of them is dead.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use super::App;
use crate::service::admin::backup;
use crate::service::{notices, releases, session};

/// How often the supervisor looks at its threads.
const TICK: Duration = Duration::from_millis(100);

/// Which background threads are dead now (names), for `/healthz`, and how often the import
/// thread was restarted.
#[derive(Default)]
pub struct Health {
    dead: Mutex<Vec<&'static str>>,
    restarts: std::sync::atomic::AtomicU64,
}

impl Health {
    /// How many times the import thread was restarted after it died.
    pub fn import_restarts(&self) -> u64 {
        self.restarts.load(Ordering::SeqCst)
    }

    /// The names of the dead threads; empty when all is well.
    pub fn dead(&self) -> Vec<&'static str> {
        self.dead.lock().map(|d| d.clone()).unwrap_or_default()
    }

    fn set(&self, dead: Vec<&'static str>) {
        if let Ok(mut d) = self.dead.lock() {
            *d = dead;
        }
    }
}

/// The running background threads; [`Background::stop_and_join`] ends them.
pub struct Background {
    stop: Arc<AtomicBool>,
    supervisor: Option<JoinHandle<()>>,
}

struct Thread {
    name: &'static str,
    handle: Option<JoinHandle<()>>,
}

impl App {
    /// Start every background thread of a server. `timed_backups`: also take the timed
    /// snapshots of `backup.every_hours` (the `serve` command, not in demo mode).
    pub fn start_background(app: &Arc<App>, timed_backups: bool) -> Background {
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = vec![
            Thread {
                name: "notice-sender",
                handle: notices::spawn_sender(
                    app.ctx.clone(),
                    app.notice_wake.clone(),
                    stop.clone(),
                ),
            },
            Thread {
                name: "housekeeping",
                handle: session::spawn_housekeeping(app.ctx.clone(), stop.clone()),
            },
            Thread {
                name: "import",
                handle: spawn_import(app, &stop),
            },
            Thread {
                name: "releases",
                handle: releases::spawn_publisher(
                    app.ctx.clone(),
                    app.notice_wake.clone(),
                    stop.clone(),
                ),
            },
        ];
        if timed_backups && app.config.backup.every_hours > 0 {
            threads.push(Thread {
                name: "backups",
                handle: backup::spawn_scheduler(app.ctx.clone(), stop.clone()),
            });
        }
        let supervisor = {
            let (app, stop) = (app.clone(), stop.clone());
            std::thread::Builder::new()
                .name("supervisor".into())
                .spawn(move || supervise(&app, &stop, threads))
                .map_err(|e| log::error!("cannot start the supervisor thread: {e}"))
                .ok()
        };
        if supervisor.is_none() {
            app.background_health.set(vec!["supervisor"]);
        }
        Background { stop, supervisor }
    }
}

impl Background {
    /// Signal every background thread to stop, and wait until they have.
    pub fn stop_and_join(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(s) = self.supervisor.take() {
            let _ = s.join();
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(s) = self.supervisor.take() {
            let _ = s.join();
        }
    }
}

fn spawn_import(app: &Arc<App>, stop: &Arc<AtomicBool>) -> Option<JoinHandle<()>> {
    // Before the thread runs, so an upload right after start-up is queued, not refused.
    app.jobs.open_queue();
    let (app, stop) = (app.clone(), stop.clone());
    std::thread::Builder::new()
        .name("import".into())
        .spawn(move || app.jobs.run_worker(&app.ctx, &stop, &|c| app.changed(c)))
        .map_err(|e| log::error!("cannot start the import thread: {e}"))
        .ok()
}

fn supervise(app: &Arc<App>, stop: &Arc<AtomicBool>, mut threads: Vec<Thread>) {
    while !stop.load(Ordering::SeqCst) {
        let mut dead = Vec::new();
        for t in &mut threads {
            let finished = t.handle.as_ref().is_none_or(|h| h.is_finished());
            if !finished {
                continue;
            }
            if let Some(h) = t.handle.take() {
                if h.join().is_err() {
                    log::error!("the {} thread panicked", t.name);
                } else if !stop.load(Ordering::SeqCst) {
                    log::error!("the {} thread ended", t.name);
                }
            }
            if t.name == "import" && !stop.load(Ordering::SeqCst) {
                log::warn!("restarting the import thread");
                t.handle = spawn_import(app, stop);
                app.background_health
                    .restarts
                    .fetch_add(1, Ordering::SeqCst);
            }
            if t.handle.is_none() {
                dead.push(t.name);
            }
        }
        app.background_health.set(dead);
        // The supervisor's own pace, not a wait for a result.
        std::thread::sleep(TICK);
    }
    for t in threads {
        if let Some(h) = t.handle {
            let _ = h.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn app() -> (Arc<App>, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!(
            "wxg-bg-{}-{}",
            std::process::id(),
            crate::secret::random_hex::<4>()
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let toml = format!(
            "listen = \"127.0.0.1:0\"\npublic_url = \"http://bg.test\"\ndata = \"{}\"\n[wechat]\napp_id = \"wx0000000000000001\"\napp_secret = \"s\"\ntoken = \"bgtoken\"\n[backup]\ndir = \"{}\"\n",
            dir.join("data.redb").display(),
            dir.join("backups").display()
        );
        let path = dir.join("wxgrades.toml");
        std::fs::write(&path, toml).expect("config");
        let cfg = crate::config::load(crate::config::Source::File(&path), &[]).expect("load");
        (Arc::new(App::new(cfg).expect("app")), dir)
    }

    /// Wait for `cond` for at most five seconds.
    fn wait_for(what: &str, cond: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !cond() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    #[test]
    fn a_dead_import_thread_is_restarted_and_all_stop_together() {
        let (app, dir) = app();
        let bg = App::start_background(&app, false);
        assert!(app.background_health.dead().is_empty());
        app.jobs.panic_worker().expect("queue open");
        wait_for("a restart", || app.background_health.import_restarts() >= 1);
        // The new thread takes the queue over.
        app.jobs.panic_worker().expect("queue open");
        wait_for("a second restart", || {
            app.background_health.import_restarts() >= 2
        });
        wait_for("all alive", || app.background_health.dead().is_empty());
        bg.stop_and_join();
        // Every thread let go of the app.
        assert_eq!(Arc::strong_count(&app), 1);
        drop(app);
        let _ = std::fs::remove_dir_all(dir);
    }
}
