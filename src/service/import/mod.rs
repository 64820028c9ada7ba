//! Import engine: file bytes → table (`table`) → validated records (`validate`).
pub mod table;
pub mod validate;
pub mod plan;
