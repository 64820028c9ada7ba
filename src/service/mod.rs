//! The rules of the product, free of HTTP types.

pub mod grades;
pub mod import;
pub mod menu;
pub mod messages;
pub mod notices;
pub mod oauth;
pub mod session;
pub mod wxapi;
pub mod wxcheck;
