//! Import presets: saved column mappings (name → JSON [`Preset`]), one transaction each.

use redb::{ReadableDatabase, ReadableTable};
use serde::{Deserialize, Serialize};

use super::tables::IMPORT_PRESETS;
use super::{Result, Store};

/// A column mapping saved under a name, recognised again by its header signature.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Preset {
    /// "grades" or "roster".
    pub kind: String,
    /// The header row it was saved for, in signature form (see `service::import::mapping`).
    pub signature: String,
    /// (our field's key, the file's header as written).
    pub mapping: Vec<(String, String)>,
    /// "admin:NAME" or "cli".
    pub created_by: String,
    /// Unix seconds.
    pub at: i64,
}

impl Store {
    /// Every preset, by name.
    pub fn presets(&self) -> Result<Vec<(String, Preset)>> {
        let tx = self.db().begin_read()?;
        let t = tx.open_table(IMPORT_PRESETS)?;
        let mut out = Vec::new();
        for item in t.iter()? {
            let (k, v) = item?;
            out.push((k.value().to_string(), serde_json::from_slice(v.value())?));
        }
        Ok(out)
    }

    /// One preset.
    pub fn preset(&self, name: &str) -> Result<Option<Preset>> {
        self.read_json(IMPORT_PRESETS, name)
    }

    /// Save (or replace) a preset.
    pub fn save_preset(&self, name: &str, preset: &Preset) -> Result<()> {
        self.write_json(IMPORT_PRESETS, name, preset)
    }

    /// Remove a preset; false when there was none by that name.
    pub fn remove_preset(&self, name: &str) -> Result<bool> {
        let tx = self.db().begin_write()?;
        let removed = tx.open_table(IMPORT_PRESETS)?.remove(name)?.is_some();
        tx.commit()?;
        Ok(removed)
    }
}
