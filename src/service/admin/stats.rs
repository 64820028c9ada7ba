//! Per-course statistics for the admin pages (count, mean, pass rate, a histogram of numeric
//! scores in 10-point bins) and the list of terms, computed in one scan of every grade row and
//! cached per data generation: only an import changes grade rows, and every import bumps the
//! generation, so a cached result is exact until the next import.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use redb::ReadableTable;

use crate::store::grades::decode_row;
use crate::store::{Store, StoreError};

/// One (term, course_code) over all its rows (every exam kind).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CourseStat {
    pub term: String,
    pub course_code: String,
    pub course_name: String,
    /// Rows.
    pub count: u64,
    /// Rows with a numeric score, and their sum in hundredths.
    pub numeric: u64,
    pub numeric_sum: u64,
    /// Rows passed, and rows passed or failed (缓考 and 取消 are neither).
    pub passed: u64,
    pub decided: u64,
    /// Numeric scores in bins [0,10), [10,20) … [90,100].
    pub histogram: [u64; 10],
}

impl CourseStat {
    fn new(term: &str, code: &str, name: &str) -> CourseStat {
        CourseStat {
            term: term.into(),
            course_code: code.into(),
            course_name: name.into(),
            count: 0,
            numeric: 0,
            numeric_sum: 0,
            passed: 0,
            decided: 0,
            histogram: [0; 10],
        }
    }

    /// Mean of the numeric scores, in hundredths (rounded), if any.
    pub fn mean_hundredths(&self) -> Option<u64> {
        (self.numeric > 0).then(|| (self.numeric_sum + self.numeric / 2) / self.numeric)
    }

    /// Pass rate in basis points (9250 = 92.50 %), if any row was passed or failed.
    pub fn pass_basis_points(&self) -> Option<u64> {
        (self.decided > 0).then(|| (self.passed * 10_000 + self.decided / 2) / self.decided)
    }
}

/// Everything the admin pages show about grade rows.
#[derive(Debug, Clone, Default)]
pub struct GradeStats {
    pub generation: u64,
    pub rows: u64,
    /// Newest first.
    pub terms: Vec<String>,
    /// By term (newest first), then course code.
    pub courses: Vec<CourseStat>,
}

impl GradeStats {
    pub fn course(&self, term: &str, code: &str) -> Option<&CourseStat> {
        self.courses
            .iter()
            .find(|c| c.term == term && c.course_code == code)
    }
}

/// The bin of a numeric score in hundredths.
pub fn bin(hundredths: u32) -> usize {
    ((hundredths / 1000) as usize).min(9)
}

/// Compute from one consistent read of the data file.
pub fn compute(store: &Store) -> Result<GradeStats, StoreError> {
    let snap = store.snapshot()?;
    let grades = snap.grades()?;
    let mut by_course: HashMap<(String, String), CourseStat> = HashMap::new();
    let mut terms = BTreeSet::new();
    let mut rows = 0u64;
    for item in grades.iter()? {
        let (k, v) = item?;
        let r = decode_row(k.value(), v.value())?;
        rows += 1;
        let term = r.term.as_str().to_string();
        terms.insert(term.clone());
        let stat = by_course
            .entry((term, r.course_code.clone()))
            .or_insert_with(|| CourseStat::new(r.term.as_str(), &r.course_code, &r.course_name));
        stat.count += 1;
        if let crate::grades::Score::Numeric(h) = r.score {
            stat.numeric += 1;
            stat.numeric_sum += u64::from(h);
            stat.histogram[bin(h)] += 1;
        }
        if r.score.passed() {
            stat.passed += 1;
        }
        if r.score.passed() || r.score.failed() {
            stat.decided += 1;
        }
    }
    let mut courses: Vec<CourseStat> = by_course.into_values().collect();
    courses.sort_by(|a, b| {
        b.term
            .cmp(&a.term)
            .then_with(|| a.course_code.cmp(&b.course_code))
    });
    Ok(GradeStats {
        generation: snap.generation,
        rows,
        terms: terms.into_iter().rev().collect(),
        courses,
    })
}

/// The statistics of the current generation, computed at most once per generation (one
/// computation at a time; others wait for it and share the result).
#[derive(Default)]
pub struct StatsCache {
    current: Mutex<Option<Arc<GradeStats>>>,
    computing: Mutex<()>,
}

impl StatsCache {
    pub fn get(&self, store: &Store) -> Result<Arc<GradeStats>, StoreError> {
        let generation = store.generation()?;
        if let Some(s) = self.cached(generation) {
            return Ok(s);
        }
        let _one = self.computing.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = self.cached(generation) {
            return Ok(s);
        }
        let fresh = Arc::new(compute(store)?);
        *self.current.lock().unwrap_or_else(|p| p.into_inner()) = Some(fresh.clone());
        Ok(fresh)
    }

    fn cached(&self, generation: u64) -> Option<Arc<GradeStats>> {
        let cur = self.current.lock().unwrap_or_else(|p| p.into_inner());
        cur.as_ref().filter(|s| s.generation >= generation).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grades::{Credit, ExamKind, GradeRecord, Score, Term};
    use crate::store::grades::{grade_key, grade_value, ImportBatch, ImportRecord};

    fn row(sid: &str, term: &str, code: &str, score: &str) -> (String, String) {
        let r = GradeRecord {
            student_id: sid.into(),
            term: Term::parse(term).unwrap(),
            course_code: code.into(),
            course_name: format!("课程{code}"),
            credit: Credit::parse("2").unwrap(),
            score: Score::parse(score).unwrap(),
            kind: ExamKind::Normal,
            name: None,
            course: Default::default(),
        };
        (
            grade_key(&r.student_id, &r.term, &r.course_code, r.kind),
            grade_value(&r),
        )
    }

    fn record() -> ImportRecord {
        ImportRecord {
            by: "test".into(),
            kind: "grades".into(),
            file_name: "t.csv".into(),
            result: "committed".into(),
            ..Default::default()
        }
    }

    #[test]
    fn bins() {
        assert_eq!(bin(0), 0);
        assert_eq!(bin(999), 0);
        assert_eq!(bin(1000), 1);
        assert_eq!(bin(8999), 8);
        assert_eq!(bin(9000), 9);
        assert_eq!(bin(10_000), 9);
    }

    #[test]
    fn computes_and_caches_per_generation() {
        let d = std::env::temp_dir().join(format!("wxg-stats-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        let store = Store::open(&d.join("x.redb")).unwrap();
        let batch = ImportBatch {
            grade_upserts: vec![
                row("1", "2025-2026-1", "C1", "95"),
                row("2", "2025-2026-1", "C1", "59.5"),
                row("3", "2025-2026-1", "C1", "缓考"),
                row("4", "2025-2026-1", "C1", "优秀"),
                row("1", "2024-2025-2", "C2", "100"),
            ],
            ..Default::default()
        };
        store
            .apply_import(&batch, record(), 0, |_, _| Ok(0))
            .unwrap();
        let cache = StatsCache::default();
        let s = cache.get(&store).unwrap();
        assert_eq!(s.rows, 5);
        assert_eq!(s.terms, vec!["2025-2026-1", "2024-2025-2"]);
        let c1 = s.course("2025-2026-1", "C1").unwrap();
        assert_eq!(c1.count, 4);
        assert_eq!(c1.numeric, 2);
        assert_eq!(c1.mean_hundredths(), Some(7725));
        assert_eq!((c1.passed, c1.decided), (2, 3));
        assert_eq!(c1.pass_basis_points(), Some(6667));
        assert_eq!(c1.histogram[9], 1);
        assert_eq!(c1.histogram[5], 1);
        assert_eq!(s.courses[0].term, "2025-2026-1");
        // Same generation: the same Arc.
        assert!(Arc::ptr_eq(&s, &cache.get(&store).unwrap()));
        let more = ImportBatch {
            grade_upserts: vec![row("5", "2025-2026-1", "C1", "60")],
            ..Default::default()
        };
        store
            .apply_import(&more, record(), 1, |_, _| Ok(0))
            .unwrap();
        let s2 = cache.get(&store).unwrap();
        assert_eq!(s2.course("2025-2026-1", "C1").unwrap().count, 5);
    }
}
