//! Rank within class or major (`[grades] rank`): every student's place by overall GPA in their
//! group, ties sharing a place ("1, 2, 2, 4"), computed from the data file after each committed
//! import ([`recompute`]) and stored, so a page shows a student their own place and group size
//! and nothing about anyone else. Students without a GPA, or without the group in the roster,
//! are not ranked and do not count.

use std::collections::HashMap;

use crate::config::RankScope;
use crate::error::AppError;
use crate::grades::{transcript, Gpa, GradeRecord, Scale};
use crate::service::Ctx;
use crate::store::grades::decode_row;
use crate::store::ranks::Rank;
use crate::store::students::Student;
use crate::store::Store;

/// Places within one group: (student ID, GPA) in any order → (student ID, place, group size).
/// Competition ranking: a place is one more than the number of strictly better GPAs.
pub fn places(mut group: Vec<(String, Gpa)>) -> Vec<(String, Rank)> {
    group.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let of = u32::try_from(group.len()).unwrap_or(u32::MAX);
    let mut out = Vec::with_capacity(group.len());
    let mut place = 0u32;
    let mut previous: Option<Gpa> = None;
    for (i, (sid, gpa)) in group.into_iter().enumerate() {
        if previous != Some(gpa) {
            place = u32::try_from(i + 1).unwrap_or(u32::MAX);
            previous = Some(gpa);
        }
        out.push((sid, Rank { place, of }));
    }
    out
}

/// Recompute and store every student's place under `ctx.config`'s scope. Called after each
/// committed import (grades or roster) and at start-up when the stored places were computed
/// under another scope.
pub fn recompute(ctx: &Ctx) -> Result<usize, AppError> {
    Ok(recompute_store(
        &ctx.store,
        ctx.config.rank,
        &ctx.config.scale,
    )?)
}

/// Which cached pages a caller of [`after_grades_changed`] drops itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pages {
    /// The changed students' pages, through the `Changed` it returns to its handler.
    OfChangedStudents,
    /// None (a background thread): every page must go.
    NoneDropped,
}

/// After live grades changed (an import, a published release, a correction): with a rank
/// scope, every student's place is recomputed — places move for anyone in a class or major —
/// and then every cached page retired, so no page of the new data shows an old place. Without
/// a scope nothing is written for ranks, and only the pages the caller cannot drop go.
pub fn after_grades_changed(ctx: &Ctx, after: &str, pages: Pages) {
    if ctx.config.rank != RankScope::None {
        if let Err(e) = recompute(ctx) {
            log::error!("recomputing ranks after {after} failed: {e}");
        }
        ctx.data_changed();
    } else if pages == Pages::NoneDropped {
        ctx.data_changed();
    } else {
        ctx.data_written();
    }
}

/// Recompute at start-up when the stored places were computed under another scope (or never).
pub fn recompute_if_stale(ctx: &Ctx) -> Result<(), AppError> {
    if ctx.store.rank_scope()?.as_deref() != Some(ctx.config.rank.as_str()) {
        let n = recompute(ctx)?;
        log::info!(
            "ranks recomputed ({}): {n} students ranked",
            ctx.config.rank.as_str()
        );
    }
    Ok(())
}

/// [`recompute`] over a store (the command-line import has no `Ctx`).
pub fn recompute_store(
    store: &Store,
    scope: RankScope,
    scale: &Scale,
) -> Result<usize, crate::store::StoreError> {
    if scope == RankScope::None {
        store.replace_ranks(scope.as_str(), &[])?;
        return Ok(0);
    }
    // Each student's group, from one read of the roster.
    let mut group_of: HashMap<String, String> = HashMap::new();
    {
        let snap = store.snapshot()?;
        let students = snap.students()?;
        use redb::ReadableTable;
        for item in students.iter()? {
            let (k, v) = item?;
            let Ok(s) = serde_json::from_slice::<Student>(v.value()) else {
                continue;
            };
            let group = match scope {
                RankScope::Class => s.class,
                RankScope::Major => s.major,
                RankScope::None => None,
            };
            if let Some(g) = group.filter(|g| !g.trim().is_empty()) {
                group_of.insert(k.value().to_string(), g);
            }
        }
    }
    // Grade rows come in key order, so each student's rows are together: one transcript each.
    let mut groups: HashMap<String, Vec<(String, Gpa)>> = HashMap::new();
    let mut rows: Vec<GradeRecord> = Vec::new();
    let mut flush = |rows: &mut Vec<GradeRecord>| {
        let Some(sid) = rows.first().map(|r| r.student_id.clone()) else {
            return;
        };
        if let Some(group) = group_of.get(&sid) {
            if let Some(gpa) = transcript(rows, scale).overall_gpa {
                groups.entry(group.clone()).or_default().push((sid, gpa));
            }
        }
        rows.clear();
    };
    store.for_each_grade(|k, v| {
        let r = decode_row(k, v)?;
        if rows.first().is_some_and(|f| f.student_id != r.student_id) {
            flush(&mut rows);
        }
        rows.push(r);
        Ok(())
    })?;
    flush(&mut rows);
    let ranks: Vec<(String, Rank)> = groups.into_values().flat_map(places).collect();
    store.replace_ranks(scope.as_str(), &ranks)?;
    Ok(ranks.len())
}

/// The place of `student_id` under the configured scope, or `None` when rank is off or the
/// student is not ranked.
pub fn rank_of(ctx: &Ctx, student_id: &str) -> Result<Option<Rank>, AppError> {
    if ctx.config.rank == RankScope::None {
        return Ok(None);
    }
    Ok(ctx.store.rank(student_id)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(h: u32) -> Gpa {
        serde_json::from_str(&format!("\"{}.{:02}\"", h / 100, h % 100)).unwrap()
    }

    fn table(group: &[(&str, u32)]) -> Vec<(String, u32, u32)> {
        let mut out: Vec<_> = places(group.iter().map(|(s, h)| (s.to_string(), g(*h))).collect())
            .into_iter()
            .map(|(s, r)| (s, r.place, r.of))
            .collect();
        out.sort();
        out
    }

    #[test]
    fn ties_share_a_place_and_the_next_place_skips() {
        let got = table(&[("a", 350), ("b", 380), ("c", 350), ("d", 300), ("e", 380)]);
        assert_eq!(
            got,
            vec![
                ("a".into(), 3, 5),
                ("b".into(), 1, 5),
                ("c".into(), 3, 5),
                ("d".into(), 5, 5),
                ("e".into(), 1, 5),
            ]
        );
    }

    #[test]
    fn all_equal_all_first_and_one_alone_is_first_of_one() {
        assert_eq!(
            table(&[("a", 200), ("b", 200), ("c", 200)]),
            vec![("a".into(), 1, 3), ("b".into(), 1, 3), ("c".into(), 1, 3)]
        );
        assert_eq!(table(&[("z", 0)]), vec![("z".into(), 1, 1)]);
        assert!(table(&[]).is_empty());
    }

    #[test]
    fn order_of_input_does_not_matter() {
        let a = table(&[("a", 310), ("b", 290), ("c", 310)]);
        let b = table(&[("c", 310), ("b", 290), ("a", 310)]);
        assert_eq!(a, b);
    }
}
