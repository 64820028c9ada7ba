//! Backups while the server runs: timed snapshots into `backup.dir` (named with their UTC time,
//! the oldest beyond `backup.keep` removed), the download behind `/admin/backup`, and the
//! "last backup" the dashboard shows. The copying itself is `store::backup` (one read
//! transaction, so writers go on meanwhile).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::service::Ctx;
use crate::store::backup::SnapshotInfo;
use crate::store::{Store, StoreError};

use super::audit::{self, Action};

const PREFIX: &str = "wxgrades-";
const SUFFIX: &str = ".redb";
const META_KEY: &str = "last_backup";

/// The last backup taken, kept in the data file's meta table.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LastBackup {
    pub at: i64,
    /// "snapshot", "download" or "cli".
    pub kind: String,
    /// The file written (snapshots and the command line), or empty for a download.
    pub file: String,
    pub bytes: u64,
}

pub fn last_backup(store: &Store) -> Option<LastBackup> {
    let raw = store.meta_get(META_KEY).ok().flatten()?;
    serde_json::from_slice(&raw).ok()
}

/// Remember (and audit) a backup.
pub fn note_backup(store: &Store, now: i64, actor: &str, info: &LastBackup) {
    match serde_json::to_vec(info) {
        Ok(v) => {
            if let Err(e) = store.meta_set(META_KEY, &v) {
                log::warn!("cannot record the last backup: {e}");
            }
        }
        Err(e) => log::warn!("cannot record the last backup: {e}"),
    }
    let detail = match info.kind.as_str() {
        "download" => format!("下载备份（{}）", crate::error::human_size(info.bytes)),
        "snapshot" => format!("定时快照 {}", info.file),
        _ => format!("命令行备份 {}", info.file),
    };
    audit::record(store, now, actor, Action::Backup, &detail, None);
}

/// The file name of a snapshot taken at `unix`.
pub fn snapshot_name(unix: i64) -> String {
    format!("{PREFIX}{}{SUFFIX}", super::stamp(unix))
}

/// The snapshots in `dir` (ours by name), oldest first, with their times.
pub fn list_snapshots(dir: &Path) -> Vec<(i64, PathBuf)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<(i64, PathBuf)> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let t = name
                .strip_prefix(PREFIX)
                .and_then(|r| r.strip_suffix(SUFFIX))
                .and_then(super::parse_stamp)?;
            Some((t, e.path()))
        })
        .collect();
    out.sort();
    out
}

/// Remove the oldest snapshots beyond `keep`; returns those removed.
pub fn prune(dir: &Path, keep: usize) -> Vec<PathBuf> {
    let all = list_snapshots(dir);
    let extra = all.len().saturating_sub(keep);
    let mut gone = Vec::new();
    for (_, p) in all.into_iter().take(extra) {
        match std::fs::remove_file(&p) {
            Ok(()) => gone.push(p),
            Err(e) => log::warn!("cannot remove old snapshot {}: {e}", p.display()),
        }
    }
    gone
}

/// Whether a timed snapshot is due at `now`.
pub fn due(ctx: &Ctx, now: i64) -> bool {
    let every = ctx.config.backup.every_hours as i64 * 3600;
    if every == 0 {
        return false;
    }
    match list_snapshots(&ctx.config.backup.dir).last() {
        Some((t, _)) => now - t >= every,
        None => true,
    }
}

/// Write a consistent snapshot of the data file to `path` (the store takes one at a time).
fn write_snapshot(ctx: &Ctx, path: &Path) -> Result<SnapshotInfo, StoreError> {
    ctx.store.write_snapshot(path)
}

/// Take a timed snapshot into `backup.dir` now, and prune.
pub fn take_snapshot(ctx: &Ctx) -> Result<SnapshotInfo, StoreError> {
    let now = ctx.clock.now();
    let dir = &ctx.config.backup.dir;
    let info = write_snapshot(ctx, &dir.join(snapshot_name(now)))?;
    for p in prune(dir, ctx.config.backup.keep) {
        log::info!("removed old snapshot {}", p.display());
    }
    note_backup(
        &ctx.store,
        now,
        "system",
        &LastBackup {
            at: now,
            kind: "snapshot".into(),
            file: info.path.display().to_string(),
            bytes: info.bytes,
        },
    );
    Ok(info)
}

/// A snapshot for download: an open file whose name is already removed (it goes away when
/// closed), and its size. Written in a temporary directory in `backup.dir` that is removed
/// with its contents once the file is open.
pub fn snapshot_for_download(ctx: &Ctx, actor: &str) -> Result<(std::fs::File, u64), StoreError> {
    let now = ctx.clock.now();
    let dir = &ctx.config.backup.dir;
    std::fs::create_dir_all(dir)
        .map_err(|e| StoreError::Io(format!("cannot create {}: {e}", dir.display())))?;
    let scratch = tempfile::Builder::new()
        .prefix(".download-")
        .tempdir_in(dir)
        .map_err(|e| {
            StoreError::Io(format!(
                "cannot create a temporary directory in {}: {e}",
                dir.display()
            ))
        })?;
    let path = scratch.path().join("snapshot.redb");
    let info = write_snapshot(ctx, &path)?;
    let file = std::fs::File::open(&path)
        .map_err(|e| StoreError::Io(format!("cannot reopen the snapshot: {e}")))?;
    // Removes the directory and the name; the open file stays readable until closed.
    drop(scratch);
    note_backup(
        &ctx.store,
        now,
        actor,
        &LastBackup {
            at: now,
            kind: "download".into(),
            file: String::new(),
            bytes: info.bytes,
        },
    );
    Ok((file, info.bytes))
}

/// Start the thread that takes timed snapshots (None when `every_hours` is 0); it ends soon
/// after `stop` is set.
pub fn spawn_scheduler(
    ctx: Arc<Ctx>,
    stop: Arc<AtomicBool>,
) -> Option<std::thread::JoinHandle<()>> {
    if ctx.config.backup.every_hours == 0 {
        return None;
    }
    std::thread::Builder::new()
        .name("backups".into())
        .spawn(move || scheduler(&ctx, &stop))
        .map_err(|e| log::error!("cannot start the backup thread: {e}"))
        .ok()
}

/// Wait `d`, or less when `stop` is set; true when stopping.
fn wait_or_stop(d: Duration, stop: &AtomicBool) -> bool {
    let tick = Duration::from_millis(200);
    let mut waited = Duration::ZERO;
    while waited < d {
        if stop.load(Ordering::SeqCst) {
            return true;
        }
        // A check of `stop`, not a wait for a result.
        std::thread::sleep(tick);
        waited += tick;
    }
    stop.load(Ordering::SeqCst)
}

fn scheduler(ctx: &Ctx, stop: &AtomicBool) {
    // Let start-up finish first.
    let mut wait = Duration::from_secs(10);
    while !wait_or_stop(wait, stop) {
        wait = Duration::from_secs(30);
        if due(ctx, ctx.clock.now()) {
            match take_snapshot(ctx) {
                Ok(info) => log::info!(
                    "snapshot written: {} ({} rows, {})",
                    info.path.display(),
                    info.rows,
                    crate::error::human_size(info.bytes)
                ),
                Err(e) => {
                    log::error!("snapshot failed: {e}; trying again in an hour");
                    wait = Duration::from_secs(3600);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_list_and_prune() {
        let d = std::env::temp_dir().join(format!("wxg-snaps-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        for t in [300, 100, 200, 400] {
            std::fs::write(d.join(snapshot_name(t)), b"x").unwrap();
        }
        std::fs::write(d.join("notes.txt"), b"keep me").unwrap();
        std::fs::write(d.join("wxgrades-garbage.redb"), b"keep me").unwrap();
        let times: Vec<i64> = list_snapshots(&d).into_iter().map(|(t, _)| t).collect();
        assert_eq!(times, vec![100, 200, 300, 400]);
        assert_eq!(snapshot_name(0), "wxgrades-19700101T000000Z.redb");
        let gone = prune(&d, 2);
        assert_eq!(gone.len(), 2);
        let times: Vec<i64> = list_snapshots(&d).into_iter().map(|(t, _)| t).collect();
        assert_eq!(times, vec![300, 400]);
        assert!(d.join("notes.txt").exists() && d.join("wxgrades-garbage.redb").exists());
    }
}
