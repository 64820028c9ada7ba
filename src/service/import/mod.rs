//! Import engine: file bytes → table (`sniff`, `table`) → columns (`layout`) → validated records
//! (`validate`, with registrar notations from `notation`), streamed one record at a time (`rows`)
//! → plan and commit (`plan`, `jobs`); an upload kept on disk, mapped (`file`); a preview's
//! errors as a CSV download (`error_list`). Files no layout reads are read through a column map
//! staff chose (`mapping`), which can be saved as a named preset and is then used again for the
//! same header row (`presets`).
pub mod error_list;
pub mod file;
pub mod jobs;
pub mod layout;
pub mod mapping;
pub mod notation;
pub mod plan;
pub mod presets;
pub mod rows;
pub mod sniff;
pub mod table;
pub mod validate;
