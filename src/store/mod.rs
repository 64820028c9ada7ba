//! The data file: one redb database. Opening (with the schema version check and the "held by
//! another process" message), the error type, and the typed methods of each area in the
//! submodules. Every method is one transaction; none holds a write transaction across a
//! network call.

pub mod admin;
pub mod auth;
pub mod backup;
pub mod consents;
pub mod corrections;
pub mod grades;
pub mod notice_batch;
pub mod notices;
pub mod presets;
pub mod privacy;
pub mod ranks;
pub mod releases;
pub mod students;
pub mod tables;

use redb::{Database, ReadableDatabase, ReadableTable};
use std::fmt;
use std::path::{Path, PathBuf};

use tables::META;

/// The data file's read cache unless configured (`data_cache_mb`), in MiB. Small: reads past
/// it come from the operating system's file cache at nearly the same speed (measured: pages and
/// sign-ins no slower at 4 than at 16, the 1.2 M-row import 5.5–6.0 s at either, 8.4 s at 0),
/// and every MiB of it is resident memory (README "Performance").
pub const DEFAULT_CACHE_MB: usize = 4;

/// The schema this binary writes. A data file with a higher number is refused.
pub const SCHEMA_VERSION: u64 = 1;

#[derive(Debug)]
pub enum StoreError {
    /// Another process (usually the running server) has the file open.
    Locked(PathBuf),
    /// Written by a newer wxgrades.
    TooNew { found: u64, known: u64 },
    /// Not a redb file, or damaged.
    Corrupt(String),
    /// Anything else redb or the disk reported.
    Io(String),
    /// A stored value that does not decode (a bug or a damaged file).
    Decode(String),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Locked(p) => write!(
                f,
                "the data file {} is in use by another process (most likely the running wxgrades server). \
                 Stop the server first, or, while it runs, use the admin pages (/admin) or the snapshots in backup.dir",
                p.display()
            ),
            StoreError::TooNew { found, known } => write!(
                f,
                "the data file was written by a newer wxgrades (schema {found}; this binary knows up to {known}). \
                 Install the newer wxgrades, or restore a backup made by this version"
            ),
            StoreError::Corrupt(m) => write!(f, "the data file is not a usable wxgrades data file: {m}"),
            StoreError::Io(m) => write!(f, "data file error: {m}"),
            StoreError::Decode(m) => write!(f, "a stored record could not be read: {m}"),
        }
    }
}

impl std::error::Error for StoreError {}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                StoreError::Io(e.to_string())
            }
        }
    )*};
}
from_redb!(
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

impl From<serde_json::Error> for StoreError {
    fn from(e: serde_json::Error) -> Self {
        StoreError::Decode(e.to_string())
    }
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// The open data file.
pub struct Store {
    db: Database,
    path: PathBuf,
    /// One snapshot at a time (timed snapshots and downloads).
    snapshot_lock: std::sync::Mutex<()>,
}

impl Store {
    /// Open (or create) the data file with the default read cache ([`DEFAULT_CACHE_MB`]).
    pub fn open(path: &Path) -> Result<Store> {
        Store::open_with_cache(path, DEFAULT_CACHE_MB)
    }

    /// Open (or create) the data file, create every table, check the schema version; redb
    /// keeps at most `cache_mb` MiB of the file's pages in memory.
    pub fn open_with_cache(path: &Path, cache_mb: usize) -> Result<Store> {
        if let Some(dir) = path.parent() {
            if !dir.as_os_str().is_empty() {
                std::fs::create_dir_all(dir).map_err(|e| {
                    StoreError::Io(format!("cannot create directory {}: {e}", dir.display()))
                })?;
            }
        }
        let db = Database::builder()
            .set_cache_size(cache_mb.saturating_mul(1024 * 1024))
            .create(path)
            .map_err(|e| open_error(path, e))?;
        let store = Store {
            snapshot_lock: std::sync::Mutex::new(()),
            db,
            path: path.to_path_buf(),
        };
        store.init()?;
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn db(&self) -> &Database {
        &self.db
    }

    fn init(&self) -> Result<()> {
        let tx = self.db.begin_write()?;
        {
            let mut meta = tx.open_table(META)?;
            let found = match meta.get("schema_version")? {
                Some(v) => Some(decode_u64(v.value())?),
                None => None,
            };
            match found {
                Some(v) if v > SCHEMA_VERSION => {
                    return Err(StoreError::TooNew {
                        found: v,
                        known: SCHEMA_VERSION,
                    })
                }
                Some(v) if v == SCHEMA_VERSION => {}
                _ => {
                    meta.insert("schema_version", SCHEMA_VERSION.to_be_bytes().as_slice())?;
                }
            }
        }
        tables::create_all(&tx)?;
        tx.commit()?;
        Ok(())
    }

    /// Whether the data file answers a read (for `/healthz`).
    pub fn healthy(&self) -> bool {
        self.db
            .begin_read()
            .map(|tx| tx.open_table(META).is_ok())
            .unwrap_or(false)
    }

    /// One JSON record of a table, in a read transaction of its own.
    pub(crate) fn read_json<'k, K: redb::Key + 'static, T: serde::de::DeserializeOwned>(
        &self,
        table: redb::TableDefinition<K, &'static [u8]>,
        key: impl std::borrow::Borrow<K::SelfType<'k>>,
    ) -> Result<Option<T>> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(table)?;
        let got = t.get(key)?;
        match got {
            Some(v) => Ok(Some(serde_json::from_slice(v.value())?)),
            None => Ok(None),
        }
    }

    /// Insert or replace one JSON record, in a write transaction of its own.
    pub(crate) fn write_json<'k, K: redb::Key + 'static, T: serde::Serialize>(
        &self,
        table: redb::TableDefinition<K, &'static [u8]>,
        key: impl std::borrow::Borrow<K::SelfType<'k>>,
        value: &T,
    ) -> Result<()> {
        let v = serde_json::to_vec(value)?;
        let tx = self.db.begin_write()?;
        tx.open_table(table)?.insert(key, v.as_slice())?;
        tx.commit()?;
        Ok(())
    }

    /// Remove one record, in a write transaction of its own.
    pub(crate) fn delete_key<'k, K: redb::Key + 'static>(
        &self,
        table: redb::TableDefinition<K, &'static [u8]>,
        key: impl std::borrow::Borrow<K::SelfType<'k>>,
    ) -> Result<()> {
        let tx = self.db.begin_write()?;
        tx.open_table(table)?.remove(key)?;
        tx.commit()?;
        Ok(())
    }

    pub fn meta_get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(META)?;
        Ok(t.get(key)?.map(|v| v.value().to_vec()))
    }

    pub fn meta_set(&self, key: &str, value: &[u8]) -> Result<()> {
        let tx = self.db.begin_write()?;
        tx.open_table(META)?.insert(key, value)?;
        tx.commit()?;
        Ok(())
    }
}

impl Store {
    /// Drop the JSON records of `table` for which `gone` says so (and any that no longer
    /// decode), at most `batch` per write transaction, so that a sweep of a large table never
    /// holds the writer for long; returns how many went. Candidates are found in a read
    /// transaction and checked again in the write one; nothing to drop writes nothing.
    pub(crate) fn drop_where_batched<K: redb::Key + 'static, T: serde::de::DeserializeOwned>(
        &self,
        table: redb::TableDefinition<K, &'static [u8]>,
        batch: usize,
        gone: impl Fn(&T) -> bool,
    ) -> Result<usize> {
        let is_gone = |v: &[u8]| {
            serde_json::from_slice::<T>(v)
                .map(|r| gone(&r))
                .unwrap_or(true)
        };
        let batch = batch.max(1);
        let mut total = 0usize;
        let mut after: Option<Vec<u8>> = None;
        loop {
            let mut keys: Vec<Vec<u8>> = Vec::new();
            let mut more = false;
            {
                let tx = self.db.begin_read()?;
                let t = tx.open_table(table)?;
                let rows = match &after {
                    Some(k) => t.range::<K::SelfType<'_>>((
                        std::ops::Bound::Excluded(K::from_bytes(k)),
                        std::ops::Bound::Unbounded,
                    ))?,
                    None => t.range::<K::SelfType<'_>>(..)?,
                };
                for row in rows {
                    let (k, v) = row?;
                    if is_gone(v.value()) {
                        keys.push(K::as_bytes(&k.value()).as_ref().to_vec());
                        if keys.len() >= batch {
                            more = true;
                            break;
                        }
                    }
                }
            }
            if keys.is_empty() {
                return Ok(total);
            }
            let tx = self.db.begin_write()?;
            {
                let mut t = tx.open_table(table)?;
                for k in &keys {
                    let still = match t.get(K::from_bytes(k))? {
                        Some(v) => is_gone(v.value()),
                        None => false,
                    };
                    if still {
                        t.remove(K::from_bytes(k))?;
                        total += 1;
                    }
                }
            }
            tx.commit()?;
            if !more {
                return Ok(total);
            }
            after = keys.pop();
        }
    }
}

fn decode_u64(b: &[u8]) -> Result<u64> {
    let arr: [u8; 8] = b
        .try_into()
        .map_err(|_| StoreError::Decode("schema_version is not 8 bytes".into()))?;
    Ok(u64::from_be_bytes(arr))
}

fn open_error(path: &Path, e: redb::DatabaseError) -> StoreError {
    match e {
        redb::DatabaseError::DatabaseAlreadyOpen => StoreError::Locked(path.to_path_buf()),
        redb::DatabaseError::UpgradeRequired(v) => StoreError::Corrupt(format!(
            "it uses redb file format {v}, which this build cannot read"
        )),
        redb::DatabaseError::Storage(redb::StorageError::Io(io))
            if io.kind() == std::io::ErrorKind::WouldBlock =>
        {
            StoreError::Locked(path.to_path_buf())
        }
        redb::DatabaseError::Storage(s) => match s {
            redb::StorageError::Io(io) => StoreError::Io(format!("{}: {io}", path.display())),
            other => StoreError::Corrupt(format!("{}: {other}", path.display())),
        },
        other => StoreError::Corrupt(format!("{}: {other}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("wxg-store-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d.join("x.redb")
    }

    #[test]
    fn second_open_is_refused_at_once() {
        let p = temp("lock");
        let _a = Store::open(&p).unwrap();
        let started = std::time::Instant::now();
        let e = Store::open(&p).err().unwrap();
        assert!(matches!(e, StoreError::Locked(_)), "{e}");
        assert!(e.to_string().contains("in use by another process"));
        assert!(started.elapsed().as_secs() < 2);
    }

    #[test]
    fn newer_schema_is_refused() {
        let p = temp("schema");
        {
            let s = Store::open(&p).unwrap();
            s.meta_set("schema_version", &(SCHEMA_VERSION + 1).to_be_bytes())
                .unwrap();
        }
        let e = Store::open(&p).err().unwrap();
        assert!(e.to_string().contains("newer wxgrades"), "{e}");
    }

    #[test]
    fn foreign_file_is_refused() {
        let p = temp("foreign");
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, b"this is not a database at all, just text").unwrap();
        assert!(Store::open(&p).is_err());
    }
}
