//! Import engine: file bytes → table (`table`) → validated records (`validate`).
pub mod jobs;
pub mod layout;
pub mod notation;
pub mod plan;
pub mod sniff;
pub mod table;
pub mod validate;
