//! The credit-weighted average score (加权平均分): which attempt of a course counts
//! (`[grades] average_attempt`), what a five-level grade is worth (`[grades] level_scores`), and
//! the exact sum, rounded half away from zero to two decimals for display.
//!
//! Numeric scores and five-level grades enter it; 合格/不合格 and statuses (缺考, 缓考, …) do not.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use super::values::*;

/// Which attempt of a course the average takes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AverageAttempt {
    /// The attempt with the highest score (as the overall GPA takes the best grade point).
    #[default]
    Best,
    /// The earliest attempt that has a score: oldest term, then 正常考试 before 补考 before 重修
    /// (some schools' 保研 rules count only this one).
    First,
}

impl AverageAttempt {
    /// `"best"` or `"first"`; anything else is an error naming the choices.
    pub fn parse(s: &str) -> Result<AverageAttempt, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "best" => Ok(AverageAttempt::Best),
            "first" => Ok(AverageAttempt::First),
            _ => Err(format!("expected \"best\" or \"first\", got {s:?}")),
        }
    }
}

/// What each five-level grade counts as in the average, in hundredths of a score point.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LevelScores([u32; 5]);

impl Default for LevelScores {
    /// 优秀 95, 良好 85, 中等 75, 及格 65, 不及格 0.
    fn default() -> LevelScores {
        LevelScores([9500, 8500, 7500, 6500, 0])
    }
}

impl LevelScores {
    /// The defaults with the levels the config names replaced. Keys are the Chinese labels or
    /// the English keys (excellent, good, medium, pass, fail); values scores 0–100 with at most
    /// two decimals.
    pub fn from_config(table: &BTreeMap<String, f64>) -> Result<LevelScores, String> {
        let mut out = LevelScores::default();
        for (k, v) in table {
            let Some(level) = FiveLevel::from_config_key(k) else {
                return Err(format!(
                    "unknown level {k:?}: use 优秀, 良好, 中等, 及格, 不及格 (or excellent, good, medium, pass, fail)"
                ));
            };
            let h = v * 100.0;
            if !v.is_finite() || !(0.0..=100.0).contains(v) || (h - h.round()).abs() > 1e-6 {
                return Err(format!(
                    "{k} = {v}: expected a score from 0 to 100 with at most two decimals"
                ));
            }
            out.0[level.index()] = h.round() as u32;
        }
        Ok(out)
    }

    /// The score of `level`, in hundredths.
    pub fn of(&self, level: FiveLevel) -> u32 {
        self.0[level.index()]
    }
}

/// The rules of the average, from `[grades]`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AverageRules {
    pub attempt: AverageAttempt,
    pub levels: LevelScores,
}

/// A credit-weighted average score in hundredths, rounded half away from zero from the exact
/// ratio. Displays with two decimals (`"86.43"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Average(u32);

impl Average {
    /// The average in hundredths (8643 for 86.43).
    pub fn hundredths(self) -> u32 {
        self.0
    }
}

impl fmt::Display for Average {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:02}", self.0 / 100, self.0 % 100)
    }
}

/// The score an attempt brings to the average (hundredths), or `None` when it brings none.
fn score_value(score: &Score, levels: &LevelScores) -> Option<u32> {
    match *score {
        Score::Numeric(h) => Some(h),
        Score::Level(l) => Some(levels.of(l)),
        Score::PassFail(_) | Score::Status(_) => None,
    }
}

/// Σ(credit × score) / Σ credit over each course code's counted attempt, for one student's rows;
/// `None` when no course has a counted score (or all such courses carry zero credits).
pub fn weighted_average(rows: &[GradeRecord], rules: &AverageRules) -> Option<Average> {
    // Per course code: the chosen attempt as (order key, score, credit).
    let mut chosen: HashMap<&str, ((Term, ExamKind), u32, u32)> = HashMap::new();
    for r in rows {
        let Some(score) = score_value(&r.score, &rules.levels) else {
            continue;
        };
        let when = (r.term, r.kind);
        let entry = chosen
            .entry(&r.course_code)
            .or_insert((when, score, r.credit.0));
        let better = match rules.attempt {
            // Equal scores keep the larger credit, so the pick does not depend on row order.
            AverageAttempt::Best => (score, r.credit.0) > (entry.1, entry.2),
            AverageAttempt::First => when < entry.0,
        };
        if better {
            *entry = (when, score, r.credit.0);
        }
    }
    let (mut weighted, mut credits) = (0u64, 0u64);
    for (_, score, credit) in chosen.values() {
        weighted += u64::from(*score) * u64::from(*credit);
        credits += u64::from(*credit);
    }
    if credits == 0 {
        return None;
    }
    // Non-negative values: half away from zero is half up.
    let h = (2 * weighted + credits) / (2 * credits);
    Some(Average(u32::try_from(h).unwrap_or(u32::MAX)))
}
