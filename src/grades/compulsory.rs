//! The 必修-only GPA: the overall GPA over the courses the registrar marked compulsory
//! (课程性质 starting with 必修), each course code counted once through the attempt rule of
//! `[grades] average_attempt` (best grade point by default, or the first graded attempt).

use std::collections::HashMap;

use super::average::AverageAttempt;
use super::scale::Scale;
use super::transcript::Gpa;
use super::values::*;

/// True when any of the rows says what kind of course it is (课程性质): only then does the
/// page show a 必修 GPA, since without the facts "no 必修 course" would be a guess.
pub fn has_course_nature(rows: &[GradeRecord]) -> bool {
    rows.iter().any(|r| r.course.nature.is_some())
}

/// Σ(credit × point) / Σ credit over each compulsory course code's counted attempt; `None` when
/// no compulsory course has a grade point.
pub fn compulsory_gpa(rows: &[GradeRecord], scale: &Scale, attempt: AverageAttempt) -> Option<Gpa> {
    // Per course code: (order key, point, credit) of the counted attempt.
    let mut chosen: HashMap<&str, ((Term, ExamKind), u32, u32)> = HashMap::new();
    for r in rows.iter().filter(|r| r.course.is_compulsory()) {
        let Some(point) = scale.grade_point(&r.score) else {
            continue;
        };
        let when = (r.term, r.kind);
        let entry = chosen
            .entry(&r.course_code)
            .or_insert((when, point, r.credit.0));
        let better = match attempt {
            // As the overall GPA: highest point, equal points keep the larger credit.
            AverageAttempt::Best => (point, r.credit.0) > (entry.1, entry.2),
            AverageAttempt::First => when < entry.0,
        };
        if better {
            *entry = (when, point, r.credit.0);
        }
    }
    let (mut weighted, mut credits) = (0u64, 0u64);
    for (_, point, credit) in chosen.values() {
        weighted += u64::from(*point) * u64::from(*credit);
        credits += u64::from(*credit);
    }
    Gpa::from_sums(weighted, credits)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grades::transcript;

    fn rec(
        term: &str,
        code: &str,
        credit: &str,
        score: &str,
        kind: ExamKind,
        nature: Option<&str>,
    ) -> GradeRecord {
        GradeRecord {
            student_id: "2021001".into(),
            term: Term::parse(term).unwrap(),
            course_code: code.into(),
            course_name: code.into(),
            credit: Credit::parse(credit).unwrap(),
            score: Score::parse(score).unwrap(),
            kind,
            name: None,
            course: CourseFacts {
                nature: nature.map(str::to_string),
                ..CourseFacts::default()
            },
        }
    }

    fn gpa(rows: &[GradeRecord], attempt: AverageAttempt) -> Option<String> {
        compulsory_gpa(rows, &Scale::standard4(), attempt).map(|g| g.to_string())
    }

    #[test]
    fn only_compulsory_courses_count_each_once() {
        // Points come from the scale, so the sums are checked by hand over them.
        let s = Scale::standard4();
        let p = |v: &str| s.grade_point(&Score::parse(v).unwrap()).unwrap();
        let rows = [
            rec(
                "2024-2025-1",
                "MA1",
                "4",
                "95",
                ExamKind::Normal,
                Some("必修"),
            ),
            rec(
                "2024-2025-1",
                "EN1",
                "3",
                "58",
                ExamKind::Normal,
                Some("必修课"),
            ),
            rec(
                "2024-2025-1",
                "EN1",
                "3",
                "85",
                ExamKind::Makeup,
                Some("必修课"),
            ),
            rec(
                "2024-2025-1",
                "AR1",
                "2",
                "60",
                ExamKind::Normal,
                Some("选修"),
            ),
            rec("2024-2025-1", "PE1", "1", "61", ExamKind::Normal, None),
            rec(
                "2024-2025-1",
                "LB1",
                "1",
                "合格",
                ExamKind::Normal,
                Some("必修"),
            ),
        ];
        // Best: 高数 4cr at p(95), 英语 3cr at p(85); 合格 carries no point.
        let want = (2 * (4 * p("95") as u64 + 3 * p("85") as u64) + 7) / 14;
        let got = compulsory_gpa(&rows, &s, AverageAttempt::Best).unwrap();
        assert_eq!(u64::from(got.hundredths()), want);
        // First: 英语's first graded attempt, 58.
        let want = (2 * (4 * p("95") as u64 + 3 * p("58") as u64) + 7) / 14;
        let got = compulsory_gpa(&rows, &s, AverageAttempt::First).unwrap();
        assert_eq!(u64::from(got.hundredths()), want);
        // Differs from the overall GPA, which counts the 选修 and unmarked courses too.
        assert_ne!(
            transcript(&rows, &s).overall_gpa,
            compulsory_gpa(&rows, &s, AverageAttempt::Best)
        );
        assert!(has_course_nature(&rows));
    }

    #[test]
    fn the_best_rule_matches_the_overall_gpa_when_every_course_is_compulsory() {
        let rows = [
            rec(
                "2024-2025-1",
                "MA1",
                "4",
                "95",
                ExamKind::Normal,
                Some("必修"),
            ),
            rec(
                "2024-2025-1",
                "EN1",
                "3",
                "58",
                ExamKind::Normal,
                Some("必修"),
            ),
            rec(
                "2024-2025-2",
                "EN1",
                "3",
                "72",
                ExamKind::Retake,
                Some("必修"),
            ),
            rec(
                "2024-2025-2",
                "CS1",
                "2.5",
                "88",
                ExamKind::Normal,
                Some("必修"),
            ),
        ];
        let s = Scale::standard4();
        assert_eq!(
            compulsory_gpa(&rows, &s, AverageAttempt::Best),
            transcript(&rows, &s).overall_gpa
        );
        let mut reversed = rows.clone();
        reversed.reverse();
        assert_eq!(
            gpa(&reversed, AverageAttempt::Best),
            gpa(&rows, AverageAttempt::Best)
        );
        assert_eq!(
            gpa(&reversed, AverageAttempt::First),
            gpa(&rows, AverageAttempt::First)
        );
    }

    #[test]
    fn nothing_to_count_is_none() {
        let rows = [
            rec(
                "2024-2025-1",
                "AR1",
                "2",
                "90",
                ExamKind::Normal,
                Some("选修"),
            ),
            rec(
                "2024-2025-1",
                "LB1",
                "1",
                "合格",
                ExamKind::Normal,
                Some("必修"),
            ),
            rec(
                "2024-2025-1",
                "PH1",
                "2",
                "缓考",
                ExamKind::Normal,
                Some("必修"),
            ),
        ];
        assert_eq!(gpa(&rows, AverageAttempt::Best), None);
        assert!(has_course_nature(&rows));
        let plain = [rec("2024-2025-1", "MA1", "4", "95", ExamKind::Normal, None)];
        assert!(!has_course_nature(&plain));
        assert_eq!(gpa(&plain, AverageAttempt::Best), None);
    }
}
