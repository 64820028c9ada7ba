//! Which column is which: the fields a roster or grade file may carry with every header name
//! registrar systems use for them (aliases), the built-in layouts recognised from a header row
//! ("识别为：新正方 成绩导出"), and the test that tells a header row from the title rows above it.
//! The mapping itself (duplicates, missing columns) is done by `validate` from these tables.

/// A field a file may carry, with the header names that mean it.
pub struct Field {
    /// Chinese name, for messages.
    pub label: &'static str,
    /// English key.
    pub key: &'static str,
    /// Accepted headers, already normalised (see [`normalise_header`]).
    pub aliases: &'static [&'static str],
    /// Headers that mean this field only when no column has one of `aliases` (强智's older
    /// 总成绩 beside a 成绩, say): a column with one of these is then an ignored extra.
    pub weak: &'static [&'static str],
    /// Required — unless the field at this index is present (a roster's 证件号码 stands in for
    /// its 验证码).
    pub required: Required,
}

/// Whether a file must have a field.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Required {
    Yes,
    No,
    UnlessPresent(usize),
}

const fn field(
    label: &'static str,
    key: &'static str,
    aliases: &'static [&'static str],
    weak: &'static [&'static str],
    required: Required,
) -> Field {
    Field {
        label,
        key,
        aliases,
        weak,
        required,
    }
}

// Roster columns, in this order.
pub const R_ID: usize = 0;
pub const R_NAME: usize = 1;
pub const R_VERIFY: usize = 2;
pub const R_CLASS: usize = 3;
pub const R_MAJOR: usize = 4;
/// 证件号码: the verification value is its last six characters.
pub const R_ID_NUMBER: usize = 5;
pub const R_COLLEGE: usize = 6;
pub const R_GRADE: usize = 7;
pub const ROSTER_FIELDS: [Field; 8] = [
    field(
        "学号",
        "student_id",
        &["student_id", "学号"],
        &[],
        Required::Yes,
    ),
    field("姓名", "name", &["name", "姓名"], &[], Required::Yes),
    field(
        "验证码",
        "verify",
        &["verify", "验证码", "身份证后六位"],
        &[],
        Required::UnlessPresent(R_ID_NUMBER),
    ),
    field(
        "班级",
        "class",
        &["class", "班级", "班级名称", "行政班", "行政班级"],
        &[],
        Required::No,
    ),
    field(
        "专业",
        "major",
        &["major", "专业", "专业名称"],
        &[],
        Required::No,
    ),
    field(
        "证件号码",
        "id_number",
        &["id_number", "证件号码", "身份证号", "身份证号码", "证件号"],
        &[],
        Required::No,
    ),
    field(
        "学院",
        "college",
        &["college", "学院", "学院名称", "所在学院"],
        &[],
        Required::No,
    ),
    field(
        "年级",
        "grade",
        &["grade", "年级", "当前所在级"],
        &[],
        Required::No,
    ),
];

// Grade columns, in this order.
pub const G_ID: usize = 0;
pub const G_TERM: usize = 1;
pub const G_CODE: usize = 2;
pub const G_COURSE: usize = 3;
pub const G_CREDIT: usize = 4;
pub const G_SCORE: usize = 5;
pub const G_KIND: usize = 6;
pub const G_NAME: usize = 7;
/// 学年: with it, 学期 is the term within that year (1/2/3, 秋/春, …).
pub const G_YEAR: usize = 8;
/// 成绩标识 (强智): a status here overrides the score beside it.
pub const G_FLAG: usize = 9;
/// 是否成绩作废 (新正方): 是 → the row is skipped and counted.
pub const G_VOID: usize = 10;
/// 补考成绩 (旧正方): a makeup attempt on the same row.
pub const G_MAKEUP: usize = 11;
/// 重修成绩 (旧正方): a retake attempt on the same row.
pub const G_RETAKE: usize = 12;
/// 课程性质 / 课程属性 (必修, 选修, …). 强智 exports both: its 课程属性 is the 必修/选修 one
/// (its 课程性质 is 公共课/专业课), so 课程性质 counts only when there is no 课程属性.
pub const G_NATURE: usize = 13;
/// 开课学院 (旧正方's 学院名称 on a grade sheet names the teaching school too).
pub const G_COLLEGE: usize = 14;
/// 教学班: 新正方's 教学班 and URP's 课序号 (a section of one course). 强智's 分组名 is a
/// grouping inside a class, not a teaching class, and is not read.
pub const G_CLASS_GROUP: usize = 15;
/// Score components (平时成绩 … 卷面成绩): kept as written, in file order.
pub const G_COMPONENTS: std::ops::Range<usize> = 16..22;
pub const GRADE_FIELDS: [Field; 22] = [
    field(
        "学号",
        "student_id",
        &["student_id", "学号"],
        &[],
        Required::Yes,
    ),
    field(
        "学期",
        "term",
        &["term", "学期", "开课学期", "学年学期", "学期名称"],
        &[],
        Required::Yes,
    ),
    field(
        "课程代码",
        "course_code",
        &["course_code", "课程代码", "课程号", "课程编号", "课程编码"],
        &[],
        Required::Yes,
    ),
    field(
        "课程名称",
        "course_name",
        &["course_name", "课程名称", "课程名"],
        &[],
        Required::Yes,
    ),
    field("学分", "credit", &["credit", "学分"], &[], Required::Yes),
    field(
        "成绩",
        "score",
        &["score", "成绩"],
        &["总成绩", "总评成绩", "最终成绩", "总评"],
        Required::Yes,
    ),
    field(
        "考试性质",
        "kind",
        &["kind", "考试性质"],
        &["成绩性质", "考试类型", "修读方式"],
        Required::No,
    ),
    field("姓名", "name", &["name", "姓名"], &[], Required::No),
    field("学年", "year", &["year", "学年"], &[], Required::No),
    field(
        "成绩标识",
        "score_flag",
        &["score_flag", "成绩标识", "成绩标志"],
        &[],
        Required::No,
    ),
    field(
        "是否成绩作废",
        "void",
        &["void", "是否成绩作废", "是否作废"],
        &[],
        Required::No,
    ),
    field(
        "补考成绩",
        "makeup_score",
        &["makeup_score", "补考成绩"],
        &[],
        Required::No,
    ),
    field(
        "重修成绩",
        "retake_score",
        &["retake_score", "重修成绩"],
        &[],
        Required::No,
    ),
    field(
        "课程性质",
        "nature",
        &["nature", "课程属性"],
        &["课程性质"],
        Required::No,
    ),
    field(
        "开课学院",
        "course_college",
        &[
            "course_college",
            "开课学院",
            "开课单位",
            "开课院系",
            "开课部门",
        ],
        &["学院名称"],
        Required::No,
    ),
    field(
        "教学班",
        "class_group",
        &["class_group", "教学班", "教学班名称", "教学班号", "课序号"],
        &[],
        Required::No,
    ),
    field(
        "平时成绩",
        "usual_score",
        &["usual_score", "平时成绩", "平时"],
        &[],
        Required::No,
    ),
    field(
        "期中成绩",
        "midterm_score",
        &["midterm_score", "期中成绩", "期中"],
        &[],
        Required::No,
    ),
    field(
        "期末成绩",
        "final_score",
        &["final_score", "期末成绩", "期末"],
        &[],
        Required::No,
    ),
    field(
        "实验成绩",
        "lab_score",
        &["lab_score", "实验成绩", "实验"],
        &[],
        Required::No,
    ),
    field(
        "实践成绩",
        "practice_score",
        &["practice_score", "实践成绩", "实践"],
        &[],
        Required::No,
    ),
    field(
        "卷面成绩",
        "paper_score",
        &["paper_score", "卷面成绩", "卷面"],
        &[],
        Required::No,
    ),
];

/// The fields of a roster (`true`) or a grade sheet.
pub fn fields(roster: bool) -> &'static [Field] {
    if roster {
        &ROSTER_FIELDS
    } else {
        &GRADE_FIELDS
    }
}

/// The field a name means: our label (学号), our key (student_id) or one of its header names
/// (课程号), compared in header form.
pub fn field_named(fields: &[Field], name: &str) -> Option<usize> {
    let n = normalise_header(name);
    fields.iter().position(|f| {
        normalise_header(f.label) == n
            || f.key == n
            || f.aliases.contains(&n.as_str())
            || f.weak.contains(&n.as_str())
    })
}

/// The required fields a column map lacks, as "学号（student_id）".
pub fn missing_fields(fields: &[Field], map: &[Option<usize>]) -> Vec<String> {
    let present = |i: usize| map.get(i).copied().flatten().is_some();
    fields
        .iter()
        .enumerate()
        .filter(|&(i, f)| {
            !present(i)
                && match f.required {
                    Required::Yes => true,
                    Required::No => false,
                    Required::UnlessPresent(other) => !present(other),
                }
        })
        .map(|(_, f)| format!("{}（{}）", f.label, f.key))
        .collect()
}

/// Header comparison form: trimmed, `*` markers dropped, lower case, spaces and hyphens as `_`
/// (so `Student ID`, `student-id` and `STUDENT_ID` all match `student_id`).
pub fn normalise_header(h: &str) -> String {
    h.trim()
        .trim_matches('*')
        .trim()
        .chars()
        .map(|c| match c {
            ' ' | '-' | '\u{3000}' => '_',
            c => c.to_ascii_lowercase(),
        })
        .collect()
}

/// How far down a file its header row may be (title rows above it are skipped).
pub const HEADER_SEARCH_ROWS: usize = 20;

/// True for a row that is a roster's or grade sheet's header: one of its cells names the
/// student ID. Title rows ("2025-2026学年第一学期成绩单", "打印时间：…") never do.
pub fn looks_like_header<'c>(cells: impl IntoIterator<Item = &'c str>) -> bool {
    cells.into_iter().any(|c| {
        let n = normalise_header(c);
        ROSTER_FIELDS
            .get(R_ID)
            .is_some_and(|f| f.aliases.contains(&n.as_str()))
    })
}

/// The name of the built-in layout a grade sheet's header row matches, for the preview.
pub fn recognise_grades(headers: &[String]) -> &'static str {
    let has = |names: &[&str]| {
        headers
            .iter()
            .any(|h| names.contains(&normalise_header(h).as_str()))
    };
    if has(&["是否成绩作废"]) || (has(&["学年"]) && has(&["成绩性质"])) {
        "新正方 成绩导出"
    } else if has(&["补考成绩", "重修成绩"]) {
        "旧正方 成绩导出"
    } else if has(&["开课学期"]) && has(&["课程编号"]) {
        "强智 成绩导出"
    } else if has(&["学年"]) && has(&["课程号"]) && has(&["课程名"]) {
        "URP 综合教务 成绩导出"
    } else if !has(&["学年"]) && has(&["学期", "term"]) && has(&["课程代码", "course_code"])
    {
        "本系统格式"
    } else {
        "按列名识别"
    }
}

/// The name of the roster layout a header row matches, for the preview.
pub fn recognise_roster(headers: &[String]) -> &'static str {
    let has = |names: &[&str]| {
        headers
            .iter()
            .any(|h| names.contains(&normalise_header(h).as_str()))
    };
    if has(&["证件号码", "身份证号", "身份证号码", "证件号"]) {
        "教务系统学籍导出（证件号码）"
    } else {
        "本系统格式"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(s: &str) -> Vec<String> {
        s.split(',').map(str::to_string).collect()
    }

    #[test]
    fn layouts_are_recognised_from_their_published_headers() {
        for (cols, want) in [
            ("学年,学期,课程代码,课程名称,课程性质,学分,成绩备注,绩点,成绩性质,是否学位课程,开课学院,课程标记,课程类别,课程归属,教学班,任课教师,考核方式,学号,姓名,学生标记,成绩,是否成绩作废,学分绩点", "新正方 成绩导出"),
            ("学号,姓名,学年,学期,课程代码,课程名称,课程性质,课程归属,学分,绩点,成绩,辅修标记,补考成绩,重修成绩,学院名称,备注,重修标记", "旧正方 成绩导出"),
            ("序号,学号,姓名,开课学期,课程编号,课程名称,分组名,成绩,成绩标识,学分,总学时,绩点,补重学期,考核方式,考试性质,课程属性,课程性质,课程类别", "强智 成绩导出"),
            ("序号,学号,姓名,开课学期,课程编号,课程名称,总成绩,成绩标志,学分,学分绩点,难度系数,审核状态", "强智 成绩导出"),
            ("学号,姓名,学年,学期,课程号,课序号,课程名,英文课程名,学分,课程属性,成绩", "URP 综合教务 成绩导出"),
            ("学号,姓名,学期,课程代码,课程名称,学分,成绩,考试性质", "本系统格式"),
            ("student_id,term,course_code,course_name,credit,score", "本系统格式"),
            ("学号,学期,课程,学分,分数", "按列名识别"),
        ] {
            assert_eq!(recognise_grades(&headers(cols)), want, "{cols}");
        }
        assert_eq!(
            recognise_roster(&headers("学号,姓名,性别,证件号码,学院,专业,班级,年级")),
            "教务系统学籍导出（证件号码）"
        );
        assert_eq!(recognise_roster(&headers("学号,姓名,验证码")), "本系统格式");
    }

    #[test]
    fn header_rows_are_told_from_title_rows() {
        assert!(looks_like_header(["序号", "学号", "姓名"]));
        assert!(looks_like_header(["Student ID", "Name"]));
        assert!(looks_like_header(["*学号*"]));
        assert!(!looks_like_header(["2025-2026学年第一学期 学生成绩表"]));
        assert!(!looks_like_header([
            "学院：计算机学院",
            "",
            "打印时间：2026-01-20"
        ]));
        assert!(!looks_like_header(["2021001", "张三"]));
    }

    #[test]
    fn no_alias_means_two_fields() {
        let mut seen = std::collections::HashSet::new();
        for f in GRADE_FIELDS.iter() {
            for a in f.aliases.iter().chain(f.weak) {
                assert_eq!(normalise_header(a), *a, "aliases are stored normalised");
                assert!(seen.insert(*a), "{a} twice among grade fields");
            }
        }
        seen.clear();
        for f in ROSTER_FIELDS.iter() {
            for a in f.aliases.iter().chain(f.weak) {
                assert!(seen.insert(*a), "{a} twice among roster fields");
            }
        }
    }
}
