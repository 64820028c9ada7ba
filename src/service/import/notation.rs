//! Cell values as registrar systems write them, translated to ours: term notations → `Term`
//! (`YYYY-YYYY-N`), 考试性质 synonyms → `ExamKind`, score levels, pass/fail words and statuses
//! → `Score`, and a 证件号码 → the verification value. Each function takes one trimmed cell
//! and returns a Chinese message naming the value when it cannot say what the value means.
//!
//! Term rules: term 1 is the autumn term of the academic year `Y-(Y+1)`, term 2 the spring term
//! (in calendar year `Y+1`), term 3 the summer term (also in `Y+1`). So `2025秋` is `2025-2026-1`
//! and `2026春` is `2025-2026-2`; a bare year and term number (`20251`, `202502`) names the
//! *start* year of the academic year.

use crate::grades::{shown, ExamKind, Score, Term};

/// Parses a term written in one cell: `2025-2026-1`, `2025-2026_2`, `2025-2026学年第一学期`,
/// `2025-2026学年第1学期`, `2025-2026-秋`, `20251` / `20252` / `20253`, `202501` … `202503`,
/// `2025秋` / `2026春` / `2026夏`.
pub fn parse_term(value: &str) -> Result<Term, String> {
    let t = value.trim();
    if let Ok(term) = Term::parse(t) {
        return Ok(term);
    }
    // Canonical shape with a bad number (2025-2027-1, 2025-2026-4): the canonical message.
    let b = t.as_bytes();
    if b.len() == 11 && b.get(4) == Some(&b'-') && b.get(9) == Some(&b'-') {
        return Term::parse(t);
    }
    term_notation(t).ok_or_else(|| unknown_term(t))
}

/// Parses a term given as two cells: 学年 (`2025-2026`, `2025-2026学年`, or the start year
/// `2025`) and 学期 (`1`/`2`/`3`, `01`, `第一学期`/`第二学期`/`第三学期`, `第1学期`, `一`, `秋`/`春`/`夏`,
/// `秋季`, `上`/`下`). A 学期 cell that already holds a whole term (`2025-2026-1`) is taken as
/// such when it agrees with the 学年. Errors say which of the two cells is wrong:
/// `Err((true, message))` for the 学年, `Err((false, message))` for the 学期.
pub fn parse_year_and_term(year: &str, term: &str) -> Result<Term, (bool, String)> {
    let (y, term) = (year.trim(), term.trim());
    let start = academic_year(y).ok_or_else(|| {
        (
            true,
            format!(
                "学年应为“2025-2026”这样的两个相邻年份，实际为“{}”",
                shown(y)
            ),
        )
    })?;
    if let Some(n) = term_of_year(term) {
        return make_term(start, n).ok_or_else(|| (true, format!("学年超出范围：“{}”", shown(y))));
    }
    if let Ok(whole) = parse_term(term) {
        if u32::from(whole.start_year()) == start {
            return Ok(whole);
        }
        return Err((
            false,
            format!("学期“{}”与学年“{}”不一致", shown(term), shown(y)),
        ));
    }
    Err((
        false,
        format!(
            "学期应为1、2、3，第一学期/第二学期/第三学期，或秋/春/夏，实际为“{}”",
            shown(term)
        ),
    ))
}

fn unknown_term(t: &str) -> String {
    format!(
        "无法识别的学期写法“{}”：应为 2025-2026-1、2025-2026学年第一学期、20251、2025秋 或 2026春 等",
        shown(t)
    )
}

/// The start year of an academic year written `2025-2026`, `2025-2026学年`, `2025～2026`,
/// `2025/2026` or `2025`.
fn academic_year(y: &str) -> Option<u32> {
    let y = y.strip_suffix("学年").unwrap_or(y).trim();
    if let Some(start) = four_digits(y) {
        return Some(start);
    }
    let (a, b, rest) = split_years(y)?;
    (b == a + 1 && rest.is_empty()).then_some(a)
}

/// `2025-2026…` with `-`, `_`, `/`, `～`, `~` or `—` between the years: both years and the rest.
fn split_years(y: &str) -> Option<(u32, u32, &str)> {
    let a = four_digits(y.get(..4)?)?;
    let rest = y.get(4..)?;
    let sep = rest.chars().next()?;
    if !matches!(sep, '-' | '_' | '/' | '～' | '~' | '—' | '－') {
        return None;
    }
    let rest = rest.get(sep.len_utf8()..)?;
    let b = four_digits(rest.get(..4)?)?;
    Some((a, b, rest.get(4..)?))
}

fn four_digits(s: &str) -> Option<u32> {
    if s.len() != 4 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let y = s.parse::<u32>().ok()?;
    (1900..=2999).contains(&y).then_some(y)
}

/// The term number within an academic year, from a 学期 cell.
fn term_of_year(t: &str) -> Option<u32> {
    let t = t.trim();
    let inner = t
        .strip_prefix('第')
        .and_then(|r| r.strip_suffix("学期"))
        .unwrap_or(t);
    let inner = inner.strip_suffix("学期").unwrap_or(inner);
    let inner = inner.strip_suffix('季').unwrap_or(inner);
    match inner {
        "1" | "01" | "一" | "秋" | "上" => Some(1),
        "2" | "02" | "二" | "春" | "下" => Some(2),
        "3" | "03" | "三" | "夏" | "小" => Some(3),
        _ => None,
    }
}

fn make_term(start: u32, n: u32) -> Option<Term> {
    Term::parse(&format!("{start}-{}-{n}", start + 1)).ok()
}

/// Every one-cell notation but the canonical one.
fn term_notation(t: &str) -> Option<Term> {
    // 2025-2026_2, 2025-2026-秋, 2025-2026学年第一学期, 2025-2026学年秋季学期
    if let Some((a, b, rest)) = split_years(t) {
        if b != a + 1 {
            return None;
        }
        let rest = rest.strip_prefix("学年").unwrap_or(rest);
        let rest = rest
            .strip_prefix(['-', '_', ' ', '/'])
            .unwrap_or(rest)
            .trim();
        return make_term(a, term_of_year(rest)?);
    }
    // 20251, 202502
    if t.bytes().all(|b| b.is_ascii_digit()) {
        let year = four_digits(t.get(..4)?)?;
        let n = match t.get(4..)? {
            "1" | "01" => 1,
            "2" | "02" => 2,
            "3" | "03" => 3,
            _ => return None,
        };
        return make_term(year, n);
    }
    // 2025秋, 2026春, 2026夏, 2025年秋季, 2026年春季学期
    let year = four_digits(t.get(..4)?)?;
    let rest = t.get(4..)?;
    let rest = rest.strip_prefix('年').unwrap_or(rest);
    let rest = rest.strip_suffix("学期").unwrap_or(rest);
    let rest = rest.strip_suffix('季').unwrap_or(rest);
    match rest {
        "秋" => make_term(year, 1),
        "春" => make_term(year.checked_sub(1)?, 2),
        "夏" => make_term(year.checked_sub(1)?, 3),
        _ => None,
    }
}

/// Parses a 考试性质 (or 成绩性质, 考试类型, 修读方式) cell. Normal: 正常考试, 正考, 正常, 正常考考试,
/// 初修, 首修; makeup: 补考, 补考一, 补考二, 补考1, 正常考考试补考, 期初补考, 清考; retake: 重修,
/// 重修一, 重修二, 重修1, 第1次重修 … 第9次重修, 重修考试, 重新学习. Also the codes
/// normal/makeup/retake. Anything else is an error naming the value.
pub fn parse_exam_kind(value: &str) -> Result<ExamKind, String> {
    let t = value.trim();
    match t {
        "正常考试" | "正考" | "正常" | "正常考考试" | "初修" | "首修" | "正常修读" => {
            return Ok(ExamKind::Normal)
        }
        "补考" | "正常考考试补考" | "期初补考" | "期末补考" | "清考" | "毕业清考" => {
            return Ok(ExamKind::Makeup)
        }
        "重修" | "重修考试" | "重新学习" | "重修修读" => return Ok(ExamKind::Retake),
        _ => {}
    }
    let numbered = |rest: &str| {
        matches!(
            rest,
            "一" | "二" | "三" | "1" | "2" | "3" | "（一）" | "（二）" | "(1)" | "(2)"
        )
    };
    if t.strip_prefix("补考").is_some_and(numbered) {
        return Ok(ExamKind::Makeup);
    }
    if t.strip_prefix("重修").is_some_and(numbered) {
        return Ok(ExamKind::Retake);
    }
    if let Some(n) = t.strip_prefix('第').and_then(|r| r.strip_suffix("次重修")) {
        if matches!(
            n,
            "1" | "2" | "3" | "4" | "5" | "6" | "7" | "8" | "9" | "一" | "二" | "三"
        ) {
            return Ok(ExamKind::Retake);
        }
    }
    ExamKind::parse(t)
}

/// Parses a 成绩 cell, accepting the registrars' words: 优/良/中/差 for 优秀/良好/中等/不及格,
/// 通过/不通过 for 合格/不合格, 待录/未录入/成绩尚未录入/未录 for 待录入, 取消考试资格 for 取消资格,
/// letter grades (A, P, …) are not guessed. Everything else goes to [`Score::parse`].
pub fn parse_score(value: &str) -> Result<Score, String> {
    let t = value.trim();
    let canonical = match t {
        "优" => "优秀",
        "良" => "良好",
        "中" => "中等",
        "差" => "不及格",
        "通过" => "合格",
        "不通过" => "不合格",
        "待录" | "未录入" | "成绩尚未录入" | "未录" | "尚未录入" => "待录入",
        "取消考试资格" => "取消资格",
        _ => t,
    };
    Score::parse(canonical)
}

/// A 成绩标识 (强智) cell: empty or 正常 means "use the score beside it"; anything else is a
/// score of its own (缺考, 缓考, 免修, …) that overrides the numeric cell.
pub fn parse_score_flag(value: &str) -> Result<Option<Score>, String> {
    let t = value.trim();
    if matches!(t, "" | "正常" | "正常考试" | "有效") {
        return Ok(None);
    }
    parse_score(t).map(Some).map_err(|_| {
        format!(
            "成绩标识应为空、正常，或缺考/缓考/作弊/免修等状态，实际为“{}”",
            shown(t)
        )
    })
}

/// True for a 是否成绩作废 cell that says the row is void (是, Y, 1, 作废).
pub fn is_void(value: &str) -> Result<bool, String> {
    match value.trim() {
        "是" | "Y" | "y" | "1" | "作废" | "已作废" => Ok(true),
        "" | "否" | "N" | "n" | "0" | "正常" => Ok(false),
        other => Err(format!(
            "是否成绩作废应为“是”或“否”，实际为“{}”",
            shown(other)
        )),
    }
}

/// The verification value from a 证件号码/身份证号 cell: its last six characters, `x` upper-cased.
/// The number itself is a secret: the message never repeats it.
pub fn verify_from_id_number(value: &str) -> Result<String, String> {
    let t = value.trim();
    let count = t.chars().count();
    if count < 6 {
        return Err(format!("证件号码应至少有6个字符，实际为{count}个字符"));
    }
    if count > 32 {
        return Err(format!("证件号码不能超过32个字符，实际为{count}个字符"));
    }
    if !t.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err("证件号码只能包含字母和数字".to_string());
    }
    // ASCII only from here, so byte slicing is character slicing.
    let tail = t.get(t.len() - 6..).unwrap_or(t);
    Ok(tail.to_ascii_uppercase())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grades::{FiveLevel, Status as St};

    fn term(s: &str) -> String {
        match parse_term(s) {
            Ok(t) => t.to_string(),
            Err(e) => format!("ERR {e}"),
        }
    }

    #[test]
    fn one_cell_term_notations() {
        for (input, want) in [
            ("2025-2026-1", "2025-2026-1"),
            (" 2025-2026-3 ", "2025-2026-3"),
            ("2025-2026_2", "2025-2026-2"),
            ("2025-2026_1", "2025-2026-1"),
            ("2025-2026-秋", "2025-2026-1"),
            ("2025-2026学年第一学期", "2025-2026-1"),
            ("2025-2026学年第二学期", "2025-2026-2"),
            ("2025-2026学年第三学期", "2025-2026-3"),
            ("2025-2026学年第1学期", "2025-2026-1"),
            ("2025-2026学年秋季学期", "2025-2026-1"),
            ("2025-2026学年春季", "2025-2026-2"),
            ("2025～2026学年第二学期", "2025-2026-2"),
            ("20251", "2025-2026-1"),
            ("20252", "2025-2026-2"),
            ("20253", "2025-2026-3"),
            ("202501", "2025-2026-1"),
            ("202502", "2025-2026-2"),
            ("202503", "2025-2026-3"),
            // Autumn opens the academic year; spring and summer belong to the one that began
            // the autumn before.
            ("2025秋", "2025-2026-1"),
            ("2026春", "2025-2026-2"),
            ("2026夏", "2025-2026-3"),
            ("2025年秋季", "2025-2026-1"),
            ("2026年春季学期", "2025-2026-2"),
        ] {
            assert_eq!(term(input), want, "{input}");
        }
    }

    #[test]
    fn unknown_or_ambiguous_terms_name_the_value() {
        // The canonical shape keeps the canonical message.
        assert_eq!(
            parse_term("2025-2027-1").unwrap_err(),
            "学期应为“YYYY-YYYY-N”格式（如 2025-2026-1，第二个年份比第一个大1，N 为 1 到 3），实际为“2025-2027-1”"
        );
        for bad in [
            "2025",        // a year without a term
            "2025-2026",   // an academic year without a term
            "20254",       // no fourth term
            "202513",      // not a term number
            "2025-2027_1", // years not adjacent
            "2025-2026学年第四学期",
            "2025冬",
            "秋",
            "1",
            "25-26-1",
            "2025/09",
            "第一学期",
        ] {
            let e = parse_term(bad).unwrap_err();
            assert!(e.contains(&format!("“{bad}”")), "{bad}: {e}");
        }
        assert_eq!(
            parse_term("2025冬").unwrap_err(),
            "无法识别的学期写法“2025冬”：应为 2025-2026-1、2025-2026学年第一学期、20251、2025秋 或 2026春 等"
        );
    }

    #[test]
    fn year_and_term_columns() {
        let ok = |y: &str, t: &str| parse_year_and_term(y, t).map(|t| t.to_string());
        for t in ["1", "01", "第一学期", "第1学期", "一", "秋", "秋季", "上"] {
            assert_eq!(ok("2025-2026", t), Ok("2025-2026-1".into()), "{t}");
        }
        for t in ["2", "第二学期", "春", "下", "春季"] {
            assert_eq!(ok("2025-2026", t), Ok("2025-2026-2".into()), "{t}");
        }
        for t in ["3", "第三学期", "夏", "夏季"] {
            assert_eq!(ok("2025-2026", t), Ok("2025-2026-3".into()), "{t}");
        }
        // URP writes 春 under the academic year it belongs to.
        assert_eq!(ok("2024-2025", "春"), Ok("2024-2025-2".into()));
        assert_eq!(ok("2025-2026学年", "1"), Ok("2025-2026-1".into()));
        assert_eq!(ok("2025", "2"), Ok("2025-2026-2".into()));
        assert_eq!(ok("2025_2026", "2"), Ok("2025-2026-2".into()));
        assert_eq!(ok("2025-2026", "2025-2026-2"), Ok("2025-2026-2".into()));

        let err = |y: &str, t: &str| parse_year_and_term(y, t).unwrap_err();
        assert_eq!(
            err("2025-2027", "1"),
            (
                true,
                "学年应为“2025-2026”这样的两个相邻年份，实际为“2025-2027”".into()
            )
        );
        assert!(err("25-26", "1").0);
        assert_eq!(
            err("2025-2026", "4"),
            (
                false,
                "学期应为1、2、3，第一学期/第二学期/第三学期，或秋/春/夏，实际为“4”".into()
            )
        );
        assert!(!err("2025-2026", "冬").0);
        assert_eq!(
            err("2025-2026", "2024-2025-1"),
            (false, "学期“2024-2025-1”与学年“2025-2026”不一致".into())
        );
    }

    #[test]
    fn exam_kind_synonyms() {
        for v in [
            "正常考试",
            "正考",
            "正常",
            "正常考考试",
            "初修",
            "首修",
            "normal",
        ] {
            assert_eq!(parse_exam_kind(v), Ok(ExamKind::Normal), "{v}");
        }
        for v in [
            "补考",
            "补考一",
            "补考二",
            "补考1",
            "补考2",
            "正常考考试补考",
            "期初补考",
            "清考",
            "makeup",
        ] {
            assert_eq!(parse_exam_kind(v), Ok(ExamKind::Makeup), "{v}");
        }
        for v in [
            "重修",
            "第1次重修",
            "第2次重修",
            "重修一",
            "重修二",
            "重修1",
            "重修考试",
            "retake",
        ] {
            assert_eq!(parse_exam_kind(v), Ok(ExamKind::Retake), "{v}");
        }
        // Ambiguous or unknown: the value is named.
        for v in ["重修补考", "期中", "补考四", "第十次重修", "缓考"] {
            assert_eq!(
                parse_exam_kind(v).unwrap_err(),
                format!("考试性质应为“正常考试”、“补考”或“重修”，实际为“{v}”")
            );
        }
    }

    #[test]
    fn score_synonyms() {
        use Score::*;
        for (v, want) in [
            ("优", Level(FiveLevel::Excellent)),
            ("良", Level(FiveLevel::Good)),
            ("中", Level(FiveLevel::Medium)),
            ("及格", Level(FiveLevel::Pass)),
            ("差", Level(FiveLevel::Fail)),
            ("优秀", Level(FiveLevel::Excellent)),
            ("不及格", Level(FiveLevel::Fail)),
            ("通过", PassFail(true)),
            ("不通过", PassFail(false)),
            ("合格", PassFail(true)),
            ("缺考", Status(St::Absent)),
            ("旷考", Status(St::Truant)),
            ("缓考", Status(St::Deferred)),
            ("作弊", Status(St::Cheating)),
            ("取消", Status(St::Cancelled)),
            ("取消资格", Status(St::Disqualified)),
            ("取消考试资格", Status(St::Disqualified)),
            ("免修", Status(St::Exempt)),
            ("免考", Status(St::ExamExempt)),
            ("弃修", Status(St::Dropped)),
            ("待录", Status(St::Pending)),
            ("未录入", Status(St::Pending)),
            ("成绩尚未录入", Status(St::Pending)),
            ("待录入", Status(St::Pending)),
            ("89.5", Numeric(8950)),
        ] {
            assert_eq!(parse_score(v), Ok(want), "{v}");
        }
        for bad in ["A", "良好+", "P", "101", "缺"] {
            let e = parse_score(bad).unwrap_err();
            assert!(e.contains(&format!("“{bad}”")), "{bad}: {e}");
        }
    }

    #[test]
    fn score_flag_overrides_only_when_it_says_something() {
        assert_eq!(parse_score_flag(""), Ok(None));
        assert_eq!(parse_score_flag("正常"), Ok(None));
        assert_eq!(
            parse_score_flag("缺考"),
            Ok(Some(Score::Status(St::Absent)))
        );
        assert_eq!(
            parse_score_flag("免修"),
            Ok(Some(Score::Status(St::Exempt)))
        );
        assert_eq!(
            parse_score_flag("重考").unwrap_err(),
            "成绩标识应为空、正常，或缺考/缓考/作弊/免修等状态，实际为“重考”"
        );
    }

    #[test]
    fn void_flag() {
        assert_eq!(is_void("是"), Ok(true));
        assert_eq!(is_void("否"), Ok(false));
        assert_eq!(is_void(""), Ok(false));
        assert_eq!(
            is_void("也许").unwrap_err(),
            "是否成绩作废应为“是”或“否”，实际为“也许”"
        );
    }

    #[test]
    fn id_number_gives_last_six_upper_cased_and_is_never_repeated() {
        assert_eq!(
            verify_from_id_number("11010519491231002x"),
            Ok("31002X".into())
        );
        assert_eq!(
            verify_from_id_number(" 110105194912310021 "),
            Ok("310021".into())
        );
        assert_eq!(
            verify_from_id_number("110105491231002"),
            Ok("231002".into())
        );
        assert_eq!(verify_from_id_number("E12345678"), Ok("345678".into()));
        for bad in ["12345", "1101051949-231002X", "11010519491231002Ｘ", ""] {
            let e = verify_from_id_number(bad).unwrap_err();
            assert!(bad.is_empty() || !e.contains(bad), "{e}");
            assert!(e.starts_with("证件号码"), "{e}");
        }
        assert!(verify_from_id_number(&"1".repeat(33)).is_err());
    }
}
