//! `App`: everything a request handler needs (config, store, views, WeChat client, clock),
//! built once and shared by the workers through `Arc`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use crate::config::Config;
use crate::metrics::Metrics;
use crate::service::messages::Inbox;
use crate::service::notices::Wake;
use crate::store::{Store, StoreError};
use crate::views::Views;
use crate::wechat::client::WxClient;
use crate::wechat::sim::Simulator;
use crate::wechat::token::AccessTokens;

/// Wall-clock seconds, with an offset tests can move forward (to expire states and sessions
/// without sleeping).
#[derive(Default)]
pub struct Clock {
    offset: AtomicI64,
}

impl Clock {
    pub fn now(&self) -> i64 {
        let real = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        real + self.offset.load(Ordering::Relaxed)
    }

    pub fn advance(&self, secs: i64) {
        self.offset.fetch_add(secs, Ordering::Relaxed);
    }
}

/// Per-key locks, so that two requests about the same thing (one OAuth state) run one at a time.
#[derive(Default)]
pub struct KeyedLocks {
    map: Mutex<HashMap<String, Arc<Mutex<()>>>>,
}

impl KeyedLocks {
    /// Run `f` while holding the lock for `key`.
    pub fn with<T>(&self, key: &str, f: impl FnOnce() -> T) -> T {
        let lock = {
            let mut m = self.map.lock().unwrap_or_else(|p| p.into_inner());
            m.entry(key.to_string()).or_default().clone()
        };
        let out = {
            let _held = lock.lock().unwrap_or_else(|p| p.into_inner());
            f()
        };
        let mut m = self.map.lock().unwrap_or_else(|p| p.into_inner());
        // Two references: the map's and ours. Nobody else waits: forget the key.
        if Arc::strong_count(&lock) == 2 {
            m.remove(key);
        }
        out
    }
}

pub struct App {
    pub config: Config,
    pub store: Store,
    pub views: Views,
    pub wx: WxClient,
    pub clock: Clock,
    pub metrics: Metrics,
    pub oauth_locks: KeyedLocks,
    /// The WeChat simulator, in demo mode only.
    pub sim: Option<Simulator>,
    /// The basic access_token (single flight, cached in the data file).
    pub tokens: AccessTokens,
    /// Answers to recent WeChat messages, for WeChat's retries.
    pub wx_inbox: Inbox,
    /// Wakes the grade-notice sender.
    pub notice_wake: Wake,
}

impl App {
    /// Open the data file and build everything a worker needs.
    pub fn new(config: Config) -> Result<App, StoreError> {
        let store = Store::open(&config.data)?;
        let views = Views::new(
            config.templates_dir.clone(),
            vec![
                ("app_name", "成绩查询".into()),
                ("org_name", "教务处".into()),
                ("demo", config.demo.into()),
                ("static_version", crate::views::static_version().into()),
            ],
        );
        let wx = WxClient::new(
            &config.wechat.api_base,
            &config.wechat.app_id,
            &config.wechat.app_secret,
            config.wechat.timeout_secs,
        );
        let sim = if config.demo {
            Some(Simulator::new(&config))
        } else {
            None
        };
        let tokens = AccessTokens::new(config.wechat.token_api);
        Ok(App {
            config,
            store,
            views,
            wx,
            clock: Clock::default(),
            metrics: Metrics::default(),
            oauth_locks: KeyedLocks::default(),
            sim,
            tokens,
            wx_inbox: Inbox::default(),
            notice_wake: Wake::default(),
        })
    }
}
