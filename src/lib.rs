//! wxgrades: a university's grades served through its WeChat official account.
//! The modules, leaves first: `grades`, `store`, `wechat`, `http`, `service`, then `handlers`
//! and `app` (wiring, background threads, the `Site` that `server` serves; `server` itself knows
//! only `http`). See ARCHITECTURE.md.

pub mod admin_cli;
pub mod app;
pub mod cli;
pub mod clock;
pub mod config;
pub mod demo;
pub mod error;
pub mod grades;
pub mod handlers;
pub mod http;
pub mod log_files;
pub mod logging;
pub mod metrics;
pub mod page_cache;
pub mod secret;
pub mod server;
pub mod service;
pub mod store;
pub mod url;
pub mod views;
pub mod wechat;
