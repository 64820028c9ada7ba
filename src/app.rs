//! `App`: everything a request handler needs (config, store, views, WeChat client, clock),
//! built once and shared by the workers through `Arc`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

pub use crate::clock::Clock;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::service::import::jobs::ImportJobs;
use crate::service::messages::Inbox;
use crate::service::notices::Wake;
use crate::service::ratelimit::Limiter;
use crate::service::students::{BIND_LOCK_SECS, BIND_MAX_FAILURES};
use crate::service::verify::VerifyKey;
use crate::store::{Store, StoreError};
use crate::views::Views;
use crate::wechat::client::WxClient;
use crate::wechat::sim::Simulator;
use crate::wechat::token::AccessTokens;

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

/// Rendered pages by key (student, term, data generation…), kept gzip-compressed, so that a
/// student reloading their grades costs a lookup, not a render, and a thousand cached pages
/// cost a few megabytes. Cleared whenever data or bindings change.
#[derive(Default)]
pub struct PageCache {
    map: Mutex<HashMap<String, Arc<[u8]>>>,
}

const PAGE_CACHE_MAX: usize = 20_000;

impl PageCache {
    pub fn get(&self, key: &str) -> Option<Arc<[u8]>> {
        self.map.lock().ok()?.get(key).cloned()
    }

    /// Compress and keep `html`; returns the compressed bytes.
    pub fn put(&self, key: String, html: &str) -> Arc<[u8]> {
        let gz: Arc<[u8]> = gzip(html.as_bytes()).into();
        if let Ok(mut m) = self.map.lock() {
            if m.len() >= PAGE_CACHE_MAX {
                m.clear();
            }
            m.insert(key, gz.clone());
        }
        gz
    }

    pub fn clear(&self) {
        if let Ok(mut m) = self.map.lock() {
            m.clear();
        }
    }
}

/// gzip at a moderate level (pages are compressed once, served many times).
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(
        Vec::with_capacity(bytes.len() / 6),
        flate2::Compression::new(6),
    );
    // Writing into a Vec cannot fail.
    let _ = e.write_all(bytes);
    e.finish().unwrap_or_default()
}

/// The page for a client: gzip as is when it takes gzip, else inflated.
pub fn page_response(req: &crate::http::Request, gz: Arc<[u8]>) -> crate::http::Response {
    use crate::http::{Body, Response};
    if req.accepts_gzip() {
        return Response::new(200, "text/html; charset=utf-8", Body::Shared(gz))
            .with_header("Content-Encoding", "gzip")
            .with_header("Vary", "Accept-Encoding")
            .with_header("Cache-Control", "no-store");
    }
    let mut html = Vec::new();
    let _ = std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gz[..]), &mut html);
    Response::new(200, "text/html; charset=utf-8", Body::Bytes(html))
        .with_header("Vary", "Accept-Encoding")
        .with_header("Cache-Control", "no-store")
}

pub struct App {
    pub config: Config,
    pub store: Store,
    pub views: Views,
    pub wx: WxClient,
    pub clock: Clock,
    pub metrics: Metrics,
    pub oauth_locks: KeyedLocks,
    /// Web-authorization states (in memory: `/wx/oauth/start` writes nothing to disk).
    pub oauth_states: crate::service::oauth_states::OAuthStates,
    /// The WeChat simulator, in demo mode only.
    pub sim: Option<Simulator>,
    /// The basic access_token (single flight, cached in the data file).
    pub tokens: AccessTokens,
    /// Answers to recent WeChat messages, for WeChat's retries.
    pub wx_inbox: Inbox,
    /// Signed `/wx` URLs seen within the timestamp window (replay defence).
    pub wx_replay: crate::wechat::replay::ReplayGuard,
    /// Wakes the grade-notice sender.
    pub notice_wake: Wake,
    /// The key of the verification-value hashes (a file beside the data file).
    pub verify_key: VerifyKey,
    /// Bind failures per WeChat user (`u:`): locks.
    pub bind_limit: Limiter,
    /// Bind failures per student ID (`s:`): only a pace, per WeChat user.
    pub bind_pace: crate::service::pacing::Pacer,
    pub pages: PageCache,
    /// Admin imports in progress and their previews.
    pub jobs: ImportJobs,
    /// The data generation (bumped by each committed import), kept in memory: only this
    /// process writes the data file while it runs.
    generation: AtomicU64,
    /// Admin sign-in lock-outs and caches.
    pub admin: crate::service::admin::AdminState,
}

impl App {
    /// Open the data file and build everything a worker needs.
    pub fn new(config: Config) -> Result<App, StoreError> {
        let store = Store::open(&config.data)?;
        let generation = store.generation()?;
        let verify_key = VerifyKey::load_or_create(&config.data).map_err(StoreError::Io)?;
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
            oauth_states: Default::default(),
            sim,
            tokens,
            wx_inbox: Inbox::default(),
            wx_replay: Default::default(),
            notice_wake: Wake::default(),
            verify_key,
            bind_limit: Limiter::new(BIND_MAX_FAILURES, BIND_LOCK_SECS, BIND_LOCK_SECS),
            bind_pace: crate::service::pacing::Pacer::new(BIND_LOCK_SECS),
            pages: PageCache::default(),
            jobs: ImportJobs::default(),
            generation: AtomicU64::new(generation),
            admin: Default::default(),
        })
    }
}

impl App {
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// After a write that changes what pages show: re-read the generation, drop cached pages.
    pub fn data_changed(&self) {
        if let Ok(g) = self.store.generation() {
            self.generation.store(g, Ordering::SeqCst);
        }
        self.pages.clear();
    }
}
