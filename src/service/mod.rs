//! The rules of the product, free of HTTP types.

pub mod admin;
pub mod grades;
pub mod import;
pub mod oauth;
pub mod ratelimit;
pub mod session;
pub mod students;
pub mod verify;
