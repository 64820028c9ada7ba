//! Validated value types of the grades domain (term, exam kind, credit, five-level grade,
//! status, score) and the grade and roster records built from them.
//!
//! A little over 600 lines: each value type with its parser and display, kept together.

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

// ---------------------------------------------------------------------------------------------
// Small helpers shared by the value types
// ---------------------------------------------------------------------------------------------

/// Outcome of reading a plain decimal number into hundredths.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Decimal {
    /// The value in hundredths (saturated at `u64::MAX / 4` for absurdly long numbers).
    Value(u64),
    /// A number with non-zero digits after the second decimal place.
    TooManyDecimals,
    /// Not a plain non-negative decimal number.
    Invalid,
}

/// Parses `123`, `12.5`, `0.25`, `.5`, `3.` and `3.000` (zeros beyond two decimals are harmless).
/// No sign, no exponent, no thousands separators.
pub(super) fn parse_hundredths(s: &str) -> Decimal {
    const CAP: u64 = u64::MAX / 4;
    let (int_part, frac_part) = match s.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (s, None),
    };
    let frac = frac_part.unwrap_or("");
    if int_part.is_empty() && frac.is_empty() {
        return Decimal::Invalid;
    }
    if !int_part.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return Decimal::Invalid;
    }
    let mut value: u64 = 0;
    for b in int_part.bytes() {
        value = value.saturating_mul(10).saturating_add(u64::from(b - b'0'));
        if value > CAP {
            value = CAP;
        }
    }
    let fb = frac.as_bytes();
    if fb.iter().skip(2).any(|&b| b != b'0') {
        return Decimal::TooManyDecimals;
    }
    let d1 = fb.first().map_or(0, |b| u64::from(b - b'0'));
    let d2 = fb.get(1).map_or(0, |b| u64::from(b - b'0'));
    Decimal::Value(
        value
            .saturating_mul(100)
            .saturating_add(d1 * 10 + d2)
            .min(CAP),
    )
}

/// Writes hundredths without trailing zeros: 2275 → "22.75", 300 → "3", 150 → "1.5".
pub(super) fn write_hundredths(f: &mut fmt::Formatter<'_>, h: u64) -> fmt::Result {
    let (int, frac) = (h / 100, h % 100);
    if frac == 0 {
        write!(f, "{int}")
    } else if frac % 10 == 0 {
        write!(f, "{int}.{}", frac / 10)
    } else {
        write!(f, "{int}.{frac:02}")
    }
}

/// Shortens a user value for an error message (values can be arbitrarily long).
pub fn shown(value: &str) -> String {
    const MAX: usize = 40;
    if value.chars().count() <= MAX {
        value.to_string()
    } else {
        let mut s: String = value.chars().take(MAX).collect();
        s.push('…');
        s
    }
}

/// Deserializes a value from its string form through `parse`.
pub(super) fn deserialize_parsed<'de, D, T>(
    d: D,
    expecting: &'static str,
    parse: fn(&str) -> Result<T, String>,
) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
{
    struct StrVisitor<T> {
        expecting: &'static str,
        parse: fn(&str) -> Result<T, String>,
    }
    impl<T> Visitor<'_> for StrVisitor<T> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.expecting)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
            (self.parse)(v).map_err(E::custom)
        }
    }
    d.deserialize_str(StrVisitor { expecting, parse })
}

// ---------------------------------------------------------------------------------------------
// Term
// ---------------------------------------------------------------------------------------------

/// An academic term `YYYY-YYYY-N`: the second year is the first plus one, N is 1..=3.
///
/// Ordered chronologically. Serialized as its text, e.g. `"2025-2026-1"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Term {
    // Canonical ASCII text; fixed width, so byte order is chronological order.
    text: [u8; 11],
}

impl Term {
    /// Parses `2025-2026-1` (surrounding whitespace ignored).
    pub fn parse(s: &str) -> Result<Term, String> {
        let t = s.trim();
        let bad = || {
            format!(
                "学期应为“YYYY-YYYY-N”格式（如 2025-2026-1，第二个年份比第一个大1，N 为 1 到 3），实际为“{}”",
                shown(t)
            )
        };
        let b = t.as_bytes();
        if b.len() != 11 || b.get(4) != Some(&b'-') || b.get(9) != Some(&b'-') {
            return Err(bad());
        }
        let digits = |r: std::ops::Range<usize>| -> Option<u32> {
            let part = b.get(r)?;
            if !part.iter().all(u8::is_ascii_digit) {
                return None;
            }
            Some(
                part.iter()
                    .fold(0u32, |acc, d| acc * 10 + u32::from(d - b'0')),
            )
        };
        let (Some(y1), Some(y2), Some(n)) = (digits(0..4), digits(5..9), digits(10..11)) else {
            return Err(bad());
        };
        if y1 < 1000 || y2 != y1 + 1 || !(1..=3).contains(&n) {
            return Err(bad());
        }
        let mut text = [0u8; 11];
        text.copy_from_slice(b);
        Ok(Term { text })
    }

    /// The canonical text, e.g. `"2025-2026-1"`.
    pub fn as_str(&self) -> &str {
        // Always ASCII by construction; the fallback is unreachable.
        std::str::from_utf8(&self.text).unwrap_or("")
    }

    /// The first year of the academic year (2025 for `2025-2026-1`).
    pub fn start_year(&self) -> u16 {
        self.text
            .iter()
            .take(4)
            .fold(0u16, |acc, d| acc * 10 + u16::from(d.wrapping_sub(b'0')))
    }

    /// The term number within the academic year, 1..=3.
    pub fn number(&self) -> u8 {
        self.text[10].wrapping_sub(b'0')
    }

    /// Human label, e.g. `"2025-2026学年 第1学期"`.
    pub fn label(&self) -> String {
        let s = self.as_str();
        format!(
            "{}学年 第{}学期",
            s.get(..9).unwrap_or(s),
            s.get(10..).unwrap_or("")
        )
    }
}

impl fmt::Display for Term {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Term {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Term {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        deserialize_parsed(d, "a term such as \"2025-2026-1\"", Term::parse)
    }
}

// ---------------------------------------------------------------------------------------------
// Exam kind
// ---------------------------------------------------------------------------------------------

/// 考试性质. Serialized as its [`code`](ExamKind::code).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum ExamKind {
    /// 正常考试 (the default).
    #[default]
    Normal,
    /// 补考.
    Makeup,
    /// 重修.
    Retake,
}

impl ExamKind {
    /// All kinds, in display order.
    pub const ALL: [ExamKind; 3] = [ExamKind::Normal, ExamKind::Makeup, ExamKind::Retake];

    /// Parses 正常考试/正常, 补考, 重修, or a [`code`](ExamKind::code). Empty is *not* accepted
    /// here: the caller decides whether a missing kind means `Normal`.
    pub fn parse(s: &str) -> Result<ExamKind, String> {
        let t = s.trim();
        match t {
            "正常考试" | "正常" => return Ok(ExamKind::Normal),
            "补考" => return Ok(ExamKind::Makeup),
            "重修" => return Ok(ExamKind::Retake),
            _ => {}
        }
        if let Some(k) = ExamKind::from_code(&t.to_ascii_lowercase()) {
            return Ok(k);
        }
        Err(format!(
            "考试性质应为“正常考试”、“补考”或“重修”，实际为“{}”",
            shown(t)
        ))
    }

    /// Chinese label: 正常考试, 补考, 重修.
    pub fn label(self) -> &'static str {
        match self {
            ExamKind::Normal => "正常考试",
            ExamKind::Makeup => "补考",
            ExamKind::Retake => "重修",
        }
    }

    /// Stable short code for storage keys: `normal`, `makeup`, `retake`.
    pub fn code(self) -> &'static str {
        match self {
            ExamKind::Normal => "normal",
            ExamKind::Makeup => "makeup",
            ExamKind::Retake => "retake",
        }
    }

    /// The inverse of [`code`](ExamKind::code).
    pub fn from_code(code: &str) -> Option<ExamKind> {
        ExamKind::ALL.into_iter().find(|k| k.code() == code)
    }
}

impl fmt::Display for ExamKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

// ---------------------------------------------------------------------------------------------
// Credit
// ---------------------------------------------------------------------------------------------

/// A number of credits in exact hundredths. Serialized as its display text (`"1.5"`).
///
/// [`Credit::parse`] enforces the import rule (above 0, at most 30, at most two decimals);
/// sums such as credits earned are also `Credit`s and may be larger or zero.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Credit(pub(super) u32);

impl Credit {
    /// Zero credits.
    pub const ZERO: Credit = Credit(0);

    /// Parses a course credit: a number above 0 and at most 30 with at most two decimals.
    pub fn parse(s: &str) -> Result<Credit, String> {
        let t = s.trim();
        match parse_hundredths(t) {
            Decimal::Value(h) if h > 0 && h <= 3000 => Ok(Credit(h as u32)),
            _ => Err(format!(
                "学分应为大于0且不超过30、最多两位小数的数字，实际为“{}”",
                shown(t)
            )),
        }
    }

    /// Parses any non-negative amount with at most two decimals (used for stored sums).
    fn parse_amount(s: &str) -> Result<Credit, String> {
        match parse_hundredths(s.trim()) {
            Decimal::Value(h) if h <= u64::from(u32::MAX) => Ok(Credit(h as u32)),
            _ => Err(format!("not a credit amount: {:?}", shown(s))),
        }
    }

    /// From hundredths of a credit.
    pub fn from_hundredths(h: u32) -> Credit {
        Credit(h)
    }

    /// Hundredths of a credit.
    pub fn hundredths(self) -> u32 {
        self.0
    }

    /// Saturating sum.
    pub fn saturating_add(self, other: Credit) -> Credit {
        Credit(self.0.saturating_add(other.0))
    }
}

impl fmt::Display for Credit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_hundredths(f, u64::from(self.0))
    }
}

impl std::iter::Sum for Credit {
    fn sum<I: Iterator<Item = Credit>>(iter: I) -> Credit {
        iter.fold(Credit::ZERO, Credit::saturating_add)
    }
}

impl Serialize for Credit {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Credit {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        deserialize_parsed(d, "a credit amount such as \"1.5\"", Credit::parse_amount)
    }
}

// ---------------------------------------------------------------------------------------------
// Score
// ---------------------------------------------------------------------------------------------

/// 五级制 grade.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum FiveLevel {
    /// 优秀
    Excellent,
    /// 良好
    Good,
    /// 中等
    Medium,
    /// 及格
    Pass,
    /// 不及格
    Fail,
}

impl FiveLevel {
    /// All levels, best first.
    pub const ALL: [FiveLevel; 5] = [
        FiveLevel::Excellent,
        FiveLevel::Good,
        FiveLevel::Medium,
        FiveLevel::Pass,
        FiveLevel::Fail,
    ];

    /// Chinese label.
    pub fn label(self) -> &'static str {
        match self {
            FiveLevel::Excellent => "优秀",
            FiveLevel::Good => "良好",
            FiveLevel::Medium => "中等",
            FiveLevel::Pass => "及格",
            FiveLevel::Fail => "不及格",
        }
    }

    pub(super) fn index(self) -> usize {
        match self {
            FiveLevel::Excellent => 0,
            FiveLevel::Good => 1,
            FiveLevel::Medium => 2,
            FiveLevel::Pass => 3,
            FiveLevel::Fail => 4,
        }
    }

    /// English key usable unquoted in TOML: excellent, good, medium, pass, fail.
    pub fn key(self) -> &'static str {
        match self {
            FiveLevel::Excellent => "excellent",
            FiveLevel::Good => "good",
            FiveLevel::Medium => "medium",
            FiveLevel::Pass => "pass",
            FiveLevel::Fail => "fail",
        }
    }

    fn from_label(s: &str) -> Option<FiveLevel> {
        FiveLevel::ALL.into_iter().find(|l| l.label() == s)
    }

    /// A level named by its Chinese label or its English [`key`](FiveLevel::key).
    pub(super) fn from_config_key(s: &str) -> Option<FiveLevel> {
        let t = s.trim();
        FiveLevel::ALL
            .into_iter()
            .find(|l| l.label() == t || l.key().eq_ignore_ascii_case(t))
    }
}

/// A score status that is not a result.
///
/// What the student sees is the label. Failed: 缺考, 旷考, 作弊, 取消资格. Passed (the credits are
/// earned, no grade point): 免修, 免考. Neither: 缓考, 取消, 弃修, and 待录入 — "no grade yet"
/// (registrars write 待录, 未录入 or 成绩尚未录入), shown as 待录入 until a later import replaces it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Status {
    /// 缺考 (counts as failed)
    Absent,
    /// 缓考 (neither passed nor failed)
    Deferred,
    /// 作弊 (counts as failed)
    Cheating,
    /// 取消 (neither passed nor failed)
    Cancelled,
    /// 旷考 (counts as failed)
    Truant,
    /// 免修 (passed: credits earned, no grade point)
    Exempt,
    /// 免考 (passed: credits earned, no grade point)
    ExamExempt,
    /// 弃修 (neither passed nor failed)
    Dropped,
    /// 取消资格, i.e. 取消考试资格 (counts as failed)
    Disqualified,
    /// 待录入: no grade yet (neither passed nor failed)
    Pending,
}

impl Status {
    /// All statuses.
    pub const ALL: [Status; 10] = [
        Status::Absent,
        Status::Deferred,
        Status::Cheating,
        Status::Cancelled,
        Status::Truant,
        Status::Exempt,
        Status::ExamExempt,
        Status::Dropped,
        Status::Disqualified,
        Status::Pending,
    ];

    /// Chinese label.
    pub fn label(self) -> &'static str {
        match self {
            Status::Absent => "缺考",
            Status::Deferred => "缓考",
            Status::Cheating => "作弊",
            Status::Cancelled => "取消",
            Status::Truant => "旷考",
            Status::Exempt => "免修",
            Status::ExamExempt => "免考",
            Status::Dropped => "弃修",
            Status::Disqualified => "取消资格",
            Status::Pending => "待录入",
        }
    }

    fn from_label(s: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|l| l.label() == s)
    }
}

/// A course result. Serialized as its display text (`"89.5"`, `"优秀"`, `"合格"`, `"缺考"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Score {
    /// A numeric score in hundredths, 0..=10000 (0–100 with at most two decimals).
    Numeric(u32),
    /// 优秀 良好 中等 及格 不及格.
    Level(FiveLevel),
    /// 合格 (`true`) / 不合格 (`false`).
    PassFail(bool),
    /// 缺考 缓考 作弊 取消.
    Status(Status),
}

impl Score {
    /// Parses a score cell: a number 0–100 with at most two decimals, a five-level grade,
    /// 合格/不合格, or a status.
    pub fn parse(s: &str) -> Result<Score, String> {
        let t = s.trim();
        if let Some(l) = FiveLevel::from_label(t) {
            return Ok(Score::Level(l));
        }
        match t {
            "合格" => return Ok(Score::PassFail(true)),
            "不合格" => return Ok(Score::PassFail(false)),
            _ => {}
        }
        if let Some(st) = Status::from_label(t) {
            return Ok(Score::Status(st));
        }
        match parse_hundredths(t) {
            Decimal::Value(h) if h <= 10_000 => Ok(Score::Numeric(h as u32)),
            Decimal::Value(_) => Err(format!("成绩应在0到100之间，实际为“{}”", shown(t))),
            Decimal::TooManyDecimals => {
                Err(format!("成绩最多两位小数，实际为“{}”", shown(t)))
            }
            Decimal::Invalid => Err(format!(
                "成绩应为0到100的数字（最多两位小数）、五级制（优秀/良好/中等/及格/不及格）、合格/不合格，或缺考/缓考/作弊/取消，实际为“{}”",
                shown(t)
            )),
        }
    }

    /// Passed: a numeric score ≥ 60, 及格 or better, 合格, 免修, 免考.
    pub fn passed(&self) -> bool {
        match *self {
            Score::Numeric(h) => h >= 6000,
            Score::Level(l) => l != FiveLevel::Fail,
            Score::PassFail(ok) => ok,
            Score::Status(st) => matches!(st, Status::Exempt | Status::ExamExempt),
        }
    }

    /// Failed: a numeric score below 60, 不及格, 不合格, 缺考, 旷考, 作弊, 取消资格 (see
    /// [`Status`] for the rest).
    pub fn failed(&self) -> bool {
        match *self {
            Score::Numeric(h) => h < 6000,
            Score::Level(l) => l == FiveLevel::Fail,
            Score::PassFail(ok) => !ok,
            Score::Status(st) => matches!(
                st,
                Status::Absent | Status::Truant | Status::Cheating | Status::Disqualified
            ),
        }
    }
}

impl fmt::Display for Score {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Score::Numeric(h) => write_hundredths(f, u64::from(h)),
            Score::Level(l) => f.write_str(l.label()),
            Score::PassFail(true) => f.write_str("合格"),
            Score::PassFail(false) => f.write_str("不合格"),
            Score::Status(st) => f.write_str(st.label()),
        }
    }
}

impl Serialize for Score {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Score {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        deserialize_parsed(d, "a score such as \"89.5\" or \"优秀\"", Score::parse)
    }
}

/// Passed: see [`Score::passed`].
pub fn passed(score: &Score) -> bool {
    score.passed()
}

/// Failed: see [`Score::failed`].
pub fn failed(score: &Score) -> bool {
    score.failed()
}

// ---------------------------------------------------------------------------------------------
// Records
// ---------------------------------------------------------------------------------------------

/// One grade row, keyed by (student_id, term, course_code, kind).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GradeRecord {
    pub student_id: String,
    pub term: Term,
    pub course_code: String,
    pub course_name: String,
    pub credit: Credit,
    pub score: Score,
    pub kind: ExamKind,
    /// The student's name as given in the grade file, to be checked against the roster.
    pub name: Option<String>,
    /// What the file says about the course beyond code, name and credit (stored with the row).
    #[serde(default)]
    pub course: CourseFacts,
}

/// Course attributes a registrar's file may carry, kept as written (trimmed). All optional:
/// our own layout has none of them, and rows stored before they existed decode with none.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CourseFacts {
    /// 课程性质 / 课程属性: 必修, 选修, 限选, 任选, 公选, …
    pub nature: Option<String>,
    /// 开课学院: the school that teaches the course.
    pub college: Option<String>,
    /// 教学班: the teaching class (section) the student sat the course in.
    pub class_group: Option<String>,
    /// Score components in file order, e.g. (平时, 88), (期末, 79): label and value as written.
    pub components: Vec<(String, String)>,
}

impl CourseFacts {
    /// True when the course is compulsory (课程性质 starts with 必修, e.g. 必修, 必修课, 必修(专业)).
    pub fn is_compulsory(&self) -> bool {
        self.nature
            .as_deref()
            .is_some_and(|n| n.trim_start().starts_with("必修"))
    }

    /// True when nothing is known beyond code, name and credit.
    pub fn is_empty(&self) -> bool {
        self.nature.is_none()
            && self.college.is_none()
            && self.class_group.is_none()
            && self.components.is_empty()
    }
}

/// One roster row. `verify` is the plain verification value as read from the file: it must be
/// hashed before storage and never logged or shown.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RosterRecord {
    pub student_id: String,
    pub name: String,
    pub verify: String,
    pub class: Option<String>,
    pub major: Option<String>,
    /// 学院, when the roster has it.
    #[serde(default)]
    pub college: Option<String>,
    /// 年级 (e.g. `2025`), when the roster has it.
    #[serde(default)]
    pub cohort: Option<String>,
}

impl fmt::Debug for RosterRecord {
    // Hand-written so that the verification value never reaches a log line through `{:?}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RosterRecord")
            .field("student_id", &self.student_id)
            .field("name", &self.name)
            .field("verify", &"<redacted>")
            .field("class", &self.class)
            .field("major", &self.major)
            .field("college", &self.college)
            .field("cohort", &self.cohort)
            .finish()
    }
}
