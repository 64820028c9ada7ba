//! wxgrades: a university's grades served through its WeChat official account.
//! The modules, leaves first: `store`, `wechat`, `service`, then `http`, `handlers`, `server`.

pub mod admin_cli;
pub mod app;
pub mod cli;
pub mod clock;
pub mod config;
pub mod demo;
pub mod error;
pub mod handlers;
pub mod http;
pub mod logging;
pub mod metrics;
pub mod secret;
pub mod server;
pub mod service;
pub mod site;
pub mod store;
pub mod views;
pub mod wechat;
