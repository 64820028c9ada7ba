//! The grades domain: validated value types (term, exam kind, credit, score), grade records,
//! grade-point scales (built-in `standard4` or a department's own from the config) and the
//! transcript rules of SPEC.md (term GPA, overall GPA, credits earned, passed/failed).
//!
//! Everything numeric is kept in exact hundredths (`u32`/`u64`) so GPAs and credit sums are exact;
//! only display rounds (half away from zero, two decimals).

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};

// ---------------------------------------------------------------------------------------------
// Small helpers shared by the value types
// ---------------------------------------------------------------------------------------------

/// Outcome of reading a plain decimal number into hundredths.
#[derive(Debug, PartialEq, Eq)]
enum Decimal {
    /// The value in hundredths (saturated at `u64::MAX / 4` for absurdly long numbers).
    Value(u64),
    /// A number with non-zero digits after the second decimal place.
    TooManyDecimals,
    /// Not a plain non-negative decimal number.
    Invalid,
}

/// Parses `123`, `12.5`, `0.25`, `.5`, `3.` and `3.000` (zeros beyond two decimals are harmless).
/// No sign, no exponent, no thousands separators.
fn parse_hundredths(s: &str) -> Decimal {
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
fn write_hundredths(f: &mut fmt::Formatter<'_>, h: u64) -> fmt::Result {
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
fn deserialize_parsed<'de, D, T>(
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
pub struct Credit(u32);

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

    fn index(self) -> usize {
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
    fn from_config_key(s: &str) -> Option<FiveLevel> {
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

/// Passed: a numeric score ≥ 60, 及格 or better, 合格.
pub fn passed(score: &Score) -> bool {
    score.passed()
}

/// Failed: a numeric score below 60, 不及格, 不合格, 缺考, 作弊 (缓考 and 取消 are neither).
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

// ---------------------------------------------------------------------------------------------
// Scales
// ---------------------------------------------------------------------------------------------

/// One band of a numeric scale: scores at or above `min_score` (and below the band above)
/// get `points`. Both in hundredths.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Band {
    pub min_score: u32,
    pub points: u32,
}

/// A grade-point scale. Serialized as its [`ScaleConfig`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scale {
    // Strictly descending by `min_score`, points non-increasing; a score below the last band
    // gets 0 points.
    bands: Vec<Band>,
    // Points for 优秀 良好 中等 及格 不及格, in hundredths.
    levels: [u32; 5],
}

const STANDARD4_BANDS: [(u32, u32); 10] = [
    (9000, 400),
    (8500, 370),
    (8200, 330),
    (7800, 300),
    (7500, 270),
    (7200, 230),
    (6800, 200),
    (6400, 150),
    (6000, 100),
    (0, 0),
];
const STANDARD_LEVELS: [u32; 5] = [400, 300, 200, 100, 0];

impl Scale {
    /// The SPEC's default scale `standard4`.
    pub fn standard4() -> Scale {
        Scale {
            bands: STANDARD4_BANDS
                .iter()
                .map(|&(min_score, points)| Band { min_score, points })
                .collect(),
            levels: STANDARD_LEVELS,
        }
    }

    /// The numeric bands, highest first.
    pub fn bands(&self) -> &[Band] {
        &self.bands
    }

    /// Points (hundredths) for a five-level grade.
    pub fn level_points(&self, level: FiveLevel) -> u32 {
        self.levels.get(level.index()).copied().unwrap_or(0)
    }

    /// Grade point in hundredths, or `None` for 合格/不合格 and statuses.
    pub fn grade_point(&self, score: &Score) -> Option<u32> {
        match *score {
            Score::Numeric(h) => Some(
                self.bands
                    .iter()
                    .find(|b| h >= b.min_score)
                    .map_or(0, |b| b.points),
            ),
            Score::Level(l) => Some(self.level_points(l)),
            Score::PassFail(_) | Score::Status(_) => None,
        }
    }

    /// Builds a scale from the config, checking it. Messages say what is wrong.
    pub fn from_config(config: &ScaleConfig) -> Result<Scale, String> {
        match config {
            ScaleConfig::Named(name) => match name.trim().to_ascii_lowercase().as_str() {
                "standard4" => Ok(Scale::standard4()),
                _ => Err(format!(
                    "unknown grade scale {name:?}: use \"standard4\" or a table \
                     {{ bands = [[90, 4.0], [80, 3.0], ...], levels = {{ \"优秀\" = 4.0, ... }} }}"
                )),
            },
            ScaleConfig::Custom(custom) => Scale::from_custom(custom),
        }
    }

    fn from_custom(custom: &CustomScale) -> Result<Scale, String> {
        if custom.bands.is_empty() {
            return Err(
                "scale.bands is empty: give at least one [lower bound, points] pair, \
                        e.g. [[60, 1.0], [0, 0]]"
                    .to_string(),
            );
        }
        let mut bands: Vec<Band> = Vec::with_capacity(custom.bands.len());
        for &(bound, points) in &custom.bands {
            let min_score = config_hundredths(bound, 100).ok_or_else(|| {
                format!(
                    "scale.bands: lower bound {bound} in [{bound}, {points}] must be a score from 0 to 100 \
                     with at most two decimals"
                )
            })?;
            let pts = config_hundredths(points, 5).ok_or_else(|| {
                format!(
                    "scale.bands: grade point {points} in [{bound}, {points}] must be from 0 to 5 \
                     with at most two decimals"
                )
            })?;
            if let Some(prev) = bands.last() {
                if min_score >= prev.min_score {
                    return Err(format!(
                        "scale.bands must be listed from the highest lower bound down: {bound} comes after {}",
                        Hundredths(prev.min_score)
                    ));
                }
                if pts > prev.points {
                    return Err(format!(
                        "scale.bands: band [{bound}, {points}] gives more points than the band above it \
                         [{}, {}]",
                        Hundredths(prev.min_score),
                        Hundredths(prev.points)
                    ));
                }
            }
            bands.push(Band {
                min_score,
                points: pts,
            });
        }
        let levels = match &custom.levels {
            None => STANDARD_LEVELS,
            Some(map) => {
                let mut levels = [0u32; 5];
                let mut given = [false; 5];
                for (key, &value) in map {
                    let level = FiveLevel::from_config_key(key).ok_or_else(|| {
                        format!(
                            "scale.levels: unknown level {key:?}; the levels are \"优秀\", \"良好\", \"中等\", \"及格\", \"不及格\" \
                             (quoted in TOML) or excellent, good, medium, pass, fail"
                        )
                    })?;
                    if given.get(level.index()) == Some(&true) {
                        return Err(format!("scale.levels: {} is given twice", level.label()));
                    }
                    if let Some(g) = given.get_mut(level.index()) {
                        *g = true;
                    }
                    let pts = config_hundredths(value, 5).ok_or_else(|| {
                        format!(
                            "scale.levels: {key} = {value} must be from 0 to 5 with at most two decimals"
                        )
                    })?;
                    if let Some(slot) = levels.get_mut(level.index()) {
                        *slot = pts;
                    }
                }
                let missing: Vec<&str> = FiveLevel::ALL
                    .iter()
                    .filter(|l| given.get(l.index()) != Some(&true))
                    .map(|l| l.label())
                    .collect();
                if !missing.is_empty() {
                    return Err(format!(
                        "scale.levels must give all five levels; missing: {}",
                        missing.join(", ")
                    ));
                }
                levels
            }
        };
        Ok(Scale { bands, levels })
    }

    /// The config that builds this scale (`"standard4"` when it is the standard one).
    pub fn to_config(&self) -> ScaleConfig {
        if *self == Scale::standard4() {
            return ScaleConfig::Named("standard4".to_string());
        }
        let f = |h: u32| f64::from(h) / 100.0;
        ScaleConfig::Custom(CustomScale {
            bands: self
                .bands
                .iter()
                .map(|b| (f(b.min_score), f(b.points)))
                .collect(),
            levels: Some(
                FiveLevel::ALL
                    .iter()
                    .map(|&l| (l.label().to_string(), f(self.level_points(l))))
                    .collect(),
            ),
        })
    }
}

impl Default for Scale {
    fn default() -> Self {
        Scale::standard4()
    }
}

impl Serialize for Scale {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_config().serialize(s)
    }
}

impl<'de> Deserialize<'de> for Scale {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let config = ScaleConfig::deserialize(d)?;
        Scale::from_config(&config).map_err(de::Error::custom)
    }
}

/// Display helper for hundredths in messages.
struct Hundredths(u32);

impl fmt::Display for Hundredths {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_hundredths(f, u64::from(self.0))
    }
}

/// A config number (integer or float) as hundredths, if it is finite, within 0..=max and has at
/// most two decimals.
fn config_hundredths(v: f64, max: u32) -> Option<u32> {
    if !v.is_finite() || v < 0.0 || v > f64::from(max) {
        return None;
    }
    let scaled = v * 100.0;
    let rounded = scaled.round();
    if (scaled - rounded).abs() > 1e-6 {
        return None;
    }
    Some(rounded as u32)
}

/// The `[grades] scale` setting: a scale name, or a table of bands and (optionally) levels.
///
/// ```toml
/// scale = "standard4"
/// # or
/// scale = { bands = [[90, 4.0], [80, 3.0], [70, 2.0], [60, 1.0], [0, 0]], levels = { "优秀" = 4.0, "良好" = 3.0, "中等" = 2.0, "及格" = 1.0, "不及格" = 0 } }
/// ```
///
/// TOML does not allow bare Chinese keys, so the level names are quoted; the English keys
/// `excellent good medium pass fail` may be used unquoted instead.
///
/// Deserialization is hand-written (the shape of `#[serde(untagged)]`) so that a mistake in the
/// table gets serde's precise message (e.g. the unknown key's name) instead of
/// "data did not match any variant".
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum ScaleConfig {
    /// A built-in scale by name: `"standard4"`.
    Named(String),
    /// A department's own scale.
    Custom(CustomScale),
}

impl Default for ScaleConfig {
    fn default() -> Self {
        ScaleConfig::Named("standard4".to_string())
    }
}

/// A department's own scale as written in the config.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomScale {
    /// `[lower bound, grade point]` pairs, highest lower bound first. A score below the last
    /// lower bound gets 0.
    pub bands: Vec<(f64, f64)>,
    /// Points for 优秀 良好 中等 及格 不及格 (all five); the SPEC's 4/3/2/1/0 when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub levels: Option<BTreeMap<String, f64>>,
}

impl<'de> Deserialize<'de> for ScaleConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ScaleVisitor;
        impl<'de> Visitor<'de> for ScaleVisitor {
            type Value = ScaleConfig;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "a scale name such as \"standard4\", or a table { bands = [[90, 4.0], ...], levels = { \"优秀\" = 4.0, ... } }",
                )
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ScaleConfig, E> {
                Ok(ScaleConfig::Named(v.to_string()))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<ScaleConfig, A::Error> {
                CustomScale::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(ScaleConfig::Custom)
            }
        }
        d.deserialize_any(ScaleVisitor)
    }
}

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
pub struct Gpa(u32);

impl Gpa {
    /// Σ(credit × point) / Σ credit, with credit and point in hundredths; `None` when there are
    /// no credits.
    fn from_sums(weighted: u64, credits: u64) -> Option<Gpa> {
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

#[cfg(test)]
mod tests {
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
        let custom = scale_from_toml(
            "scale = { bands = [[90, 4.0], [80, 3.0], [70, 2.0], [60, 1.0], [0, 0]] }",
        )
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
}
