//! Import engine: file bytes → table (`sniff`, `table`) → columns (`layout`) → validated records
//! (`validate`, with registrar notations from `notation`) → plan and commit (`plan`, `jobs`); a
//! preview's errors as a CSV download (`error_list`).
pub mod error_list;
pub mod jobs;
pub mod layout;
pub mod notation;
pub mod plan;
pub mod sniff;
pub mod table;
pub mod validate;
