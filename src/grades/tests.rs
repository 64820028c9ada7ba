//! Tests of the grades domain: values, scales, transcript and 加权平均分 rules in one file (over
//! 600 lines) so that the hand computations of every rule sit side by side.

use serde::{Deserialize, Serialize};

use super::transcript::*;
use super::values::*;
use super::*;

fn t(s: &str) -> Term {
    Term::parse(s).unwrap()
}

fn rec(
    term: &str,
    code: &str,
    name: &str,
    credit: &str,
    score: &str,
    kind: ExamKind,
) -> GradeRecord {
    GradeRecord {
        student_id: "2021001".into(),
        term: t(term),
        course_code: code.into(),
        course_name: name.into(),
        credit: Credit::parse(credit).unwrap(),
        score: Score::parse(score).unwrap(),
        kind,
        name: None,
        course: Default::default(),
    }
}

#[test]
fn term_parse_and_order() {
    let a = t("2024-2025-2");
    let b = t(" 2025-2026-1 ");
    let c = t("2025-2026-3");
    assert!(a < b && b < c);
    assert_eq!(b.as_str(), "2025-2026-1");
    assert_eq!(b.to_string(), "2025-2026-1");
    assert_eq!(b.label(), "2025-2026学年 第1学期");
    assert_eq!(b.start_year(), 2025);
    assert_eq!(c.number(), 3);
    for bad in [
        "2025-2027-1",
        "2025-2026-0",
        "2025-2026-4",
        "2025-2026",
        "2025-2026-11",
        "2025/2026/1",
        "20a5-2026-1",
        "",
        "0999-1000-1",
        "2025-2026-１",
    ] {
        let err = Term::parse(bad).unwrap_err();
        assert!(err.contains("YYYY-YYYY-N"), "{bad}: {err}");
    }
}

#[test]
fn exam_kind_parse_label_code() {
    assert_eq!(ExamKind::parse("正常考试"), Ok(ExamKind::Normal));
    assert_eq!(ExamKind::parse("正常"), Ok(ExamKind::Normal));
    assert_eq!(ExamKind::parse("补考"), Ok(ExamKind::Makeup));
    assert_eq!(ExamKind::parse(" 重修 "), Ok(ExamKind::Retake));
    assert_eq!(ExamKind::parse("Retake"), Ok(ExamKind::Retake));
    assert!(ExamKind::parse("期中").unwrap_err().contains("期中"));
    assert!(ExamKind::parse("").is_err());
    for k in ExamKind::ALL {
        assert_eq!(ExamKind::from_code(k.code()), Some(k));
        assert_eq!(ExamKind::parse(k.label()), Ok(k));
    }
    assert_eq!(ExamKind::default(), ExamKind::Normal);
    assert_eq!(ExamKind::Makeup.code(), "makeup");
}

#[test]
fn credit_parse_and_display() {
    let c = |s: &str| Credit::parse(s).map(|c| c.to_string());
    assert_eq!(c("3"), Ok("3".into()));
    assert_eq!(c("3.0"), Ok("3".into()));
    assert_eq!(c("1.5"), Ok("1.5".into()));
    assert_eq!(c("1.50"), Ok("1.5".into()));
    assert_eq!(c("0.25"), Ok("0.25".into()));
    assert_eq!(c(".5"), Ok("0.5".into()));
    assert_eq!(c("30"), Ok("30".into()));
    assert_eq!(c("2.000"), Ok("2".into()));
    for bad in [
        "0", "0.00", "30.01", "31", "-1", "1.555", "abc", "", "1,5", "1e1", "+2",
    ] {
        let err = Credit::parse(bad).unwrap_err();
        assert!(err.starts_with("学分应为大于0且不超过30"), "{bad}: {err}");
    }
    assert_eq!(
        Credit::parse("abc").unwrap_err(),
        "学分应为大于0且不超过30、最多两位小数的数字，实际为“abc”"
    );
    let sum: Credit = ["1.5", "2.25", "19"]
        .iter()
        .map(|s| Credit::parse(s).unwrap())
        .sum();
    assert_eq!(sum.to_string(), "22.75");
    assert_eq!(sum.hundredths(), 2275);
}

#[test]
fn registrar_statuses_round_trip_and_count_as_documented() {
    for st in Status::ALL {
        let s = Score::Status(st);
        assert_eq!(Score::parse(&s.to_string()), Ok(s), "{st:?}");
        assert_eq!(Scale::standard4().grade_point(&s), None);
        assert!(!(s.passed() && s.failed()), "{st:?}");
    }
    let passed: Vec<&str> = Status::ALL
        .into_iter()
        .filter(|st| Score::Status(*st).passed())
        .map(Status::label)
        .collect();
    assert_eq!(passed, ["免修", "免考"]);
    let failed: Vec<&str> = Status::ALL
        .into_iter()
        .filter(|st| Score::Status(*st).failed())
        .map(Status::label)
        .collect();
    assert_eq!(failed, ["缺考", "作弊", "旷考", "取消资格"]);
}

#[test]
fn score_parse_and_display() {
    assert_eq!(Score::parse("89.5"), Ok(Score::Numeric(8950)));
    assert_eq!(Score::parse("89.50").unwrap().to_string(), "89.5");
    assert_eq!(Score::parse("90").unwrap().to_string(), "90");
    assert_eq!(Score::parse("90.0").unwrap().to_string(), "90");
    assert_eq!(Score::parse("59.99").unwrap().to_string(), "59.99");
    assert_eq!(Score::parse("0"), Ok(Score::Numeric(0)));
    assert_eq!(Score::parse("100"), Ok(Score::Numeric(10000)));
    assert_eq!(Score::parse("优秀"), Ok(Score::Level(FiveLevel::Excellent)));
    assert_eq!(Score::parse("不及格"), Ok(Score::Level(FiveLevel::Fail)));
    assert_eq!(Score::parse("合格"), Ok(Score::PassFail(true)));
    assert_eq!(Score::parse("不合格"), Ok(Score::PassFail(false)));
    assert_eq!(Score::parse("缓考"), Ok(Score::Status(Status::Deferred)));
    for s in ["优秀", "中等", "合格", "不合格", "缺考", "作弊", "取消"] {
        assert_eq!(Score::parse(s).unwrap().to_string(), s);
    }
    assert!(Score::parse("100.5").unwrap_err().contains("0到100之间"));
    assert!(Score::parse("89.555").unwrap_err().contains("最多两位小数"));
    assert!(Score::parse("-5").unwrap_err().contains("实际为“-5”"));
    assert!(Score::parse("A+").unwrap_err().contains("五级制"));
    assert!(Score::parse("").is_err());
}

#[test]
fn passed_and_failed() {
    let cases = [
        ("60", true, false),
        ("59.99", false, true),
        ("0", false, true),
        ("及格", true, false),
        ("不及格", false, true),
        ("中等", true, false),
        ("合格", true, false),
        ("不合格", false, true),
        ("缺考", false, true),
        ("作弊", false, true),
        ("缓考", false, false),
        ("取消", false, false),
    ];
    for (s, p, f) in cases {
        let score = Score::parse(s).unwrap();
        assert_eq!(passed(&score), p, "passed({s})");
        assert_eq!(failed(&score), f, "failed({s})");
    }
}

#[test]
fn standard4_points() {
    let sc = Scale::standard4();
    let gp = |s: &str| grade_point(&sc, &Score::parse(s).unwrap());
    assert_eq!(gp("100"), Some(400));
    assert_eq!(gp("90"), Some(400));
    assert_eq!(gp("89.99"), Some(370));
    assert_eq!(gp("89.5"), Some(370));
    assert_eq!(gp("85"), Some(370));
    assert_eq!(gp("84.99"), Some(330));
    assert_eq!(gp("82"), Some(330));
    assert_eq!(gp("78"), Some(300));
    assert_eq!(gp("75"), Some(270));
    assert_eq!(gp("72"), Some(230));
    assert_eq!(gp("68"), Some(200));
    assert_eq!(gp("64"), Some(150));
    assert_eq!(gp("60"), Some(100));
    assert_eq!(gp("59.99"), Some(0));
    assert_eq!(gp("0"), Some(0));
    assert_eq!(gp("优秀"), Some(400));
    assert_eq!(gp("良好"), Some(300));
    assert_eq!(gp("中等"), Some(200));
    assert_eq!(gp("及格"), Some(100));
    assert_eq!(gp("不及格"), Some(0));
    assert_eq!(gp("合格"), None);
    assert_eq!(gp("不合格"), None);
    assert_eq!(gp("缺考"), None);
    assert_eq!(gp("取消"), None);
}

#[test]
fn gpa_rounds_half_away_from_zero() {
    // 3.825 exactly → 3.83; 3.8249.. → 3.82; 1.1875 → 1.19.
    assert_eq!(
        Gpa::from_sums(330 * 100 + 400 * 300, 400)
            .unwrap()
            .to_string(),
        "3.83"
    );
    assert_eq!(Gpa::from_sums(38249, 100).unwrap().to_string(), "3.82");
    assert_eq!(
        Gpa::from_sums(150 * 300 + 100 * 500, 800)
            .unwrap()
            .to_string(),
        "1.19"
    );
    assert_eq!(Gpa::from_sums(0, 300).unwrap().to_string(), "0.00");
    assert_eq!(Gpa::from_sums(400 * 300, 300).unwrap().to_string(), "4.00");
    assert_eq!(Gpa::from_sums(0, 0), None);
}

#[test]
fn transcript_by_hand() {
    use ExamKind::*;
    let rows = vec![
        // 2024-2025-1
        rec("2024-2025-1", "MA101", "高等数学", "4", "55", Normal), // 0.0, failed
        rec("2024-2025-1", "MA101", "高等数学", "4", "65", Makeup), // 1.5, best in term
        rec("2024-2025-1", "EN101", "大学英语", "3", "89.5", Normal), // 3.7
        rec("2024-2025-1", "PE101", "体育", "1", "合格", Normal),   // no gp, passed
        rec("2024-2025-1", "CS101", "程序设计", "2.5", "缺考", Normal), // no gp, failed
        // 2024-2025-2
        rec("2024-2025-2", "MA101", "高等数学", "4", "91", Retake), // 4.0, best overall
        rec("2024-2025-2", "PO101", "思想政治", "2", "良好", Normal), // 3.0
        rec("2024-2025-2", "CS101", "程序设计", "2.5", "缓考", Makeup), // neither
        rec("2024-2025-2", "AR101", "艺术鉴赏", "1.25", "不合格", Normal), // failed
    ];
    let tr = transcript(&rows, &Scale::standard4());
    assert_eq!(tr.terms.len(), 2);
    let newest = &tr.terms[0];
    let oldest = &tr.terms[1];
    assert_eq!(newest.term.as_str(), "2024-2025-2");
    assert_eq!(oldest.term.as_str(), "2024-2025-1");

    // Term 1: MA101 best 1.5 × 4 = 6.0; EN101 3.7 × 3 = 11.1 → 17.1 / 7 = 2.442857 → 2.44.
    assert_eq!(oldest.gpa.unwrap().to_string(), "2.44");
    // Attempted: MA101 4 + EN101 3 + PE101 1 + CS101 2.5 = 10.5; earned: 4 + 3 + 1 = 8.
    assert_eq!(oldest.credits_attempted.to_string(), "10.5");
    assert_eq!(oldest.credits_earned.to_string(), "8");
    // Term 2: MA101 4.0 × 4 = 16; PO101 3.0 × 2 = 6 → 22 / 6 = 3.6667 → 3.67.
    assert_eq!(newest.gpa.unwrap().to_string(), "3.67");
    assert_eq!(newest.credits_attempted.to_string(), "9.75");
    assert_eq!(newest.credits_earned.to_string(), "6");

    // Overall: MA101 best 4.0 × 4 = 16; EN101 11.1; PO101 6 → 33.1 / 9 = 3.6778 → 3.68.
    assert_eq!(tr.overall_gpa.unwrap().to_string(), "3.68");
    // Earned: MA101 4 (once), EN101 3, PE101 1, PO101 2 = 10.
    assert_eq!(tr.credits_earned.to_string(), "10");

    // Course lines: sorted by course name (code points), each attempt shown with marks.
    let names: Vec<(&str, ExamKind)> = oldest
        .courses
        .iter()
        .map(|c| (c.course_code.as_str(), c.kind))
        .collect();
    let mut expected = vec![
        ("PE101", Normal),
        ("EN101", Normal),
        ("CS101", Normal),
        ("MA101", Normal),
        ("MA101", Makeup),
    ];
    expected.sort_by_key(|(code, kind)| {
        let r = rows
            .iter()
            .find(|r| r.course_code == *code && r.kind == *kind)
            .unwrap();
        (r.course_name.clone(), r.course_code.clone(), r.kind)
    });
    assert_eq!(names, expected);
    let ma = oldest
        .courses
        .iter()
        .find(|c| c.course_code == "MA101" && c.kind == Normal)
        .unwrap();
    assert!(ma.failed && !ma.passed);
    assert_eq!(ma.grade_point, Some(0));
    let cs = oldest
        .courses
        .iter()
        .find(|c| c.course_code == "CS101")
        .unwrap();
    assert!(cs.failed && cs.grade_point.is_none());
    let deferred = newest
        .courses
        .iter()
        .find(|c| c.course_code == "CS101")
        .unwrap();
    assert!(!deferred.failed && !deferred.passed);
    let ar = newest
        .courses
        .iter()
        .find(|c| c.course_code == "AR101")
        .unwrap();
    assert!(ar.failed && ar.grade_point.is_none());
    assert_eq!(tr.term(&t("2024-2025-1")), Some(oldest));
    assert_eq!(tr.term(&t("2023-2024-1")), None);
}

#[test]
fn transcript_without_graded_courses() {
    let rows = vec![
        rec("2025-2026-1", "PE1", "体育", "1", "合格", ExamKind::Normal),
        rec("2025-2026-1", "X1", "实验", "2", "取消", ExamKind::Normal),
    ];
    let tr = transcript(&rows, &Scale::standard4());
    assert_eq!(tr.terms[0].gpa, None);
    assert_eq!(tr.overall_gpa, None);
    assert_eq!(tr.credits_earned.to_string(), "1");
    let empty = transcript(&[], &Scale::standard4());
    assert!(empty.terms.is_empty());
    assert_eq!(empty.overall_gpa, None);
    assert_eq!(empty.credits_earned, Credit::ZERO);
}

#[test]
fn transcript_exact_rounding() {
    // 3.3 × 1 + 4.0 × 3 = 15.3 over 4 credits = 3.825 → 3.83 (half away from zero).
    let rows = vec![
        rec("2025-2026-1", "A", "甲", "1", "83", ExamKind::Normal),
        rec("2025-2026-1", "B", "乙", "3", "95", ExamKind::Normal),
    ];
    let tr = transcript(&rows, &Scale::standard4());
    assert_eq!(tr.terms[0].gpa.unwrap().hundredths(), 383);
    assert_eq!(tr.overall_gpa.unwrap().to_string(), "3.83");
}

#[derive(Deserialize)]
struct GradesSection {
    #[serde(default)]
    scale: ScaleConfig,
}

fn scale_from_toml(src: &str) -> Result<Scale, String> {
    let sec: GradesSection = toml::from_str(src).map_err(|e| e.to_string())?;
    Scale::from_config(&sec.scale)
}

#[test]
fn scale_config_from_toml() {
    assert_eq!(
        scale_from_toml("scale = \"standard4\""),
        Ok(Scale::standard4())
    );
    assert_eq!(scale_from_toml(""), Ok(Scale::standard4()));
    let custom =
        scale_from_toml("scale = { bands = [[90, 4.0], [80, 3.0], [70, 2.0], [60, 1.0], [0, 0]] }")
            .unwrap();
    let gp = |s: &str| custom.grade_point(&Score::parse(s).unwrap());
    assert_eq!(gp("89.5"), Some(300));
    assert_eq!(gp("90"), Some(400));
    assert_eq!(gp("60"), Some(100));
    assert_eq!(gp("59"), Some(0));
    assert_eq!(gp("良好"), Some(300)); // default levels
    let with_levels = scale_from_toml(
        "[scale]\nbands = [[85.5, 4.5], [60, 2]]\nlevels = { \"优秀\" = 4.5, \"良好\" = 3.5, \"中等\" = 2.5, \"及格\" = 1.5, \"不及格\" = 0 }",
    )
    .unwrap();
    assert_eq!(with_levels.grade_point(&Score::Numeric(8550)), Some(450));
    assert_eq!(with_levels.grade_point(&Score::Numeric(8549)), Some(200));
    assert_eq!(with_levels.grade_point(&Score::Numeric(5999)), Some(0));
    assert_eq!(
        with_levels.grade_point(&Score::Level(FiveLevel::Medium)),
        Some(250)
    );
    // Round trip through serde.
    let back: Scale = toml::from_str::<GradesSectionScale>(
        &toml::to_string(&GradesSectionScale {
            scale: with_levels.clone(),
        })
        .unwrap(),
    )
    .unwrap()
    .scale;
    assert_eq!(back, with_levels);
}

#[derive(Serialize, Deserialize)]
struct GradesSectionScale {
    scale: Scale,
}

#[test]
fn scale_config_errors_say_what_is_wrong() {
    let err = |src: &str| scale_from_toml(src).unwrap_err();
    assert!(err("scale = \"gpa5\"").contains("unknown grade scale \"gpa5\""));
    assert!(err("scale = { bandz = [[60, 1]] }").contains("bandz"));
    assert!(err("scale = { bands = [] }").contains("scale.bands is empty"));
    assert!(err("scale = { bands = [[60, 1], [70, 2]] }").contains("highest lower bound down"));
    assert!(err("scale = { bands = [[90, 1], [60, 2]] }").contains("more points"));
    assert!(err("scale = { bands = [[101, 4]] }").contains("lower bound 101"));
    assert!(err("scale = { bands = [[90, 5.5]] }").contains("grade point 5.5"));
    assert!(err("scale = { bands = [[90, 3.333]] }").contains("at most two decimals"));
    assert!(
        err("scale = { bands = [[90, 4]], levels = { \"优秀\" = 4 } }")
            .contains("missing: 良好, 中等, 及格, 不及格")
    );
    assert!(err(
        "scale = { bands = [[90, 4]], levels = { \"优\" = 4, good = 3, medium = 2, pass = 1, fail = 0 } }"
    )
    .contains("unknown level \"优\""));
    assert!(err(
        "scale = { bands = [[90, 4]], levels = { \"优秀\" = 4, excellent = 4, good = 3, medium = 2, pass = 1, fail = 0 } }"
    )
    .contains("优秀 is given twice"));
    let english = scale_from_toml(
        "scale = { bands = [[60, 1]], levels = { excellent = 5, good = 4, medium = 3, pass = 2, fail = 0 } }",
    )
    .unwrap();
    assert_eq!(english.level_points(FiveLevel::Pass), 200);
    assert!(err("scale = 4").contains("scale name"));
}

#[test]
fn serde_forms() {
    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    struct Row {
        term: Term,
        credit: Credit,
        score: Score,
        kind: ExamKind,
        gpa: Gpa,
    }
    let row = Row {
        term: t("2025-2026-1"),
        credit: Credit::parse("22.75").unwrap(),
        score: Score::parse("89.5").unwrap(),
        kind: ExamKind::Retake,
        gpa: Gpa(352),
    };
    let text = toml::to_string(&row).unwrap();
    assert!(text.contains("term = \"2025-2026-1\""), "{text}");
    assert!(text.contains("credit = \"22.75\""), "{text}");
    assert!(text.contains("score = \"89.5\""), "{text}");
    assert!(text.contains("kind = \"retake\""), "{text}");
    assert!(text.contains("gpa = \"3.52\""), "{text}");
    assert_eq!(toml::from_str::<Row>(&text).unwrap(), row);
    let bad = text.replace("2025-2026-1", "2025-2027-1");
    assert!(toml::from_str::<Row>(&bad).is_err());
}

#[test]
fn roster_debug_hides_verify() {
    let r = RosterRecord {
        student_id: "2021001".into(),
        name: "张三".into(),
        verify: "12345X".into(),
        class: None,
        major: None,
        college: None,
        cohort: None,
    };
    let dbg = format!("{r:?}");
    assert!(!dbg.contains("12345X") && dbg.contains("redacted"));
}

// ---------------------------------------------------------------------------------------------
// 加权平均分
// ---------------------------------------------------------------------------------------------

fn avg(rows: &[GradeRecord], attempt: AverageAttempt) -> Option<String> {
    let rules = AverageRules {
        attempt,
        levels: LevelScores::default(),
    };
    weighted_average(rows, &rules).map(|a| a.to_string())
}

#[test]
fn average_takes_each_courses_best_attempt_by_default() {
    // 高数 4cr 95; 英语 3cr 58 then 补考 65 then 重修 82 (best 82): (380 + 246) / 7 = 89.428… → 89.43
    let rows = [
        rec("2024-2025-1", "MA1", "高数", "4", "95", ExamKind::Normal),
        rec("2024-2025-1", "EN1", "英语", "3", "58", ExamKind::Normal),
        rec("2024-2025-1", "EN1", "英语", "3", "65", ExamKind::Makeup),
        rec("2024-2025-2", "EN1", "英语", "3", "82", ExamKind::Retake),
    ];
    assert_eq!(avg(&rows, AverageAttempt::Best).as_deref(), Some("89.43"));
    // Row order does not matter.
    let mut reversed = rows.clone();
    reversed.reverse();
    assert_eq!(
        avg(&reversed, AverageAttempt::Best).as_deref(),
        Some("89.43")
    );
}

#[test]
fn average_can_take_the_first_attempt() {
    // First: 英语 58 (oldest term, 正常考试 before 补考): (380 + 174) / 7 = 79.142… → 79.14
    let rows = [
        rec("2024-2025-2", "EN1", "英语", "3", "82", ExamKind::Retake),
        rec("2024-2025-1", "EN1", "英语", "3", "65", ExamKind::Makeup),
        rec("2024-2025-1", "MA1", "高数", "4", "95", ExamKind::Normal),
        rec("2024-2025-1", "EN1", "英语", "3", "58", ExamKind::Normal),
    ];
    assert_eq!(avg(&rows, AverageAttempt::First).as_deref(), Some("79.14"));
    // A first sitting with no score (缓考) does not count; the next attempt with one does.
    let deferred = [
        rec("2024-2025-1", "PH1", "物理", "2", "缓考", ExamKind::Normal),
        rec("2024-2025-1", "PH1", "物理", "2", "70", ExamKind::Makeup),
        rec("2024-2025-2", "PH1", "物理", "2", "90", ExamKind::Retake),
    ];
    assert_eq!(
        avg(&deferred, AverageAttempt::First).as_deref(),
        Some("70.00")
    );
    assert_eq!(
        avg(&deferred, AverageAttempt::Best).as_deref(),
        Some("90.00")
    );
    assert_eq!(AverageAttempt::parse("First"), Ok(AverageAttempt::First));
    assert_eq!(AverageAttempt::parse("best"), Ok(AverageAttempt::Best));
    assert!(AverageAttempt::parse("last")
        .unwrap_err()
        .contains("\"first\""));
}

#[test]
fn five_level_grades_enter_through_the_level_table() {
    // 体育 1cr 优秀 → 95, 美术 1cr 及格 → 65, 书法 2cr 不及格 → 0: (95 + 65 + 0) / 4 = 40.00
    let rows = [
        rec("2024-2025-1", "PE1", "体育", "1", "优秀", ExamKind::Normal),
        rec("2024-2025-1", "AR1", "美术", "1", "及格", ExamKind::Normal),
        rec(
            "2024-2025-1",
            "CA1",
            "书法",
            "2",
            "不及格",
            ExamKind::Normal,
        ),
    ];
    assert_eq!(avg(&rows, AverageAttempt::Best).as_deref(), Some("40.00"));
    // A school's own table: 优秀 90, pass 60.5 (English key); others keep their defaults.
    let table: std::collections::BTreeMap<String, f64> =
        [("优秀".to_string(), 90.0), ("pass".to_string(), 60.5)].into();
    let levels = LevelScores::from_config(&table).unwrap();
    assert_eq!(levels.of(FiveLevel::Excellent), 9000);
    assert_eq!(levels.of(FiveLevel::Pass), 6050);
    assert_eq!(levels.of(FiveLevel::Good), 8500);
    let rules = AverageRules {
        attempt: AverageAttempt::Best,
        levels,
    };
    // (90 + 60.5 + 0) / 4 = 37.625 → 37.63
    assert_eq!(
        weighted_average(&rows, &rules)
            .map(|a| a.to_string())
            .as_deref(),
        Some("37.63")
    );
    for (k, v) in [
        ("卓越", 90.0),
        ("优秀", 100.5),
        ("良好", -1.0),
        ("中等", 75.125),
    ] {
        let table: std::collections::BTreeMap<String, f64> = [(k.to_string(), v)].into();
        let e = LevelScores::from_config(&table).unwrap_err();
        assert!(e.contains(k), "{k}: {e}");
    }
}

#[test]
fn pass_fail_grades_and_statuses_do_not_enter_the_average() {
    let rows = [
        rec("2024-2025-1", "MA1", "高数", "4", "80", ExamKind::Normal),
        rec("2024-2025-1", "LB1", "劳动", "1", "合格", ExamKind::Normal),
        rec(
            "2024-2025-1",
            "SF1",
            "安全",
            "1",
            "不合格",
            ExamKind::Normal,
        ),
        rec("2024-2025-1", "PH1", "物理", "2", "缺考", ExamKind::Normal),
        rec("2024-2025-1", "CH1", "化学", "2", "取消", ExamKind::Normal),
    ];
    assert_eq!(avg(&rows, AverageAttempt::Best).as_deref(), Some("80.00"));
    assert_eq!(
        avg(&rows[1..], AverageAttempt::Best),
        None,
        "nothing scored"
    );
    assert_eq!(avg(&[], AverageAttempt::First), None);
}

#[test]
fn average_rounds_half_away_from_zero_to_two_decimals() {
    // (3 × 88.33 + 1 × 88.34) / 4 = 88.3325 → 88.33; (1 × 70.01 + 1 × 70.00) / 2 = 70.005 → 70.01
    let a = [
        rec("2024-2025-1", "A", "甲", "3", "88.33", ExamKind::Normal),
        rec("2024-2025-1", "B", "乙", "1", "88.34", ExamKind::Normal),
    ];
    assert_eq!(avg(&a, AverageAttempt::Best).as_deref(), Some("88.33"));
    let b = [
        rec("2024-2025-1", "A", "甲", "1", "70.01", ExamKind::Normal),
        rec("2024-2025-1", "B", "乙", "1", "70", ExamKind::Normal),
    ];
    assert_eq!(avg(&b, AverageAttempt::Best).as_deref(), Some("70.01"));
    // (2 × 70.01 + 1 × 70) / 3 = 70.00666… → 70.01; 0.5 credits weigh as such.
    let c = [
        rec("2024-2025-1", "A", "甲", "2", "70.01", ExamKind::Normal),
        rec("2024-2025-1", "B", "乙", "1", "70", ExamKind::Normal),
        rec("2024-2025-1", "C", "丙", "0.5", "100", ExamKind::Normal),
    ];
    // (140.02 + 70 + 50) / 3.5 = 74.291… → 74.29
    assert_eq!(avg(&c, AverageAttempt::Best).as_deref(), Some("74.29"));
    assert_eq!(avg(&c[..2], AverageAttempt::Best).as_deref(), Some("70.01"));
}
