//! `App`: the services wired together over one [`Ctx`] of leaves, plus what only the web side
//! needs (views, page cache, the demo simulator). Built once and shared by the workers through
//! `Arc`. It holds no rules of its own: those live in the services.

use std::ops::Deref;
use std::sync::Arc;

use crate::config::Config;
use crate::page_cache::PageCache;
use crate::service::admin::AdminState;
use crate::service::import::jobs::ImportJobs;
use crate::service::messages::Inbox;
use crate::service::notices::Wake;
use crate::service::notify_consent::NotifyConsents;
use crate::service::oauth::OAuth;
use crate::service::students::Students;
use crate::service::verify::VerifyKey;
use crate::service::{Changed, Ctx};
use crate::store::StoreError;
use crate::views::Views;
use crate::wechat::sim::Simulator;

pub use crate::clock::Clock;

mod background;
pub mod site;
pub use background::{Background, Health};

pub struct App {
    /// The leaves (config, store, clock, WeChat client, tokens, metrics); `app.config` etc.
    /// reach them through `Deref`.
    pub ctx: Arc<Ctx>,
    pub views: Views,
    pub pages: PageCache,
    /// The WeChat simulator, in demo mode only.
    pub sim: Option<Simulator>,
    /// Binding: lock-outs and the verification key.
    pub students: Students,
    /// Web authorization: pending states (in memory) and one callback per state at a time.
    pub oauth: OAuth,
    /// 一次性订阅: the live `reserved` values of consent round trips (in memory).
    pub notify: NotifyConsents,
    /// Answers to recent WeChat messages, for WeChat's retries, and the signed URLs seen.
    pub wx_inbox: Inbox,
    /// Wakes the grade-notice sender.
    pub notice_wake: Arc<Wake>,
    /// The key of the verification-value hashes (a file beside the data file).
    pub verify_key: Arc<VerifyKey>,
    /// Admin imports in progress and their previews.
    pub jobs: ImportJobs,
    /// Admin sign-in lock-outs and the statistics cache.
    pub admin: AdminState,
    /// Which background threads are dead (kept by [`Background`]'s supervisor).
    pub background_health: Health,
}

impl Deref for App {
    type Target = Ctx;
    fn deref(&self) -> &Ctx {
        &self.ctx
    }
}

impl App {
    /// Open the data file and build everything a worker needs.
    pub fn new(config: Config) -> Result<App, StoreError> {
        let verify_key = Arc::new(VerifyKey::load_or_create(&config.data).map_err(StoreError::Io)?);
        let views = Views::new(
            config.templates_dir.clone(),
            vec![
                ("app_name", "成绩查询".into()),
                ("org_name", "教务处".into()),
                ("demo", config.demo.into()),
                ("static_version", crate::views::static_version().into()),
            ],
        );
        let sim = if config.demo {
            Some(Simulator::new(&config))
        } else {
            None
        };
        let pages = PageCache::new(config.cache_mb.saturating_mul(1024 * 1024));
        let ctx = Arc::new(Ctx::new(config)?);
        let notice_wake = Arc::new(Wake::default());
        Ok(App {
            ctx,
            views,
            pages,
            sim,
            students: Students::new(verify_key.clone()),
            oauth: OAuth::default(),
            notify: NotifyConsents::default(),
            wx_inbox: Inbox::default(),
            jobs: ImportJobs::new(verify_key.clone(), notice_wake.clone()),
            notice_wake,
            verify_key,
            admin: AdminState::default(),
            background_health: Health::default(),
        })
    }

    /// Apply what a service said about cached pages.
    pub fn changed(&self, change: Changed) {
        match change {
            Changed::Nothing => {}
            Changed::Student(id) => self.pages.drop_student(&id),
            Changed::Students(ids) => self.pages.drop_students(&ids),
        }
    }
}
