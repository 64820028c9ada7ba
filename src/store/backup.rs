//! Consistent copies of the data file, and checking and restoring them.
//!
//! Method: every table is copied into a new database inside **one read transaction** of the
//! live file. redb's read transactions are snapshots (MVCC), so the copy holds exactly one
//! committed state even while an import commits meanwhile, and writers are never blocked (the
//! other method, copying the file under an empty write transaction, stalls every bind and
//! import for the copy's duration). The copy is also a freshly written, cleanly closed, compact
//! file, which opens read-only without a repair; a byte copy of the live file is never cleanly
//! closed. The cost is CPU for re-inserting rows (about a second per million rows) and keeping
//! [`visit_all`] complete, which a test checks against the tables the store creates, and
//! [`Store::write_snapshot`] refuses a table it does not know rather than dropping it.
//! The copy is written to a temporary file beside its destination, synced, then renamed.

use std::path::{Path, PathBuf};

use redb::{
    Database, Key, MultimapTableHandle, ReadOnlyDatabase, ReadTransaction, ReadableDatabase,
    ReadableTable, ReadableTableMetadata, TableDefinition, TableHandle, Value, WriteTransaction,
};

use super::tables::*;
use super::{Result, Store, StoreError, SCHEMA_VERSION};

/// Something done to every table of the data file, typed.
trait TableVisitor {
    fn visit<K: Key + 'static, V: Value + 'static>(
        &mut self,
        def: TableDefinition<'static, K, V>,
    ) -> Result<()>;
}

/// Every table of the data file. A table added to `tables.rs` must be added here too (the
/// test `every_created_table_is_visited` fails until it is).
fn visit_all(v: &mut impl TableVisitor) -> Result<()> {
    v.visit(META)?;
    v.visit(SESSIONS)?;
    v.visit(OAUTH_STATES)?;
    v.visit(WX_USERS)?;
    v.visit(STUDENTS)?;
    v.visit(BINDINGS)?;
    v.visit(BOUND)?;
    v.visit(BIND_LOG)?;
    v.visit(GRADES)?;
    v.visit(IMPORTS)?;
    v.visit(IMPORT_PRESETS)?;
    v.visit(RELEASES)?;
    v.visit(RELEASE_ROWS)?;
    v.visit(RELEASE_DUE)?;
    v.visit(CORRECTIONS)?;
    v.visit(ADMINS)?;
    v.visit(ADMIN_SESSIONS)?;
    v.visit(AUDIT)?;
    v.visit(NOTICES)?;
    v.visit(NOTICE_DUE)?;
    v.visit(NOTICE_BY_MSGID)?;
    v.visit(NOTICE_STATS)?;
    v.visit(NOTICE_CONSENTS)?;
    v.visit(SIGNINS)?;
    v.visit(NOTICES_OFF)?;
    v.visit(RANKS)?;
    Ok(())
}

fn known_tables() -> Vec<String> {
    struct Names(Vec<String>);
    impl TableVisitor for Names {
        fn visit<K: Key + 'static, V: Value + 'static>(
            &mut self,
            def: TableDefinition<'static, K, V>,
        ) -> Result<()> {
            self.0.push(def.name().to_string());
            Ok(())
        }
    }
    let mut n = Names(Vec::new());
    // The visitor cannot fail.
    let _ = visit_all(&mut n);
    n.0
}

fn table_names(tx: &ReadTransaction) -> Result<Vec<String>> {
    let mut names: Vec<String> = tx.list_tables()?.map(|h| h.name().to_string()).collect();
    names.extend(tx.list_multimap_tables()?.map(|h| h.name().to_string()));
    Ok(names)
}

struct Copier<'a> {
    src: &'a ReadTransaction,
    dst: &'a WriteTransaction,
    present: Vec<String>,
    rows: u64,
}

impl TableVisitor for Copier<'_> {
    fn visit<K: Key + 'static, V: Value + 'static>(
        &mut self,
        def: TableDefinition<'static, K, V>,
    ) -> Result<()> {
        let mut to = self.dst.open_table(def)?;
        if !self.present.iter().any(|n| n == def.name()) {
            return Ok(());
        }
        let from = self.src.open_table(def)?;
        for item in from.iter()? {
            let (k, v) = item?;
            to.insert(k.value(), v.value())?;
            self.rows += 1;
        }
        Ok(())
    }
}

/// What a snapshot holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotInfo {
    pub path: PathBuf,
    pub rows: u64,
    pub bytes: u64,
}

/// A temporary name beside `dest`, hidden, unique.
fn temp_beside(dest: &Path, tag: &str) -> PathBuf {
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "wxgrades".into());
    let dir = parent_dir(dest);
    dir.join(format!(
        ".{name}.{tag}-{}.tmp",
        crate::secret::random_hex::<6>()
    ))
}

fn parent_dir(p: &Path) -> PathBuf {
    match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn io(what: &str, path: &Path, e: std::io::Error) -> StoreError {
    StoreError::Io(format!("{what} {}: {e}", path.display()))
}

/// fsync a file, then its directory (so a rename into it is durable too).
fn sync_file(path: &Path) -> Result<()> {
    std::fs::File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(|e| io("cannot sync", path, e))
}

fn sync_dir(dir: &Path) {
    // Directories cannot be synced on every platform; a failure here loses nothing written.
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

fn db_error(path: &Path, e: impl std::fmt::Display) -> StoreError {
    StoreError::Io(format!("{}: {e}", path.display()))
}

impl Store {
    /// Write a consistent copy of the data file to `dest` (replacing it), through a temporary
    /// file beside it. Writers go on meanwhile; the copy holds the state of one moment. One
    /// snapshot at a time.
    pub fn write_snapshot(&self, dest: &Path) -> Result<SnapshotInfo> {
        let _one = self.snapshot_lock.lock().unwrap_or_else(|p| p.into_inner());
        let dir = parent_dir(dest);
        std::fs::create_dir_all(&dir).map_err(|e| io("cannot create directory", &dir, e))?;
        let tmp = temp_beside(dest, "snapshot");
        let result = self.copy_into(&tmp).and_then(|rows| {
            sync_file(&tmp)?;
            std::fs::rename(&tmp, dest).map_err(|e| io("cannot rename into", dest, e))?;
            sync_dir(&dir);
            let bytes = std::fs::metadata(dest).map(|m| m.len()).unwrap_or(0);
            Ok(SnapshotInfo {
                path: dest.to_path_buf(),
                rows,
                bytes,
            })
        });
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result
    }

    fn copy_into(&self, tmp: &Path) -> Result<u64> {
        let src = self.db().begin_read()?;
        let present = table_names(&src)?;
        let known = known_tables();
        if let Some(unknown) = present.iter().find(|n| !known.contains(n)) {
            return Err(StoreError::Corrupt(format!(
                "the data file has a table {unknown:?} that this build cannot back up"
            )));
        }
        let out = Database::builder()
            .create(tmp)
            .map_err(|e| db_error(tmp, e))?;
        let w = out.begin_write()?;
        let rows = {
            let mut c = Copier {
                src: &src,
                dst: &w,
                present,
                rows: 0,
            };
            visit_all(&mut c)?;
            c.rows
        };
        w.commit()?;
        // Dropping the database closes the file cleanly.
        drop(out);
        Ok(rows)
    }
}

/// What a checked backup holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupSummary {
    pub schema_version: u64,
    pub students: u64,
    pub bindings: u64,
    pub grades: u64,
    pub imports: u64,
    pub admins: u64,
    pub bytes: u64,
}

struct Reader<'a> {
    tx: &'a ReadTransaction,
    present: Vec<String>,
    counts: Vec<(String, u64)>,
}

impl TableVisitor for Reader<'_> {
    fn visit<K: Key + 'static, V: Value + 'static>(
        &mut self,
        def: TableDefinition<'static, K, V>,
    ) -> Result<()> {
        if !self.present.iter().any(|n| n == def.name()) {
            return Ok(());
        }
        let t = self.tx.open_table(def).map_err(|e| {
            StoreError::Corrupt(format!("table {} cannot be opened: {e}", def.name()))
        })?;
        let mut n = 0u64;
        for item in t.iter()? {
            let (k, v) =
                item.map_err(|e| StoreError::Corrupt(format!("table {}: {e}", def.name())))?;
            // Decode both, so every page is read.
            let _ = (k.value(), v.value());
            n += 1;
        }
        if n != t.len()? {
            return Err(StoreError::Corrupt(format!(
                "table {} has {n} entries, but says {}",
                def.name(),
                t.len()?
            )));
        }
        self.counts.push((def.name().to_string(), n));
        Ok(())
    }
}

/// Tables a wxgrades data file always has.
const REQUIRED: [&str; 3] = ["meta_v1", "students_v1", "grades_v1"];

/// Check that `file` is a usable wxgrades backup: a cleanly closed redb file, no newer schema
/// than this build, every table of ours readable to the last entry, checksums intact. The file
/// itself is never written: the checks that need a writable database run on a copy in
/// `scratch_dir`, which is removed afterwards unless `keep_copy` (then its path is returned).
pub fn check_backup(
    file: &Path,
    scratch_dir: &Path,
    keep_copy: bool,
) -> Result<(BackupSummary, Option<PathBuf>)> {
    let meta = std::fs::metadata(file).map_err(|e| io("cannot read", file, e))?;
    if !meta.is_file() {
        return Err(StoreError::Corrupt(format!(
            "{} is not a file",
            file.display()
        )));
    }
    std::fs::create_dir_all(scratch_dir)
        .map_err(|e| io("cannot create directory", scratch_dir, e))?;
    let copy = temp_beside(&scratch_dir.join("restore"), "check");
    let result = std::fs::copy(file, &copy)
        .map_err(|e| io("cannot copy", file, e))
        .and_then(|_| check_copy(&copy, meta.len()));
    match result {
        Ok(summary) if keep_copy => Ok((summary, Some(copy))),
        Ok(summary) => {
            let _ = std::fs::remove_file(&copy);
            Ok((summary, None))
        }
        Err(e) => {
            let _ = std::fs::remove_file(&copy);
            Err(e)
        }
    }
}

fn not_ours(m: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(m.to_string())
}

fn check_copy(copy: &Path, bytes: u64) -> Result<BackupSummary> {
    // 1. A cleanly closed redb file (a byte copy of the live file, or a truncated one, is not).
    match ReadOnlyDatabase::open(copy) {
        Ok(db) => drop(db),
        Err(redb::DatabaseError::RepairAborted) => {
            return Err(not_ours(
                "it was not closed cleanly (a copy of the live data file, or a damaged one); \
                 use a snapshot from backup.dir, /admin/backup or `wxgrades backup`",
            ))
        }
        Err(e) => return Err(not_ours(format!("it is not a readable redb file ({e})"))),
    }
    // 2. Checksums of every tree.
    let mut db =
        Database::open(copy).map_err(|e| not_ours(format!("it cannot be opened ({e})")))?;
    match db.check_integrity() {
        Ok(true) => {}
        Ok(false) => return Err(not_ours("its integrity check found damage")),
        Err(e) => return Err(not_ours(format!("its integrity check failed ({e})"))),
    }
    // 3. Ours, not newer, every table readable.
    let tx = db.begin_read()?;
    let present = table_names(&tx)?;
    for r in REQUIRED {
        if !present.iter().any(|n| n == r) {
            return Err(not_ours(format!(
                "it is not a wxgrades data file (no table {r})"
            )));
        }
    }
    let known = known_tables();
    if let Some(unknown) = present.iter().find(|n| !known.contains(n)) {
        return Err(not_ours(format!(
            "it has a table {unknown:?} that this build does not know (made by another version?)"
        )));
    }
    let version = {
        let t = tx.open_table(META)?;
        let v = t.get("schema_version")?;
        match v {
            Some(v) => super::decode_u64(v.value())?,
            None => {
                return Err(not_ours(
                    "it is not a wxgrades data file (no schema version)",
                ))
            }
        }
    };
    if version > SCHEMA_VERSION {
        return Err(StoreError::TooNew {
            found: version,
            known: SCHEMA_VERSION,
        });
    }
    let mut r = Reader {
        tx: &tx,
        present,
        counts: Vec::new(),
    };
    visit_all(&mut r)?;
    let count = |name: &str| {
        r.counts
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, c)| *c)
            .unwrap_or(0)
    };
    Ok(BackupSummary {
        schema_version: version,
        students: count(STUDENTS.name()),
        bindings: count(BINDINGS.name()),
        grades: count(GRADES.name()),
        imports: count(IMPORTS.name()),
        admins: count(ADMINS.name()),
        bytes,
    })
}

/// How a restore went.
#[derive(Debug, Clone)]
pub struct Restored {
    pub summary: BackupSummary,
    /// Where the data file that was replaced now is (None when there was none).
    pub replaced: Option<PathBuf>,
}

/// Put the backup `file` in place of the data file `data`, after checking it. The old data file
/// is kept beside it as `<data>.replaced-<stamp>`. Refused while another process (the server)
/// holds the data file; the data file is untouched unless everything succeeds.
pub fn restore(file: &Path, data: &Path, stamp: &str) -> Result<Restored> {
    let dir = parent_dir(data);
    std::fs::create_dir_all(&dir).map_err(|e| io("cannot create directory", &dir, e))?;
    if same_file(file, data) {
        return Err(StoreError::Corrupt(format!(
            "{} is the data file itself",
            file.display()
        )));
    }
    // Check first: a refused backup never touches the data file (not even to test its lock).
    let (summary, copy) = check_backup(file, &dir, true)?;
    let Some(copy) = copy else {
        return Err(StoreError::Io("the checked copy went missing".into()));
    };
    let result = swap_in(&copy, data, stamp);
    if result.is_err() {
        let _ = std::fs::remove_file(&copy);
    }
    result.map(|replaced| Restored { summary, replaced })
}

fn swap_in(copy: &Path, data: &Path, stamp: &str) -> Result<Option<PathBuf>> {
    sync_file(copy)?;
    // Hold the data file's lock over the swap so a server starting now waits for nothing half
    // done: it opens either the old file before this or the new one after.
    let held = hold(data)?;
    let replaced = if data.exists() {
        let mut name = data.as_os_str().to_owned();
        name.push(format!(".replaced-{stamp}"));
        let replaced = PathBuf::from(name);
        // A second name for the old file first, so the data path is never missing.
        if std::fs::hard_link(data, &replaced).is_err() {
            std::fs::copy(data, &replaced).map_err(|e| io("cannot keep", data, e))?;
        }
        Some(replaced)
    } else {
        None
    };
    std::fs::rename(copy, data).map_err(|e| io("cannot put the backup in place at", data, e))?;
    sync_dir(&parent_dir(data));
    drop(held);
    Ok(replaced)
}

/// Open the data file read-only to hold a lock on it; `Locked` when another process (the
/// server) has it. Read-only, so that the file kept as `.replaced-…` is byte for byte the old
/// data file. A data file that is missing, or too damaged to open, holds nothing (that is what
/// a restore is for).
fn hold(data: &Path) -> Result<Option<ReadOnlyDatabase>> {
    if !data.exists() {
        return Ok(None);
    }
    match ReadOnlyDatabase::open(data) {
        Ok(db) => Ok(Some(db)),
        Err(redb::DatabaseError::DatabaseAlreadyOpen) => Err(StoreError::Locked(data.into())),
        Err(redb::DatabaseError::Storage(redb::StorageError::Io(e)))
            if e.kind() == std::io::ErrorKind::WouldBlock =>
        {
            Err(StoreError::Locked(data.into()))
        }
        Err(_) => Ok(None),
    }
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}

/// True when `a` and `b` name the same existing file.
pub fn is_same_file(a: &Path, b: &Path) -> bool {
    same_file(a, b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("wxg-backup-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn every_created_table_is_visited() {
        let d = dir("tables");
        let s = Store::open(&d.join("x.redb")).unwrap();
        let tx = s.db().begin_read().unwrap();
        let mut present = table_names(&tx).unwrap();
        present.sort();
        let mut known = known_tables();
        known.sort();
        assert_eq!(
            present, known,
            "store/backup.rs visit_all must list every table of tables.rs"
        );
    }

    #[test]
    fn snapshot_checks_and_restores() {
        let d = dir("roundtrip");
        let data = d.join("data.redb");
        let snap = d.join("snaps/one.redb");
        {
            let s = Store::open(&data).unwrap();
            s.meta_set("probe", b"before").unwrap();
            let info = s.write_snapshot(&snap).unwrap();
            assert!(info.rows >= 2 && info.bytes > 0);
            s.meta_set("probe", b"after").unwrap();
        }
        let (summary, kept) = check_backup(&snap, &d, false).unwrap();
        assert_eq!(summary.schema_version, SCHEMA_VERSION);
        assert!(kept.is_none());
        let r = restore(&snap, &data, "T1").unwrap();
        let replaced = r.replaced.unwrap();
        assert!(replaced.ends_with("data.redb.replaced-T1"));
        let s = Store::open(&data).unwrap();
        assert_eq!(s.meta_get("probe").unwrap().unwrap(), b"before");
        drop(s);
        let old = Store::open(&replaced).unwrap();
        assert_eq!(old.meta_get("probe").unwrap().unwrap(), b"after");
        // No temporary files left behind.
        let leftovers: Vec<_> = std::fs::read_dir(&d)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[test]
    fn foreign_redb_file_is_refused() {
        let d = dir("foreign");
        let f = d.join("other.redb");
        {
            let db = Database::create(&f).unwrap();
            let w = db.begin_write().unwrap();
            {
                let def: TableDefinition<&str, u64> = TableDefinition::new("things");
                w.open_table(def).unwrap().insert("a", 1).unwrap();
            }
            w.commit().unwrap();
        }
        let e = check_backup(&f, &d, false).unwrap_err();
        assert!(e.to_string().contains("not a wxgrades data file"), "{e}");
    }

    #[test]
    fn restore_refused_while_held() {
        let d = dir("held");
        let data = d.join("data.redb");
        let snap = d.join("snap.redb");
        let s = Store::open(&data).unwrap();
        s.write_snapshot(&snap).unwrap();
        let e = restore(&snap, &data, "T").unwrap_err();
        assert!(matches!(e, StoreError::Locked(_)), "{e}");
    }
}
