//! The transcript rules of SPEC.md: grade points, term GPA, overall GPA, credits earned.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use serde::de::Deserializer;
use serde::{Deserialize, Serialize, Serializer};

use super::scale::*;
use super::values::*;

/// Grade point in hundredths on `scale`, or `None` for 合格/不合格 and statuses.
pub fn grade_point(scale: &Scale, score: &Score) -> Option<u32> {
    scale.grade_point(score)
}

// ---------------------------------------------------------------------------------------------
// GPA and transcript
// ---------------------------------------------------------------------------------------------

/// A grade point average, rounded half away from zero to hundredths from the exact ratio.
/// Displays with two decimals (`"3.52"`); serialized as that text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Gpa(pub(super) u32);

impl Gpa {
    /// Σ(credit × point) / Σ credit, with credit and point in hundredths; `None` when there are
    /// no credits.
    pub(super) fn from_sums(weighted: u64, credits: u64) -> Option<Gpa> {
        if credits == 0 {
            return None;
        }
        // weighted / credits is the GPA in hundredths; round half up (values are non-negative).
        let h = (2 * weighted + credits) / (2 * credits);
        Some(Gpa(u32::try_from(h).unwrap_or(u32::MAX)))
    }

    /// The GPA in hundredths (352 for 3.52).
    pub fn hundredths(self) -> u32 {
        self.0
    }
}

impl fmt::Display for Gpa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:02}", self.0 / 100, self.0 % 100)
    }
}

impl Serialize for Gpa {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Gpa {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        deserialize_parsed(d, "a GPA such as \"3.52\"", |s| match parse_hundredths(s) {
            Decimal::Value(h) if h <= u64::from(u32::MAX) => Ok(Gpa(h as u32)),
            _ => Err(format!("not a GPA: {:?}", shown(s))),
        })
    }
}

/// One course attempt as shown on the transcript.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CourseLine {
    pub course_code: String,
    pub course_name: String,
    pub credit: Credit,
    pub score: Score,
    pub kind: ExamKind,
    /// Hundredths (370 = 3.7); `None` for 合格/不合格 and statuses.
    pub grade_point: Option<u32>,
    pub failed: bool,
    pub passed: bool,
    /// 课程性质 and score components as the file gave them (empty when it gave none).
    #[serde(default)]
    pub facts: CourseFacts,
}

/// One term of a transcript.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TermSummary {
    pub term: Term,
    /// Every attempt in the term, by course name, then course code, then exam kind.
    pub courses: Vec<CourseLine>,
    /// `None` when no course of the term carries a grade point (shown as "—").
    pub gpa: Option<Gpa>,
    /// Credits of the term's courses, each course code once.
    pub credits_attempted: Credit,
    /// Credits of the term's courses passed in this term, each course code once.
    pub credits_earned: Credit,
}

/// A student's grades with the SPEC's sums.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transcript {
    /// Newest term first.
    pub terms: Vec<TermSummary>,
    /// Each course code's best graded attempt across all terms, counted once.
    pub overall_gpa: Option<Gpa>,
    /// Each course code passed at least once, counted once.
    pub credits_earned: Credit,
}

impl Transcript {
    /// The summary of one term, if the student has grades in it.
    pub fn term(&self, term: &Term) -> Option<&TermSummary> {
        self.terms.iter().find(|t| t.term == *term)
    }
}

/// Per course code: the best graded attempt (points, credit) and the credit earned.
#[derive(Default)]
struct CourseTally {
    best: Option<(u32, u32)>,
    attempted: u32,
    earned: Option<u32>,
}

impl CourseTally {
    fn add(&mut self, credit: u32, point: Option<u32>, passed: bool) {
        if let Some(p) = point {
            // Best attempt: highest grade point; equal points keep the larger credit so the
            // choice does not depend on row order.
            if self.best.is_none_or(|b| (p, credit) > b) {
                self.best = Some((p, credit));
            }
        }
        self.attempted = self.attempted.max(credit);
        if passed {
            self.earned = Some(self.earned.map_or(credit, |e| e.max(credit)));
        }
    }
}

/// GPA and credits earned over a set of tallies.
fn sums<'a>(tallies: impl Iterator<Item = &'a CourseTally>) -> (Option<Gpa>, Credit, Credit) {
    let (mut weighted, mut credits, mut attempted, mut earned) = (0u64, 0u64, 0u32, 0u32);
    for t in tallies {
        if let Some((p, c)) = t.best {
            weighted += u64::from(p) * u64::from(c);
            credits += u64::from(c);
        }
        attempted = attempted.saturating_add(t.attempted);
        earned = earned.saturating_add(t.earned.unwrap_or(0));
    }
    (
        Gpa::from_sums(weighted, credits),
        Credit(attempted),
        Credit(earned),
    )
}

/// Builds one student's transcript from their grade rows (rows of other students must not be
/// mixed in). Rules per SPEC.md "File formats".
pub fn transcript(rows: &[GradeRecord], scale: &Scale) -> Transcript {
    let mut by_term: BTreeMap<Term, Vec<&GradeRecord>> = BTreeMap::new();
    for r in rows {
        by_term.entry(r.term).or_default().push(r);
    }
    let mut overall: HashMap<&str, CourseTally> = HashMap::new();
    let mut terms = Vec::with_capacity(by_term.len());
    for (term, mut records) in by_term.into_iter().rev() {
        records.sort_by(|a, b| {
            (&a.course_name, &a.course_code, a.kind).cmp(&(&b.course_name, &b.course_code, b.kind))
        });
        let mut in_term: HashMap<&str, CourseTally> = HashMap::new();
        let mut courses = Vec::with_capacity(records.len());
        for r in records {
            let point = scale.grade_point(&r.score);
            let passed = r.score.passed();
            in_term
                .entry(&r.course_code)
                .or_default()
                .add(r.credit.0, point, passed);
            overall
                .entry(&r.course_code)
                .or_default()
                .add(r.credit.0, point, passed);
            courses.push(CourseLine {
                course_code: r.course_code.clone(),
                course_name: r.course_name.clone(),
                credit: r.credit,
                score: r.score,
                kind: r.kind,
                grade_point: point,
                failed: r.score.failed(),
                passed,
                facts: r.course.clone(),
            });
        }
        let (gpa, credits_attempted, credits_earned) = sums(in_term.values());
        terms.push(TermSummary {
            term,
            courses,
            gpa,
            credits_attempted,
            credits_earned,
        });
    }
    let (overall_gpa, _, credits_earned) = sums(overall.values());
    Transcript {
        terms,
        overall_gpa,
        credits_earned,
    }
}
