//! The rules of the product, free of HTTP types.

pub mod admin;
pub mod grades;
pub mod import;
pub mod menu;
pub mod messages;
pub mod notices;
pub mod oauth;
pub mod oauth_states;
pub mod pacing;
pub mod ratelimit;
pub mod session;
pub mod students;
pub mod verify;
pub mod wxapi;
pub mod wxcheck;
