//! Staged releases (定时发布): where an import's grade rows go ([`Destination`], the one
//! switch `apply_import_to` writes through), the rows a release holds back in `release_rows_v1`
//! until its publish time, and publishing (the held rows move into the grades in one
//! transaction) or withdrawing (the held rows are dropped; nothing visible ever happened).
//! Readers of the grades table need no filter: held rows are simply not in it.

use std::ops::Bound;

use redb::{ReadableDatabase, ReadableTable, Table, WriteTransaction};
use serde::{Deserialize, Serialize};

use super::grades::{bump_generation, decode_row, ImportRecord};
use super::students::Student;
use super::tables::{BOUND, GRADES, RELEASES, RELEASE_DUE, RELEASE_ROWS, STUDENTS};
use super::{Result, Store, StoreError};
use crate::grades::GradeRecord;

/// Where an import writes its grade rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Destination {
    /// Into the grades students see, now.
    Live,
    /// Held in a release until `publish_at` (Unix seconds).
    Held { publish_at: i64 },
}

/// The value of a held row that removes the grade row when published (a grade value is
/// never empty: it holds at least two separators).
const REMOVAL: &str = "";

/// The grade-row writer of one import transaction, for either destination. Both read the
/// grades students see (to tell a changed row from an unchanged one); a held import writes
/// beside them, into its release.
pub(crate) enum GradeSink<'t> {
    Live(Table<'t, &'static str, &'static str>),
    Held {
        release: u64,
        live: Table<'t, &'static str, &'static str>,
        rows: Table<'t, (u64, &'static str), &'static str>,
    },
}

impl<'t> GradeSink<'t> {
    /// The writer for `destination`; `release` is the id of the import being written.
    pub(crate) fn open(
        tx: &'t WriteTransaction,
        destination: Destination,
        release: u64,
    ) -> Result<GradeSink<'t>> {
        Ok(match destination {
            Destination::Live => GradeSink::Live(tx.open_table(GRADES)?),
            Destination::Held { .. } => GradeSink::Held {
                release,
                live: tx.open_table(GRADES)?,
                rows: tx.open_table(RELEASE_ROWS)?,
            },
        })
    }

    fn visible(&self) -> &Table<'t, &'static str, &'static str> {
        match self {
            GradeSink::Live(t) => t,
            GradeSink::Held { live, .. } => live,
        }
    }

    /// The value students see for `key` now.
    pub(crate) fn live(&self, key: &str) -> Result<Option<String>> {
        Ok(self.visible().get(key)?.map(|v| v.value().to_string()))
    }

    /// The keys of the visible grade rows of `term` (a scan of every row).
    pub(crate) fn live_keys_in_term(&self, term: &str) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for item in self.visible().iter()? {
            let (k, _) = item?;
            let k = k.value();
            if k.split('\u{1f}').nth(1) == Some(term) {
                out.push(k.to_string());
            }
        }
        Ok(out)
    }

    /// Insert or replace a grade row.
    pub(crate) fn upsert(&mut self, key: &str, value: &str) -> Result<()> {
        match self {
            GradeSink::Live(t) => {
                t.insert(key, value)?;
            }
            GradeSink::Held { release, rows, .. } => {
                rows.insert((*release, key), value)?;
            }
        }
        Ok(())
    }

    /// Remove a grade row.
    pub(crate) fn remove(&mut self, key: &str) -> Result<()> {
        match self {
            GradeSink::Live(t) => {
                t.remove(key)?;
            }
            GradeSink::Held { release, rows, .. } => {
                rows.insert((*release, key), REMOVAL)?;
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReleaseState {
    Scheduled,
    Published,
    Withdrawn,
}

/// A release: the grades of one import, held until `publish_at`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Release {
    /// The id of the import that staged it.
    pub id: u64,
    pub created: i64,
    /// Who committed the import ("cli" or "admin:NAME").
    pub by: String,
    pub file_name: String,
    pub terms: Vec<String>,
    pub publish_at: i64,
    pub state: ReleaseState,
    /// The import's counts (held rows to add, change, remove).
    pub added: usize,
    pub changed: usize,
    pub removed: usize,
    /// Whether the import asked to notify the students when published.
    pub notify: bool,
    /// When and by whom it was published or withdrawn ("schedule" for the due-time check).
    pub done_at: Option<i64>,
    pub done_by: Option<String>,
    /// On publishing: rows that changed what students see, and notices written.
    pub published_rows: usize,
    pub notices: usize,
}

/// What a publish or withdraw found.
#[derive(Debug)]
pub enum ReleaseOutcome {
    Done(Release),
    NotFound,
    /// Already published or withdrawn: nothing changed.
    NotScheduled(Release),
}

/// Record the release of an import written with [`Destination::Held`], in its transaction.
pub(crate) fn schedule_in(
    tx: &WriteTransaction,
    record: &ImportRecord,
    publish_at: i64,
) -> Result<()> {
    let r = Release {
        id: record.id,
        created: record.at,
        by: record.by.clone(),
        file_name: record.file_name.clone(),
        terms: record.terms.clone(),
        publish_at,
        state: ReleaseState::Scheduled,
        added: record.added,
        changed: record.changed,
        removed: record.removed,
        notify: record.notify,
        done_at: None,
        done_by: None,
        published_rows: 0,
        notices: 0,
    };
    put(tx, &r)?;
    tx.open_table(RELEASE_DUE)?
        .insert((publish_at, record.id), ())?;
    Ok(())
}

fn put(tx: &WriteTransaction, r: &Release) -> Result<()> {
    let v = serde_json::to_vec(r)?;
    tx.open_table(RELEASES)?.insert(r.id, v.as_slice())?;
    Ok(())
}

fn get(tx: &WriteTransaction, id: u64) -> Result<Option<Release>> {
    let t = tx.open_table(RELEASES)?;
    let got = t.get(id)?;
    match got {
        Some(v) => Ok(Some(serde_json::from_slice(v.value())?)),
        None => Ok(None),
    }
}

/// The bound openid and roster name of a student, read inside `tx`: who a notice goes to.
/// None unless the student is both in the roster and bound (as an import's plan decides).
pub fn bound_student_in(
    tx: &WriteTransaction,
    student_id: &str,
) -> Result<Option<(String, String)>> {
    let openid = match tx.open_table(BOUND)?.get(student_id)? {
        Some(o) => o.value().to_string(),
        None => return Ok(None),
    };
    let students = tx.open_table(STUDENTS)?;
    let got = students.get(student_id)?;
    let Some(v) = got else {
        return Ok(None);
    };
    let s: Student = serde_json::from_slice(v.value())?;
    Ok(Some((openid, s.name)))
}

/// A bound of a key of `release_rows_v1`.
type HeldBound = Bound<(u64, &'static str)>;

/// The key range of release `id`'s held rows (no overflow at the last id).
fn held_range(id: u64) -> (HeldBound, HeldBound) {
    (
        Bound::Included((id, "")),
        match id.checked_add(1) {
            Some(next) => Bound::Excluded((next, "")),
            None => Bound::Unbounded,
        },
    )
}

/// The held rows of release `id`: (grade key, value or [`REMOVAL`]).
fn held_rows(tx: &WriteTransaction, id: u64) -> Result<Vec<(String, String)>> {
    let t = tx.open_table(RELEASE_ROWS)?;
    let mut out = Vec::new();
    for item in t.range(held_range(id))? {
        let (k, v) = item?;
        out.push((k.value().1.to_string(), v.value().to_string()));
    }
    Ok(out)
}

fn drop_held(tx: &WriteTransaction, id: u64, rows: &[(String, String)]) -> Result<()> {
    let mut t = tx.open_table(RELEASE_ROWS)?;
    for (k, _) in rows {
        t.remove((id, k.as_str()))?;
    }
    Ok(())
}

impl Store {
    /// Releases, newest first, at most `limit`.
    pub fn releases(&self, limit: usize) -> Result<Vec<Release>> {
        let tx = self.db().begin_read()?;
        let t = tx.open_table(RELEASES)?;
        let mut out = Vec::new();
        for item in t.iter()?.rev().take(limit) {
            let (_, v) = item?;
            out.push(serde_json::from_slice(v.value())?);
        }
        Ok(out)
    }

    pub fn release(&self, id: u64) -> Result<Option<Release>> {
        let tx = self.db().begin_read()?;
        let t = tx.open_table(RELEASES)?;
        let got = t.get(id)?;
        match got {
            Some(v) => Ok(Some(serde_json::from_slice(v.value())?)),
            None => Ok(None),
        }
    }

    /// The scheduled release due first, if its time is at or before `now`.
    pub fn next_due_release(&self, now: i64) -> Result<Option<u64>> {
        let tx = self.db().begin_read()?;
        let t = tx.open_table(RELEASE_DUE)?;
        let first = t.first()?;
        Ok(first.and_then(|(k, _)| {
            let (at, id) = k.value();
            (at <= now).then_some(id)
        }))
    }

    /// Publish a scheduled release in one transaction: its held rows go into the grades, the
    /// generation is bumped, and `extra` runs in the same transaction with the rows that
    /// changed what students see (new values; removals are not passed) and returns how many
    /// notices it wrote.
    pub fn publish_release(
        &self,
        id: u64,
        now: i64,
        by: &str,
        extra: impl FnOnce(&WriteTransaction, &Release, &[GradeRecord]) -> Result<usize>,
    ) -> Result<ReleaseOutcome> {
        let mut tx = self.db().begin_write()?;
        tx.set_durability(redb::Durability::Immediate)
            .map_err(|e| StoreError::Io(e.to_string()))?;
        let Some(mut r) = get(&tx, id)? else {
            return Ok(ReleaseOutcome::NotFound);
        };
        if r.state != ReleaseState::Scheduled {
            return Ok(ReleaseOutcome::NotScheduled(r));
        }
        let rows = held_rows(&tx, id)?;
        let mut changed: Vec<GradeRecord> = Vec::new();
        let mut visible = 0usize;
        {
            let mut grades = tx.open_table(GRADES)?;
            for (k, v) in &rows {
                if v == REMOVAL {
                    if grades.remove(k.as_str())?.is_some() {
                        visible += 1;
                    }
                    continue;
                }
                let differs = grades
                    .insert(k.as_str(), v.as_str())?
                    .is_none_or(|old| old.value() != v);
                if differs {
                    visible += 1;
                    changed.push(decode_row(k, v)?);
                }
            }
        }
        drop_held(&tx, id, &rows)?;
        tx.open_table(RELEASE_DUE)?.remove((r.publish_at, id))?;
        bump_generation(&tx)?;
        r.state = ReleaseState::Published;
        r.done_at = Some(now);
        r.done_by = Some(by.to_string());
        r.published_rows = visible;
        r.notices = extra(&tx, &r, &changed)?;
        put(&tx, &r)?;
        tx.commit()?;
        Ok(ReleaseOutcome::Done(r))
    }

    /// Withdraw a scheduled release: its held rows are dropped; the grades are untouched.
    pub fn withdraw_release(&self, id: u64, now: i64, by: &str) -> Result<ReleaseOutcome> {
        let tx = self.db().begin_write()?;
        let Some(mut r) = get(&tx, id)? else {
            return Ok(ReleaseOutcome::NotFound);
        };
        if r.state != ReleaseState::Scheduled {
            return Ok(ReleaseOutcome::NotScheduled(r));
        }
        let rows = held_rows(&tx, id)?;
        drop_held(&tx, id, &rows)?;
        tx.open_table(RELEASE_DUE)?.remove((r.publish_at, id))?;
        r.state = ReleaseState::Withdrawn;
        r.done_at = Some(now);
        r.done_by = Some(by.to_string());
        put(&tx, &r)?;
        tx.commit()?;
        Ok(ReleaseOutcome::Done(r))
    }

    /// How many rows release `id` still holds (tests and the CLI).
    pub fn held_row_count(&self, id: u64) -> Result<usize> {
        let tx = self.db().begin_read()?;
        let t = tx.open_table(RELEASE_ROWS)?;
        let mut n = 0;
        for item in t.range(held_range(id))? {
            item?;
            n += 1;
        }
        Ok(n)
    }
}
