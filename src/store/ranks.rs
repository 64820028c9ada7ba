//! Each student's place by overall GPA within their class or major, as computed after the last
//! import (`service::rank`), and the scope it was computed for.

use redb::ReadableDatabase;
use serde::{Deserialize, Serialize};

use super::tables::{META, RANKS};
use super::{Result, Store};

/// A student's place in their group: "第 place / of 名".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rank {
    pub place: u32,
    pub of: u32,
}

const SCOPE_KEY: &str = "rank_scope";

impl Store {
    /// Replace every stored place with `ranks`, computed for `scope` ("class", "major" or
    /// "none"), in one transaction.
    pub fn replace_ranks(&self, scope: &str, ranks: &[(String, Rank)]) -> Result<()> {
        let tx = self.db().begin_write()?;
        {
            let mut t = tx.open_table(RANKS)?;
            t.retain(|_, _| false)?;
            for (sid, r) in ranks {
                let v = serde_json::to_vec(r)?;
                t.insert(sid.as_str(), v.as_slice())?;
            }
            tx.open_table(META)?.insert(SCOPE_KEY, scope.as_bytes())?;
        }
        tx.commit()?;
        Ok(())
    }

    /// The place of `student_id`, if ranked.
    pub fn rank(&self, student_id: &str) -> Result<Option<Rank>> {
        self.read_json(RANKS, student_id)
    }

    /// The scope the stored places were computed for; `None` before the first computation.
    pub fn rank_scope(&self) -> Result<Option<String>> {
        let tx = self.db().begin_read()?;
        let t = tx.open_table(META)?;
        let v = t.get(SCOPE_KEY)?;
        Ok(v.map(|v| String::from_utf8_lossy(v.value()).into_owned()))
    }
}
