//! Per-course and per-teaching-class statistics for the admin pages — count, mean, median,
//! (population) standard deviation, pass and excellent rates, a histogram of numeric scores
//! in 10-point bands — the courses whose pass rate is unusual for their term, and the list of
//! terms; computed in one scan of every grade row and cached per data generation: only an
//! import changes grade rows, and every import bumps the generation, so a cached result is
//! exact until the next import. Figures are exact integers (hundredths, basis points) except
//! the standard deviation, which is rounded to hundredths.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Deref;
use std::sync::{Arc, Mutex};

use redb::ReadableTable;

use crate::grades::{FiveLevel, Score};
use crate::store::grades::decode_row;
use crate::store::{Store, StoreError};

/// A course whose pass rate is below this (basis points) is flagged.
pub const LOW_PASS_BP: u64 = 6000;
/// A course whose pass rate is this far (basis points) from the median of its term's courses
/// is flagged, when the term has [`MIN_TERM_COURSES`] courses of [`MIN_DECIDED`] rows.
pub const FAR_FROM_TERM_BP: u64 = 2000;
/// Courses with fewer decided rows are never flagged (a make-up exam of one student says
/// nothing about the course).
pub const MIN_DECIDED: u64 = 5;
pub const MIN_TERM_COURSES: usize = 3;
/// A numeric score at or above this (hundredths) is excellent (优秀, as is the level 优秀).
pub const EXCELLENT: u32 = 9000;

/// The figures of a group of grade rows (a course, or one teaching class of it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Figures {
    /// Rows.
    pub count: u64,
    /// Rows with a numeric score, and their sum in hundredths.
    pub numeric: u64,
    pub numeric_sum: u64,
    /// Median of the numeric scores in hundredths (the mean of the middle two, rounded half
    /// up, for an even number), if any.
    pub median: Option<u64>,
    /// Population standard deviation (divided by n) of the numeric scores, in hundredths
    /// (rounded), if any.
    pub sd: Option<u64>,
    /// Rows passed, and rows passed or failed (缓考 and 取消 are neither).
    pub passed: u64,
    pub decided: u64,
    /// Rows scoring at least 90 or 优秀 (of the decided rows).
    pub excellent: u64,
    /// Numeric scores in bands [0,10), [10,20) … [80,90), [90,100] (100 is in the last).
    pub histogram: [u64; 10],
}

impl Figures {
    /// Mean of the numeric scores, in hundredths (rounded), if any.
    pub fn mean_hundredths(&self) -> Option<u64> {
        (self.numeric > 0).then(|| (self.numeric_sum + self.numeric / 2) / self.numeric)
    }

    /// Pass rate in basis points (9250 = 92.50 %), if any row was passed or failed.
    pub fn pass_basis_points(&self) -> Option<u64> {
        rate(self.passed, self.decided)
    }

    /// Excellent rate in basis points, of the rows passed or failed.
    pub fn excellent_basis_points(&self) -> Option<u64> {
        rate(self.excellent, self.decided)
    }
}

fn rate(part: u64, whole: u64) -> Option<u64> {
    (whole > 0).then(|| (part * 10_000 + whole / 2) / whole)
}

/// Rows of a group while they are counted. Numeric scores (0..=10000 hundredths) are kept as
/// `u16` for the median: two bytes a row.
#[derive(Default)]
struct Tally {
    figures: Figures,
    sum_squares: u128,
    scores: Vec<u16>,
}

impl Tally {
    /// Count `score` and keep it for the median.
    fn add(&mut self, score: &Score) {
        self.count(score);
        if let Score::Numeric(h) = *score {
            self.scores.push(u16::try_from(h).unwrap_or(u16::MAX));
        }
    }

    /// Count `score` without keeping it (its median comes from elsewhere, `finish_with`).
    fn count(&mut self, score: &Score) {
        let f = &mut self.figures;
        f.count += 1;
        if let Score::Numeric(h) = *score {
            f.numeric += 1;
            f.numeric_sum += u64::from(h);
            f.histogram[bin(h)] += 1;
            self.sum_squares += u128::from(h) * u128::from(h);
        }
        if score.passed() {
            f.passed += 1;
        }
        if score.passed() || score.failed() {
            f.decided += 1;
        }
        let excellent = match *score {
            Score::Numeric(h) => h >= EXCELLENT,
            Score::Level(l) => l == FiveLevel::Excellent,
            _ => false,
        };
        if excellent {
            f.excellent += 1;
        }
    }

    fn finish(mut self) -> Figures {
        let mut scores = std::mem::take(&mut self.scores);
        self.finish_with(&mut scores)
    }

    /// The figures, the median taken from `scores` (the numeric scores counted).
    fn finish_with(mut self, scores: &mut [u16]) -> Figures {
        self.figures.median = median(scores);
        self.figures.sd = population_sd(
            self.figures.numeric,
            self.figures.numeric_sum,
            self.sum_squares,
        );
        self.figures
    }
}

/// The median of `scores` (hundredths): the middle one, or the mean of the middle two rounded
/// half up. Sorts `scores`.
pub fn median(scores: &mut [u16]) -> Option<u64> {
    if scores.is_empty() {
        return None;
    }
    scores.sort_unstable();
    let n = scores.len();
    let mid = u64::from(scores[n / 2]);
    Some(if n % 2 == 1 {
        mid
    } else {
        (u64::from(scores[n / 2 - 1]) + mid).div_ceil(2)
    })
}

/// The population standard deviation (hundredths, rounded) of `n` scores with this sum and
/// sum of squares (both in hundredths).
pub fn population_sd(n: u64, sum: u64, sum_squares: u128) -> Option<u64> {
    if n == 0 {
        return None;
    }
    let n = u128::from(n);
    // n² · variance, exact: n·Σx² − (Σx)² (never negative).
    let scaled = (n * sum_squares).saturating_sub(u128::from(sum) * u128::from(sum));
    Some(((scaled as f64).sqrt() / n as f64).round() as u64)
}

/// One teaching class (教学班) of a course.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassStat {
    /// As imported; None for rows that name no teaching class.
    pub class_group: Option<String>,
    pub figures: Figures,
}

/// Why a course's pass rate stands out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unusual {
    /// Below [`LOW_PASS_BP`].
    Low,
    /// At least [`FAR_FROM_TERM_BP`] below the median pass rate of its term's courses (given).
    BelowTerm { term_median_bp: u64 },
    /// At least [`FAR_FROM_TERM_BP`] above it.
    AboveTerm { term_median_bp: u64 },
}

impl Unusual {
    /// What the page and the CSV say about it.
    pub fn describe(self, pass_bp: u64) -> String {
        match self {
            Unusual::Low => format!("通过率低于 {}%", one_decimal(LOW_PASS_BP)),
            Unusual::BelowTerm { term_median_bp } => format!(
                "通过率比本学期各课程中位数（{}%）低 {} 个百分点",
                one_decimal(term_median_bp),
                one_decimal(term_median_bp.saturating_sub(pass_bp))
            ),
            Unusual::AboveTerm { term_median_bp } => format!(
                "通过率比本学期各课程中位数（{}%）高 {} 个百分点",
                one_decimal(term_median_bp),
                one_decimal(pass_bp.saturating_sub(term_median_bp))
            ),
        }
    }
}

/// Hundredths (a score, or basis points as a percentage) with one decimal, rounded half up:
/// 7725 → "77.3".
pub fn one_decimal(hundredths: u64) -> String {
    let t = (hundredths + 5) / 10;
    format!("{}.{}", t / 10, t % 10)
}

/// One (term, course_code) over all its rows (every exam kind); its figures are reached
/// through `Deref` (`c.count`, `c.mean_hundredths()`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CourseStat {
    pub term: String,
    pub course_code: String,
    pub course_name: String,
    pub figures: Figures,
    /// By teaching class name (rows without one last); empty when no row names a class.
    pub classes: Vec<ClassStat>,
    pub unusual: Option<Unusual>,
}

impl Deref for CourseStat {
    type Target = Figures;
    fn deref(&self) -> &Figures {
        &self.figures
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

/// The band of a numeric score in hundredths (100 is in the last band, 90–100).
pub fn bin(hundredths: u32) -> usize {
    ((hundredths / 1000) as usize).min(9)
}

/// A course's rows while they are counted: the whole course and each teaching class.
#[derive(Default)]
struct CourseTally {
    name: String,
    all: Tally,
    classes: BTreeMap<Option<String>, Tally>,
}

/// Compute from one consistent read of the data file.
pub fn compute(store: &Store) -> Result<GradeStats, StoreError> {
    let snap = store.snapshot()?;
    let grades = snap.grades()?;
    let mut by_course: HashMap<(String, String), CourseTally> = HashMap::new();
    let mut terms = BTreeSet::new();
    let mut rows = 0u64;
    for item in grades.iter()? {
        let (k, v) = item?;
        let r = decode_row(k.value(), v.value())?;
        rows += 1;
        let term = r.term.as_str().to_string();
        terms.insert(term.clone());
        let t = by_course
            .entry((term, r.course_code.clone()))
            .or_insert_with(|| CourseTally {
                name: r.course_name.clone(),
                ..Default::default()
            });
        // Each score is kept once, in its class's tally (None: no class named); the course's
        // median is taken from all of them when the course is finished.
        t.all.count(&r.score);
        t.classes
            .entry(r.course.class_group.clone())
            .or_default()
            .add(&r.score);
    }
    let mut courses: Vec<CourseStat> = by_course
        .into_iter()
        .map(|((term, course_code), t)| {
            let mut all_scores: Vec<u16> = t
                .classes
                .values()
                .flat_map(|c| c.scores.iter().copied())
                .collect();
            let figures = t.all.finish_with(&mut all_scores);
            drop(all_scores);
            let named = t.classes.keys().any(Option::is_some);
            let mut classes: Vec<ClassStat> = if named {
                t.classes
                    .into_iter()
                    .map(|(class_group, tally)| ClassStat {
                        class_group,
                        figures: tally.finish(),
                    })
                    .collect()
            } else {
                Vec::new()
            };
            // None sorts first in the map; rows without a class go last.
            classes.sort_by_key(|c| c.class_group.is_none());
            CourseStat {
                term,
                course_code,
                course_name: t.name,
                figures,
                classes,
                unusual: None,
            }
        })
        .collect();
    courses.sort_by(|a, b| {
        b.term
            .cmp(&a.term)
            .then_with(|| a.course_code.cmp(&b.course_code))
    });
    flag_unusual(&mut courses);
    Ok(GradeStats {
        generation: snap.generation,
        rows,
        terms: terms.into_iter().rev().collect(),
        courses,
    })
}

/// Mark the courses whose pass rate is low, or far from the median of their term's courses.
pub fn flag_unusual(courses: &mut [CourseStat]) {
    // Basis points: at most 10,000.
    let mut rates: HashMap<String, Vec<u16>> = HashMap::new();
    for c in courses.iter().filter(|c| c.decided >= MIN_DECIDED) {
        if let Some(p) = c.pass_basis_points() {
            rates
                .entry(c.term.clone())
                .or_default()
                .push(u16::try_from(p).unwrap_or(u16::MAX));
        }
    }
    let medians: HashMap<String, u64> = rates
        .into_iter()
        .filter(|(_, r)| r.len() >= MIN_TERM_COURSES)
        .filter_map(|(t, mut r)| median(&mut r).map(|m| (t, m)))
        .collect();
    for c in courses.iter_mut().filter(|c| c.decided >= MIN_DECIDED) {
        let Some(p) = c.pass_basis_points() else {
            continue;
        };
        let term_median = medians.get(&c.term).copied();
        c.unusual = if p < LOW_PASS_BP {
            Some(Unusual::Low)
        } else {
            match term_median {
                Some(m) if p + FAR_FROM_TERM_BP <= m => {
                    Some(Unusual::BelowTerm { term_median_bp: m })
                }
                Some(m) if p >= m + FAR_FROM_TERM_BP => {
                    Some(Unusual::AboveTerm { term_median_bp: m })
                }
                _ => None,
            }
        };
    }
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
        row_in(sid, term, code, score, None)
    }

    fn row_in(
        sid: &str,
        term: &str,
        code: &str,
        score: &str,
        class_group: Option<&str>,
    ) -> (String, String) {
        let mut r = GradeRecord {
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
        r.course.class_group = class_group.map(str::to_string);
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

    fn tally(scores: &[&str]) -> Figures {
        let mut t = Tally::default();
        for s in scores {
            t.add(&Score::parse(s).unwrap());
        }
        t.finish()
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&mut []), None);
        assert_eq!(median(&mut [7000]), Some(7000));
        assert_eq!(median(&mut [9000, 6000, 7000]), Some(7000));
        assert_eq!(median(&mut [9000, 6000, 7000, 8000]), Some(7500));
        // Half a hundredth rounds up.
        assert_eq!(median(&mut [6001, 6000]), Some(6001));
        let f = tally(&["80", "缓考", "60", "优秀", "90", "70"]);
        assert_eq!(
            f.median,
            Some(7500),
            "levels and statuses are not in the median"
        );
    }

    #[test]
    fn standard_deviation_is_the_population_one() {
        assert_eq!(population_sd(0, 0, 0), None);
        // 2, 4, 4, 4, 5, 5, 7, 9: mean 5, population sd 2.
        let xs: Vec<u32> = [2u32, 4, 4, 4, 5, 5, 7, 9]
            .iter()
            .map(|x| x * 100)
            .collect();
        let sum: u64 = xs.iter().map(|&x| u64::from(x)).sum();
        let sq: u128 = xs.iter().map(|&x| u128::from(x) * u128::from(x)).sum();
        assert_eq!(population_sd(8, sum, sq), Some(200));
        assert_eq!(population_sd(1, 9000, 9000 * 9000), Some(0));
        // 60 and 90: sd 15.
        let f = tally(&["60", "90"]);
        assert_eq!((f.mean_hundredths(), f.sd), (Some(7500), Some(1500)));
        // 59.5, 60, 61: mean 60.1667, sd 0.6236.
        let f = tally(&["59.5", "60", "61"]);
        assert_eq!(f.sd, Some(62));
    }

    #[test]
    fn bands_rates_and_excellent() {
        let f = tally(&[
            "100",
            "90",
            "89.99",
            "0",
            "9.99",
            "10",
            "优秀",
            "良好",
            "不合格",
            "缓考",
        ]);
        assert_eq!(f.histogram[9], 2, "90 and 100 are both in 90–100");
        assert_eq!(f.histogram[8], 1);
        assert_eq!(f.histogram[0], 2);
        assert_eq!(f.histogram[1], 1);
        assert_eq!(f.histogram.iter().sum::<u64>(), f.numeric);
        assert_eq!(f.count, 10);
        assert_eq!(f.numeric, 6);
        // Decided: all but 缓考 (9); passed: 100, 90, 89.99, 优秀, 良好 (5).
        assert_eq!((f.passed, f.decided), (5, 9));
        assert_eq!(f.pass_basis_points(), Some(5556));
        // Excellent: 100, 90, 优秀.
        assert_eq!(f.excellent, 3);
        assert_eq!(f.excellent_basis_points(), Some(3333));
        assert_eq!(Figures::default().excellent_basis_points(), None);
    }

    fn course(term: &str, code: &str, passed: u64, decided: u64) -> CourseStat {
        CourseStat {
            term: term.into(),
            course_code: code.into(),
            course_name: code.into(),
            figures: Figures {
                passed,
                decided,
                count: decided,
                ..Default::default()
            },
            classes: Vec::new(),
            unusual: None,
        }
    }

    #[test]
    fn unusual_pass_rates() {
        let t = "2025-2026-1";
        let mut cs = vec![
            course(t, "A", 90, 100),
            course(t, "B", 85, 100),
            course(t, "C", 88, 100),
            course(t, "D", 62, 100), // 23 points below the median 85 (of A–E)
            course(t, "E", 50, 100), // below 60 %
            course(t, "F", 1, 2),    // 50 % of 2: too few to flag
            course(t, "G", 3, 4),    // 75 % of 4: too few to compare with the term
            course("2024-2025-2", "H", 70, 100), // a term of one course: no median
        ];
        flag_unusual(&mut cs);
        let got: Vec<_> = cs
            .iter()
            .map(|c| (c.course_code.as_str(), c.unusual))
            .collect();
        assert_eq!(got[0], ("A", None));
        assert_eq!(got[1], ("B", None));
        assert_eq!(
            got[3],
            (
                "D",
                Some(Unusual::BelowTerm {
                    term_median_bp: 8500
                })
            )
        );
        assert_eq!(got[4], ("E", Some(Unusual::Low)));
        assert_eq!(got[5], ("F", None));
        assert_eq!(got[6], ("G", None));
        assert_eq!(got[7], ("H", None));
        let mut high = vec![
            course(t, "A", 60, 100),
            course(t, "B", 62, 100),
            course(t, "C", 100, 100),
        ];
        flag_unusual(&mut high);
        assert_eq!(
            high[2].unusual,
            Some(Unusual::AboveTerm {
                term_median_bp: 6200
            })
        );
    }

    #[test]
    fn decimals_and_descriptions() {
        assert_eq!(one_decimal(7725), "77.3");
        assert_eq!(one_decimal(7724), "77.2");
        assert_eq!(one_decimal(10_000), "100.0");
        assert_eq!(one_decimal(0), "0.0");
        assert_eq!(Unusual::Low.describe(5000), "通过率低于 60.0%");
        assert_eq!(
            Unusual::BelowTerm {
                term_median_bp: 8650
            }
            .describe(6200),
            "通过率比本学期各课程中位数（86.5%）低 24.5 个百分点"
        );
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
        assert!(c1.classes.is_empty(), "no row names a teaching class");
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

    #[test]
    fn teaching_classes() {
        let d = std::env::temp_dir().join(format!("wxg-stats-cls-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        let store = Store::open(&d.join("x.redb")).unwrap();
        let t = "2025-2026-1";
        let batch = ImportBatch {
            grade_upserts: vec![
                row_in("1", t, "C1", "95", Some("高数-02班")),
                row_in("2", t, "C1", "55", Some("高数-01班")),
                row_in("3", t, "C1", "75", Some("高数-01班")),
                row_in("4", t, "C1", "80", None),
            ],
            ..Default::default()
        };
        store
            .apply_import(&batch, record(), 0, |_, _| Ok(0))
            .unwrap();
        let s = compute(&store).unwrap();
        let c = s.course(t, "C1").unwrap();
        assert_eq!(c.count, 4);
        assert_eq!(c.median, Some(7750));
        let names: Vec<_> = c.classes.iter().map(|k| k.class_group.as_deref()).collect();
        assert_eq!(names, vec![Some("高数-01班"), Some("高数-02班"), None]);
        let one = &c.classes[0].figures;
        assert_eq!(
            (one.count, one.mean_hundredths(), one.median),
            (2, Some(6500), Some(6500))
        );
        assert_eq!(one.pass_basis_points(), Some(5000));
        assert_eq!(c.classes[1].figures.excellent, 1);
        assert_eq!(c.classes[2].figures.count, 1);
    }
}
