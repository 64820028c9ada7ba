//! Import engine: file bytes → table (`sniff`, `table`) → columns (`layout`) → validated records
//! (`validate`, with registrar notations from `notation`), streamed one record at a time (`rows`)
//! → plan and commit (`plan`, `jobs`).
pub mod file;
pub mod jobs;
pub mod layout;
pub mod notation;
pub mod plan;
pub mod rows;
pub mod sniff;
pub mod table;
pub mod validate;
