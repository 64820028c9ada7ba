//! The rules of the product, free of HTTP types. Each service owns its state (limiters,
//! inboxes, jobs, locks) and takes a [`Ctx`] of leaves; none knows `Ctx`, a handler or HTTP.
//! What a change means for cached pages is returned to the caller ([`Changed`]) or is a
//! bump of the pages' epoch ([`Ctx::data_changed`], which retires every page); no service
//! touches the page cache.

pub mod admin;
pub mod corrections;
pub mod import;
pub mod locks;
pub mod menu;
pub mod messages;
pub mod notice_channels;
pub mod notice_sender;
pub mod notices;
pub mod notify_consent;
pub mod oauth;
pub mod oauth_states;
pub mod pacing;
pub mod privacy;
pub mod rank;
pub mod ratelimit;
pub mod releases;
pub mod session;
pub mod students;
pub mod verify;
pub mod verify_files;
pub mod wxapi;
pub mod wxcheck;

use std::sync::atomic::{AtomicU64, Ordering};

use crate::clock::Clock;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::store::{Store, StoreError};
use crate::wechat::client::WxClient;
use crate::wechat::token::AccessTokens;

/// The leaves every service works with: configuration, data file, clock, WeChat client and
/// its access_token cache, metrics, and the data generation.
pub struct Ctx {
    pub config: Config,
    pub store: Store,
    pub clock: Clock,
    pub wx: WxClient,
    /// The basic access_token (single flight, cached in the data file).
    pub tokens: AccessTokens,
    pub metrics: Metrics,
    /// The data generation (bumped by each committed import), kept in memory: only this
    /// process writes the data file while it runs.
    generation: AtomicU64,
    /// The pages' epoch: part of every cached page's key, bumped by [`Ctx::data_changed`].
    page_epoch: AtomicU64,
}

impl Ctx {
    /// Open the data file and build the leaves.
    pub fn new(config: Config) -> Result<Ctx, StoreError> {
        let store = Store::open_with_cache(&config.data, config.data_cache_mb)?;
        let generation = store.generation()?;
        let wx = WxClient::new(
            &config.wechat.api_base,
            &config.wechat.app_id,
            &config.wechat.app_secret,
            config.wechat.timeout_secs,
        );
        let tokens = AccessTokens::new(config.wechat.token_api);
        Ok(Ctx {
            config,
            store,
            clock: Clock::default(),
            wx,
            tokens,
            metrics: Metrics::default(),
            generation: AtomicU64::new(generation),
            page_epoch: AtomicU64::new(0),
        })
    }

    /// The data generation: a plan made on an older one is stale.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// The pages' epoch: part of every cached page's key, so a bump retires them all.
    pub fn page_epoch(&self) -> u64 {
        self.page_epoch.load(Ordering::SeqCst)
    }

    /// After a write that may change any page (demo data): re-read the generation from the
    /// data file and retire every cached page.
    pub fn data_changed(&self) {
        self.data_written();
        self.page_epoch.fetch_add(1, Ordering::SeqCst);
    }

    /// After a write whose changed students are dropped from the cache one by one (an import,
    /// through [`Changed::Students`]): re-read the generation from the data file only.
    pub fn data_written(&self) {
        if let Ok(g) = self.store.generation() {
            self.generation.store(g, Ordering::SeqCst);
        }
    }
}

/// What a service's write means for pages cached from the data: the caller (a handler) drops
/// the pages of the student named, so a student's change costs only that student's pages.
#[must_use = "cached pages of the student must be dropped"]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Changed {
    /// Nothing shown on a page changed.
    Nothing,
    /// Pages of this student (by student ID) may show stale data.
    Student(String),
    /// Pages of these students may show stale data (an import's changes).
    Students(Vec<String>),
}
