//! Import presets: a column map saved under a name, for one kind of file and one header row.
//! A later file of that kind whose header row has the same signature is read with it
//! ("识别为：预设 NAME"); `--preset NAME` names one. Saving and deleting from the admin page are
//! audited by its handler.

use super::mapping::{signature, ColumnMap};
use super::plan::ImportKind;
use super::table::HeaderRule;
use crate::service::Ctx;
use crate::store::presets::Preset;
use crate::store::{Store, StoreError};

/// At most this many presets are kept (a registrar has a handful of export layouts).
pub const MAX_PRESETS: usize = 100;

/// A preset name: 1 to 64 characters, no control characters, no `/`.
pub fn check_name(name: &str) -> Result<String, String> {
    let t = name.trim();
    if t.is_empty() || t.chars().count() > 64 || t.chars().any(|c| c.is_control() || c == '/') {
        return Err("预设名称应为 1 到 64 个字符，不含“/”和控制字符".into());
    }
    Ok(t.to_string())
}

/// Every preset, by name.
pub fn list_in(store: &Store) -> Result<Vec<(String, Preset)>, StoreError> {
    store.presets()
}

/// Every preset, by name (for the admin page).
pub fn list(ctx: &Ctx) -> Result<Vec<(String, Preset)>, StoreError> {
    list_in(&ctx.store)
}

/// The column map of a named preset, or an error listing the saved ones.
pub fn named(store: &Store, kind: ImportKind, name: &str) -> Result<ColumnMap, String> {
    let all = list_in(store).map_err(|e| e.to_string())?;
    match all.iter().find(|(n, _)| n == name) {
        Some((_, p)) if p.kind == kind.as_str() => Ok(ColumnMap {
            pairs: p.mapping.clone(),
        }),
        Some((_, p)) => Err(format!(
            "preset {name:?} is for {} files, not {}",
            p.kind,
            kind.as_str()
        )),
        None => {
            let names: Vec<&str> = all.iter().map(|(n, _)| n.as_str()).collect();
            Err(format!(
                "no preset named {name:?}; saved presets: {}",
                if names.is_empty() {
                    "(none)".to_string()
                } else {
                    names.join(", ")
                }
            ))
        }
    }
}

/// The header rule for files read with these maps: a row with one of their student-ID headers
/// is a header row too (so title rows above it are skipped).
pub fn header_rule(maps: &[ColumnMap]) -> HeaderRule {
    let names: Vec<String> = maps
        .iter()
        .filter_map(|m| m.header_for("student_id").map(str::to_string))
        .collect();
    if names.is_empty() {
        HeaderRule::Auto
    } else {
        HeaderRule::AlsoNamed(names)
    }
}

/// The header rule for a file of `kind` that may match any saved preset.
pub fn header_rule_for(store: &Store, kind: ImportKind) -> Result<HeaderRule, StoreError> {
    let maps: Vec<ColumnMap> = list_in(store)?
        .into_iter()
        .filter(|(_, p)| p.kind == kind.as_str())
        .map(|(_, p)| ColumnMap { pairs: p.mapping })
        .collect();
    Ok(header_rule(&maps))
}

/// The preset saved for this kind of file and this header row, if any: (name, map).
pub fn recognise(
    store: &Store,
    kind: ImportKind,
    headers: &[String],
) -> Result<Option<(String, ColumnMap)>, StoreError> {
    let sig = signature(headers);
    Ok(list_in(store)?
        .into_iter()
        .find(|(_, p)| p.kind == kind.as_str() && p.signature == sig)
        .map(|(name, p)| {
            (
                name,
                ColumnMap {
                    pairs: p.mapping.clone(),
                },
            )
        }))
}

/// Save `map` as preset `name` for files of `kind` with this header row (for the admin page).
pub fn save(
    ctx: &Ctx,
    name: &str,
    kind: ImportKind,
    headers: &[String],
    map: &ColumnMap,
    by: &str,
) -> Result<String, String> {
    save_in(&ctx.store, name, kind, headers, map, by, ctx.clock.now())
}

/// Save `map` as preset `name` for files of `kind` with this header row. Replaces a preset of
/// the same name; refused when the store already holds [`MAX_PRESETS`] others. Returns the
/// name as stored (trimmed).
pub fn save_in(
    store: &Store,
    name: &str,
    kind: ImportKind,
    headers: &[String],
    map: &ColumnMap,
    by: &str,
    now: i64,
) -> Result<String, String> {
    let name = check_name(name)?;
    let all = list_in(store).map_err(|e| e.to_string())?;
    if all.len() >= MAX_PRESETS && !all.iter().any(|(n, _)| *n == name) {
        return Err(format!("已有 {MAX_PRESETS} 个预设，请先删除不用的预设"));
    }
    let preset = Preset {
        kind: kind.as_str().to_string(),
        signature: signature(headers),
        mapping: map.pairs.clone(),
        created_by: by.to_string(),
        at: now,
    };
    store
        .save_preset(&name, &preset)
        .map_err(|e| e.to_string())?;
    Ok(name)
}

/// Delete a preset; false when there was none by that name.
pub fn remove_in(store: &Store, name: &str) -> Result<bool, StoreError> {
    store.remove_preset(name)
}

/// Delete a preset (for the admin page).
pub fn remove(ctx: &Ctx, name: &str) -> Result<bool, StoreError> {
    remove_in(&ctx.store, name)
}
